package quantize

import (
	"math"
	"testing"
)

func TestNearestInt(t *testing.T) {
	tests := []struct {
		in   float32
		want int32
	}{
		{0, 0}, {0.49999997, 0}, {0.5, 0}, {1.5, 2}, {2.5, 2}, {-0.5, 0}, {-1.5, -2}, {-2.5, -2},
		{3.7, 4}, {-3.7, -4}, {4194303, 4194303}, {-4194303, -4194303},
		// Beyond ggml's asserted range the magic trick gives these values
		// (computed independently with IEEE float32 arithmetic).
		{4194304, -4194304}, {-4194304, -4194304}, {5e6, -3791456}, {1e10, -2804999}, {-1e10, -2829575}, {1e30, 651978},
		{float32(math.Inf(1)), -4194304}, {float32(math.NaN()), 0},
	}
	for _, tc := range tests {
		if got := nearestInt(tc.in); got != tc.want {
			t.Errorf("nearestInt(%g) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestRoundf(t *testing.T) {
	tests := []struct {
		in   float32
		want int32
	}{{0.5, 1}, {-0.5, -1}, {1.5, 2}, {2.5, 3}, {-2.5, -3}, {0.49999997, 0}, {-0.49999997, 0}, {126.5, 127}, {-127, -127}, {8388607.5, 8388608}}
	for _, tc := range tests {
		if got := roundf(tc.in); got != tc.want {
			t.Errorf("roundf(%g) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// ggmlFP32ToFP16 restates ggml_compute_fp32_to_fp16 (ggml-impl.h): scale the
// magnitude so the float adder rounds it at half precision, then read the
// half's exponent and mantissa from the sum's bits.
func ggmlFP32ToFP16(f float32) uint16 {
	base := (abs32(f) * 0x1.0p+112) * 0x1.0p-110
	w := math.Float32bits(f)
	shl1 := w + w
	sign := w & 0x80000000
	bias := shl1 & 0xFF000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits(bias>>1+0x07800000) + base
	bits := math.Float32bits(base)
	nonsign := (bits>>13)&0x7C00 + bits&0x0FFF
	if shl1 > 0xFF000000 {
		nonsign = 0x7E00
	}
	return uint16(sign>>16 | nonsign)
}

// FP32ToFP16 agrees with ggml's conversion on a sweep of float32 bit patterns
// and on every half-way point between adjacent halves.
func TestFP32ToFP16MatchesGGML(t *testing.T) {
	check := func(b uint32) {
		f := math.Float32frombits(b)
		if got, want := FP32ToFP16(f), ggmlFP32ToFP16(f); got != want {
			t.Fatalf("FP32ToFP16(%#08x = %g) = %#04x, ggml gives %#04x", b, f, got, want)
		}
	}
	for b := uint64(0); b < 1<<32; b += 4099 {
		check(uint32(b))
	}
	for h := range uint32(0x7c00) {
		lo := float64(FP16ToFP32(uint16(h)))
		hi := float64(FP16ToFP32(uint16(h + 1)))
		mid := math.Float32bits(float32((lo + hi) / 2))
		for _, b := range []uint32{mid - 1, mid, mid + 1} {
			check(b)
			check(b | 0x80000000)
		}
	}
	for _, b := range []uint32{0x7f800000, 0x7f800001, 0x7fc00000, 0x7fffffff, 0xff800000, 0xffc00001, 0x477ff000, 0x477fefff, 0x477fe000} {
		check(b)
	}
}
