//go:build !amd64 || purego

package perplexity

func faScoreMax512(q, kt *float32, d int, scale float32, mask uint64, p *float32) float32 {
	panic("perplexity: no SIMD kernels in this build")
}

func faExpSum512(p *float32, m float32) float64 {
	panic("perplexity: no SIMD kernels in this build")
}

func faPV512(p *float32, v *float32, ldv, n, d int, out *float32) {
	panic("perplexity: no SIMD kernels in this build")
}

func swiglu512(g, u *float32, n int) {
	panic("perplexity: no SIMD kernels in this build")
}
