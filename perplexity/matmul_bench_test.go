package perplexity

import (
	"fmt"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// BenchmarkMatMul compares the two ways of running a quantized weight:
// expanding tiles of rows inside the product (what the forward pass does)
// and expanding the whole matrix to float32 once at load. For a batch of
// 128 tokens (one ctx-128 chunk) the tile expansion is amortized over the
// batch, so both run at the speed of the float kernel, while expanding at
// load costs 4 bytes per weight of memory (8x a Q4_K model).
func BenchmarkMatMul(b *testing.B) {
	const rows, cols, nTok = 768, 256, 128
	w := newSynth(synthSpec{arch: "llama", vocab: rows, embd: cols, ffn: 256, layers: 1, heads: 1, kv: 1, hd: 256}, 3)
	for _, typ := range []graph.Type{graph.F32, graph.BF16, graph.Q8_0, graph.Q4_K, graph.Q6_K} {
		m := w.model(graph.FormatGGUF, typ)
		wt, err := newWeight(m.Tensor("token_embd.weight"))
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float32, nTok*cols)
		for i := range x {
			x[i] = float32(i%17) * 0.01
		}
		dst := make([]float32, nTok*rows)
		var sc scratch
		b.Run(fmt.Sprintf("%v/tiles", typ), func(b *testing.B) {
			for b.Loop() {
				matMul(dst, wt, x, nTok, 1, &sc)
			}
			b.ReportMetric(float64(b.N)*2*rows*cols*nTok/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		if typ != graph.F32 {
			full := &weight{name: wt.name, rows: rows, cols: cols, typ: graph.F32, f32: make([]float32, rows*cols)}
			b.Run(fmt.Sprintf("%v/at-load", typ), func(b *testing.B) {
				for b.Loop() {
					wt.dequantRows(full.f32, 0, rows)
					matMul(dst, full, x, nTok, 1, &sc)
				}
				b.ReportMetric(float64(b.N)*2*rows*cols*nTok/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
