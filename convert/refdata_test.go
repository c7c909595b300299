//go:build refdata

package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

var refTypes = []string{"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"}

// TestPlanMatchesLlamaQuantize compares PlanGGUF on kjv-llama.bf16.gguf with
// the tensor types and order of every llama-quantize reference file.
func TestPlanMatchesLlamaQuantize(t *testing.T) {
	m, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, name := range refTypes {
		t.Run(name, func(t *testing.T) {
			ft, err := ParseFileType(name)
			if err != nil {
				t.Fatal(err)
			}
			plans, err := PlanGGUF(m, ft, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ref, err := gguf.Open(testref.Shared(t, "llama.cpp", "kjv-llama."+name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			if len(ref.Tensors) != len(plans) {
				t.Fatalf("%d tensors, reference has %d", len(plans), len(ref.Tensors))
			}
			for i, rt := range ref.Tensors {
				p := plans[i]
				if p.Name != rt.Name || p.To != rt.Type {
					t.Errorf("tensor %d: planned %s %v (%s), reference %s %v", i, p.Name, p.To, p.Reason, rt.Name, rt.Type)
				}
			}
		})
	}
}

// TestConvertGGUFMatchesLlamaQuantize converts kjv-llama.bf16.gguf to every
// reference type and requires the whole output file to be byte-identical.
func TestConvertGGUFMatchesLlamaQuantize(t *testing.T) {
	in := testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf")
	dir := t.TempDir()
	for _, name := range refTypes {
		t.Run(name, func(t *testing.T) {
			ft, err := ParseFileType(name)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, name+".gguf")
			if _, err := ConvertGGUF(context.Background(), in, out, Options{Target: GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(testref.Shared(t, "llama.cpp", "kjv-llama."+name+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				n := min(len(got), len(want))
				i := 0
				for i < n && got[i] == want[i] {
					i++
				}
				t.Fatalf("output differs from llama-quantize's: %d vs %d bytes, first difference at byte %d", len(got), len(want), i)
			}
		})
	}
}

// TestHFToGGUFMatchesLlamaCpp converts the shared HF kjv-llama checkpoint
// to BF16 (convert_hf_to_gguf.py's output) and to every quantized type
// (llama-quantize's output from it) and requires whole-file identity.
func TestHFToGGUFAllTypes(t *testing.T) {
	hfDir := testref.Shared(t, "kjv-llama")
	dir := t.TempDir()
	for _, name := range append([]string{"bf16"}, refTypes...) {
		t.Run(name, func(t *testing.T) {
			opt := Options{Jobs: 2}
			if name != "bf16" {
				opt.Target = GGUFTarget{FileType: mustFT(t, name)}
			}
			out := filepath.Join(dir, name+".gguf")
			convertOK(t, hfDir, out, opt)
			want := testref.Shared(t, "llama.cpp", "kjv-llama."+name+".gguf")
			if got, ref := fileSHA256(t, out), fileSHA256(t, want); got != ref {
				t.Errorf("sha256 %s, llama.cpp's %s", got, ref)
			}
		})
	}
}

// TestHFToMLXMatchesOracle quantizes the HF checkpoint as mlx-lm would and
// compares every tensor (codes, scales, biases, kept norms) and the
// config/index files with the MLX library's own output.
func TestHFToMLXMatchesOracle(t *testing.T) {
	hfDir := testref.Shared(t, "kjv-llama")
	dir := t.TempDir()
	for _, c := range []struct {
		name       string
		bits, size int
	}{{"int4-g64", 4, 64}, {"int8-g64", 8, 64}, {"int4-g32", 4, 32}, {"int3-g64", 3, 64}} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			convertOK(t, hfDir, out, Options{Target: MLXTarget{Bits: c.bits, GroupSize: c.size}})
			oracle := testref.Shared(t, "mlx-oracle", "kjv-llama-"+c.name)
			sameTensors(t, c.name, safetensorsTensors(t, out), safetensorsTensors(t, oracle))
			for _, f := range []string{"config.json", "model.safetensors.index.json", "tokenizer_config.json", "generation_config.json", "tokenizer.model"} {
				a, _ := os.ReadFile(filepath.Join(out, f))
				b, _ := os.ReadFile(filepath.Join(oracle, f))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs from the oracle's", f)
				}
			}
		})
	}
}
