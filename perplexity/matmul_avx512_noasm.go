//go:build !amd64 || purego

package perplexity

var useAVX512 = false

func dot4x4t16z(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}
