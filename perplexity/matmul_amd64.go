//go:build amd64 && !purego

package perplexity

import (
	"os"

	"golang.org/x/sys/cpu"
)

// simdAvailable reports whether this build and CPU can run the AVX2/FMA
// kernels of matmul_amd64.s.
var simdAvailable = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useSIMD selects the AVX2 kernels. Setting QUANTBRIDGE_PUREGO to a
// non-empty value (or building with -tags purego) forces the portable Go
// kernels, which differ from the AVX2 ones in float summation order only.
var useSIMD = simdAvailable && os.Getenv("QUANTBRIDGE_PUREGO") == ""

// dot4x3 computes the 12 dot products of three activation rows (x, x+ldx,
// x+2·ldx) with four weight rows (w, w+ldw, ...), k elements each (k a
// positive multiple of 8): dst[t·ldd+r] = x_t · w_r.
//
//go:noescape
func dot4x3(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int)

// dot4x1avx computes dst[r] = x · w_r for four weight rows (k a positive
// multiple of 8).
//
//go:noescape
func dot4x1avx(x *float32, w *float32, ldw int, k int, dst *float32)

// dotAVX returns a · b over n elements (n a positive multiple of 8).
//
//go:noescape
func dotAVX(a, b *float32, n int) float32

// axpyAVX computes y[i] += a·x[i] for n elements (n a positive multiple of
// 8), rounding the product and the sum separately as Go does.
//
//go:noescape
func axpyAVX(y *float32, a float32, x *float32, n int)

// swigluAVX computes g[i] = silu(g[i])·u[i] with a float32 exponential (Cephes expf polynomial, about 1 ulp; 0 below e^-87) (n a
// positive multiple of 8).
//
//go:noescape
func swigluAVX(gp, u *float32, n int)

// pvAVX computes out[i] += (s[j]·inv)·v[j·ldv+i] for j < n in order and
// i < d (d a positive multiple of 8, n >= 1), bit-identical to the Go loop
// (separate multiply and add).
//
//go:noescape
func pvAVX(out *float32, s *float32, inv float32, v *float32, ldv, n, d int)

// expNegAVX computes dst[i] = float32(exp(float64(src[i] − sub))) for n a
// positive multiple of 4 and src[i] − sub <= 0, with the float64
// operations of Go's portable math.Exp (see matmul_amd64.s).
//
//go:noescape
func expNegAVX(dst, src *float32, n int, sub float32)

// scoresAVX computes s[j] = q · k[j·ldk:][:d] for j < n (n >= 1, d a
// positive multiple of 8), each exactly as dotAVX does.
//
//go:noescape
func scoresAVX(s, q, k *float32, ldk, n, d int)

// q8KApply computes dst[i] = d·min(nearest_int(iscale·x[i]), 127) as
// roundQ8_K does (n a positive multiple of 8).
//
//go:noescape
func q8KApply(dst, x *float32, n int, iscale, d float32)

// q80Apply computes dst[i] = d·roundeven(x[i]·id) as roundQ8_0 does (n a
// positive multiple of 8).
//
//go:noescape
func q80Apply(dst, x *float32, n int, id, d float32)

// dot4x1t16 computes dst[r] = x · w_r for four weight rows in
// tinyBLAS<16>'s order (see orderTinyBLAS16; k a positive multiple of 16).
//
//go:noescape
func dot4x1t16(x *float32, w *float32, ldw int, k int, dst *float32)

// q0dot returns the dot product of nb blocks of 32 codes w and x with
// block scales dw[b]·dx[b] in ggml's order (see mulTileQ0).
//
//go:noescape
func q0dot(w, x *int8, dw, dx *float32, nb int) float32

// faScores computes the 64 scores of a flash-attention key tile: out[j] =
// the fma-chain of q[i]·kt[i·64+j] over i < d (see attentionGGML).
//
//go:noescape
func faScores(q *float32, kt *float32, d int, out *float32)

// faPV computes out[i] = fma(p[j], v[j·ldv+i], out[i]) for j < n in order
// and i < d (d a positive multiple of 8).
//
//go:noescape
func faPV(p *float32, v *float32, ldv, n, d int, out *float32)
