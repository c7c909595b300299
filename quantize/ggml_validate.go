package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// ErrInvalidData is wrapped by ValidateRow's errors, and by QuantizeRow's
// when a block's fp16 scale overflowed (input values too large for the
// type). llama-quantize stops with "quantized data validation failed" in the
// same cases.
var ErrInvalidData = errors.New("quantized data validation failed")

// f16Fields gives, per block type, the byte offsets of the fp16 scale fields
// in one block that ggml_validate_row_data checks.
var f16Fields = map[dtype.Type][]int{
	dtype.Q4_0: {0}, dtype.Q4_1: {0, 2}, dtype.Q5_0: {0}, dtype.Q5_1: {0, 2},
	dtype.Q8_0: {0}, dtype.Q8_1: {0}, // Q8_1's s = d*sum(q) may overflow; ggml does not check Q8_1
	dtype.Q2_K: {80, 82}, dtype.Q3_K: {108}, dtype.Q4_K: {0, 2}, dtype.Q5_K: {0, 2}, dtype.Q6_K: {208},
	dtype.IQ4_NL: {0}, dtype.IQ4_XS: {0},
	dtype.IQ2_XXS: {0}, dtype.IQ2_XS: {0}, dtype.IQ2_S: {0}, dtype.IQ1_S: {0},
	dtype.IQ3_XXS: {0}, dtype.IQ3_S: {0}, dtype.TQ1_0: {52}, dtype.TQ2_0: {64},
}

func f16Problem(h uint16) string {
	if h&0x7c00 != 0x7c00 {
		return ""
	}
	if h&0x3ff == 0 {
		return "inf"
	}
	return "nan"
}

// ValidateRow reports, like ggml_validate_row_data, whether data (a whole
// number of blocks of type t) holds a NaN or infinite scale (block types) or
// value (F32, F16, BF16, F64). The error names the block or element and wraps
// ErrInvalidData. Types without such fields (integers, MXFP4 apart from its
// reserved 0xFF exponent) always pass.
func ValidateRow(data []byte, t dtype.Type) error {
	bs := int(t.TypeSize())
	if bs == 0 || len(data)%bs != 0 {
		return fmt.Errorf("%w: %d bytes is not a whole number of %v blocks", ErrInvalidData, len(data), t)
	}
	le := binary.LittleEndian
	if offs, ok := f16Fields[t]; ok {
		for b := 0; b < len(data); b += bs {
			for _, o := range offs {
				if p := f16Problem(le.Uint16(data[b+o:])); p != "" {
					return fmt.Errorf("%w: found %s scale in %v block %d", ErrInvalidData, p, t, b/bs)
				}
			}
		}
		return nil
	}
	bad := func(i int, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: found %v in %v element/block %d", ErrInvalidData, v, t, i)
		}
		return nil
	}
	switch t {
	case dtype.Q8_K:
		for b := 0; b < len(data); b += bs {
			if err := bad(b/bs, float64(math.Float32frombits(le.Uint32(data[b:])))); err != nil {
				return err
			}
		}
	case dtype.IQ1_M: // the fp16 scale is spread over the top nibbles of the four scale words
		for b := 0; b < len(data); b += bs {
			sc := data[b+48 : b+56]
			h := le.Uint16(sc[0:])>>12 | le.Uint16(sc[2:])>>8&0x00f0 | le.Uint16(sc[4:])>>4&0x0f00 | le.Uint16(sc[6:])&0xf000
			if p := f16Problem(h); p != "" {
				return fmt.Errorf("%w: found %s scale in IQ1_M block %d", ErrInvalidData, p, b/bs)
			}
		}
	case dtype.MXFP4:
		for b := 0; b < len(data); b += bs {
			if data[b] == 0xff {
				return fmt.Errorf("%w: found invalid exponent 0xff in MXFP4 block %d", ErrInvalidData, b/bs)
			}
		}
	case dtype.F32:
		for i := 0; i < len(data); i += 4 {
			if le.Uint32(data[i:])&0x7f800000 == 0x7f800000 {
				return bad(i/4, float64(math.Float32frombits(le.Uint32(data[i:]))))
			}
		}
	case dtype.F64:
		for i := 0; i < len(data); i += 8 {
			if err := bad(i/8, math.Float64frombits(le.Uint64(data[i:]))); err != nil {
				return err
			}
		}
	case dtype.F16:
		for i := 0; i < len(data); i += 2 {
			if p := f16Problem(le.Uint16(data[i:])); p != "" {
				return fmt.Errorf("%w: found %s in F16 element %d", ErrInvalidData, p, i/2)
			}
		}
	case dtype.BF16:
		for i := 0; i < len(data); i += 2 {
			if h := le.Uint16(data[i:]) & 0x7fff; h >= 0x7f80 {
				return bad(i/2, float64(BF16ToFP32(h)))
			}
		}
	}
	return nil
}
