package formats_test

import (
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestInspectUnseen opens each testdata/unseen checkpoint (the HF
// directory and the converter's bf16 GGUF) and checks the parameters
// Inspect reports against what the configs say (README.md there).
func TestInspectUnseen(t *testing.T) {
	type want struct {
		arch     string
		params   graph.Params // compared field by field below
		tensors  int          // HF tensors; the GGUF adds rope_freqs for llama3
		tokens   int
		pre      string
		bos, eos int
		addBOS   bool
	}
	cases := map[string]want{
		"qwen2-bpe-tied": {
			arch: "qwen2",
			params: graph.Params{Layers: 4, Embedding: 128, FFN: 352, Heads: 4, KVHeads: 2, HeadDim: 32,
				RopeBase: 1e6, RopeType: "neox", RopeDims: 32, RMSEps: 1e-6, ContextLength: 512, VocabSize: 1056,
				Tied: true, AttnBias: true},
			tensors: 50, tokens: 1056, pre: "qwen2", bos: 1021, eos: 1021, addBOS: false,
		},
		"llama3-bpe-tied": {
			arch: "llama",
			params: graph.Params{Layers: 4, Embedding: 192, FFN: 512, Heads: 4, KVHeads: 2, HeadDim: 64,
				RopeBase: 500000, RopeType: "norm", RopeDims: 64, RMSEps: 1e-5, ContextLength: 512, VocabSize: 1024,
				Tied: true, AttnBias: false,
				RopeScaling: &graph.RopeScaling{Type: "llama3", Factor: 8, OriginalContext: 64, LowFreqFactor: 1, HighFreqFactor: 4}},
			tensors: 38, tokens: 1024, pre: "llama-bpe", bos: 1013, eos: 1014, addBOS: true,
		},
	}
	for name, w := range cases {
		for _, src := range []string{name, name + ".bf16.gguf"} {
			t.Run(src, func(t *testing.T) {
				m, err := formats.Open(testref.Local(t, "unseen", src))
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				info := formats.Inspect(m)
				if info.Architecture != w.arch {
					t.Errorf("architecture %q, want %q", info.Architecture, w.arch)
				}
				p, q := info.Params, w.params
				check := func(field string, got, want any) {
					t.Helper()
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: %v, want %v", field, got, want)
					}
				}
				check("layers", p.Layers, q.Layers)
				check("embedding", p.Embedding, q.Embedding)
				check("ffn", p.FFN, q.FFN)
				check("heads", p.Heads, q.Heads)
				check("kv_heads", p.KVHeads, q.KVHeads)
				check("head_dim", p.HeadDim, q.HeadDim)
				check("rope_base", p.RopeBase, q.RopeBase)
				check("rope_type", p.RopeType, q.RopeType)
				check("rope_dims", p.RopeDims, q.RopeDims)
				check("rms_eps", float32(p.RMSEps), float32(q.RMSEps)) // GGUF stores f32
				check("context_length", p.ContextLength, q.ContextLength)
				check("vocab_size", p.VocabSize, q.VocabSize)
				check("tied", p.Tied, q.Tied)
				check("attention_bias", p.AttnBias, q.AttnBias)
				switch {
				case q.RopeScaling != nil && m.Format == graph.FormatGGUF:
					// A GGUF keeps llama3 scaling only as the rope_freqs.weight
					// factors (the converter writes no scaling keys for it).
					if m.Tensor("rope_freqs.weight") == nil {
						t.Errorf("GGUF has no rope_freqs.weight")
					}
				case q.RopeScaling != nil:
					if p.RopeScaling == nil {
						t.Errorf("no rope scaling, want %+v", *q.RopeScaling)
					} else {
						check("rope_scaling", *p.RopeScaling, *q.RopeScaling)
					}
				case p.RopeScaling != nil && p.RopeScaling.Type != "" && p.RopeScaling.Type != "none":
					t.Errorf("rope scaling %+v, want none", *p.RopeScaling)
				}
				n := w.tensors
				if m.Format == graph.FormatGGUF && q.RopeScaling != nil {
					n++
				}
				check("tensors", len(info.Tensors), n)
				if m.Tensor("output.weight") != nil {
					t.Errorf("tied model has output.weight")
				}
				if bias := m.Tensor("blk.0.attn_q.bias"); (bias != nil) != q.AttnBias {
					t.Errorf("blk.0.attn_q.bias present %v", bias != nil)
				}
				if ffn := m.Tensor("blk.3.ffn_down.weight"); ffn == nil || !reflect.DeepEqual(ffn.Shape, []int64{int64(q.Embedding), int64(q.FFN)}) {
					t.Errorf("blk.3.ffn_down.weight: %v", ffn)
				}
				if q := m.Tensor("blk.0.attn_q.weight"); q == nil || q.Shape[0] != int64(w.params.Heads*w.params.HeadDim) {
					t.Errorf("blk.0.attn_q.weight: %v", q)
				}
				tk := info.Tokenizer
				if tk == nil {
					t.Fatal("no tokenizer")
				}
				check("tokenizer model", tk.Model, "gpt2")
				check("tokenizer pre", tk.Pre, w.pre)
				check("tokens", tk.Tokens, w.tokens)
				check("bos", tk.BOS, w.bos)
				check("eos", tk.EOS, w.eos)
				check("add_bos", tk.AddBOS, w.addBOS)
				check("add_eos", tk.AddEOS, false)
				check("chat template", tk.ChatTemplate, true)
			})
		}
	}
}
