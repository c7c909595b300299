//go:build refdata

package perplexity

import (
	"bytes"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// kjv-llama's BF16 and Q4_K_M GGUFs (llama.cpp's own files): llama-imatrix
// -b 128 byte for byte, and the BF16 file at llama-imatrix's default batch
// (16 chunks at once) byte for byte.
func TestImatrixKJVGGUFIdentical(t *testing.T) {
	for _, tc := range []struct {
		model, ref string
		batch      int
	}{
		{"kjv-llama.bf16.gguf", "kjv-llama.c128.b128.imatrix.gguf", 128},
		{"kjv-llama.Q4_K_M.gguf", "kjv-llama.Q4_K_M.c128.b128.imatrix.gguf", 128},
		{"kjv-llama.bf16.gguf", "kjv-llama.c128.imatrix.gguf", 0},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			m := loadGGUF(t, testref.Shared(t, "llama.cpp", tc.model))
			res := imatrixRun(t, m, ImatrixOptions{Ctx: 128, Batch: tc.batch, NoPPL: true})
			ref, want := readImatrix(t, tc.ref)
			if got := encodeImatrix(t, res.Matrix); !bytes.Equal(got, want) {
				compareImatrix(t, res.Matrix, ref, 0, 0)
				t.Fatalf("not byte-identical to llama-imatrix's %s", tc.ref)
			}
		})
	}
}
