package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz targets for the pre-tokenizer families: llama.cpp's llama3, qwen2
// and gpt-2 splitters (built-in regexes run through the std::regex
// emulation, checked against the oracles of pretok_diff_test.go) and the
// regexp2 path that runs tokenizer.json regexes with Unicode semantics.
// Every target checks that the pieces tile the text (so they concatenate
// back to it) and that byte-encoded pieces decode back to its bytes.

// pretokSeeds adds the first lines of the evaluation text and a few
// strings that exercise contractions, digits, whitespace runs, non-ASCII
// categories and invalid UTF-8.
func pretokSeeds(f *testing.F) {
	fh, err := os.Open(filepath.Join("..", "testdata", "kjv_eval.txt"))
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for i := 0; i < 4 && sc.Scan(); i++ {
		f.Add(sc.Text())
	}
	for _, s := range []string{
		"", " ", "I'M you'RE we'll 'S", "1234567 x12345y", "a  b\n\n  c \r\n", "trail   ",
		"café naïve 你好 世界 👍👍 ok", "\u00a0\u3000x\u2028y\u0085", "e\u0301\u0300 ½²٣", "a\xffb\xc3 \xed\xa0\x80",
		"(x) \"q\" $5+3<=4^~|", "\t\tx\v\f", "don't\n\n\n'll", "\u200b\u00ad\u0378\u0007",
	} {
		f.Add(s)
	}
}

// reencode is the UTF-8 text the pieces of text concatenate to:
// decodeCpts replaces each invalid byte with U+FFFD; valid UTF-8 is kept.
func reencode(text string) string {
	var b []byte
	for _, r := range decodeCpts(text) {
		b = appendCpt(b, r)
	}
	return string(b)
}

// checkSplit runs s on text and checks the piece properties; it returns
// the codepoint ranges.
func checkSplit(t *testing.T, s *splitter, text string, byteEncode bool) [][2]int {
	t.Helper()
	cpts := decodeCpts(text)
	pieces, err := s.split(cpts)
	if err != nil {
		t.Fatalf("split %q: %v", text, err)
	}
	end := 0
	for _, p := range pieces {
		if p[0] != end || p[1] <= p[0] {
			t.Fatalf("pieces %v of %q do not tile the text", pieces, text)
		}
		end = p[1]
	}
	if end != len(cpts) {
		t.Fatalf("pieces %v of %q end at %d of %d codepoints", pieces, text, end, len(cpts))
	}
	words, err := s.preTokenize(text, false)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(words, "")
	if joined != reencode(text) || (utf8.ValidString(text) && joined != text) {
		t.Fatalf("pieces %q of %q concatenate to %q", words, text, joined)
	}
	if byteEncode {
		enc, err := s.preTokenize(text, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != len(words) {
			t.Fatalf("%d byte-encoded pieces for %d pieces", len(enc), len(words))
		}
		for i, w := range enc {
			var dec []byte
			for _, r := range w {
				c, ok := unicodeToByte[string(r)]
				if !ok {
					t.Fatalf("byte-encoded piece %q has %q outside the byte map", w, r)
				}
				dec = append(dec, c)
			}
			if string(dec) != words[i] {
				t.Fatalf("byte-encoded piece %q decodes to %q, want %q", w, dec, words[i])
			}
		}
	}
	return pieces
}

// fuzzLlamaFamily fuzzes a built-in pre-tokenizer against the oracle of
// llama.cpp's hand-written splitter for it.
func fuzzLlamaFamily(f *testing.F, pre string, oracle func([]rune) [][2]int) {
	pretokSeeds(f)
	cfg, ok := preTypes[pre]
	if !ok {
		f.Fatalf("unknown pre-tokenizer %q", pre)
	}
	s, err := newSplitter(cfg.regexes, true)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1<<12 {
			return
		}
		got := checkSplit(t, s, text, cfg.byteEncode)
		if want := oracle(decodeCpts(text)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q:\n got  %v\n want %v (llama.cpp's splitter)", pre, text, got, want)
		}
	})
}

