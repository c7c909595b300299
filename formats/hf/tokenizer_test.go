package hf

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestReadTokenizerKJV(t *testing.T) {
	tok, err := ReadTokenizer(testref.Local(t, "kjv-llama"), graph.Params{VocabSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// Values as convert_hf_to_gguf.py wrote them into kjv-llama.bf16.gguf.
	checks := []struct {
		name      string
		got, want any
	}{
		{"model", tok.Model, "llama"},
		{"pre", tok.Pre, "default"},
		{"count", [3]int{len(tok.Tokens), len(tok.Scores), len(tok.Types)}, [3]int{4096, 4096, 4096}},
		{"ids bos/eos/unk/pad", [4]int{tok.BOS, tok.EOS, tok.UNK, tok.PAD}, [4]int{1, 2, 0, -1}},
		{"add bos/eos", [2]bool{tok.AddBOS, tok.AddEOS}, [2]bool{true, false}},
		{"add space prefix", tok.AddSpacePrefix, (*bool)(nil)},
		{"merges", tok.Merges, []string(nil)},
		{"token 0", [3]any{tok.Tokens[0], tok.Scores[0], tok.Types[0]}, [3]any{"<unk>", float32(0), graph.TokenUnknown}},
		{"token 1", [3]any{tok.Tokens[1], tok.Scores[1], tok.Types[1]}, [3]any{"<s>", float32(0), graph.TokenControl}},
		{"token 258", [3]any{tok.Tokens[258], tok.Scores[258], tok.Types[258]}, [3]any{"<0xFF>", float32(0), graph.TokenByte}},
		{"token 260", [3]any{tok.Tokens[260], tok.Scores[260], tok.Types[260]}, [3]any{"▁th", float32(-1), graph.TokenNormal}},
		{"token 300", [3]any{tok.Tokens[300], tok.Scores[300], tok.Types[300]}, [3]any{"▁And", float32(-41), graph.TokenNormal}},
		{"token 4095", [3]any{tok.Tokens[4095], tok.Scores[4095], tok.Types[4095]}, [3]any{"Q", float32(-3836), graph.TokenNormal}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	counts := map[int32]int{}
	for _, ty := range tok.Types {
		counts[ty]++
	}
	if want := map[int32]int{1: 3837, 6: 256, 3: 2, 2: 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("type histogram %v, want %v", counts, want)
	}
}

// jsonOf marshals v for a synthetic file.
func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var tinyBPEVocab = map[string]int{"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "he": 5, "ll": 6, "hell": 7, "hello": 8, "Ġh": 9}

func splitPre(regexes ...string) map[string]any {
	var seq []any
	for _, r := range regexes {
		seq = append(seq, map[string]any{"type": "Split", "pattern": map[string]any{"Regex": r}, "behavior": "Isolated", "invert": false})
	}
	seq = append(seq, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false})
	return map[string]any{"type": "Sequence", "pretokenizers": seq}
}

func added(id int, content string, special bool) map[string]any {
	return map[string]any{"id": id, "content": content, "special": special, "normalized": !special, "lstrip": false, "rstrip": false, "single_word": false}
}

// llama3Files is a tiny tokenizer in Meta-Llama-3's tokenizer.json layout.
func llama3Files(t *testing.T) map[string][]byte {
	bot := map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 0}}
	return map[string][]byte{
		"tokenizer.json": jsonOf(t, map[string]any{
			"version": "1.0",
			"added_tokens": []any{added(10, "<|begin_of_text|>", true), added(11, "<|end_of_text|>", true),
				added(12, "<|reserved_special_token_0|>", true), added(13, "my▁token", false)},
			"normalizer":    nil,
			"pre_tokenizer": splitPre(PreTokenizerRegexes["llama-bpe"][0]),
			"post_processor": map[string]any{"type": "Sequence", "processors": []any{
				map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
				map[string]any{"type": "TemplateProcessing",
					"single": []any{bot, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
					"pair": []any{bot, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
						map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 1}},
						map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}}},
			}},
			"decoder": map[string]any{"type": "ByteLevel"},
			"model": map[string]any{"type": "BPE", "ignore_merges": true, "byte_fallback": false, "vocab": tinyBPEVocab,
				"merges": [][]string{{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "h"}}},
		}),
		"tokenizer_config.json": jsonOf(t, map[string]any{
			"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "clean_up_tokenization_spaces": true,
			"model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast",
			"chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
		}),
		"config.json": jsonOf(t, map[string]any{"architectures": []string{"LlamaForCausalLM"}, "bos_token_id": 10, "eos_token_id": 11, "vocab_size": 16}),
	}
}

