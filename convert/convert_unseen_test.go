package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// The fixtures of testdata/unseen (README.md there): a Qwen2 (byte-level
// BPE, no BOS, tied, biases, sharded bf16, FFN 352) and a Llama with a
// Llama-3 BPE tokenizer (BOS, tied, head_dim 64 != 192/4, llama3 rope
// scaling). The converter's bf16 GGUFs are in the repository; the files
// llama-quantize made from them are recorded by sha256 and per-tensor
// types in testdata/unseen/reference.json.
var unseenNames = []string{"qwen2-bpe-tied", "llama3-bpe-tied"}

// unseenTypes are the llama-quantize types recorded for each fixture.
var unseenTypes = []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"}

type unseenTensor struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Shape  []int64 `json:"shape"`
	SHA256 string  `json:"sha256"`
}

type unseenFile struct {
	SHA256  string         `json:"sha256"`
	Size    int64          `json:"size"`
	Tensors []unseenTensor `json:"tensors"`
}

type unseenModelRef struct {
	GGUF map[string]unseenFile `json:"gguf"`
}

type unseenReference struct {
	Models map[string]unseenModelRef `json:"models"`
}

func loadUnseenReference(t testing.TB) *unseenReference {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "unseen", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r unseenReference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/unseen/reference.json: %v", err)
	}
	return &r
}

func (r *unseenReference) file(t testing.TB, model, typ string) unseenFile {
	t.Helper()
	f, ok := r.Models[model].GGUF[typ]
	if !ok || f.SHA256 == "" || len(f.Tensors) == 0 {
		t.Fatalf("reference.json: no entry for %s %s", model, typ)
	}
	return f
}

func unseenConvert(t testing.TB, in, out string, typ string) {
	t.Helper()
	opt := Options{Jobs: 2}
	if typ != "" {
		ft, err := ParseFileType(typ)
		if err != nil {
			t.Fatal(err)
		}
		opt.Target = GGUFTarget{FileType: ft}
	}
	if _, err := Convert(context.Background(), in, out, opt); err != nil {
		t.Fatalf("convert %s -> %s: %v", in, out, err)
	}
}

// unseenTensors lists a GGUF file's tensors as the reference records them.
func unseenTensors(t testing.TB, path string) []unseenTensor {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]unseenTensor, len(f.Tensors))
	for i, ti := range f.Tensors {
		start := f.DataOffset + ti.Offset
		if start < 0 || start+ti.Size > int64(len(raw)) {
			t.Fatalf("%s: tensor %s out of the file", path, ti.Name)
		}
		h := sha256.Sum256(raw[start : start+ti.Size])
		out[i] = unseenTensor{Name: ti.Name, Type: ti.Type.String(), Shape: ti.Shape, SHA256: hex.EncodeToString(h[:])}
	}
	return out
}

func unseenSHA256(t testing.TB, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), int64(len(b))
}

// compareUnseen requires a file identical to the reference; when it is
// not, it says which tensors differ (type, shape, bytes) so the failure
// points at the cause.
func compareUnseen(t *testing.T, path string, want unseenFile) {
	t.Helper()
	sum, size := unseenSHA256(t, path)
	got := unseenTensors(t, path)
	if len(got) != len(want.Tensors) {
		t.Errorf("%d tensors, reference %d", len(got), len(want.Tensors))
	}
	for i := 0; i < len(got) && i < len(want.Tensors); i++ {
		g, w := got[i], want.Tensors[i]
		switch {
		case g.Name != w.Name:
			t.Errorf("tensor %d: %s, reference %s", i, g.Name, w.Name)
		case g.Type != w.Type:
			t.Errorf("%s: type %s, llama.cpp %s", g.Name, g.Type, w.Type)
		case !slices.Equal(g.Shape, w.Shape):
			t.Errorf("%s: shape %v, llama.cpp %v", g.Name, g.Shape, w.Shape)
		case g.SHA256 != w.SHA256:
			t.Errorf("%s (%s): data differs from llama.cpp's", g.Name, g.Type)
		}
	}
	if sum != want.SHA256 || size != want.Size {
		t.Errorf("file sha256 %s (%d bytes), llama.cpp %s (%d bytes)", sum, size, want.SHA256, want.Size)
	}
}

