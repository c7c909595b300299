package quantize

// MLX mxfp4 quantization (mlx.core.quantize mode "mxfp4") and the lossless
// repack between MLX mxfp4 groups and GGUF MXFP4 blocks.
//
// MLX's CPU backend has no mxfp4 quantize kernel: mlx/ops.cpp fp_quantize
// evaluates its "fallback" graph of array ops (ml-explore/mlx @846d1762),
// every op in the input's dtype T (F32, F16 or BF16), each result rounded
// to T (the CPU computes a bfloat16/float16 op in float32 and rounds once):
//
//	s = max|w| / 6                      (over each group of 32)
//	k = s == 0 ? 0 : int(rint(log2(s)))  (log2 rounded to T before rint)
//	q = w / 2^k
//	code = argmin_j |q - lut[j]|         (first minimum wins)
//	scale byte = uint8(k + 127)
//
// with lut = {+0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, ..., -6} (E2M1) and
// codes packed eight to a uint32, LSB first. Dequantization is
// lut[code] * 2^(scale-127), which is exactly ggml's
// kvalues_mxfp4[code] * 2^(e-128): an MLX mxfp4 group and a GGUF MXFP4
// block hold the same values with the same code and exponent bytes, only
// the nibble order differs (MLX: element 2k and 2k+1 in byte k; GGUF:
// element j and j+16 in byte j). MXFP4FromMLX and MXFP4ToMLX convert
// between the two without touching a value.
//
// MLX's Metal kernel (fp_quantize in fp_quantized.h) computes in float32,
// rounds log2 half away from zero and keeps the sign of values that round
// to zero; it is not reproduced here.

