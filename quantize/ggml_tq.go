package quantize

import (
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// Ternary formats (ggml-quants.c quantize_row_tq1_0_ref,
// quantize_row_tq2_0_ref, dequantize_row_tq1_0, dequantize_row_tq2_0):
// codes -1, 0, 1 times the block's absolute maximum. Block layouts
// (ggml-common.h), 256 values each:
//
//	TQ1_0 54 bytes: qs[48] (5 trits per byte) qh[4] (4 trits per byte) d
//	TQ2_0 66 bytes: qs[64] (2 bits per value) d
//
// ggml's quantize_tq1_0 and quantize_tq2_0 ignore the importance vector.

const (
	tq1Block = 54
	tq2Block = 66
)

// tqAbsMax is the block's absolute maximum, as MAX(amax, fabsf(v)).
func tqAbsMax(x []float32) float32 {
	var amax float32
	for _, v := range x[:qkK] {
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	return amax
}

// tqTrit is lroundf(x*id) + 1: 0, 1 or 2 for the finite |x*id| <= 1 the
// quantizers see (callers handle an infinite id, see idOverflow).
func tqTrit(x, id float32) uint8 {
	return uint8(int32(math.Round(float64(float32(x*id)))) + 1)
}

// tqInverse is d ? 1/d : 0 and whether it overflowed: ggml then converts
// ±Inf and NaN with lroundf, which on x86-64 gives LONG_MIN, whose low 32
// bits are 0, so every trit is 1 (the code for 0).
func tqInverse(d float32) (id float32, overflow bool) {
	if d != 0 {
		id = 1 / d
	}
	return id, idOverflow(id)
}

// tqPack5 is ggml's packing of 5 (or 4, then shifted) trits into a byte:
// the base-3 number as a fraction of 243, rounded up to a multiple of 1/256.
func tqPack5(q uint8) uint8 { return uint8((uint16(q)*256 + 242) / 243) }

// QuantizeTQ1_0 encodes src (len a multiple of 256) into TQ1_0 blocks.
func QuantizeTQ1_0(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*tq1Block]
	for i := range nb {
		x := src[i*qkK : (i+1)*qkK]
		y := (*[tq1Block]byte)(dst[i*tq1Block:])
		d := tqAbsMax(x)
		id, overflow := tqInverse(d)
		putF16(y[52:], d)
		trit := func(v float32) uint8 {
			if overflow {
				return 1
			}
			return tqTrit(v, id)
		}
		for m := range 32 { // qs[0:32]: x[0:160], 5 rows of 32
			var q uint8
			for n := range 5 {
				q = q*3 + trit(x[m+32*n])
			}
			y[m] = tqPack5(q)
		}
		for m := range 16 { // qs[32:48]: x[160:240], 5 rows of 16
			var q uint8
			for n := range 5 {
				q = q*3 + trit(x[160+m+16*n])
			}
			y[32+m] = tqPack5(q)
		}
		for j := range 4 { // qh: x[240:256], 4 rows of 4, first trit highest
			var q uint8
			for m := range 4 {
				q = q*3 + trit(x[240+j+4*m])
			}
			y[48+j] = tqPack5(q * 3)
		}
	}
}

// QuantizeTQ2_0 encodes src (len a multiple of 256) into TQ2_0 blocks.
func QuantizeTQ2_0(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*tq2Block]
	for i := range nb {
		x := src[i*qkK : (i+1)*qkK]
		y := (*[tq2Block]byte)(dst[i*tq2Block:])
		d := tqAbsMax(x)
		id, overflow := tqInverse(d)
		putF16(y[64:], d)
		for j := 0; j < 64; j += 32 {
			for m := range 32 {
				var q uint8
				for n := range 4 {
					t := uint8(1)
					if !overflow {
						t = tqTrit(x[4*j+m+32*n], id)
					}
					q += (t & 3) << (2 * n)
				}
				y[j+m] = q
			}
		}
	}
}

// tqUnpack is trit n (0 = most significant) of a packed byte, as -1, 0, 1.
func tqUnpack(q uint8, n int) float32 {
	pow3 := [6]uint8{1, 3, 9, 27, 81, 243}
	v := q * pow3[n]
	return float32(int16((uint16(v)*3)>>8) - 1)
}

// DequantizeTQ1_0 decodes TQ1_0 blocks into dst (len a multiple of 256).
func DequantizeTQ1_0(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*tq1Block]
	for i := range nb {
		x := (*[tq1Block]byte)(src[i*tq1Block:])
		y := dst[i*qkK : (i+1)*qkK]
		d := getF16(x[52:])
		for n := range 5 {
			for m := range 32 {
				y[32*n+m] = tqUnpack(x[m], n) * d
			}
		}
		for n := range 5 {
			for m := range 16 {
				y[160+16*n+m] = tqUnpack(x[32+m], n) * d
			}
		}
		for n := range 4 {
			for j := range 4 {
				y[240+4*n+j] = tqUnpack(x[48+j], n) * d
			}
		}
	}
}

// DequantizeTQ2_0 decodes TQ2_0 blocks into dst (len a multiple of 256).
func DequantizeTQ2_0(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*tq2Block]
	for i := range nb {
		x := (*[tq2Block]byte)(src[i*tq2Block:])
		y := dst[i*qkK : (i+1)*qkK]
		d := getF16(x[64:])
		for j := 0; j < 64; j += 32 {
			for l := range 4 {
				for m := range 32 {
					y[4*j+32*l+m] = float32(int8((x[j+m]>>(2*l))&3)-1) * d
				}
			}
		}
	}
}

func init() {
	quantizers[dtype.TQ1_0] = QuantizeTQ1_0
	quantizers[dtype.TQ2_0] = QuantizeTQ2_0
	dequantizers[dtype.TQ1_0] = DequantizeTQ1_0
	dequantizers[dtype.TQ2_0] = DequantizeTQ2_0
	// quantize_tq1_0 and quantize_tq2_0 ignore quant_weights.
	weightedQuantizers[dtype.TQ1_0] = func(dst []byte, src, _ []float32) { QuantizeTQ1_0(dst, src) }
	weightedQuantizers[dtype.TQ2_0] = func(dst []byte, src, _ []float32) { QuantizeTQ2_0(dst, src) }
}
