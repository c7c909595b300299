package perplexity

import (
	"context"
	"testing"
)

// BenchmarkPerplexity evaluates the first 8 ctx-128 chunks of kjv_eval.txt
// on the HF bf16 checkpoint and reports evaluated tokens per second
// (compare: llama-perplexity -f kjv_eval.txt -c 128 -b 128 --chunks 8 -t N,
// see docs/benchmarks.md).
func BenchmarkPerplexity(b *testing.B) {
	m := loadKJV(b)
	toks := kjvTokens(b)
	opt := Options{Ctx: 128, Chunks: 8}
	var tps float64
	for b.Loop() {
		res, err := EvaluateTokens(context.Background(), m, toks, true, 1, opt)
		if err != nil {
			b.Fatal(err)
		}
		tps = res.TokensPerSecond
	}
	b.ReportMetric(tps, "tokens/s")
}
