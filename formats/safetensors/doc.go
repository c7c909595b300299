// Package safetensors reads and writes the safetensors container format:
// single files and sharded checkpoints (model.safetensors.index.json, or
// MLX-style model*.safetensors sets).
//
// What it covers:
//   - Read/Open parse and validate a file header the way the reference Rust
//     crate (huggingface/safetensors, safetensors/src/tensor.rs) does: header
//     size limit of 100,000,000 bytes, UTF-8 JSON object starting with '{'
//     (optionally right-padded with whitespace), "__metadata__" an object of
//     strings or null, every other key a tensor entry with a known dtype, a
//     shape of non-negative integers and data_offsets [begin, end) whose
//     length equals elements × dtype size (with overflow checks), offsets
//     that tile the data section exactly (sorted by begin: no hole, no
//     overlap) and a data section that ends exactly at the end of the file.
//     Unknown keys inside a tensor entry are ignored, as the Rust crate
//     ignores them. Header key order is preserved (File.Tensors), and data
//     may be stored in any order (MLX writes hash order, unpadded headers).
//     Tensor bytes are never loaded: File.Section gives an io.SectionReader.
//   - OpenCheckpoint opens a file or a checkpoint directory and checks an
//     index.json weight_map against the shards; ReadModel exposes a file as a
//     graph.Model (names unchanged, Arch empty).
//   - Plan/WriteFile (sequential) and Layout.WriteAt (concurrent, through an
//     io.WriterAt) write files in the reference writer's byte layout
//     (serde_json compact JSON, "__metadata__" first, tensor fields
//     dtype/shape/data_offsets, optional space padding to 8), streaming each
//     tensor from a graph.Source. Ordering: SortByDType is the current Rust
//     writer's rule (descending dtype, then name), SortByName the 2022
//     writer's (name only), neither keeps the caller's order. MLXStyle
//     spells the header as MLX's save_safetensors (nlohmann, sorted keys,
//     "__metadata__": null). With these options, files written by
//     transformers, safetensors 0.2 and MLX are reproduced byte for byte
//     (see the tests). ShardNames/SplitShards/IndexJSON (transformers) and
//     IndexJSONMLX (mlx-lm) cover the sharding conventions.
//
// Fuzzing: FuzzHeader runs its seeds in the default suite; fuzz longer with
//
//	go test ./formats/safetensors -run '^$' -fuzz FuzzHeader -fuzztime 10m
//
// What it does not cover: config.json, tokenizers and name mapping (the
// formats/hf and formats/mlx packages build on this one); dtype conversion;
// the dtypes the Rust crate added after 0.4 that quantbridge's graph cannot
// represent (F4, F6_E2M3, F6_E3M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, C64),
// which are reported as unsupported; big-endian data (the format is
// little-endian by definition).
//
// Why not github.com/nlpodyssey/safetensors: it parses only a []byte holding
// the entire file (no lazy per-tensor reads of multi-GB checkpoints), it
// rejects any file containing F8_E4M3/F8_E5M2 tensors, and it has no
// streaming writer. This package's tests use it as a cross-check on the
// files it does handle.
package safetensors
