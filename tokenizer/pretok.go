package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/dlclark/regexp2"
)

// This file holds the BPE pre-tokenizer: the split regexes llama.cpp
// associates with each tokenizer.ggml.pre value (llm_tokenizer_bpe's
// constructor in src/llama-vocab.cpp) and a port of unicode_regex_split
// (src/unicode.cpp).
//
// llama.cpp runs its built-in regexes through std::regex (ECMAScript), which
// has no \p{..} classes. It therefore "collapses" the text: every codepoint
// >= 128 becomes one stand-in character per Unicode category (letters 0xD2,
// numbers 0xD1, punctuation 0xD3, marks 0xD4, symbols 0xD5, whitespace 0x0B,
// anything else 0xD0), and each \p{X} in the regex becomes a class of the
// stand-in plus the ASCII members of X. Regexes without \p{..} run on the
// codepoints with non-ASCII whitespace replaced by 0x0B. That collapsing has
// observable quirks (\p{Lu} matches every letter, '~' is not \p{S}, \d and \w
// are ASCII-only, a literal U+3000 in a class never matches because the text
// holds 0x0B there), so we reproduce it exactly and run the rewritten regex
// with regexp2. A few gpt2/llama3/qwen2 regexes have hand-written splitters in
// llama.cpp; for those the collapsed regex gives the same pieces, except the
// digit-grouping ones (afmoe, tiny_aya), whose hand-written splitter differs
// from its regex and is ported as is, and kimi-k2, whose "\p{Han}+" stands
// for a hand-written splitter of Kimi's Han-excluding regex, also ported.
//
// Regexes taken from a tokenizer.json (graph.Tokenizer.PreRegex, used only
// when the pre-tokenizer name is not one llama.cpp knows) are run by regexp2
// on the real codepoints with Unicode semantics, as Hugging Face tokenizers
// (Oniguruma) would.

// preConfig is what a tokenizer.ggml.pre value selects in llama.cpp.
type preConfig struct {
	regexes      []string
	ignoreMerges bool
	cleanSpaces  bool // detokenizer clean-up (llama.cpp default true for BPE)
	addBOS       bool // default for add_bos when the metadata does not say
	noBOS        bool // special_bos_id forced to none (chatglm)
	byteEncode   bool // GPT-2 byte-to-unicode mapping of each piece
	escapeSpaces bool // replace ' ' with U+2581 before splitting
	gemma4       bool // gemma4 quirks: forced add_bos, newline-run words taken whole
}

