package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/quantbridge/quantbridge/graph"
)

// WriteTokenizerFiles returns the HF tokenizer files for a GGUF-style
// vocabulary, by base name:
//   - SentencePiece ("llama"): tokenizer.model, a ModelProto of type BPE
//     (llama.cpp's SPM tokenizer merges by score like SentencePiece BPE)
//     with byte_fallback when the vocabulary has byte tokens, an identity
//     normalizer with add_dummy_prefix = AddSpacePrefix (default true) and
//     no whitespace squeezing; added tokens (USER_DEFINED, and CONTROL ones
//     scored -1000 as the converter scores added tokens) are also listed in
//     tokenizer_config.json's added_tokens_decoder, so ReadTokenizer maps
//     the files back to the same vocabulary.
//   - byte-level BPE ("gpt2"): tokenizer.json with the vocabulary (ids in
//     order; CONTROL and USER_DEFINED tokens go to added_tokens, unused
//     "[PADn]" fillers are left out), merges as pairs, the Split regexes of
//     PreRegex or of the known pre-tokenizer Pre, a ByteLevel decoder and a
//     TemplateProcessing post-processor when AddBOS/AddEOS.
//   - tokenizer_config.json: bos/eos/unk/pad token texts, add_bos_token,
//     add_eos_token, chat_template, added_tokens_decoder, tokenizer_class.
//
// EOT/EOM/SEP/CLS/MASK ids have no tokenizer_config spelling that
// ReadTokenizer maps back and are not written.
func WriteTokenizerFiles(t *graph.Tokenizer) (map[string][]byte, error) {
	if t == nil {
		return nil, fmt.Errorf("hf: no tokenizer to write")
	}
	n := len(t.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("hf: tokenizer has no tokens")
	}
	if t.Types != nil && len(t.Types) != n {
		return nil, fmt.Errorf("hf: tokenizer has %d types for %d tokens", len(t.Types), n)
	}
	if t.Scores != nil && len(t.Scores) != n {
		return nil, fmt.Errorf("hf: tokenizer has %d scores for %d tokens", len(t.Scores), n)
	}
	for i, tok := range t.Tokens {
		if !utf8.ValidString(tok) {
			return nil, fmt.Errorf("hf: token %d %q is not valid UTF-8", i, tok)
		}
	}
	for _, id := range []int{t.BOS, t.EOS, t.UNK, t.PAD} {
		if id >= n {
			return nil, fmt.Errorf("hf: special token id %d is outside the %d-token vocabulary", id, n)
		}
	}
	typ := func(i int) int32 {
		if t.Types == nil {
			return graph.TokenNormal
		}
		return t.Types[i]
	}
	score := func(i int) float32 {
		if t.Scores == nil {
			return 0
		}
		return t.Scores[i]
	}
	out := map[string][]byte{}
	tc := map[string]any{
		"add_bos_token":                t.AddBOS,
		"add_eos_token":                t.AddEOS,
		"clean_up_tokenization_spaces": false,
	}
	name := func(id int) any {
		if id < 0 {
			return nil
		}
		return t.Tokens[id]
	}
	tc["bos_token"], tc["eos_token"], tc["unk_token"], tc["pad_token"] = name(t.BOS), name(t.EOS), name(t.UNK), name(t.PAD)
	if t.ChatTemplate != "" {
		tc["chat_template"] = t.ChatTemplate
	}
	decoder := map[string]any{}
	addDecoder := func(i int, special bool) {
		decoder[strconv.Itoa(i)] = map[string]any{
			"content": t.Tokens[i], "lstrip": false, "normalized": false,
			"rstrip": false, "single_word": false, "special": special,
		}
	}

	switch t.Model {
	case graph.TokenizerSPM:
		sp, err := spModelFor(t, typ, score)
		if err != nil {
			return nil, err
		}
		out["tokenizer.model"] = sp.Marshal()
		for i := range t.Tokens {
			switch typ(i) {
			case graph.TokenUserDefined:
				addDecoder(i, false)
			case graph.TokenControl:
				if score(i) == -1000 {
					addDecoder(i, true)
				}
			}
		}
		tc["tokenizer_class"] = "LlamaTokenizer"
		tc["legacy"] = true
		if t.AddSpacePrefix != nil {
			tc["add_prefix_space"] = *t.AddSpacePrefix
		}
	case graph.TokenizerBPE:
		tj, err := bpeTokenizerJSON(t, typ)
		if err != nil {
			return nil, err
		}
		out["tokenizer.json"] = tj
		for i := range t.Tokens {
			switch typ(i) {
			case graph.TokenControl:
				addDecoder(i, true)
			case graph.TokenUserDefined:
				addDecoder(i, false)
			}
		}
		tc["tokenizer_class"] = "PreTrainedTokenizerFast"
	default:
		return nil, fmt.Errorf("hf: cannot write a %q tokenizer (only %q SentencePiece and %q byte-level BPE)", t.Model, graph.TokenizerSPM, graph.TokenizerBPE)
	}
	if len(decoder) > 0 {
		tc["added_tokens_decoder"] = decoder
	}
	b, err := marshalIndented(tc)
	if err != nil {
		return nil, err
	}
	out["tokenizer_config.json"] = b
	return out, nil
}

