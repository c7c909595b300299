package tokenizer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// Options select how Encode treats special tokens; the zero value is
// llama-perplexity's common_tokenize(ctx, text, false, false).
type Options struct {
	// AddSpecial prepends BOS when the vocabulary asks for it (AddBOS) and
	// appends EOS when it asks for that (llama_tokenize's add_special).
	AddSpecial bool
	// ParseSpecial turns control-token text written in the input (e.g.
	// "<s>") into those tokens, as llama-tokenize does by default
	// (parse_special). User-defined tokens are always cut out of the text,
	// as in llama.cpp.
	ParseSpecial bool
}

// New builds the tokenizer of a vocabulary: SentencePiece (t.Model ==
// "llama") or byte-level BPE ("gpt2"), applying llama.cpp's defaults
// (llama_vocab::impl::load) for what the metadata leaves unset. Other
// tokenizer models (bert, t5, rwkv, ...) are an error.
//
// graph.Tokenizer cannot say whether add_bos_token was present in the file;
// the reader must store llama.cpp's default when it was absent (true for
// SentencePiece and for the llama3/tekken/chameleon BPE pre-tokenizers).
func New(t *graph.Tokenizer) (*Tokenizer, error) {
	return newTokenizer(t, "", "")
}

// Token attributes (llama.cpp's llama_token_attr bits).
const (
	attrUnknown     = 1 << 0
	attrUnused      = 1 << 1
	attrNormal      = 1 << 2
	attrControl     = 1 << 3
	attrUserDefined = 1 << 4
	attrByte        = 1 << 5
	attrLStrip      = 1 << 7 // drop whitespace before the token in the text
	attrRStrip      = 1 << 8 // drop whitespace after the token in the text
)

type vocabKind int

const (
	kindSPM vocabKind = iota
	kindBPE
)

// Tokenizer turns text into token ids and back, exactly as llama.cpp's
// llama_tokenize / llama_detokenize do for the same vocabulary. It is safe
// for concurrent use.
type Tokenizer struct {
	kind   vocabKind
	tokens []string // id -> text ("[EMPTY_i]" for empty pieces, as llama.cpp)
	scores []float32
	attrs  []uint32
	ids    map[string]int // text -> id; a later duplicate wins, as in llama.cpp

	special []int // ids tried by the special-token partition, longest text first

	bos, eos, unk  int
	addBOS, addEOS bool
	addSpacePrefix bool
	cleanSpaces    bool

	// Segmenting (encode.go).
	maxTokenLen   int  // longest token text (bytes)
	maxSpecialLen int  // longest text of a token in special
	segmentable   bool // the cut rules of encode.go apply

	// BPE only.
	pre          preConfig
	preName      string
	split        *splitter
	ranks        map[bpePair]int
	ignoreMerges bool
}

type bpePair struct{ left, right string }

// NewForModel is New for a model's vocabulary, also
// applying llama.cpp's per-model token attributes, which depend on the
// model's general.name (GGUF metadata) and architecture: for a name
// containing "phi-3" or "phi3", special tokens swallow the whitespace that
// follows them in the text (RSTRIP); "<mask>" of the jina-v2-de/es/code
// pre-tokenizers and "[MASK]" of "modern-bert" models swallow the whitespace
// before them (LSTRIP). Without GGUF metadata the name is unknown and these
// rules do not apply.
func NewForModel(m *graph.Model) (*Tokenizer, error) {
	if m == nil {
		return nil, fmt.Errorf("tokenizer: no model")
	}
	var name, arch string
	for _, kv := range m.Metadata {
		switch kv.Key {
		case "general.name":
			name, _ = kv.Value.(string)
		case "general.architecture":
			arch, _ = kv.Value.(string)
		}
	}
	if arch == "" {
		arch = m.Arch
	}
	return newTokenizer(m.Tokenizer, name, arch)
}

