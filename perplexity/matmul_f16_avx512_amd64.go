//go:build amd64 && !purego

package perplexity

import "golang.org/x/sys/cpu"

// useAVX512BF16 selects the VDPBF16PS kernels for BF16 weights (CPUs with
// AVX512_BF16: Cooper Lake, Sapphire Rapids, Zen 4 and later), which
// compute the bits of orderTinyBLASBF16.
var useAVX512BF16 = useAVX512 && cpu.X86.HasAVX512BF16

// dot4x6h computes dst[t·ldd+r] = x_t · w_r for six tokens (x, x+ldx, ...)
// and four weight rows (w, w+2·ldw, ...: ldw in elements) of fp16 values in tinyBLAS<16>'s
// order (see orderTinyBLAS16; k a positive multiple of 16).
//
//go:noescape
func dot4x6h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// dot4x5h is dot4x6h for five tokens.
//
//go:noescape
func dot4x5h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// dot4x1h is dot4x6h for one token.
//
//go:noescape
func dot4x1h(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// dot4x6bf computes dst[t·ldd+r] = x_t · w_r for six tokens and four
// weight rows of bf16 values in tinyBLAS<32, __m512bh>'s order (see
// orderTinyBLASBF16; k a positive multiple of 32) with VDPBF16PS.
//
//go:noescape
func dot4x6bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// dot4x5bf is dot4x6bf for five tokens.
//
//go:noescape
func dot4x5bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// dot4x1bf is dot4x6bf for one token.
//
//go:noescape
func dot4x1bf(x *uint16, ldx int, w *byte, ldw int, k int, dst *float32, ldd int)

// f32ToF16AVX writes the fp16 encodings of n values (n a positive multiple
// of 16; AVX-512), rounding to nearest even.
//
//go:noescape
func f32ToF16AVX(dst *uint16, src *float32, n int)