func spModelFor(t *graph.Tokenizer, typ func(int) int32, score func(int) float32) (*SPModel, error) {
	sp := NewSPModel()
	sp.ModelType = SPBPE
	sp.VocabSize = int32(len(t.Tokens))
	sp.NormalizerName = "identity"
	sp.RemoveExtraWhitespaces = false
	sp.AddDummyPrefix = t.AddSpacePrefix == nil || *t.AddSpacePrefix
	unk := t.UNK
	if unk < 0 {
		for i := range t.Tokens {
			if typ(i) == graph.TokenUnknown {
				unk = i
				break
			}
		}
	}
	if unk < 0 {
		return nil, fmt.Errorf("hf: a SentencePiece model needs an unknown token and the vocabulary has none")
	}
	seen := make(map[string]int, len(t.Tokens))
	sp.Pieces = make([]SPPiece, len(t.Tokens))
	for i, tok := range t.Tokens {
		if tok == "" {
			return nil, fmt.Errorf("hf: token %d is empty; SentencePiece pieces must not be", i)
		}
		if j, dup := seen[tok]; dup {
			return nil, fmt.Errorf("hf: tokens %d and %d are both %q; SentencePiece pieces must be unique", j, i, tok)
		}
		seen[tok] = i
		pt := SPNormal
		switch typ(i) {
		case graph.TokenUnknown, graph.TokenControl:
			pt = SPControl // exactly one UNKNOWN piece: set below
		case graph.TokenUserDefined:
			pt = SPUserDefined
		case graph.TokenUnused:
			pt = SPUnused
		case graph.TokenByte:
			pt = SPByte
			sp.ByteFallback = true
		}
		sp.Pieces[i] = SPPiece{Piece: tok, Score: score(i), Type: pt}
	}
	sp.Pieces[unk].Type = SPUnknown
	sp.UnkID, sp.UnkPiece = int32(unk), t.Tokens[unk]
	sp.BOSID, sp.EOSID, sp.PadID = int32(t.BOS), int32(t.EOS), int32(t.PAD)
	if t.BOS >= 0 {
		sp.BOSPiece = t.Tokens[t.BOS]
	}
	if t.EOS >= 0 {
		sp.EOSPiece = t.Tokens[t.EOS]
	}
	if t.PAD >= 0 {
		sp.PadPiece = t.Tokens[t.PAD]
	}
	return sp, nil
}

func isPadFiller(tok string, i int) bool {
	return tok == "[PAD"+strconv.Itoa(i)+"]"
}