// TestUnseenHFToGGUFBF16 converts each HF checkpoint with quantbridge and
// requires the bytes of convert_hf_to_gguf.py --outtype bf16.
func TestUnseenHFToGGUFBF16(t *testing.T) {
	dir := t.TempDir()
	for _, name := range unseenNames {
		t.Run(name, func(t *testing.T) {
			ref := testref.Local(t, "unseen", name+".bf16.gguf")
			out := filepath.Join(dir, name+".bf16.gguf")
			unseenConvert(t, testref.Local(t, "unseen", name), out, "")
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, want) {
				return
			}
			// Say what differs: metadata, then tensors.
			gf, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer gf.Close()
			wf, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer wf.Close()
			for i := 0; i < len(gf.KV) || i < len(wf.KV); i++ {
				var g, w graph.KV
				if i < len(gf.KV) {
					g = gf.KV[i]
				}
				if i < len(wf.KV) {
					w = wf.KV[i]
				}
				if g.Key != w.Key || !kvEqual(g.Value, w.Value) {
					t.Errorf("KV %d: %q = %s, converter %q = %s", i, g.Key, shortVal(g.Value), w.Key, shortVal(w.Value))
				}
			}
			wantT := unseenTensors(t, ref)
			sum, size := unseenSHA256(t, ref)
			compareUnseen(t, out, unseenFile{SHA256: sum, Size: size, Tensors: wantT})
		})
	}
}

// TestUnseenHFToGGUFF16 converts the qwen2 checkpoint to F16 (the
// converter's --outtype f16: norms and biases F32, weights rounded to
// f16) and compares with the converter's file, recorded in reference.json.
func TestUnseenHFToGGUFF16(t *testing.T) {
	r := loadUnseenReference(t)
	out := filepath.Join(t.TempDir(), "f16.gguf")
	unseenConvert(t, testref.Local(t, "unseen", "qwen2-bpe-tied"), out, "F16")
	compareUnseen(t, out, r.file(t, "qwen2-bpe-tied", "f16"))
}

// TestUnseenGGUFQuantize quantizes the converter's bf16 GGUF of each
// fixture to every recorded type and requires llama-quantize's file
// (per-tensor types — FFN 352 and rows of 128/192 exercise its fallbacks —
// tensor bytes and whole-file sha256).
func TestUnseenGGUFQuantize(t *testing.T) {
	r := loadUnseenReference(t)
	dir := t.TempDir()
	for _, name := range unseenNames {
		for _, typ := range unseenTypes {
			t.Run(name+"/"+typ, func(t *testing.T) {
				want := r.file(t, name, typ)
				out := filepath.Join(dir, name+"."+typ+".gguf")
				unseenConvert(t, testref.Local(t, "unseen", name+".bf16.gguf"), out, typ)
				compareUnseen(t, out, want)
			})
		}
	}
}

// TestUnseenHFToGGUFQuantized goes from the HF checkpoint straight to a
// quantized type, which must equal convert_hf_to_gguf.py followed by
// llama-quantize.
func TestUnseenHFToGGUFQuantized(t *testing.T) {
	r := loadUnseenReference(t)
	dir := t.TempDir()
	for _, name := range unseenNames {
		for _, typ := range []string{"Q8_0", "Q4_K_M"} {
			t.Run(name+"/"+typ, func(t *testing.T) {
				want := r.file(t, name, typ)
				out := filepath.Join(dir, name+".hf."+typ+".gguf")
				unseenConvert(t, testref.Local(t, "unseen", name), out, typ)
				compareUnseen(t, out, want)
			})
		}
	}
}

func kvEqual(a, b any) bool {
	return fmt.Sprintf("%T", a) == fmt.Sprintf("%T", b) && reflect.DeepEqual(a, b)
}

func shortVal(v any) string {
	s := fmt.Sprintf("%T %v", v, v)
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
