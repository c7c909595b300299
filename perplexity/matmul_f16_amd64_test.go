//go:build amd64 && !purego

package perplexity

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// TestHalfKernels checks the 16-bit kernels (F16 weights by VCVTPH2PS and
// fused multiply-adds, BF16 weights by VDPBF16PS), run through matMulJobs
// on the stored rows, against the definitions of orderTinyBLAS16 and
// orderTinyBLASBF16 bit for bit: token counts that leave every tail of
// the six-token kernel, row counts that are multiples of 4 but not of the
// 16-row tile, and k not a multiple of 32 for F16.
func TestHalfKernels(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(61, 67))
	for _, typ := range []graph.Type{graph.F16, graph.BF16} {
		order, have := orderTinyBLAS16, useAVX512
		if typ == graph.BF16 {
			order, have = orderTinyBLASBF16, useAVX512BF16
		}
		if !have {
			t.Logf("%v: this CPU lacks the kernel's instructions (AVX-512 %v, AVX512_BF16 %v); not tested", typ, useAVX512, useAVX512BF16)
			continue
		}
		for _, s := range []struct{ rows, k, nTok int }{
			{4, 16, 2}, {8, 48, 7}, {4, 96, 5}, {12, 64, 6}, {20, 512, 13},
			{16, 2048, 12}, {36, 256, 11}, {24, 1024, 31}, {8, 5632, 9},
		} {
			if s.k%32 != 0 && typ == graph.BF16 {
				continue // the order needs whole 32-element steps
			}
			w := kquantWeight(t, rng, typ, s.rows, s.k)
			rows := make([]float32, s.rows*s.k)
			w.dequantRows(rows, 0, s.rows)
			x := make([]float32, s.nTok*s.k)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(9)-4)))
			}
			var c actCache
			c.threads = 2
			xr := c.rounded(typ, x, s.k)
			dst := make([]float32, s.nTok*s.rows)
			j := mulJob{dst: dst, w: w, x: xr, order: llamaDotOrder(w, s.nTok, false)}
			if j.order != order || !c.setHalves(&j, s.nTok) {
				t.Fatalf("%v %v: order %d, 16-bit kernels %v: want order %d on them", typ, s, j.order, j.x16 != nil, order)
			}
			matMulJobs([]mulJob{j}, s.nTok, 2, &scratch{})
			for tt := 0; tt < s.nTok; tt++ {
				for r := 0; r < s.rows; r++ {
					want := order.dot(rows[r*s.k:(r+1)*s.k], xr[tt*s.k:(tt+1)*s.k])
					if got := dst[tt*s.rows+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%v %v: [token %d, row %d] = %v (%#x), want %v (%#x)", typ, s, tt, r, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
			if dst[0] == 0 || dst[len(dst)-1] == 0 {
				t.Fatalf("%v %v: zero outputs", typ, s)
			}
		}
	}
}

// TestHalfKernelsDispatch checks which jobs go to the 16-bit kernels: not
// expanded (float32) weights, not a row count that is no multiple of 4,
// not routed experts (orderVecBF16), not one token.
func TestHalfKernelsDispatch(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(7, 1))
	w := kquantWeight(t, rng, graph.F16, 8, 64)
	wb := kquantWeight(t, rng, graph.BF16, 8, 64)
	odd := kquantWeight(t, rng, graph.F16, 6, 64)
	exp := &weight{name: "f32", rows: 8, cols: 64, typ: graph.F16, f32: make([]float32, 8*64)}
	for _, c := range []struct {
		w    *weight
		nTok int
		id   bool
		want bool
	}{
		{w, 4, false, useAVX512},
		{w, 1, false, false},
		{odd, 4, false, false},
		{exp, 4, false, false},
		{wb, 4, false, useAVX512BF16},
		{wb, 4, true, false},
	} {
		j := mulJob{w: c.w, order: llamaDotOrder(c.w, c.nTok, c.id)}
		if got := halfKernel(&j); got != c.want {
			t.Errorf("%v %d×%d, %d tokens, id %v: 16-bit kernels %v, want %v", c.w.typ, c.w.rows, c.w.cols, c.nTok, c.id, got, c.want)
		}
	}
}
