//go:build amd64 && !purego

package perplexity

// The AVX-512 kernels of attention_avx512_amd64.s, used where useAVX512
// holds. They give the bits of the Go loops of attention_ggml.go.

// faScoreMax512 computes the scores of one flash-attention tile (64 keys,
// kt the tile transposed, d > 0) as the fma chains of faScores, × scale;
// p[j] is −Inf where bit j of mask is clear. It returns the largest p[j]
// (the sign of a zero maximum is not Go's max), or NaN if any p[j] is NaN.
//
//go:noescape
func faScoreMax512(q, kt *float32, d int, scale float32, mask uint64, p *float32) float32

// faExpSum512 computes p[j] = vexpf(p[j] − m) for the 64 lanes of a tile
// and returns Σ float64(reduce16(group)) over its four groups of 16, in
// order.
//
//go:noescape
func faExpSum512(p *float32, m float32) float64

// faPV512 is faPV with AVX-512 (d a positive multiple of 16, n >= 1).
//
//go:noescape
func faPV512(p *float32, v *float32, ldv, n, d int, out *float32)

// swiglu512 computes g[i] = g[i] / (1 + vexpf(0 − g[i])) · u[i] for n a
// positive multiple of 16.
//
//go:noescape
func swiglu512(gp, u *float32, n int)
