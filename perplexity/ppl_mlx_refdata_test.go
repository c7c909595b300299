//go:build refdata

package perplexity

import (
	"context"
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestMLXOraclePerplexity evaluates the MLX-quantized kjv-llama checkpoints
// (mlx::core::quantize output) and compares with transformers' float32
// forward pass of MLX's own dequantization (reference.json
// mlx_oracle_transformers_fp32_ctx128) within 0.01%.
func TestMLXOraclePerplexity(t *testing.T) {
	r := loadReference(t, testref.Shared(t, "reference.json"))
	toks := kjvTokens(t)
	for _, name := range []string{"kjv-llama-int8-g64", "kjv-llama-int4-g64", "kjv-llama-int4-g32", "kjv-llama-int3-g64"} {
		want, ok := r.MLXOracle[name].(float64)
		if !ok {
			t.Fatalf("reference.json: no mlx_oracle_transformers_fp32_ctx128 figure for %s", name)
		}
		m := loadDir(t, testref.Shared(t, "mlx-oracle", name), graph.FormatMLX)
		res, err := EvaluateTokens(context.Background(), m, toks, true, 1, Options{Ctx: 128, Batch: 128})
		if err != nil {
			t.Fatal(err)
		}
		rel := math.Abs(res.PPL-want) / want
		t.Logf("%s: PPL %.6f, reference %.6f (rel %.2e)", name, res.PPL, want, rel)
		if rel > 1e-4 {
			t.Errorf("%s: PPL %.6f, reference %.6f: %.3g%% > 0.01%%", name, res.PPL, want, 100*rel)
		}
		m.Close()
	}
}