func newTokenizer(t *graph.Tokenizer, modelName, arch string) (*Tokenizer, error) {
	if t == nil {
		return nil, fmt.Errorf("tokenizer: no vocabulary")
	}
	v := &Tokenizer{}
	llamaMode := true
	switch t.Model {
	case graph.TokenizerSPM:
		v.kind = kindSPM
	case graph.TokenizerBPE:
		v.kind = kindBPE
	default:
		return nil, fmt.Errorf("tokenizer: model %q is not supported (only %q SentencePiece and %q byte-level BPE)",
			t.Model, graph.TokenizerSPM, graph.TokenizerBPE)
	}
	n := len(t.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	if t.Scores != nil && len(t.Scores) < n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(t.Scores), n)
	}
	if t.Types != nil && len(t.Types) < n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(t.Types), n)
	}
	v.tokens = make([]string, n)
	v.scores = make([]float32, n)
	v.attrs = make([]uint32, n)
	v.ids = make(map[string]int, n)
	for i, s := range t.Tokens {
		if s == "" {
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		v.tokens[i] = s
		v.ids[s] = i
		if t.Scores != nil {
			v.scores[i] = t.Scores[i]
		}
		v.attrs[i] = attrNormal
		if t.Types != nil {
			v.attrs[i] = typeAttr(t.Types[i])
		}
	}

	// Defaults by model, then the metadata (graph uses -1 for "absent").
	switch v.kind {
	case kindSPM:
		v.bos, v.eos, v.unk = 1, 2, 0
		v.addSpacePrefix = true
		v.cleanSpaces = false
	case kindBPE:
		v.bos, v.eos, v.unk = 11, 11, -1
		if unsup, ok := unsupportedPre[t.Pre]; ok {
			return nil, fmt.Errorf("tokenizer: pre-tokenizer %q needs %s, which quantbridge does not support", t.Pre, unsup)
		}
		cfg, known := preTypes[t.Pre]
		switch {
		case known:
		case len(t.PreRegex) > 0:
			// A pre-tokenizer llama.cpp does not know: run the tokenizer's
			// own regexes with Unicode semantics.
			cfg = preConfig{regexes: t.PreRegex, cleanSpaces: true, byteEncode: true}
			llamaMode = false
		default:
			return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer type %q and no split regexes", t.Pre)
		}
		if len(t.Merges) == 0 {
			return nil, fmt.Errorf("tokenizer: BPE vocabulary without merges")
		}
		sp, err := newSplitter(cfg.regexes, llamaMode)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %v", err)
		}
		v.pre, v.preName, v.split = cfg, t.Pre, sp
		v.cleanSpaces = cfg.cleanSpaces
		v.ignoreMerges = cfg.ignoreMerges || t.IgnoreMerges
		if cfg.noBOS {
			v.bos = -1
		}
		v.ranks = make(map[bpePair]int, len(t.Merges))
		for i, m := range t.Merges {
			// llama.cpp splits at the first space after the first byte; a
			// merge without one becomes the pair ("", "").
			var p bpePair
			if len(m) > 1 {
				if k := strings.IndexByte(m[1:], ' '); k >= 0 {
					p = bpePair{m[:k+1], m[k+2:]}
				}
			}
			if _, dup := v.ranks[p]; !dup {
				v.ranks[p] = i
			}
		}
	}
	if t.AddSpacePrefix != nil {
		v.addSpacePrefix = *t.AddSpacePrefix
	}
	for _, sp := range []struct {
		dst *int
		id  int
	}{{&v.bos, t.BOS}, {&v.eos, t.EOS}, {&v.unk, t.UNK}} {
		if *sp.dst >= n {
			*sp.dst = -1 // default out of range: llama.cpp disables it
		}
		if sp.id >= 0 && sp.id < n {
			*sp.dst = sp.id
		}
	}
	v.addBOS, v.addEOS = t.AddBOS, t.AddEOS
	if v.kind == kindBPE && v.pre.gemma4 {
		v.addBOS = true // llama.cpp forces add_bos for the gemma4 pre-tokenizer
	}
	if v.addBOS && v.bos < 0 {
		return nil, fmt.Errorf("tokenizer: add_bos is set but there is no BOS token")
	}
	if v.addEOS && v.eos < 0 {
		return nil, fmt.Errorf("tokenizer: add_eos is set but there is no EOS token")
	}
	v.markControlByName(t)

	for id, a := range v.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			v.special = append(v.special, id)
		}
	}
	// llama.cpp sorts by text length, longest first (std::sort, so the order
	// of equal lengths is unspecified); ties go by id here.
	sort.SliceStable(v.special, func(a, b int) bool {
		return len(v.tokens[v.special[a]]) > len(v.tokens[v.special[b]])
	})
	v.setStripAttrs(t, modelName, arch)
	for _, tt := range v.tokens {
		v.maxTokenLen = max(v.maxTokenLen, len(tt))
	}
	for _, id := range v.special {
		v.maxSpecialLen = max(v.maxSpecialLen, len(v.tokens[id]))
	}
	v.segmentable = v.kind == kindSPM || (llamaMode && v.pre.segmentSafe())
	return v, nil
}

func typeAttr(t int32) uint32 {
	switch t {
	case graph.TokenUnknown:
		return attrUnknown
	case graph.TokenUnused:
		return attrUnused
	case graph.TokenNormal:
		return attrNormal
	case graph.TokenControl:
		return attrControl
	case graph.TokenUserDefined:
		return attrUserDefined
	case graph.TokenByte:
		return attrByte
	}
	return 0
}

