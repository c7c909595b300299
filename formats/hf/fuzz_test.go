package hf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// fuzzMax bounds the fuzz inputs: the readers cap real files far above
// this, and small inputs keep the executions fast.
const fuzzMax = 1 << 16

// FuzzParseConfig: any config.json either fails with a *ConfigError or
// *arch.UnsupportedError whose message names config.json, or gives
// consistent hyperparameters that WriteConfig writes and ParseConfig reads
// back to the same architecture and hyperparameters.
func FuzzParseConfig(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(testref.Local(f, "unseen"), "*", ConfigName))
	seeds = append(seeds,
		testref.Local(f, "kjv-llama", ConfigName),
		testref.Local(f, "real", "safetensors", "tiny-random-llama-2", ConfigName))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"architectures":["Qwen2ForCausalLM"],"num_hidden_layers":2,"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"rope_scaling":{"type":"yarn","factor":4,"original_max_position_embeddings":32768}}`,
		`{"model_type":"llama","text_config":{"num_hidden_layers":1,"hidden_size":8,"intermediate_size":8,"num_attention_heads":2,"vocab_size":10,"head_dim":null},"rope_parameters":{"full_attention":{"rope_type":"llama3","rope_theta":5e5}}}`,
		`{"architectures":["LlamaForCausalLM"],"num_hidden_layers":1e9,"hidden_size":-1}`,
		`[1,2]`, `null`, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMax {
			return
		}
		archName, p, raw, err := ParseConfig(data)
		if err != nil {
			var ce *ConfigError
			var ue *arch.UnsupportedError
			if !errors.As(err, &ce) && !errors.As(err, &ue) {
				t.Fatalf("error %v is %T, want *ConfigError or *arch.UnsupportedError", err, err)
			}
			if ce != nil && !strings.HasPrefix(err.Error(), ConfigName+": ") {
				t.Fatalf("error %q does not name %s", err, ConfigName)
			}
			return
		}
		if raw == nil {
			t.Fatal("no raw config")
		}
		for _, v := range []int{p.Layers, p.Embedding, p.FFN, p.Heads, p.KVHeads, p.HeadDim, p.VocabSize, p.ContextLength} {
			if v <= 0 || v > arch.MaxDim {
				t.Fatalf("hyperparameter %d out of range: %+v", v, p)
			}
		}
		if p.Heads%p.KVHeads != 0 || !(p.RMSEps > 0) || p.RopeDims < 0 || p.RopeDims > p.HeadDim {
			t.Fatalf("inconsistent hyperparameters %+v", p)
		}
		out, err := WriteConfig(&graph.Model{Arch: archName, Params: p, Config: raw})
		if err != nil {
			t.Fatalf("accepted config does not write: %v", err)
		}
		arch2, p2, _, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, out)
		}
		if arch2 != archName || !reflect.DeepEqual(p2, p) {
			t.Fatalf("round trip:\n got %s %+v %+v\nwant %s %+v %+v\n%s", arch2, p2, p2.RopeScaling, archName, p, p.RopeScaling, out)
		}
	})
}

