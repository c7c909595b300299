package tokenizer

import (
	"io"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// segmentCorpus is text that exercises the cut rules: prose, code with
// backslashes, tabs, CRLF, runs of spaces, digits, contractions, non-ASCII
// and CJK without spaces, and special-token texts.
func segmentCorpus(t testing.TB) string {
	t.Helper()
	kjv, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{
		"printf(\"a\\n b\\t\\x41\");\r\n\tif (x) {\r\n\t\treturn y;   \r\n}\r\n",
		"They're here, I'll go; we've 12345 and 3.14159 apples   and    spaces\n\n\n",
		"Ünïcödé — “quotes” 日本語のテキストは空白なしで続きます。中文文本也没有空格。 🦙 café naïve Ελληνικά Русский\n",
		"<s> and </s> and <unk>, <|begin_of_text|>word<|end_of_text|> <|im_start|>user\nhi<|im_end|> <|endoftext|>x\n",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	}
	var b strings.Builder
	r := rand.New(rand.NewSource(1))
	for i := 0; b.Len() < 160<<10; i++ {
		lines := strings.SplitAfter(string(kjv), "\n")
		k := r.Intn(len(lines))
		b.WriteString(strings.Join(lines[k:min(k+5, len(lines))], ""))
		b.WriteString(extra[i%len(extra)])
	}
	return b.String()
}

// chunkReader returns its text in reads of random sizes.
type chunkReader struct {
	s string
	r *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.r.Intn(5000))], c.s)
	c.s = c.s[n:]
	return n, nil
}

// TestSegmentsEqualWhole checks that tokenizing in segments (Encode,
// EncodeReader) gives the ids of tokenizing the whole text at once, for
// SentencePiece and BPE vocabularies, with and without special-token
// parsing, and that segments were indeed cut.
func TestSegmentsEqualWhole(t *testing.T) {
	text := segmentCorpus(t)
	for _, model := range []string{
		"kjv-llama",
		"real/gguf/ggml-vocab-llama-spm.gguf",
		"real/gguf/ggml-vocab-gpt-2.gguf",
		"unseen/llama3-bpe-tied.bf16.gguf",
		"unseen/qwen2-bpe-tied.bf16.gguf",
	} {
		v := loadVocab(t, testref.Local(t, model))
		for _, opt := range []Options{{AddSpecial: true}, {ParseSpecial: true}} {
			whole := v.encode(text, opt, 0)
			for _, size := range []int{100, 1000, segmentSize} {
				cuts := v.cuts(text, opt, size)
				if len(cuts) < len(text)/max(size, 1000)/4 {
					t.Errorf("%s size %d: only %d cuts in %d bytes", model, size, len(cuts), len(text))
				}
				if got := v.encode(text, opt, size); !slices.Equal(got, whole) {
					t.Errorf("%s %+v size %d (%d cuts): first difference at %d", model, opt, size, len(cuts), firstDiffIDs(got, whole))
				}
			}
			var got []int
			err := v.EncodeReader(&chunkReader{text, rand.New(rand.NewSource(2))}, opt, func(ids []int) error {
				got = append(got, ids...)
				return nil
			})
			if err != nil || !slices.Equal(got, whole) {
				t.Errorf("%s %+v EncodeReader: %v, first difference at %d", model, opt, err, firstDiffIDs(got, whole))
			}
			// Stopping early gives a prefix of the whole text's ids.
			got = got[:0]
			err = v.EncodeReader(strings.NewReader(text), opt, func(ids []int) error {
				got = append(got, ids...)
				return ErrStop
			})
			if err != nil || len(got) == 0 || len(got) >= len(whole) || !slices.Equal(got, whole[:len(got)]) {
				t.Errorf("%s %+v EncodeReader stopped: %v, %d ids of %d", model, opt, err, len(got), len(whole))
			}
		}
	}
}

// TestPreTokenizerSegments checks the BPE cut rule on every pre-tokenizer
// that segmentSafe accepts: the pieces of the whole text are the pieces of
// the segments, cut where findCut cuts.
func TestPreTokenizerSegments(t *testing.T) {
	text := segmentCorpus(t)[:40<<10]
	var names []string
	for n := range preTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	safe := 0
	for _, name := range names {
		cfg := preTypes[name]
		if !cfg.segmentSafe() {
			t.Logf("%q: not segmented", name)
			continue
		}
		safe++
		v := mustVocab(t, byteLevelVocab(name, helloExtra, helloMerges, nil))
		if !v.segmentable {
			t.Fatalf("%q: segmentSafe but not segmentable", name)
		}
		whole, err := v.split.preTokenize(text, false)
		if err != nil {
			t.Fatal(err)
		}
		cuts := v.cuts(text, Options{}, 200)
		if len(cuts) < 10 {
			t.Fatalf("%q: %d cuts", name, len(cuts))
		}
		var got []string
		last := 0
		for _, p := range append(cuts, len(text)) {
			w, err := v.split.preTokenize(text[last:p], false)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, w...)
			last = p
		}
		if !slices.Equal(got, whole) {
			i := 0
			for i < len(got) && i < len(whole) && got[i] == whole[i] {
				i++
			}
			t.Errorf("%q: pieces differ at %d: %q vs %q", name, i, got[i:min(i+3, len(got))], whole[i:min(i+3, len(whole))])
		}
	}
	if safe < len(names)/2 {
		t.Errorf("only %d of %d pre-tokenizers segmented", safe, len(names))
	}
}

func firstDiffIDs(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
