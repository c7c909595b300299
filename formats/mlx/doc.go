// Package mlx reads and writes mlx-lm model directories (the layout of
// ml-explore/mlx-lm's save / load_model at d78bf58e): config.json with a
// "quantization" object, model.safetensors or model-0000X-of-0000N.safetensors
// shards written with __metadata__ {"format": "mlx"}, the
// model.safetensors.index.json mlx-lm always writes, and the tokenizer and
// generation_config.json files carried over from the source.
//
// What it covers:
//   - IsMLXDir, ReadDir and ReadFile: quantized Linear/Embedding modules
//     (X.weight U32 + X.scales + X.biases) become one graph.MLXAffine tensor
//     each, with the bit width and group size resolved as mlx-lm's loader
//     resolves them (per-module entries, then the global values, mode
//     defaults for null); names become canonical (arch.Arch.CanonicalName).
//   - ParseQuantization validates the "quantization" object against what
//     mlx.core.quantize accepts.
//   - Plan / WriteDir write a directory: safetensors shards (HF names,
//     X.weight/X.scales/X.biases for affine tensors, greedy 5 GiB shards in
//     mlx-lm's parameter order), the index, config.json in save_config's
//     layout (source config + "quantization" + "quantization_config", keys
//     sorted, indent 4, tie_word_embeddings always written) and the
//     auxiliary files. Quantizable tells which tensors mlx-lm's
//     quantize_model would quantize.
//
// Mode mxfp4 modules (uint32 codes and uint8 E8M0 scales, no biases) are
// read as graph tensors of type MXFP4, their Data a view presenting them as
// GGUF MXFP4 blocks (the same values, see quantize.MXFP4FromMLX), and
// MXFP4 tensors are written back as mxfp4 modules (see mxfp4.go).
//
// What it does not cover: the kernels (package quantize has
// AffineQuantizeRow / AffineDequantizeRow, MLXFP4QuantizeRow and the GGUF
// repacks); the float modes nvfp4 and mxfp8 (read as config values,
// rejected for tensors); AWQ/GPTQ/bitnet checkpoints that mlx-lm translates at load;
// mixed-precision recipe selection (callers build per-module entries);
// byte-identical safetensors headers (MLX orders data by a C++ hash map;
// this writer sorts by name).
package mlx
