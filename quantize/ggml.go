package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// ErrNonFinite is wrapped by the error QuantizeRow returns for a row holding
// a NaN or an infinity (ggml would write garbage or fail its row validation).
var ErrNonFinite = errors.New("non-finite value")

type (
	quantFunc   func(dst []byte, src []float32)
	dequantFunc func(dst []float32, src []byte)
)

var quantizers = map[dtype.Type]quantFunc{
	dtype.Q4_0: QuantizeQ4_0, dtype.Q4_1: QuantizeQ4_1,
	dtype.Q5_0: QuantizeQ5_0, dtype.Q5_1: QuantizeQ5_1,
	dtype.Q8_0: QuantizeQ8_0, dtype.Q8_1: QuantizeQ8_1,
	dtype.Q2_K: QuantizeQ2K, dtype.Q3_K: QuantizeQ3K, dtype.Q4_K: QuantizeQ4K,
	dtype.Q5_K: QuantizeQ5K, dtype.Q6_K: QuantizeQ6K, dtype.Q8_K: QuantizeQ8K,
}

var dequantizers = map[dtype.Type]dequantFunc{
	dtype.Q4_0: DequantizeQ4_0, dtype.Q4_1: DequantizeQ4_1,
	dtype.Q5_0: DequantizeQ5_0, dtype.Q5_1: DequantizeQ5_1,
	dtype.Q8_0: DequantizeQ8_0, dtype.Q8_1: DequantizeQ8_1,
	dtype.Q2_K: DequantizeQ2K, dtype.Q3_K: DequantizeQ3K, dtype.Q4_K: DequantizeQ4K,
	dtype.Q5_K: DequantizeQ5K, dtype.Q6_K: DequantizeQ6K, dtype.Q8_K: DequantizeQ8K,
	dtype.IQ4_NL: DequantizeIQ4NL, dtype.IQ4_XS: DequantizeIQ4XS, dtype.MXFP4: DequantizeMXFP4,
}

// fromPlain lists the plain element types FromFloat32 writes.
func fromPlain(t dtype.Type) bool {
	switch t {
	case dtype.F32, dtype.F16, dtype.BF16, dtype.F64,
		dtype.I8, dtype.I16, dtype.I32, dtype.I64,
		dtype.U8, dtype.U16, dtype.U32, dtype.U64:
		return true
	}
	return false
}

// toPlain lists the plain element types ToFloat32 reads.
func toPlain(t dtype.Type) bool {
	return fromPlain(t) || t == dtype.F8_E4M3 || t == dtype.F8_E5M2 || t == dtype.Bool
}

// CanQuantize reports whether QuantizeRow and FromFloat32 can encode t: the
// block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K and the
// plain types F32, F16, BF16, F64, I8..I64, U8..U64, and the weighted
// (IQ, TQ) types that run without an importance matrix.
func CanQuantize(t dtype.Type) bool {
	if _, ok := quantizers[t]; ok || fromPlain(t) {
		return true
	}
	_, ok := weightedQuantizers[t]
	return ok && !RequiresImatrix(t)
}

// CanDequantize reports whether DequantizeRow and ToFloat32 can decode t:
// every type CanQuantize accepts plus IQ4_NL, IQ4_XS, MXFP4, F8_E4M3,
// F8_E5M2 and Bool.
func CanDequantize(t dtype.Type) bool {
	_, ok := dequantizers[t]
	return ok || toPlain(t)
}

// CheckFinite returns an error wrapping ErrNonFinite naming the first NaN or
// infinity in src, or nil.
func CheckFinite(src []float32) error {
	for i, v := range src {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return fmt.Errorf("element %d is %v: %w", i, v, ErrNonFinite)
		}
	}
	return nil
}

// maxMagnitude is the largest |x| QuantizeRow accepts for types with fp16
// scales. Every such type's scales overflow fp16 well below it (Q6_K, the
// widest, near 3e8), so ggml fails its row validation there anyway; above it
// (from about 1e12) ggml's float32 sums overflow and some types silently
// write zeros instead of failing.
const maxMagnitude = 1e10

