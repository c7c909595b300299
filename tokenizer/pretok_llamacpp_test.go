package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// llamaCppGolden reads a gzipped JSON-lines golden file of
// testdata/tokenizers (written by tokenizer_llamacpp_gen_test.go from
// llama.cpp's own code) and calls fn with each record.
func llamaCppGolden(t *testing.T, name string, fn func(rec map[string]any)) {
	t.Helper()
	f, err := os.Open(testref.Local(t, "tokenizers", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fn(rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func unhexString(t *testing.T, s any) string {
	t.Helper()
	b, err := hex.DecodeString(s.(string))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPreTokenizerLlamaCppGolden checks the pre-tokenizer table against
// llama.cpp itself: the set of tokenizer.ggml.pre names it accepts, the
// flags each one sets, and the pieces its unicode_regex_split cuts random
// texts (several scripts, whitespace kinds, invalid UTF-8) into, for every
// name (40 texts each).
func TestPreTokenizerLlamaCppGolden(t *testing.T) {
	names := map[string]bool{}
	splitters := map[string]*splitter{}
	checked, fails := 0, 0
	llamaCppGolden(t, "llamacpp-pretok.jsonl.gz", func(rec map[string]any) {
		name := rec["pre"].(string)
		if _, un := unsupportedPre[name]; un {
			names[name] = true
			return
		}
		cfg, ok := preTypes[name]
		if !ok {
			t.Errorf("llama.cpp accepts pre-tokenizer %q; preTypes has no entry", name)
			return
		}
		if flags, ok := rec["flags"].(string); ok {
			names[name] = true
			has := func(f string) bool { return strings.Contains(flags, f) }
			if cfg.byteEncode != rec["byte_encode"].(bool) {
				t.Errorf("%q: byteEncode %v, llama.cpp %v", name, cfg.byteEncode, rec["byte_encode"])
			}
			if cfg.cleanSpaces == has("clean_spaces=false") {
				t.Errorf("%q: cleanSpaces %v, llama.cpp flags %q", name, cfg.cleanSpaces, flags)
			}
			if cfg.ignoreMerges != has("ignore_merges=true") {
				t.Errorf("%q: ignoreMerges %v, llama.cpp flags %q", name, cfg.ignoreMerges, flags)
			}
			if cfg.escapeSpaces != has("escape_whitespaces=true") {
				t.Errorf("%q: escapeSpaces %v, llama.cpp flags %q", name, cfg.escapeSpaces, flags)
			}
			if cfg.noBOS != has("special_bos_id=LLAMA_TOKEN_NULL") {
				t.Errorf("%q: noBOS %v, llama.cpp flags %q", name, cfg.noBOS, flags)
			}
			// gemma4's add_bos is forced later in llama.cpp's load.
			if !cfg.gemma4 && cfg.addBOS != has("add_bos=true") {
				t.Errorf("%q: addBOS %v, llama.cpp flags %q", name, cfg.addBOS, flags)
			}
			return
		}
		sp := splitters[name]
		if sp == nil {
			var err error
			if sp, err = newSplitter(cfg.regexes, true); err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			splitters[name] = sp
		}
		text := unhexString(t, rec["text"])
		var want []string
		for _, p := range rec["pieces"].([]any) {
			want = append(want, unhexString(t, p))
		}
		got, err := sp.preTokenize(text, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			got = nil
		}
		checked++
		if !reflect.DeepEqual(got, want) {
			if fails++; fails <= 10 {
				t.Errorf("%q %+q:\n got  %+q\n want %+q", name, text, got, want)
			}
		}
	})
	for name := range preTypes {
		if !names[name] {
			t.Errorf("preTypes has %q, which llama.cpp does not accept", name)
		}
	}
	if checked == 0 {
		t.Fatal("no split cases")
	}
	t.Logf("%d pre-tokenizer names, %d splits checked, %d differ", len(names), checked, fails)
}

// TestCodepointCategoriesLlamaCpp checks the codepoint classes the
// pre-tokenizer uses (category, whitespace) and unicode.ToLower (the
// contraction matching of the hand-written splitters) against llama.cpp's
// table for every codepoint.
func TestCodepointCategoriesLlamaCpp(t *testing.T) {
	f, err := os.Open(testref.Local(t, "tokenizers", "llamacpp-cpt-flags.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	covered, diffs := rune(0), 0
	lowered := map[rune]rune{}
	for sc.Scan() {
		var lo, hi rune
		var class int
		if n, _ := fmt.Sscanf(sc.Text(), "L %x %x", &lo, &hi); n == 2 {
			lowered[lo] = hi
			continue
		}
		if n, err := fmt.Sscanf(sc.Text(), "%x %x %d", &lo, &hi, &class); n != 3 {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if lo != covered {
			t.Fatalf("runs not contiguous at %U", lo)
		}
		for r := lo; r <= hi; r++ {
			got := cptCategory(r)
			if isSpaceCpt(r) {
				got |= 8
			}
			if got != class {
				if diffs++; diffs <= 10 {
					t.Errorf("%U: class %d, llama.cpp %d", r, got, class)
				}
			}
		}
		covered = hi + 1
	}
	if covered != unicode.MaxRune+1 {
		t.Fatalf("table ends at %U", covered)
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		want, ok := lowered[r]
		if !ok {
			want = r
		}
		if got := unicode.ToLower(r); got != want {
			if diffs++; diffs <= 20 {
				t.Errorf("ToLower(%U) = %U, llama.cpp %U", r, got, want)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d codepoints differ", diffs)
	}
}
