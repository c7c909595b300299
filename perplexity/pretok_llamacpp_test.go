package perplexity

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

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