// Token texts llama.cpp recognizes as fill-in-the-middle markers when the
// metadata names none; the first match of each kind is forced to control
// type (llama_vocab::impl::load, "auto-detect special tokens by text").
var fimByName = [][]string{
	{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"},
	{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"},
	{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"},
	{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
	{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
	{"<|file_sep|>"},
}

// eogTexts are the token texts llama.cpp puts in its end-of-generation set;
// every token with one of them is forced to control type, whatever the
// metadata says (so, without parse_special, the text is not cut out as a
// user-defined token). The end-of-turn texts llama.cpp auto-detects are
// all among them.
var eogTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
	"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
	"<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["}

// markControlByName reproduces llama.cpp's adjustments of token types by
// text, in its order: the fill-in-the-middle markers (for each kind, the
// first match gets the control attribute; llama.cpp walks an unordered map,
// so "first" is unspecified there and the lowest id is used here; the
// metadata's FIM ids are not read, so the detection always runs), then
// every end-of-generation text becomes control, the gpt-oss markers become
// user-defined, "<|end|>" becomes user-defined when "<|return|>" and
// "<|call|>" (or "<|call|>"/"<|calls|>" and "<|flush|>") exist, and "</s>"
// becomes normal when "<|tool_response>" exists.
func (v *Tokenizer) markControlByName(t *graph.Tokenizer) {
	for _, texts := range fimByName {
		best := -1
		for _, s := range texts {
			if id, ok := v.ids[s]; ok && (best < 0 || id < best) {
				best = id
			}
		}
		if best >= 0 {
			v.attrs[best] |= attrControl
		}
	}
	for _, s := range eogTexts {
		if id, ok := v.ids[s]; ok {
			v.attrs[id] |= attrControl
		}
	}
	for _, s := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if id, ok := v.ids[s]; ok {
			v.attrs[id] = attrUserDefined
		}
	}
	has := func(s string) bool { _, ok := v.ids[s]; return ok }
	if end, ok := v.ids["<|end|>"]; ok {
		call := has("<|call|>") || has("<|calls|>")
		if (has("<|return|>") && call) || (call && has("<|flush|>")) {
			v.attrs[end] = attrUserDefined
		}
	}
	if s, ok := v.ids["</s>"]; ok && has("<|tool_response>") {
		v.attrs[s] = attrNormal
	}
}

// setStripAttrs sets llama.cpp's per-model LSTRIP/RSTRIP token attributes
// (end of llama_vocab::impl::load). It runs after the special-token list
// is built, as in llama.cpp, so it never changes which tokens are special.
func (v *Tokenizer) setStripAttrs(t *graph.Tokenizer, modelName, arch string) {
	set := func(text string, attr uint32, on bool) {
		id, ok := v.ids[text]
		if !ok {
			return // llama.cpp throws (token_to_id.at) or warns
		}
		if on {
			v.attrs[id] |= attr
		} else {
			v.attrs[id] &^= attr
		}
	}
	name := strings.ToLower(modelName)
	containsAny := func(s string, subs ...string) bool {
		for _, x := range subs {
			if strings.Contains(s, x) {
				return true
			}
		}
		return false
	}
	switch {
	case containsAny(t.Pre, "jina-v2-de", "jina-v2-es", "jina-v2-code") || containsAny(arch, "nomic-bert-moe", "jina-bert-v3"):
		set("<mask>", attrLStrip, true)
	case containsAny(name, "phi-3", "phi3"):
		for _, id := range v.special {
			v.attrs[id] |= attrRStrip
		}
		set("</s>", attrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			set(s, attrRStrip, false)
		}
	case containsAny(name, "modern-bert"):
		set("[MASK]", attrLStrip, true)
	}
}

// BOS returns the beginning-of-sequence id, or -1.
func (v *Tokenizer) BOS() int { return v.bos }

// EOS returns the end-of-sequence id, or -1.
func (v *Tokenizer) EOS() int { return v.eos }

// AddBOS reports whether Encode with AddSpecial prepends BOS.
func (v *Tokenizer) AddBOS() bool { return v.addBOS }

// Len returns the number of tokens in the vocabulary.
func (v *Tokenizer) Len() int { return len(v.tokens) }

// Token returns the text of token id ("" when out of range).
func (v *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(v.tokens) {
		return ""
	}
	return v.tokens[id]
}

// fragment is a piece of the input: raw text [off, off+n) or a token.
type fragment struct {
	tok    int // -1 for raw text
	off, n int
}

// partition splits text at occurrences of special tokens
// (llama_vocab::impl::tokenizer_st_partition): each special token in turn,
// longest first, is cut out of every raw fragment left to right. Without
// parseSpecial, control and unknown tokens are left in the text, but
// user-defined tokens are still cut out. A token with the LSTRIP (RSTRIP)
// attribute also drops the C-locale whitespace before (after) it.
func (v *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{tok: -1, off: 0, n: len(text)}}
	for _, id := range v.special {
		a := v.attrs[id]
		if !parseSpecial && a&(attrControl|attrUnknown) != 0 {
			continue
		}
		tt := v.tokens[id]
		var next []fragment
		changed := false
		for _, f := range frags {
			if f.tok >= 0 {
				next = append(next, f)
				continue
			}
			off, end := f.off, f.off+f.n
			for off < end {
				k := strings.Index(text[off:end], tt)
				if k < 0 {
					break
				}
				changed = true
				left := k
				if a&attrLStrip != 0 {
					for left > 0 && isCSpace(text[off+left-1]) {
						left--
					}
				}
				if left > 0 {
					next = append(next, fragment{tok: -1, off: off, n: left})
				}
				next = append(next, fragment{tok: id})
				off += k + len(tt)
				if a&attrRStrip != 0 {
					for off < end && isCSpace(text[off]) {
						off++
					}
				}
			}
			if off < end {
				next = append(next, fragment{tok: -1, off: off, n: end - off})
			}
		}
		if changed {
			frags = next
		}
	}
	return frags
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// Decode renders ids as llama_detokenize(remove_special=false,
// unparse_special=true) does, i.e. common_detokenize's default.
func (v *Tokenizer) Decode(ids []int) string {
	var b []byte
	removeSpace := v.addSpacePrefix
	for _, id := range ids {
		p := v.piece(id, true)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		b = append(b, p...)
	}
	if v.cleanSpaces {
		b = cleanSpaces(b)
	}
	return string(b)
}

// piece is llama.cpp's token_to_piece for one token (lstrip 0).
func (v *Tokenizer) piece(id int, special bool) string {
	if id < 0 || id >= len(v.tokens) {
		return ""
	}
	a := v.attrs[id]
	if !special && a&(attrUnknown|attrControl) != 0 {
		return ""
	}
	t := v.tokens[id]
	switch {
	case a&(attrUnknown|attrControl|attrUserDefined) != 0:
		return t
	case a&attrNormal != 0:
		if v.kind == kindSPM || v.pre.escapeSpaces {
			return strings.ReplaceAll(t, "\u2581", " ")
		}
		return decodeByteLevel(t)
	case a&attrByte != 0:
		if len(t) >= 5 {
			return string([]byte{hexByte(t[3:5])})
		}
	}
	return ""
}

// hexByte parses two hex digits as strtol(.., 16) would (stopping at the
// first non-digit).
func hexByte(s string) byte {
	var v byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v*16 + c - '0'
		case c >= 'a' && c <= 'f':
			v = v*16 + c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = v*16 + c - 'A' + 10
		default:
			return v
		}
	}
	return v
}

// decodeByteLevel maps a byte-level BPE token back to bytes
// (llama_decode_text); a codepoint outside the byte table is written as
// "[UNK_BYTE_0x..<token>]" like llama.cpp does.
func decodeByteLevel(t string) string {
	var b []byte
	for i := 0; i < len(t); {
		r, n := decodeCpt(t, i)
		i += n
		u := appendCpt(nil, r)
		if c, ok := unicodeToByte[string(u)]; ok {
			b = append(b, c)
			continue
		}
		b = append(b, "[UNK_BYTE_0x"...)
		for _, c := range u {
			b = append(b, fmt.Sprintf("%02x", c)...)
		}
		b = append(b, t...)
		b = append(b, ']')
	}
	return string(b)
}

// cleanSpaces is llama.cpp's detokenizer clean-up (clean_spaces): drop the
// space before ?!., , around a lone apostrophe, and before 's 'm 're 've.
func cleanSpaces(text []byte) []byte {
	if len(text) == 0 {
		return text
	}
	// pass 1: " ?", " !", " .", " ,"
	out := text[:1]
	for i := 1; i < len(text); i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			out = out[:len(out)-1]
		}
		out = append(out, x)
	}
	text = out
	// pass 2: " ' " -> "'"
	if len(text) > 0 {
		total := len(text)
		out = text[:1]
		for i := 1; i < total; i++ {
			x := text[i]
			if x == '\'' && i+1 < total && text[i-1] == ' ' && text[i+1] == ' ' {
				out = out[:len(out)-1]
				text[i+1] = 0
				i++
				out = append(out, x)
				continue
			}
			out = append(out, x)
		}
		text = out
	}
	// pass 3: " 's", " 'm", " 're", " 've"
	if len(text) > 0 {
		total := len(text)
		out = text[:1]
		for i := 1; i < total; i++ {
			x := text[i]
			if text[i-1] == ' ' && x == '\'' && i+1 < total {
				x1 := text[i+1]
				switch {
				case x1 == 's' || x1 == 'm':
					out = out[:len(out)-1]
				case i+2 < total && ((x1 == 'r' && text[i+2] == 'e') || (x1 == 'v' && text[i+2] == 'e')):
					out = out[:len(out)-1]
				}
			}
			out = append(out, x)
		}
		text = out
	}
	return text
}
