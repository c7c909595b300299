package quantize

import "math"

// FP32ToFP16 converts to IEEE half precision with round-to-nearest-even, as
// ggml's GGML_FP32_TO_FP16 (ggml-impl.h ggml_compute_fp32_to_fp16, the
// portable code ggml-quants.c uses) does: overflow goes to ±Inf and every NaN
// becomes sign|0x7E00 (the payload is dropped).
func FP32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// subnormal half (or zero)
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(h)
}

// fp16Table holds every half's float32 value (256 KiB), as ggml's
// ggml_table_f32_f16: a lookup is several times faster than the bit
// manipulation, which matters when converting F16 models.
var fp16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = fp16ToFP32Bits(uint16(i))
	}
	return &t
}()

// FP16ToFP32 converts an IEEE half to float32 exactly.
func FP16ToFP32(h uint16) float32 { return fp16Table[h] }

// FP16RowToFP32 converts len(dst) little-endian halves from src.
func FP16RowToFP32(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	t := fp16Table
	for i := range dst {
		dst[i] = t[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

func fp16ToFP32Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalize
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		man &= 0x3ff
		return math.Float32frombits(sign | e<<23 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// FP32ToBF16 converts to bfloat16 with round-to-nearest-even and NaN forced
// quiet, as ggml's ggml_compute_fp32_to_bf16 does.
func FP32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + ((u >> 16) & 1))) >> 16)
}

// BF16ToFP32 converts bfloat16 to float32 exactly.
func BF16ToFP32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
