package arch_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// compareKV reports every difference in keys, order, types and values.
func compareKV(t *testing.T, got, want []graph.KV) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			t.Errorf("KV %d: missing %q (%s)", i, want[i].Key, kvTypeName(want[i].Value))
		case i >= len(want):
			t.Errorf("KV %d: extra %q (%s) = %v", i, got[i].Key, kvTypeName(got[i].Value), got[i].Value)
		case got[i].Key != want[i].Key || kvTypeName(got[i].Value) != kvTypeName(want[i].Value):
			t.Errorf("KV %d: got %q (%s), want %q (%s)", i, got[i].Key, kvTypeName(got[i].Value), want[i].Key, kvTypeName(want[i].Value))
		case !reflect.DeepEqual(got[i].Value, want[i].Value):
			t.Errorf("KV %d %q: got %s, want %s", i, got[i].Key, short(got[i].Value), short(want[i].Value))
		}
	}
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// kvDigest is a compact golden form of a KV: arrays by length and sha256
// of their encoding.
type kvDigest struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

func digestKV(kv []graph.KV) []kvDigest {
	out := make([]kvDigest, len(kv))
	for i, p := range kv {
		d := kvDigest{Key: p.Key, Type: kvTypeName(p.Value)}
		if b, ok := gguf.EncodeArray(p.Value); ok {
			sum := sha256.Sum256(b)
			d.Value = fmt.Sprintf("len %d sha256 %s", reflect.ValueOf(p.Value).Len(), hex.EncodeToString(sum[:]))
		} else {
			d.Value = fmt.Sprintf("%v", p.Value)
		}
		out[i] = d
	}
	return out
}

// TestModelKVGolden checks ModelKV of the repository's kjv-llama HF
// checkpoint against testdata/gguf/kjv-llama.bf16.kv.json, the KVs of
// llama.cpp's kjv-llama.bf16.gguf in digest form (arrays as length and
// sha256; TestModelKVMatchesConverter compares against the GGUF itself
// under -tags refdata).
func TestModelKVGolden(t *testing.T) {
	m, err := hf.ReadDir(testref.Local(t, "kjv-llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	kv, err := arch.ModelKV(m, 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testref.Local(t, "gguf", "kjv-llama.bf16.kv.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []kvDigest
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	got := digestKV(kv)
	if !reflect.DeepEqual(got, want) {
		for i := 0; i < len(got) || i < len(want); i++ {
			var g, w kvDigest
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("KV %d: got %+v\n           want %+v", i, g, w)
			}
		}
	}
}

// A Qwen2.5-style checkpoint: no {arch}.vocab_size or rope.dimension_count
// (Qwen2Model keeps TextModel's keys), a gpt2 tokenizer with pre and
// merges, sampling defaults from generation_config.json, flags from
// tokenizer_config.json only (a ByteLevel post-processor adds none), the
// name from _name_or_path.
func TestModelKVQwen2(t *testing.T) {
	cfg := map[string]any{}
	if err := json.Unmarshal([]byte(`{"_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct", "architectures": ["Qwen2ForCausalLM"],
		"hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768, "num_attention_heads": 14,
		"num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
		"rope_scaling": null, "tie_word_embeddings": true, "vocab_size": 151936}`), &cfg); err != nil {
		t.Fatal(err)
	}
	tok := graph.NewTokenizer(graph.TokenizerBPE)
	tok.Pre = "qwen2"
	tok.Tokens = []string{"!", "\"", "<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	tok.Types = []int32{1, 1, 3, 3, 3}
	tok.Merges = []string{"Ġ Ġ", "ĠĠ ĠĠ"}
	tok.EOS, tok.PAD, tok.BOS = 4, 2, 2
	tok.ChatTemplate = "{% for m in messages %}{{ m.content }}{% endfor %}"
	m := &graph.Model{
		Arch: "qwen2", Path: "/models/whatever", Config: cfg, Tokenizer: tok,
		Tensors: []*graph.Tensor{{Name: "token_embd.weight", Shape: []int64{151936, 3251}}}, // ~494M parameters,
		Files: map[string][]byte{
			"tokenizer.json":         []byte(`{"post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}}`),
			"tokenizer_config.json":  []byte(`{"add_bos_token": false, "add_prefix_space": false, "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}`),
			"generation_config.json": []byte(`{"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20}`),
		},
	}
	kv, err := arch.ModelKV(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []graph.KV{
		{Key: "general.architecture", Value: "qwen2"},
		{Key: "general.type", Value: "model"},
		{Key: "general.sampling.top_k", Value: int32(20)},
		{Key: "general.sampling.top_p", Value: float32(0.8)},
		{Key: "general.sampling.temp", Value: float32(0.7)},
		{Key: "general.name", Value: "Qwen2.5 0.5B Instruct"},
		{Key: "general.organization", Value: "Qwen"},
		{Key: "general.finetune", Value: "Instruct"},
		{Key: "general.basename", Value: "Qwen2.5"},
		{Key: "general.size_label", Value: "0.5B"},
		{Key: "qwen2.block_count", Value: uint32(24)},
		{Key: "qwen2.context_length", Value: uint32(32768)},
		{Key: "qwen2.embedding_length", Value: uint32(896)},
		{Key: "qwen2.feed_forward_length", Value: uint32(4864)},
		{Key: "qwen2.attention.head_count", Value: uint32(14)},
		{Key: "qwen2.attention.head_count_kv", Value: uint32(2)},
		{Key: "qwen2.rope.freq_base", Value: float32(1e6)},
		{Key: "qwen2.attention.layer_norm_rms_epsilon", Value: float32(1e-6)},
		{Key: "general.file_type", Value: uint32(1)},
		{Key: "general.quantization_version", Value: uint32(2)},
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.pre", Value: "qwen2"},
		{Key: "tokenizer.ggml.tokens", Value: tok.Tokens},
		{Key: "tokenizer.ggml.token_type", Value: tok.Types},
		{Key: "tokenizer.ggml.merges", Value: tok.Merges},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(4)},
		{Key: "tokenizer.ggml.padding_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.add_bos_token", Value: false},
		{Key: "tokenizer.chat_template", Value: tok.ChatTemplate},
	}
	compareKV(t, kv, want)
}

// kvTypeName is the GGUF type name of a KV value.
func kvTypeName(v any) string { return gguf.ValueTypeName(v) }
