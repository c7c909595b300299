//go:build refdata

package mlx

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

var oracles = []struct {
	dir       string
	bits, gs  int
	packedCol int64 // U32 words per row of a 256-wide weight
}{
	{"kjv-llama-int4-g64", 4, 64, 32},
	{"kjv-llama-int8-g64", 8, 64, 64},
	{"kjv-llama-int4-g32", 4, 32, 32},
	{"kjv-llama-int3-g64", 3, 64, 24},
}

// TestReadOracleDirs reads the four MLX oracle directories (written by the
// real MLX library): 44 affine tensors with the config's bits and group
// size, 13 BF16 norms, the tokenizer and the carried-over files.
func TestReadOracleDirs(t *testing.T) {
	for _, o := range oracles {
		t.Run(o.dir, func(t *testing.T) {
			dir := testref.Shared(t, "mlx-oracle", o.dir)
			if !IsMLXDir(dir) {
				t.Fatal("IsMLXDir = false")
			}
			m, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var affine, plain int
			for _, ts := range m.Tensors {
				switch ts.Type {
				case graph.MLXAffine:
					affine++
					a := ts.Affine
					if a.Bits != o.bits || a.GroupSize != o.gs || a.ScaleType != graph.BF16 {
						t.Errorf("%s: affine %+v", ts.Name, a)
					}
					rows, cols := ts.Rows(), ts.RowLen()
					if ts.Data.Size() != rows*cols*int64(o.bits)/8 || a.Scales.Size() != rows*cols/int64(o.gs)*2 || a.Biases.Size() != a.Scales.Size() {
						t.Errorf("%s: sizes %d %d %d for %v", ts.Name, ts.Data.Size(), a.Scales.Size(), a.Biases.Size(), ts.Shape)
					}
				case graph.BF16:
					plain++
					if !strings.HasSuffix(ts.Name, "norm.weight") || len(ts.Shape) != 1 {
						t.Errorf("unexpected plain tensor %s %v", ts.Name, ts.Shape)
					}
				default:
					t.Errorf("%s: type %v", ts.Name, ts.Type)
				}
			}
			if affine != 44 || plain != 13 {
				t.Errorf("%d affine + %d plain tensors, want 44 + 13", affine, plain)
			}
			for name, shape := range map[string][]int64{
				"token_embd.weight":      {4096, 256},
				"output.weight":          {4096, 256},
				"blk.0.ffn_down.weight":  {256, 768},
				"blk.5.attn_k.weight":    {128, 256},
				"blk.3.attn_norm.weight": {256},
			} {
				if ts := m.Tensor(name); ts == nil || !slices.Equal(ts.Shape, shape) {
					t.Errorf("%s: %+v, want shape %v", name, ts, shape)
				}
			}
			if m.Arch != "llama" || m.Params.Layers != 6 || m.Params.Tied || m.Tokenizer == nil || len(m.Tokenizer.Tokens) != 4096 {
				t.Errorf("arch %q params %+v tokenizer %v", m.Arch, m.Params, m.Tokenizer != nil)
			}
			for _, f := range []string{"tokenizer.model", "tokenizer_config.json", "generation_config.json"} {
				if _, ok := m.Files[f]; !ok {
					t.Errorf("%s not carried", f)
				}
			}
		})
	}
}

// TestWriteOracleDirs reads each oracle directory and writes it back out:
// every tensor (name, dtype, shape, bytes) equals the oracle's
// model.safetensors, and config.json, model.safetensors.index.json and the
// auxiliary files are byte-identical to the oracle's.
func TestWriteOracleDirs(t *testing.T) {
	for _, o := range oracles {
		t.Run(o.dir, func(t *testing.T) {
			src := testref.Shared(t, "mlx-oracle", o.dir)
			m, err := ReadDir(src)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			q, err := ParseQuantization(m.Config)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if err := WriteDir(out, m, q, WriteOptions{Workers: 2}); err != nil {
				t.Fatal(err)
			}
			want, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			got, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if len(got.Tensors) != len(want.Tensors) || len(want.Tensors) != 145 {
				t.Fatalf("%d tensors, oracle %d", len(got.Tensors), len(want.Tensors))
			}
			if got.Metadata["format"] != "mlx" || len(got.Metadata) != 1 {
				t.Errorf("metadata %v", got.Metadata)
			}
			for i, w := range want.Tensors {
				j := got.Index(w.Name)
				if j < 0 {
					t.Fatalf("%s missing", w.Name)
				}
				g := got.Tensors[j]
				if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
					t.Fatalf("%s: %v %v, oracle %v %v", w.Name, g.DType, g.Shape, w.DType, w.Shape)
				}
				gb, _ := graph.ReadAll(got.Section(j))
				wb, _ := graph.ReadAll(want.Section(i))
				if !bytes.Equal(gb, wb) {
					t.Fatalf("%s: bytes differ", w.Name)
				}
			}
			for _, f := range []string{ConfigName, IndexName, "tokenizer.model", "tokenizer_config.json", "generation_config.json"} {
				gb, err := os.ReadFile(filepath.Join(out, f))
				if err != nil {
					t.Fatal(err)
				}
				wb, _ := os.ReadFile(filepath.Join(src, f))
				if !bytes.Equal(gb, wb) {
					t.Errorf("%s differs from the oracle's:\n%s", f, gb)
				}
			}
		})
	}
}
