package quantize

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
)

// The grids ggml builds at init: sizes, every grid point mapped to itself,
// every other point to a non-empty list of grid points at no more than
// nwant distinct distances, sorted by (distance, index).
func TestIQ3GridTables(t *testing.T) {
	for _, tc := range []struct{ size, nwant, offGrid, listed int }{
		{256, 2, 3840, 18985}, {512, 3, 3584, 24733},
	} {
		g := iq3Tables(tc.size)
		off, listed := 0, 0
		for u, v := range g.kmap {
			if v >= 0 {
				p := g.points[v]
				if int((p[0]-1)/2)|int((p[1]-1)/2)<<3|int((p[2]-1)/2)<<6|int((p[3]-1)/2)<<9 != u {
					t.Fatalf("grid %d: kmap[%d] = %d is point %v", tc.size, u, v, p)
				}
				continue
			}
			off++
			o := int(-v - 1)
			n := int(g.neighbours[o])
			listed += n
			dist := func(j uint16) int {
				d := 0
				for i := range 4 {
					e := int(g.points[j][i]) - (2*(u>>(3*i)&7) + 1)
					d += e * e
				}
				return d
			}
			distinct := 1
			for k := 1; k < n; k++ {
				a, b := g.neighbours[o+k], g.neighbours[o+1+k]
				switch da, db := dist(a), dist(b); {
				case db < da || db == da && b <= a:
					t.Fatalf("grid %d point %d: list not in (distance, index) order", tc.size, u)
				case db > da:
					distinct++
				}
			}
			if n == 0 || distinct > tc.nwant {
				t.Fatalf("grid %d point %d: %d neighbours at %d distances", tc.size, u, n, distinct)
			}
		}
		// Counts of iq3xs_init_impl's num_not_in_map and num_neighbors.
		if off != tc.offGrid || listed != tc.listed {
			t.Errorf("grid %d: %d off-grid points, %d listed; want %d, %d", tc.size, off, listed, tc.offGrid, tc.listed)
		}
	}
}

// iq3Nearest8 (AVX2) picks the same neighbour as the portable loop, for
// every list of both grids, on ordinary values, ties, zero and negative
// weights, NaN and overflowing errors.
func TestIQ3NearestSIMDMatchesGo(t *testing.T) {
	if !simdAvailable {
		t.Skip("no AVX2 kernels in this build")
	}
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
	if !simdAvailable {
		t.Skip("no AVX2 kernels in this build")
	}
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

// A row whose search finds no grid point with a finite error (ggml aborts
// on its GGML_ASSERT; here importance weights near the float32 maximum make
// every error infinite) is refused, not written.
func TestIQ3SearchFailureIsAnError(t *testing.T) {
	x := make([]float32, 256)
	w := make([]float32, 256)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
		w[i] = 3e38
	}
	for _, typ := range []dtype.Type{dtype.IQ3_XXS, dtype.IQ3_S} {
		dst := make([]byte, typ.TypeSize())
		err := QuantizeRowWeighted(dst, x, w, typ)
		if !errors.Is(err, ErrInvalidData) {
			t.Errorf("%v: error %v, want ErrInvalidData", typ, err)
		}
		if err := QuantizeRowWeighted(dst, x, nil, typ); err != nil {
			t.Errorf("%v without weights: %v", typ, err)
		}
	}
}
