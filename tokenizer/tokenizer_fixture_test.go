package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// loadVocab reads the vocabulary of a GGUF file or of an HF checkpoint
// directory.
func loadVocab(t testing.TB, path string) *Tokenizer {
	t.Helper()
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return loadVocabGGUF(t, path)
	}
	_, p, _, err := hf.ReadConfigFile(filepath.Join(path, "config.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	tok, err := hf.ReadTokenizer(path, p)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil {
		t.Fatalf("%s: no tokenizer", path)
	}
	v, err := New(tok)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// kjvIDs reads the reference ids of kjv_eval.txt (sentencepiece's encode,
// BOS first; llama.cpp gives the same ids).
func kjvIDs(t testing.TB, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][]int
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ids := m["kjv_eval.txt"]
	if len(ids) == 0 {
		t.Fatalf("%s: no ids for kjv_eval.txt", path)
	}
	return ids
}

// TestKJVFromHF tokenizes kjv_eval.txt with the SentencePiece model of the
// HF checkpoint (tokenizer.model read by formats/hf).
func TestKJVFromHF(t *testing.T) {
	v := loadVocab(t, testref.Local(t, "kjv-llama"))
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := kjvIDs(t, testref.Local(t, "kjv-llama.eval_token_ids.json"))
	if !v.AddBOS() || v.BOS() != want[0] {
		t.Fatalf("AddBOS %v BOS %d, want BOS %d first", v.AddBOS(), v.BOS(), want[0])
	}
	checkIDs(t, v.Encode(string(text), Options{AddSpecial: true}), want)
}

// tokenizerFixture is a file in testdata/tokenizers/: reference ids for
// texts, produced by another tokenizer implementation.
//
//	{
//	  "model": "kjv-llama",             // under testdata/: a .gguf file or an HF checkpoint directory
//	  "source": "llama-tokenize ...",   // what produced the ids (free text)
//	  "add_special": true,              // Options.AddSpecial (default false)
//	  "parse_special": false,           // Options.ParseSpecial (default false)
//	  "escape": false,                  // ProcessEscapes the text first (llama-tokenize's default)
//	  "cases": [{"text": "...", "ids": [1, 2, 3]}]
//	}
type tokenizerFixture struct {
	Model        string `json:"model"`
	Source       string `json:"source"`
	AddSpecial   bool   `json:"add_special"`
	ParseSpecial bool   `json:"parse_special"`
	Escape       bool   `json:"escape"`
	Cases        []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"cases"`
}

// TestTokenizerFixtures checks every testdata/tokenizers/*.json fixture.
func TestTokenizerFixtures(t *testing.T) {
	files, err := filepath.Glob(testref.Local(t, "tokenizers", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/tokenizers")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var fx tokenizerFixture
			if err := json.Unmarshal(b, &fx); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if fx.Model == "" || len(fx.Cases) == 0 {
				t.Fatalf("%s: needs \"model\" and \"cases\"", f)
			}
			v := loadVocab(t, testref.Local(t, filepath.FromSlash(fx.Model)))
			for i, c := range fx.Cases {
				text := c.Text
				if fx.Escape {
					text = ProcessEscapes(text)
				}
				got := v.Encode(text, Options{AddSpecial: fx.AddSpecial, ParseSpecial: fx.ParseSpecial})
				if !equalIDs(got, c.IDs) {
					t.Errorf("case %d %q:\n got  %v\n want %v", i, c.Text, got, c.IDs)
				}
			}
			t.Logf("%s: %d cases (%s)", fx.Model, len(fx.Cases), fx.Source)
		})
	}
}
