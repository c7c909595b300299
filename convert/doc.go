// Package convert turns one checkpoint into another: it plans the
// per-tensor output types the way llama.cpp's llama-quantize does
// (PlanGGUF, an exact port of src/llama-quant.cpp's mixture rules for the
// F32/F16/BF16, legacy and k-quant file types), and runs the conversion as a
// bounded-memory concurrent pipeline that reads each tensor lazily,
// converts it through float32 and writes it at its planned offset.
//
// It covers GGUF → GGUF quantization (llama-quantize's job) and the
// cross-format directions HF ⇄ GGUF ⇄ MLX for the architectures graph
// supports. It does not cover importance-matrix quantization, the IQ*/TQ*
// file types, sharded (split) GGUF output, or layer pruning.
package convert
