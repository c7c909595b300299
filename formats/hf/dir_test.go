package hf

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestReadDirKJV(t *testing.T) {
	m, err := ReadDir(testref.Local(t, "kjv-llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Format != graph.FormatHF || m.Arch != "llama" || m.Params.Layers != 6 || m.Params.Tied {
		t.Errorf("model: format %q arch %q params %+v", m.Format, m.Arch, m.Params)
	}
	if len(m.Tensors) != 57 {
		t.Errorf("%d tensors, want 57", len(m.Tensors))
	}
	for _, c := range []struct {
		name  string
		shape []int64
	}{
		{"token_embd.weight", []int64{4096, 256}},
		{"output.weight", []int64{4096, 256}},
		{"output_norm.weight", []int64{256}},
		{"blk.0.attn_q.weight", []int64{256, 256}},
		{"blk.5.attn_k.weight", []int64{128, 256}},
		{"blk.3.ffn_down.weight", []int64{256, 768}},
	} {
		tt := m.Tensor(c.name)
		if tt == nil {
			t.Errorf("no tensor %s", c.name)
			continue
		}
		if !reflect.DeepEqual(tt.Shape, c.shape) || tt.Type != graph.BF16 || tt.Data.Size() != tt.Bytes() {
			t.Errorf("%s: shape %v type %v size %d", c.name, tt.Shape, tt.Type, tt.Data.Size())
		}
	}
	var files []string
	for k := range m.Files {
		files = append(files, k)
	}
	sort.Strings(files)
	if want := []string{"generation_config.json", "tokenizer.model", "tokenizer_config.json"}; !reflect.DeepEqual(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	if m.Config["transformers_version"] != "5.17.0" {
		t.Errorf("raw config transformers_version = %v", m.Config["transformers_version"])
	}
	if v, _ := m.Meta("format"); v != "pt" {
		t.Errorf("safetensors metadata format = %v", v)
	}
	if m.Tokenizer == nil || len(m.Tokenizer.Tokens) != 4096 || m.Tokenizer.BOS != 1 {
		t.Errorf("tokenizer %+v", m.Tokenizer)
	}
}

func sourceSum(t *testing.T, s graph.Source) [32]byte {
	b, err := graph.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestWriteDirRoundTrip writes kjv-llama back out (sharded) and reads it
// again: same tensors, bytes, params and tokenizer.
func TestWriteDirRoundTrip(t *testing.T) {
	src, err := ReadDir(testref.Local(t, "kjv-llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, tc := range []struct {
		name   string
		shard  int64
		shards int
		files  bool // keep the original tokenizer files
	}{
		{"single file, original tokenizer files", 0, 1, true},
		{"4MB shards, regenerated tokenizer", 4 << 20, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			m := *src
			if !tc.files {
				m.Files = map[string][]byte{"README.md": []byte("# card\n")}
			}
			if err := WriteDir(out, &m, WriteOptions{MaxShardSize: tc.shard}); err != nil {
				t.Fatal(err)
			}
			got, err := ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if !reflect.DeepEqual(got.Params, src.Params) || got.Arch != src.Arch {
				t.Errorf("params %+v, want %+v", got.Params, src.Params)
			}
			compareTokenizers(t, got.Tokenizer, src.Tokenizer)
			if len(got.Tensors) != len(src.Tensors) {
				t.Fatalf("%d tensors, want %d", len(got.Tensors), len(src.Tensors))
			}
			for _, st := range src.Tensors {
				gt := got.Tensor(st.Name)
				if gt == nil || gt.Type != st.Type || !reflect.DeepEqual(gt.Shape, st.Shape) || sourceSum(t, gt.Data) != sourceSum(t, st.Data) {
					t.Errorf("tensor %s differs after the round trip", st.Name)
				}
			}
			ents, _ := os.ReadDir(out)
			nShards := 0
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".safetensors") {
					nShards++
				}
			}
			if nShards != tc.shards {
				t.Errorf("%d shard files, want %d", nShards, tc.shards)
			}
			if tc.shards > 1 {
				idx, err := safetensors.ReadIndex(filepath.Join(out, safetensors.IndexName))
				if err != nil || idx.WeightMap["model.embed_tokens.weight"] != "model-00001-of-00004.safetensors" {
					t.Errorf("index: %v %v", idx, err)
				}
			}
			if !tc.files {
				if _, err := os.Stat(filepath.Join(out, "README.md")); err != nil {
					t.Error("README.md not carried over")
				}
			}
			// no temporary directories are left beside the output
			sib, _ := os.ReadDir(filepath.Dir(out))
			if len(sib) != 1 {
				t.Errorf("parent holds %d entries, want 1", len(sib))
			}
		})
	}
}

// TestWriteDirByteIdentical rewrites the real save_pretrained checkpoint
// tiny-random-llama-2 and gets the same model.safetensors bytes.
func TestWriteDirByteIdentical(t *testing.T) {
	dir := testref.Local(t, "real", "safetensors", "tiny-random-llama-2")
	m, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Tokenizer != nil || len(m.Tensors) != 21 {
		t.Fatalf("tokenizer %v, %d tensors", m.Tokenizer, len(m.Tensors))
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := WriteDir(out, m, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("model.safetensors differs from the save_pretrained original (%d vs %d bytes)", len(got), len(want))
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["_name_or_path"] != "meta-llama/Llama-2-7b-hf" || cfg["tie_word_embeddings"] != false || cfg["rope_theta"] != 10000.0 {
		t.Errorf("config.json lost keys: %s", b)
	}
}

func TestWriteDirFromGGUFStyleModel(t *testing.T) {
	// A model as it comes out of GGUF: tied (no output.weight), a
	// rope_freqs tensor, a tokenizer but no HF files.
	f32 := func(shape ...int64) *graph.Tensor {
		n := int64(4)
		for _, d := range shape {
			n *= d
		}
		return &graph.Tensor{Shape: shape, Type: graph.F32, Data: bytes.NewReader(make([]byte, n))}
	}
	tok := graph.NewTokenizer(graph.TokenizerSPM)
	tok.Pre = "default"
	tok.Tokens = []string{"<unk>", "<s>", "</s>", "▁a"}
	tok.Scores = []float32{0, 0, 0, -1}
	tok.Types = []int32{2, 3, 3, 1}
	tok.BOS, tok.EOS, tok.UNK, tok.AddBOS = 1, 2, 0, true
	m := &graph.Model{Format: graph.FormatGGUF, Arch: "llama", Tokenizer: tok,
		Params: graph.Params{Layers: 1, Embedding: 8, FFN: 16, Heads: 2, KVHeads: 2, HeadDim: 4, RopeBase: 10000,
			RopeType: "norm", RopeDims: 4, RMSEps: 1e-5, ContextLength: 64, VocabSize: 4}}
	for name, tt := range map[string]*graph.Tensor{
		"token_embd.weight": f32(4, 8), "output_norm.weight": f32(8), "rope_freqs.weight": f32(2),
		"blk.0.attn_norm.weight": f32(8), "blk.0.attn_q.weight": f32(8, 8),
	} {
		tt.Name = name
		m.Tensors = append(m.Tensors, tt)
	}
	graph.SortLlamaCpp(m.Tensors)
	out := filepath.Join(t.TempDir(), "out")
	if err := WriteDir(out, m, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Params.TorchDType != "float32" {
		t.Errorf("torch_dtype %q, want float32", got.Params.TorchDType)
	}
	if !got.Params.Tied || got.Config["tie_word_embeddings"] != true {
		t.Errorf("tied: params %v config %v", got.Params.Tied, got.Config["tie_word_embeddings"])
	}
	if got.Tensor("rope_freqs.weight") != nil || got.Tensor("output.weight") != nil || len(got.Tensors) != 4 {
		t.Errorf("tensors: %d", len(got.Tensors))
	}
	for _, name := range []string{"tokenizer.model", "tokenizer_config.json", "generation_config.json", "config.json"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("%s not written", name)
		}
	}
	compareTokenizers(t, got.Tokenizer, tok)

	// errors: existing non-empty directory; quantized tensor
	if err := WriteDir(out, m, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dir: %v", err)
	}
	if err := WriteDir(out, m, WriteOptions{Overwrite: true}); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	q := *m
	q.Tensors = append([]*graph.Tensor{{Name: "blk.0.ffn_up.weight", Shape: []int64{16, 256}, Type: graph.Q4_K, Data: bytes.NewReader(make([]byte, 16*144))}}, m.Tensors...)
	if err := WriteDir(filepath.Join(t.TempDir(), "q"), &q, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "dequantize first") {
		t.Errorf("quantized tensor: %v", err)
	}
	short := *m
	short.Tensors = []*graph.Tensor{{Name: "token_embd.weight", Shape: []int64{4, 8}, Type: graph.F32, Data: bytes.NewReader(make([]byte, 10))}}
	if err := WriteDir(filepath.Join(t.TempDir(), "s"), &short, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "has 10 bytes of data") {
		t.Errorf("short data: %v", err)
	}
}

func TestReadDirErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("no config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":16,"num_attention_heads":2,"num_hidden_layers":1,"vocab_size":4}`), 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("no weights: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("garbage!"), 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("bad weights: %v", err)
	}
}
