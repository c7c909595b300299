package tokenizer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// byteLevelVocab builds a byte-level BPE vocabulary: the 256 byte
// characters (ids 0..255 in byte order), then extra normal tokens, then
// special tokens with their types.
func byteLevelVocab(pre string, extra, merges []string, specials map[string]int32) *graph.Tokenizer {
	t := graph.NewTokenizer(graph.TokenizerBPE)
	t.Pre = pre
	for b := 0; b < 256; b++ {
		t.Tokens = append(t.Tokens, byteToUnicode[b])
		t.Types = append(t.Types, graph.TokenNormal)
	}
	for _, e := range extra {
		t.Tokens = append(t.Tokens, e)
		t.Types = append(t.Types, graph.TokenNormal)
	}
	for _, s := range sortedKeys(specials) {
		t.Tokens = append(t.Tokens, s)
		t.Types = append(t.Types, specials[s])
	}
	t.Merges = merges
	return t
}

func sortedKeys(m map[string]int32) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	for i := range k {
		for j := i + 1; j < len(k); j++ {
			if k[j] < k[i] {
				k[i], k[j] = k[j], k[i]
			}
		}
	}
	return k
}

func mustVocab(t *testing.T, gt *graph.Tokenizer) *Tokenizer {
	t.Helper()
	v, err := New(gt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pieces renders ids as token texts.
func pieces(v *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = v.Token(id)
	}
	return out
}

var helloMerges = []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "a a", "b c", "a b", "1 2", "12 3", "4 5"}
var helloExtra = []string{"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "aa", "bc", "ab", "12", "123", "45", "Ġxyz"}

func TestBPEMerges(t *testing.T) {
	cases := []struct {
		pre, text string
		want      []string
	}{
		{"llama-bpe", "hello world", []string{"hello", "Ġworld"}},
		{"llama-bpe", "aaa", []string{"aa", "a"}},       // equal ranks: leftmost first
		{"llama-bpe", "abc", []string{"a", "bc"}},       // lower rank first
		{"llama-bpe", " xyz", []string{"Ġxyz"}},         // ignore_merges: a whole word in the vocabulary
		{"gpt-2", " xyz", []string{"Ġ", "x", "y", "z"}}, // gpt-2 merges only
		{"llama-bpe", "12345", []string{"123", "45"}},
		{"qwen2", "12345", []string{"1", "2", "3", "4", "5"}},
		{"gpt-2", "12345", []string{"123", "45"}},
		{"llama-bpe", "é\n", []string{"Ã", "©", "Ċ"}},
	}
	for _, c := range cases {
		v := mustVocab(t, byteLevelVocab(c.pre, helloExtra, helloMerges, nil))
		if got := pieces(v, v.Encode(c.text, Options{})); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.pre, c.text, got, c.want)
		}
	}
}

func TestBPESpecialTokens(t *testing.T) {
	specials := map[string]int32{"<|begin_of_text|>": graph.TokenControl, "<|eot_id|>": graph.TokenControl, "<tool>": graph.TokenUserDefined}
	gt := byteLevelVocab("llama-bpe", helloExtra, helloMerges, specials)
	bos := len(gt.Tokens) - 3 // sorted: "<tool>", "<|begin_of_text|>", "<|eot_id|>"
	gt.BOS, gt.EOS = bos+1, bos+2
	gt.AddBOS = true
	v := mustVocab(t, gt)
	if v.BOS() != bos+1 || !v.AddBOS() || v.Len() != len(gt.Tokens) {
		t.Fatalf("BOS %d AddBOS %v size %d", v.BOS(), v.AddBOS(), v.Len())
	}
	cases := []struct {
		text                string
		addSpecial, special bool
		want                []string
	}{
		{"hello", true, false, []string{"<|begin_of_text|>", "hello"}},
		{"hello", false, false, []string{"hello"}},
		// parse_special: control text becomes the control token.
		{"hello<|eot_id|> world", false, true, []string{"hello", "<|eot_id|>", "Ġworld"}},
		// without it the text is tokenized as text (single bytes here) ...
		{"<|eot_id|>", false, false, []string{"<", "|", "e", "o", "t", "_", "i", "d", "|", ">"}},
		// ... but user-defined tokens are always cut out.
		{"hello<tool>world", false, false, []string{"hello", "<tool>", "w", "or", "ld"}},
	}
	for _, c := range cases {
		got := pieces(v, v.Encode(c.text, Options{AddSpecial: c.addSpecial, ParseSpecial: c.special}))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q add=%v special=%v: got %q, want %q", c.text, c.addSpecial, c.special, got, c.want)
		}
	}
}