// qwen2Files is a tiny tokenizer in Qwen2.5's layout: old-style string
// merges, no post-processor template, add_prefix_space false, no BOS.
func qwen2Files(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"tokenizer.json": jsonOf(t, map[string]any{
			"added_tokens":   []any{added(10, "<|endoftext|>", true), added(11, "<|im_start|>", true), added(12, "<|im_end|>", true)},
			"pre_tokenizer":  splitPre(PreTokenizerRegexes["qwen2"][0]),
			"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
			"decoder":        map[string]any{"type": "ByteLevel"},
			"model": map[string]any{"type": "BPE", "vocab": tinyBPEVocab, "byte_fallback": false,
				"merges": []string{"h e", "l l", "he ll", "hell o", "Ġ h"}},
		}),
		"tokenizer_config.json": jsonOf(t, map[string]any{
			"add_prefix_space": false, "bos_token": nil, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
			"errors": "replace", "split_special_tokens": false, "tokenizer_class": "Qwen2Tokenizer",
			"chat_template": "{% for message in messages %}<|im_start|>{{ message['content'] }}<|im_end|>{% endfor %}",
		}),
		"config.json": jsonOf(t, map[string]any{"architectures": []string{"Qwen2ForCausalLM"}, "bos_token_id": 10, "eos_token_id": 12, "vocab_size": 14}),
	}
}

