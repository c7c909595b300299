package perplexity

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestQ8Direct checks that the Q8_0 blocks made straight from the
// activations (q8Blocks.quantize, the VNNI kernels' input) equal those
// recovered from their rounded copy (roundActivations, then newQ8Blocks),
// in the SIMD and the portable code: Gaussian blocks, a zero block, a
// block whose scale rounds to 0 in fp16, subnormal fp16 scales, values at
// half-integer multiples of the scale; and that a non-finite block is
// refused.
func TestQ8Direct(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 37))
	const k = 32 * 12
	x := make([]float32, 3*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	clear(x[32:64])            // zero block
	for i := 64; i < 96; i++ { // amax/127 below fp16's smallest subnormal half
		x[i] = float32(rng.NormFloat64()) * 1e-10
	}
	for i := 96; i < 128; i++ { // subnormal fp16 scale
		x[i] = float32(rng.NormFloat64()) * 1e-4
	}
	for i := 128; i < 160; i++ { // x·id at half-integers: ties
		x[i] = float32(i-144) + 0.5
	}
	x[159] = 127
	for _, simd := range []bool{false, useSIMD} {
		saved := useSIMD
		useSIMD = simd
		xr := make([]float32, len(x))
		roundActivations(xr, x, k, actQ8_0)
		want := newQ8Blocks(xr)
		var got q8Blocks
		if !got.quantize(x, 2) {
			t.Fatal("finite input refused")
		}
		useSIMD = saved
		if !reflect.DeepEqual(got.d, want.d) || !reflect.DeepEqual(got.q, want.q) || !reflect.DeepEqual(got.u, want.u) {
			for i := range want.d {
				if got.d[i] != want.d[i] || !reflect.DeepEqual(got.q[i*32:(i+1)*32], want.q[i*32:(i+1)*32]) {
					t.Fatalf("simd %v: block %d: d %v codes %v, recovered d %v codes %v", simd, i, got.d[i], got.q[i*32:(i+1)*32], want.d[i], want.q[i*32:(i+1)*32])
				}
			}
			t.Fatalf("simd %v: offset codes differ", simd)
		}
	}
	for _, simd := range []bool{false, useSIMD} {
		saved := useSIMD
		useSIMD = simd
		for _, v := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
			1e38, 65520 * 127} { // amax/127 overflows fp16 (65520 rounds up to infinity)
			x[200] = v
			var b q8Blocks
			if b.quantize(x, 1) {
				t.Errorf("simd %v: a block holding %g was quantized", simd, v)
			}
		}
		x[200] = 65519 * 127 // the largest fp16 scale: quantized
		var b q8Blocks
		if !b.quantize(x, 1) || b.d[200/32] != 65504 {
			t.Errorf("simd %v: a block of amax 65519·127: scale %v, want 65504", simd, b.d[200/32])
		}
		useSIMD = saved
	}
}
