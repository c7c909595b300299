package perplexity

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Tests against testdata/arch/gemma3-tiny (README.md there): a Gemma 3
// text model with 5 sliding-window layers (window 32, shorter than the
// ctx-128 chunks) and a global one, and a Gemma SentencePiece vocabulary.
// References: transformers 5.17 float32 (hf_reference.json,
// gemma3-tiny.ref_logits.safetensors, the token files) and llama.cpp
// 34af94cd (gemma3-tiny.bf16.gguf; llama-perplexity figures in
// reference.json, see gemma3_refdata_test.go).

func gemma3Model(t testing.TB, name string) *graph.Model {
	t.Helper()
	m, err := formats.Open(testref.Local(t, "arch", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// gemma3HFPPL is hf_reference.json's perplexity record for gemma3-tiny.
type gemma3HFPPL struct {
	PPL     float64   `json:"ppl"`
	Running []float64 `json:"running"`
	Scored  int       `json:"scored_tokens"`
	Chunks  int       `json:"chunks"`
}

func gemma3HFRef(t testing.TB) (ctx128, ctx256 gemma3HFPPL, addBOS bool, bos int) {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "hf_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("hf_reference.json: %v", err)
	}
	var g struct {
		Ctx128 gemma3HFPPL `json:"ppl_ctx128"`
		Ctx256 gemma3HFPPL `json:"ppl_ctx256"`
		AddBOS bool        `json:"add_bos"`
		BOS    int         `json:"bos"`
	}
	if err := json.Unmarshal(r["gemma3-tiny"], &g); err != nil || g.Ctx128.PPL == 0 || g.Ctx256.PPL == 0 {
		t.Fatal("hf_reference.json: no gemma3-tiny perplexity")
	}
	return g.Ctx128, g.Ctx256, g.AddBOS, g.BOS
}

// TestGemma3Logits: the first 64 positions of the first ctx-128 chunk
// (positions 32..63 already past the sliding window) against
// transformers' float32 logits, for the HF checkpoint and the converter's
// bf16 GGUF (norms stored as w+1; float32 activations; llama.cpp's
// attention scale 1/√64 equals query_pre_attn_scalar 64's).
func TestGemma3Logits(t *testing.T) {
	ref := testref.Local(t, "arch", "gemma3-tiny.ref_logits.safetensors")
	toks, _ := readSTTensor(t, ref, "tokens")
	want, shape := readSTTensor(t, ref, "logits")
	if len(toks) != 128 || len(shape) != 2 || shape[0] != 64 {
		t.Fatalf("unexpected reference shapes: %d tokens, logits %v", len(toks), shape)
	}
	ids := make([]int, 64)
	for i := range ids {
		ids[i] = int(toks[i])
	}
	for _, name := range []string{"gemma3-tiny", "gemma3-tiny.bf16.gguf"} {
		t.Run(name, func(t *testing.T) {
			fm, err := LoadModel(gemma3Model(t, name))
			if err != nil {
				t.Fatal(err)
			}
			logits, err := newRunner(fm, 2).forward(ids, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != len(want) {
				t.Fatalf("%d logits, want %d", len(logits), len(want))
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

// TestGemma3PerplexityHF: the first 6 chunks at ctx 128 and 3 at ctx 256
// on the HF checkpoint, against transformers' running values: within
// 0.01%. The whole text is in gemma3_refdata_test.go.
func TestGemma3PerplexityHF(t *testing.T) {
	checkGemma3HF(t, 128, 6)
	checkGemma3HF(t, 256, 3)
}

func checkGemma3HF(t *testing.T, n, chunks int) {
	t.Helper()
	r128, r256, addBOS, bos := gemma3HFRef(t)
	want := r128
	if n == 256 {
		want = r256
	}
	wantPPL, wantChunks, wantScored := want.PPL, want.Chunks, want.Scored
	if chunks > 0 {
		wantPPL, wantChunks, wantScored = want.Running[chunks-1], chunks, chunks*(n-1-n/2)
	}
	b, err := os.ReadFile(testref.Local(t, "arch", "gemma3-tiny.eval_token_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idm map[string][]int
	if err := json.Unmarshal(b, &idm); err != nil || len(idm["kjv_eval.txt"]) == 0 {
		t.Fatalf("gemma3-tiny.eval_token_ids.json: no ids (%v)", err)
	}
	ids := idm["kjv_eval.txt"]
	res, err := EvaluateTokens(context.Background(), gemma3Model(t, "gemma3-tiny"), ids, addBOS, bos, Options{Ctx: n, Batch: n, Chunks: chunks, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	rel := math.Abs(res.PPL-wantPPL) / wantPPL
	t.Logf("ctx %d: PPL %.6f, transformers %.6f (rel %.2e), %d chunks", n, res.PPL, wantPPL, rel, res.Chunks)
	if res.Chunks != wantChunks || res.TokensScored != wantScored {
		t.Errorf("ctx %d: %d chunks / %d scored, want %d / %d", n, res.Chunks, res.TokensScored, wantChunks, wantScored)
	}
	if !(rel <= 1e-4) {
		t.Errorf("ctx %d: PPL %.6f, transformers %.6f: relative difference %.2e > 1e-4", n, res.PPL, wantPPL, rel)
	}
	for i := 0; i < len(res.Running) && i < len(want.Running); i++ {
		if r := math.Abs(res.Running[i]-want.Running[i]) / want.Running[i]; !(r <= 1e-4) {
			t.Errorf("ctx %d: running value %d: %.6f, transformers %.6f", n, i+1, res.Running[i], want.Running[i])
			break
		}
	}
}