func TestParseTokenizerBPE(t *testing.T) {
	baseTokens := []string{"h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "Ġh"}
	baseTypes := []int32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ h"}

	llama3 := graph.NewTokenizer(graph.TokenizerBPE)
	llama3.Pre = "llama-bpe"
	llama3.PreRegex = PreTokenizerRegexes["llama-bpe"]
	llama3.Tokens = append(append([]string{}, baseTokens...), "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "my token", "[PAD14]", "[PAD15]")
	llama3.Types = append(append([]int32{}, baseTypes...), 3, 3, 3, 4, 5, 5)
	llama3.Merges = merges
	llama3.BOS, llama3.EOS = 10, 11
	llama3.AddBOS = true
	llama3.IgnoreMerges = true
	llama3.ChatTemplate = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"

	qwen := graph.NewTokenizer(graph.TokenizerBPE)
	qwen.Pre = "qwen2"
	qwen.PreRegex = PreTokenizerRegexes["qwen2"]
	qwen.Tokens = append(append([]string{}, baseTokens...), "<|endoftext|>", "<|im_start|>", "<|im_end|>", "[PAD13]")
	qwen.Types = append(append([]int32{}, baseTypes...), 3, 3, 3, 5)
	qwen.Merges = merges
	qwen.BOS, qwen.EOS, qwen.PAD = 10, 12, 10
	qwen.ChatTemplate = "{% for message in messages %}<|im_start|>{{ message['content'] }}<|im_end|>{% endfor %}"

	tests := []struct {
		name  string
		files map[string][]byte
		p     graph.Params
		opt   TokenizerOptions
		want  *graph.Tokenizer
	}{
		{"llama3 layout", llama3Files(t), graph.Params{VocabSize: 16}, TokenizerOptions{}, llama3},
		{"qwen2 layout", qwen2Files(t), graph.Params{VocabSize: 14}, TokenizerOptions{}, qwen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTokenizer(tt.files, tt.p, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("tokenizer:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	// As a llama-arch checkpoint the qwen2 files' add_prefix_space is kept
	// (LlamaModel.set_vocab); for qwen2 it is not.
	got, err := ParseTokenizer(qwen2Files(t), graph.Params{VocabSize: 14}, TokenizerOptions{Arch: "llama"})
	if err != nil {
		t.Fatal(err)
	}
	if got.AddSpacePrefix == nil || *got.AddSpacePrefix {
		t.Errorf("llama arch: AddSpacePrefix = %v, want false", got.AddSpacePrefix)
	}
}

func TestParseTokenizerPreTokenizers(t *testing.T) {
	mk := func(pre any) map[string][]byte {
		return map[string][]byte{"tokenizer.json": jsonOf(t, map[string]any{
			"added_tokens":  []any{added(10, "<|endoftext|>", true)},
			"pre_tokenizer": pre,
			"model":         map[string]any{"type": "BPE", "vocab": tinyBPEVocab, "merges": []string{"h e"}},
		})}
	}
	tests := []struct {
		name    string
		pre     any
		opt     string
		want    string
		wantErr string
	}{
		{"gpt-2 plain ByteLevel", map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}, "", "gpt-2", ""},
		{"llama-bpe", splitPre(PreTokenizerRegexes["llama-bpe"][0]), "", "llama-bpe", ""},
		{"qwen2", splitPre(PreTokenizerRegexes["qwen2"][0]), "", "qwen2", ""},
		{"qwen35", splitPre(PreTokenizerRegexes["qwen35"][0]), "", "qwen35", ""},
		{"unknown regex", splitPre(`\p{L}+|\p{N}+`), "", "", "--tokenizer-pre"},
		{"unknown regex with override", splitPre(`\p{L}+|\p{N}+`), "smollm", "smollm", ""},
		{"no pre-tokenizer", nil, "", "", "not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTokenizer(mk(tt.pre), graph.Params{}, TokenizerOptions{Pre: tt.opt})
			if tt.wantErr != "" {
				var pe *UnknownPreTokenizerError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want *UnknownPreTokenizerError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Pre != tt.want {
				t.Errorf("pre = %q, want %q", got.Pre, tt.want)
			}
		})
	}
}

func TestParseTokenizerSentencePieceAddedTokens(t *testing.T) {
	sp := NewSPModel()
	sp.ModelType = SPBPE
	sp.Pieces = []SPPiece{{"<unk>", 0, SPUnknown}, {"<s>", 0, SPControl}, {"</s>", 0, SPControl},
		{"<0x41>", 0, SPByte}, {"▁a", -1, SPNormal}, {"<mask>", 0, SPUserDefined}, {"junk", 0, SPUnused}}
	files := map[string][]byte{
		"tokenizer.model":   sp.Marshal(),
		"added_tokens.json": []byte(`{"<extra>": 7, "<dup>": 8, "<over>": 8, "<far>": 99}`),
		"tokenizer_config.json": jsonOf(t, map[string]any{
			"add_bos_token": true, "add_eos_token": true, "bos_token": "<s>",
			"eos_token": map[string]any{"content": "</s>", "special": true}, "unk_token": "<unk>", "pad_token": "<pad>",
			"added_tokens_decoder": map[string]any{
				"9":  map[string]any{"content": "<|user|>", "special": false},
				"10": map[string]any{"content": "▁word", "special": false},
				"2":  map[string]any{"content": "</s>", "special": true},
				"50": map[string]any{"content": "<ignored>", "special": true},
			},
		}),
		"chat_template.jinja": []byte("{{ messages }}"),
	}
	got, err := ParseTokenizer(files, graph.Params{VocabSize: 12}, TokenizerOptions{Arch: "llama"})
	if err != nil {
		t.Fatal(err)
	}
	want := graph.NewTokenizer(graph.TokenizerSPM)
	want.Pre = "default"
	want.Tokens = []string{"<unk>", "<s>", "</s>", "<0x41>", "▁a", "<mask>", "junk", "<extra>", "<over>", "<|user|>", " word", "[PAD11]"}
	want.Scores = []float32{0, 0, -1000, 0, -1, 0, 0, -1000, -1000, -1000, -1000, -10000}
	want.Types = []int32{2, 3, 3, 6, 1, 1, 5, 4, 4, 3, 4, 5}
	want.BOS, want.EOS, want.UNK = 1, 2, 0
	want.AddBOS, want.AddEOS = true, true
	want.ChatTemplate = "{{ messages }}"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokenizer:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseTokenizerLlamaHF(t *testing.T) {
	// A Mistral/TinyLlama-style tokenizer.json: BPE with byte fallback and
	// a Sequence decoder, no tokenizer.model (LlamaHfVocab: scores -1000).
	files := map[string][]byte{
		"tokenizer.json": jsonOf(t, map[string]any{
			"added_tokens": []any{added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true), added(6, "[INST]", true)},
			"decoder":      map[string]any{"type": "Sequence", "decoders": []any{}},
			"post_processor": map[string]any{"type": "TemplateProcessing",
				"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}},
			"model": map[string]any{"type": "BPE", "byte_fallback": true, "ignore_merges": false,
				"vocab":  map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁": 4, "a": 5},
				"merges": []string{"▁ a"}},
		}),
		"tokenizer_config.json": jsonOf(t, map[string]any{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
	}
	got, err := ParseTokenizer(files, graph.Params{VocabSize: 7}, TokenizerOptions{Arch: "llama"})
	if err != nil {
		t.Fatal(err)
	}
	want := graph.NewTokenizer(graph.TokenizerSPM)
	want.Pre = "default"
	want.Tokens = []string{"<unk>", "<s>", "</s>", "<0x0A>", "▁", "a", "[INST]"}
	want.Scores = []float32{-1000, -1000, -1000, -1000, -1000, -1000, -1000}
	want.Types = []int32{3, 3, 3, 6, 1, 1, 4}
	want.BOS, want.EOS, want.UNK = 1, 2, 0
	want.AddBOS = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tokenizer:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseTokenizerErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		p     graph.Params
		want  string
	}{
		{"garbage tokenizer.model", map[string][]byte{"tokenizer.model": []byte("\x0a\xff\xff\xff\x0f")}, graph.Params{}, "tokenizer.model: byte offset 1: length"},
		{"malformed tokenizer.json", map[string][]byte{"tokenizer.json": []byte(`{"model": [}`)}, graph.Params{}, "tokenizer.json: byte offset 12: invalid JSON"},
		{"malformed tokenizer_config", map[string][]byte{"tokenizer.json": []byte(`{}`), "tokenizer_config.json": []byte(`{`)}, graph.Params{}, "tokenizer_config.json: byte offset 1"},
		{"unsupported model type", map[string][]byte{"tokenizer.json": []byte(`{"model":{"type":"WordPiece","vocab":{}}}`)}, graph.Params{}, `tokenizer model type "WordPiece" is not supported`},
		{"id beyond vocab_size", map[string][]byte{"tokenizer.json": jsonOf(t, map[string]any{"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 5}, "merges": []string{"a a"}}})}, graph.Params{VocabSize: 3}, "token id 5 is not below the vocabulary size 3"},
		{"negative id", map[string][]byte{"tokenizer.json": []byte(`{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`)}, graph.Params{}, `model.vocab "a" has id -1 out of range`},
		{"hostile added id", map[string][]byte{"tokenizer.json": []byte(`{"added_tokens":[{"id":99999999999,"content":"x"}],"model":{"type":"BPE","vocab":{},"merges":[]}}`)}, graph.Params{}, "out of range"},
		{"hostile vocab size", map[string][]byte{"tokenizer.model": {}}, graph.Params{VocabSize: 1 << 30}, "out of range"},
		{"bad merges", map[string][]byte{"tokenizer.json": []byte(`{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}`)}, graph.Params{}, "model.merges[0] has 1 entries"},
		{"no merges", map[string][]byte{"tokenizer.json": []byte(`{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`)}, graph.Params{}, "has no merges"},
		{"bad added_tokens.json", map[string][]byte{"tokenizer.model": func() []byte {
			m := NewSPModel()
			m.Pieces = []SPPiece{{"<unk>", 0, SPUnknown}}
			return m.Marshal()
		}(), "added_tokens.json": []byte(`{"x": "y"}`)}, graph.Params{}, `added_tokens.json: "x": not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokenizer(tt.files, tt.p, TokenizerOptions{Arch: "qwen2"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if tok, err := ParseTokenizer(map[string][]byte{"tokenizer_config.json": []byte(`{}`)}, graph.Params{}, TokenizerOptions{}); tok != nil || err != nil {
		t.Errorf("no tokenizer files: got %v, %v; want nil, nil", tok, err)
	}
	if _, err := ReadTokenizer(t.TempDir()+"/missing", graph.Params{}); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}

// TestTokenizerFilesRoundTrip writes the tokenizer of a real vocab-only GGUF
// (as llama.cpp's converter made it) as HF files and reads them back.
func TestTokenizerFilesRoundTrip(t *testing.T) {
	for _, name := range []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"} {
		t.Run(name, func(t *testing.T) {
			m, err := gguf.ReadModel(testref.Local(t, "real", "gguf", name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			want := m.Tokenizer
			files, err := WriteTokenizerFiles(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseTokenizer(files, graph.Params{VocabSize: len(want.Tokens)}, TokenizerOptions{Arch: "llama"})
			if err != nil {
				t.Fatal(err)
			}
			if want.Model == graph.TokenizerBPE {
				if !reflect.DeepEqual(got.PreRegex, []string{GPT2Regex}) {
					t.Errorf("PreRegex = %q", got.PreRegex)
				}
				got.PreRegex = nil // the GGUF has only the name
			}
			compareTokenizers(t, got, want)
		})
	}
}

func compareTokenizers(t *testing.T, got, want *graph.Tokenizer) {
	t.Helper()
	if len(got.Tokens) != len(want.Tokens) {
		t.Fatalf("%d tokens, want %d", len(got.Tokens), len(want.Tokens))
	}
	bad := 0
	for i := range want.Tokens {
		if got.Tokens[i] != want.Tokens[i] || (want.Scores != nil && got.Scores[i] != want.Scores[i]) || got.Types[i] != want.Types[i] {
			if bad++; bad <= 5 {
				var gs, ws float32
				if want.Scores != nil {
					gs, ws = got.Scores[i], want.Scores[i]
				}
				t.Errorf("token %d: got %q %v %d, want %q %v %d", i, got.Tokens[i], gs, got.Types[i], want.Tokens[i], ws, want.Types[i])
			}
		}
	}
	g, w := *got, *want
	g.Tokens, g.Scores, g.Types, w.Tokens, w.Scores, w.Types = nil, nil, nil, nil, nil, nil
	if (want.Scores == nil) != (got.Scores == nil) {
		t.Errorf("scores present: got %v, want %v", got.Scores != nil, want.Scores != nil)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("tokenizer fields:\n got %+v\nwant %+v", g, w)
	}
}
