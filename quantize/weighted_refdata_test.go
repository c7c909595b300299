//go:build refdata

package quantize_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// The llama-quantize --imatrix outputs for kjv-llama whose tensor types
// have weighted quantizers here (../shared/testdata/imatrix, README.md
// there says how they were made).
var kjvImatrixFiles = []string{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L",
	"Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}

// Every tensor of every llama-quantize --imatrix output for kjv-llama
// (types this package quantizes with weights) is reproduced byte for byte
// from the bf16 GGUF and the imatrix.
func TestReproduceLlamaQuantizeImatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imatrix := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	for _, name := range kjvImatrixFiles {
		t.Run(name, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, "kjv-llama.imatrix."+name+".gguf"))
			counts := reproduce(t, src, out, nil, weightedRows(imatrix), nil)
			checkAllReproduced(t, out, counts)
		})
	}
}

// IQ4_NL and IQ4_XS also run without an importance matrix (weights x²):
// llama-quantize's outputs without --imatrix are reproduced byte for byte.
func TestReproduceLlamaQuantizeIQ4NoImatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	for _, name := range []string{"IQ4_NL", "IQ4_XS"} {
		t.Run(name, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, "kjv-llama."+name+".gguf"))
			counts := reproduce(t, src, out, nil, weightedRows(nil), nil)
			checkAllReproduced(t, out, counts)
		})
	}
}

// TestGenerateWeightedGolden writes testdata/quant/golden_weighted.bin (run
// with -update): for each type with a weighted quantizer, two rows of the
// first tensor of that type with an importance vector and 256-value rows,
// plus one row of a 768-value ffn_down tensor for the legacy types (their
// weights use the whole row's mean square), from the --imatrix reference
// files; and IQ4_NL/IQ4_XS rows from the files made without an imatrix.
// Without -update it checks that the committed file is what it would write.
func TestGenerateWeightedGolden(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imatrix := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	var cases []weightedCase
	done := map[string]bool{}
	collect := func(file string, imatrix map[string][]float32) {
		out := openGGUF(t, testref.Imatrix(t, file))
		reproduce(t, src, out, nil, weightedRows(imatrix), func(r reproducedTensor) {
			name, typ, n, in, w, want := r.Name, r.Type, r.N, r.In, imatrix[r.Name], r.Want
			if !quantize.CanQuantizeWeighted(typ) || (imatrix != nil) != (w != nil) {
				return
			}
			if w == nil && typ != dtype.IQ4_NL && typ != dtype.IQ4_XS {
				return // golden.bin has the reference quantizers
			}
			rb := len(want) / (len(in) / n)
			key := fmt.Sprintf("%v/%d/%v", typ, n, w != nil)
			rows := 2
			if n != 256 {
				legacy := typ == dtype.Q4_0 || typ == dtype.Q4_1 || typ == dtype.Q5_0 || typ == dtype.Q5_1
				if !legacy || !strings.Contains(name, "ffn_down") {
					return
				}
				rows = 1
			}
			if done[key] {
				return
			}
			done[key] = true
			cases = append(cases, weightedCase{
				Name: fmt.Sprintf("%s/%s[0:%d]/%v", strings.TrimSuffix(file, ".gguf"), name, rows, typ),
				Type: typ, N: n, Rows: rows,
				In: in[:rows*n], Weights: w, Want: want[:rows*rb],
			})
		})
	}
	for _, name := range kjvImatrixFiles {
		collect("kjv-llama.imatrix."+name+".gguf", imatrix)
	}
	for _, name := range []string{"IQ4_NL", "IQ4_XS"} {
		collect("kjv-llama."+name+".gguf", nil)
	}
	data := encodeWeightedGolden(cases)
	updateGolden(t, testref.Local(t, "quant", "golden_weighted.bin"), data, len(cases), "TestGenerateWeightedGolden")
}
