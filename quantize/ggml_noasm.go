//go:build !amd64 || purego

package quantize

// Without the AVX2 kernels (other GOARCHes, or -tags purego) the portable
// Go code runs; these stubs are never called.

const simdAvailable = false

var useSIMD = false

func qkx2x8(x, w, aux *float32, n, nmax int, nums *float32, nnums, mad int, out *[12][8]float32) {
	panic("quantize: no SIMD kernels in this build")
}

func qx8(x *float32, n, nmax int, nums *float32, out *[2][8]float32) {
	panic("quantize: no SIMD kernels in this build")
}

func quantDiv(dst *uint8, x *float32, n int, add, div float32, lo, hi, off int32) {
	panic("quantize: no SIMD kernels in this build")
}

func lanePrep(xt, wt, x *float32, n, wmode int) {
	panic("quantize: no SIMD kernels in this build")
}

func q3x8(x, lt *float32, n, nmax int, out *[8]float32) {
	panic("quantize: no SIMD kernels in this build")
}

func q8Blocks(y *byte, x *float32, nb int, d *float32) {
	panic("quantize: no SIMD kernels in this build")
}

func absMaxBits(x *float32, n int) uint32 {
	panic("quantize: no SIMD kernels in this build")
}

func q40Blocks(y *byte, x *float32, nb int, d *float32) {
	panic("quantize: no SIMD kernels in this build")
}

func q50Blocks(y *byte, x *float32, nb int, d *float32) {
	panic("quantize: no SIMD kernels in this build")
}

func q41Blocks(y *byte, x *float32, nb int, d, m *float32) {
	panic("quantize: no SIMD kernels in this build")
}

func q51Blocks(y *byte, x *float32, nb int, d, m *float32) {
	panic("quantize: no SIMD kernels in this build")
}
