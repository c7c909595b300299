package hf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// TokenizerFiles are the auxiliary files ReadTokenizer looks at, by base
// name. ReadDir carries these (and generation_config.json, README.md ...)
// in graph.Model.Files.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
	"special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
	"chat_template.json", "merges.txt", "vocab.json",
}

// maxVocab bounds a vocabulary (real ones are at most a few hundred
// thousand tokens), so a hostile vocab_size cannot force a huge allocation.
const maxVocab = 1 << 22

// TokenizerOptions adjust ReadTokenizer.
type TokenizerOptions struct {
	// Arch is the canonical architecture ("llama", "qwen2"); it selects the
	// converter's per-architecture vocabulary rules. Empty: taken from the
	// directory's config.json, else "llama".
	Arch string
	// Pre overrides tokenizer.ggml.pre for byte-level BPE vocabularies
	// (the CLI's --tokenizer-pre), for pre-tokenizers whose regexes are not
	// in the known table.
	Pre string
}

// ReadTokenizer reads the tokenizer of the HF checkpoint directory dir into
// the form llama.cpp's converter writes into GGUF; p.VocabSize, when set,
// is the vocabulary size to pad to (config.json's vocab_size). It returns
// nil, nil when dir has neither tokenizer.model nor tokenizer.json.
func ReadTokenizer(dir string, p graph.Params) (*graph.Tokenizer, error) {
	return ReadTokenizerOptions(dir, p, TokenizerOptions{})
}

// ReadTokenizerOptions is ReadTokenizer with options.
func ReadTokenizerOptions(dir string, p graph.Params, opt TokenizerOptions) (*graph.Tokenizer, error) {
	files := map[string][]byte{}
	for _, name := range append(TokenizerFiles, ConfigName) {
		limit, _ := SideFileLimit(name)
		b, err := osfile.ReadLimited(filepath.Join(dir, name), limit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return parseTokenizer(dir, files, p, opt)
}

// ParseTokenizer is ReadTokenizer on files already in memory, by base name
// (as graph.Model.Files holds them; "config.json" may be included for its
// *_token_id entries). Errors name the files by base name.
func ParseTokenizer(files map[string][]byte, p graph.Params, opt TokenizerOptions) (*graph.Tokenizer, error) {
	return parseTokenizer("", files, p, opt)
}

// tokSrc is the set of tokenizer files being read.
type tokSrc struct {
	dir   string
	files map[string][]byte
	p     graph.Params
	opt   TokenizerOptions

	tj      *tokenizerJSON // tokenizer.json, nil when absent
	tc      map[string]any // tokenizer_config.json, nil when absent
	cfgJSON map[string]any // config.json decoded with UseNumber, nil when absent
	// addedAsIs: the architecture's set_vocab applies added tokens as
	// Phi3MiniModel.set_vocab does (arch.Arch.SPMAddedTokens).
	addedAsIs bool
}

func (s *tokSrc) path(name string) string {
	if s.dir == "" {
		return name
	}
	return filepath.Join(s.dir, name)
}

func (s *tokSrc) errf(name, format string, args ...any) error {
	return fmt.Errorf("%s: %s", s.path(name), fmt.Sprintf(format, args...))
}

func parseTokenizer(dir string, files map[string][]byte, p graph.Params, opt TokenizerOptions) (*graph.Tokenizer, error) {
	s := &tokSrc{dir: dir, files: files, p: p, opt: opt}
	if p.VocabSize < 0 || p.VocabSize > maxVocab {
		return nil, fmt.Errorf("hf: vocabulary size %d is out of range (0..%d)", p.VocabSize, maxVocab)
	}
	if b, ok := files["tokenizer.json"]; ok {
		tj, err := parseTokenizerJSON(s.path("tokenizer.json"), b)
		if err != nil {
			return nil, err
		}
		s.tj = tj
	}
	if b, ok := files["tokenizer_config.json"]; ok {
		m, err := decodeObject(s.path("tokenizer_config.json"), b)
		if err != nil {
			return nil, err
		}
		s.tc = m
	}
	if b, ok := files[ConfigName]; ok {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&s.cfgJSON); err != nil {
			return nil, jsonError(s.path(ConfigName), err)
		}
	}
	archName := opt.Arch
	if archName == "" && s.cfgJSON != nil {
		if a, _ := s.cfgJSON["architectures"].([]any); len(a) > 0 {
			if name, ok := a[0].(string); ok {
				if a, ok := arch.FromHF(name); ok {
					archName = a.Name
				}
			}
		}
	}
	if archName == "" {
		archName = "llama"
	}
	_, hasModel := files["tokenizer.model"]
	if !hasModel && s.tj == nil {
		return nil, nil
	}
	a, _ := arch.Lookup(archName)
	if a == nil {
		a = arch.Llama
	}
	llamaVocab := a.LlamaVocab
	if a.SPMAddedTokens {
		s.addedAsIs = true
		if cls, _ := s.tc["tokenizer_class"].(string); cls == "GPT2Tokenizer" && s.tj != nil {
			hasModel = false // Phi-4: _set_vocab_gpt2
		}
	}

	var (
		t   *graph.Tokenizer
		err error
	)
	var addSpacePrefix *bool
	if llamaVocab && s.tc != nil {
		// LlamaModel.set_vocab: tokenizer_config add_prefix_space.
		if b, ok := s.tc["add_prefix_space"].(bool); ok {
			addSpacePrefix = &b
		}
	}
	switch {
	case hasModel:
		t, err = s.sentencePiece()
	case llamaVocab && s.tj.isLlamaHF():
		t, err = s.llamaHF()
	default:
		t, err = s.bpe()
	}
	if err != nil {
		return nil, err
	}
	if addSpacePrefix != nil {
		t.AddSpacePrefix = addSpacePrefix
	}
	if a.SPMNoSpacePrefix && t.Model == graph.TokenizerSPM {
		no := false // Gemma: no dummy prefix, as set_vocab writes
		t.AddSpacePrefix = &no
	}
	if llamaVocab {
		switch p.VocabSize {
		case 32016: // CodeLlama: LlamaModel.set_vocab sets eot 32010
			if t.EOT < 0 {
				t.EOT = 32010
			}
		case 49152: // granite small models
			t.AddBOS = false
		}
	}
	return t, nil
}

// --- tokenizer.json -------------------------------------------------------

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
}

type tokenizerJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        json.RawMessage `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		IgnoreMerges bool            `json:"ignore_merges"`
		ByteFallback *bool           `json:"byte_fallback"`
	} `json:"model"`

	path  string
	vocab map[string]int // model.vocab for BPE models
}

func parseTokenizerJSON(path string, b []byte) (*tokenizerJSON, error) {
	tj := &tokenizerJSON{path: path}
	if err := json.Unmarshal(b, tj); err != nil {
		return nil, jsonError(path, err)
	}
	for _, part := range []struct {
		key string
		raw json.RawMessage
	}{{"normalizer", tj.Normalizer}, {"pre_tokenizer", tj.PreTokenizer}, {"post_processor", tj.PostProcessor}, {"decoder", tj.Decoder}} {
		// These are decoded into generic values, at up to about 60 bytes
		// of memory per byte.
		if len(part.raw) > maxTokenizerPart {
			return nil, fmt.Errorf("%s: %s is %d bytes, over the %d-byte limit", path, part.key, len(part.raw), maxTokenizerPart)
		}
	}
	for i, at := range tj.AddedTokens {
		if at.ID < 0 || at.ID >= maxVocab {
			return nil, fmt.Errorf("%s: added_tokens[%d] %q has id %d out of range", path, i, at.Content, at.ID)
		}
	}
	if tj.Model.Type == "" && len(tj.Model.Vocab) > 0 && len(tj.Model.Merges) > 0 {
		tj.Model.Type = "BPE" // old files omit the type
	}
	if tj.Model.Type == "BPE" {
		if err := json.Unmarshal(tj.Model.Vocab, &tj.vocab); err != nil {
			return nil, fmt.Errorf("%s: model.vocab is not an object of token ids: %v", path, err)
		}
		for tok, id := range tj.vocab {
			if id < 0 || id >= maxVocab {
				return nil, fmt.Errorf("%s: model.vocab %q has id %d out of range", path, tok, id)
			}
		}
	}
	return tj, nil
}

func (tj *tokenizerJSON) byteFallback() bool {
	return tj.Model.ByteFallback != nil && *tj.Model.ByteFallback
}

// isLlamaHF reports whether LlamaHfVocab accepts the tokenizer.json: a
// SentencePiece-style BPE (byte fallback, Sequence decoder) that is not
// Llama 3's (ignore_merges without byte fallback).
func (tj *tokenizerJSON) isLlamaHF() bool {
	m := tj.Model
	llama3 := m.Type == "BPE" && m.IgnoreMerges && (m.ByteFallback != nil && !*m.ByteFallback)
	if llama3 || m.Type != "BPE" || !tj.byteFallback() {
		return false
	}
	var dec struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(tj.Decoder, &dec)
	return dec.Type == "Sequence"
}

// merges returns model.merges as "a b" strings; pairs with spaces get the
// spaces encoded as U+0120 like SpecialVocab does.
func (tj *tokenizerJSON) merges() ([]string, error) {
	if len(tj.Model.Merges) == 0 || string(tj.Model.Merges) == "null" {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal(tj.Model.Merges, &ss); err == nil {
		return ss, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(tj.Model.Merges, &pairs); err != nil {
		return nil, fmt.Errorf("%s: model.merges is neither a list of strings nor a list of pairs", tj.path)
	}
	out := make([]string, len(pairs))
	for i, pr := range pairs {
		if len(pr) != 2 {
			return nil, fmt.Errorf("%s: model.merges[%d] has %d entries, want 2", tj.path, i, len(pr))
		}
		out[i] = strings.ReplaceAll(pr[0], " ", "\u0120") + " " + strings.ReplaceAll(pr[1], " ", "\u0120")
	}
	return out, nil
}

// --- SentencePiece (tokenizer.model) --------------------------------------

// sentencePiece follows _create_vocab_sentencepiece + _set_vocab_sentencepiece.
func (s *tokSrc) sentencePiece() (*graph.Tokenizer, error) {
	sp, err := parseSentencePiece(s.path("tokenizer.model"), s.files["tokenizer.model"])
	if err != nil {
		return nil, err
	}
	n := s.p.VocabSize
	if n == 0 {
		n = len(sp.Pieces)
	}
	if n > maxVocab {
		return nil, s.errf("tokenizer.model", "%d pieces is more than %d", n, maxVocab)
	}
	t := graph.NewTokenizer(graph.TokenizerSPM)
	t.Pre = "default"
	t.Tokens = make([]string, n)
	t.Scores = make([]float32, n)
	t.Types = make([]int32, n)
	for i := range t.Tokens {
		t.Tokens[i] = "[PAD" + strconv.Itoa(i) + "]"
		t.Scores[i] = -10000
		t.Types[i] = graph.TokenUnused
	}
	for i, pc := range sp.Pieces {
		if i >= n {
			break // "ignore tokens from ...: id is out of range"
		}
		typ := graph.TokenNormal // USER_DEFINED pieces stay NORMAL, as in the converter
		switch pc.Type {
		case SPUnknown:
			typ = graph.TokenUnknown
		case SPControl:
			typ = graph.TokenControl
		case SPUnused:
			typ = graph.TokenUnused
		case SPByte:
			typ = graph.TokenByte
		}
		t.Tokens[i], t.Scores[i], t.Types[i] = pc.Piece, pc.Score, typ
	}

	if b, ok := s.files["added_tokens.json"]; ok {
		kvs, err := orderedObject(s.path("added_tokens.json"), b)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			id, err := jsonInt(kv.val)
			if err != nil {
				return nil, s.errf("added_tokens.json", "%q: %v", kv.key, err)
			}
			if id < 0 || id >= n {
				continue
			}
			t.Tokens[id], t.Scores[id], t.Types[id] = kv.key, -1000, graph.TokenUserDefined
		}
	}
	switch {
	case s.addedAsIs:
		if err := s.applyAddedTokensAsIs(t, n); err != nil {
			return nil, err
		}
	case s.tc != nil:
		if err := s.applyAddedTokensDecoder(t, n); err != nil {
			return nil, err
		}
	}
	sv := newSpecialVocab(len(t.Tokens), false)
	var lookup []addedToken
	if s.tj == nil {
		// No tokenizer.json: transformers builds one from tokenizer.model,
		// whose added tokens are the pieces; let tokenizer_config's token
		// names resolve against them (see the package doc).
		lookup = make([]addedToken, len(t.Tokens))
		for i, tok := range t.Tokens {
			lookup[i] = addedToken{ID: i, Content: tok}
		}
	}
	if err := sv.load(s, lookup); err != nil {
		return nil, err
	}
	if s.tj == nil {
		if _, set := sv.add["bos"]; !set {
			sv.add["bos"] = true // LlamaTokenizer's add_bos_token default
		}
	}
	sv.apply(t)
	return t, nil
}

// applyAddedTokensDecoder applies tokenizer_config.json added_tokens_decoder
// like _create_vocab_sentencepiece.
func (s *tokSrc) applyAddedTokensDecoder(t *graph.Tokenizer, n int) error {
	dec, ok := s.tc["added_tokens_decoder"].(map[string]any)
	if !ok {
		return nil
	}
	ids := make([]int, 0, len(dec))
	byID := map[int]map[string]any{}
	for k, v := range dec {
		id, err := strconv.Atoi(k)
		if err != nil {
			return s.errf("tokenizer_config.json", "added_tokens_decoder key %q is not a token id", k)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return s.errf("tokenizer_config.json", "added_tokens_decoder[%q] is not an object", k)
		}
		if _, ok := obj["content"].(string); !ok {
			return s.errf("tokenizer_config.json", "added_tokens_decoder[%q] has no content string", k)
		}
		ids = append(ids, id)
		byID[id] = obj
	}
	sort.Ints(ids)
	for _, id := range ids {
		if id < 0 || id >= n {
			continue
		}
		obj := byID[id]
		content := obj["content"].(string)
		special, _ := obj["special"].(bool)
		if special || looksSpecial(content) {
			t.Types[id] = graph.TokenControl
		} else {
			content = strings.ReplaceAll(content, "\u2581", " ")
			t.Types[id] = graph.TokenUserDefined
		}
		t.Scores[id] = -1000
		t.Tokens[id] = content
	}
	return nil
}

// applyAddedTokensAsIs is Phi3MiniModel.set_vocab's treatment of
// tokenizer_config.json added_tokens_decoder and then tokenizer.json
// added_tokens: each entry's content replaces its id's token unchanged,
// score -1000, type CONTROL when "special" is true, else USER_DEFINED.
// Ids outside the vocabulary are skipped.
func (s *tokSrc) applyAddedTokensAsIs(t *graph.Tokenizer, n int) error {
	set := func(id int, content string, special bool) {
		if id < 0 || id >= n {
			return
		}
		t.Tokens[id], t.Scores[id], t.Types[id] = content, -1000, graph.TokenUserDefined
		if special {
			t.Types[id] = graph.TokenControl
		}
	}
	if dec, ok := s.tc["added_tokens_decoder"].(map[string]any); ok {
		for k, v := range dec { // distinct ids: the order does not matter
			id, err := strconv.Atoi(k)
			if err != nil {
				return s.errf("tokenizer_config.json", "added_tokens_decoder key %q is not a token id", k)
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return s.errf("tokenizer_config.json", "added_tokens_decoder[%q] is not an object", k)
			}
			content, ok := obj["content"].(string)
			if !ok {
				return s.errf("tokenizer_config.json", "added_tokens_decoder[%q] has no content string", k)
			}
			special, _ := obj["special"].(bool)
			set(id, content, special)
		}
	}
	if s.tj != nil {
		for _, at := range s.tj.AddedTokens {
			set(at.ID, at.Content, at.Special)
		}
	}
	return nil
}

// looksSpecial is TextModel.does_token_look_special.
func looksSpecial(tok string) bool {
	switch tok {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(tok, "<|") && strings.HasSuffix(tok, "|>")) ||
		(strings.HasPrefix(tok, "<｜") && strings.HasSuffix(tok, "｜>")) ||
		(strings.HasPrefix(tok, "<unused") && strings.HasSuffix(tok, ">"))
}

// --- Llama tokenizer.json with byte fallback (LlamaHfVocab) ---------------

var byteTokenRE = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

func (s *tokSrc) llamaHF() (*graph.Tokenizer, error) {
	tj := s.tj
	base := len(tj.vocab)
	rev := make([]string, base)
	have := make([]bool, base)
	for tok, id := range tj.vocab {
		if id >= base {
			return nil, s.errf("tokenizer.json", "model.vocab id %d of %q is not below the vocabulary size %d", id, tok, base)
		}
		if have[id] {
			return nil, s.errf("tokenizer.json", "model.vocab has two tokens with id %d", id)
		}
		rev[id], have[id] = tok, true
	}
	// special ids: the tokens tokenizer_config/special_tokens_map name.
	specials := map[string]bool{}
	for _, m := range []map[string]any{s.tc, s.specialTokensMap()} {
		for k, v := range m {
			if strings.HasSuffix(k, "_token") && !strings.HasPrefix(k, "add_") {
				if c := tokenContent(v); c != "" {
					specials[c] = true
				}
			}
			if k == "additional_special_tokens" || k == "extra_special_tokens" {
				if l, ok := v.([]any); ok {
					for _, e := range l {
						if c := tokenContent(e); c != "" {
							specials[c] = true
						}
					}
				}
			}
		}
	}
	t := graph.NewTokenizer(graph.TokenizerSPM)
	t.Pre = "default"
	for id := 0; id < base; id++ {
		tok := rev[id]
		typ := graph.TokenNormal
		switch {
		case byteTokenRE.MatchString(tok):
			typ = graph.TokenByte
		case specials[tok]:
			typ = graph.TokenControl
		}
		t.Tokens = append(t.Tokens, tok)
		t.Scores = append(t.Scores, -1000)
		t.Types = append(t.Types, typ)
	}
	added := append([]addedToken(nil), tj.AddedTokens...)
	sort.SliceStable(added, func(i, j int) bool { return added[i].ID < added[j].ID })
	for _, at := range added {
		if at.ID < base {
			continue
		}
		if at.ID != len(t.Tokens) {
			return nil, s.errf("tokenizer.json", "added token %q has id %d, want %d (ids must follow the vocabulary without gaps)", at.Content, at.ID, len(t.Tokens))
		}
		typ := graph.TokenUserDefined
		if specials[at.Content] {
			typ = graph.TokenControl
		}
		t.Tokens = append(t.Tokens, at.Content)
		t.Scores = append(t.Scores, -1000)
		t.Types = append(t.Types, typ)
	}
	sv := newSpecialVocab(len(t.Tokens), false)
	if err := sv.load(s, nil); err != nil {
		return nil, err
	}
	sv.apply(t)
	return t, nil
}

func (s *tokSrc) specialTokensMap() map[string]any {
	b, ok := s.files["special_tokens_map.json"]
	if !ok {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func tokenContent(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		c, _ := x["content"].(string)
		return c
	}
	return ""
}

// --- byte-level BPE (get_vocab_base + _set_vocab_gpt2) ---------------------

func (s *tokSrc) bpe() (*graph.Tokenizer, error) {
	tj := s.tj
	if tj.Model.Type != "BPE" {
		return nil, s.errf("tokenizer.json", "tokenizer model type %q is not supported (only BPE and SentencePiece vocabularies are)", tj.Model.Type)
	}
	content := make(map[int]string, len(tj.vocab)+len(tj.AddedTokens))
	vocab := make(map[string]int, len(tj.vocab)+len(tj.AddedTokens))
	for tok, id := range tj.vocab {
		content[id] = tok
		vocab[tok] = id
	}
	addedByID := map[int]addedToken{}
	addedContent := map[string]bool{}
	for _, at := range tj.AddedTokens {
		content[at.ID] = at.Content
		vocab[at.Content] = at.ID
		addedByID[at.ID] = at
		addedContent[at.Content] = true
	}
	n := s.p.VocabSize
	if n == 0 {
		n = len(vocab)
	}
	maxID := -1
	for _, id := range vocab {
		maxID = max(maxID, id)
	}
	if maxID >= n {
		return nil, s.errf("tokenizer.json", "token id %d is not below the vocabulary size %d", maxID, n)
	}
	t := graph.NewTokenizer(graph.TokenizerBPE)
	t.Tokens = make([]string, n)
	t.Types = make([]int32, n)
	for i := 0; i < n; i++ {
		tok, ok := content[i]
		if !ok {
			t.Tokens[i], t.Types[i] = "[PAD"+strconv.Itoa(i)+"]", graph.TokenUnused
			continue
		}
		typ := graph.TokenNormal
		if at, isAdded := addedByID[i]; isAdded && addedContent[tok] {
			if at.Special || looksSpecial(tok) {
				typ = graph.TokenControl
			} else {
				tok = strings.ReplaceAll(tok, "\u2581", " ")
				typ = graph.TokenUserDefined
			}
		}
		t.Tokens[i], t.Types[i] = tok, typ
	}
	t.IgnoreMerges = tj.Model.IgnoreMerges
	pre, regexes, err := s.preTokenizer()
	if err != nil {
		return nil, err
	}
	t.Pre, t.PreRegex = pre, regexes

	sv := newSpecialVocab(-1, true)
	if err := sv.load(s, nil); err != nil {
		return nil, err
	}
	t.Merges = sv.merges
	if len(t.Merges) == 0 {
		return nil, s.errf("tokenizer.json", "BPE tokenizer has no merges (and there is no merges.txt)")
	}
	sv.apply(t)
	return t, nil
}

// GPT2Regex is the regex of the tokenizers ByteLevel pre-tokenizer with
// use_regex (GPT-2's pattern).
const GPT2Regex = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// preTokenizers maps the sha256 of the concatenated Split regexes of a
// tokenizer.json pre_tokenizer to llama.cpp's pre-tokenizer name (the
// digests of ollama's convert/tokenizer.go; the regexes of the first three
// are in PreTokenizerRegexes and checked by the tests).
var preTokenizers = map[string]string{
	"d98f9631be1e9607a9848c26c1f9eac1aa9fc21ac6ba82a2fc0741af9780a48f": "llama-bpe",
	"03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02": "deepseek-llm",
	"21cde974d587f0d54dc8d56b183cc1e6239600172035c68fbd6d4b9f8da0576e": "deepseek-coder",
	"1ff7f41064896984db5d1bb6ff64fa4bc29007d08c1b439e505b7392777a319e": "qwen2",
	"00431aed57e696b747435f734d1e3b9b1bfd931a121fb5cac7129e97c181e9ba": "qwen35",
	"b92c0824a58e1d8dc3221cf3e12c433c3a86f57e46d57229993489f0798e7702": "laguna",
}

// PreTokenizerRegexes are the tokenizer.json Split regexes (as the HF files
// spell them) of the pre-tokenizers WriteTokenizerFiles can write.
var PreTokenizerRegexes = map[string][]string{
	"llama-bpe": {`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"qwen2":     {`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"qwen35":    {`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	"gpt-2":     {GPT2Regex},
}

