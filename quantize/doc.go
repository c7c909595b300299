// Package quantize holds quantbridge's numeric kernels: element conversions
// (fp16/bf16/fp8/integers <-> float32), ggml's block quantization formats,
// and MLX's affine quantization (files mlx*.go).
//
// The GGUF kernels (QuantizeRow, DequantizeRow, ToFloat32, FromFloat32 and
// the per-type QuantizeQ4K, DequantizeQ4K, ... functions) are pure functions
// on one row: dst first, no files, no shared mutable state, so goroutines may
// call them concurrently on disjoint rows. Quantization reproduces ggml's
// quantize_row_*_ref functions (ggml-quants.c, llama.cpp commit 34af94cd),
// which is what llama-quantize runs when it has no importance matrix: the
// output is byte-identical to llama-quantize built for x86-64 without fused
// multiply-add contraction, on every GOARCH: every product that feeds a sum
// is rounded explicitly so Go never fuses it (TestNoFusedMultiplyAdd checks
// the arm64 and riscv64 code), and C's float-to-int conversions of
// non-finite values (blocks whose scale underflows) follow x86's cvttss2si.
// QuantizeRow also applies llama-quantize's row validation (an fp16 scale
// that overflows is an error).
//
// On amd64 CPUs with AVX2 the quantizers run assembly kernels
// (ggml_amd64.s): the K-quant searches (make_qkx2_quants, make_qx_quants,
// make_q3_quants) process the 8 sub-blocks of a super-block at once, one
// per vector lane, each lane doing the scalar code's float32 operations in
// the scalar order, and the legacy types process a 32-value block per
// iteration. Their output is the same bytes as the portable Go code
// (TestSIMDMatchesPureGo); setting the environment variable
// QUANTBRIDGE_PUREGO to a non-empty value, or building with -tags purego,
// selects the portable code.
//
// Covered: quantize and dequantize Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, MXFP4 (ggml_mxfp4.go); dequantize only
// IQ4_NL, IQ4_XS. MLX: affine (mlx.go) and mxfp4 (mlx_mxfp4.go), with
// exact repacks to and from GGUF.
// The importance-weighted quantizers (QuantizeRowWeighted, weighted.go)
// cover Q4_0 … Q5_1, Q2_K … Q6_K, IQ4_NL, IQ4_XS and the lattice and ternary
// types below. Not covered: NVFP4, Q1_0/Q2_0.
//
// The 2-bit and 1-bit lattice types IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M
// (ggml_iq2.go, ggml_iq1.go) quantize through QuantizeRowWeighted with an
// importance vector, byte-identical to llama-quantize --imatrix (IQ2_S and
// IQ1_M also without one, as ggml's default weighting), and dequantize like
// ggml's dequantize_row_iq2_xxs etc., bit for bit.
//
// The 3-bit lattice types IQ3_XXS and IQ3_S (ggml_iq3.go) and the ternary
// TQ1_0 and TQ2_0 (ggml_tq.go) quantize through QuantizeRowWeighted with or
// without an importance vector (ggml's x² weighting when nil; the TQ types
// ignore it), byte-identical to llama-quantize with and without --imatrix,
// and dequantize bit for bit like ggml. The IQ3 neighbour searches run an
// AVX2 kernel (ggml_iq3_amd64.s) under the same switch as the others.
package quantize
