//go:build refdata

package perplexity

import (
	"context"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// BenchmarkPerplexityGGUF is BenchmarkPerplexity on the llama-quantize
// GGUF files of kjv-llama (llama.cpp activation rounding), 8 chunks.
func BenchmarkPerplexityGGUF(b *testing.B) {
	toks := kjvTokens(b)
	for _, typ := range []string{"bf16", "Q4_K_M", "Q8_0"} {
		m := loadGGUF(b, testref.Shared(b, "llama.cpp", "kjv-llama."+typ+".gguf"))
		b.Run(typ, func(b *testing.B) {
			var tps float64
			for b.Loop() {
				res, err := EvaluateTokens(context.Background(), m, toks, true, 1, Options{Ctx: 128, Chunks: 8})
				if err != nil {
					b.Fatal(err)
				}
				tps = res.TokensPerSecond
			}
			b.ReportMetric(tps, "tokens/s")
		})
	}
}
