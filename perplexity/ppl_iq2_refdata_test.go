//go:build refdata

package perplexity

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestLlamaPerplexityIQ2 evaluates the llama-quantize --imatrix files of
// kjv-llama whose matrices are IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M
// (with Q2_K, Q5_K and, in the IQ1 files, IQ2_XXS tensors) and compares
// with llama-perplexity's figures at ctx 128
// (imatrix/llama-perplexity.kjv-llama.imatrix.TYPE.log): final
// PPL within 0.1%, running values within 0.1%·sqrt(50/chunk), as
// TestLlamaPerplexityGGUF. The IQ dot products are summed in the
// evaluator's own order, not ggml's integer order, so the figures agree to
// a few 1e-4 rather than to the printed precision. QB_PPL_TYPES selects
// types.
func TestLlamaPerplexityIQ2(t *testing.T) {
	toks := kjvTokens(t)
	types := []string{"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"}
	if s := os.Getenv("QB_PPL_TYPES"); s != "" {
		types = strings.Split(s, ",")
	}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			name := "kjv-llama.imatrix." + typ
			running, final, stderr := llamaPerplexityLog(t, testref.Imatrix(t, "llama-perplexity."+name+".log"))
			path := testref.Imatrix(t, name+".gguf")
			m := loadGGUF(t, path)
			defer m.Close()
			res, err := EvaluateTokens(context.Background(), m, toks, true, 1, Options{Ctx: 128, Batch: 128})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Running) != len(running) {
				t.Fatalf("%d chunks, llama-perplexity %d", len(res.Running), len(running))
			}
			worst := 0.0
			for i, v := range res.Running {
				rel := math.Abs(v-running[i]) / running[i]
				if tol := 1e-3 * math.Sqrt(math.Max(1, 50/float64(i+1))); rel > tol {
					t.Errorf("running PPL [%d] %.4f, llama-perplexity %.4f: %.3g%% > %.3g%%", i+1, v, running[i], 100*rel, 100*tol)
				}
				worst = math.Max(worst, rel)
			}
			rel := math.Abs(res.PPL-final) / final
			if rel > 1e-3 {
				t.Errorf("PPL %.4f, llama-perplexity %.4f (%.3g%% > 0.1%%)", res.PPL, final, 100*rel)
			}
			if math.Abs(res.PPLStderr-stderr)/stderr > 1e-2 {
				t.Errorf("PPL stderr %.5f, llama-perplexity %.5f", res.PPLStderr, stderr)
			}
			t.Logf("%s: PPL %.4f ± %.5f (llama-perplexity %.4f ± %.5f, rel %.2e); worst running rel diff %.2e",
				typ, res.PPL, res.PPLStderr, final, stderr, rel, worst)
		})
	}
}
