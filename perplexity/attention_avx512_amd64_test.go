//go:build amd64 && !purego

package perplexity

// The attention kernels as dispatch picks them (AVX-512 where the CPU has
// it, as the tinyBLAS tile test does) against their portable Go
// definitions, bit for bit.

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// requireAttnKernels turns on the SIMD kernels (failing without AVX2/FMA)
// and the AVX-512 ones where the CPU has them, even under
// QUANTBRIDGE_PUREGO.
func requireAttnKernels(t *testing.T) {
	t.Helper()
	requireSIMD(t)
	old := useAVX512
	useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	t.Cleanup(func() { useAVX512 = old })
	t.Logf("AVX-512 kernels: %v", useAVX512)
}

// expArgs returns arguments for ggml_v_expf: every 997th float32 bit
// pattern (both signs, subnormals, ±Inf, NaNs), the ranges where the
// result is subnormal or zero (x < −88, < −104, n near ±192), overflow,
// zeros, and ordinary scores.
func expArgs(rng *rand.Rand) []float32 {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += 997 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for range 1 << 16 {
		xs = append(xs,
			float32(-88-rng.Float64()*70),  // subnormal and zero results
			float32(-104-rng.Float64()*40), // below the smallest subnormal
			float32(-128-rng.Float64()*10), // |n| near 192
			float32(88+rng.Float64()*60),   // overflow
			float32(rng.NormFloat64()*4),
			-float32(rng.ExpFloat64()*8))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 1e30, -1e30, 0x1.0p-149, -0x1.0p-149, 133.08, -133.08, 133.2, -133.2)
	for len(xs)%faTileKV != 0 {
		xs = append(xs, float32(math.Inf(-1)))
	}
	return xs
}

// TestFaTileExpKernel checks p = ggml_v_expf(p − M) over a tile and the
// float64 sum of its reduce16 groups.
func TestFaTileExpKernel(t *testing.T) {
	requireAttnKernels(t)
	rng := rand.New(rand.NewPCG(3, 4))
	xs := expArgs(rng)
	rng.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	// Whole tiles of softmax arguments, whose sums depend on the order of
	// the reduction.
	for range 8192 * faTileKV {
		xs = append(xs, -float32(rng.ExpFloat64()*3))
	}
	got, want := make([]float32, faTileKV), make([]float32, faTileKV)
	for i := 0; i < len(xs); i += faTileKV {
		for _, M := range []float32{0, 3.5, -7.25} {
			if M != 0 && i%(faTileKV*64) != 0 {
				continue
			}
			copy(got, xs[i:])
			copy(want, xs[i:])
			gs, ws := faTileExp(got, M), faTileExpGo(want, M)
			for j := range got {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("vexpf(%x − %v) = %x, Go %x", xs[i+j], M, got[j], want[j])
				}
			}
			if math.Float64bits(gs) != math.Float64bits(ws) && !(gs != gs && ws != ws) {
				t.Fatalf("tile at %d, M %v: sum %x, Go %x", i, M, gs, ws)
			}
		}
	}
}

// TestFaTileScoresKernel checks a tile's scaled, masked scores and their
// maximum, with partial masks, NaN scores and zero maxima of either sign.
func TestFaTileScoresKernel(t *testing.T) {
	requireAttnKernels(t)
	rng := rand.New(rand.NewPCG(8, 9))
	got, want := make([]float32, faTileKV), make([]float32, faTileKV)
	for i := range 1500 {
		D := 16 * (1 + rng.IntN(10))
		q := make([]float32, D)
		kt := make([]float32, D*faTileKV)
		for j := range q {
			q[j] = float32(rng.NormFloat64())
		}
		for j := range kt {
			kt[j] = roundF16(float32(rng.NormFloat64()))
		}
		lo := rng.IntN(faTileKV)
		hi := lo + 1 + rng.IntN(faTileKV-lo)
		if i%4 == 0 {
			lo, hi = 0, faTileKV
		}
		scale := float32(1 / math.Sqrt(float64(D)))
		switch i % 50 {
		case 1:
			q[rng.IntN(D)] = float32(math.NaN())
		case 2:
			clear(q) // maximum +0
		case 3:
			clear(q)
			scale = -scale // maximum −0
		case 4:
			q[0] = 1e30 // ±Inf scores
			kt[lo] = 65504
		}
		gm := faTileScores(got, q, kt, scale, lo, hi)
		wm := faTileScoresGo(want, q, kt, scale, lo, hi)
		if math.Float32bits(gm) != math.Float32bits(wm) && !(gm != gm && wm != wm) {
			t.Fatalf("case %d (D %d, keys %d..%d): max %x, Go %x", i, D, lo, hi, gm, wm)
		}
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(want[j]) && !(got[j] != got[j] && want[j] != want[j]) {
				t.Fatalf("case %d (D %d, keys %d..%d): p[%d] = %x, Go %x", i, D, lo, hi, j, got[j], want[j])
			}
		}
	}
}

