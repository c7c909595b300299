package arch

import (
	"fmt"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// Validate checks that m's hyperparameters, vocabulary and tensors agree,
// so that nothing is converted or scored from a model that cannot be right.
// It returns the first inconsistency as an error naming m.Path, and
// warnings for ambiguities that have a defined answer.
//
// The rules are the ones the reference tools enforce on load:
//   - llama.cpp's llama_model_loader: token_embd.weight (and output.weight)
//     have one row per vocabulary entry; the block count matches the
//     layers present; every projection has the shape the head counts
//     and head dimension give (create_tensor's shape check);
//   - llama.cpp's hparams: head counts positive, KV heads dividing heads;
//   - convert_hf_to_gguf.py pads or truncates an HF vocabulary to
//     config.json's vocab_size (formats/hf does the same), so after reading
//     the vocabulary size and the embedding rows must agree there too.
func Validate(m *graph.Model) (warnings []string, err error) {
	p := m.Params
	fail := func(format string, args ...any) ([]string, error) {
		return warnings, fmt.Errorf("%s: %s", m.Path, fmt.Sprintf(format, args...))
	}
	what := map[graph.Format]string{graph.FormatHF: "config.json", graph.FormatMLX: "config.json", graph.FormatGGUF: "metadata"}[m.Format]
	if what == "" {
		what = "metadata"
	}

	// Layers.
	maxLayer := -1
	present := map[int]bool{}
	for _, t := range m.Tensors {
		if l := graph.LayerIndex(t.Name); l >= 0 {
			present[l] = true
			maxLayer = max(maxLayer, l)
		}
	}
	if p.Layers <= 0 {
		return fail("%s gives %d layers", what, p.Layers)
	}
	if maxLayer >= p.Layers {
		return fail("%s gives %d layers but tensors of layer %d exist", what, p.Layers, maxLayer)
	}
	for l := 0; l < p.Layers; l++ {
		if !present[l] {
			return fail("%s gives %d layers but the model has no tensors for layer %d", what, p.Layers, l)
		}
	}

	// Heads.
	if p.Heads <= 0 {
		return fail("%s gives %d attention heads", what, p.Heads)
	}
	kv := p.KVHeads
	if kv == 0 {
		kv = p.Heads
	}
	if kv < 0 || p.Heads%kv != 0 {
		return fail("%s gives %d key/value heads, which does not divide the %d attention heads", what, kv, p.Heads)
	}
	hd := p.HeadDim
	if hd == 0 {
		if p.Embedding <= 0 || p.Embedding%p.Heads != 0 {
			return fail("%s gives embedding width %d, not a multiple of the %d attention heads, and no head dimension", what, p.Embedding, p.Heads)
		}
		hd = p.Embedding / p.Heads
	}

	// Embeddings and vocabulary.
	te := m.Tensor("token_embd.weight")
	if te == nil {
		return fail("no token embedding tensor (token_embd.weight)")
	}
	if len(te.Shape) != 2 {
		return fail("token_embd.weight has shape %v, want [vocabulary, embedding]", te.Shape)
	}
	rows, width := te.Shape[0], te.Shape[1]
	if p.Embedding != 0 && int64(p.Embedding) != width {
		return fail("%s gives embedding width %d but token_embd.weight is %v", what, p.Embedding, te.Shape)
	}
	embd := width
	if m.Tokenizer != nil && len(m.Tokenizer.Tokens) > 0 {
		n := int64(len(m.Tokenizer.Tokens))
		if n != rows {
			src := "the tokenizer has"
			if m.Format != graph.FormatGGUF && p.VocabSize > 0 {
				src = fmt.Sprintf("config.json vocab_size %d gives", p.VocabSize)
			}
			return fail("%s %d tokens but token_embd.weight has %d rows (llama.cpp refuses such a model)", src, n, rows)
		}
	} else if p.VocabSize > 0 && int64(p.VocabSize) != rows {
		return fail("%s gives vocab_size %d but token_embd.weight has %d rows", what, p.VocabSize, rows)
	}
	if out := m.Tensor("output.weight"); out != nil {
		if len(out.Shape) != 2 || out.Shape[0] != rows || out.Shape[1] != embd {
			return fail("output.weight has shape %v, token_embd.weight %v (want equal)", out.Shape, te.Shape)
		}
		if m.Format != graph.FormatGGUF {
			if tie, ok := m.Config["tie_word_embeddings"].(bool); ok && tie {
				warnings = append(warnings, fmt.Sprintf("%s: config.json sets tie_word_embeddings but the checkpoint also holds lm_head.weight: quantbridge uses lm_head.weight, as convert_hf_to_gguf.py and llama.cpp do (transformers would use the embeddings)", m.Path))
			}
		}
	}

	// Projection shapes, where present (fused and expert layouts vary by
	// architecture; the common ones are checked).
	qDim, kvDim := int64(p.Heads*hd), int64(kv*hd)
	for _, t := range m.Tensors {
		l := graph.LayerIndex(t.Name)
		if l < 0 || len(t.Shape) != 2 {
			continue
		}
		local := t.Name[strings.IndexByte(t.Name[len("blk."):], '.')+len("blk.")+1:]
		var want [2]int64
		switch local {
		case "attn_q.weight":
			want = [2]int64{qDim, embd}
		case "attn_k.weight", "attn_v.weight":
			want = [2]int64{kvDim, embd}
		case "attn_output.weight":
			want = [2]int64{embd, qDim}
		case "attn_qkv.weight":
			want = [2]int64{qDim + 2*kvDim, embd}
		default:
			continue
		}
		if t.Shape[0] != want[0] || t.Shape[1] != want[1] {
			return fail("%s has shape %v but %d heads, %d key/value heads of dimension %d and width %d need %v", t.Name, t.Shape, p.Heads, kv, hd, embd, want)
		}
	}
	return warnings, nil
}