// UnknownPreTokenizerError is returned for a BPE pre-tokenizer whose
// regexes are not in the known table.
type UnknownPreTokenizerError struct {
	Path    string
	Digest  string
	Regexes []string
}

func (e *UnknownPreTokenizerError) Error() string {
	names := make([]string, 0, len(preTokenizers)+1)
	for _, n := range preTokenizers {
		names = append(names, n)
	}
	names = append(names, "gpt-2")
	sort.Strings(names)
	return fmt.Sprintf("%s: BPE pre-tokenizer not recognized (sha256 of its Split regexes %s, regexes %q); "+
		"name it with --tokenizer-pre (llama.cpp tokenizer.ggml.pre; known: %s)",
		e.Path, e.Digest, e.Regexes, strings.Join(names, ", "))
}

type preTok struct {
	Type          string          `json:"type"`
	Pattern       json.RawMessage `json:"pattern"`
	UseRegex      *bool           `json:"use_regex"`
	PreTokenizers []preTok        `json:"pretokenizers"`
}

// preTokenizer names the pre-tokenizer and returns its regexes.
func (s *tokSrc) preTokenizer() (string, []string, error) {
	var root preTok
	if len(s.tj.PreTokenizer) > 0 && string(s.tj.PreTokenizer) != "null" {
		if err := json.Unmarshal(s.tj.PreTokenizer, &root); err != nil {
			return "", nil, fmt.Errorf("%s: pre_tokenizer: %v", s.tj.path, err)
		}
	}
	var regexes []string
	byteLevelRegex := false
	var walk func(p preTok)
	walk = func(p preTok) {
		switch p.Type {
		case "Sequence":
			for _, c := range p.PreTokenizers {
				walk(c)
			}
		case "Split":
			var pat struct{ Regex string }
			if json.Unmarshal(p.Pattern, &pat) == nil && pat.Regex != "" {
				regexes = append(regexes, pat.Regex)
			}
		case "ByteLevel":
			if p.UseRegex == nil || *p.UseRegex {
				byteLevelRegex = true
			}
		}
	}
	walk(root)
	h := sha256.New()
	for _, r := range regexes {
		h.Write([]byte(r))
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if byteLevelRegex {
		regexes = append(regexes, GPT2Regex)
	}
	if s.opt.Pre != "" {
		return s.opt.Pre, regexes, nil
	}
	if name, ok := preTokenizers[digest]; ok && len(regexes) > 0 {
		return name, regexes, nil
	}
	if len(regexes) == 1 && byteLevelRegex {
		return "gpt-2", regexes, nil
	}
	return "", nil, &UnknownPreTokenizerError{Path: s.tj.path, Digest: digest, Regexes: regexes}
}

// --- gguf.SpecialVocab ----------------------------------------------------

type specialVocab struct {
	nVocab     int // -1: unchecked
	loadMerges bool
	types      []string
	ids        map[string]int
	add        map[string]bool
	merges     []string
	chat       string
	hasChat    bool
}

func newSpecialVocab(nVocab int, loadMerges bool) *specialVocab {
	return &specialVocab{
		nVocab: nVocab, loadMerges: loadMerges,
		types: []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"},
		ids:   map[string]int{}, add: map[string]bool{},
	}
}

// set is _set_special_token: the first id set for a type wins.
func (sv *specialVocab) set(typ string, id int) {
	if id < 0 || (sv.nVocab >= 0 && id >= sv.nVocab) {
		return
	}
	if _, ok := sv.ids[typ]; !ok {
		sv.ids[typ] = id
	}
}

func (sv *specialVocab) hasType(typ string) bool {
	for _, t := range sv.types {
		if t == typ {
			return true
		}
	}
	return false
}

// load is SpecialVocab._load. lookup, when not nil, replaces tokenizer.json's
// added_tokens for resolving tokenizer_config token names.
func (sv *specialVocab) load(s *tokSrc, lookup []addedToken) error {
	if err := sv.fromTokenizerJSON(s, lookup); err != nil {
		return err
	}
	if err := sv.fromConfigJSON(s); err != nil {
		return err
	}
	if sv.loadMerges && len(sv.merges) == 0 {
		sv.mergesTxt(s)
	}
	return nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case bool:
		return x
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	case float64:
		return x != 0
	}
	return true
}

