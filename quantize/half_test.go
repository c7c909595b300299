package quantize

import (
	"math"
	"testing"
)

func TestFP16RoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := FP16ToFP32(h)
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := FP32ToFP16(f); got != h {
			t.Fatalf("fp16 %#04x -> %g -> %#04x", h, f, got)
		}
	}
}

func TestFP16Rounding(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{65504, 0x7bff},
		{65520, 0x7c00},                       // rounds up to Inf
		{1 + 1.0/2048, 0x3c00},                // tie -> even (down)
		{1 + 3.0/2048, 0x3c02},                // tie -> even (up)
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000}, // tie to even -> 0
		{float32(math.Ldexp(3, -26)), 0x0001},
		{-2, 0xc000},
	}
	for _, tc := range tests {
		if got := FP32ToFP16(tc.in); got != tc.want {
			t.Errorf("FP32ToFP16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80},
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7fc00001, 0x7fc0},
		{0x7f800001, 0x7fc0}, // signalling NaN forced quiet
	}
	for _, tc := range tests {
		if got := FP32ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("FP32ToBF16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func TestFP16Table(t *testing.T) {
	src := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		src[2*i], src[2*i+1] = byte(i), byte(i>>8)
	}
	dst := make([]float32, 1<<16)
	FP16RowToFP32(dst, src)
	for i := 0; i < 1<<16; i++ {
		want := fp16ToFP32Bits(uint16(i))
		if math.Float32bits(FP16ToFP32(uint16(i))) != math.Float32bits(want) || math.Float32bits(dst[i]) != math.Float32bits(want) {
			t.Fatalf("half %#04x: table %v, row %v, want %v", i, FP16ToFP32(uint16(i)), dst[i], want)
		}
	}
}
