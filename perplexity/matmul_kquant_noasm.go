//go:build !amd64 || purego

package perplexity

func kVecDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, mode int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func kRepackDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, per int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func f16ToF32AVX(dst *float32, src *byte, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func bf16ToF32AVX(dst *float32, src *byte, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot4(w, x *int8, k int, dw, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

const useQ0VNNI = false

func q0dot2x4(w0, w1 *int8, dw0, dw1 *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func affineF16(dst *float32, n int, s, b float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot2x4raw(w0, w1 *byte, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q80Block(q *int8, u *uint8, d *float32, x *float32) bool {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot4x4(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot4x4raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot4x8(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0dot4x8raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0mins16(dst *float32, ldd int, mt *float32, s *float32, nb, nt int, mask uint16) {
	panic("perplexity: no SIMD kernels in this build")
}

func q0rep16(wt *int8, corr *int32, dw *float32, xu *uint8, dx *float32, nb int, out *float32) {
	panic("perplexity: no SIMD kernels in this build")
}