// checkRow is CheckFinite plus the maxMagnitude limit, in one pass.
func checkRow(src []float32, t dtype.Type) error {
	var maxBits uint32
	rest := src
	if n := len(src) &^ 31; useSIMD && n > 0 {
		maxBits = absMaxBits(&src[0], n)
		rest = src[n:]
	}
	for _, v := range rest {
		maxBits = max(maxBits, math.Float32bits(v)&0x7fffffff)
	}
	if maxBits >= 0x7f800000 {
		return CheckFinite(src)
	}
	if t != dtype.Q8_K && t != dtype.MXFP4 && math.Float32frombits(maxBits) > maxMagnitude {
		for i, v := range src {
			if abs32(v) > maxMagnitude {
				return fmt.Errorf("element %d (%g) is too large for %v: its fp16 scales overflow: %w", i, v, t, ErrInvalidData)
			}
		}
	}
	return nil
}

func rowBytes(t dtype.Type, n int) (int, error) {
	size, err := dtype.RowSize(t, int64(n))
	if err != nil {
		return 0, err
	}
	return int(size), nil
}

// QuantizeRow encodes len(src) floats (a multiple of t.BlockSize()) into dst,
// which must be exactly dtype.RowSize(t, len(src)) bytes long. For block
// types the bytes are those llama-quantize writes without an importance
// matrix; a NaN or infinity in src is an error (wrapping ErrNonFinite). For
// plain types it is FromFloat32. Like llama-quantize, it fails (wrapping
// ErrInvalidData) when a block's fp16 scale overflows, that is for values
// too large for the type (Q8_0: |x| above about 8.3e6; Q4_1: a negative
// minimum below -65504); it also refuses |x| > 1e10 outright for every type
// but Q8_K, since ggml's float32 arithmetic breaks down further up.
func QuantizeRow(dst []byte, src []float32, t dtype.Type) error {
	q, ok := quantizers[t]
	if !ok {
		if fromPlain(t) {
			return FromFloat32(dst, src, t)
		}
		if _, ok := weightedQuantizers[t]; ok {
			return QuantizeRowWeighted(dst, src, nil, t) // an IQ type's default weighting
		}
		return fmt.Errorf("quantize: cannot encode type %v", t)
	}
	if err := checkRowArgs(dst, src, t); err != nil {
		return err
	}
	q(dst, src)
	return validateQuantized(dst, t)
}

// checkRowArgs checks QuantizeRow's and QuantizeRowWeighted's arguments: dst
// exactly the row's size, src finite and in range for t.
func checkRowArgs(dst []byte, src []float32, t dtype.Type) error {
	want, err := rowBytes(t, len(src))
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if len(dst) != want {
		return fmt.Errorf("quantize: %v row of %d values needs %d bytes, got %d", t, len(src), want, len(dst))
	}
	if err := checkRow(src, t); err != nil {
		return fmt.Errorf("quantize to %v: %w", t, err)
	}
	return nil
}

// validateQuantized is the check that follows every quantization, as
// llama-quantize's: the block scales written to dst are finite fp16 values.
func validateQuantized(dst []byte, t dtype.Type) error {
	if err := ValidateRow(dst, t); err != nil {
		return fmt.Errorf("quantize to %v: values too large for the type's fp16 scales: %w", t, err)
	}
	return nil
}

// DequantizeRow decodes len(dst) elements (a multiple of t.BlockSize()) of
// type t from src, which must be exactly dtype.RowSize(t, len(dst)) bytes
// long. It accepts every type CanDequantize reports, block or plain.
func DequantizeRow(dst []float32, src []byte, t dtype.Type) error {
	return ToFloat32(dst, src, t)
}

