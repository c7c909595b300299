package quantize

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
)

// ggufRefDequant dequantizes one GGUF block of type t the way ggml's
// dequantize_row_* does (float64 here, which is exact for these products),
// written independently of the repack code from ggml-quants.c.
func ggufRefDequant(blk []byte, t dtype.Type) [32]float64 {
	var out [32]float64
	d := float64(FP16ToFP32(binary.LittleEndian.Uint16(blk)))
	switch t {
	case dtype.Q4_0:
		for j := 0; j < 16; j++ {
			out[j] = d * float64(int(blk[2+j]&0xf)-8)
			out[j+16] = d * float64(int(blk[2+j]>>4)-8)
		}
	case dtype.Q4_1:
		m := float64(FP16ToFP32(binary.LittleEndian.Uint16(blk[2:])))
		for j := 0; j < 16; j++ {
			out[j] = d*float64(blk[4+j]&0xf) + m
			out[j+16] = d*float64(blk[4+j]>>4) + m
		}
	case dtype.Q5_0, dtype.Q5_1:
		off, m := 2, 0.0
		if t == dtype.Q5_1 {
			m = float64(FP16ToFP32(binary.LittleEndian.Uint16(blk[2:])))
			off = 4
		}
		qh := binary.LittleEndian.Uint32(blk[off:])
		qs := blk[off+4:]
		for j := 0; j < 16; j++ {
			x0 := int(qs[j]&0xf) | int((qh>>j)<<4&0x10)
			x1 := int(qs[j]>>4) | int((qh>>(j+12))&0x10)
			if t == dtype.Q5_0 {
				out[j], out[j+16] = d*float64(x0-16), d*float64(x1-16)
			} else {
				out[j], out[j+16] = d*float64(x0)+m, d*float64(x1)+m
			}
		}
	case dtype.Q8_0:
		for j := 0; j < 32; j++ {
			out[j] = d * float64(int8(blk[2+j]))
		}
	}
	return out
}

// randomBlocks makes nb random blocks of type t with finite F16 d and m.
func randomBlocks(rng *rand.Rand, t dtype.Type, nb, blockSize int) []byte {
	b := make([]byte, nb*blockSize)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for k := 0; k < nb; k++ {
		blk := b[k*blockSize:]
		binary.LittleEndian.PutUint16(blk, FP32ToFP16(float32(rng.NormFloat64()*0.01)))
		if t == dtype.Q4_1 || t == dtype.Q5_1 {
			binary.LittleEndian.PutUint16(blk[2:], FP32ToFP16(float32(rng.NormFloat64()*0.1)))
		}
	}
	return b
}

// TestRepackGGUFAffine: GGUF → MLX affine gives the MLX parameters whose
// exact value q*scale+bias equals ggml's dequantization, and MLX affine →
// GGUF restores the original bytes.
func TestRepackGGUFAffine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const cols = 256
	for _, tt := range []struct {
		t    dtype.Type
		bits int
	}{{dtype.Q4_0, 4}, {dtype.Q4_1, 4}, {dtype.Q5_0, 5}, {dtype.Q5_1, 5}, {dtype.Q8_0, 8}} {
		t.Run(tt.t.String(), func(t *testing.T) {
			bs := int(tt.t.TypeSize())
			src := randomBlocks(rng, tt.t, cols/32, bs)
			packed := make([]uint32, AffinePackedWords(cols, tt.bits))
			scales, biases := make([]byte, cols/32*2), make([]byte, cols/32*2)
			p, err := RepackGGUFToAffine(packed, scales, biases, src, tt.t, cols)
			if err != nil {
				t.Fatal(err)
			}
			if p.Bits != tt.bits || p.GroupSize != 32 {
				t.Fatalf("params %+v", p)
			}
			for b := 0; b < cols/32; b++ {
				want := ggufRefDequant(src[b*bs:(b+1)*bs], tt.t)
				s, bias := float64(affineGetScale(scales, b, dtype.F16)), float64(affineGetScale(biases, b, dtype.F16))
				for j := 0; j < 32; j++ {
					q := float64(affineCode(packed, b*32+j, uint(tt.bits)))
					if got := q*s + bias; got != want[j] {
						t.Fatalf("block %d elem %d: q*s+b = %g, ggml %g", b, j, got, want[j])
					}
				}
			}
			back := make([]byte, len(src))
			ok, err := RepackAffineToGGUF(back, tt.t, packed, scales, biases, p, dtype.F16, cols)
			if err != nil || !ok {
				t.Fatalf("RepackAffineToGGUF = %v, %v", ok, err)
			}
			if i := firstDiff(back, src); i >= 0 {
				t.Fatalf("round trip differs at byte %d", i)
			}
		})
	}
}

