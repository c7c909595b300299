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
			if _, err := ConvertGGUF(context.Background(), in, out, Options{Type: ft, Jobs: 2}); err != nil {
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
