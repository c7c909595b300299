package perplexity

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
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

// BenchmarkMatMulHalf times F16 and BF16 weights of a 1B model (the
// attention's 2048×2048, the feed-forward's 5632×2048 and 2048×5632) times
// a ctx-512 batch in llama.cpp's order on one thread: "16bit" multiplies
// the stored rows by the 16-bit kernels where the CPU has them (see
// setHalves), "f32tiles" expands each tile of rows to float32 and runs
// the float32 kernel (the path without them). Reports GFLOP/s (2 per
// weight and token).
func BenchmarkMatMulHalf(b *testing.B) {
	const nTok = 512
	rng := rand.New(rand.NewPCG(3, 5))
	for _, shape := range []struct{ rows, k int }{{2048, 2048}, {5632, 2048}, {2048, 5632}} {
		rows, k := shape.rows, shape.k
		x := make([]float32, nTok*k)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		src := make([]float32, k)
		for _, typ := range []graph.Type{graph.F16, graph.BF16} {
			w := &weight{name: typ.String(), rows: rows, cols: k, typ: typ, rowBytes: 2 * k, raw: make([]byte, 2*k*rows)}
			for r := 0; r < rows; r++ {
				for i := range src {
					src[i] = float32(rng.NormFloat64())
				}
				if err := quantize.FromFloat32(w.raw[r*2*k:(r+1)*2*k], src, typ); err != nil {
					b.Fatal(err)
				}
			}
			for _, half := range []bool{true, false} {
				var act actCache
				j := mulJob{dst: make([]float32, nTok*rows), w: w}
				j.x = act.rounded(typ, x, k)
				j.order = llamaDotOrder(w, nTok, false)
				name := "f32tiles"
				if half {
					if !act.setHalves(&j, nTok) {
						continue // no 16-bit kernels on this CPU
					}
					name = "16bit"
				} else if j.order == orderTinyBLASBF16 && useSIMD {
					permuteDPBF16(j.x)
				}
				var sc scratch
				b.Run(fmt.Sprintf("%v/%dx%d/%s", typ, rows, k, name), func(b *testing.B) {
					for b.Loop() {
						matMulJobs([]mulJob{j}, nTok, 1, &sc)
					}
					b.ReportMetric(float64(b.N)*2*float64(rows*k*nTok)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
