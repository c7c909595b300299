package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Phi-3's vocabulary (Phi3MiniModel.set_vocab: tokenizer.model, then the
// added tokens of tokenizer_config.json and tokenizer.json as written,
// CONTROL when special) gives transformers' ids on kjv_eval.txt, read
// from the HF checkpoint and from the converter's GGUF; no BOS.
func TestPhi3KJV(t *testing.T) {
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := kjvIDs(t, testref.Local(t, "arch", "phi3-tiny.eval_token_ids.json"))
	for _, p := range []string{"phi3-tiny", "phi3-tiny.bf16.gguf"} {
		m, err := formats.Open(testref.Local(t, "arch", p))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		v, err := NewForModel(m)
		if err != nil {
			t.Fatal(err)
		}
		if v.AddBOS() {
			t.Errorf("%s: adds BOS; tokenizer_config.json says add_bos_token false", p)
		}
		if n := len(m.Tokenizer.Tokens); n != 4160 {
			t.Errorf("%s: %d tokens, want config.json's vocab_size 4160", p, n)
		}
		checkIDs(t, v.Encode(string(text), Options{AddSpecial: true}), want)
	}
}

// The tricky strings (special-token text, whitespace runs after special
// tokens: llama.cpp's "phi3" model-name rule makes special tokens RSTRIP)
// give llama-tokenize's ids on the converter's GGUF.
func TestPhi3LlamaTokenize(t *testing.T) {
	m, err := formats.Open(testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := NewForModel(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"phi3-tiny.tokens-llamacpp.json", "phi3-tiny.tokens-llamacpp-addspecial.json"} {
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
				t.Errorf("%s case %d %q:\n got  %v\n want %v", f, i, c.Text, got, c.IDs)
			}
		}
	}
}
