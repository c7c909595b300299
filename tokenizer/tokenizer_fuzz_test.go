package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzEncode feeds arbitrary bytes to the Llama 2 SentencePiece and GPT-2
// BPE vocabularies: no panic, every id in range, and for SentencePiece on
// valid UTF-8 without U+2581, Decode gives the text back.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", " ", "Hello world", "a\xffb\xc3", "\xed\xa0\x80 \xf7\xbf\xbf\xbf", "  \n\t\u3000x", "<s></s><unk>", "'s'RE 123456 ~~", "🦙.cpp 你好"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	spm := loadVocabGGUF(f, testref.Local(f, "real", "gguf", "ggml-vocab-llama-spm.gguf"))
	bpe := loadVocabGGUF(f, testref.Local(f, "real", "gguf", "ggml-vocab-gpt-2.gguf"))
	f.Fuzz(func(t *testing.T, text string, special bool) {
		for _, v := range []*Tokenizer{spm, bpe} {
			ids := v.Encode(text, Options{AddSpecial: true, ParseSpecial: special})
			for _, id := range ids {
				if id < 0 || id >= v.Len() {
					t.Fatalf("id %d out of range for %q", id, text)
				}
			}
			_ = v.Decode(ids)
		}
		if utf8.ValidString(text) && !strings.Contains(text, "\u2581") {
			if got := spm.Decode(spm.Encode(text, Options{})); got != text {
				t.Fatalf("SPM round trip of %q gave %q", text, got)
			}
		}
	})
}
