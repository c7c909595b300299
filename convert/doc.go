// Package convert turns one checkpoint into another: it plans the
// per-tensor output types the way llama.cpp's llama-quantize does
// (PlanGGUF, an exact port of src/llama-quant.cpp's mixture rules for every
// file type llama-quantize writes but Q1_0, Q2_0 and NVFP4: F32/F16/BF16,
// legacy, k-quant, IQ, TQ and MXFP4_MOE), and runs the conversion as a
// bounded-memory concurrent pipeline that reads each tensor lazily,
// converts it through float32 (or repacks it exactly) and writes it at its
// planned offset.
//
// What to write is a Target (GGUFTarget, MLXTarget, HFTarget); ParseTarget
// builds one from command-line settings and refuses, as a *UsageError, a
// setting that does not apply to the output or contradicts another.
//
// It covers GGUF → GGUF quantization (llama-quantize's job) and the
// cross-format directions HF ⇄ GGUF ⇄ MLX for the architectures graph
// supports:
//
//   - HF/MLX → GGUF writes what convert_hf_to_gguf.py writes, including
//     llama3 RoPE scaling's rope_freqs.weight, computed bit for bit as
//     the converter's torch code computes it on x86 (Llama3Rope; SLEEF's
//     and glibc's powf are ported for that); GGUF → HF/MLX drops the
//     tensor and writes rope_scaling back to config.json
//     (InferLlama3Rope). Longrope factor lists (Phi-3) are written as
//     the rope_factors_long/short.weight tensors an architecture's
//     arch.Arch.ExtraTensors derives, and read back from them.
//   - Exact repacks instead of a float round trip: GGUF Q4_0, Q4_1, Q5_0,
//     Q5_1 and Q8_0 → MLX affine group 32 with F16 scales when the
//     MLXTarget asks for those bits and group size 32, or asks for no bits
//     and no dtype and the file's quantized tensors are all of that one
//     type; MLX affine → GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 when the GGUFTarget
//     has no file type and the values allow it; GGUF MXFP4 ⇄ MLX mxfp4
//     (the same values in another nibble order) whenever the target keeps
//     or asks for MXFP4 (GGUF → MLX with no bits and no dtype, or
//     --q-mode mxfp4; MLX → GGUF with no file type). Options.Note says
//     what was chosen. Llama Q/K rows move between GGUF's interleaved and HF's
//     half-split order in every direction, repacked rows too.
//   - Outputs never appear partially at their final path: a GGUF file or
//     an MLX/HF directory is written under a temporary name beside it and
//     renamed into place; an error or cancellation (SIGINT in the CLI)
//     removes the temporary, and the next conversion to the same path
//     removes one that a SIGKILL left. Directory outputs report progress
//     and per-tensor times like GGUF output.
//   - general.alignment is kept and honoured (see QuantizeKV).
//   - Importance-matrix quantization (GGUFTarget.Imatrix, llama-quantize
//     --imatrix): each quantized tensor is weighted by the importance
//     matrix's entry of its GGUF name, each expert of a 3-D tensor by its
//     own slice; the mixtures that change with an importance matrix do;
//     the file types whose tensors need one (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
//     IQ2_S, IQ2_M, IQ3_XXS, IQ3_XS, Q2_K_S) refuse to run without it, and
//     a tensor of such a type that has no entry fails; the
//     quantize.imatrix.* KVs follow general.file_type. From an HF or MLX
//     input too, in the same single pass. Options.DryRun plans without
//     writing (llama-quantize --dry-run).
//
// It does not cover sharded (split) GGUF output, layer pruning, or the
// Q1_0, Q2_0 and NVFP4 file types.
package convert
