package perplexity

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatMulSIMD checks the AVX2 kernels (matMul's tiles, dot) against the
// portable Go kernels on shapes that exercise every remainder: tokens not a
// multiple of 3, rows not a multiple of 4, k not a multiple of 64 or 32.
// The two differ in float summation order only (and FMA rounding), so they
// agree to a few ulps of the sum of |products|.
func TestMatMulSIMD(t *testing.T) {
	if !useSIMD {
		t.Logf("no SIMD kernels in this build or CPU: comparing the portable code with itself")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct{ rows, k, nTok int }{
		{1, 8, 1}, {4, 8, 3}, {5, 16, 2}, {7, 24, 4}, {16, 256, 7}, {19, 72, 5}, {33, 768, 10}, {3, 12, 2},
	} {
		w := &weight{rows: tc.rows, cols: tc.k, f32: make([]float32, tc.rows*tc.k)}
		x := make([]float32, tc.nTok*tc.k)
		for i := range w.f32 {
			w.f32[i] = float32(rng.NormFloat64())
		}
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		got := make([]float32, tc.nTok*tc.rows)
		want := make([]float32, tc.nTok*tc.rows)
		var sc scratch
		matMul(got, w, x, tc.nTok, 2, &sc)
		saved := useSIMD
		useSIMD = false
		matMul(want, w, x, tc.nTok, 2, &sc)
		useSIMD = saved
		for tt := 0; tt < tc.nTok; tt++ {
			for r := 0; r < tc.rows; r++ {
				var exact, mag float64
				for i := 0; i < tc.k; i++ {
					p := float64(x[tt*tc.k+i]) * float64(w.f32[r*tc.k+i])
					exact += p
					mag += math.Abs(p)
				}
				tol := 1e-6 * mag
				g, wv := got[tt*tc.rows+r], want[tt*tc.rows+r]
				if math.Abs(float64(g)-exact) > tol || math.Abs(float64(wv)-exact) > tol {
					t.Errorf("rows %d k %d tokens %d: [%d,%d] SIMD %g, Go %g, float64 %g", tc.rows, tc.k, tc.nTok, tt, r, g, wv, exact)
				}
			}
			d := dot(x[tt*tc.k:(tt+1)*tc.k], w.f32[:tc.k])
			var exact, mag float64
			for i := 0; i < tc.k; i++ {
				p := float64(x[tt*tc.k+i]) * float64(w.f32[i])
				exact += p
				mag += math.Abs(p)
			}
			if math.Abs(float64(d)-exact) > 1e-6*mag {
				t.Errorf("dot k %d: %g, float64 %g", tc.k, d, exact)
			}
		}
	}
}
