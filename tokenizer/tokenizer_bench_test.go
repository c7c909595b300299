package tokenizer

import (
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
