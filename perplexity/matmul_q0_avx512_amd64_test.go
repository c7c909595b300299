//go:build amd64 && !purego

package perplexity

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// q0dotLanes is the definition the Q8_0-activation kernels reproduce
// (ggml_vec_dot_q8_0_q8_0's AVX2 order, as mulTileQ0's portable loop
// writes it): per block the eight int32 sums of four code products, each
// fused into its float32 lane with the scale product dw·dx, then
// hsum_float_8.
func q0dotLanes(w, x []int8, dw, dx []float32) float32 {
	var acc [8]float32
	for b := range dw {
		d := dw[b] * dx[b]
		for m := range acc {
			var s int32
			for i := 32*b + 4*m; i < 32*b+4*m+4; i++ {
				s += int32(w[i]) * int32(x[i])
			}
			acc[m] = fma32(d, float32(s), acc[m])
		}
	}
	return reduce8(&acc)
}

// q80Weight is a rows×k Q8_0 weight of uniform codes in [-127, 127] and
// fp16 scales of random mantissas, so that the lanes' int32 sums and
// their products with the scales use most of float32's precision.
func q80Weight(rng *rand.Rand, rows, k int) *weight {
	rs := k / 32 * 34
	w := &weight{name: "Q8_0", rows: rows, cols: k, typ: graph.Q8_0, rowBytes: rs, raw: make([]byte, rs*rows)}
	for b := 0; b < len(w.raw); b += 34 {
		binary.LittleEndian.PutUint16(w.raw[b:], 0x1c00|uint16(rng.IntN(0x800))) // [2^-8, 2^-6)
		for i := 2; i < 34; i++ {
			w.raw[b+i] = byte(rng.IntN(255) - 127)
		}
	}
	return w
}

// TestQ0Dot4x4 checks the four-row kernels (q0dot4x4, q0dot4x8 and their
// raw forms) output by output against q0dotLanes: four rows taken from
// the middle of a weight (row stride the row's bytes; codes and scales
// from a decoded tile) by four or eight tokens taken from the middle of
// a batch, into a destination wider than the four rows whose other
// entries must stay untouched. The expected values are distinct (a
// swapped row or token shows) and some differ from the block-by-block
// scalar order (the comparison sees the order of the float32 additions,
// not only the products).
func TestQ0Dot4x4(t *testing.T) {
	requireSIMD(t)
	if !useQ0VNNI {
		// mulTileQ0SIMD selects them only with useQ0VNNI; TestQ0TileSIMD
		// runs its other kernels on this CPU.
		t.Log("this CPU lacks AVX512_VNNI: the four-row kernels are never selected here")
		return
	}
	type kernel func(w *weight, qt *q0Tile, r0 int, a *q8Blocks, t0, k, nb int, dst []float32, ldd int)
	kernels := []struct {
		name string
		nt   int
		f    kernel
	}{
		{"q0dot4x4", 4, func(w *weight, qt *q0Tile, r0 int, a *q8Blocks, t0, k, nb int, dst []float32, ldd int) {
			q0dot4x4(&qt.q[0], &qt.d[0], &a.u[t0*k], k, &a.d[t0*nb], nb, &dst[0], ldd)
		}},
		{"q0dot4x4raw", 4, func(w *weight, qt *q0Tile, r0 int, a *q8Blocks, t0, k, nb int, dst []float32, ldd int) {
			q0dot4x4raw(&w.raw[r0*w.rowBytes], w.rowBytes, &a.u[t0*k], k, &a.d[t0*nb], nb, &dst[0], ldd)
		}},
		{"q0dot4x8", 8, func(w *weight, qt *q0Tile, r0 int, a *q8Blocks, t0, k, nb int, dst []float32, ldd int) {
			q0dot4x8(&qt.q[0], &qt.d[0], &a.u[t0*k], k, &a.d[t0*nb], nb, &dst[0], ldd)
		}},
		{"q0dot4x8raw", 8, func(w *weight, qt *q0Tile, r0 int, a *q8Blocks, t0, k, nb int, dst []float32, ldd int) {
			q0dot4x8raw(&w.raw[r0*w.rowBytes], w.rowBytes, &a.u[t0*k], k, &a.d[t0*nb], nb, &dst[0], ldd)
		}},
	}
	rng := rand.New(rand.NewPCG(23, 29))
	for _, k := range []int{32, 96, 1024} {
		const rows, nTok, r0, t0, ldd = 6, 11, 1, 2, 7
		nb := k / 32
		w := q80Weight(rng, rows, k)
		var qt q0Tile
		qt.decode(w, r0, r0+4, nil)
		x := make([]float32, nTok*k)
		for i := range x {
			x[i] = 2*rng.Float32() - 1
		}
		a := new(q8Blocks)
		if !a.quantize(x, 1) {
			t.Fatal("quantize failed")
		}
		want := make([]float32, 8*4)
		seen := map[float32]bool{}
		scalarOrder := 0
		for tt := range 8 {
			xt := (t0 + tt) * k
			xq, xd := a.q[xt:xt+k], a.d[xt/32:xt/32+nb]
			for r := range 4 {
				wr := &qt.rows[r]
				v := q0dotLanes(wr.q, xq, wr.d, xd)
				if seen[v] {
					t.Fatalf("k %d: expected outputs repeat (%v)", k, v)
				}
				seen[v] = true
				want[tt*4+r] = v
				var s float32
				for b := range nb {
					var isum int32
					for i := 32 * b; i < 32*b+32; i++ {
						isum += int32(wr.q[i]) * int32(xq[i])
					}
					s = fma32(float32(isum), wr.d[b]*xd[b], s)
				}
				if s != v {
					scalarOrder++
				}
			}
		}
		t.Logf("k %d: %d of 32 outputs differ from the scalar order", k, scalarOrder)
		if scalarOrder == 0 {
			t.Errorf("k %d: no output depends on the order of the additions", k)
		}
		for _, kn := range kernels {
			dst := make([]float32, (t0+kn.nt+1)*ldd)
			for i := range dst {
				dst[i] = float32(math.NaN())
			}
			kn.f(w, &qt, r0, a, t0, k, nb, dst[t0*ldd+r0:], ldd)
			for i, v := range dst {
				tt, r := i/ldd-t0, i%ldd-r0
				if tt < 0 || tt >= kn.nt || r < 0 || r >= 4 {
					if !math.IsNaN(float64(v)) {
						t.Errorf("k %d %s: dst[%d] (outside the %d×4 block) written: %v", k, kn.name, i, kn.nt, v)
					}
					continue
				}
				if math.Float32bits(v) != math.Float32bits(want[tt*4+r]) {
					t.Errorf("k %d %s: token %d row %d = %v (%#x), want %v (%#x)", k, kn.name, tt, r, v, math.Float32bits(v), want[tt*4+r], math.Float32bits(want[tt*4+r]))
				}
			}
		}
	}
}

