//go:build llamacppgen

// Regenerates the llama.cpp golden files of the tokenizer tests from a
// llama.cpp checkout (LLAMA_CPP, default ~/llama.cpp) whose libllama is
// built (LLAMA_CPP_LIB, default $LLAMA_CPP/build/bin), with g++ and python3:
//
//	go test -tags llamacppgen -run LlamaCppGolden ./tokenizer
//
// It compiles the oracles in testdata/llamacpp-oracle against that
// checkout (llama.cpp's own unicode_regex_split and llama_tokenize; their
// regex tables are extracted from its sources at build time) and writes
//
//   - testdata/tokenizers/llamacpp-pretok.jsonl.gz: for every
//     tokenizer.ggml.pre name llama.cpp accepts, its load flags and the
//     pieces llama.cpp's pre-tokenizer cuts random texts into (read by the
//     default test TestPreTokenizerLlamaCppGolden);
//   - testdata/tokenizers/llamacpp-cpt-flags.txt.gz: llama.cpp's codepoint
//     categories, whitespace flags and lower-case mapping (read by the
//     default test TestCodepointCategoriesLlamaCpp);
//   - testdata/tokenizers/llamacpp-vocab-random.jsonl.gz: llama_tokenize ids
//     of random texts (both add_special and parse_special values) for each
//     ggml-vocab-*.gguf of $LLAMA_CPP/models that quantbridge supports (read
//     by TestLlamaCppVocab, tag llamacppvocab).
package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func llamaCppDir(t *testing.T) string {
	dir := os.Getenv("LLAMA_CPP")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, "llama.cpp")
	}
	return dir
}

