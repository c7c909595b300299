package hf

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		wantArch string
		want     graph.Params
	}{
		{
			name: "llama old style (transformers 4 tiny-random-llama-2)",
			json: `{"architectures":["LlamaForCausalLM"],"attention_bias":false,"hidden_size":16,"intermediate_size":64,
				"max_position_embeddings":256,"model_type":"llama","num_attention_heads":4,"num_hidden_layers":2,
				"num_key_value_heads":4,"rms_norm_eps":1e-05,"rope_scaling":null,"rope_theta":10000.0,
				"tie_word_embeddings":false,"torch_dtype":"bfloat16","vocab_size":3000}`,
			wantArch: "llama",
			want: graph.Params{Layers: 2, Embedding: 16, FFN: 64, Heads: 4, KVHeads: 4, HeadDim: 4,
				RopeBase: 10000, RopeType: "norm", RopeDims: 4, RMSEps: 1e-5, ContextLength: 256,
				VocabSize: 3000, TorchDType: "bfloat16"},
		},
		{
			name: "llama transformers 5 rope_parameters, GQA, explicit head_dim",
			json: `{"architectures":["LlamaForCausalLM"],"dtype":"bfloat16","head_dim":32,"hidden_size":256,
				"intermediate_size":768,"max_position_embeddings":512,"num_attention_heads":8,"num_hidden_layers":6,
				"num_key_value_heads":4,"rms_norm_eps":1e-05,"rope_parameters":{"rope_theta":10000.0,"rope_type":"default"},
				"tie_word_embeddings":false,"vocab_size":4096}`,
			wantArch: "llama",
			want: graph.Params{Layers: 6, Embedding: 256, FFN: 768, Heads: 8, KVHeads: 4, HeadDim: 32,
				RopeBase: 10000, RopeType: "norm", RopeDims: 32, RMSEps: 1e-5, ContextLength: 512,
				VocabSize: 4096, TorchDType: "bfloat16"},
		},
		{
			name: "llama 3.1 rope scaling (older rope_scaling with rope_type)",
			json: `{"architectures":["LlamaForCausalLM"],"hidden_size":2048,"intermediate_size":8192,
				"max_position_embeddings":131072,"num_attention_heads":32,"num_hidden_layers":16,"num_key_value_heads":8,
				"rms_norm_eps":1e-05,"rope_theta":500000.0,"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,
				"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
				"tie_word_embeddings":true,"vocab_size":128256,"attention_bias":false}`,
			wantArch: "llama",
			want: graph.Params{Layers: 16, Embedding: 2048, FFN: 8192, Heads: 32, KVHeads: 8, HeadDim: 64,
				RopeBase: 500000, RopeType: "norm", RopeDims: 64, RMSEps: 1e-5, ContextLength: 131072,
				VocabSize: 128256, Tied: true,
				RopeScaling: &graph.RopeScaling{Type: "llama3", Factor: 32, OriginalContext: 8192, LowFreqFactor: 1, HighFreqFactor: 4}},
		},
		{
			name: "llama3 scaling in rope_parameters takes the converter's defaults",
			json: `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
				"num_hidden_layers":1,"vocab_size":10,"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0}}`,
			wantArch: "llama",
			want: graph.Params{Layers: 1, Embedding: 64, FFN: 128, Heads: 4, KVHeads: 4, HeadDim: 16,
				RopeBase: 500000, RopeType: "norm", RopeDims: 16, RMSEps: 1e-6, ContextLength: 2048, VocabSize: 10,
				RopeScaling: &graph.RopeScaling{Type: "llama3", Factor: 8, OriginalContext: 8192, LowFreqFactor: 1, HighFreqFactor: 4}},
		},
		{
			name: "mistral-nemo head_dim differs from hidden/heads",
			json: `{"architectures":["MistralForCausalLM"],"head_dim":128,"hidden_size":5120,"intermediate_size":14336,
				"max_position_embeddings":1024000,"model_type":"mistral","num_attention_heads":32,"num_hidden_layers":40,
				"num_key_value_heads":8,"rms_norm_eps":1e-05,"rope_theta":1000000.0,"sliding_window":null,
				"tie_word_embeddings":false,"torch_dtype":"bfloat16","vocab_size":131072}`,
			wantArch: "llama",
			want: graph.Params{Layers: 40, Embedding: 5120, FFN: 14336, Heads: 32, KVHeads: 8, HeadDim: 128,
				RopeBase: 1e6, RopeType: "norm", RopeDims: 128, RMSEps: 1e-5, ContextLength: 1024000,
				VocabSize: 131072, TorchDType: "bfloat16"},
		},
		{
			name: "qwen2 tied embeddings, biases, neox, yarn",
			json: `{"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"intermediate_size":4864,
				"max_position_embeddings":32768,"model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,
				"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,
				"torch_dtype":"bfloat16","vocab_size":151936,
				"rope_scaling":{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}}`,
			wantArch: "qwen2",
			want: graph.Params{Layers: 24, Embedding: 896, FFN: 4864, Heads: 14, KVHeads: 2, HeadDim: 64,
				RopeBase: 1e6, RopeType: "neox", RopeDims: 64, RMSEps: 1e-6, ContextLength: 32768,
				VocabSize: 151936, Tied: true, AttnBias: true, TorchDType: "bfloat16",
				RopeScaling: &graph.RopeScaling{Type: "yarn", Factor: 4, OriginalContext: 32768}},
		},
		{
			name: "qwen2 defaults: no max_position_embeddings, partial rotary",
			json: `{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
				"num_hidden_layers":2,"vocab_size":100,"partial_rotary_factor":0.5}`,
			wantArch: "qwen2",
			want: graph.Params{Layers: 2, Embedding: 64, FFN: 128, Heads: 4, KVHeads: 4, HeadDim: 16,
				RopeBase: 10000, RopeType: "neox", RopeDims: 8, RMSEps: 1e-6, ContextLength: 32768,
				VocabSize: 100, AttnBias: true},
		},
		{
			name: "llama linear scaling via legacy type key",
			json: `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
				"num_hidden_layers":1,"vocab_size":10,"attention_bias":true,"rope_scaling":{"type":"linear","factor":2.0}}`,
			wantArch: "llama",
			want: graph.Params{Layers: 1, Embedding: 64, FFN: 128, Heads: 4, KVHeads: 4, HeadDim: 16,
				RopeBase: 10000, RopeType: "norm", RopeDims: 16, RMSEps: 1e-6, ContextLength: 2048, VocabSize: 10,
				AttnBias: true, RopeScaling: &graph.RopeScaling{Type: "linear", Factor: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arch, p, raw, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if arch != tt.wantArch {
				t.Errorf("arch = %q, want %q", arch, tt.wantArch)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Errorf("params:\n got %+v %+v\nwant %+v %+v", p, p.RopeScaling, tt.want, tt.want.RopeScaling)
			}
			if raw == nil || raw["hidden_size"] == nil {
				t.Errorf("raw config not returned: %v", raw)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := func(repl map[string]string) string {
		kv := map[string]string{
			"architectures": `["LlamaForCausalLM"]`, "hidden_size": "64", "intermediate_size": "128",
			"num_attention_heads": "4", "num_hidden_layers": "2", "vocab_size": "10",
		}
		for k, v := range repl {
			kv[k] = v
		}
		var parts []string
		for _, k := range sortedKeys(kv) {
			if kv[k] != "" {
				parts = append(parts, `"`+k+`":`+kv[k])
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name string
		json string
		want string // substring of the error
	}{
		{"unsupported arch lists supported", base(map[string]string{"architectures": `["GPT2LMHeadModel"]`}), `unsupported architecture "GPT2LMHeadModel" (supported: `},
		{"malformed JSON names the file and offset", `{"hidden_size": 64,,}`, "config.json: byte offset 20: invalid JSON"},
		{"not an object", `[1,2]`, "config.json: byte offset"},
		{"null document", `null`, "config.json: not a JSON object"},
		{"missing layers", base(map[string]string{"num_hidden_layers": ""}), `config.json: key "num_hidden_layers": missing`},
		{"missing hidden", base(map[string]string{"hidden_size": ""}), `key "hidden_size": missing`},
		{"missing vocab", base(map[string]string{"vocab_size": ""}), `key "vocab_size": missing`},
		{"no architecture at all", base(map[string]string{"architectures": ""}), "neither architectures nor model_type"},
		{"zero heads", base(map[string]string{"num_attention_heads": "0"}), `key "num_attention_heads": 0 is out of range`},
		// testdata/fuzz/FuzzParseConfig/ba8b27d4115a29df: a factor of 0 was accepted and written back as
		// "absent", which reads as llama3's default 8; transformers and the converter divide by it.
		{"rope factor 0", base(map[string]string{"rope_scaling": `{"factor": 0, "rope_type": "llama3"}`}), `key "rope_scaling": factor 0 is not valid`},
		{"rope factor negative", base(map[string]string{"rope_scaling": `{"factor": -2, "rope_type": "linear"}`}), `key "rope_scaling": factor -2 is not valid`},
		{"llama3 low_freq_factor 0", base(map[string]string{"rope_scaling": `{"factor": 8, "low_freq_factor": 0, "rope_type": "llama3"}`}), "low_freq_factor 0 and high_freq_factor 4 must be positive"},
		{"negative ffn", base(map[string]string{"intermediate_size": "-5"}), `key "intermediate_size": -5 is out of range`},
		{"huge layers", base(map[string]string{"num_hidden_layers": "1e300"}), `key "num_hidden_layers": 1e+300 is out of range`},
		{"fractional size", base(map[string]string{"hidden_size": "64.5"}), `64.5 is not an integer`},
		{"string size", base(map[string]string{"hidden_size": `"64"`}), `key "hidden_size": is a string, not a number`},
		{"kv heads do not divide", base(map[string]string{"num_key_value_heads": "3"}), `3 does not divide num_attention_heads 4`},
		{"hidden not multiple of heads", base(map[string]string{"hidden_size": "66"}), `66 is not a multiple of num_attention_heads 4`},
		{"negative head_dim", base(map[string]string{"head_dim": "-1"}), `key "head_dim": -1 is out of range`},
		{"zero eps", base(map[string]string{"rms_norm_eps": "0"}), `key "rms_norm_eps": must be a positive number`},
		{"negative theta", base(map[string]string{"rope_theta": "-1"}), `key "rope_theta": must be a positive number`},
		{"bad rope_scaling", base(map[string]string{"rope_scaling": `"linear"`}), `key "rope_scaling": is a string, not an object`},
		{"tie not bool", base(map[string]string{"tie_word_embeddings": `"yes"`}), `key "tie_word_embeddings": is a string, not a boolean`},
		{"architectures not a list", base(map[string]string{"architectures": `"LlamaForCausalLM"`}), `key "architectures": is a string, not a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := ParseConfig([]byte(tt.json))
			if err == nil {
				t.Fatalf("no error for %s", tt.json)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	_, _, _, err := ParseConfig([]byte(base(map[string]string{"architectures": `["FalconForCausalLM"]`})))
	var ue *arch.UnsupportedError
	if !errors.As(err, &ue) || ue.Arch != "FalconForCausalLM" {
		t.Errorf("unsupported arch error is %T %v, want *arch.UnsupportedError", err, err)
	}
}

func TestReadConfigFileNamesPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"a":`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := ReadConfigFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": byte offset 5: invalid JSON") {
		t.Errorf("error = %v, want it to start with the path and offset", err)
	}
}

func TestConfigRealFiles(t *testing.T) {
	arch, p, _, err := ReadConfigFile(testref.Local(t, "kjv-llama", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := graph.Params{Layers: 6, Embedding: 256, FFN: 768, Heads: 8, KVHeads: 4, HeadDim: 32, RopeBase: 10000,
		RopeType: "norm", RopeDims: 32, RMSEps: 1e-5, ContextLength: 512, VocabSize: 4096, TorchDType: "bfloat16"}
	if arch != "llama" || !reflect.DeepEqual(p, want) {
		t.Errorf("kjv-llama: %q %+v, want llama %+v", arch, p, want)
	}
	arch, p, _, err = ReadConfigFile(testref.Local(t, "real", "safetensors", "tiny-random-llama-2", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want = graph.Params{Layers: 2, Embedding: 16, FFN: 64, Heads: 4, KVHeads: 4, HeadDim: 4, RopeBase: 10000,
		RopeType: "norm", RopeDims: 4, RMSEps: 1e-5, ContextLength: 256, VocabSize: 3000, TorchDType: "bfloat16"}
	if arch != "llama" || !reflect.DeepEqual(p, want) {
		t.Errorf("tiny-random-llama-2: %q %+v, want llama %+v", arch, p, want)
	}
}

func TestWriteConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		arch string
		p    graph.Params
		cfg  map[string]any
	}{
		{"llama from GGUF (float32 eps)", "llama", graph.Params{Layers: 6, Embedding: 256, FFN: 768, Heads: 8, KVHeads: 4, HeadDim: 32,
			RopeBase: 10000, RopeType: "norm", RopeDims: 32, RMSEps: float64(float32(1e-5)), ContextLength: 512, VocabSize: 4096}, nil},
		{"qwen2 tied yarn", "qwen2", graph.Params{Layers: 24, Embedding: 896, FFN: 4864, Heads: 14, KVHeads: 2, HeadDim: 64,
			RopeBase: 1e6, RopeType: "neox", RopeDims: 64, RMSEps: 1e-6, ContextLength: 32768, VocabSize: 151936, Tied: true, AttnBias: true,
			RopeScaling: &graph.RopeScaling{Type: "yarn", Factor: 4, OriginalContext: 32768}}, nil},
		{"llama3 scaling kept in rope_parameters", "llama", graph.Params{Layers: 16, Embedding: 2048, FFN: 8192, Heads: 32, KVHeads: 8, HeadDim: 64,
			RopeBase: 500000, RopeType: "norm", RopeDims: 64, RMSEps: 1e-5, ContextLength: 131072, VocabSize: 128256, Tied: true,
			RopeScaling: &graph.RopeScaling{Type: "llama3", Factor: 32, OriginalContext: 8192, LowFreqFactor: 1, HighFreqFactor: 4}},
			map[string]any{"rope_parameters": map[string]any{"rope_type": "default", "rope_theta": 1.0}, "custom_key": "kept"}},
		{"mistral-nemo head_dim", "llama", graph.Params{Layers: 40, Embedding: 5120, FFN: 14336, Heads: 32, KVHeads: 8, HeadDim: 128,
			RopeBase: 1e6, RopeType: "norm", RopeDims: 128, RMSEps: 1e-5, ContextLength: 1024000, VocabSize: 131072, TorchDType: "bfloat16"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &graph.Model{Arch: tt.arch, Params: tt.p, Config: tt.cfg}
			b, err := WriteConfig(m)
			if err != nil {
				t.Fatal(err)
			}
			arch, p, raw, err := ParseConfig(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			want := tt.p
			// eps is written with the float32's shortest digits (1e-05)
			want.RMSEps, _ = strconv.ParseFloat(string(shortFloat(want.RMSEps)), 64)
			if arch != tt.arch || !reflect.DeepEqual(p, want) {
				t.Errorf("round trip:\n got %s %+v %+v\nwant %s %+v %+v\n%s", arch, p, p.RopeScaling, tt.arch, want, want.RopeScaling, b)
			}
			if tt.cfg != nil && raw["custom_key"] != "kept" {
				t.Errorf("custom key lost: %s", b)
			}
			if tt.name == "llama from GGUF (float32 eps)" && !strings.Contains(string(b), `"rms_norm_eps": 1e-05`) {
				t.Errorf("eps not written as 1e-05:\n%s", b)
			}
		})
	}
	if _, err := WriteConfig(&graph.Model{Arch: "gpt2", Params: graph.Params{Layers: 1}}); err == nil {
		t.Error("WriteConfig accepted an unsupported arch")
	}
}

func TestWriteConfigTokenIDs(t *testing.T) {
	tok := graph.NewTokenizer(graph.TokenizerSPM)
	tok.BOS, tok.EOS = 1, 2
	m := &graph.Model{Arch: "llama", Params: graph.Params{Layers: 1, Embedding: 8, FFN: 16, Heads: 2, VocabSize: 10}, Tokenizer: tok,
		Config: map[string]any{"eos_token_id": []any{2.0, 7.0}}}
	b, err := WriteConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["bos_token_id"] != 1.0 || !reflect.DeepEqual(got["eos_token_id"], []any{2.0, 7.0}) || got["pad_token_id"] != nil {
		t.Errorf("token ids: bos %v eos %v pad %v", got["bos_token_id"], got["eos_token_id"], got["pad_token_id"])
	}
}