func TestBPEDecode(t *testing.T) {
	specials := map[string]int32{"<|eot_id|>": graph.TokenControl}
	for _, c := range []struct {
		pre, text, want string
	}{
		{"llama-bpe", "hello world .", "hello world."}, // clean_spaces
		{"qwen2", "hello world .", "hello world ."},    // qwen2 keeps spaces
		{"gpt-2", "a ' b don 't", "a'b don 't"},
		{"gpt-2", "x 's y 're", "x's y're"},
		{"llama-bpe", "é<|eot_id|>\n", "é<|eot_id|>\n"},
	} {
		v := mustVocab(t, byteLevelVocab(c.pre, helloExtra, helloMerges, specials))
		if got := v.Decode(v.Encode(c.text, Options{ParseSpecial: true})); got != c.want {
			t.Errorf("%s %q: decoded %q, want %q", c.pre, c.text, got, c.want)
		}
	}
}

// spmVocab builds a small SentencePiece vocabulary with byte fallback.
func spmVocab(pieces map[string]float32, specials map[string]int32) *graph.Tokenizer {
	t := graph.NewTokenizer(graph.TokenizerSPM)
	add := func(s string, score float32, typ int32) {
		t.Tokens = append(t.Tokens, s)
		t.Scores = append(t.Scores, score)
		t.Types = append(t.Types, typ)
	}
	add("<unk>", 0, graph.TokenUnknown)
	add("<s>", 0, graph.TokenControl)
	add("</s>", 0, graph.TokenControl)
	const hex = "0123456789ABCDEF"
	for b := 0; b < 256; b++ {
		add("<0x"+string(hex[b>>4])+string(hex[b&15])+">", 0, graph.TokenByte)
	}
	var keys []string
	for k := range pieces {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	for _, k := range keys {
		add(k, pieces[k], graph.TokenNormal)
	}
	for _, k := range sortedKeys(specials) {
		add(k, 0, specials[k])
	}
	t.BOS, t.EOS, t.UNK = 1, 2, 0
	t.AddBOS = true
	return t
}

func TestSPM(t *testing.T) {
	sp := map[string]float32{"▁": -1, "a": -2, "b": -2, "c": -2, "▁a": -3, "ab": -1.5, "▁ab": -4, "bc": -0.5}
	no := false
	cases := []struct {
		name    string
		text    string
		noSpace bool
		add     bool
		special bool
		want    []string
	}{
		{"prefix", "ab", false, false, false, []string{"▁ab"}},
		{"bos", "ab", false, true, false, []string{"<s>", "▁ab"}},
		// "bc" (-0.5) beats "ab" (-1.5): ▁ + a + bc, then "▁a"+"bc" is no piece.
		{"score order", "abc", false, false, false, []string{"▁a", "bc"}},
		{"no prefix", "ab", true, false, false, []string{"ab"}},
		{"byte fallback", "é", true, false, false, []string{"<0xC3>", "<0xA9>"}},
		{"spaces", "a  b", false, false, false, []string{"▁a", "▁", "▁", "b"}},
		// a special token resets the space prefix (llama.cpp's is_prev_special).
		{"user defined", "a<sep>b", false, false, false, []string{"▁a", "<sep>", "▁", "b"}},
		{"control kept as text", "<s>", true, false, false, []string{"<0x3C>", "<0x73>", "<0x3E>"}},
		{"control parsed", "a<s>", false, false, true, []string{"▁a", "<s>"}},
	}
	for _, c := range cases {
		gt := spmVocab(sp, map[string]int32{"<sep>": graph.TokenUserDefined})
		if c.noSpace {
			gt.AddSpacePrefix = &no
		}
		v := mustVocab(t, gt)
		got := pieces(v, v.Encode(c.text, Options{AddSpecial: c.add, ParseSpecial: c.special}))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.name, c.text, got, c.want)
		}
	}
}

func TestSPMDecode(t *testing.T) {
	v := mustVocab(t, spmVocab(map[string]float32{"▁": -2, "▁a": -1, "b": -1}, nil))
	ids := v.Encode("a bé", Options{AddSpecial: true})
	if got := v.Decode(ids); got != "<s> a bé" {
		t.Errorf("Decode with BOS = %q", got)
	}
	if got := v.Decode(ids[1:]); got != "a bé" {
		t.Errorf("Decode = %q", got)
	}
}

