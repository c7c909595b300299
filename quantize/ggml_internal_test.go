package quantize

import (
	"encoding/hex"
	"math"
	"strings"
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

func TestRoundfAwayFromZero(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want int32
	}{{2147483520, 2147483520}, {-2147483520, -2147483520}, {-7.5, -8}, {7.49999, 7}, {16.5, 17}, {8388607.5, 8388608}} {
		if got := roundf(tc.in); got != tc.want {
			t.Errorf("roundf(%g) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// A block of denormals: d = amax/127 (or /8, /16) is a denormal, so
// id = 1/d is infinite and x*id is ±Inf or NaN; ggml's x86 build converts
// those to int 0x80000000. Expected bytes from quantize_row_*_ref of the
// reference commit compiled for x86-64.
func TestDenormalBlockAsX86(t *testing.T) {
	x := make([]float32, 32)
	for i := range x {
		x[i] = math.Float32frombits(uint32(0x123 * (i % 7)))
		if i%2 == 1 {
			x[i] = -x[i]
		}
	}
	for _, tc := range []struct {
		f    func([]byte, []float32)
		size int
		want string // hex
	}{
		{QuantizeQ4_0, 18, "0080" + zeros(16)},
		{QuantizeQ4_1, 20, "00000080" + zeros(16)},
		{QuantizeQ5_0, 22, "0080" + zeros(20)},
		{QuantizeQ5_1, 24, "00000080" + zeros(20)},
		{QuantizeQ8_0, 34, zeros(34)},
		{QuantizeQ8_1, 36, zeros(36)},
	} {
		got := make([]byte, tc.size)
		tc.f(got, x)
		if h := hex.EncodeToString(got); h != tc.want {
			t.Errorf("%d-byte block = %s, want %s", tc.size, h, tc.want)
		}
	}
}

func zeros(n int) string { return strings.Repeat("00", n) }

// absMax and minMax (integer keys) pick the same bits as ggml's float loops,
// signed zeros and ties included.
func TestAbsMaxMinMaxAsC(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	blocks := [][]float32{
		{0, negZero}, {negZero, 0}, {negZero}, {1, -1}, {-1, 1}, {-2, 2, -3, 3},
		{-math.MaxFloat32, math.MaxFloat32}, {math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32},
	}
	r := uint32(1)
	for range 200 {
		var b []float32
		for range 32 {
			r = r*1664525 + 1013904223
			b = append(b, float32(int32(r>>24)%5-2)*0.5) // many ties
		}
		blocks = append(blocks, b)
	}
	for _, vals := range blocks {
		var x [qk]float32
		copy(x[:], vals)
		var amax, max float32
		mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			if amax < abs32(v) {
				amax, max = abs32(v), v
			}
			if v < mn {
				mn = v
			}
			if v > mx {
				mx = v
			}
		}
		if got := absMax(&x); math.Float32bits(got) != math.Float32bits(max) {
			t.Errorf("absMax(%v) = %g, want %g", vals, got, max)
		}
		gmn, gmx := minMax(&x)
		if math.Float32bits(gmn) != math.Float32bits(mn) || math.Float32bits(gmx) != math.Float32bits(mx) {
			t.Errorf("minMax(%v) = %g, %g, want %g, %g", vals, gmn, gmx, mn, mx)
		}
	}
}
