package tokenizer

import (
	"reflect"
	"testing"
)

// splitWords runs a named llama.cpp pre-tokenizer (without byte encoding).
func splitWords(t *testing.T, pre string, text string) []string {
	t.Helper()
	cfg, ok := preTypes[pre]
	if !ok {
		t.Fatalf("unknown pre-tokenizer %q", pre)
	}
	s, err := newSplitter(cfg.regexes, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.preTokenize(text, false)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The expected pieces follow the tokenizer.json regexes of GPT-2, Llama 3
// and Qwen2 as Hugging Face tokenizers applies them ("Isolated" splits).
func TestPreTokenizerSplits(t *testing.T) {
	cases := []struct {
		pre, text string
		want      []string
	}{
		// GPT-2: case-sensitive contractions, digit runs, \s+(?!\S).
		{"gpt-2", "Hello world", []string{"Hello", " world"}},
		{"gpt-2", "I'M you're", []string{"I", "'", "M", " you", "'re"}},
		{"gpt-2", "1234567 apples", []string{"1234567", " apples"}},
		{"gpt-2", "a  b", []string{"a", " ", " b"}},
		{"gpt-2", "a\nb", []string{"a", "\n", "b"}},
		{"gpt-2", "a \n\n b", []string{"a", " \n\n", " b"}},
		{"gpt-2", "end   ", []string{"end", "   "}},
		{"gpt-2", "3.14!", []string{"3", ".", "14", "!"}},
		// Llama 3: case-insensitive contractions, digits in groups of up
		// to three, newlines kept with preceding whitespace.
		{"llama-bpe", "Hello world", []string{"Hello", " world"}},
		{"llama-bpe", "I'M you'RE", []string{"I", "'M", " you", "'RE"}},
		{"llama-bpe", "1234567", []string{"123", "456", "7"}},
		{"llama-bpe", "x12345y", []string{"x", "123", "45", "y"}},
		{"llama-bpe", "a  b", []string{"a", " ", " b"}},
		{"llama-bpe", "a\n\n  b", []string{"a", "\n\n", " ", " b"}},
		{"llama-bpe", "hello!!\n\nworld", []string{"hello", "!!\n\n", "world"}},
		{"llama-bpe", "  lead", []string{" ", " lead"}},
		{"llama-bpe", "trail  ", []string{"trail", "  "}},
		{"llama-bpe", "(x)", []string{"(x", ")"}},
		{"llama-bpe", "café naïve", []string{"café", " naïve"}},
		{"llama-bpe", "你好 世界", []string{"你好", " 世界"}},
		{"llama-bpe", "👍👍 ok", []string{"👍👍", " ok"}},
		{"llama-bpe", "\t\tx", []string{"\t", "\tx"}},
		{"llama-bpe", "x \r\n", []string{"x", " \r\n"}},
		// Qwen2: same as Llama 3 but single digits.
		{"qwen2", "1234", []string{"1", "2", "3", "4"}},
		{"qwen2", "abc123 def", []string{"abc", "1", "2", "3", " def"}},
		{"qwen2", "it's", []string{"it", "'s"}},
		{"qwen2", "Arabic ٣٤", []string{"Arabic", " ", "٣", "٤"}},
		// default: four regexes applied in turn.
		{"default", "a+b=3000", []string{"a", "+", "b", "=", "300", "0"}},
		// deepseek-coder: '=' is a symbol, not \p{P}, so " = " stays whole.
		{"deepseek-coder", "x = 42\n", []string{"x", " = ", "4", "2", "\n"}},
		// kimi-k2: Han runs apart from other letters; contractions kept.
		{"kimi-k2", "Hello你好world's 12345  x", []string{"Hello", "你好", "world's", " ", "123", "45", " ", " x"}},
		// deepseek-llm: explicit classes applied in turn. ':-~' in the
		// punctuation class takes ASCII letters too, and U+0800-U+4E00 in
		// the CJK class takes U+1F7D etc.
		{"deepseek-llm", "a\u1f7d\u1fbe\u2126\u212a b", []string{"a", "\u1f7d\u1fbe\u2126\u212a", " b"}},
	}
	for _, c := range cases {
		got := splitWords(t, c.pre, c.text)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.pre, c.text, got, c.want)
		}
	}
}