func TestNewTokenizerErrors(t *testing.T) {
	bert := graph.NewTokenizer("bert")
	bert.Tokens = []string{"[PAD]"}
	noMerges := byteLevelVocab("gpt-2", nil, nil, nil)
	unknownPre := byteLevelVocab("no-such-pre", nil, []string{"a b"}, nil)
	whitespace := byteLevelVocab("whitespace", nil, []string{"a b"}, nil)
	tiny := graph.NewTokenizer(graph.TokenizerSPM) // default BOS 1 is outside the vocabulary
	tiny.Tokens = []string{"<unk>"}
	tiny.AddBOS = true
	badRegex := byteLevelVocab("custom", nil, []string{"a b"}, nil)
	badRegex.PreRegex = []string{`(`}
	for name, c := range map[string]struct {
		t    *graph.Tokenizer
		want string
	}{
		"nil":         {nil, "no vocabulary"},
		"bert":        {bert, `model "bert" is not supported`},
		"no merges":   {noMerges, "without merges"},
		"unknown pre": {unknownPre, `unknown pre-tokenizer type "no-such-pre"`},
		"whitespace":  {whitespace, `"whitespace" needs`},
		"no bos":      {tiny, "no BOS token"},
		"bad regex":   {badRegex, "pre-tokenizer regex"},
	} {
		_, err := New(c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
}

// An unknown pre-tokenizer name with the tokenizer.json regexes runs them.
func TestBPEPreRegex(t *testing.T) {
	gt := byteLevelVocab("my-new-bpe", helloExtra, helloMerges, nil)
	gt.PreRegex = []string{`(?i:'s|'t)|\p{L}+|\s+|\d`}
	v := mustVocab(t, gt)
	if got, want := pieces(v, v.Encode("hello world 12", Options{})), []string{"hello", "Ġ", "w", "or", "ld", "Ġ", "1", "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// llama.cpp adjusts token types by text and, for some models, by name
// (llama_vocab::impl::load); these cases follow its rules.
func TestSpecialTokenAttributes(t *testing.T) {
	sp := map[string]float32{"▁": -1, "a": -2, "▁a": -0.5, "e": -2, "n": -2, "d": -2}
	ud := graph.TokenUserDefined
	phi := []graph.KV{{Key: "general.name", Value: "Phi3"}}
	cases := []struct {
		name     string
		specials map[string]int32
		meta     []graph.KV
		text     string
		special  bool
		want     []string
	}{
		// An end-of-generation text is forced to control type: not cut out
		// of the text without parse_special, although user-defined.
		{"eog user-defined", map[string]int32{"<|end|>": ud}, nil, "a<|end|>", false,
			[]string{"▁a", "<0x3C>", "<0x7C>", "e", "n", "d", "<0x7C>", "<0x3E>"}},
		{"eog parsed", map[string]int32{"<|end|>": ud}, nil, "a<|end|>", true, []string{"▁a", "<|end|>"}},
		// ...unless "<|return|>" and "<|call|>" exist (o200k_harmony).
		{"harmony end", map[string]int32{"<|end|>": ud, "<|return|>": ud, "<|call|>": ud}, nil, "a<|end|>", false,
			[]string{"▁a", "<|end|>"}},
		// "</s>" becomes normal when "<|tool_response>" exists (gemma4).
		{"gemma4 </s>", map[string]int32{"<|tool_response>": ud}, nil, "a</s>", true,
			[]string{"▁a", "<0x3C>", "<0x2F>", "<0x73>", "<0x3E>"}},
		// Phi-3: special tokens drop the whitespace after them, except
		// <s>, <unk> and <|endoftext|>.
		{"phi3 rstrip", map[string]int32{"<|user|>": graph.TokenControl}, phi, "<|user|> \n a", true,
			[]string{"<|user|>", "▁a"}},
		{"phi3 </s> rstrip", nil, phi, "</s>  a", true, []string{"</s>", "▁a"}},
		{"phi3 <s> kept", nil, phi, "<s> a", true, []string{"<s>", "▁", "▁a"}},
		{"no name no rstrip", map[string]int32{"<|user|>": graph.TokenControl}, nil, "<|user|> a", true,
			[]string{"<|user|>", "▁", "▁a"}},
	}
	for _, c := range cases {
		gt := spmVocab(sp, c.specials)
		v, err := NewForModel(&graph.Model{Tokenizer: gt, Metadata: c.meta})
		if err != nil {
			t.Fatal(err)
		}
		got := pieces(v, v.Encode(c.text, Options{ParseSpecial: c.special}))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.name, c.text, got, c.want)
		}
	}
	// LSTRIP: "<mask>" of the jina-v2 pre-tokenizers takes the spaces
	// before it.
	gt := byteLevelVocab("jina-v2-es", nil, []string{"x y"}, map[string]int32{"<mask>": ud})
	v := mustVocab(t, gt)
	if got, want := pieces(v, v.Encode("a  <mask> a", Options{})), []string{"a", "<mask>", "Ġ", "a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("jina <mask>: got %q, want %q", got, want)
	}
}
