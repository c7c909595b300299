package quantize

import (
	"math"
	"math/rand/v2"
	"testing"
)

// iq4IndexSearch is best_index_int8 as ggml writes it (binary search); the
// tests check iq4Index against it.
func iq4IndexSearch(x float32) uint8 {
	v := &kvaluesIQ4NL
	if x <= float32(v[0]) {
		return 0
	}
	if x >= float32(v[15]) {
		return 15
	}
	ml, mu := 0, 15
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(v[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(v[mu-1]) < float32(v[mu])-x {
		return uint8(mu - 1)
	}
	return uint8(mu)
}

// iq4Index (table lookup) agrees with ggml's binary search: on the 64
// floats either side of every integer and half-integer in range (the
// table's and the ties' boundaries), the extremes, non-finite values and
// a million random ones.
func TestIQ4IndexMatchesSearch(t *testing.T) {
	check := func(x float32) {
		if got, want := iq4Index(x), iq4IndexSearch(x); got != want {
			t.Fatalf("iq4Index(%v [%#x]) = %d, best_index_int8 gives %d", x, math.Float32bits(x), got, want)
		}
	}
	for _, x := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 0, float32(math.Copysign(0, -1)),
		-127, 113, -200, 200, 1e30, -1e30, math.SmallestNonzeroFloat32} {
		check(x)
	}
	for f := -130; f <= 116; f++ {
		for _, c := range []float32{float32(f), float32(f) + 0.5} {
			x := c
			for range 64 {
				check(x)
				x = math.Nextafter32(x, 1e9)
			}
			x = c
			for range 64 {
				check(x)
				x = math.Nextafter32(x, -1e9)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		check(float32(r.NormFloat64() * 60))
	}
	// -10 and 1 split at -4.5, an exact tie that goes to the upper value.
	if iq4Index(-4.5) != 8 || iq4Index(-4.5000005) != 7 || iq4Index(0) != 8 {
		t.Errorf("iq4Index(-4.5, -4.5000005, 0) = %d, %d, %d; want 8, 7, 8", iq4Index(-4.5), iq4Index(-4.5000005), iq4Index(0))
	}
}
