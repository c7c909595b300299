//go:build !amd64 || purego

package perplexity

var useAVX512 = false

func dot4x4t16z(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func kRepackDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func kVecDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, mode int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}
