package tokenizer

import (
	"math/rand"
	"reflect"
	"testing"
	"unicode"
)

// llama.cpp does not run the gpt2, llama3 and qwen2 regexes through
// std::regex: unicode.cpp has hand-written splitters for them
// (unicode_regex_split_custom_gpt2 / _llama3 / _qwen2). The oracles below
// restate those splitters; the tests check that the regexp2 path (which
// this package uses for every regex) cuts random text the same way.

type cptView []rune

const outOfRange = -1

func (c cptView) at(i int) rune {
	if i < 0 || i >= len(c) {
		return outOfRange
	}
	return c[i]
}
func (c cptView) letter(i int) bool { r := c.at(i); return r >= 0 && cptCategory(r) == catLetter }
func (c cptView) number(i int) bool { r := c.at(i); return r >= 0 && cptCategory(r) == catNumber }
func (c cptView) space(i int) bool  { r := c.at(i); return r >= 0 && isSpaceCpt(r) }

// other: a codepoint that is neither whitespace, letter nor number.
func (c cptView) other(i int) bool {
	return c.at(i) >= 0 && !c.space(i) && !c.letter(i) && !c.number(i)
}

// oracleLlama3 is llama.cpp's llama3 splitter; maxDigits 3 is llama3, 1 is
// qwen2 (whose splitter differs only there).
func oracleLlama3(cpts []rune, maxDigits int) [][2]int {
	c := cptView(cpts)
	var out [][2]int
	prev := 0
	add := func(end int) {
		if end > prev {
			out = append(out, [2]int{prev, end})
		}
		prev = end
	}
	for pos := 0; pos < len(c); {
		r := c[pos]
		if r == '\'' && pos+1 < len(c) {
			r1 := unicode.ToLower(c[pos+1])
			if r1 == 's' || r1 == 't' || r1 == 'm' || r1 == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < len(c) {
				r2 := unicode.ToLower(c[pos+2])
				if (r1 == 'r' && r2 == 'e') || (r1 == 'v' && r2 == 'e') || (r1 == 'l' && r2 == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}
		if r != '\r' && r != '\n' && !c.number(pos) && (c.letter(pos) || c.letter(pos+1)) {
			pos++
			for c.letter(pos) {
				pos++
			}
			add(pos)
			continue
		}
		if c.number(pos) {
			ini := pos
			for c.number(pos) {
				pos++
				if pos-ini >= maxDigits {
					add(pos)
					ini = pos
				}
			}
			add(pos)
			continue
		}
		q := pos
		if r == ' ' {
			q++
		}
		if c.other(q) {
			pos = q
			for c.other(pos) {
				pos++
			}
			for c.at(pos) == '\r' || c.at(pos) == '\n' {
				pos++
			}
			add(pos)
			continue
		}
		nws, lastRN := 0, 0
		for c.space(pos + nws) {
			if x := c.at(pos + nws); x == '\r' || x == '\n' {
				lastRN = pos + nws + 1
			}
			nws++
		}
		switch {
		case lastRN > 0:
			pos = lastRN
		case nws > 1 && pos+nws < len(c):
			pos += nws - 1
		case nws > 0:
			pos += nws
		default:
			pos++
		}
		add(pos)
	}
	return out
}

// oracleGPT2 is llama.cpp's gpt2 splitter.
func oracleGPT2(cpts []rune) [][2]int {
	c := cptView(cpts)
	var out [][2]int
	prev := 0
	add := func(end int) {
		if end > prev {
			out = append(out, [2]int{prev, end})
		}
		prev = end
	}
	for pos := 0; pos < len(c); {
		r := c[pos]
		if r == '\'' && pos+1 < len(c) {
			r1 := c[pos+1]
			if r1 == 's' || r1 == 't' || r1 == 'm' || r1 == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < len(c) {
				r2 := c[pos+2]
				if (r1 == 'r' && r2 == 'e') || (r1 == 'v' && r2 == 'e') || (r1 == 'l' && r2 == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}
		q := pos
		if r == ' ' {
			q++
		}
		cls := func(i int) int {
			switch {
			case c.letter(i):
				return 1
			case c.number(i):
				return 2
			case c.other(i):
				return 3
			}
			return 0
		}
		if k := cls(q); k != 0 {
			pos = q
			for cls(pos) == k {
				pos++
			}
			add(pos)
			continue
		}
		nws := 0
		for c.space(pos + nws) {
			nws++
		}
		switch {
		case nws > 1 && pos+nws < len(c):
			pos += nws - 1
		case nws > 0:
			pos += nws
		default:
			pos++
		}
		add(pos)
	}
	return out
}

// randomText draws from characters that exercise every branch: letters of
// several scripts and cases, digits (ASCII and not), marks, punctuation,
// symbols (including '~'), emoji, apostrophes and contraction letters,
// ASCII and non-ASCII whitespace, CR/LF, control and unassigned codepoints.
func randomText(rng *rand.Rand, n int) []rune {
	alphabet := []rune("aAsStTrReEvVmMlLdDxZ'''  \t\n\r\n0123456789.,!?-_~$+<=>^`|()[]{}\"/\\#@%&*:;" +
		"éÉßçñüΩωЖж你好世界가나٣٤²½\u0301\u0300\u00a0\u3000\u2028\u0085\u200b\u00ad😀🦙\u0007\u0378")
	out := make([]rune, n)
	for i := range out {
		out[i] = alphabet[rng.Intn(len(alphabet))]
	}
	return out
}

func TestPreTokenizerMatchesLlamaCustomSplitters(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	oracles := []struct {
		pre    string
		oracle func([]rune) [][2]int
	}{
		{"gpt-2", oracleGPT2},
		{"llama-bpe", func(c []rune) [][2]int { return oracleLlama3(c, 3) }},
		{"qwen2", func(c []rune) [][2]int { return oracleLlama3(c, 1) }},
	}
	for _, o := range oracles {
		s, err := newSplitter(preTypes[o.pre].regexes, true)
		if err != nil {
			t.Fatal(err)
		}
		fails := 0
		const n = 2000
		for i := 0; i < n && fails < 5; i++ {
			text := randomText(rng, 1+rng.Intn(24))
			got, err := s.split(text)
			if err != nil {
				t.Fatal(err)
			}
			if want := o.oracle(text); !reflect.DeepEqual(got, want) {
				fails++
				t.Errorf("%s %q:\n got  %v\n want %v", o.pre, string(text), got, want)
			}
		}
		t.Logf("%s: %d random texts", o.pre, n)
	}
}
