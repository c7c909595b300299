package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzRead: any input either fails with a *FormatError or parses into a
// file that Rewrite can write and Read can parse back to the same
// header; tokenizer and params derivation must not panic either.
func FuzzRead(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(testref.Local(f, "real", "gguf"), "*.gguf"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(shrink(f, b))
	}
	f.Add(twoKVs("general.architecture", "llama.block_count"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gf, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, want *FormatError", err, err)
			}
			return
		}
		gf.Params()
		TokenizerFromKV(gf.KV)
		var out bytes.Buffer
		if err := Rewrite(&out, gf); err != nil {
			t.Fatalf("parsed file does not re-write: %v", err)
		}
		g2, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("re-written file does not parse: %v", err)
		}
		if len(g2.KV) != len(gf.KV) || len(g2.Tensors) != len(gf.Tensors) {
			t.Fatalf("re-written file has %d KVs %d tensors, want %d %d", len(g2.KV), len(g2.Tensors), len(gf.KV), len(gf.Tensors))
		}
		for i := range gf.Tensors {
			a, b := gf.Tensors[i], g2.Tensors[i]
			if a.Name != b.Name || a.Type != b.Type || a.Size != b.Size || elemCount(a.Shape) != elemCount(b.Shape) {
				t.Fatalf("tensor %d: %+v became %+v", i, a, b)
			}
			x, _ := graph.ReadAll(gf.TensorReader(i))
			y, _ := graph.ReadAll(g2.TensorReader(i))
			if !bytes.Equal(x, y) {
				t.Fatalf("tensor %q data changed", a.Name)
			}
		}
	})
}

// shrink re-encodes a real file small enough for the fuzzer to mutate
// quickly: its KVs with arrays cut to 24 elements and up to 4 of its
// smallest tensors with their real bytes.
func shrink(tb testing.TB, b []byte) []byte {
	tb.Helper()
	gf, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	kv := make([]graph.KV, len(gf.KV))
	for i, p := range gf.KV {
		v := reflect.ValueOf(p.Value)
		if v.Kind() == reflect.Slice && v.Len() > 24 {
			p.Value = v.Slice(0, 24).Interface()
		}
		kv[i] = p
	}
	var ts []TensorInfo
	var idx []int
	for i, t := range gf.Tensors {
		if t.Size <= 512 && len(ts) < 4 {
			ts = append(ts, t)
			idx = append(idx, i)
		}
	}
	var out bytes.Buffer
	l, err := PlanVersion(max(gf.Version, 2), kv, ts, gf.Alignment)
	if err != nil {
		tb.Fatal(err)
	}
	if err := l.write(&out, ts, func(i int) (graph.Source, error) { return gf.TensorReader(idx[i]), nil }); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func elemCount(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}
