package quantize

import (
	"errors"
	"math"
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
