//go:build !amd64 || purego

package perplexity

var useAVX512BF16 = false

func dot4x6h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x1h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x6bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x1bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func f32ToF16AVX(dst *uint16, src *float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x5h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x5bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}
