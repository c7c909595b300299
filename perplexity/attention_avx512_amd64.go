//go:build amd64 && !purego

package perplexity

// The AVX-512 kernels of attention_avx512_amd64.s, used where useAVX512
// holds. They give the bits of the Go loops of attention_ggml.go
// (TestFaTile*Kernel, TestSwigluGGMLKernel, TestAttentionGGMLMatchesRef),
// with one difference those tests cannot meet: they fuse multiply-adds
// with VFMADD, as ggml does and as faScores/faPV did before them, where
// the Go's fma32 rounds through float64 (twice, in the rare case its
// comment describes).

// faScores1x512 computes the raw scores of one flash-attention tile (64
// keys, kt the tile transposed, d > 0) as the fma chains of faScores.
//
//go:noescape
func faScores1x512(q, kt *float32, d int, s *float32)

// faScores4x512 is faScores1x512 for the query rows q, q+ldq, q+2·ldq,
// q+3·ldq, into s[0:64], s[64:128], ...
//
//go:noescape
func faScores4x512(q *float32, ldq int, kt *float32, d int, s *float32)

// faMaskMax512 scales the 64 scores of a tile, sets those whose bit of
// mask is clear to −Inf and returns the largest (the sign of a zero
// maximum is not Go's max), or NaN if any is NaN.
//
//go:noescape
func faMaskMax512(p *float32, scale float32, mask uint64) float32

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

// faPV4x512 is faPV512 for four rows: the weights p[r·64:], the outputs
// out[r·ldo:] (r < 4).
//
//go:noescape
func faPV4x512(p *float32, v *float32, ldv, n, d int, out *float32, ldo int)

// swiglu512 computes g[i] = g[i] / (1 + vexpf(0 − g[i])) · u[i] for n a
// positive multiple of 16.
//
//go:noescape
func swiglu512(gp, u *float32, n int)

// ocMadF16 is the vector part of ocMad (attention_onechunk.go): n a
// positive multiple of 16.
//
//go:noescape
func ocMadF16(acc, v *float32, s float32, n int)

// ocScaleF16 is the vector part of ocScale: n a positive multiple of 16.
//
//go:noescape
func ocScaleF16(acc *float32, s float32, n int)
