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