// TestFaTilePVKernel checks the PV update against its fma chain.
func TestFaTilePVKernel(t *testing.T) {
	requireAttnKernels(t)
	rng := rand.New(rand.NewPCG(10, 11))
	for _, D := range []int{16, 48, 64, 128, 208} {
		for _, n := range []int{1, 7, 64} {
			ldv := D + 16*rng.IntN(3)
			p := make([]float32, n)
			v := make([]float32, (n-1)*ldv+D)
			out := make([]float32, D)
			for i := range p {
				p[i] = float32(rng.Float64())
			}
			for i := range v {
				v[i] = roundF16(float32(rng.NormFloat64()))
			}
			for i := range out {
				out[i] = float32(rng.NormFloat64())
			}
			want := append([]float32(nil), out...)
			for j := range p {
				for d := range want {
					want[d] = fma32(p[j], v[j*ldv+d], want[d])
				}
			}
			faTilePV(out, p, v, ldv)
			for d := range out {
				if out[d] != want[d] {
					t.Fatalf("D %d, n %d: out[%d] = %x, fma chain %x", D, n, d, out[d], want[d])
				}
			}
		}
	}
}

// TestSwigluGGMLKernel checks silu(g)·u with ggml_v_expf on groups of 16
// and expf on the tail, for row lengths that are not multiples of 16.
func TestSwigluGGMLKernel(t *testing.T) {
	requireAttnKernels(t)
	rng := rand.New(rand.NewPCG(12, 13))
	xs := expArgs(rng)
	for _, n := range []int{5, 16, 17, 31, 64, 100, len(xs) - 3} {
		for off := 0; off+n <= len(xs); off += max(n, len(xs)/8) {
			g := append([]float32(nil), xs[off:off+n]...)
			u := make([]float32, n)
			for i := range u {
				u[i] = float32(rng.NormFloat64())
			}
			want := append([]float32(nil), g...)
			swigluGGMLGo(want, u)
			swigluGGML(g, u)
			for i := range g {
				if math.Float32bits(g[i]) != math.Float32bits(want[i]) && !(g[i] != g[i] && want[i] != want[i]) {
					t.Fatalf("n %d: swiglu(%x, %x) = %x, Go %x", n, xs[off+i], u[i], g[i], want[i])
				}
			}
		}
	}
}

// TestOneChunkF16Kernels checks ocMadF16 and ocScaleF16 against the scalar
// loops of ocMad and ocScale (fma or product rounded to float32, then to
// fp16 by quantize.FP32ToFP16) on accumulators of fp16 values, weights
// drawn so that results cross fp16's subnormal range and its largest
// finite value, and lengths with and without a scalar tail.
func TestOneChunkF16Kernels(t *testing.T) {
	if !requireAVX512(t) {
		return
	}
	rng := rand.New(rand.NewPCG(41, 43))
	f16 := func(scale float64) float32 { return roundF16(float32(rng.NormFloat64() * scale)) }
	for trial := 0; trial < 300; trial++ {
		n := 16 * (1 + rng.IntN(8))
		scale := math.Ldexp(1, rng.IntN(40)-24)
		acc, v := make([]float32, n), make([]float32, n)
		for i := range acc {
			acc[i], v[i] = f16(scale), f16(scale)
		}
		s := float32(rng.Float64() * 2)
		if trial%7 == 0 {
			s = float32(math.Ldexp(1, rng.IntN(30)-15))
		}
		want := append([]float32(nil), acc...)
		for d := range want {
			want[d] = roundF16(fma32(v[d], s, want[d]))
		}
		got := append([]float32(nil), acc...)
		ocMadF16(&got[0], &v[0], s, n)
		for d := range got {
			if math.Float32bits(got[d]) != math.Float32bits(want[d]) {
				t.Fatalf("trial %d: ocMadF16[%d] = %g, scalar %g (acc %g, v %g, s %g)", trial, d, got[d], want[d], acc[d], v[d], s)
			}
		}
		for d := range want {
			want[d] = roundF16(acc[d] * s)
		}
		got = append(got[:0], acc...)
		ocScaleF16(&got[0], s, n)
		for d := range got {
			if math.Float32bits(got[d]) != math.Float32bits(want[d]) {
				t.Fatalf("trial %d: ocScaleF16[%d] = %g, scalar %g (acc %g, s %g)", trial, d, got[d], want[d], acc[d], s)
			}
		}
	}
}
