//go:build amd64 && !purego

package perplexity

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/quantize"
)

// TestDequantAffineF16SIMD checks the F16C dequantization of MLX affine
// rows (F16 scales) against the portable loop bit for bit, for 4- and
// 8-bit codes, with scales and biases over the whole float16 range:
// subnormal results, overflow to infinity, signed zeros.
func TestDequantAffineF16SIMD(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(5, 6))
	f16 := func() float32 {
		for {
			h := uint16(rng.Uint32())
			if h&0x7c00 != 0x7c00 { // finite
				return quantize.FP16ToFP32(h)
			}
		}
	}
	for _, tc := range []struct{ bits, groupSize, cols int }{{4, 64, 256}, {4, 32, 128}, {8, 64, 192}, {4, 8, 64}} {
		rows := 5
		ng := rows * tc.cols / tc.groupSize
		a := &affineWeight{bits: tc.bits, groupSize: tc.groupSize, scales: make([]float32, ng), biases: make([]float32, ng), round: roundF16, f16: true}
		for g := range a.scales {
			a.scales[g], a.biases[g] = f16(), f16()
			switch g % 7 {
			case 0: // typical magnitudes
				a.scales[g], a.biases[g] = float32(rng.NormFloat64()*0.01), float32(rng.NormFloat64()*0.1)
				a.scales[g], a.biases[g] = roundF16(a.scales[g]), roundF16(a.biases[g])
			case 1:
				a.biases[g] = float32(math.Copysign(0, -1))
			}
		}
		src := make([]byte, rows*tc.cols*tc.bits/8)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		rb := tc.cols * tc.bits / 8
		for r := 0; r < rows; r++ {
			got := make([]float32, tc.cols)
			want := make([]float32, tc.cols)
			dequantAffineRow(got, src[r*rb:(r+1)*rb], a, r)
			useSIMD = false
			dequantAffineRow(want, src[r*rb:(r+1)*rb], a, r)
			useSIMD = true
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%+v row %d element %d: SIMD %v (%#x), portable %v (%#x)", tc, r, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}