// pyEq compares two decoded JSON values as Python's == does for the
// strings and objects SpecialVocab compares.
func pyEq(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return as == bs
	}
	if a == nil && b == nil {
		return true
	}
	if aok || bok {
		return false
	}
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

func specialID(entry any) any {
	m, _ := entry.(map[string]any)
	st, _ := m["SpecialToken"].(map[string]any)
	return st["id"]
}

func sequenceID(entry any) any {
	m, _ := entry.(map[string]any)
	st, _ := m["Sequence"].(map[string]any)
	return st["id"]
}

func (sv *specialVocab) fromTokenizerJSON(s *tokSrc, lookup []addedToken) error {
	tc := s.tc
	tcTruthy := len(tc) > 0
	added := lookup
	if tj := s.tj; tj != nil {
		if sv.loadMerges {
			m, err := tj.merges()
			if err != nil {
				return err
			}
			sv.merges = m
		}
		if lookup == nil {
			added = tj.AddedTokens
		}
		get := func(k string) any {
			if tc == nil {
				return nil
			}
			return tc[k]
		}
		sBos, sCls, sEos, sSep := get("bos_token"), get("cls_token"), get("eos_token"), get("sep_token")
		if !truthy(sBos) && truthy(sCls) && tcTruthy {
			tc["bos_token"], sBos = sCls, sCls
		}
		if !truthy(sEos) && truthy(sSep) && tcTruthy {
			tc["eos_token"], sEos = sSep, sSep
		}
		var pp any
		if len(tj.PostProcessor) > 0 {
			if err := json.Unmarshal(tj.PostProcessor, &pp); err != nil {
				return fmt.Errorf("%s: post_processor: %v", tj.path, err)
			}
		}
		if ppm, ok := pp.(map[string]any); ok && len(ppm) > 0 {
			procs := []any{ppm}
			if l, ok := ppm["processors"].([]any); ok {
				procs = l
			}
			for _, pr := range procs {
				proc, _ := pr.(map[string]any)
				switch proc["type"] {
				case "RobertaProcessing":
					sv.add["bos"], sv.add["eos"], sv.add["sep"] = true, true, true
					if !truthy(sCls) && tcTruthy {
						sCls = sBos
						if l, ok := proc["cls"].([]any); ok && len(l) > 0 {
							sCls = l[0]
						}
						tc["cls_token"] = sCls
					}
					if !truthy(sSep) && tcTruthy {
						sSep = sEos
						if l, ok := proc["sep"].([]any); ok && len(l) > 0 {
							sSep = l[0]
						}
						tc["sep_token"] = sSep
					}
				case "TemplateProcessing":
					single, _ := proc["single"].([]any)
					pair, _ := proc["pair"].([]any)
					var first, last any
					if len(single) > 1 {
						if first = specialID(single[0]); truthy(first) {
							if !tcTruthy {
								sBos = first
							} else if !pyEq(first, sBos) && !pyEq(first, sCls) {
								if !truthy(sBos) {
									tc["bos_token"], sBos = first, first
								}
								if !truthy(sCls) {
									tc["cls_token"], sCls = first, first
								}
							}
							sv.add["bos"] = pyEq(first, sBos) || pyEq(first, sCls)
						}
						if last = specialID(single[len(single)-1]); truthy(last) {
							if !tcTruthy {
								sEos = last
							} else if !pyEq(last, sEos) {
								switch {
								case !sv.hasType("eot"):
									sv.types = append(sv.types, "eot")
									tc["eot_token"] = sEos
								case !sv.hasType("eom"):
									sv.types = append(sv.types, "eom")
									tc["eom_token"] = sEos
								}
								tc["eos_token"], sEos = last, last
							}
							sv.add["eos"] = pyEq(last, sEos)
						}
					}
					if len(pair) > 0 {
						start, stop := 0, len(pair)
						if truthy(first) && pyEq(specialID(pair[0]), first) {
							start = 1
						}
						if truthy(last) && pyEq(specialID(pair[len(pair)-1]), last) {
							stop = len(pair) - 1
						}
						if start < stop {
							tp := pair[start:stop]
							a, b := sequenceID(tp[0]), sequenceID(tp[len(tp)-1])
							if pyEq(a, "A") && pyEq(b, "B") && len(tp) > 2 {
								mid := tp[1 : len(tp)-1]
								addSep := false
								if e := specialID(mid[0]); truthy(e) {
									if (pyEq(e, sSep) || pyEq(e, sEos)) && !truthy(last) {
										addSep = true
									}
								}
								if len(mid) == 2 {
									if e := specialID(mid[1]); truthy(e) && (pyEq(e, sSep) || pyEq(e, sEos)) {
										addSep = true
									}
								}
								sv.add["sep"] = addSep
								if addSep && !truthy(sSep) && tcTruthy {
									tc["sep_token"] = sEos
								}
							}
						}
					}
				}
			}
		}
	}
	if !tcTruthy {
		return nil
	}
	if err := sv.chatTemplate(s); err != nil {
		return err
	}
	for _, typ := range sv.types {
		if b, ok := tc["add_"+typ+"_token"].(bool); ok {
			sv.add[typ] = b
		}
		var c string
		switch e := tc[typ+"_token"].(type) {
		case string:
			c = e
		case map[string]any:
			s, ok := e["content"].(string)
			if !ok {
				continue
			}
			c = s
		default:
			continue
		}
		for _, at := range added {
			if at.Content == c {
				sv.set(typ, at.ID)
				break
			}
		}
	}
	return nil
}