// ToFloat32 decodes len(dst) elements of type t from src (exactly
// dtype.RowSize(t, len(dst)) bytes). Plain types convert exactly where
// float32 can hold the value (F64 and wide integers round to nearest even);
// Bool gives 0 or 1.
func ToFloat32(dst []float32, src []byte, t dtype.Type) error {
	if !CanDequantize(t) {
		return fmt.Errorf("dequantize: cannot decode type %v", t)
	}
	want, err := rowBytes(t, len(dst))
	if err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	if len(src) != want {
		return fmt.Errorf("dequantize: %v row of %d values needs %d bytes, got %d", t, len(dst), want, len(src))
	}
	if d, ok := dequantizers[t]; ok {
		d(dst, src)
		return nil
	}
	le := binary.LittleEndian
	switch t {
	case dtype.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case dtype.F16:
		FP16RowToFP32(dst, src)
	case dtype.BF16:
		src := src[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits((uint32(src[2*i]) | uint32(src[2*i+1])<<8) << 16)
		}
	case dtype.F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case dtype.F8_E4M3:
		for i := range dst {
			dst[i] = FP8E4M3ToFP32(src[i])
		}
	case dtype.F8_E5M2:
		for i := range dst {
			dst[i] = FP8E5M2ToFP32(src[i])
		}
	case dtype.Bool:
		for i := range dst {
			dst[i] = 0
			if src[i] != 0 {
				dst[i] = 1
			}
		}
	case dtype.I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case dtype.U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case dtype.I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case dtype.U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case dtype.I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case dtype.U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case dtype.I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case dtype.U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	}
	return nil
}

// FromFloat32 encodes src as type t into dst (exactly dtype.RowSize(t,
// len(src)) bytes). Block types go through QuantizeRow (non-finite values are
// an error); F16 and BF16 round to nearest even as ggml does, F64 is exact;
// integer types require every value to be an integer in the type's range.
func FromFloat32(dst []byte, src []float32, t dtype.Type) error {
	if _, ok := quantizers[t]; ok {
		return QuantizeRow(dst, src, t)
	}
	if _, ok := weightedQuantizers[t]; ok {
		return QuantizeRow(dst, src, t)
	}
	if !fromPlain(t) {
		return fmt.Errorf("quantize: cannot encode type %v", t)
	}
	want, err := rowBytes(t, len(src))
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if len(dst) != want {
		return fmt.Errorf("quantize: %v row of %d values needs %d bytes, got %d", t, len(src), want, len(dst))
	}
	le := binary.LittleEndian
	switch t {
	case dtype.F32:
		for i, v := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return nil
	case dtype.F16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], FP32ToFP16(v))
		}
		return nil
	case dtype.BF16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], FP32ToBF16(v))
		}
		return nil
	case dtype.F64:
		for i, v := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
		return nil
	}
	// Integer types.
	size := int(t.TypeSize())
	signed := t == dtype.I8 || t == dtype.I16 || t == dtype.I32 || t == dtype.I64
	bits := uint(8 * size)
	var lo, hi float64
	if signed {
		lo, hi = -math.Ldexp(1, int(bits-1)), math.Ldexp(1, int(bits-1)) // [lo, hi)
	} else {
		lo, hi = 0, math.Ldexp(1, int(bits))
	}
	for i, v := range src {
		f := float64(v)
		if f != math.Trunc(f) || f < lo || f >= hi {
			return fmt.Errorf("quantize: element %d (%v) is not representable as %v", i, v, t)
		}
		var u uint64
		if signed {
			u = uint64(int64(f))
		} else {
			u = uint64(f)
		}
		switch size {
		case 1:
			dst[i] = byte(u)
		case 2:
			le.PutUint16(dst[2*i:], uint16(u))
		case 4:
			le.PutUint32(dst[4*i:], uint32(u))
		case 8:
			le.PutUint64(dst[8*i:], u)
		}
	}
	return nil
}

// FP8E4M3ToFP32 decodes an OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities,
// S.1111.111 is NaN) value exactly.
func FP8E4M3ToFP32(b uint8) float32 {
	sign := float32(1)
	if b&0x80 != 0 {
		sign = -1
	}
	e := int(b>>3) & 0xF
	m := int(b & 7)
	switch {
	case e == 0xF && m == 7:
		return float32(math.NaN()) * sign
	case e == 0:
		return sign * float32(math.Ldexp(float64(m), -9)) // m/8 * 2^-6
	}
	return sign * float32(math.Ldexp(float64(8+m), e-10)) // (1+m/8) * 2^(e-7)
}

// FP8E5M2ToFP32 decodes an FP8 E5M2 value (the top byte of an IEEE half)
// exactly.
func FP8E5M2ToFP32(b uint8) float32 { return FP16ToFP32(uint16(b) << 8) }
