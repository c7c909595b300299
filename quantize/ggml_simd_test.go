package quantize

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
)

// simdTestRow returns nb super-blocks (256 values each) of hostile data:
// every 16-value chunk (or, for some super-blocks, the whole super-block)
// is one of: Gaussian of a random magnitude, a coarse grid (ties in every
// comparison and in nearest_int), zeros of both signs, a constant, one
// non-zero value, denormals, huge values, values near GROUP_MAX_EPS, an all-positive or all-negative
// offset, small integers.
func simdTestRow(seed uint64, nb int) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, 256*nb)
	fill := func(c []float32, kind int) {
		scale := float32(math.Pow(10, r.Float64()*12-6))
		k := float32(r.NormFloat64())
		switch kind {
		case 0:
			for i := range c {
				c[i] = float32(r.NormFloat64()) * scale
			}
		case 1:
			for i := range c {
				c[i] = float32(r.IntN(9)-4) * 0.25 * scale
			}
		case 2:
			for i := range c {
				c[i] = float32(math.Copysign(0, float64(r.IntN(2)-1)))
			}
		case 3:
			for i := range c {
				c[i] = k * scale
			}
		case 4:
			clear(c)
			c[r.IntN(len(c))] = k * scale
		case 5:
			for i := range c {
				c[i] = math.Float32frombits(r.Uint32() & 0x807fffff)
			}
		case 6:
			huge := []float32{1e30, -1e30, 6e4, -6e4, 3e38, -3e38, 1e10, -1e10}
			for i := range c {
				if r.IntN(3) == 0 {
					c[i] = huge[r.IntN(len(huge))]
				} else {
					c[i] = float32(r.NormFloat64())
				}
			}
		case 7:
			off := float32(3 + r.Float64())
			if r.IntN(2) == 0 {
				off = -off
			}
			for i := range c {
				c[i] = (off + float32(r.NormFloat64())*0.1) * scale
			}
		case 8:
			for i := range c {
				c[i] = float32(r.IntN(16))
			}
		case 9:
			for i := range c {
				c[i] = float32(r.IntN(65)-32) * 0.5
			}
		case 10: // around GROUP_MAX_EPS
			eps := []float32{groupMaxEps, -groupMaxEps, math.Nextafter32(groupMaxEps, 0), math.Nextafter32(groupMaxEps, 1), 0}
			for i := range c {
				c[i] = eps[r.IntN(len(eps))]
			}
		}
	}
	const kinds = 11
	for b := range nb {
		sb := x[256*b : 256*b+256]
		if r.IntN(4) == 0 {
			fill(sb, r.IntN(kinds))
			continue
		}
		for c := 0; c < 256; c += 16 {
			kind := 0
			if r.IntN(2) == 0 {
				kind = r.IntN(kinds)
			}
			fill(sb[c:c+16], kind)
		}
	}
	return x
}

// The SIMD kernels give the same bytes as the portable code.
func TestSIMDMatchesPureGo(t *testing.T) {
	if !simdAvailable {
		t.Logf("no SIMD kernels in this build or CPU: comparing the portable code with itself")
	}
	defer func(v bool) { useSIMD = v }(useSIMD)
	types := []dtype.Type{dtype.Q2_K, dtype.Q3_K, dtype.Q4_K, dtype.Q5_K, dtype.Q6_K,
		dtype.Q8_0, dtype.Q8_1, dtype.Q4_0, dtype.Q4_1, dtype.Q5_0, dtype.Q5_1}
	for seed := range uint64(8) {
		x := simdTestRow(seed, 64)
		if seed == 0 {
			x = append(x, gaussianRow(512*256, 0.02)...)
		}
		for _, typ := range types {
			size, err := dtype.RowSize(typ, int64(len(x)))
			if err != nil {
				t.Fatal(err)
			}
			fast, pure := make([]byte, size), make([]byte, size)
			useSIMD = simdAvailable
			quantizers[typ](fast, x)
			useSIMD = false
			quantizers[typ](pure, x)
			if !bytes.Equal(fast, pure) {
				bs := int(typ.TypeSize())
				for b := 0; b < len(fast); b += bs {
					if !bytes.Equal(fast[b:b+bs], pure[b:b+bs]) {
						blk := int(typ.BlockSize())
						t.Errorf("seed %d %v block %d differs:\nsimd %x\npure %x\ninput %v", seed, typ, b/bs,
							fast[b:b+bs], pure[b:b+bs], x[b/bs*blk:(b/bs+1)*blk])
						break
					}
				}
			}
		}
	}
}

func gaussianRow(n int, scale float32) []float32 {
	r := rand.New(rand.NewPCG(5, 5))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// checkRow finds a non-finite or too large value wherever it is, with and
// without the SIMD magnitude scan.
func TestCheckRowPositions(t *testing.T) {
	defer func(v bool) { useSIMD = v }(useSIMD)
	for _, simd := range []bool{false, simdAvailable} {
		useSIMD = simd
		for _, n := range []int{32, 40, 64, 96, 256, 291} {
			for _, bad := range []float32{float32(math.Inf(-1)), float32(math.NaN()), 2e10, -2e10} {
				for _, pos := range []int{0, 1, 31, n / 2, max(0, n-33), n - 1} {
					x := gaussianRow(n, 1)
					x[pos] = bad
					if err := checkRow(x, dtype.Q4_0); err == nil {
						t.Errorf("simd=%v n=%d: %g at %d accepted", simd, n, bad, pos)
					}
				}
			}
			if err := checkRow(gaussianRow(n, 1e9), dtype.Q4_0); err != nil {
				t.Errorf("simd=%v n=%d: %v", simd, n, err)
			}
		}
	}
}
