package perplexity

import (
	"context"
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestLogitsMatchTransformers compares the logits of the first 64
// positions of the first ctx-128 chunk with transformers' float32 forward
// pass of the bf16 checkpoint.
func TestLogitsMatchTransformers(t *testing.T) {
	ref := testref.Local(t, "kjv-llama.ref_logits.safetensors")
	toks, _ := readSTTensor(t, ref, "tokens")
	want, shape := readSTTensor(t, ref, "logits")
	if len(toks) != 128 || len(shape) != 2 || shape[0] != 64 || shape[1] != 4096 {
		t.Fatalf("unexpected reference shapes: %d tokens, logits %v", len(toks), shape)
	}
	fm, err := LoadModel(loadKJV(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, 64)
	for i := range ids {
		ids[i] = int(toks[i])
	}
	for _, threads := range []int{1, 3} {
		logits, err := newRunner(fm, threads).forward(ids, 0)
		if err != nil {
			t.Fatal(err)
		}
		var maxDiff float64
		for i, w := range want {
			maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i])-w))
		}
		t.Logf("threads %d: max |logit - transformers| = %.3g", threads, maxDiff)
		if maxDiff > 1e-3 {
			t.Errorf("threads %d: max logit difference %g > 1e-3", threads, maxDiff)
		}
	}
}

// TestPerplexityMatchesTransformers runs the llama-perplexity method on
// kjv_eval.txt with the HF bf16 checkpoint and compares with transformers'
// float32 figure.
func TestPerplexityMatchesTransformers(t *testing.T) {
	r := loadReference(t, testref.Local(t, "reference.json"))
	m := loadKJV(t)
	toks := kjvTokens(t)
	for _, c := range []struct {
		ctx  string
		n    int
		want transformersFigure
	}{
		{"ctx128", 128, r.TransformersFP32.Ctx128},
		{"ctx256", 256, r.TransformersFP32.Ctx256},
	} {
		want := c.want
		res, err := EvaluateTokens(context.Background(), m, toks, true, 1, Options{Ctx: c.n, Batch: c.n})
		if err != nil {
			t.Fatal(err)
		}
		rel := math.Abs(res.PPL-want.PPL) / want.PPL
		t.Logf("%s: PPL %.6f ± %.5f, transformers %.6f (rel %.2e), %d chunks, %d scored, %.0f tok/s",
			c.ctx, res.PPL, res.PPLStderr, want.PPL, rel, res.Chunks, res.TokensScored, res.TokensPerSecond)
		if res.Chunks != want.Chunks || res.TokensScored != want.Scored {
			t.Errorf("%s: %d chunks / %d scored, want %d / %d", c.ctx, res.Chunks, res.TokensScored, want.Chunks, want.Scored)
		}
		if rel > 1e-4 {
			t.Errorf("%s: PPL %.6f, transformers %.6f: relative difference %.2e > 1e-4", c.ctx, res.PPL, want.PPL, rel)
		}
	}
}
