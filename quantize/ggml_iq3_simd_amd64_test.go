//go:build amd64 && !purego

package quantize

// The comparisons of the amd64 kernels with their portable definitions.
// They exist where the kernels are built; requireSIMD fails (rather than
// skips) on an amd64 CPU without AVX2/FMA, and turns the kernels on even
// under QUANTBRIDGE_PUREGO.

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// requireSIMD turns on the SIMD kernels for the test, failing when the CPU
// lacks the instructions they need.
func requireSIMD(t *testing.T) {
	t.Helper()
	if !simdAvailable {
		t.Fatal("this amd64 CPU lacks AVX2/FMA, which the kernels under test need")
	}
	old := useSIMD
	useSIMD = true
	t.Cleanup(func() { useSIMD = old })
}

// iq3Nearest8 (AVX2) picks the same neighbour as the portable loop, for
// every list of both grids, on ordinary values, ties, zero and negative
// weights, NaN and overflowing errors.
func TestIQ3NearestSIMDMatchesGo(t *testing.T) {
	requireSIMD(t)
	defer func(v bool) { useSIMD = v }(useSIMD)
	r := rand.New(rand.NewPCG(3, 3))
	specials := []float32{0, float32(math.Inf(1)), float32(math.NaN()), 1e30, -1}
	checked := 0
	for _, size := range []int{256, 512} {
		g := iq3Tables(size)
		for u, v := range g.kmap {
			if v >= 0 {
				continue
			}
			off := int(-v - 1)
			for trial := range 4 {
				var x, w [4]float32
				var sq [8]float32
				scale := float32(0.5 + r.Float64())
				for i := range 4 {
					x[i] = float32(2*(u>>(3*i)&7)+1) * scale * float32(0.8+0.4*r.Float64())
					w[i] = float32(r.Float64())
				}
				switch trial {
				case 1: // ties: equal weights, points halfway
					for i := range 4 {
						x[i] = float32(2*(u>>(3*i)&7)) * scale
						w[i] = 1
					}
				case 2: // a special weight or value
					s := specials[r.IntN(len(specials))]
					if r.IntN(2) == 0 {
						w[r.IntN(4)] = s
					} else {
						x[r.IntN(4)] = s
					}
				case 3:
					scale = 1e20 // errors overflow to +Inf: no neighbour
				}
				iq3ScaledLevels(&sq, scale)
				useSIMD = false
				want := g.nearest(off, &x, &w, &sq)
				useSIMD = true
				got := g.nearest(off, &x, &w, &sq)
				if got != want {
					t.Fatalf("grid %d point %d x %v w %v scale %g: SIMD %d, Go %d", size, u, x, w, scale, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d lists compared", checked)
}

// The IQ3 quantizers give the same bytes with and without the AVX2 kernel.
func TestIQ3SIMDMatchesPureGo(t *testing.T) {
	requireSIMD(t)
	defer func(v bool) { useSIMD = v }(useSIMD)
	r := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 16*256)
	w := make([]float32, len(x))
	for i := range x {
		x[i] = float32(r.NormFloat64()) * 0.02
		w[i] = float32(r.ExpFloat64())
	}
	for _, q := range []func([]byte, []float32, []float32){QuantizeIQ3XXS, QuantizeIQ3S} {
		for _, ww := range [][]float32{nil, w} {
			a := make([]byte, 16*iq3sBlock)
			b := make([]byte, 16*iq3sBlock)
			useSIMD = false
			q(a, x, ww)
			useSIMD = true
			q(b, x, ww)
			if !bytes.Equal(a, b) {
				t.Errorf("SIMD and portable outputs differ (weights %v)", ww != nil)
			}
		}
	}
}
