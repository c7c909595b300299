//go:build amd64 && !purego

package perplexity

import (
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// BenchmarkKRepackTile times kRepack16x4z alone (one 16-row tile of a
// 2048-column Q4_K weight against 64 tokens that stay in cache: the
// kernel's own rate, in GFLOP/s) and kTileZ.arrange (per tile).
func BenchmarkKRepackTile(b *testing.B) {
	if !useKRepackZ {
		b.Skip("this CPU lacks AVX512_VNNI")
	}
	const k, nTok = 2048, 64
	nb := k / 256
	rng := rand.New(rand.NewPCG(1, 2))
	w := kquantWeight(b, rng, graph.Q4_K, 16, k)
	x := make([]float32, nTok*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	a := newQ8KBlocks(x)
	a.makeQuads(k)
	z := new(kTileZ)
	z.arrange(w, 0, 16)
	dst := make([]float32, nTok*16)
	b.Run("kernel", func(b *testing.B) {
		for b.Loop() {
			for q := 0; q < nTok/4; q++ {
				kRepack16x4z(&z.wq[0], &z.sc[0], &z.mnp[0], &z.wd[0], &z.wdm[0], &a.q[4*q*k], k, &a.xdq[q*nb*4], &a.bsq[q*nb*64], nb, 2, 0, &dst[4*q*16], 16, 0xffff)
			}
		}
		b.ReportMetric(float64(b.N)*2*16*k*nTok/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("arrange", func(b *testing.B) {
		for b.Loop() {
			z.arrange(w, 0, 16)
		}
	})
}
