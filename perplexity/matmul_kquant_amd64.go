//go:build amd64 && !purego

package perplexity

// kVecDot is ggml_vec_dot_q{3,5,6}_K_q8_K's order for one decoded row and
// nt tokens (see matmul_kquant_amd64.s and mulTileK).
//
//go:noescape
func kVecDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, mode int, dst *float32, ldd int)

// kRepackDot is repack.cpp's q4_K/q2_K 8x8 GEMM (per 2 or 4) or GEMV (per
// 8) order for one decoded row and nt tokens.
//
//go:noescape
func kRepackDot(w *int8, scv, aux *int16, wd, wdm *float32, x *int8, xd *float32, bs *int16, nb, nt, per int, dst *float32, ldd int)

// f16ToF32AVX expands n fp16 values (n a positive multiple of 8).
//
//go:noescape
func f16ToF32AVX(dst *float32, src *byte, n int)

// bf16ToF32AVX expands n bf16 values (n a positive multiple of 8).
//
//go:noescape
func bf16ToF32AVX(dst *float32, src *byte, n int)

// q0dot4 is q0dot of one row with four tokens (x + t·k, dx + t·nb),
// dst[t·ldd] for t < 4.
//
//go:noescape
func q0dot4(w, x *int8, k int, dw, dx *float32, nb int, dst *float32, ldd int)
