package arch_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzModelKV feeds arbitrary README.md (model card front matter),
// generation_config.json and tokenizer_config.json bytes to ModelKV. An
// error names the model; the KVs it accepts are distinct and write as a
// GGUF file that reads back to the same keys.
func FuzzModelKV(f *testing.F) {
	gen, err := os.ReadFile(testref.Local(f, "unseen", "qwen2-bpe-tied", "generation_config.json"))
	if err != nil {
		f.Fatal(err)
	}
	tc, err := os.ReadFile(testref.Local(f, "unseen", "qwen2-bpe-tied", "tokenizer_config.json"))
	if err != nil {
		f.Fatal(err)
	}
	card := []byte("---\nlicense: apache-2.0\nlanguage:\n- en\n- no\nbase_model: Qwen/Qwen2.5-0.5B\ndatasets:\n- https://huggingface.co/datasets/org/data\ntags: [chat, text-generation]\nmodel_name: Tiny Qwen\n---\n# Tiny\n")
	f.Add(card, gen, tc)
	f.Add([]byte("---\r\nbase_model:\r\n\t- a/b\r\n- c\r\n---"), []byte(`{"top_k": 1e30, "temperature": "hot", "sequence": "x"}`), []byte(`{"bos_token": {"content": 1}}`))
	f.Add([]byte("---\na: &x [*x]\n---\n"), []byte(`[]`), []byte(`null`))
	f.Fuzz(func(t *testing.T, readme, genCfg, tokCfg []byte) {
		if len(readme)+len(genCfg)+len(tokCfg) > 1<<14 {
			return
		}
		cfg := map[string]any{}
		if err := json.Unmarshal([]byte(`{"_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct", "architectures": ["Qwen2ForCausalLM"],
			"hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 512, "num_attention_heads": 4,
			"num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
			"tie_word_embeddings": true, "vocab_size": 5}`), &cfg); err != nil {
			t.Fatal(err)
		}
		tok := graph.NewTokenizer(graph.TokenizerBPE)
		tok.Pre = "qwen2"
		tok.Tokens = []string{"!", "\"", "<|endoftext|>", "<|im_start|>", "<|im_end|>"}
		tok.Types = []int32{1, 1, 3, 3, 3}
		tok.Merges = []string{"Ġ Ġ"}
		tok.EOS, tok.PAD = 4, 2
		m := &graph.Model{
			Arch: "qwen2", Path: "/models/tiny", Config: cfg, Tokenizer: tok,
			Tensors: []*graph.Tensor{{Name: "token_embd.weight", Shape: []int64{5, 64}}},
			Files: map[string][]byte{
				"README.md":              readme,
				"generation_config.json": genCfg,
				"tokenizer_config.json":  tokCfg,
				"tokenizer.json":         []byte(`{"post_processor": {"type": "ByteLevel"}}`),
			},
		}
		kv, err := arch.ModelKV(m, 1)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf: /models/tiny: ") {
				t.Fatalf("error %q does not name the model", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range kv {
			if seen[p.Key] {
				t.Fatalf("key %q twice", p.Key)
			}
			seen[p.Key] = true
		}
		var buf bytes.Buffer
		if err := gguf.Write(&buf, kv, nil, nil); err != nil {
			t.Fatalf("KVs do not write: %v", err)
		}
		gf, err := gguf.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("written KVs do not read back: %v", err)
		}
		if len(gf.KV) != len(kv) {
			t.Fatalf("%d KVs read back, wrote %d", len(gf.KV), len(kv))
		}
		for i := range kv {
			if gf.KV[i].Key != kv[i].Key {
				t.Fatalf("KV %d: %q read back as %q", i, kv[i].Key, gf.KV[i].Key)
			}
		}
	})
}
