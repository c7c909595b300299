//go:build !amd64 || purego

package perplexity

// Without the AVX2 kernels (other GOARCHes, or -tags purego) the portable
// Go kernels run; these stubs are never called.

const simdAvailable = false

var useSIMD = false

func dot4x3(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x1avx(x *float32, w *float32, ldw int, k int, dst *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func dotAVX(a, b *float32, n int) float32 {
	panic("perplexity: no SIMD kernels in this build")
}

func axpyAVX(y *float32, a float32, x *float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func swigluAVX(g, u *float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func pvAVX(out *float32, s *float32, inv float32, v *float32, ldv, n, d int) {
	panic("perplexity: no SIMD kernels in this build")
}

func expNegAVX(dst, src *float32, n int, sub float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func scoresAVX(s, q, k *float32, ldk, n, d int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q8KApply(dst, x *float32, n int, iscale, d float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func q80Apply(dst, x *float32, n int, id, d float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func dot4x1t16(x *float32, w *float32, ldw int, k int, dst *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot(w, x *int8, dw, dx *float32, nb int) float32 {
	panic("perplexity: no SIMD kernels in this build")
}

func faScores(q *float32, kt *float32, d int, out *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func faPV(p *float32, v *float32, ldv, n, d int, out *float32) {
	panic("perplexity: no SIMD kernels in this build")
}
