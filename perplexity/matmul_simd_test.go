package perplexity

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
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

// TestExpSIMD checks expScaled (expAVX with the AVX2 kernels) and swiglu
// against math.Exp: within 2e-7 relative (a couple of float32 ulps) for
// inputs in [-87, 88], 0 (or the true subnormal value, in the Go code)
// below.
func TestExpSIMD(t *testing.T) {
	if !useSIMD {
		t.Logf("no SIMD kernels in this build or CPU: checking the portable code")
	}
	var src []float32
	for x := -100.0; x <= 88; x += 0.0137 {
		src = append(src, float32(x))
	}
	src = append(src, 0, -0.5, 0.5, float32(math.Log(2)/2), -87, 88, 1, 2, 3)
	for _, tc := range []struct{ scale, sub float32 }{{1, 0}, {2, 3}, {0.25, -1}} {
		dst := make([]float32, len(src))
		expScaled(dst, src, tc.scale, tc.sub)
		for i, x := range src {
			arg := float64(tc.scale)*float64(x) - float64(tc.sub)
			want := math.Exp(arg)
			if arg < -87 {
				if dst[i] > 1e-37 {
					t.Errorf("exp(%g) = %g, want ~0", arg, dst[i])
				}
				continue
			}
			if arg > 88 {
				continue
			}
			// The argument is rounded to float32 (once with FMA, twice in
			// Go): allow its rounding error on top of the exp's 2e-7.
			want = math.Exp(float64(float32(arg)))
			if d := math.Abs(float64(dst[i]) - want); d > (2e-7+1.2e-7*math.Abs(arg))*want {
				t.Errorf("exp(%g·%g-%g) = %g, want %g (rel %.2g)", tc.scale, x, tc.sub, dst[i], want, d/want)
			}
		}
	}
	g := make([]float32, 0, 67)
	for x := -40.0; len(g) < cap(g); x += 1.31 {
		g = append(g, float32(x))
	}
	u := make([]float32, len(g))
	for i := range u {
		u[i] = float32(i%7) - 3
	}
	want := make([]float64, len(g))
	for i, x := range g {
		want[i] = float64(x) / (1 + math.Exp(-float64(x))) * float64(u[i])
	}
	swiglu(g, u)
	for i := range g {
		if d := math.Abs(float64(g[i]) - want[i]); d > 5e-7*math.Abs(want[i])+1e-30 {
			t.Errorf("swiglu %d: %g, want %g", i, g[i], want[i])
		}
	}
}

// TestAttentionSIMD compares the blocked AVX2 attention with the portable
// one over several query blocks (T = 50, GQA).
func TestAttentionSIMD(t *testing.T) {
	w := newSynth(synthSpec{arch: "llama", vocab: 16, embd: 64, ffn: 32, layers: 1, heads: 4, kv: 2, hd: 16}, 3)
	fm, err := LoadModel(w.model(graph.FormatGGUF, graph.F32))
	if err != nil {
		t.Fatal(err)
	}
	const T = 50
	rng := rand.New(rand.NewPCG(5, 5))
	run := func(simd bool) []float32 {
		r := newRunner(fm, 2)
		qDim, kvDim := fm.Heads*fm.HeadDim, fm.KVHeads*fm.HeadDim
		rng = rand.New(rand.NewPCG(5, 5))
		fill := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(2 * rng.NormFloat64())
			}
			return v
		}
		r.q, r.k, r.v = fill(T*qDim), fill(T*kvDim), fill(T*kvDim)
		r.att = make([]float32, T*qDim)
		saved := useSIMD
		useSIMD = simd && saved
		r.attention(T)
		useSIMD = saved
		return r.att
	}
	got, want := run(true), run(false)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("att[%d] = %g, portable %g", i, got[i], want[i])
		}
	}
}
