package perplexity

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// TestTokenizeAsLlamaPerplexity reads a text holding literal backslash
// sequences ("\n", "\t", "\x41", "\\") as ppl does and checks the ids
// against llama-tokenize run on the text exactly as llama-perplexity reads
// it: its final newline dropped, escapes not processed (and processed, for
// --escape). Before, ppl processed escapes by default and these ids
// differed.
func TestTokenizeAsLlamaPerplexity(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "text", "backslashes.ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Text   string `json:"text"`
		Models map[string]struct {
			IDs       []int `json:"ids"`
			IDsEscape []int `json:"ids_escape"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Models) == 0 {
		t.Fatal("no models in backslashes.ids.json")
	}
	for name, want := range ref.Models {
		var m *graph.Model
		if name == "kjv-llama" {
			m, err = hf.ReadDir(testref.Local(t, name))
		} else {
			m = unseenGGUF(t, name[len("unseen/"):len(name)-len(".bf16.gguf")])
		}
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.NewForModel(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range []struct {
			escape bool
			chunks int
			want   []int
		}{
			{false, 0, want.IDs},
			{true, 0, want.IDsEscape},
			{false, 2, want.IDs[:2*128]}, // --chunks 2 -c 128: the first 256 ids at least
		} {
			f, err := os.Open(testref.Local(t, ref.Text))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Tokenize(tok, tokenizer.NewTextReader(f, c.escape, true), Options{Ctx: 128, Chunks: c.chunks})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if c.chunks > 0 {
				if len(got) < len(c.want) || len(got) > len(want.IDs) {
					t.Errorf("%s chunks %d: %d ids", name, c.chunks, len(got))
					continue
				}
				got = got[:len(c.want)]
			}
			if i := firstDiff(got, c.want); i >= 0 || len(got) != len(c.want) {
				t.Errorf("%s escape=%v chunks=%d: %d ids, llama-tokenize %d; first difference at %d", name, c.escape, c.chunks, len(got), len(c.want), i)
			}
		}
		if slices.Equal(want.IDs, want.IDsEscape) {
			t.Errorf("%s: the text's escapes change nothing; the test cannot tell", name)
		}
	}
}
