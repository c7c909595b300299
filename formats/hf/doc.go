// Package hf reads and writes Hugging Face checkpoint directories:
// config.json, the tokenizer files and the safetensors weights.
//
// What it covers:
//   - ParseConfig / ReadConfigFile turn a config.json into the canonical
//     architecture and graph.Params for llama-family (LlamaForCausalLM,
//     MistralForCausalLM, ...) and Qwen2ForCausalLM checkpoints, with both
//     RoPE spellings (transformers 5 "rope_parameters" and the older
//     "rope_theta" + "rope_scaling"). WriteConfig is the inverse.
//   - ReadTokenizer builds the graph.Tokenizer that llama.cpp's
//     convert_hf_to_gguf.py (unslothai/llama.cpp @34af94cd,
//     conversion/base.py, conversion/llama.py, gguf-py/gguf/vocab.py) writes
//     into a GGUF file: SentencePiece vocabularies from tokenizer.model
//     (_create_vocab_sentencepiece), Llama-style tokenizer.json with byte
//     fallback (LlamaHfVocab), byte-level BPE from tokenizer.json
//     (get_vocab_base), and the special-token logic of gguf.SpecialVocab.
//     ParseSentencePiece decodes a SentencePiece ModelProto in pure Go.
//   - WriteTokenizerFiles produces tokenizer files (tokenizer.model or
//     tokenizer.json, tokenizer_config.json) for a GGUF vocabulary.
//   - ReadDir / WriteDir read and write whole checkpoint directories; the
//     safetensors container itself is package formats/safetensors.
//
// Known differences from the Python converter:
//   - The BPE pre-tokenizer name (tokenizer.ggml.pre) is not found by
//     running the tokenizer on a probe text (impossible without Python) but,
//     like ollama's convert/tokenizer.go, from the sha256 of the
//     pre-tokenizer's Split regexes; a plain ByteLevel pre-tokenizer is
//     "gpt-2". Unknown digests are an error unless TokenizerOptions.Pre
//     names the pre-tokenizer.
//   - Added tokens with normalized=false are not round-tripped through the
//     tokenizer (decode(encode(token))); their content is used as is.
//   - A directory with tokenizer.model but no tokenizer.json (what many
//     Llama-2-era checkpoints ship) is treated as transformers treats it:
//     special tokens named in tokenizer_config.json are looked up in the
//     SentencePiece vocabulary and add_bos_token defaults to true. The
//     Python converter would find no ids and no add_bos flag there, but the
//     GGUF files it is run on in practice were made from directories that
//     transformers had completed with a tokenizer.json.
//   - A list-valued chat template keeps only its "default" entry.
//
// What it does not cover: other architectures (an
// *arch.UnsupportedError lists the supported ones), WordPiece/Unigram
// tokenizer.json models, tiktoken-style tokenizers, GGUF-only metadata such
// as rope_freqs tensors (package convert derives those from Params).
package hf
