// Package gguf reads, validates and writes GGUF files (llama.cpp's model
// format) and maps GGUF metadata to and from quantbridge's graph.
//
// Reading: Read (an io.ReaderAt plus size) and Open (a path) parse the
// header (metadata key/values and tensor infos) through a buffered reader
// and validate it the way ggml's gguf.cpp does at llama.cpp commit
// 34af94cd: magic and version (1, 2 and 3 are read; v1 used 32-bit counts,
// lengths and dimensions), non-empty unique keys, every value type
// including arrays (nested arrays are rejected), general.alignment of type
// u32 and a power of two, unique tensor names of at most 63 bytes, at most
// 4 dimensions, an element count that fits in int64, known ggml types,
// rows a whole number of blocks, and tensor data laid out contiguously in
// tensor-info order with alignment padding and inside the file. Every
// count and length read from the file is checked against the bytes that
// remain before anything is allocated, so a hostile header fails fast
// with a *FormatError naming the path, the byte offset and the problem.
// Tensor data is never read by the header parser; TensorReader gives an
// io.SectionReader over one tensor.
//
// One deliberate relaxation: GGUF v1/v2-era llama.cpp quantized rows whose
// length is not a multiple of the block size as one flat run of blocks
// (e.g. stories260K's ffn_down, ne0 = 172, Q8_0). Such tensors are accepted
// only in v1/v2 files and only when the whole tensor is a whole number of
// blocks; their TensorInfo.Size is elements/block*blockbytes. v3 files get
// gguf.cpp's strict check.
//
// Writing: Plan lays out a file (header bytes, data offset, per-tensor
// offsets, total size) from KVs and tensor infos, so callers can write
// tensors concurrently at known offsets; Write streams a file
// sequentially. The layout is gguf.cpp's (gguf_write_out): v3, KVs in the
// given order, tensor infos with trailing unit dimensions dropped from ne,
// zero padding to the alignment before the data and after every tensor.
// Re-writing a file read from a llama.cpp-written GGUF reproduces it byte
// for byte (Rewrite).
//
// Metadata: ReadModel returns a graph.Model whose Params and Tokenizer
// come from the {arch}.* and tokenizer.* keys (with llama.cpp's defaults
// where keys are absent); ModelKV(m, fileType) produces the KVs that
// llama.cpp's convert_hf_to_gguf.py writes for a model read from another
// format (llama and qwen2), general.file_type being the caller's
// fileType argument.
//
// Not covered: big-endian GGUF files, split (sharded) files as one model,
// and decoding tensor data (see the quantize package).
//
// Fuzzing: FuzzRead runs its seed corpus (the repository's testdata GGUF
// files) in every `go test`; to fuzz for longer run
//
//	go test -run='^$' -fuzz=FuzzRead -fuzztime=5m ./formats/gguf
package gguf
