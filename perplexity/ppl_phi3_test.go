package perplexity

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Tests against testdata/arch/phi3-tiny (README.md there): fused
// qkv_proj and gate_up_proj, longrope scaling with original context 64
// and maximum 256 (so every test context uses the long factors, in
// transformers and in llama.cpp alike). References: transformers 5.17
// (float32, eager) and llama.cpp 34af94cd, in testdata/arch/reference.json.

func phi3Ref(t testing.TB) *unseenModelRef {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Models map[string]*unseenModelRef `json:"models"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/arch/reference.json: %v", err)
	}
	m := r.Models["phi3-tiny"]
	if m == nil || m.NTokens == 0 {
		t.Fatal("testdata/arch/reference.json: no entry for phi3-tiny")
	}
	return m
}

func phi3IDs(t testing.TB) []int {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "phi3-tiny.eval_token_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][]int
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m["kjv_eval.txt"]) == 0 {
		t.Fatal("phi3-tiny.eval_token_ids.json: no ids")
	}
	return m["kjv_eval.txt"]
}

func phi3HF(t testing.TB) *graph.Model {
	t.Helper()
	m, err := hf.ReadDir(testref.Local(t, "arch", "phi3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func phi3GGUF(t testing.TB) *graph.Model {
	t.Helper()
	m, err := gguf.ReadModel(testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestPhi3Logits compares the first 64 positions' logits with
// transformers' float32 forward pass, for the HF checkpoint and the
// converter's bf16 GGUF (float32 activations).
func TestPhi3Logits(t *testing.T) {
	ref := testref.Local(t, "arch", "phi3-tiny.ref_logits.safetensors")
	toks, _ := readSTTensor(t, ref, "tokens")
	want, shape := readSTTensor(t, ref, "logits")
	if len(toks) != 128 || len(shape) != 2 || shape[0] != 64 || shape[1] != 4160 {
		t.Fatalf("unexpected reference shapes: %d tokens, logits %v", len(toks), shape)
	}
	// transformers ran the whole 128-token chunk: longrope's long factors
	// (128 > 64). The first 64 positions of that pass are what a pass over
	// 128 tokens gives; pass all 128 and compare the first 64 rows.
	ids := make([]int, 128)
	for i := range ids {
		ids[i] = int(toks[i])
	}
	for _, src := range []struct {
		what string
		m    *graph.Model
	}{{"hf", phi3HF(t)}, {"gguf", phi3GGUF(t)}} {
		t.Run(src.what, func(t *testing.T) {
			fm, err := LoadModel(src.m)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := newRunner(fm, 2).forward(ids, 0)
			if err != nil {
				t.Fatal(err)
			}
			var maxDiff float64
			for i, w := range want {
				maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i])-w))
			}
			t.Logf("max |logit - transformers| = %.3g", maxDiff)
			if !(maxDiff <= 1e-3) {
				t.Errorf("max logit difference %g > 1e-3", maxDiff)
			}
		})
	}
}

// TestPhi3LongropeChoice: the long factors are used above the original
// context, counted as transformers counts it (the sequence length) for
// HF/MLX models and as llama.cpp does (the context per sequence rounded
// up to 256) for GGUF files; cos and sin carry the attention factor.
func TestPhi3LongropeChoice(t *testing.T) {
	hfm := phi3HF(t)
	hfm.Params.RopeScaling.OriginalContext = 300
	gm := phi3GGUF(t)
	for i, kv := range gm.Metadata {
		if kv.Key == "phi3.rope.scaling.original_context_length" {
			gm.Metadata[i].Value = uint32(300)
		}
	}
	for _, tc := range []struct {
		what string
		m    *graph.Model
		// sequence lengths that use the short and the long factors
		short, long []int
		// transformers derives the attention factor from
		// max_position_embeddings 256 / original 300 (< 1: factor 1);
		// llama.cpp reads the key the converter wrote.
		mscale float64
	}{
		{"hf", hfm, []int{1, 128, 257, 300}, []int{301, 512}, 1},
		{"gguf", gm, []int{1, 128, 256}, []int{257, 300, 512}, 1.1547005},
	} {
		fm, err := LoadModel(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		lr := fm.longrope
		if lr == nil || lr.orig != 300 || math.Abs(float64(lr.mscale)-tc.mscale) > 1e-6 {
			t.Fatalf("%s: longrope %+v", tc.what, lr)
		}
		// inv_freq_i = base^(-2i/d) / factor_i
		if want := math.Pow(10000, -2*15.0/32) / 6.0; math.Abs(lr.long[15]-want) > 1e-9*want {
			t.Errorf("%s: long inverse frequency 15 = %v, want %v", tc.what, lr.long[15], want)
		}
		if want := math.Pow(10000, -2*15.0/32) / 1.3; math.Abs(lr.short[15]-want) > 1e-6*want {
			t.Errorf("%s: short inverse frequency 15 = %v, want %v", tc.what, lr.short[15], want)
		}
		for _, n := range tc.short {
			if inv, _, _ := fm.ropeFor(n); &inv[0] != &lr.short[0] {
				t.Errorf("%s: %d tokens use the long factors, want short", tc.what, n)
			}
		}
		for _, n := range tc.long {
			if inv, ms, _ := fm.ropeFor(n); &inv[0] != &lr.long[0] || ms != lr.mscale {
				t.Errorf("%s: %d tokens use the short factors, want long", tc.what, n)
			}
		}
		// The runner's cached tables follow the choice: a shorter sequence
		// after a longer one may need the other table.
		r := newRunner(fm, 1)
		r.ropeTables(tc.long[len(tc.long)-1])
		if got, want := r.cos[1*16+15], float32(math.Cos(lr.long[15]))*lr.mscale; got != want {
			t.Errorf("%s: long table cos %v, want %v", tc.what, got, want)
		}
		r.ropeTables(tc.short[len(tc.short)-1])
		if got, want := r.cos[1*16+15], float32(math.Cos(lr.short[15]))*lr.mscale; got != want {
			t.Errorf("%s: short table after the long one: cos %v, want %v", tc.what, got, want)
		}
	}
}

// TestPhi3PerplexityHF: the first chunks at ctx 128 and 256 against
// transformers' float32 running figures, within 0.01%.
func TestPhi3PerplexityHF(t *testing.T) {
	ref := phi3Ref(t)
	for _, c := range []struct {
		n, chunks int
		want      unseenPPL
	}{{128, 6, ref.TransformersFP32.Ctx128}, {256, 3, ref.TransformersFP32.Ctx256}} {
		if len(c.want.Running) < c.chunks {
			t.Fatalf("ctx %d: reference has %d running values", c.n, len(c.want.Running))
		}
		want := c.want.Running[c.chunks-1]
		res, err := EvaluateTokens(context.Background(), phi3HF(t), phi3IDs(t), ref.AddBOS, ref.BOS,
			Options{Ctx: c.n, Batch: c.n, Chunks: c.chunks, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		rel := math.Abs(res.PPL-want) / want
		t.Logf("ctx %d, %d chunks: PPL %.6f, transformers %.6f (rel %.2e)", c.n, c.chunks, res.PPL, want, rel)
		if !(rel <= 1e-4) || res.TokensScored != c.chunks*(c.n-1-c.n/2) {
			t.Errorf("ctx %d: PPL %.6f over %d tokens, transformers %.6f: relative difference %.2e", c.n, res.PPL, res.TokensScored, want, rel)
		}
	}
}

// TestPhi3PerplexityGGUF: the converter's bf16 GGUF with llama.cpp's
// activation rounding against llama-perplexity -c 128 (within 0.1%).
func TestPhi3PerplexityGGUF(t *testing.T) {
	checkUnseenGGUF(t, "phi3-tiny", "bf16", phi3GGUF(t), phi3Ref(t))
}

// TestPhi3PerplexityMLX: the fused projections of an MLX affine model
// (mlx-lm keeps qkv_proj and gate_up_proj fused and quantized) evaluate
// as row views of the packed codes, scales and biases: 8-bit g64 stays
// within 0.5% of the HF checkpoint over the first six ctx-128 chunks.
func TestPhi3PerplexityMLX(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mlx8")
	if _, err := convert.Convert(context.Background(), testref.Local(t, "arch", "phi3-tiny"), out, convert.Options{Target: convert.MLXTarget{Bits: 8, GroupSize: 64}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	m, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if qkv := m.Tensor("blk.0.attn_qkv.weight"); qkv == nil || qkv.Type != graph.MLXAffine {
		t.Fatalf("attn_qkv %+v", qkv)
	}
	opt := Options{Ctx: 128, Batch: 128, Chunks: 6, Threads: 2}
	got, err := EvaluateTokens(context.Background(), m, phi3IDs(t), false, -1, opt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := EvaluateTokens(context.Background(), phi3HF(t), phi3IDs(t), false, -1, opt)
	if err != nil {
		t.Fatal(err)
	}
	rel := math.Abs(got.PPL-want.PPL) / want.PPL
	t.Logf("MLX 8-bit PPL %.6f, HF %.6f (rel %.2e)", got.PPL, want.PPL, rel)
	if !(rel <= 5e-3) {
		t.Errorf("MLX 8-bit PPL %.6f, HF %.6f: relative difference %.2e", got.PPL, want.PPL, rel)
	}
}
