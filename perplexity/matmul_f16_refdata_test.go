//go:build refdata

package perplexity

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestHalfKernelsKJV evaluates kjv-llama's BF16 GGUF (llama.cpp's file),
// and its weights converted to F16, at ctx 128 twice: with the 16-bit
// weights kept as stored (expandBudget 0: the products run on the 16-bit
// kernels where the CPU has them, on float32 tiles otherwise) and expanded
// to float32 at load (LoadModel, as for float32 activations). Every running perplexity must be the same to the
// bit; the BF16 file's final figure must also be within 0.1% of
// llama-perplexity's.
func TestHalfKernelsKJV(t *testing.T) {
	t.Logf("16-bit kernels: F16 %v, BF16 %v", useAVX512 && useSIMD, useAVX512BF16 && useSIMD)
	ref := loadReference(t, testref.Shared(t, "reference.json"))
	toks := kjvTokens(t)
	bf := loadGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	f16 := &graph.Model{Format: bf.Format, Arch: bf.Arch, Params: bf.Params, Tokenizer: bf.Tokenizer, Metadata: bf.Metadata, Path: "kjv-llama.f16"}
	converted := 0
	for _, tn := range bf.Tensors {
		if tn.Type != graph.BF16 {
			f16.Tensors = append(f16.Tensors, tn)
			continue
		}
		w, err := newWeight(&graph.Tensor{Name: tn.Name, Shape: []int64{tn.Rows(), tn.RowLen()}, Type: tn.Type, Data: tn.Data})
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, tn.Elements())
		w.dequantRows(v, 0, w.rows)
		b, err := encode(v, graph.F16, tn.Shape)
		if err != nil {
			t.Fatal(err)
		}
		f16.Tensors = append(f16.Tensors, &graph.Tensor{Name: tn.Name, Shape: tn.Shape, Type: graph.F16, Data: bytes.NewReader(b)})
		converted++
	}
	if converted != 44 {
		t.Fatalf("%d BF16 tensors in kjv-llama.bf16.gguf, want 44 (the 57 tensors less the 13 norms)", converted)
	}
	saved := expandBudget
	t.Cleanup(func() { expandBudget = saved })
	for _, c := range []struct {
		name string
		m    *graph.Model
	}{{"bf16", bf}, {"f16", f16}} {
		var res [2]*Result
		for i, budget := range []int64{0, saved} {
			expandBudget = budget
			// Loaded for float32 activations, then switched: LoadModel
			// expands the 16-bit weights within the budget, which
			// loading for llama.cpp's activations does not (they stay
			// on the 16-bit kernels).
			fm, err := LoadModel(c.m)
			if err != nil {
				t.Fatal(err)
			}
			fm.activations = true
			if w := fm.layers[0].wq; (w.f32 != nil) != (i == 1) {
				t.Fatalf("%s: budget %d: wq expanded %v", c.name, budget, w.f32 != nil)
			}
			if res[i], err = evaluate(context.Background(), fm, nil, toks, true, 1, Options{Ctx: 128, Batch: 128}); err != nil {
				t.Fatal(err)
			}
		}
		stored, expanded := res[0], res[1]
		if len(stored.Running) != 47 || len(expanded.Running) != 47 {
			t.Fatalf("%s: %d and %d chunks, want 47", c.name, len(stored.Running), len(expanded.Running))
		}
		for i := range stored.Running {
			if stored.Running[i] != expanded.Running[i] {
				t.Errorf("%s: running PPL [%d]: %.10g stored, %.10g expanded", c.name, i+1, stored.Running[i], expanded.Running[i])
			}
		}
		if stored.PPL != expanded.PPL || stored.PPLStderr != expanded.PPLStderr {
			t.Errorf("%s: PPL %.10g ± %.10g stored, %.10g ± %.10g expanded", c.name, stored.PPL, stored.PPLStderr, expanded.PPL, expanded.PPLStderr)
		}
		t.Logf("%s: PPL %.4f ± %.5f (stored and expanded weights)", c.name, stored.PPL, stored.PPLStderr)
		if c.name == "bf16" {
			want := ref.LlamaPerplexity["bf16"]
			if rel := math.Abs(stored.PPL-want.PPL) / want.PPL; rel > 1e-3 {
				t.Errorf("bf16: PPL %.4f, llama-perplexity %.4f (%.3g%% > 0.1%%)", stored.PPL, want.PPL, 100*rel)
			}
			t.Logf("bf16: llama-perplexity %.4f ± %.5f", want.PPL, want.Stderr)
		}
	}
}
