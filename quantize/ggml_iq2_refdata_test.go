//go:build refdata

package quantize_test

import (
	"fmt"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
)

var iq2Types = map[dtype.Type]bool{dtype.IQ2_XXS: true, dtype.IQ2_XS: true, dtype.IQ2_S: true, dtype.IQ1_S: true, dtype.IQ1_M: true}

// Every IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M tensor that
// llama-quantize --imatrix wrote for kjv-llama is reproduced byte for byte
// from the bf16 source and the importance matrix, and dequantizes to what
// the same bytes give through DequantizeRow.
func TestReproduceLlamaQuantizeIQ2(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imat := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	seen := map[dtype.Type]int{}
	for _, ftype := range []string{"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"} {
		t.Run(ftype, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, "kjv-llama.imatrix."+ftype+".gguf"))
			checked := 0
			reproduce(t, src, out, iq2Types, weightedRows(imat), func(r reproducedTensor) {
				if imat[r.Name] == nil {
					t.Errorf("%s: no importance weights", r.Name)
				}
				rel := checkDecodes(t, r)
				t.Logf("%s %v: %d rows identical; dequantized relative RMS error %.3f", r.Name, r.Type, len(r.In)/r.N, rel)
				checked++
				seen[r.Type]++
			})
			if checked == 0 {
				t.Errorf("no tensor of the IQ2/IQ1 types in %s", out.Path())
			}
		})
	}
	for typ := range iq2Types {
		if seen[typ] == 0 {
			t.Errorf("no %v tensor checked", typ)
		}
	}
	t.Log(fmt.Sprint(seen))
}