// bpeTokenizerJSON writes a tokenizers-library tokenizer.json.
func bpeTokenizerJSON(t *graph.Tokenizer, typ func(int) int32) ([]byte, error) {
	regexes := t.PreRegex
	if len(regexes) == 0 {
		regexes = PreTokenizerRegexes[t.Pre]
	}
	if len(regexes) == 0 {
		return nil, fmt.Errorf("hf: the regexes of BPE pre-tokenizer %q are not known; cannot write tokenizer.json", t.Pre)
	}
	if len(t.Merges) == 0 {
		return nil, fmt.Errorf("hf: BPE tokenizer has no merges")
	}
	var pre any
	if len(regexes) == 1 && regexes[0] == GPT2Regex {
		pre = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	} else {
		var seq []any
		for _, r := range regexes {
			seq = append(seq, map[string]any{"type": "Split", "pattern": map[string]any{"Regex": r}, "behavior": "Isolated", "invert": false})
		}
		seq = append(seq, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false})
		pre = map[string]any{"type": "Sequence", "pretokenizers": seq}
	}

	var added []any
	var vocab bytes.Buffer
	vocab.WriteByte('{')
	seen := map[string]int{}
	first := true
	for i, tok := range t.Tokens {
		switch ty := typ(i); {
		case ty == graph.TokenControl || ty == graph.TokenUserDefined:
			added = append(added, map[string]any{
				"id": i, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": ty == graph.TokenUserDefined, "special": ty == graph.TokenControl,
			})
			continue
		case ty == graph.TokenUnused && isPadFiller(tok, i):
			continue
		}
		if j, dup := seen[tok]; dup {
			return nil, fmt.Errorf("hf: tokens %d and %d are both %q; a tokenizer.json vocabulary cannot hold both", j, i, tok)
		}
		seen[tok] = i
		if !first {
			vocab.WriteByte(',')
		}
		first = false
		kb, err := marshalNoEscape(tok)
		if err != nil {
			return nil, err
		}
		vocab.Write(kb)
		vocab.WriteByte(':')
		vocab.WriteString(strconv.Itoa(i))
	}
	vocab.WriteByte('}')

	merges := make([][2]string, len(t.Merges))
	for i, m := range t.Merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok || a == "" || b == "" {
			return nil, fmt.Errorf("hf: merge %d %q is not two space-separated tokens", i, m)
		}
		merges[i] = [2]string{a, b}
	}

	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
	var post any = byteLevel
	if (t.AddBOS && t.BOS >= 0) || (t.AddEOS && t.EOS >= 0) {
		special := map[string]any{}
		spec := func(id, typeID int) any {
			tok := t.Tokens[id]
			special[tok] = map[string]any{"id": tok, "ids": []int{id}, "tokens": []string{tok}}
			return map[string]any{"SpecialToken": map[string]any{"id": tok, "type_id": typeID}}
		}
		seqA := map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}
		seqB := map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}
		var single, pair []any
		if t.AddBOS && t.BOS >= 0 {
			single = append(single, spec(t.BOS, 0))
			pair = append(pair, spec(t.BOS, 0))
		}
		single = append(single, seqA)
		pair = append(pair, seqA)
		if t.AddEOS && t.EOS >= 0 {
			single = append(single, spec(t.EOS, 0))
			pair = append(pair, spec(t.EOS, 0))
		}
		if t.AddBOS && t.BOS >= 0 {
			pair = append(pair, spec(t.BOS, 1))
		}
		pair = append(pair, seqB)
		if t.AddEOS && t.EOS >= 0 {
			pair = append(pair, spec(t.EOS, 1))
		}
		post = map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
			map[string]any{"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special},
		}}
	}
	if added == nil {
		added = []any{}
	}
	doc := struct {
		Version       string          `json:"version"`
		Truncation    any             `json:"truncation"`
		Padding       any             `json:"padding"`
		AddedTokens   []any           `json:"added_tokens"`
		Normalizer    any             `json:"normalizer"`
		PreTokenizer  any             `json:"pre_tokenizer"`
		PostProcessor any             `json:"post_processor"`
		Decoder       any             `json:"decoder"`
		Model         json.RawMessage `json:"model"`
	}{
		Version: "1.0", AddedTokens: added, PreTokenizer: pre, PostProcessor: post,
		Decoder: map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
	}
	model := struct {
		Type                    string          `json:"type"`
		Dropout                 any             `json:"dropout"`
		UnkToken                any             `json:"unk_token"`
		ContinuingSubwordPrefix any             `json:"continuing_subword_prefix"`
		EndOfWordSuffix         any             `json:"end_of_word_suffix"`
		FuseUnk                 bool            `json:"fuse_unk"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  [][2]string     `json:"merges"`
	}{Type: "BPE", IgnoreMerges: t.IgnoreMerges || t.Pre == "llama-bpe", Vocab: vocab.Bytes(), Merges: merges}
	mb, err := marshalNoEscape(model)
	if err != nil {
		return nil, err
	}
	doc.Model = mb
	return marshalIndented(doc)
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// sortedKeys is used by tests and writers for deterministic output.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