import (
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// mlxFP4LUT is mlx/ops.cpp's E2M1 lookup table.
var mlxFP4LUT = [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, float32(math.Copysign(0, -1)), -0.5, -1, -1.5, -2, -3, -4, -6}

// MXFP4GroupSize is the group size of MLX mxfp4 and GGUF MXFP4.
const MXFP4GroupSize = 32

// MLXFP4QuantizeRow quantizes one row src (len a multiple of 32, every
// value representable in t) as mlx.core.quantize(w, mode="mxfp4") does on
// MLX's CPU for an array of dtype t (F32, F16 or BF16): packed receives
// len(src)/8 uint32 words, scales len(src)/32 E8M0 bytes. NaN or ±Inf in
// src is an error.
func MLXFP4QuantizeRow(packed []uint32, scales []byte, src []float32, t dtype.Type) error {
	if AffineScaleSize(t) == 0 {
		return fmt.Errorf("mlx mxfp4: unsupported input dtype %v (want BF16, F16 or F32)", t)
	}
	if len(src)%MXFP4GroupSize != 0 {
		return fmt.Errorf("mlx mxfp4: row length %d is not a multiple of %d", len(src), MXFP4GroupSize)
	}
	if len(packed) != len(src)/8 || len(scales) != len(src)/MXFP4GroupSize {
		return fmt.Errorf("mlx mxfp4: %d words and %d scales for a row of %d values, want %d and %d",
			len(packed), len(scales), len(src), len(src)/8, len(src)/MXFP4GroupSize)
	}
	if err := CheckFinite(src); err != nil {
		return fmt.Errorf("mlx mxfp4: %w", err)
	}
	r := func(v float32) float32 { return affineRoundTo(v, t) }
	var lut [16]float32
	for j, v := range mlxFP4LUT {
		lut[j] = r(v)
	}
	clear(packed)
	for g := range len(src) / MXFP4GroupSize {
		w := src[g*MXFP4GroupSize : (g+1)*MXFP4GroupSize]
		amax := float32(0)
		for _, x := range w {
			amax = max(amax, mlxAbs32(x))
		}
		s := r(amax / 6)
		k := float32(0)
		if s != 0 {
			k = r(mlxRint(r(log2f(s))))
		}
		p := r(float32(math.Ldexp(1, int(k)))) // std::pow(2.0f, k) is exact in float32
		for i, x := range w {
			q := r(x / p)
			best, bestErr := 0, mlxAbs32(r(q-lut[0]))
			for j := 1; j < 16; j++ {
				if e := mlxAbs32(r(q - lut[j])); e < bestErr {
					best, bestErr = j, e
				}
			}
			n := g*MXFP4GroupSize + i
			packed[n/8] |= uint32(best) << (4 * (n % 8))
		}
		// astype(k + 127, uint8): x86 converts through a 32-bit integer
		// and keeps the low byte.
		scales[g] = uint8(int32(r(k + 127)))
	}
	return nil
}

// MLXFP4DequantizeRow decodes one row of MLX mxfp4 (len(dst)/8 words,
// len(dst)/32 scale bytes) into dst: lut[code] * 2^(scale-127), as
// mlx.core.dequantize computes it (every value is exact in float32 and
// bfloat16; a scale byte of 255, E8M0's NaN, gives ±Inf or NaN as in MLX).
func MLXFP4DequantizeRow(dst []float32, packed []uint32, scales []byte) error {
	if len(dst)%MXFP4GroupSize != 0 || len(packed) != len(dst)/8 || len(scales) != len(dst)/MXFP4GroupSize {
		return fmt.Errorf("mlx mxfp4: %d words and %d scales for a row of %d values", len(packed), len(scales), len(dst))
	}
	for g, e := range scales {
		d := float32(math.Ldexp(1, int(e)-127))
		for i := g * MXFP4GroupSize; i < (g+1)*MXFP4GroupSize; i++ {
			dst[i] = mlxFP4LUT[packed[i/8]>>(4*(i%8))&15] * d
		}
	}
	return nil
}

// MXFP4FromMLX writes the GGUF MXFP4 blocks (17 bytes per 32 values) of
// one MLX mxfp4 row: packed holds the row's codes as little-endian uint32
// words (16 bytes per group), scales its E8M0 bytes. Values are unchanged;
// a scale of 255 (E8M0 NaN, which ggml rejects) is an error.
func MXFP4FromMLX(dst, packed, scales []byte) error {
	n := len(scales)
	if len(packed) != 16*n || len(dst) != 17*n {
		return fmt.Errorf("mxfp4 repack: %d code bytes and %d scales into %d block bytes", len(packed), n, len(dst))
	}
	for g, e := range scales {
		if e == 0xff {
			return fmt.Errorf("mxfp4 repack: group %d has the E8M0 NaN scale 0xff", g)
		}
		b := dst[17*g : 17*g+17]
		c := packed[16*g : 16*g+16]
		b[0] = e
		for j := range 8 {
			// elements 2j, 2j+1 (byte j) and 16+2j, 17+2j (byte 8+j)
			lo, hi := c[j], c[8+j]
			b[1+2*j] = lo&15 | hi<<4
			b[2+2*j] = lo>>4 | hi&0xf0
		}
	}
	return nil
}

// MXFP4ToMLX is the inverse of MXFP4FromMLX: it writes the little-endian
// uint32 code words (16 bytes per block) and E8M0 scale bytes of the MLX
// mxfp4 form of GGUF MXFP4 blocks src.
func MXFP4ToMLX(packed, scales, src []byte) error {
	n := len(src) / 17
	if len(src) != 17*n || len(packed) != 16*n || len(scales) != n {
		return fmt.Errorf("mxfp4 repack: %d block bytes into %d code bytes and %d scales", len(src), len(packed), len(scales))
	}
	for g := range n {
		b := src[17*g : 17*g+17]
		if b[0] == 0xff {
			return fmt.Errorf("mxfp4 repack: block %d has the E8M0 NaN exponent 0xff", g)
		}
		scales[g] = b[0]
		c := packed[16*g : 16*g+16]
		for j := range 8 {
			x, y := b[1+2*j], b[2+2*j] // elements 2j|16+2j and 2j+1|17+2j
			c[j] = x&15 | y<<4
			c[8+j] = x>>4 | y&0xf0
		}
	}
	return nil
}
