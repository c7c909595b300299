//go:build refdata

package perplexity

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// KL-divergence statistics agree with llama-perplexity --kl-divergence on
// the same files and text (testdata/kjv-llama.kld-reference.json). The
// figures cannot be identical: llama-perplexity stores the base model's
// log-probabilities as 16-bit values and its matrix products sum in SIMD
// order, so they are compared within their own standard errors.
func TestKLDivergenceMatchesLlamaPerplexity(t *testing.T) {
	var ref struct {
		Ctx                          int
		PPLQ, PPLBase, Ratio         float64
		KLD, KLDStderr, KLDMedian    float64
		SameTop, SameTopStderr, RMSp float64
	}
	var raw map[string]any
	data, err := os.ReadFile(testref.Local(t, "kjv-llama.kld-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	num := func(k string) float64 { return raw[k].(float64) }
	ref.Ctx = int(num("ctx"))
	ref.PPLQ, ref.PPLBase, ref.Ratio = num("ppl_q"), num("ppl_base"), num("ppl_ratio")
	ref.KLD, ref.KLDStderr, ref.KLDMedian = num("kld_mean"), num("kld_stderr"), num("kld_median")
	ref.SameTop, ref.SameTopStderr, ref.RMSp = num("same_top_p_pct")/100, num("same_top_p_stderr_pct")/100, num("rms_dp_pct")/100

	q, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.Q4_K_M.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	base, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	tok, err := tokenizer.NewForModel(q)
	if err != nil {
		t.Fatal(err)
	}
	text, err := tokenizer.ReadTextFile(testref.Local(t, "kjv_eval.txt"), false, true) // as llama-perplexity -f
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(context.Background(), q, tok, text, Options{Ctx: ref.Ctx, Batch: ref.Ctx, KLBase: base})
	if err != nil {
		t.Fatal(err)
	}
	kl := res.KL
	if kl == nil {
		t.Fatal("no KL result")
	}
	t.Logf("KLD %.6f ± %.6f (llama-perplexity %.6f ± %.6f), same top %.3f%% (%.3f%%), ratio %.6f (%.6f), RMS Δp %.3f%% (%.3f%%)",
		kl.KLD, kl.KLDStderr, ref.KLD, ref.KLDStderr, 100*kl.SameTop, 100*ref.SameTop, kl.Ratio, ref.Ratio, 100*kl.RMSDeltaP, 100*ref.RMSp)
	within := func(name string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %v, llama-perplexity %v (tolerance %v)", name, got, want, tol)
		}
	}
	within("mean KLD", kl.KLD, ref.KLD, ref.KLDStderr)
	within("KLD stderr", kl.KLDStderr, ref.KLDStderr, 0.1*ref.KLDStderr)
	within("same top p", kl.SameTop, ref.SameTop, ref.SameTopStderr)
	within("PPL(Q)/PPL(base)", kl.Ratio, ref.Ratio, 0.001)
	within("PPL(Q)", kl.PPL, ref.PPLQ, 0.001*ref.PPLQ)
	within("PPL(base)", kl.BasePPL, ref.PPLBase, 0.001*ref.PPLBase)
	within("RMS Δp", kl.RMSDeltaP, ref.RMSp, 0.05*ref.RMSp)
}
