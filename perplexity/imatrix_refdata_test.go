//go:build refdata

package perplexity

import (
	"bytes"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// kjv-llama's BF16 and Q4_K_M GGUFs (llama.cpp's own files): llama-imatrix
// -b 128 byte for byte, and within the tolerance of its default
// batch (a dense model: no routing to flip).
func TestImatrixKJVGGUFIdentical(t *testing.T) {
	for _, tc := range []struct{ model, ref string }{
		{"kjv-llama.bf16.gguf", "kjv-llama.c128.b128.imatrix.gguf"},
		{"kjv-llama.Q4_K_M.gguf", "kjv-llama.Q4_K_M.c128.b128.imatrix.gguf"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m := loadGGUF(t, testref.Shared(t, "llama.cpp", tc.model))
			res := imatrixRun(t, m, ImatrixOptions{Ctx: 128, NoPPL: true})
			ref, want := readImatrix(t, tc.ref)
			if got := encodeImatrix(t, res.Matrix); !bytes.Equal(got, want) {
				compareImatrix(t, res.Matrix, ref, 0, 0)
				t.Fatal("not byte-identical to llama-imatrix -b 128")
			}
			if tc.model == "kjv-llama.bf16.gguf" {
				def, _ := readImatrix(t, "kjv-llama.c128.imatrix.gguf")
				w, med := compareImatrix(t, res.Matrix, def, 0.01, 0.001)
				t.Logf("against the default batch: worst %.3g, median %.3g", w, med)
			}
		})
	}
}
