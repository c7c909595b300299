package quantize_test

import (
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/quantize"
)

// BenchmarkQuantizeIQ3/<type>/<weights>: one row of 2^20 Gaussian values,
// without an importance vector (x² weighting) and with one (positive,
// varied, like an imatrix entry repeated per row); MB/s counts float32 input
// bytes. scripts/bench-iq3-kernels.sh times ggml's quantize_iq3_s on the
// same shape.
func BenchmarkQuantizeIQ3(b *testing.B) {
	x := gaussian(1, benchN, 0.02)
	w := gaussian(2, benchN, 1)
	for i := range w {
		w[i] = w[i]*w[i] + 0.01
	}
	for _, typ := range []dtype.Type{dtype.IQ3_XXS, dtype.IQ3_S, dtype.TQ1_0, dtype.TQ2_0} {
		for _, weighted := range []bool{false, true} {
			name := typ.String() + "/x2"
			var ww []float32
			if weighted {
				name, ww = typ.String()+"/imatrix", w
			}
			b.Run(name, func(b *testing.B) {
				size, _ := dtype.RowSize(typ, benchN)
				dst := make([]byte, size)
				b.SetBytes(4 * benchN)
				for b.Loop() {
					if err := quantize.QuantizeRowWeighted(dst, x, ww, typ); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
