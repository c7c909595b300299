//go:build refdata

package quantize_test

import (
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// iq3Types are the types ggml_iq3.go and ggml_tq.go quantize.
var iq3Types = map[dtype.Type]bool{dtype.IQ3_XXS: true, dtype.IQ3_S: true, dtype.TQ1_0: true, dtype.TQ2_0: true}

// Every IQ3_XXS, IQ3_S, TQ1_0 and TQ2_0 tensor llama-quantize --imatrix
// wrote for kjv-llama (the IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, TQ1_0, TQ2_0
// mixes) is reproduced byte for byte from the bf16 GGUF and the imatrix,
// and so is every such tensor of the files made without an imatrix.
func TestReproduceIQ3Imatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imat := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	for _, tc := range []struct {
		file    string
		imatrix bool
	}{
		{"kjv-llama.imatrix.IQ3_XXS.gguf", true},
		{"kjv-llama.imatrix.IQ3_XS.gguf", true},
		{"kjv-llama.imatrix.IQ3_S.gguf", true},
		{"kjv-llama.imatrix.IQ3_M.gguf", true},
		{"kjv-llama.imatrix.TQ1_0.gguf", true},
		{"kjv-llama.imatrix.TQ2_0.gguf", true},
		{"kjv-llama.IQ3_S.gguf", false},
		{"kjv-llama.IQ3_M.gguf", false},
		{"kjv-llama.TQ1_0.gguf", false},
		{"kjv-llama.TQ2_0.gguf", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, tc.file))
			var m map[string][]float32
			if tc.imatrix {
				m = imat
			}
			weighted := map[dtype.Type]int{}
			checked := reproduce(t, src, out, iq3Types, weightedRows(m), func(r reproducedTensor) {
				if m[r.Name] != nil {
					weighted[r.Type]++
				}
				checkDecodes(t, r)
			})
			if len(checked) == 0 {
				t.Fatal("no tensor of the IQ3/TQ types")
			}
			for typ, c := range checked {
				t.Logf("%v: %d tensors identical (%d weighted by the imatrix)", typ, c[0], weighted[typ])
			}
		})
	}
}