// TestRepackAffineToGGUF covers the exactness conditions of the reverse
// direction on quantized random rows.
func TestRepackAffineToGGUF(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const cols = 256
	src := make([]float32, cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 0.02)
	}
	quant := func(bits, gs int, st dtype.Type) (AffineParams, []uint32, []byte, []byte) {
		p := AffineParams{Bits: bits, GroupSize: gs}
		pk, sc, bi := affineRow(t, src, p, st)
		return p, pk, sc, bi
	}
	// Q4_1 from 4-bit affine of any group size with F16 scales is exact,
	// and the GGUF dequantization equals the exact affine value.
	for _, gs := range []int{32, 64, 128} {
		p, pk, sc, bi := quant(4, gs, dtype.F16)
		dst := make([]byte, cols/32*20)
		ok, err := RepackAffineToGGUF(dst, dtype.Q4_1, pk, sc, bi, p, dtype.F16, cols)
		if err != nil || !ok {
			t.Fatalf("g%d: Q4_1 repack = %v, %v", gs, ok, err)
		}
		for b := 0; b < cols/32; b++ {
			got := ggufRefDequant(dst[b*20:(b+1)*20], dtype.Q4_1)
			g := b * 32 / gs
			s, bias := float64(affineGetScale(sc, g, dtype.F16)), float64(affineGetScale(bi, g, dtype.F16))
			for j := 0; j < 32; j++ {
				if want := float64(affineCode(pk, b*32+j, 4))*s + bias; got[j] != want {
					t.Fatalf("g%d block %d elem %d: %g != %g", gs, b, j, got[j], want)
				}
			}
		}
	}
	// Q5_1 from 5-bit, F32 scales that happen to be F16-exact.
	{
		p, pk, sc, bi := quant(5, 32, dtype.F16)
		sc32, bi32 := make([]byte, 2*len(sc)), make([]byte, 2*len(bi))
		for g := 0; g < len(sc)/2; g++ {
			affinePutScale(sc32, g, affineGetScale(sc, g, dtype.F16), dtype.F32)
			affinePutScale(bi32, g, affineGetScale(bi, g, dtype.F16), dtype.F32)
		}
		ok, err := RepackAffineToGGUF(make([]byte, cols/32*24), dtype.Q5_1, pk, sc32, bi32, p, dtype.F32, cols)
		if err != nil || !ok {
			t.Fatalf("Q5_1 from F32 scales = %v, %v", ok, err)
		}
		// the same with a scale off the F16 grid is not exact
		affinePutScale(sc32, 3, math.Nextafter32(affineGetScale(sc32, 3, dtype.F32), 1), dtype.F32)
		ok, err = RepackAffineToGGUF(make([]byte, cols/32*24), dtype.Q5_1, pk, sc32, bi32, p, dtype.F32, cols)
		if err != nil || ok {
			t.Fatalf("Q5_1 with a non-F16 scale = %v, %v; want not exact", ok, err)
		}
	}
	notExact := []struct {
		name string
		t    dtype.Type
		bits int
		st   dtype.Type
	}{
		{"Q4_0 needs bias -8*scale", dtype.Q4_0, 4, dtype.F16},
		{"Q8_0 needs bias -128*scale", dtype.Q8_0, 8, dtype.F16},
		{"bits mismatch", dtype.Q4_1, 8, dtype.F16},
		{"bf16 scales out of F16 range", dtype.Q4_1, 4, dtype.BF16},
	}
	for _, tc := range notExact {
		p, pk, sc, bi := quant(tc.bits, 32, tc.st)
		if tc.st == dtype.BF16 {
			binary.LittleEndian.PutUint16(sc, 0x0b80) // ~5e-32, below F16's range
		}
		ok, err := RepackAffineToGGUF(make([]byte, cols/32*int(tc.t.TypeSize())), tc.t, pk, sc, bi, p, tc.st, cols)
		if err != nil || ok {
			t.Errorf("%s: got %v, %v; want not exact", tc.name, ok, err)
		}
	}
	// Q4_0-shaped affine data (bias == -8*scale) repacks.
	{
		p, pk, sc, bi := quant(4, 64, dtype.F16)
		for g := 0; g < len(sc)/2; g++ {
			affinePutScale(bi, g, -8*affineGetScale(sc, g, dtype.F16), dtype.F16)
		}
		if ok, err := RepackAffineToGGUF(make([]byte, cols/32*18), dtype.Q4_0, pk, sc, bi, p, dtype.F16, cols); err != nil || !ok {
			t.Errorf("Q4_0-shaped affine: %v, %v", ok, err)
		}
	}
}

func TestRepackErrors(t *testing.T) {
	p := AffineParams{Bits: 4, GroupSize: 32}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"gguf type", func() error {
			_, err := RepackGGUFToAffine(make([]uint32, 4), make([]byte, 2), make([]byte, 2), make([]byte, 144), dtype.Q4_K, 32)
			return err
		}(), "Q4_K has no exact MLX affine form"},
		{"short src", func() error {
			_, err := RepackGGUFToAffine(make([]uint32, 4), make([]byte, 2), make([]byte, 2), make([]byte, 17), dtype.Q4_0, 32)
			return err
		}(), "needs 18 bytes, got 17"},
		{"cols", func() error {
			_, err := RepackGGUFToAffine(make([]uint32, 4), make([]byte, 2), make([]byte, 2), make([]byte, 18), dtype.Q4_0, 33)
			return err
		}(), "not a multiple of 32"},
		{"short dst", func() error {
			_, err := RepackAffineToGGUF(make([]byte, 17), dtype.Q4_0, make([]uint32, 4), make([]byte, 2), make([]byte, 2), p, dtype.F16, 32)
			return err
		}(), "needs 18 bytes, got 17"},
		{"bad params", func() error {
			_, err := RepackAffineToGGUF(make([]byte, 18), dtype.Q4_0, make([]uint32, 4), make([]byte, 2), make([]byte, 2), AffineParams{Bits: 4, GroupSize: 48}, dtype.F16, 32)
			return err
		}(), "unsupported group size 48"},
	}
	for _, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}
