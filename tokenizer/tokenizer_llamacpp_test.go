//go:build llamacppvocab

// Cross-check of the tokenizers against llama.cpp's own vocabulary tests
// (tests/test-tokenizer-0.cpp with the models/ggml-vocab-*.gguf files and
// their .inp/.out cases). It needs a llama.cpp checkout, so it sits behind a
// build tag:
//
//	LLAMA_CPP_MODELS=~/llama.cpp/models go test -tags llamacppvocab -run LlamaCppVocab -v ./tokenizer
//
// LLAMA_CPP_MODELS defaults to ~/llama.cpp/models. Every ggml-vocab-*.gguf
// with both .inp and .out is tried; vocabularies whose tokenizer.ggml.model
// is neither "llama" (SentencePiece) nor "gpt2" (byte-level BPE) are listed
// as not supported (e.g. bert-bge's WordPiece) and not failed. As
// test-tokenizer-0 does, each input is tokenized with add_special=false and
// parse_special=false, and the cases are kept in a map keyed by the input
// text, so a repeated input counts once (its last expected ids win).
//
// Each supported vocabulary (those without .inp/.out too) is also checked
// against testdata/tokenizers/llamacpp-vocab-random.jsonl.gz: llama_tokenize
// ids of 150 random texts mixing words, scripts, whitespace and special-token
// texts, with random add_special/parse_special (regenerate with
// tokenizer_llamacpp_gen_test.go).
package tokenizer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
)

func llamaCppModelsDir(t *testing.T) string {
	dir := os.Getenv("LLAMA_CPP_MODELS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, "llama.cpp", "models")
	}
	if strings.HasPrefix(dir, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, dir[2:])
	}
	return dir
}

func TestLlamaCppVocab(t *testing.T) {
	dir := llamaCppModelsDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "ggml-vocab-*.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	type randomCase struct {
		text       string
		add, parse bool
		ids        []int
	}
	random := map[string][]randomCase{}
	llamaCppGolden(t, "llamacpp-vocab-random.jsonl.gz", func(rec map[string]any) {
		var ids []int
		for _, x := range rec["ids"].([]any) {
			ids = append(ids, int(x.(float64)))
		}
		name := rec["vocab"].(string)
		random[name] = append(random[name], randomCase{unhexString(t, rec["text"]),
			rec["add_special"].(bool), rec["parse_special"].(bool), ids})
	})
	tested := 0
	var summary []string
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "ggml-vocab-"), ".gguf")
		_, errInp := os.Stat(p + ".inp")
		_, errOut := os.Stat(p + ".out")
		hasCases := errInp == nil && errOut == nil
		if !hasCases && random[name] == nil {
			summary = append(summary, name+": no .inp/.out and no random cases")
			continue
		}
		m, err := gguf.ReadModel(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		tk := m.Tokenizer
		m.Close()
		if tk == nil {
			t.Errorf("%s: no tokenizer", p)
			continue
		}
		if tk.Model != graph.TokenizerSPM && tk.Model != graph.TokenizerBPE {
			summary = append(summary, name+": tokenizer model "+tk.Model+" not supported")
			continue
		}
		tested++
		t.Run(name, func(t *testing.T) {
			v, err := NewForModel(m) // general.name selects per-model token attributes
			if err != nil {
				t.Fatalf("%s (pre %q): %v", p, tk.Pre, err)
			}
			if rc := random[name]; rc != nil {
				pass := 0
				for _, c := range rc {
					got := v.Encode(c.text, Options{AddSpecial: c.add, ParseSpecial: c.parse})
					if equalIDs(got, c.ids) {
						pass++
						continue
					}
					t.Errorf("random add_special=%v parse_special=%v %+q:\n got  %v\n want %v", c.add, c.parse, c.text, got, c.ids)
				}
				summary = append(summary, fmt.Sprintf("%s: random %d/%d", name, pass, len(rc)))
			}
			if !hasCases {
				return
			}
			texts, ids := readVocabTests(t, p+".inp", p+".out")
			cases := map[string][]int{}
			for i, s := range texts {
				cases[s] = ids[i]
			}
			keys := make([]string, 0, len(cases))
			for s := range cases {
				keys = append(keys, s)
			}
			sort.Strings(keys)
			pass := 0
			for _, s := range keys {
				got := v.Encode(s, Options{})
				if equalIDs(got, cases[s]) {
					pass++
					continue
				}
				t.Errorf("%q:\n got  %v\n want %v", s, got, cases[s])
			}
			t.Logf("%s (model %s, pre %q): %d/%d", name, tk.Model, tk.Pre, pass, len(keys))
			summary = append(summary, fmt.Sprintf("%s: %d/%d", name, pass, len(keys)))
		})
	}
	for _, s := range summary {
		t.Log(s)
	}
	if tested == 0 {
		t.Fatalf("no ggml-vocab-*.gguf with .inp/.out under %s", dir)
	}
}
