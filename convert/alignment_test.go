package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
)

// withAlignment rewrites the GGUF at in with general.alignment = align
// inserted after general.architecture (laid out at that alignment, as a
// reader requires).
func withAlignment(t *testing.T, in, out string, align uint32) {
	t.Helper()
	f, err := gguf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := slices.Clone(f.KV)
	kv = slices.Insert(kv, 1, graph.KV{Key: "general.alignment", Value: align})
	infos := make([]gguf.TensorInfo, len(f.Tensors))
	for i, ti := range f.Tensors {
		infos[i] = gguf.TensorInfo{Name: ti.Name, Shape: ti.Shape, Type: ti.Type}
	}
	var b bytes.Buffer
	if err := gguf.Write(&b, kv, infos, func(i int) (graph.Source, error) { return f.TensorReader(i), nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGeneralAlignment: llama-quantize copies an input's general.alignment
// KV but always lays the data out at 32 bytes, which for any other value
// gives a file that gguf.cpp (which lays out and checks offsets by the
// KV) rejects or misreads. quantbridge keeps the KV and lays the file out
// at that alignment: the same KVs, tensors and bytes as llama-quantize,
// only the padding follows the KV. With alignment 32 (or none) the file is
// llama-quantize's exactly.
func TestGeneralAlignment(t *testing.T) {
	dir := t.TempDir()
	plain := tinyLlama(t, dir, "")
	for _, align := range []uint32{64, 32} {
		in := filepath.Join(dir, "aligned.gguf")
		withAlignment(t, plain, in, align)
		for _, typ := range []string{"Q8_0", "Q4_K_M"} {
			ft := mustFT(t, typ)
			ref := filepath.Join(dir, "plain."+typ+".gguf")
			os.Remove(ref)
			if _, err := ConvertGGUF(context.Background(), plain, ref, Options{Target: GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "aligned."+typ+".gguf")
			os.Remove(out)
			if _, err := ConvertGGUF(context.Background(), in, out, Options{Target: GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			g, err := gguf.Open(out) // the reader lays out and checks offsets by general.alignment
			if err != nil {
				t.Fatalf("alignment %d %s: %v", align, typ, err)
			}
			w, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			if g.Alignment != int64(align) || g.DataOffset%int64(align) != 0 {
				t.Errorf("alignment %d %s: file alignment %d, data at %d", align, typ, g.Alignment, g.DataOffset)
			}
			if v, _ := g.Get("general.alignment"); v != align || g.KV[1].Key != "general.alignment" {
				t.Errorf("alignment %d %s: KV %v at %q", align, typ, v, g.KV[1].Key)
			}
			// Everything else as without the key.
			kv := slices.Clone(g.KV)
			kv = slices.Delete(kv, 1, 2)
			if len(kv) != len(w.KV) {
				t.Fatalf("%d KVs, want %d", len(kv), len(w.KV))
			}
			for i := range kv {
				if kv[i].Key != w.KV[i].Key || !kvEqual(kv[i].Value, w.KV[i].Value) {
					t.Errorf("KV %d: %s, want %s", i, kv[i].Key, w.KV[i].Key)
				}
			}
			if len(g.Tensors) != len(w.Tensors) {
				t.Fatalf("%d tensors, want %d", len(g.Tensors), len(w.Tensors))
			}
			for i := range g.Tensors {
				a, _ := graph.ReadAll(g.TensorReader(i))
				b, _ := graph.ReadAll(w.TensorReader(i))
				if g.Tensors[i].Name != w.Tensors[i].Name || g.Tensors[i].Type != w.Tensors[i].Type || !bytes.Equal(a, b) {
					t.Errorf("alignment %d %s: tensor %d %s differs", align, typ, i, w.Tensors[i].Name)
				}
				if g.Tensors[i].Offset%int64(align) != 0 {
					t.Errorf("alignment %d %s: tensor %s at %d", align, typ, g.Tensors[i].Name, g.Tensors[i].Offset)
				}
			}
			if align == 32 {
				// llama-quantize's layout: the key-less file's bytes with the
				// KV inserted, i.e. every tensor at the same data offset.
				for i := range g.Tensors {
					if g.Tensors[i].Offset != w.Tensors[i].Offset {
						t.Errorf("alignment 32: %s at data offset %d, key-less file %d", g.Tensors[i].Name, g.Tensors[i].Offset, w.Tensors[i].Offset)
					}
				}
			}
			g.Close()
			w.Close()
		}
	}
}