// TestQ0Mins16 checks q0mins16 against the chain of fma32 that
// mulTileQ0's portable loop sums the minimum terms with (m and s fp16
// values, as Q4_1/Q5_1 minimums and Q8_1 block sums are), for row counts
// below 16 with every lane of mt set: the masked-out rows of dst must
// stay untouched. Some sums differ in the reverse block order (the
// products of fp16 values are exact in float32: only the order of the
// additions can differ).
func TestQ0Mins16(t *testing.T) {
	requireSIMD(t)
	if !useAVX512 {
		t.Log("this CPU lacks AVX-512: q0mins16 is never selected here (TestQ0TileSIMD runs the Go minimum terms)")
		return
	}
	rng := rand.New(rand.NewPCG(31, 37))
	f16 := func() float32 { return quantize.FP16ToFP32(uint16(rng.IntN(0x7800))) * float32(1-2*rng.IntN(2)) }
	const nb, nt, ldd = 40, 5, 19
	mt := make([]float32, 16*nb)
	for i := range mt {
		mt[i] = f16()
	}
	s := make([]float32, nt*nb)
	for i := range s {
		s[i] = f16()
	}
	reordered := 0
	for _, nr := range []int{16, 13, 1} {
		dst := make([]float32, nt*ldd)
		for i := range dst {
			dst[i] = float32(i) - 0.25
		}
		want := append([]float32(nil), dst...)
		for tt := range nt {
			for i := range nr {
				var sum, back float32
				for b := range nb {
					sum = fma32(mt[16*b+i], s[tt*nb+b], sum)
					back = fma32(mt[16*(nb-1-b)+i], s[tt*nb+nb-1-b], back)
				}
				if sum != back {
					reordered++
				}
				want[tt*ldd+1+i] += sum
			}
		}
		q0mins16(&dst[1], ldd, &mt[0], &s[0], nb, nt, uint16(1<<nr-1))
		for i, v := range dst {
			if math.Float32bits(v) != math.Float32bits(want[i]) {
				t.Errorf("%d rows: dst[%d] (token %d, column %d) = %v, want %v", nr, i, i/ldd, i%ldd, v, want[i])
			}
		}
	}
	if reordered == 0 {
		t.Error("no sum tells block order from the reverse order")
	}
}
