//go:build !amd64 || purego

package perplexity

var useKRepackZ = false

func kRepack16x4z(wq *uint8, sc, mnp *int32, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per, q2 int, dst *float32, ldd, mask int) {
	panic("perplexity: no SIMD kernels in this build")
}

func kArrangeCodes(dst *uint8, src *byte, stride, nb, mask, q2 int) {
	panic("perplexity: no SIMD kernels in this build")
}
