package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		path    []string
		format  graph.Format
		arch    string
		tensors int
	}{
		{[]string{"kjv-llama"}, graph.FormatHF, "llama", 57},
		{[]string{"real", "gguf", "stories260K-q8_0-ggufv2.gguf"}, graph.FormatGGUF, "llama", 48},
		{[]string{"real", "safetensors", "hf-samples-overall.safetensors"}, graph.FormatSafetensors, "", -1},
	}
	for _, tc := range tests {
		p := testref.Local(t, tc.path...)
		m, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m.Format != tc.format || m.Arch != tc.arch || (tc.tensors >= 0 && len(m.Tensors) != tc.tensors) {
			t.Errorf("%s: format %s arch %q tensors %d, want %s %q %d", p, m.Format, m.Arch, len(m.Tensors), tc.format, tc.arch, tc.tensors)
		}
		m.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	noConfig := filepath.Join(dir, "empty")
	os.Mkdir(noConfig, 0o755)
	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, []byte("not a model"), 0o644)
	tests := []struct{ path, want string }{
		{filepath.Join(dir, "missing.gguf"), "no such file"},
		{noConfig, "needs a config.json"},
		{junk, "unknown model format"},
	}
	for _, tc := range tests {
		_, err := Open(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Open(%s) = %v, want an error naming the path and %q", tc.path, err, tc.want)
		}
	}
}

func TestInspect(t *testing.T) {
	tests := []struct {
		path          []string
		params        int64
		bytes         int64
		types         map[string]int
		tokens, bos   int
		addBOS        bool
		tokenizerKind string
	}{
		// 6.8M parameters; 44 bf16 matrices + 13 bf16 norms.
		{[]string{"kjv-llama"}, 6819072, 6819072 * 2, map[string]int{"BF16": 57}, 4096, 1, true, "llama"},
		// llama.cpp's stories260K Q8_0 (5 layers): 11 norms F32, 35 layer matrices + token_embd + output Q8_0.
		{[]string{"real", "gguf", "stories260K-q8_0-ggufv2.gguf"}, -1, -1, map[string]int{"F32": 11, "Q8_0": 37}, 512, 1, true, "llama"},
	}
	for _, tc := range tests {
		m, err := Open(testref.Local(t, tc.path...))
		if err != nil {
			t.Fatal(err)
		}
		info := Inspect(m)
		m.Close()
		if tc.params >= 0 && (info.Parameters != tc.params || info.TotalBytes != tc.bytes) {
			t.Errorf("%v: %d params %d bytes, want %d %d", tc.path, info.Parameters, info.TotalBytes, tc.params, tc.bytes)
		}
		for ty, n := range tc.types {
			if info.TypeCounts[ty] != n {
				t.Errorf("%v: %d %s tensors, want %d (%v)", tc.path, info.TypeCounts[ty], ty, n, info.TypeCounts)
			}
		}
		tk := info.Tokenizer
		if tk == nil || tk.Tokens != tc.tokens || tk.BOS != tc.bos || tk.AddBOS != tc.addBOS || tk.Model != tc.tokenizerKind {
			t.Errorf("%v: tokenizer %+v", tc.path, tk)
		}
		var sum int64
		for _, ti := range info.Tensors {
			sum += ti.Bytes
		}
		if sum != info.TotalBytes || info.BitsPerWeight <= 0 {
			t.Errorf("%v: total %d vs sum %d, bpw %v", tc.path, info.TotalBytes, sum, info.BitsPerWeight)
		}
	}
}
