//go:build refdata

package perplexity

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestLlamaPerplexityGGUF evaluates every llama-quantize GGUF of kjv-llama
// and compares with llama-perplexity's figures (ctx 128): the final PPL and
// every running value within 0.1%. QB_PPL_CHUNKS limits the chunks (then
// only the running values are compared).
func TestLlamaPerplexityGGUF(t *testing.T) {
	r := loadReference(t, testref.Shared(t, "reference.json"))
	toks := kjvTokens(t)
	chunks := 0
	if s := os.Getenv("QB_PPL_CHUNKS"); s != "" {
		chunks, _ = strconv.Atoi(s)
	}
	modes := []Activations{ActivationsAuto}
	if os.Getenv("QB_PPL_BOTH") != "" {
		modes = append(modes, ActivationsFloat32)
	}
	types := []string{"bf16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0", "Q3_K_M", "Q2_K"}
	if s := os.Getenv("QB_PPL_TYPES"); s != "" {
		types = strings.Split(s, ",")
	}
	for _, typ := range types {
		want, ok := r.LlamaPerplexity[typ]
		if !ok {
			t.Fatalf("reference.json has no llama_perplexity_ctx128 entry for %s", typ)
		}
		m := loadGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama."+typ+".gguf"))
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%s/act%d", typ, mode), func(t *testing.T) {
				res, err := EvaluateTokens(context.Background(), m, toks, true, 1, Options{Ctx: 128, Chunks: chunks, Activations: mode})
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i, v := range res.Running {
					worst = math.Max(worst, math.Abs(v-want.Running[i])/want.Running[i])
				}
				t.Logf("%s: PPL %.4f ± %.5f (llama-perplexity %.4f ± %.5f), worst running rel diff %.2e over %d chunks",
					typ, res.PPL, res.PPLStderr, want.PPL, want.Stderr, worst, len(res.Running))
				if worst > 1e-3 {
					t.Errorf("%s: running PPL differs from llama-perplexity by %.3g%% (> 0.1%%)", typ, 100*worst)
				}
				if chunks == 0 {
					if rel := math.Abs(res.PPL-want.PPL) / want.PPL; rel > 1e-3 {
						t.Errorf("%s: PPL %.4f, llama-perplexity %.4f (%.3g%% > 0.1%%)", typ, res.PPL, want.PPL, 100*rel)
					}
				}
			})
		}
		m.Close()
	}
}

var _ = filepath.Join
var _ graph.Format
