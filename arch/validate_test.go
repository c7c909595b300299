package arch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// hfWithConfig copies an HF checkpoint directory into a temporary one with
// config.json edited by replacing old with new.
func hfWithConfig(t *testing.T, src, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "config.json" {
			s := string(b)
			if !strings.Contains(s, old) {
				t.Fatalf("config.json has no %q", old)
			}
			b = []byte(strings.Replace(s, old, new, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ggufWithKV rewrites a GGUF file with one KV's value replaced.
func ggufWithKV(t *testing.T, src, key string, v any) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := append([]graph.KV(nil), f.KV...)
	found := false
	for i := range kv {
		if kv[i].Key == key {
			kv[i].Value, found = v, true
		}
	}
	if !found {
		t.Fatalf("%s has no key %s", src, key)
	}
	out := filepath.Join(t.TempDir(), "edited.gguf")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := gguf.Write(w, kv, f.Tensors, func(i int) (graph.Source, error) { return f.TensorReader(i), nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestValidate: models whose metadata and tensors disagree are refused
// with the reason; consistent real models pass.
func TestValidate(t *testing.T) {
	kjv := testref.Local(t, "kjv-llama")
	llama3 := testref.Local(t, "unseen", "llama3-bpe-tied.bf16.gguf")
	tests := []struct {
		name string
		path string
		want string // "" for no error
	}{
		{"kjv HF", kjv, ""},
		{"qwen2 HF padded vocab", testref.Local(t, "unseen", "qwen2-bpe-tied"), ""},
		{"llama3 GGUF", llama3, ""},
		{"HF vocab_size below the embedding", hfWithConfig(t, kjv, `"vocab_size": 4096`, `"vocab_size": 100`), "config.json vocab_size 100 gives 100 tokens but token_embd.weight has 4096 rows"},
		{"HF vocab_size above the embedding", hfWithConfig(t, kjv, `"vocab_size": 4096`, `"vocab_size": 8192`), "config.json vocab_size 8192 gives 8192 tokens but token_embd.weight has 4096 rows"},
		{"HF more layers than tensors", hfWithConfig(t, kjv, `"num_hidden_layers": 6`, `"num_hidden_layers": 7`), "config.json gives 7 layers but the model has no tensors for layer 6"},
		{"HF fewer layers than tensors", hfWithConfig(t, kjv, `"num_hidden_layers": 6`, `"num_hidden_layers": 5`), "config.json gives 5 layers but tensors of layer 5 exist"},
		{"HF head_dim against shapes", hfWithConfig(t, kjv, `"head_dim": 32`, `"head_dim": 16`), "blk.0.attn_k.weight has shape [128 256] but 8 heads, 4 key/value heads of dimension 16 and width 256 need [64 256]"},
		{"GGUF block_count 1000000", ggufWithKV(t, llama3, "llama.block_count", uint32(1000000)), "metadata gives 1000000 layers but the model has no tensors for layer 4"},
		{"GGUF head_count 0", ggufWithKV(t, llama3, "llama.attention.head_count", uint32(0)), "metadata gives 0 attention heads"},
		{"GGUF head_count_kv 3", ggufWithKV(t, llama3, "llama.attention.head_count_kv", uint32(3)), "metadata gives 3 key/value heads, which does not divide the 4 attention heads"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := formats.Open(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			_, err = arch.Validate(m)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("no error, want %q", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), tc.path+": ")):
				t.Errorf("error %q, want %q after the path", err, tc.want)
			}
		})
	}
}

// A config that ties the embeddings over a checkpoint holding lm_head gets
// a warning saying which one is used.
func TestValidateTiedWithLMHead(t *testing.T) {
	dir := hfWithConfig(t, testref.Local(t, "kjv-llama"), `"tie_word_embeddings": false`, `"tie_word_embeddings": true`)
	m, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	warns, err := arch.Validate(m)
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0], "uses lm_head.weight") {
		t.Errorf("warnings %q, error %v", warns, err)
	}
}