// shrinkTokenizerJSON cuts a real tokenizer.json to the tokens with ids
// below n and the merges of those tokens, so the fuzzer mutates a small
// file with the real structure.
func shrinkTokenizerJSON(tb testing.TB, b []byte, n int) []byte {
	tb.Helper()
	var tj map[string]any
	if err := json.Unmarshal(b, &tj); err != nil {
		tb.Fatal(err)
	}
	model := tj["model"].(map[string]any)
	vocab := model["vocab"].(map[string]any)
	for k, v := range vocab {
		if v.(float64) >= float64(n) {
			delete(vocab, k)
		}
	}
	var merges []any
	for _, m := range model["merges"].([]any) {
		var a, b string
		switch m := m.(type) {
		case string:
			a, b, _ = strings.Cut(m, " ")
		case []any:
			a, b = m[0].(string), m[1].(string)
		}
		if _, ok := vocab[a+b]; ok {
			merges = append(merges, m)
		}
	}
	model["merges"] = merges
	var at []any
	for i, a := range tj["added_tokens"].([]any) {
		if i < 4 {
			a.(map[string]any)["id"] = float64(n + i)
			at = append(at, a)
		}
	}
	tj["added_tokens"] = at
	out, err := json.Marshal(tj)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// FuzzParseTokenizer feeds arbitrary tokenizer.json and
// tokenizer_config.json bytes to ParseTokenizer. An error names the file
// it is about; an accepted tokenizer has one type per token, special ids in
// range, and when WriteTokenizerFiles writes it, ParseTokenizer reads the
// written files back to the same tokens and types.
func FuzzParseTokenizer(f *testing.F) {
	for _, dir := range []string{"llama3-bpe-tied", "qwen2-bpe-tied"} {
		tj, err := os.ReadFile(testref.Local(f, "unseen", dir, "tokenizer.json"))
		if err != nil {
			f.Fatal(err)
		}
		tc, err := os.ReadFile(testref.Local(f, "unseen", dir, "tokenizer_config.json"))
		if err != nil {
			f.Fatal(err)
		}
		small := shrinkTokenizerJSON(f, tj, 64)
		f.Add(small, tc, dir == "llama3-bpe-tied")
		f.Add(small, []byte(nil), false)
	}
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]],"byte_fallback":true},"decoder":{"type":"Sequence"},"added_tokens":[{"id":3,"content":"<s>","special":true}]}`),
		[]byte(`{"bos_token":"<s>","add_bos_token":true,"added_tokens_decoder":{"3":{"content":"<s>","special":true}}}`), true)
	f.Add([]byte(`{"model":{"vocab":{"a":0},"merges":["a a"]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\s+"}}}`), []byte(nil), false)
	f.Fuzz(func(t *testing.T, tokJSON, tokCfg []byte, llama bool) {
		if len(tokJSON)+len(tokCfg) > fuzzMax {
			return
		}
		files := map[string][]byte{"tokenizer.json": tokJSON}
		if tokCfg != nil {
			files["tokenizer_config.json"] = tokCfg
		}
		opt := TokenizerOptions{Arch: "qwen2"}
		if llama {
			opt.Arch = "llama"
		}
		tok, err := ParseTokenizer(files, graph.Params{}, opt)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokenizer.json: ") && !strings.HasPrefix(err.Error(), "tokenizer_config.json: ") {
				t.Fatalf("error %q does not name its file", err)
			}
			return
		}
		if tok == nil {
			t.Fatal("nil tokenizer with a tokenizer.json")
		}
		checkTokenizer(t, tok)
		out, err := WriteTokenizerFiles(tok)
		if err != nil {
			return // e.g. a token that is not valid UTF-8
		}
		tok2, err := ParseTokenizer(out, graph.Params{VocabSize: len(tok.Tokens)}, opt)
		if err != nil {
			t.Fatalf("written tokenizer does not parse: %v", err)
		}
		checkTokenizer(t, tok2)
		if !reflect.DeepEqual(tok2.Tokens, tok.Tokens) || !reflect.DeepEqual(tok2.Types, tok.Types) {
			t.Fatalf("round trip changed the vocabulary:\n got %q %v\nwant %q %v", tok2.Tokens, tok2.Types, tok.Tokens, tok.Types)
		}
	})
}

func checkTokenizer(t *testing.T, tok *graph.Tokenizer) {
	t.Helper()
	n := len(tok.Tokens)
	if n > maxVocab || len(tok.Types) != n || (tok.Scores != nil && len(tok.Scores) != n) {
		t.Fatalf("%d tokens, %d types, %d scores", n, len(tok.Types), len(tok.Scores))
	}
	for _, id := range []int{tok.BOS, tok.EOS, tok.UNK, tok.PAD, tok.EOT, tok.EOM, tok.SEP, tok.CLS, tok.MASK} {
		if id < -1 || id >= n {
			t.Fatalf("special id %d outside the %d-token vocabulary", id, n)
		}
	}
}
