package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// checkRewrite reads path, re-writes it and compares byte for byte.
func checkRewrite(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Rewrite(&out, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		got := out.Bytes()
		i := 0
		for i < len(got) && i < len(raw) && got[i] == raw[i] {
			i++
		}
		t.Fatalf("%s: rewrite differs: %d bytes vs %d, first difference at offset %d", filepath.Base(path), len(got), len(raw), i)
	}
	l, err := PlanVersion(f.Version, f.KV, f.Tensors, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.DataOffset != f.DataOffset || l.Size != int64(len(raw)) {
		t.Errorf("plan: data at %d size %d, file: %d, %d", l.DataOffset, l.Size, f.DataOffset, len(raw))
	}
	for i, ti := range f.Tensors {
		if l.Offsets[i] != f.DataOffset+ti.Offset || l.Sizes[i] != ti.Size {
			t.Errorf("plan: tensor %q at %d size %d, file: %d, %d", ti.Name, l.Offsets[i], l.Sizes[i], f.DataOffset+ti.Offset, ti.Size)
		}
	}
}

func TestRewriteIdentical(t *testing.T) {
	for _, name := range []string{"stories260K-q8_0-ggufv2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"} {
		t.Run(name, func(t *testing.T) { checkRewrite(t, testref.Local(t, "real", "gguf", name)) })
	}
}

// K.3 of the reference notes: one KV, one F32 [2,2] tensor.
func TestWriteMinimal(t *testing.T) {
	kv := []graph.KV{{Key: "general.architecture", Value: "llama"}}
	ts := []TensorInfo{{Name: "token_embd.weight", Shape: []int64{2, 2}, Type: graph.F32}}
	data := bytes.Repeat([]byte{0xAB}, 16)
	var out bytes.Buffer
	err := Write(&out, kv, ts, func(int) (graph.Source, error) { return bytes.NewReader(data), nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("GGUF\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00" +
		"\x14\x00\x00\x00\x00\x00\x00\x00general.architecture\x08\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00llama" +
		"\x11\x00\x00\x00\x00\x00\x00\x00token_embd.weight\x02\x00\x00\x00" +
		"\x02\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	for len(want)%32 != 0 {
		want = append(want, 0)
	}
	want = append(want, data...)
	want = append(want, make([]byte, 16)...)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("got\n% x\nwant\n% x", out.Bytes(), want)
	}
}