func (sv *specialVocab) chatTemplate(s *tokSrc) error {
	var alt any
	if b, ok := s.files["chat_template.jinja"]; ok {
		alt = string(b)
	} else if b, ok := s.files["chat_template.json"]; ok {
		m, err := decodeObject(s.path("chat_template.json"), b)
		if err != nil {
			return err
		}
		alt = m["chat_template"]
	}
	ct, ok := s.tc["chat_template"]
	if !ok {
		ct = alt
	}
	switch x := ct.(type) {
	case string:
		sv.chat, sv.hasChat = x, true
	case []any:
		for _, e := range x {
			m, _ := e.(map[string]any)
			if m["name"] == "default" {
				if tmpl, ok := m["template"].(string); ok {
					sv.chat, sv.hasChat = tmpl, true
				}
			}
		}
	}
	return nil
}

func (sv *specialVocab) fromConfigJSON(s *tokSrc) error {
	c := s.cfgJSON
	if c == nil {
		return nil
	}
	tcfg, _ := c["text_config"].(map[string]any)
	for _, typ := range sv.types {
		v, ok := c[typ+"_token_id"]
		if (!ok || v == nil) && tcfg != nil {
			v = tcfg[typ+"_token_id"]
		}
		num, ok := v.(json.Number)
		if !ok {
			continue // lists (Llama 3.1's eos ids), null, booleans: not an int
		}
		id, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			continue // a float such as 1.0 is not an int in Python either
		}
		if id < 0 {
			return s.errf(ConfigName, "invalid value for special token type %s: %d", typ, id)
		}
		if id < math.MaxInt32 {
			sv.set(typ, int(id))
		}
	}
	return nil
}

