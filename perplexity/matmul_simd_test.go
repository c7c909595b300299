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

// TestSwigluSIMD checks swiglu (swigluAVX's float32 exp with the AVX2
// kernels) against float64 math over the whole range where exp(-g) is a
// normal float32: within 5e-7 relative (a few float32 ulps).
func TestSwigluSIMD(t *testing.T) {
	if !useSIMD {
		t.Logf("no SIMD kernels in this build or CPU: checking the portable code")
	}
	var g, u []float32
	for x := -87.0; x <= 87; x += 0.0137 {
		g = append(g, float32(x))
		u = append(u, float32(len(u)%7)-3.5)
	}
	g = append(g, 0, -0.5, 0.5, float32(math.Log(2)/2), 1, 2, 3)
	u = append(u, 1, 1, 1, 1, 1, 1, 1)
	want := make([]float64, len(g))
	for i, x := range g {
		want[i] = float64(x) / (1 + math.Exp(-float64(x))) * float64(u[i])
	}
	swiglu(g, u)
	bad := 0
	for i := range g {
		if d := math.Abs(float64(g[i]) - want[i]); d > 5e-7*math.Abs(want[i]) && bad < 10 {
			bad++
			t.Errorf("swiglu %d: %g, want %g", i, g[i], want[i])
		}
	}
}

// TestAttentionSIMD compares attention with the AVX2 kernels (scores by
// dotAVX, values by axpyAVX) with the portable code over several query
// blocks (T = 50, GQA).
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
		r.rowN = T
		r.attention(r.q, r.att, r.k, r.v, 0, T)
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

// TestPVSIMD checks that pvAVX and axpyAVX round exactly as the Go loop
// (d = 8, 40 and 72 cover the 32-wide and 8-wide parts).
func TestPVSIMD(t *testing.T) {
	if !useSIMD {
		t.Logf("no SIMD kernels in this build or CPU: nothing to compare")
		return
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, d := range []int{8, 40, 72} {
		const n, ldv = 37, 80
		s := make([]float32, n)
		v := make([]float32, n*ldv)
		for i := range s {
			s[i] = float32(rng.Float64())
		}
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		inv := float32(1 / 7.3)
		want := make([]float32, d)
		for j := 0; j < n; j++ {
			p := s[j] * inv
			for i := range want {
				want[i] += p * v[j*ldv+i]
			}
		}
		got := make([]float32, d)
		pvAVX(&got[0], &s[0], inv, &v[0], ldv, n, d)
		got2 := make([]float32, d)
		for j := 0; j < n; j++ {
			axpy(got2, s[j]*inv, v[j*ldv:j*ldv+d])
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(got2[i]) != math.Float32bits(want[i]) {
				t.Fatalf("d %d: out[%d] pvAVX %g axpy %g, Go loop %g", d, i, got[i], got2[i], want[i])
			}
		}
	}
}

// TestExpNegSIMD checks expNeg against float32(math.Exp(float64(x − sub)))
// bit for bit on a million softmax-like inputs in [-130, 0].
func TestExpNegSIMD(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	const n = 1 << 20
	src := make([]float32, n)
	for i := range src {
		switch i % 4 {
		case 0:
			src[i] = float32(-130 * rng.Float64())
		case 1:
			src[i] = float32(-rng.Float64())
		case 2:
			src[i] = float32(-1e-6 * rng.Float64())
		default:
			src[i] = float32(-20 * rng.Float64())
		}
	}
	src[0], src[1], src[2] = 0, -120, -103.9
	const sub = 0.75
	for i := range src {
		src[i] += sub
	}
	got := append([]float32(nil), src...)
	expNeg(got, sub)
	bad := 0
	for i, x := range src {
		want := float32(math.Exp(float64(x - sub)))
		if math.Float32bits(got[i]) != math.Float32bits(want) {
			if bad++; bad <= 5 {
				t.Errorf("exp(%g − %g) = %g, float32(math.Exp) %g", x, float32(sub), got[i], want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d differ", bad, n)
	}
}

// TestScoresSIMD checks scoresAVX against dot bit for bit.
func TestScoresSIMD(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	if useSIMD {
		for _, d := range []int{8, 32, 40, 64, 136} {
			const n, ldk = 29, 160
			q := make([]float32, d)
			k := make([]float32, n*ldk)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			for i := range k {
				k[i] = float32(rng.NormFloat64())
			}
			s := make([]float32, n)
			scoresAVX(&s[0], &q[0], &k[0], ldk, n, d)
			for j := range s {
				if want := dot(q, k[j*ldk:]); math.Float32bits(s[j]) != math.Float32bits(want) {
					t.Fatalf("d %d: score %d = %g, dot %g", d, j, s[j], want)
				}
			}
		}
	}
}

// TestRoundSIMD checks that roundQ8_0 and roundQ8_K give the same bits
// with the AVX2 kernels as with the Go loops, on random blocks including
// ties (x·id exactly k+0.5) and the clamp at +127.
func TestRoundSIMD(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 17))
	x := make([]float32, 256*64)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = float32(rng.NormFloat64())
		case 1:
			x[i] = float32(int(rng.IntN(255))-127) / 2 // halves: ties
		default:
			x[i] = float32(rng.NormFloat64() * 1e-3)
		}
	}
	for _, k := range []actKind{actQ8_0, actQ8_K} {
		got := make([]float32, len(x))
		roundActivations(got, x, len(x), k)
		saved := useSIMD
		useSIMD = false
		want := make([]float32, len(x))
		roundActivations(want, x, len(x), k)
		useSIMD = saved
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("kind %d: element %d (%g): %g, Go %g", k, i, x[i], got[i], want[i])
			}
		}
	}
}
