package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// tinyTokens returns n distinct token strings.
func tinyTokens(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

// tinyLlama writes a small synthetic llama GGUF (BF16 weights, F32 norms)
// with deterministic pseudo-random values and returns its path.
func tinyLlama(t testing.TB, dir string, poison string) string {
	t.Helper()
	s := synth{arch: "llama", layers: 3, embd: 256, ff: 512, heads: 4, kvHeads: 2, vocab: 96}
	m := s.model()
	slices.Reverse(m.Tensors) // converter-like order, not llama.cpp's
	kv := []graph.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.file_type", Value: uint32(32)},
		{Key: "llama.block_count", Value: uint32(s.layers)},
		{Key: "llama.embedding_length", Value: uint32(s.embd)},
		{Key: "llama.attention.head_count", Value: uint32(s.heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(s.kvHeads)},
		{Key: "general.quantization_version", Value: uint32(2)},
		{Key: "split.count", Value: uint16(1)},
		{Key: "tokenizer.ggml.tokens", Value: tinyTokens(int(s.vocab))},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	infos := make([]gguf.TensorInfo, len(m.Tensors))
	data := make([][]byte, len(m.Tensors))
	for i, tn := range m.Tensors {
		infos[i] = gguf.TensorInfo{Name: tn.Name, Shape: tn.Shape, Type: tn.Type}
		n := tn.Elements()
		f := make([]float32, n)
		for j := range f {
			f[j] = float32(rng.NormFloat64() * 0.05)
		}
		if tn.Name == poison {
			f[7] = float32(math.NaN())
		}
		rs, _ := graph.RowSize(tn.Type, n)
		data[i] = make([]byte, rs)
		if err := quantize.FromFloat32(data[i], f, tn.Type); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "tiny.bf16.gguf")
	var b bytes.Buffer
	err := gguf.Write(&b, kv, infos, func(i int) (graph.Source, error) { return bytes.NewReader(data[i]), nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustFT(t testing.TB, s string) FileType {
	ft, err := ParseFileType(s)
	if err != nil {
		t.Fatal(err)
	}
	return ft
}

func TestConvertGGUFPipeline(t *testing.T) {
	dir := t.TempDir()
	in := tinyLlama(t, dir, "")
	for _, ftName := range []string{"Q4_K_M", "Q5_1", "F16"} {
		t.Run(ftName, func(t *testing.T) {
			ft := mustFT(t, ftName)
			// One worker, whole tensors vs. three workers, tiny slabs and a
			// memory bound: the file must not depend on the schedule.
			out1 := filepath.Join(dir, ftName+".a.gguf")
			out2 := filepath.Join(dir, ftName+".b.gguf")
			s1, err := ConvertGGUF(context.Background(), in, out1, Options{Target: GGUFTarget{FileType: ft}, Jobs: 1})
			if err != nil {
				t.Fatal(err)
			}
			var calls int
			_, err = ConvertGGUF(context.Background(), in, out2, Options{Target: GGUFTarget{FileType: ft}, Jobs: 3, SlabBytes: 3000, MaxMemory: 20000,
				Progress: func(Progress) { calls++ }})
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(out1)
			b2, _ := os.ReadFile(out2)
			if !bytes.Equal(b1, b2) {
				t.Fatal("output depends on jobs/slabs")
			}
			if calls < len(s1.Tensors) {
				t.Errorf("%d progress calls for %d tensors", calls, len(s1.Tensors))
			}
			if s1.TotalBytes != int64(len(b1)) || s1.Type != ftName || len(s1.Tensors) != 3*9+3 {
				t.Errorf("summary %+v", s1)
			}
			checkConverted(t, in, out1, ft)
		})
	}
}

// checkConverted verifies out against in: KVs rewritten as llama-quantize
// does, tensors in llama.cpp order with the planned types, and every tensor
// equal to encoding the decoded input.
func checkConverted(t *testing.T, in, out string, ft FileType) {
	t.Helper()
	src, err := gguf.ReadModel(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plans, err := PlanGGUF(src, ft, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	for _, kv := range f.KV {
		keys = append(keys, kv.Key)
	}
	wantKeys := []string{"general.architecture", "llama.block_count", "llama.embedding_length",
		"llama.attention.head_count", "llama.attention.head_count_kv", "tokenizer.ggml.tokens",
		"general.quantization_version", "general.file_type"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys %v, want %v", keys, wantKeys)
	}
	if v, _ := f.Get("general.file_type"); v != ft.LlamaFType {
		t.Errorf("general.file_type = %v, want %d", v, ft.LlamaFType)
	}
	if len(f.Tensors) != len(plans) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(plans))
	}
	for i, ti := range f.Tensors {
		p := plans[i]
		if ti.Name != p.Name || ti.Type != p.To || !slices.Equal(ti.Shape, p.Shape) {
			t.Fatalf("tensor %d: %s %v %v, want %s %v %v", i, ti.Name, ti.Type, ti.Shape, p.Name, p.To, p.Shape)
		}
		raw, err := graph.ReadAll(p.Tensor.Data)
		if err != nil {
			t.Fatal(err)
		}
		want := raw
		if p.From != p.To {
			fl := make([]float32, p.Tensor.Elements())
			if err := quantize.ToFloat32(fl, raw, p.From); err != nil {
				t.Fatal(err)
			}
			want = make([]byte, p.Bytes())
			if err := quantize.FromFloat32(want, fl, p.To); err != nil {
				t.Fatal(err)
			}
		}
		got, err := graph.ReadAll(f.TensorReader(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("tensor %s: data differs", p.Name)
		}
	}
}

func TestQuantizeKV(t *testing.T) {
	in := []graph.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.file_type", Value: uint32(32)},
		{Key: "split.no", Value: uint16(0)},
		{Key: "general.quantization_version", Value: uint32(2)},
		{Key: "split.count", Value: uint16(2)},
		{Key: "split.tensors.count", Value: int32(9)},
		{Key: "general.alignment", Value: uint32(64)},
	}
	got := QuantizeKV(in, 15)
	want := []graph.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.alignment", Value: uint32(64)},
		{Key: "general.quantization_version", Value: uint32(2)},
		{Key: "general.file_type", Value: uint32(15)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("QuantizeKV = %v, want %v", got, want)
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestConvertGGUFErrors(t *testing.T) {
	dir := t.TempDir()
	in := tinyLlama(t, dir, "")
	q80 := mustFT(t, "Q8_0")
	quant := filepath.Join(dir, "tiny.Q8_0.gguf")
	if _, err := ConvertGGUF(context.Background(), in, quant, Options{Target: GGUFTarget{FileType: q80}}); err != nil {
		t.Fatal(err)
	}
	poisonDir := t.TempDir()
	poisoned := tinyLlama(t, poisonDir, "blk.1.ffn_up.weight")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		in, out string
		opt     Options
		want    string
		is      error
	}{
		{"missing-input", nil, filepath.Join(dir, "nope.gguf"), filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: q80}}, "no such file", nil},
		{"no-type", nil, in, filepath.Join(dir, "x.gguf"), Options{}, "GGUF → GGUF needs a file type (--type)", nil},
		{"mlx-target", nil, in, filepath.Join(dir, "x"), Options{Target: MLXTarget{}}, "ConvertGGUF writes GGUF files, not convert.MLXTarget", nil},
		{"tokenizer-pre", nil, in, filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: q80}, TokenizerPre: "qwen2"}, "--tokenizer-pre qwen2 does not apply to " + in, nil},
		{"exists", nil, in, filepath.Join(dir, "adir.gguf"), Options{Target: GGUFTarget{FileType: q80}}, "exists", ErrExists},
		{"same-file", nil, in, in, Options{Target: GGUFTarget{FileType: q80}, Force: true}, "is the input", ErrSameFile},
		{"requantize", nil, quant, filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: mustFT(t, "Q4_K_M")}}, "requantizing from type Q8_0", nil},
		{"requantize-to-f16", nil, quant, filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: mustFT(t, "F16")}}, "requantizing from type Q8_0", nil},
		{"nan", nil, poisoned, filepath.Join(poisonDir, "x.gguf"), Options{Target: GGUFTarget{FileType: q80}, Jobs: 2}, "blk.1.ffn_up.weight: element 7 is NaN", nil},
		{"cancelled", cancelled, in, filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: q80}}, "canceled", context.Canceled},
		{"not-gguf", nil, filepath.Join(dir, "tiny.txt"), filepath.Join(dir, "x.gguf"), Options{Target: GGUFTarget{FileType: q80}}, "", nil},
	}
	os.WriteFile(filepath.Join(dir, "tiny.txt"), []byte("not a gguf file"), 0o644)
	os.Mkdir(filepath.Join(dir, "adir.gguf"), 0o755) // not a regular file: replaced only with --force
	before := map[string][]string{dir: entries(t, dir), poisonDir: entries(t, poisonDir)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := ConvertGGUF(ctx, tc.in, tc.out, tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			// Nothing was left behind: no output, no temporary file.
			for d, names := range before {
				if got := entries(t, d); !slices.Equal(got, names) {
					t.Errorf("%s now holds %v, was %v", d, got, names)
				}
			}
		})
	}

	// --force overwrites; --allow-requantize converts a quantized input.
	if _, err := ConvertGGUF(context.Background(), in, quant, Options{Target: GGUFTarget{FileType: q80}, Force: true, Jobs: 1}); err != nil {
		t.Fatalf("--force: %v", err)
	}
	var warned []string
	out := filepath.Join(dir, "requant.gguf")
	if _, err := ConvertGGUF(context.Background(), quant, out, Options{Target: GGUFTarget{FileType: mustFT(t, "Q4_0"), AllowRequantize: true},
		Warn: func(s string) { warned = append(warned, s) }}); err != nil {
		t.Fatalf("--allow-requantize: %v", err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "dequantizing") {
		t.Errorf("warnings %q", warned)
	}
}

// TestFirstNonFinite16 checks the F16/BF16 overflow detector.
func TestFirstNonFinite16(t *testing.T) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint16(b[4:], quantize.FP32ToFP16(1e6))
	if i := firstNonFinite16(b, graph.F16); i != 2 {
		t.Errorf("F16 overflow at %d, want 2", i)
	}
	if i := firstNonFinite16(b, graph.BF16); i != -1 {
		t.Errorf("BF16 %d, want -1", i)
	}
}
