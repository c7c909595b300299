//go:build !amd64 || purego

package perplexity

func faScores1x512(q, kt *float32, d int, s *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func faScores4x512(q *float32, ldq int, kt *float32, d int, s *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func faMaskMax512(p *float32, scale float32, mask uint64) float32 {
	panic("perplexity: no SIMD kernels in this build")
}

func faExpSum512(p *float32, m float32) float64 {
	panic("perplexity: no SIMD kernels in this build")
}

func faPV512(p *float32, v *float32, ldv, n, d int, out *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func faPV4x512(p *float32, v *float32, ldv, n, d int, out *float32, ldo int) {
	panic("perplexity: no SIMD kernels in this build")
}

func swiglu512(gp, u *float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func ocMadF16(acc, v *float32, s float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}

func ocScaleF16(acc *float32, s float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}
