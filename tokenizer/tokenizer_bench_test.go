package tokenizer

import (
	"bytes"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// BenchmarkEncode measures Encode throughput on kjv_eval.txt (21,953 bytes)
// with llama.cpp's test vocabularies: Llama 2 SentencePiece and GPT-2 BPE,
// and the GPT-2 vocabulary under the Llama 3 and Qwen2 pre-tokenizers.
func BenchmarkEncode(b *testing.B) {
	text, err := os.ReadFile(testref.Local(b, "kjv_eval.txt"))
	if err != nil {
		b.Fatal(err)
	}
	spm := loadVocabGGUF(b, testref.Local(b, "real", "gguf", "ggml-vocab-llama-spm.gguf"))
	gpt2 := loadVocabGGUF(b, testref.Local(b, "real", "gguf", "ggml-vocab-gpt-2.gguf"))
	withPre := func(pre string) *Tokenizer {
		cfg := preTypes[pre]
		sp, err := newSplitter(cfg.regexes, true)
		if err != nil {
			b.Fatal(err)
		}
		v := *gpt2
		v.pre, v.split = cfg, sp
		return &v
	}
	for _, c := range []struct {
		name string
		v    *Tokenizer
	}{{"spm-llama2", spm}, {"bpe-gpt2", gpt2}, {"bpe-gpt2-llama3pre", withPre("llama-bpe")}, {"bpe-gpt2-qwen2pre", withPre("qwen2")}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for i := 0; i < b.N; i++ {
				n = len(c.v.Encode(string(text), Options{AddSpecial: true}))
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}

// BenchmarkEncodeLarge measures tokenizer throughput (MB/s) and bytes
// allocated per input byte on kjv_eval.txt repeated to 4 MiB, read through
// EncodeReader as ppl and tokenize do (ids discarded), with the kjv-llama
// SentencePiece vocabulary and the llama3 and qwen2 BPE vocabularies of
// testdata/unseen.
func BenchmarkEncodeLarge(b *testing.B) {
	kjv, err := os.ReadFile(testref.Local(b, "kjv_eval.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text := bytes.Repeat(kjv, (4<<20)/len(kjv)+1)[:4<<20]
	for _, c := range []struct{ name, model string }{
		{"spm-kjv-llama", "kjv-llama"},
		{"bpe-llama3", "unseen/llama3-bpe-tied.bf16.gguf"},
		{"bpe-qwen2", "unseen/qwen2-bpe-tied.bf16.gguf"},
	} {
		v := loadVocab(b, testref.Local(b, c.model))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				n = 0
				err := v.EncodeReader(bytes.NewReader(text), Options{AddSpecial: true}, func(ids []int) error {
					n += len(ids)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}