// llama.cpp runs regexes without a hand-written splitter through std::regex
// on "collapsed" text; these cases pin the quirks that come with it.
func TestPreTokenizerLlamaQuirks(t *testing.T) {
	cases := []struct {
		name    string
		regexes []string
		text    string
		want    []string
	}{
		// \p{Lu} is every letter once collapsed.
		{"Lu is L", []string{`\p{Lu}+`}, "ABcdÉé", []string{"ABcdÉé"}},
		// '~' is missing from llama.cpp's ASCII \p{S} list.
		{"tilde not S", []string{`\p{S}+`}, "+~+", []string{"+", "~", "+"}},
		// \d is ASCII-only in ECMAScript.
		{"ascii d", []string{`\d+`}, "12٣٤56", []string{"12", "٣٤", "56"}},
		// non-ASCII whitespace reads as \v, so a literal U+3000 in a class
		// does not match it.
		{"ideographic space", []string{`[　]+`}, "a　b", []string{"a　b"}},
		{"ideographic space is \\s", []string{`\s+`}, "a　b", []string{"a", "　", "b"}},
		// $ anchors at the end of the piece only.
		{"dollar", []string{`\s+$`}, "a \n", []string{"a", " \n"}},
		// afmoe digit grouping: leading n%3 digits, then threes; text
		// before a digit run stays with its first group (as in llama.cpp).
		{"afmoe", []string{reAfmoeDigits}, "ab1234567", []string{"ab1", "234", "567"}},
		{"afmoe tail", []string{reAfmoeDigits}, "12x", []string{"12", "x"}},
		// zero-width matches cut without producing empty pieces.
		{"superbpe", []string{`\p{N}+`, `(?=(\d{3})+(?!\d))`}, "1234567", []string{"1", "234", "567"}},
	}
	for _, c := range cases {
		s, err := newSplitter(c.regexes, true)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := s.preTokenize(c.text, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.name, c.text, got, c.want)
		}
	}
}

// Regexes from a tokenizer.json run with Unicode semantics, including the
// (?i:...) groups that llama.cpp's std::regex cannot compile.
func TestPreTokenizerUnicodeMode(t *testing.T) {
	s, err := newSplitter([]string{`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{Lu}+|\p{Ll}+|\d+|\s+`}, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.preTokenize("HELLOworld'S ٣4", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HELLO", "world", "'S", " ", "٣4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDecodeCptsLikeLlama(t *testing.T) {
	cases := []struct {
		in   string
		want []rune
	}{
		{"a\xffb", []rune{'a', 0xFFFD, 'b'}},
		{"\xc3", []rune{0xFFFD}},
		{"\xc3\xa9", []rune{0xE9}},
		{"\xc0\x80", []rune{0}},              // overlong accepted, as llama.cpp does
		{"\xed\xa0\x80", []rune{0xD800}},     // surrogate accepted
		{"\xe2\x82", []rune{0xFFFD, 0xFFFD}}, // truncated: each byte replaced
	}
	for _, c := range cases {
		if got := decodeCpts(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %U, want %U", c.in, got, c.want)
		}
	}
	// Re-encoding keeps the surrogate bytes.
	if b := appendCpt(nil, 0xD800); string(b) != "\xed\xa0\x80" {
		t.Errorf("appendCpt(U+D800) = %q", b)
	}
}

func TestByteToUnicode(t *testing.T) {
	if byteToUnicode[' '] != "Ġ" || byteToUnicode['\n'] != "Ċ" || byteToUnicode['a'] != "a" || byteToUnicode[0xAD] != "Ń" {
		t.Errorf("byte map: ' '=%q '\\n'=%q a=%q 0xAD=%q", byteToUnicode[' '], byteToUnicode['\n'], byteToUnicode['a'], byteToUnicode[0xAD])
	}
	for b := 0; b < 256; b++ {
		if unicodeToByte[byteToUnicode[b]] != byte(b) {
			t.Fatalf("byte %d does not round-trip", b)
		}
	}
}

// Every pre-tokenizer llama.cpp knows must compile in the std::regex
// emulation (a reversed class range, for one, is a compile error).
func TestPreTypesCompile(t *testing.T) {
	for name, cfg := range preTypes {
		if _, err := newSplitter(cfg.regexes, true); err != nil {
			t.Errorf("pre-tokenizer %q: %v", name, err)
		}
	}
}
