package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestGemma3Tokenizer: the vocabulary read from the HF checkpoint
// (tokenizer.model: no dummy prefix, byte fallback, user-defined tokens)
// and from the converter's GGUF gives transformers' ids for kjv_eval.txt
// (BOS first) and for the tricky strings, with and without special tokens
// added.
func TestGemma3Tokenizer(t *testing.T) {
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := kjvIDs(t, testref.Local(t, "arch", "gemma3-tiny.eval_token_ids.json"))
	for _, model := range []string{"gemma3-tiny", "gemma3-tiny.bf16.gguf"} {
		t.Run(model, func(t *testing.T) {
			v := loadVocab(t, testref.Local(t, "arch", model))
			checkIDs(t, v.Encode(string(text), Options{AddSpecial: true}), want)
			for _, f := range []string{"gemma3-tiny.tokens-hf.json", "gemma3-tiny.tokens-hf-addspecial.json"} {
				b, err := os.ReadFile(testref.Local(t, "arch", f))
				if err != nil {
					t.Fatal(err)
				}
				var fx tokenizerFixture
				if err := json.Unmarshal(b, &fx); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if len(fx.Cases) == 0 {
					t.Fatalf("%s: no cases", f)
				}
				for i, c := range fx.Cases {
					if got := v.Encode(c.Text, Options{AddSpecial: fx.AddSpecial, ParseSpecial: fx.ParseSpecial}); !equalIDs(got, c.IDs) {
						t.Errorf("%s case %d %q:\n got  %v\n want %v", filepath.Base(f), i, c.Text, got, c.IDs)
					}
				}
			}
		})
	}
}
