package tokenizer

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// loadVocabGGUF reads the vocabulary of a GGUF file.
func loadVocabGGUF(t testing.TB, path string) *Tokenizer {
	t.Helper()
	m, err := gguf.ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Tokenizer == nil {
		t.Fatalf("%s: no tokenizer", path)
	}
	v, err := New(m.Tokenizer)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// readVocabTests reads llama.cpp's tokenizer test files (test-tokenizer-0):
// inputs separated by "\n__ggml_vocab_test__\n" and one line of ids each.
func readVocabTests(t testing.TB, inp, out string) (texts []string, ids [][]int) {
	t.Helper()
	raw, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	s := string(raw)
	for pos := 0; pos < len(s); {
		k := strings.Index(s[pos:], sep)
		if k < 0 {
			texts = append(texts, s[pos:])
			break
		}
		texts = append(texts, s[pos:pos+k])
		pos += k + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s has %d tests, %s has %d lines", inp, len(texts), out, len(lines))
	}
	for _, l := range lines {
		var row []int
		for _, f := range strings.Fields(l) {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			row = append(row, n)
		}
		ids = append(ids, row)
	}
	return texts, ids
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkVocabTests runs llama.cpp's test-tokenizer-0 cases: tokenize with
// add_special=false, parse_special=false and compare with the .out ids.
func checkVocabTests(t *testing.T, v *Tokenizer, inp, out string) {
	texts, want := readVocabTests(t, inp, out)
	for i, text := range texts {
		got := v.Encode(text, Options{})
		if !equalIDs(got, want[i]) {
			t.Errorf("test %d %q:\n got  %v\n want %v", i, text, got, want[i])
		}
	}
	t.Logf("%d/%d cases", len(texts), len(texts))
}

func TestVocabLlamaSPM(t *testing.T) {
	p := testref.Local(t, "real", "gguf", "ggml-vocab-llama-spm.gguf")
	v := loadVocabGGUF(t, p)
	checkVocabTests(t, v, p+".inp", p+".out")
}

func TestVocabGPT2(t *testing.T) {
	p := testref.Local(t, "real", "gguf", "ggml-vocab-gpt-2.gguf")
	v := loadVocabGGUF(t, p)
	// llama.cpp's .inp is the same for every vocabulary.
	checkVocabTests(t, v, testref.Local(t, "real", "gguf", "ggml-vocab-llama-spm.gguf.inp"), p+".out")
}

// checkIDs compares token ids and reports the first difference.
func checkIDs(t *testing.T, got, want []int) {
	t.Helper()
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			lo := max(0, i-3)
			t.Fatalf("id %d differs: got %v..., want %v... (lengths %d, %d)",
				i, got[lo:min(len(got), i+4)], want[lo:min(len(want), i+4)], len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d ids, want %d", len(got), len(want))
	}
	t.Logf("%d ids equal", len(got))
}