func runCmd(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

// goldenText draws random text from characters that exercise the
// pre-tokenizers: several scripts and cases, digits of several kinds,
// marks, punctuation and symbols (ASCII and not), emoji, contractions,
// ASCII and non-ASCII whitespace, control and unassigned codepoints, the
// CJK/Hangul/Kana ranges of the hand-written classes; with bad, some
// invalid UTF-8 (but no sequence decoding above U+10FFFF, where llama.cpp
// throws).
func goldenText(rng *rand.Rand, n int, bad bool) string {
	alphabet := []rune("aAsStTrReEvVmMlLdDxZ'''  \t\n\r\n0123456789.,!?-_~$+<=>^`|()[]{}\"/\\#@%&*:;" +
		"éÉßçñüΩωЖж你好世界가나٣٤²½\u0301\u0300\u00a0\u3000\u2028\u0085\u200b\u00ad😀🦙\u0007\u0378" +
		"ひカ한ㄱㄅ！…“”‘’—：；，、。ｶ｡\u1f7d\u2126\u212aµ\u0e01\u1780ꩠ\uff01\uff5e\U00010400\u0660\u2160")
	out := make([]rune, n)
	for i := range out {
		out[i] = alphabet[rng.Intn(len(alphabet))]
	}
	s := string(out)
	if bad && rng.Intn(4) == 0 {
		bads := []string{"\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\x80", "\xed\xa0\x80", "\xc0\xaf", "\xf8\x88\x80\x80\x80"}
		k := rng.Intn(len(s) + 1)
		s = s[:k] + bads[rng.Intn(len(bads))] + s[k:]
	}
	return s
}

func writeGzipLines(t *testing.T, path string, recs []any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	enc := json.NewEncoder(zw)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	t.Logf("wrote %s (%d records, %d bytes)", path, len(recs), st.Size())
}

func TestLlamaCppGolden(t *testing.T) {
	root := llamaCppDir(t)
	lib := os.Getenv("LLAMA_CPP_LIB")
	if lib == "" {
		lib = filepath.Join(root, "build", "bin")
	}
	src, err := filepath.Abs(filepath.Join("testdata", "llamacpp-oracle"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	runCmd(t, "", "python3", filepath.Join(src, "extract_pretok.py"), root, tmp)
	pre := filepath.Join(tmp, "pretok_oracle")
	runCmd(t, "", "g++", "-O1", "-std=c++17", "-I"+tmp, "-I"+filepath.Join(root, "src"), "-o", pre,
		filepath.Join(src, "pretok_oracle.cpp"), filepath.Join(root, "src", "unicode.cpp"), filepath.Join(root, "src", "unicode-data.cpp"))
	tok := filepath.Join(tmp, "tok_oracle")
	runCmd(t, "", "g++", "-O1", "-std=c++17", "-I"+filepath.Join(root, "include"), "-I"+filepath.Join(root, "ggml", "include"),
		"-o", tok, filepath.Join(src, "tok_oracle.cpp"), "-L"+lib, "-lllama", "-lggml", "-lggml-base", "-Wl,-rpath,"+lib)

	// Codepoint table.
	flags := filepath.Join(tmp, "cpt_flags_oracle")
	runCmd(t, "", "g++", "-O1", "-std=c++17", "-I"+filepath.Join(root, "src"), "-o", flags,
		filepath.Join(src, "cpt_flags_oracle.cpp"), filepath.Join(root, "src", "unicode.cpp"), filepath.Join(root, "src", "unicode-data.cpp"))
	{
		path := testref.Local(t, "tokenizers") + "/llamacpp-cpt-flags.txt.gz"
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
		if _, err := zw.Write([]byte(runCmd(t, "", flags))); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Pre-tokenizer splits.
	var recs []any
	var in strings.Builder
	type job struct{ pre, text string }
	var jobs []job
	rng := rand.New(rand.NewSource(20240601))
	for _, l := range strings.Split(strings.TrimRight(runCmd(t, "", pre, "list"), "\n"), "\n") {
		f := strings.Split(l, "\t")
		name := f[0]
		recs = append(recs, map[string]any{"pre": name, "byte_encode": f[2] == "1", "flags": f[3]})
		for i := 0; i < 40; i++ {
			text := goldenText(rng, 1+rng.Intn(40), true)
			jobs = append(jobs, job{name, text})
			fmt.Fprintf(&in, "%s %s\n", name, hex.EncodeToString([]byte(text)))
		}
	}
	sc := bufio.NewScanner(strings.NewReader(runCmd(t, in.String(), pre)))
	sc.Buffer(nil, 1<<24)
	for i := 0; sc.Scan(); i++ {
		l := sc.Text()
		if !strings.HasPrefix(l, "OK") {
			t.Fatalf("%q %q: %s", jobs[i].pre, jobs[i].text, l)
		}
		pieces := strings.Fields(l[2:])
		if pieces == nil {
			pieces = []string{}
		}
		recs = append(recs, map[string]any{"pre": jobs[i].pre, "text": hex.EncodeToString([]byte(jobs[i].text)), "pieces": pieces})
	}
	writeGzipLines(t, testref.Local(t, "tokenizers")+"/llamacpp-pretok.jsonl.gz", recs)

	// Vocabulary tokenization.
	recs = nil
	paths, _ := filepath.Glob(filepath.Join(root, "models", "ggml-vocab-*.gguf"))
	sort.Strings(paths)
	inp, err := os.ReadFile(filepath.Join(root, "models", "ggml-vocab-llama-spm.gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(strings.ReplaceAll(string(inp), "__ggml_vocab_test__", ""))
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "ggml-vocab-"), ".gguf")
		m, err := gguf.ReadModel(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		if m.Tokenizer == nil || (m.Tokenizer.Model != graph.TokenizerSPM && m.Tokenizer.Model != graph.TokenizerBPE) {
			continue
		}
		v, err := NewForModel(m)
		if err != nil {
			t.Fatal(err)
		}
		var specials []string
		for _, id := range v.special {
			specials = append(specials, v.tokens[id])
		}
		specials = append(specials, eogTexts[:10]...)
		rng := rand.New(rand.NewSource(int64(len(name))))
		type job struct {
			text   string
			as, ps bool
		}
		var jobs []job
		var in strings.Builder
		for i := 0; i < 150; i++ {
			var b strings.Builder
			for j, k := 0, 1+rng.Intn(12); j < k; j++ {
				switch rng.Intn(6) {
				case 0, 1:
					b.WriteString(words[rng.Intn(len(words))])
				case 2:
					b.WriteString(goldenText(rng, 1+rng.Intn(6), false))
				case 3:
					b.WriteString(strings.Repeat(" ", rng.Intn(4)))
				case 4:
					b.WriteString(specials[rng.Intn(len(specials))])
				case 5:
					b.WriteString([]string{" ", "\n", "\n\n", "\t", " \n ", "'s", "'LL", "123456"}[rng.Intn(8)])
				}
			}
			jb := job{b.String(), rng.Intn(2) == 0, rng.Intn(2) == 0}
			jobs = append(jobs, jb)
			fmt.Fprintf(&in, "%d%d %s\n", b2i(jb.as), b2i(jb.ps), hex.EncodeToString([]byte(jb.text)))
		}
		sc := bufio.NewScanner(strings.NewReader(runCmd(t, in.String(), tok, p)))
		sc.Buffer(nil, 1<<24)
		for i := 0; sc.Scan(); i++ {
			f := strings.Fields(sc.Text())
			if f[0] != "OK" {
				t.Fatalf("%s %q: %s", name, jobs[i].text, sc.Text())
			}
			ids := []int{}
			for _, s := range f[1:] {
				n, _ := strconv.Atoi(s)
				ids = append(ids, n)
			}
			recs = append(recs, map[string]any{"vocab": name, "add_special": jobs[i].as, "parse_special": jobs[i].ps,
				"text": hex.EncodeToString([]byte(jobs[i].text)), "ids": ids})
		}
	}
	writeGzipLines(t, testref.Local(t, "tokenizers")+"/llamacpp-vocab-random.jsonl.gz", recs)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
