//go:build amd64 && !purego

package perplexity

import "golang.org/x/sys/cpu"

// useQ0VNNI selects q0dot2x4 for the 32-element block types: the AVX-512
// kernels and AVX512_VNNI's VPDPBUSD.
var useQ0VNNI = useAVX512 && cpu.X86.HasAVX512VNNI

// q0dot2x4 is q0dot of two rows (codes w0, w1; scales dw0, dw1) with four
// tokens given as offset codes (xu + t·k holds x + 128, see q8Blocks.u)
// and scales dx + t·nb: dst[t·ldd] and dst[t·ldd+1] for t < 4.
//
//go:noescape
func q0dot2x4(w0, w1 *int8, dw0, dw1 *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q0dot2x4raw is q0dot2x4 on two stored Q8_0 rows (w0, w1: their
// block_q8_0 bytes) read in place, without decoding them first.
//
//go:noescape
func q0dot2x4raw(w0, w1 *byte, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q80Block makes one Q8_0 block of 32 activations x: its scale *d, codes q
// and offset codes u (q8Blocks.u), as q8Blocks.quantize's Go loops do; it
// reports false when amax or the scale is not finite.
//
//go:noescape
func q80Block(q *int8, u *uint8, d *float32, x *float32) bool

// q0dot4x4 is q0dot2x4 of four rows held one after another: codes
// w + r·k and scales dw + r·nb for r < 4 (the tokens' strides), with two
// rows to a 512-bit register: dst[t·ldd+r] for r, t < 4.
//
//go:noescape
func q0dot4x4(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q0dot4x4raw is q0dot4x4 on four stored Q8_0 rows w + r·ldw (their
// block_q8_0 bytes, ldw bytes apart) read in place.
//
//go:noescape
func q0dot4x4raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q0dot4x8 is q0dot4x4 with eight tokens: dst[t·ldd+r] for r < 4, t < 8.
//
//go:noescape
func q0dot4x8(w *int8, dw *float32, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q0dot4x8raw is q0dot4x4raw with eight tokens.
//
//go:noescape
func q0dot4x8raw(w *byte, ldw int, xu *uint8, k int, dx *float32, nb int, dst *float32, ldd int)

// q0mins16 adds the Q4_1/Q5_1 minimum terms of up to 16 rows (those whose
// bit is set in mask) for nt tokens: dst[t·ldd+i] += the fused chain over
// blocks b of m[i,b]·s[t·nb+b], the minimums transposed (mt[16b+i] =
// m[i,b]).
//
//go:noescape
func q0mins16(dst *float32, ldd int, mt *float32, s *float32, nb, nt int, mask uint16)

// q0rep16 multiplies one token (offset codes xu, scales dx, nb blocks) by
// sixteen weight rows laid out for it (see mulTileQ0Rep16) in orderQ0Repack's
// order, out[r] for r < 16.
//
//go:noescape
func q0rep16(wt *int8, corr *int32, dw *float32, xu *uint8, dx *float32, nb int, out *float32)
