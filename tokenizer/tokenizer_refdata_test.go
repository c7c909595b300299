//go:build refdata

package tokenizer

import (
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestKJVFromGGUF tokenizes kjv_eval.txt with the vocabulary llama.cpp's
// converter wrote into kjv-llama.bf16.gguf.
func TestKJVFromGGUF(t *testing.T) {
	v := loadVocabGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	text, err := os.ReadFile(testref.Shared(t, "text", "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := kjvIDs(t, testref.Shared(t, "kjv-llama.eval_token_ids.json"))
	got := v.Encode(string(text), Options{AddSpecial: true})
	checkIDs(t, got, want)
	if s := v.Decode(got[1:]); s != string(text) {
		t.Errorf("Decode does not round-trip kjv_eval.txt (%d bytes back, want %d)", len(s), len(text))
	}
}

// TestVocabPhi3 runs llama.cpp's test strings through the Phi-3 vocabulary
// (the Llama 2 SentencePiece vocabulary plus added special tokens); none of
// the strings contains an added token, so the ids must equal Llama 2's.
func TestVocabPhi3(t *testing.T) {
	v := loadVocabGGUF(t, testref.Shared(t, "real", "gguf", "ggml-vocab-phi-3.gguf"))
	checkVocabTests(t, v, testref.Shared(t, "real", "gguf", "ggml-vocab-llama-spm.gguf.inp"),
		testref.Shared(t, "real", "gguf", "ggml-vocab-llama-spm.gguf.out"))
}
