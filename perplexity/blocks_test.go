package perplexity

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// TestBlockedPositions checks that running the MLP a block of positions
// at a time (ffnBlock) and taking the logits a block at a time
// (logitBlock, a multiple of 4) gives the bits of one batch: the logits of forward for each
// weight type's llama.cpp order (a token count that is not a multiple of
// 4, so the repacked K-quant GEMM/GEMV split is crossed), and
// EvaluateTokens' running perplexities and KL statistics.
func TestBlockedPositions(t *testing.T) {
	w := newSynth(synthSpec{arch: "llama", vocab: 64, embd: 256, ffn: 256, layers: 2, heads: 4, kv: 2, hd: 64}, 11)
	tokens := make([]int, 23)
	for i := range tokens {
		tokens[i] = (i*37 + 5) % 64
	}
	savedFFN, savedLogit, savedBudget := ffnBlock, logitBlock, expandBudget
	defer func() { ffnBlock, logitBlock, expandBudget = savedFFN, savedLogit, savedBudget }()
	expandBudget = 0 // the tile kernels, not weights expanded at load
	for _, typ := range []graph.Type{graph.F16, graph.BF16, graph.Q8_0, graph.Q4_K, graph.Q6_K} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			m, err := LoadModel(w.model(graph.FormatGGUF, typ))
			if err != nil {
				t.Fatal(err)
			}
			m.activations = true
			logits := func(ffn int) []float32 {
				ffnBlock = ffn
				a, err := newRunner(m, 2).forward(tokens, 3)
				if err != nil {
					t.Fatal(err)
				}
				return append([]float32(nil), a...)
			}
			want, got := logits(1024), logits(8)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("ffnBlock 8: logit %d = %v, one batch %v", i, got[i], want[i])
				}
			}
			ffnBlock = savedFFN
		})
	}
	q, base := w.model(graph.FormatGGUF, graph.Q4_K), w.model(graph.FormatGGUF, graph.Q8_0)
	eval := func(block int) *Result {
		logitBlock = block
		res, err := EvaluateTokens(context.Background(), q, append(tokens, tokens...), true, 1, Options{Ctx: 22, Threads: 2, KLBase: base})
		if err != nil {
			t.Fatal(err)
		}
		res.Seconds, res.TokensPerSecond = 0, 0
		return res
	}
	want, got := eval(512), eval(4)
	if want.KL == nil || want.PPL == 0 {
		t.Fatalf("no result: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("logitBlock 4:\n%+v\n%+v\none block:\n%+v\n%+v", got, got.KL, want, want.KL)
	}
}
