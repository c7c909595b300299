// Package synth writes synthetic llama-shaped GGUF checkpoints with
// deterministic pseudo-random weights, for benchmarks (quantbridge
// convert vs. llama-quantize) and tests. The files load in llama.cpp (full
// llama metadata and a SentencePiece-style vocabulary of byte pieces and
// ASCII characters, see vocabulary) but the
// weights are noise: they are for timing and byte comparisons, not text.
package synth

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// Config is the shape of a synthetic llama model.
type Config struct {
	Layers, Embedding, FFN, Heads, KVHeads, Vocab int
	// Type of the 2-D weights: F16 (default), BF16 or F32. Norms are F32.
	Type graph.Type
	// Seed varies the weights.
	Seed uint64
	// Jobs is the number of goroutines generating data (0: 1).
	Jobs int
}

// Presets are named shapes: "1b" is TinyLlama-1.1B's (22 layers, hidden
// 2048, FFN 5632, 32/4 heads, vocab 32000: 1.1e9 parameters), "tiny" a
// 6-layer 256-wide model of 6.8M parameters (kjv-llama's shape).
var Presets = map[string]Config{
	"1b":   {Layers: 22, Embedding: 2048, FFN: 5632, Heads: 32, KVHeads: 4, Vocab: 32000},
	"tiny": {Layers: 6, Embedding: 256, FFN: 768, Heads: 8, KVHeads: 4, Vocab: 4096},
}

type tensor struct {
	name  string
	shape []int64
	typ   graph.Type
}

func (c Config) tensors() []tensor {
	wt := c.Type
	if wt == 0 {
		wt = graph.F16
	}
	e, f, v := int64(c.Embedding), int64(c.FFN), int64(c.Vocab)
	hd := e / int64(c.Heads)
	kv := hd * int64(c.KVHeads)
	ts := []tensor{
		{"token_embd.weight", []int64{v, e}, wt},
		{"output_norm.weight", []int64{e}, graph.F32},
		{"output.weight", []int64{v, e}, wt},
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", []int64{e}, graph.F32},
			tensor{p + "attn_q.weight", []int64{e, e}, wt},
			tensor{p + "attn_k.weight", []int64{kv, e}, wt},
			tensor{p + "attn_v.weight", []int64{kv, e}, wt},
			tensor{p + "attn_output.weight", []int64{e, e}, wt},
			tensor{p + "ffn_norm.weight", []int64{e}, graph.F32},
			tensor{p + "ffn_gate.weight", []int64{f, e}, wt},
			tensor{p + "ffn_up.weight", []int64{f, e}, wt},
			tensor{p + "ffn_down.weight", []int64{e, f}, wt},
		)
	}
	return ts
}

// Params returns the number of weights of the model.
func (c Config) Params() int64 {
	var n int64
	for _, t := range c.tensors() {
		k := int64(1)
		for _, d := range t.shape {
			k *= d
		}
		n += k
	}
	return n
}

func (c Config) kv() []graph.KV {
	ftype := uint32(1)
	switch c.Type {
	case graph.F32:
		ftype = 0
	case graph.BF16:
		ftype = 32
	}
	toks, scores, types := vocabulary(c.Vocab)
	return []graph.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.type", Value: "model"},
		{Key: "general.name", Value: "synthetic"},
		{Key: "llama.block_count", Value: uint32(c.Layers)},
		{Key: "llama.context_length", Value: uint32(2048)},
		{Key: "llama.embedding_length", Value: uint32(c.Embedding)},
		{Key: "llama.feed_forward_length", Value: uint32(c.FFN)},
		{Key: "llama.attention.head_count", Value: uint32(c.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "general.file_type", Value: ftype},
		{Key: "llama.vocab_size", Value: uint32(c.Vocab)},
		{Key: "llama.rope.dimension_count", Value: uint32(c.Embedding / c.Heads)},
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.pre", Value: "default"},
		{Key: "tokenizer.ggml.tokens", Value: toks},
		{Key: "tokenizer.ggml.scores", Value: scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
	}
}

// vocabulary returns a SentencePiece-style vocabulary of n pieces that
// llama.cpp's SPM tokenizer accepts and that tokenizes any text: <unk>,
// <s>, </s>, the 256 byte-fallback pieces <0x00>..<0xFF> (llama.cpp looks
// up <0x0A> for its newline token and fails to load a vocabulary without
// them), "▁", the printable ASCII characters alone and after "▁" (scored
// so that "▁x" merges first), then unreachable filler pieces up to n.
// With n below 3+256 it is the specials and as many byte pieces as fit.
func vocabulary(n int) (toks []string, scores []float32, types []int32) {
	add := func(tok string, score float32, typ int32) {
		if len(toks) < n {
			toks, scores, types = append(toks, tok), append(scores, score), append(types, typ)
		}
	}
	add("<unk>", 0, graph.TokenUnknown)
	add("<s>", 0, graph.TokenControl)
	add("</s>", 0, graph.TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, graph.TokenByte)
	}
	add("\u2581", -1, graph.TokenNormal)
	for ch := byte('!'); ch <= '~'; ch++ {
		add("\u2581"+string(ch), -2, graph.TokenNormal)
	}
	for ch := byte('!'); ch <= '~'; ch++ {
		add(string(ch), -3, graph.TokenNormal)
	}
	for i := 0; len(toks) < n; i++ {
		add(fmt.Sprintf("\u2581filler%d", i), -4-float32(i), graph.TokenNormal)
	}
	return toks, scores, types
}

// WriteGGUF writes the synthetic model to path (replacing it).
func WriteGGUF(ctx context.Context, path string, c Config) error {
	if c.Layers <= 0 || c.Embedding <= 0 || c.FFN <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Vocab <= 0 ||
		c.Embedding%c.Heads != 0 || c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("synth: bad shape %+v", c)
	}
	ts := c.tensors()
	infos := make([]gguf.TensorInfo, len(ts))
	for i, t := range ts {
		infos[i] = gguf.TensorInfo{Name: t.name, Shape: t.shape, Type: t.typ}
	}
	layout, err := gguf.Plan(c.kv(), infos, 0)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(layout.Size); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(layout.Header, 0); err != nil {
		f.Close()
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, c.Jobs))
	const chunk = 1 << 20 // elements per piece of work
	for i, t := range ts {
		n := int64(1)
		for _, d := range t.shape {
			n *= d
		}
		es := t.typ.TypeSize()
		for off := int64(0); off < n; off += chunk {
			m := min(chunk, n-off)
			seed := seedOf(c.Seed, t.name, off)
			at := layout.Offsets[i] + off*es
			typ, norm := t.typ, len(t.shape) == 1
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
				v := make([]float32, m)
				for j := range v {
					if norm {
						v[j] = 1 + float32(rng.NormFloat64()*0.1)
					} else {
						v[j] = float32(rng.NormFloat64() * 0.02)
					}
				}
				b := make([]byte, m*es)
				if err := quantize.FromFloat32(b, v, typ); err != nil {
					return err
				}
				_, err := f.WriteAt(b, at)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func seedOf(seed uint64, name string, off int64) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s/%d", seed, name, off)
	return h.Sum64()
}
