//go:build amd64 && !purego

package perplexity

import "golang.org/x/sys/cpu"

// useAVX512 selects the AVX-512 kernels of matmul_avx512_amd64.s where the
// CPU has AVX512F, BW and VL (and the AVX2 kernels are in use: the
// QUANTBRIDGE_PUREGO switch turns both off). They compute the same bits as
// the AVX2 kernels of the exact orders.
var useAVX512 = useSIMD && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL

// dot4x4t16z computes dst[t·ldd+r] = x_t · w_r for four tokens (x, x+ldx,
// ...) and four weight rows (w, w+ldw, ...) in tinyBLAS<16>'s order (see
// orderTinyBLAS16; k a positive multiple of 16).
//
//go:noescape
func dot4x4t16z(x *float32, ldx int, w *float32, ldw int, k int, dst *float32, ldd int)

// kRepackDot4z is kRepackDot for four tokens (x, x+k, x+2k, x+3k) with
// AVX-512 integer lanes; xdq and bsq are the tokens' block scales and
// bsums interleaved by block (q8KBlocks.quads).
//
//go:noescape
func kRepackDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per int, dst *float32, ldd int)

// kVecDot4z is kVecDot for four tokens with AVX-512 integer lanes, for
// unsigned codes (Q6_K, Q5_K).
//
//go:noescape
func kVecDot4z(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, mode int, dst *float32, ldd int)
