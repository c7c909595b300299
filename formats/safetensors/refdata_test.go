//go:build refdata

package safetensors

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestSharedFilesRead opens every .safetensors under ../shared/testdata.
func TestSharedFilesRead(t *testing.T) {
	root := testref.Shared(t)
	want := map[string]struct {
		tensors int
		types   string // "TYPE:count ..." sorted by type name
		format  string // __metadata__["format"]
	}{
		"kjv-llama/model.safetensors":                                  {57, "BF16:57", "pt"},
		"kjv-llama.ref_logits.safetensors":                             {2, "F32:1 I32:1", ""},
		"mlx-oracle/kjv-llama-int4-g64/model.safetensors":              {145, "BF16:101 U32:44", "mlx"},
		"mlx-oracle/kjv-llama-int4-g32/model.safetensors":              {145, "BF16:101 U32:44", "mlx"},
		"mlx-oracle/kjv-llama-int8-g64/model.safetensors":              {145, "BF16:101 U32:44", "mlx"},
		"mlx-oracle/kjv-llama-int3-g64/model.safetensors":              {145, "BF16:101 U32:44", "mlx"},
		"real/safetensors/hf-samples-overall.safetensors":              {9, "F16:1 F32:1 F64:1 I16:1 I32:1 I8:1 U16:1 U32:1 U8:1", ""},
		"real/safetensors/tiny-random-llama-2/model.safetensors":       {21, "BF16:21", "pt"},
		"real/mlx/dpo-adapters-qwen2.5-0.5b-4bit/adapters.safetensors": {8, "F32:8", ""},
		"real/mlx/mlx-swift-lm-fixture/case_01_greedy.safetensors":     {5, "F32:2 I32:3", ""},
	}
	seen := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".safetensors") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		seen++
		f, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		defer f.Close()
		counts := map[string]int{}
		for _, ti := range f.Tensors {
			counts[ti.DType.String()]++
		}
		var parts []string
		for k, v := range counts {
			parts = append(parts, k+":"+strconv.Itoa(v))
		}
		sort.Strings(parts)
		got := strings.Join(parts, " ")
		if w, ok := want[rel]; ok {
			if len(f.Tensors) != w.tensors || got != w.types || f.Metadata["format"] != w.format {
				t.Errorf("%s: %d tensors [%s] format %q; want %d [%s] %q", rel, len(f.Tensors), got, f.Metadata["format"], w.tensors, w.types, w.format)
			}
		}
		if strings.HasSuffix(rel, "dequant_check.safetensors") && (len(f.Tensors) != 1 || got != "F32:1" || f.Metadata["format"] != "mlx") {
			t.Errorf("%s: %d tensors [%s] %v", rel, len(f.Tensors), got, f.Metadata)
		}
		t.Logf("%s: %d tensors [%s], header %d bytes", rel, len(f.Tensors), got, f.HeaderSize)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 14 {
		t.Errorf("found %d .safetensors files, want 14", seen)
	}
}

// TestSharedCheckpoints opens the oracle directories through their
// index.json, re-writes each file byte-for-byte (MLX style for the MLX
// library's files, the reference writer's layout for transformers'), and
// regenerates each index.json byte-for-byte with IndexJSONMLX.
func TestSharedCheckpoints(t *testing.T) {
	bits := map[string]int64{"kjv-llama-int4-g64": 4, "kjv-llama-int4-g32": 4, "kjv-llama-int8-g64": 8, "kjv-llama-int3-g64": 3}
	for dir, b := range bits {
		t.Run(dir, func(t *testing.T) {
			path := testref.Shared(t, "mlx-oracle", dir)
			c, err := OpenCheckpoint(path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Index == nil || len(c.Index.WeightMap) != 145 || len(c.Tensors) != 145 {
				t.Fatalf("index %v, %d tensors", c.Index != nil, len(c.Tensors))
			}
			// mlx-lm's total_size = Σ nbytes; total_parameters counts a
			// quantized weight as words*32/bits and skips scales/biases.
			var size, params int64
			wm := map[string]string{}
			for _, tt := range c.Tensors {
				wm[tt.Name] = "model.safetensors"
				size += tt.Data.Size()
				switch {
				case strings.HasSuffix(tt.Name, ".scales") || strings.HasSuffix(tt.Name, ".biases"):
				case tt.Type == graph.U32:
					params += tt.Elements() * 32 / b
				default:
					params += tt.Elements()
				}
			}
			wantIdx, err := os.ReadFile(filepath.Join(path, IndexName))
			if err != nil {
				t.Fatal(err)
			}
			if got := IndexJSONMLX(wm, size, params); !bytes.Equal(got, wantIdx) {
				t.Errorf("IndexJSONMLX differs from the oracle's index.json (size %d params %d)", size, params)
			}
			rewriteIdentical(t, filepath.Join(path, "model.safetensors"), PlanOptions{MLXStyle: true})
			rewriteIdentical(t, filepath.Join(path, "dequant_check.safetensors"), PlanOptions{MLXStyle: true})
		})
	}
	t.Run("kjv-llama", func(t *testing.T) {
		c, err := OpenCheckpoint(testref.Shared(t, "kjv-llama"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if len(c.Files) != 1 || len(c.Tensors) != 57 {
			t.Fatalf("%d files %d tensors", len(c.Files), len(c.Tensors))
		}
		rewriteIdentical(t, testref.Shared(t, "kjv-llama", "model.safetensors"), PlanOptions{SortByDType: true, Pad8: true})
		rewriteIdentical(t, testref.Shared(t, "kjv-llama.ref_logits.safetensors"), PlanOptions{SortByDType: true, Pad8: true})
	})
}

// rewriteIdentical plans f's tensors in its data order with opt (plus its
// metadata), writes them, and compares bytes with the original.
func rewriteIdentical(t *testing.T, path string, opt PlanOptions) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	pts, data := planFrom(f)
	opt.Metadata, opt.MetadataKeys = f.Metadata, f.MetadataKeys
	l, err := Plan(pts, opt)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := l.WriteTo(&got, data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s: rewrite is not byte-identical (%d vs %d bytes)", path, got.Len(), len(want))
	}
}
