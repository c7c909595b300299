package perplexity

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

func TestKLDivergence(t *testing.T) {
	spec := synthSpec{arch: "llama", vocab: 64, embd: 256, ffn: 256, layers: 1, heads: 4, kv: 2, hd: 64}
	w := newSynth(spec, 11)
	base := w.model(graph.FormatHF, graph.F32)
	quant := w.model(graph.FormatHF, graph.Q4_K)
	tokens := make([]int, 96)
	for i := range tokens {
		tokens[i] = (i*7 + 3) % spec.vocab
	}
	// Identical models: full top-1 agreement, and KLD and ratio as near 0
	// and 1 as llama-perplexity gets them: the base's log-probabilities
	// pass through its 16-bit codes (steps of up to 16/65535 nats).
	res, err := EvaluateTokens(context.Background(), base, tokens, true, 1, Options{Ctx: 32, KLBase: base})
	if err != nil {
		t.Fatal(err)
	}
	kl := res.KL
	if kl == nil || kl.Count != res.TokensScored || kl.Count != 3*15 {
		t.Fatalf("KL result %+v for %d scored tokens", kl, res.TokensScored)
	}
	if math.Abs(kl.KLD) > 1e-5 || kl.KLD == 0 || kl.SameTop != 1 || math.Abs(kl.Ratio-1) > 1e-4 || kl.RMSDeltaP > 1e-4 {
		t.Errorf("identical models: KLD %g, same top %g, ratio %g, RMS Δp %g", kl.KLD, kl.SameTop, kl.Ratio, kl.RMSDeltaP)
	}
	if math.Abs(kl.PPL-res.PPL) > 1e-6*res.PPL {
		t.Errorf("KL PPL(Q) %v != PPL %v", kl.PPL, res.PPL)
	}
	// A Q4_K copy (of a random, very peaked model): positive KLD; the base
	// PPL matches the separate run to the 16-bit codes' precision.
	qres, err := EvaluateTokens(context.Background(), quant, tokens, true, 1, Options{Ctx: 32, KLBase: base})
	if err != nil {
		t.Fatal(err)
	}
	kl = qres.KL
	if !(kl.KLD > 0 && kl.KLD < 5) || kl.SameTop <= 0 || kl.SameTop >= 1 || kl.KLDPercentiles[0].Value < kl.KLD || kl.KLDPercentiles[10].Value > kl.KLD {
		t.Errorf("Q4_K vs F32: KLD %g ± %g, max %g, same top %g", kl.KLD, kl.KLDStderr, kl.KLDPercentiles[0].Value, kl.SameTop)
	}
	if math.Abs(kl.BasePPL-res.PPL) > 1e-4*res.PPL || math.Abs(kl.Ratio-qres.PPL/res.PPL) > 1e-4 {
		t.Errorf("base PPL %v (separate run %v), ratio %v", kl.BasePPL, res.PPL, kl.Ratio)
	}
	var buf bytes.Buffer
	if err := kl.WriteReport(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Mean    KLD:", "99.9%   KLD:", " 5.0%   KLD:", "RMS Δp    :", "Same top p:"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, buf.String())
		}
	}
	// Different vocabulary sizes are an error.
	other := newSynth(synthSpec{arch: "llama", vocab: 80, embd: 256, ffn: 256, layers: 1, heads: 4, kv: 2, hd: 64}, 1)
	if _, err := EvaluateTokens(context.Background(), base, tokens, true, 1, Options{Ctx: 32, KLBase: other.model(graph.FormatHF, graph.F32)}); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("vocabulary mismatch: err = %v", err)
	}
}

func TestMeanAndUncertainty(t *testing.T) {
	cases := []struct {
		sum, sum2 float64
		n         int
		f, df     float64
	}{
		{0, 0, 0, 0, 0},
		{10, 30, 5, 2, 0}, // n <= 10: no uncertainty
		{22, 70, 11, 2, math.Sqrt((70.0/11 - 4) / 10)}, // llama-perplexity's formula
	}
	for _, c := range cases {
		f, df := meanAndUncertainty(c.sum, c.sum2, c.n)
		if math.Abs(f-c.f) > 1e-12 || math.Abs(df-c.df) > 1e-12 {
			t.Errorf("meanAndUncertainty(%v,%v,%d) = %v,%v want %v,%v", c.sum, c.sum2, c.n, f, df, c.f, c.df)
		}
	}
	v := []float64{1, 2, 3, 4, 5}
	// In float32, as llama-perplexity computes it: 0.1f·4 = 0.4000000059…
	for _, c := range []struct {
		frac float32
		want float64
	}{{0, 1}, {1, 5}, {0.5, 3}, {0.1, float64(float32(0.6)*1 + float32(0.4)*2)}, {0.999, float64(float32(1-0.996)*4 + float32(0.996)*5)}} {
		if got := percentile(v, c.frac); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("percentile(%v) = %v, want %v", c.frac, got, c.want)
		}
	}
}

func TestTooFewTokens(t *testing.T) {
	w := newSynth(synthSpec{arch: "llama", vocab: 32, embd: 32, ffn: 32, layers: 1, heads: 2, kv: 2, hd: 16}, 2)
	_, err := EvaluateTokens(context.Background(), w.model(graph.FormatHF, graph.F32), make([]int, 63), true, 1, Options{Ctx: 32})
	if err == nil || !strings.Contains(err.Error(), "at least 64 tokens") {
		t.Errorf("err = %v", err)
	}
}