func (sv *specialVocab) mergesTxt(s *tokSrc) {
	b, ok := s.files["merges.txt"]
	if !ok {
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), "#") {
		lines = lines[1:]
	}
	var merges []string
	for _, ln := range lines {
		f := strings.Fields(ln)
		if len(f) != 2 {
			continue
		}
		merges = append(merges, f[0]+" "+f[1])
	}
	sv.merges = merges
}

// apply copies the collected values into t.
func (sv *specialVocab) apply(t *graph.Tokenizer) {
	for typ, id := range sv.ids {
		switch typ {
		case "bos":
			t.BOS = id
		case "eos":
			t.EOS = id
		case "unk":
			t.UNK = id
		case "sep":
			t.SEP = id
		case "pad":
			t.PAD = id
		case "cls":
			t.CLS = id
		case "mask":
			t.MASK = id
		case "eot":
			t.EOT = id
		case "eom":
			t.EOM = id
		}
	}
	t.AddBOS = sv.add["bos"]
	t.AddEOS = sv.add["eos"]
	if sv.hasChat {
		t.ChatTemplate = sv.chat
	}
}

// --- small JSON helpers ---------------------------------------------------

type rawKV struct {
	key string
	val json.RawMessage
}

// orderedObject decodes a JSON object keeping key order.
func orderedObject(path string, b []byte) ([]rawKV, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(path, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &ConfigError{Path: path, Offset: 0, Msg: "not a JSON object"}
	}
	var out []rawKV
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, jsonError(path, err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, jsonError(path, err)
		}
		out = append(out, rawKV{kt.(string), v})
	}
	return out, nil
}

func jsonInt(b json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return 0, fmt.Errorf("not a number")
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%s is not a token id", n)
	}
	return int(v), nil
}