func FuzzPreTokenizeLlama3(f *testing.F) {
	fuzzLlamaFamily(f, "llama-bpe", func(c []rune) [][2]int { return oracleLlama3(c, 3) })
}

func FuzzPreTokenizeQwen2(f *testing.F) {
	fuzzLlamaFamily(f, "qwen2", func(c []rune) [][2]int { return oracleLlama3(c, 1) })
}

func FuzzPreTokenizeGPT2(f *testing.F) {
	fuzzLlamaFamily(f, "gpt-2", oracleGPT2)
}

// tokenizerJSONRegexes returns the Split regexes of the pre_tokenizer of
// a tokenizer.json in testdata.
func tokenizerJSONRegexes(tb testing.TB, dir string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "unseen", dir, "tokenizer.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var tj struct {
		PreTokenizer struct {
			Pretokenizers []struct {
				Pattern struct{ Regex string }
			}
		} `json:"pre_tokenizer"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		tb.Fatal(err)
	}
	var res []string
	for _, p := range tj.PreTokenizer.Pretokenizers {
		if p.Pattern.Regex != "" {
			res = append(res, p.Pattern.Regex)
		}
	}
	if len(res) == 0 {
		tb.Fatalf("%s: no Split regex", dir)
	}
	return res
}

// FuzzPreTokenizeRegexp2 runs the real Llama 3 and Qwen2 tokenizer.json
// regexes through the regexp2 (Unicode semantics) path.
func FuzzPreTokenizeRegexp2(f *testing.F) {
	pretokSeeds(f)
	var splitters []*splitter
	for _, dir := range []string{"llama3-bpe-tied", "qwen2-bpe-tied"} {
		s, err := newSplitter(tokenizerJSONRegexes(f, dir), false)
		if err != nil {
			f.Fatal(err)
		}
		splitters = append(splitters, s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1<<12 {
			return
		}
		for _, s := range splitters {
			checkSplit(t, s, text, true)
		}
	})
}

// FuzzPreTokenizeRegex runs arbitrary regexes, as a tokenizer.json may
// carry, through the regexp2 path: a regex either does not compile, or
// splits any text into pieces that tile it (or times out: backtracking
// regexes are the file's problem, bounded here by a match timeout).
func FuzzPreTokenizeRegex(f *testing.F) {
	for _, dir := range []string{"llama3-bpe-tied", "qwen2-bpe-tied"} {
		for _, re := range tokenizerJSONRegexes(f, dir) {
			f.Add(re, "Hello world's 12345  \n\n x")
		}
	}
	for _, re := range []string{`\s+(?!\S)`, `(?<=a)b|\b`, `$|^`, `(?=x)`, `\G.`, `(a|ab)(c|bcd)(d*)`, `[\p{Han}\p{Hiragana}]+|\p{N}{1,3}`} {
		f.Add(re, "ab abc x\u4f60\u3042 123456")
	}
	f.Fuzz(func(t *testing.T, re, text string) {
		if len(re) > 256 || len(text) > 256 {
			return
		}
		s, err := newSplitter([]string{re}, false)
		if err != nil {
			return
		}
		for _, st := range s.steps {
			st.re.MatchTimeout = 100 * time.Millisecond
		}
		cpts := decodeCpts(text)
		pieces, err := s.split(cpts)
		if err != nil {
			if !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("regex %q on %q: %v", re, text, err)
			}
			return
		}
		end := 0
		for _, p := range pieces {
			if p[0] != end || p[1] <= p[0] {
				t.Fatalf("regex %q: pieces %v of %q do not tile the text", re, pieces, text)
			}
			end = p[1]
		}
		if end != len(cpts) {
			t.Fatalf("regex %q: pieces %v of %q end at %d of %d codepoints", re, pieces, text, end, len(cpts))
		}
	})
}
