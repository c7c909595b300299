package perplexity

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// BenchmarkMatMulExact times one matrix product in llama.cpp's order (the
// GGUF path's kernels) on a 1B-model-sized weight (2048 columns) and a
// ctx-512 batch, with the kernels this machine selects
// (QUANTBRIDGE_PUREGO=1: the portable ones), and reports GFLOP/s (2 per
// weight and token).
func BenchmarkMatMulExact(b *testing.B) {
	const rows, k, nTok = 256, 2048, 512
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, nTok*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	src := make([]float32, rows*k)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	for _, typ := range []graph.Type{graph.F16, graph.BF16, graph.Q8_0, graph.Q5_0, graph.Q4_1, graph.Q4_K, graph.Q6_K, graph.Q5_K} {
		rs, err := graph.RowSize(typ, k)
		if err != nil {
			b.Fatal(err)
		}
		w := &weight{name: typ.String(), rows: rows, cols: k, typ: typ, rowBytes: int(rs), raw: make([]byte, int(rs)*rows)}
		for r := 0; r < rows; r++ {
			if err := quantize.FromFloat32(w.raw[r*int(rs):(r+1)*int(rs)], src[r*k:(r+1)*k], typ); err != nil {
				b.Fatal(err)
			}
		}
		var act actCache
		j := mulJob{dst: make([]float32, nTok*rows), w: w}
		j.x = act.rounded(typ, x, k)
		j.order = llamaDotOrder(w, nTok, false)
		if j.order == orderTinyBLASBF16 && useSIMD {
			permuteDPBF16(j.x)
		}
		switch {
		case j.order == orderQ0:
			j.q8, j.q8s = act.q8Blocks(j.x), act.q81s
		case j.order.q8K():
			j.q8K = act.q8K
			j.gemvFrom = nTok - nTok%4
		}
		var sc scratch
		b.Run(fmt.Sprintf("%v", typ), func(b *testing.B) {
			for b.Loop() {
				matMulJobs([]mulJob{j}, nTok, 1, &sc)
			}
			b.ReportMetric(float64(b.N)*2*rows*k*nTok/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