// Regex bodies shared by several pre-tokenizers (llama.cpp's adapted forms).
const (
	reGPT2       = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reContr      = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`
	reLlama3     = reContr + `|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2      = reContr + `|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reDeepseek3  = `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + "`" + `{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reStarcoder  = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	rePoro       = ` ?[^(\s|.,!?…。，、।۔،)]+`
	reGPT4oLook  = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+` + reContr + `?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*` + reContr + `?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reTekken     = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reGraniteEmb = `[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+` + reContr + `?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*` + reContr + `?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reUpperLower = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` + reContr + `?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` + reContr + `?`
	reNewlines   = `[^\n]+|[\n]+`
	// Marker regexes that llama.cpp routes to hand-written splitters.
	reAfmoeDigits  = `\p{AFMoE_digits}`
	reTinyAyaDigit = `\d{1,3}(?=(?:\d{3})*\b)`
	reKimiK2       = `\p{Han}+`
)

// preTypes maps each tokenizer.ggml.pre value llama.cpp accepts for a BPE
// vocabulary to its configuration. Names llama.cpp groups together share an
// entry. "" (absent) and "default" select the default regexes.
var preTypes = func() map[string]preConfig {
	m := map[string]preConfig{}
	add := func(c preConfig, names ...string) {
		c.byteEncode = !c.escapeSpaces
		for _, n := range names {
			m[n] = c
		}
	}
	def := preConfig{cleanSpaces: true, regexes: []string{
		`[\p{P}\$\+<=>\^~\|]+`,
		reGPT2,
		`\p{N}+`,
		`[0-9][0-9][0-9]`,
	}}
	add(def, "", "default")
	add(preConfig{regexes: []string{`\p{N}{1,3}`, reContr + `|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
		ignoreMerges: true, cleanSpaces: true}, "minicpm5")
	add(preConfig{regexes: []string{reLlama3}, ignoreMerges: true, cleanSpaces: true, addBOS: true},
		"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")
	// The "\uXXXX" pieces are codepoints that Unicode normalization (NFC)
	// would rewrite to other codepoints if they were written literally
	// (U+1F7D -> U+03CE reverses a range); keep them escaped.
	add(preConfig{regexes: []string{`[\r\n]`,
		`\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-` + "\u1f7d" + `ᾀ-ᾴᾶ-ᾼ` + "\u1fbe" + `ῂ-ῄῆ-ῌῐ-` + "\u1fd3" + `ῖ-` + "\u1fdb" + `ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ` + "\u2126" + `ℨ` + "\u212a" + `-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+`,
		`\s?[!-/:-~！-／：-～‘-‟　-。]+`,
		`\s+$`,
		`[一-龥ࠀ-一가-퟿]+`,
		`\p{N}+`,
	}}, "deepseek-llm")
	add(preConfig{regexes: []string{`[\r\n]`, `\s?\p{L}+`, `\s?\p{P}+`, `[一-龥ࠀ-一가-퟿]+`, `\p{N}`}}, "deepseek-coder")
	add(preConfig{regexes: []string{`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`, reDeepseek3}}, "deepseek-v3", "hunyuan-dense", "joyai-llm")
	add(preConfig{regexes: []string{
		`[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+`,
		reUpperLower + `|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	}, ignoreMerges: true}, "youtu")
	add(preConfig{regexes: []string{`[\p{P}\$\+<=>\^~\|` + "`" + `]+`, reGPT2, `[0-9][0-9][0-9]`}, cleanSpaces: true}, "falcon")
	star := preConfig{regexes: []string{`\p{N}`, reStarcoder}, cleanSpaces: true}
	add(star, "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2")
	star.cleanSpaces = false
	add(star, "command-r", "smollm")
	gpt2 := preConfig{regexes: []string{reGPT2}, cleanSpaces: true}
	add(gpt2, "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
		"modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt", "olmo", "jais")
	gpt2.cleanSpaces = false
	add(gpt2, "trillion", "granite-docling")
	add(preConfig{regexes: []string{reContr + `|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}`},
		cleanSpaces: true}, "jais-2")
	add(preConfig{regexes: []string{reLlama3}, cleanSpaces: true}, "dbrx", "smaug-bpe")
	add(preConfig{regexes: []string{reQwen2}}, "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open")
	add(preConfig{regexes: []string{reQwen2}, cleanSpaces: true}, "stablelm2", "megrez")
	add(preConfig{regexes: []string{reContr + `|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}}, "qwen35")
	add(preConfig{regexes: []string{rePoro}}, "poro-chat")
	add(preConfig{regexes: []string{rePoro}, cleanSpaces: true}, "bloom", "gpt3-finnish")
	add(preConfig{regexes: []string{reLlama3}, cleanSpaces: true, noBOS: true}, "glm4", "chatglm-bpe")
	add(preConfig{regexes: []string{rePoro, `\p{N}`}}, "viking")
	add(preConfig{regexes: []string{reTekken}, ignoreMerges: true, addBOS: true}, "tekken")
	add(preConfig{regexes: []string{`<sentinel:[0-9]+>`, `(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z`, `([\t\n]|    |  )`, `\p{N}`,
		`[\p{P}!-/:-@\[-` + "`" + `{-~]`, reStarcoder}, addBOS: true}, "chameleon")
	add(preConfig{regexes: []string{reGPT4oLook}}, "gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2")
	add(preConfig{regexes: []string{reGraniteEmb}, ignoreMerges: true}, "granite-embed-multi-97m")
	add(preConfig{regexes: []string{reTinyAyaDigit, reUpperLower + `|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`}}, "tiny_aya", "cohere2moe")
	add(preConfig{regexes: []string{`\p{N}+`, `(?=(\d{3})+(?!\d))`}}, "superbpe")
	add(preConfig{regexes: []string{`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`}},
		"bailingmoe", "bailingmoe2", "llada-moe")
	add(preConfig{regexes: []string{reContr + `|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`}}, "seed-coder")
	add(preConfig{regexes: []string{reQwen2}}, "grok-2")
	add(preConfig{regexes: []string{reAfmoeDigits, `[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+`,
		`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_` + "`" + `{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}}, "afmoe")
	add(preConfig{regexes: []string{reNewlines, reQwen2}}, "laguna")
	add(preConfig{regexes: []string{reContr + `|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+`},
		cleanSpaces: true}, "exaone-moe")
	add(preConfig{regexes: []string{reNewlines}, cleanSpaces: true, escapeSpaces: true, addBOS: true, gemma4: true}, "gemma4", "granite-embed-multi-311m")
	add(preConfig{regexes: []string{reNewlines}, escapeSpaces: true}, "sarvam-moe")
	add(preConfig{regexes: []string{reKimiK2}}, "kimi-k2")
	return m
}()

// unsupportedPre are pre-tokenizers llama.cpp implements with code that has
// no regex equivalent here.
var unsupportedPre = map[string]string{
	"whitespace": "the whitespace (jina-zh) session with lower-casing",
}

// splitter splits text into pre-tokenizer pieces.
type splitter struct {
	steps []splitStep
}

type splitStep struct {
	re       *regexp2.Regexp
	collapse bool // match against the collapsed text (llama.cpp \p{..} emulation)
	llama    bool // built-in regex: non-ASCII whitespace reads as 0x0B
	afmoe    bool // llama.cpp's hand-written digit grouping
	kimi     bool // llama.cpp's hand-written Kimi-K2 splitter
	src      string
}

// newSplitter compiles regexes. llamaMode selects llama.cpp's std::regex
// emulation (built-in regexes); otherwise the regexes run with Unicode
// semantics on the real codepoints.
func newSplitter(regexes []string, llamaMode bool) (*splitter, error) {
	s := &splitter{}
	for _, src := range regexes {
		st := splitStep{src: src, llama: llamaMode}
		pat := src
		switch {
		case llamaMode && (src == reAfmoeDigits || src == reTinyAyaDigit):
			st.afmoe = true
			s.steps = append(s.steps, st)
			continue
		case llamaMode && src == reKimiK2:
			st.kimi = true
			s.steps = append(s.steps, st)
			continue
		case llamaMode:
			var err error
			pat, st.collapse, err = llamaRegex(src)
			if err != nil {
				return nil, err
			}
		}
		re, err := regexp2.Compile(pat, regexp2.None)
		if err != nil {
			return nil, fmt.Errorf("pre-tokenizer regex %q: %v", src, err)
		}
		st.re = re
		s.steps = append(s.steps, st)
	}
	return s, nil
}

// Stand-ins for non-ASCII codepoints in the collapsed text (llama.cpp's
// k_ucat_cpt), and the ASCII members of each category (k_ucat_map).
const (
	collapseOther   = 0xD0
	collapseNumber  = 0xD1
	collapseLetter  = 0xD2
	collapsePunct   = 0xD3
	collapseMark    = 0xD4
	collapseSymbol  = 0xD5
	collapseSpace   = 0x0B
	asciiPunctClass = `\x21-\x23\x25-\x2A\x2C-\x2F\x3A\x3B\x3F\x40\x5B-\x5D\x5F\x7B\x7D`
	asciiSymClass   = `\x24\x2B\x3C-\x3E\x5E\x60\x7C` // no '~': llama.cpp's table omits it
)

var collapseClasses = map[string]string{
	`\p{N}`:  `\xD1` + `0-9`,
	`\p{L}`:  `\xD2` + `A-Za-z`,
	`\p{Lu}`: `\xD2` + `A-Za-z`,
	`\p{Ll}`: `\xD2` + `A-Za-z`,
	`\p{Lt}`: `\xD2` + `A-Za-z`,
	`\p{Lm}`: `\xD2` + `A-Za-z`,
	`\p{Lo}`: `\xD2` + `A-Za-z`,
	`\p{P}`:  `\xD3` + asciiPunctClass,
	`\p{M}`:  `\xD4`,
	`\p{S}`:  `\xD5` + asciiSymClass,
}

// llamaRegex rewrites one of llama.cpp's built-in regexes into a regexp2
// pattern with std::regex ECMAScript semantics: \p{..} become classes over
// the collapsed text (when the regex has any), \d and \w are ASCII, and $
// anchors only at the end of the piece.
func llamaRegex(src string) (pat string, collapse bool, err error) {
	for k := range collapseClasses {
		if strings.Contains(src, k) {
			collapse = true
			break
		}
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src):
			n := src[i+1]
			if n == 'p' && i+2 < len(src) && src[i+2] == '{' {
				end := strings.IndexByte(src[i:], '}')
				if end < 0 {
					return "", false, fmt.Errorf("pre-tokenizer regex %q: unterminated \\p{", src)
				}
				name := src[i : i+end+1]
				cls, ok := collapseClasses[name]
				if !ok {
					return "", false, fmt.Errorf("pre-tokenizer regex %q: %s is not supported by llama.cpp's std::regex path", src, name)
				}
				if inClass {
					b.WriteString(cls)
				} else {
					b.WriteString("[" + cls + "]")
				}
				i += end + 1
				continue
			}
			rep := ""
			switch n {
			case 'd':
				rep = "0-9"
			case 'w':
				rep = "0-9A-Za-z_"
			case 'D':
				if !inClass {
					b.WriteString("[^0-9]")
					i += 2
					continue
				}
			case 'W':
				if !inClass {
					b.WriteString("[^0-9A-Za-z_]")
					i += 2
					continue
				}
			}
			if rep != "" {
				if inClass {
					b.WriteString(rep)
				} else {
					b.WriteString("[" + rep + "]")
				}
				i += 2
				continue
			}
			b.WriteString(src[i : i+2])
			i += 2
			continue
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// a leading ']' or '^]' is literal in ECMAScript only as "[]"/"[^]"; none of the built-ins use it
			i++
			continue
		case c == ']' && inClass:
			inClass = false
		case c == '$' && !inClass:
			b.WriteString(`\z`)
			i++
			continue
		}
		if collapse && c >= 0x80 {
			return "", false, fmt.Errorf("pre-tokenizer regex %q: unicode categories together with non-ASCII characters are not supported (as in llama.cpp)", src)
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), collapse, nil
}

// collapseCodepoint returns llama.cpp's stand-in for a codepoint >= 128.
func collapseCodepoint(r rune) rune {
	if isSpaceCpt(r) {
		return collapseSpace
	}
	switch cptCategory(r) {
	case catNumber:
		return collapseNumber
	case catLetter:
		return collapseLetter
	case catPunct:
		return collapsePunct
	case catMark:
		return collapseMark
	case catSymbol:
		return collapseSymbol
	}
	return collapseOther
}

// Unicode general category groups, as llama.cpp's codepoint flags.
const (
	catOther = iota // C*, Z* and unassigned
	catNumber
	catLetter
	catPunct
	catMark
	catSymbol
)

// newerUnicode are the codepoints llama.cpp's tables (unicode-data.cpp,
// Unicode 15.1) assign but Go's unicode package (Unicode 15.0) does not:
// CJK Unified Ideographs Extension I and the ideographic description
// characters added in 15.1. TestCodepointCategoriesLlamaCpp checks every
// codepoint against llama.cpp's table.
var newerUnicode = []struct {
	lo, hi rune
	cat    int
}{
	{0x2FFC, 0x2FFF, catSymbol},
	{0x31EF, 0x31EF, catSymbol},
	{0x2EBF0, 0x2EE5D, catLetter},
}

func cptCategory(r rune) int {
	if r >= 0x2FFC {
		for _, n := range newerUnicode {
			if r >= n.lo && r <= n.hi {
				return n.cat
			}
		}
	}
	switch {
	case r < 0 || r > unicode.MaxRune:
		return catOther
	case unicode.IsLetter(r):
		return catLetter
	case unicode.IsNumber(r):
		return catNumber
	case unicode.IsPunct(r):
		return catPunct
	case unicode.IsMark(r):
		return catMark
	case unicode.IsSymbol(r):
		return catSymbol
	}
	return catOther
}

// isSpaceCpt is llama.cpp's whitespace flag: the Unicode White_Space property.
func isSpaceCpt(r rune) bool {
	if r < 0x80 {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return r <= unicode.MaxRune && unicode.Is(unicode.White_Space, r)
}

// split returns the pieces of text as codepoint ranges [start, end) of cpts.
func (s *splitter) split(cpts []rune) ([][2]int, error) {
	pieces := [][2]int{{0, len(cpts)}}
	if len(cpts) == 0 {
		return nil, nil
	}
	var collapsed, spaced []rune
	for _, st := range s.steps {
		var view []rune
		switch {
		case st.afmoe:
			pieces = splitAfmoeDigits(cpts, pieces)
			continue
		case st.kimi:
			pieces = splitKimiK2(cpts, pieces)
			continue
		case st.collapse:
			if collapsed == nil {
				collapsed = make([]rune, len(cpts))
				for i, r := range cpts {
					if r < 0x80 {
						collapsed[i] = r
					} else {
						collapsed[i] = collapseCodepoint(r)
					}
				}
			}
			view = collapsed
		case st.llama:
			if spaced == nil {
				spaced = make([]rune, len(cpts))
				for i, r := range cpts {
					if r >= 0x80 && isSpaceCpt(r) {
						r = collapseSpace
					}
					spaced[i] = r
				}
			}
			view = spaced
		default:
			view = cpts
		}
		var out [][2]int
		for _, p := range pieces {
			var err error
			out, err = st.splitPiece(view, p, out)
			if err != nil {
				return nil, err
			}
		}
		pieces = out
	}
	return pieces, nil
}

// splitPiece applies one regex to view[p[0]:p[1]]: each match is a piece
// and so is each stretch of text between matches (llama.cpp's
// unicode_regex_split_stl). Empty matches yield no piece.
func (st *splitStep) splitPiece(view []rune, p [2]int, out [][2]int) ([][2]int, error) {
	sub := view[p[0]:p[1]]
	m, err := st.re.FindRunesMatch(sub)
	last := 0
	for ; err == nil && m != nil; m, err = st.re.FindNextMatch(m) {
		if m.Index > last {
			out = append(out, [2]int{p[0] + last, p[0] + m.Index})
		}
		if m.Length > 0 {
			out = append(out, [2]int{p[0] + m.Index, p[0] + m.Index + m.Length})
		}
		last = m.Index + m.Length
	}
	if err != nil {
		return nil, fmt.Errorf("pre-tokenizer regex %q: %v", st.src, err)
	}
	if last < len(sub) {
		out = append(out, [2]int{p[0] + last, p[1]})
	}
	return out, nil
}

// splitAfmoeDigits ports llama.cpp's unicode_regex_split_custom_afmoe: a run
// of n digits (\p{N}) is cut into n%3 leading digits and then groups of
// three. Text before a digit run is not cut off from the run's first group;
// that is what llama.cpp does, so it is kept.
func splitAfmoeDigits(cpts []rune, pieces [][2]int) [][2]int {
	var out [][2]int
	for _, p := range pieces {
		prev := p[0]
		emit := func(end int) {
			if end > prev {
				out = append(out, [2]int{prev, end})
			}
			prev = end
		}
		for pos := p[0]; pos < p[1]; {
			if cptCategory(cpts[pos]) != catNumber {
				pos++
				continue
			}
			start := pos
			for pos < p[1] && cptCategory(cpts[pos]) == catNumber {
				pos++
			}
			n := pos - start
			cur := start
			if r := n % 3; r > 0 {
				emit(cur + r)
				cur += r
			}
			for cur < start+n {
				emit(cur + 3)
				cur += 3
			}
		}
		if prev < p[1] {
			emit(p[1])
		}
	}
	return out
}

// isHan is llama.cpp's unicode_cpt_is_han: the CJK Unified Ideographs
// blocks up to Extension F and the compatibility ideographs.
func isHan(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF, r >= 0x20000 && r <= 0x2A6DF,
		r >= 0x2A700 && r <= 0x2B73F, r >= 0x2B740 && r <= 0x2B81F, r >= 0x2B820 && r <= 0x2CEAF,
		r >= 0x2CEB0 && r <= 0x2EBEF, r >= 0xF900 && r <= 0xFAFF, r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// splitKimiK2 ports llama.cpp's unicode_regex_split_custom_kimi_k2, its
// hand-written version of Kimi-K2's regex
//
//	[\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|...|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// with its simplifications (a word is any run of non-Han letters; marks
// are not letters), step by step.
func splitKimiK2(cpts []rune, pieces [][2]int) [][2]int {
	var out [][2]int
	for _, p := range pieces {
		ini, end := p[0], p[1]
		in := func(i int) bool { return i >= ini && i < end }
		get := func(i int) rune {
			if in(i) {
				return cpts[i]
			}
			return -1
		}
		letter := func(i int) bool { return in(i) && cptCategory(cpts[i]) == catLetter }
		number := func(i int) bool { return in(i) && cptCategory(cpts[i]) == catNumber }
		space := func(i int) bool { return in(i) && isSpaceCpt(cpts[i]) }
		han := func(i int) bool { return in(i) && isHan(cpts[i]) }
		word := func(i int) bool { return letter(i) && !han(i) }
		other := func(i int) bool { return in(i) && !space(i) && !letter(i) && !number(i) }
		prev := ini
		add := func(e int) {
			if e > prev {
				out = append(out, [2]int{prev, e})
			}
			prev = e
		}
		for pos := ini; pos < end; {
			c := cpts[pos]
			// [\p{Han}]+
			if han(pos) {
				for han(pos) {
					pos++
				}
				add(pos)
				continue
			}
			// letter words with an optional leading character and contraction
			lead := !(c == '\r' || c == '\n' || letter(pos) || number(pos))
			if word(pos) || (lead && word(pos+1)) {
				if lead {
					pos++
				}
				for word(pos) {
					pos++
				}
				if get(pos) == '\'' && pos+1 < end {
					n1 := unicode.ToLower(get(pos + 1))
					switch {
					case n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd':
						pos += 2
					case pos+2 < end:
						n2 := unicode.ToLower(get(pos + 2))
						if (n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l') {
							pos += 3
						}
					}
				}
				add(pos)
				continue
			}
			// \p{N}{1,3}
			if number(pos) {
				start := pos
				for number(pos) {
					if pos++; pos-start >= 3 {
						add(pos)
						start = pos
					}
				}
				add(pos)
				continue
			}
			// " ?[^\s\p{L}\p{N}]+[\r\n]*"
			if (c == ' ' && other(pos+1)) || (c != ' ' && other(pos)) {
				if c == ' ' {
					pos++
				}
				for other(pos) {
					pos++
				}
				for r := get(pos); r == '\r' || r == '\n'; r = get(pos) {
					pos++
				}
				add(pos)
				continue
			}
			nws, lastNL := 0, 0
			for space(pos + nws) {
				if r := get(pos + nws); r == '\r' || r == '\n' {
					lastNL = pos + nws + 1
				}
				nws++
			}
			switch {
			case lastNL > 0: // \s*[\r\n]+
				pos = lastNL
			case nws > 1 && in(pos+nws): // \s+(?!\S)
				pos += nws - 1
			case nws > 0: // \s+
				pos += nws
			default:
				pos++
			}
			add(pos)
		}
	}
	return out
}

// decodeCpts decodes UTF-8 the way llama.cpp's unicode_cpts_from_utf8 does:
// lead bytes are trusted for the sequence length and only continuation bytes
// are checked (no overlong or surrogate checks); an invalid byte becomes
// U+FFFD and decoding resumes at the next byte.
func decodeCpts(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, n := decodeCpt(s, i)
		out = append(out, r)
		i += n
	}
	return out
}

func decodeCpt(s string, i int) (rune, int) {
	c := s[i]
	cont := func(k int) bool { return i+k < len(s) && s[i+k]&0xC0 == 0x80 }
	switch {
	case c&0x80 == 0:
		return rune(c), 1
	case c&0x40 == 0:
		return 0xFFFD, 1
	case c&0x20 == 0:
		if !cont(1) {
			return 0xFFFD, 1
		}
		return rune(c&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case c&0x10 == 0:
		if !cont(1) || !cont(2) {
			return 0xFFFD, 1
		}
		return rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
	case c&0x08 == 0:
		if !cont(1) || !cont(2) || !cont(3) {
			return 0xFFFD, 1
		}
		return rune(c&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F), 4
	}
	return 0xFFFD, 1
}

// appendCpt appends the UTF-8 encoding of r as llama.cpp's
// unicode_cpt_to_utf8 writes it (surrogates are encoded like any other
// codepoint). Codepoints above U+10FFFF, where llama.cpp throws, become U+FFFD.
func appendCpt(b []byte, r rune) []byte {
	switch {
	case r < 0:
		return appendCpt(b, 0xFFFD)
	case r <= 0x7F:
		return append(b, byte(r))
	case r <= 0x7FF:
		return append(b, 0xC0|byte(r>>6), 0x80|byte(r&0x3F))
	case r <= 0xFFFF:
		return append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
	case r <= 0x10FFFF:
		return append(b, 0xF0|byte(r>>18), 0x80|byte(r>>12&0x3F), 0x80|byte(r>>6&0x3F), 0x80|byte(r&0x3F))
	}
	return appendCpt(b, 0xFFFD)
}

// preTokenize splits text into words (UTF-8 strings rebuilt from the decoded
// codepoints, as llama.cpp's unicode_regex_split returns them), byte-encoded
// with the GPT-2 mapping when byteEncode is set.
func (s *splitter) preTokenize(text string, byteEncode bool) ([]string, error) {
	cpts := decodeCpts(text)
	pieces, err := s.split(cpts)
	if err != nil {
		return nil, err
	}
	words := make([]string, 0, len(pieces))
	var buf, enc []byte
	for _, p := range pieces {
		buf = buf[:0]
		for _, r := range cpts[p[0]:p[1]] {
			buf = appendCpt(buf, r)
		}
		if !byteEncode {
			words = append(words, string(buf))
			continue
		}
		enc = enc[:0]
		for _, c := range buf {
			enc = append(enc, byteToUnicode[c]...)
		}
		words = append(words, string(enc))
	}
	return words, nil
}

// byteToUnicode is GPT-2's bytes_to_unicode table: printable Latin-1 bytes
// map to themselves, the rest to U+0100 onwards, as UTF-8 strings.
var byteToUnicode, unicodeToByte = func() ([256]string, map[string]byte) {
	var fwd [256]string
	rev := make(map[string]byte, 256)
	mapped := func(c int) bool {
		return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)
	}
	n := 0
	for c := 0; c < 256; c++ {
		r := rune(c)
		if !mapped(c) {
			r = rune(256 + n)
			n++
		}
		fwd[c] = string(r)
		rev[fwd[c]] = byte(c)
	}
	return fwd, rev
}()

// segmentSafe reports whether the pre-tokenizer always splits a text
// between an ASCII letter and a following " x" (x an ASCII letter), the
// same way whatever follows, so encode.go may cut segments there. It is
// judged from the regexes: some regex matches letter runs (text between
// matches stays one piece), and none has an anchor ($ or \b), lookbehind,
// "." or a literal space other than an optional leading one (" ?"); that
// excludes superbpe (digits only),
// deepseek-llm ("\s+$"), chameleon ("    |  ") and the letter runs with
// single spaces inside of one pre-tokenizer. The configurations that escape
// spaces to U+2581 are left whole. TestPreTokenizerSegments checks every
// pre-tokenizer that passes.
func (c preConfig) segmentSafe() bool {
	if c.escapeSpaces || c.gemma4 {
		return false
	}
	letters := false
	for _, re := range c.regexes {
		switch re {
		case reAfmoeDigits, reTinyAyaDigit:
			continue // hand-written digit grouping: splits digit runs only
		case reKimiK2:
			letters = true // hand-written: letter runs, like the regexes below
			continue
		}
		// Text between matches stays one piece, so some regex must match
		// letter runs.
		letters = letters || strings.Contains(re, `\p{L}`) || strings.Contains(re, "A-Za-z")
		inClass := false
		for i := 0; i < len(re); i++ {
			switch ch := re[i]; {
			case ch == '\\':
				if i+1 < len(re) && (re[i+1] == 'b' || re[i+1] == 'B') && !inClass {
					return false
				}
				i++
			case inClass:
				if ch == ']' {
					inClass = false
				} else if ch == ' ' {
					return false
				}
			case ch == '[':
				inClass = true
				if i+1 < len(re) && re[i+1] == ']' {
					i++ // "[]..." : ']' first is a literal
				}
			case ch == '$', ch == '.':
				return false
			case ch == '(' && strings.HasPrefix(re[i:], "(?<"):
				return false
			case ch == ' ' && (i+1 == len(re) || re[i+1] != '?'):
				return false
			}
		}
	}
	return letters
}
