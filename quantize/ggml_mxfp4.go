package quantize

import (
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// MXFP4 quantization (ggml type 39, llama-quantize's MXFP4_MOE file type),
// ported from ggml-quants.c quantize_row_mxfp4_ref and best_index_mxfp4 at
// llama.cpp 34af94cd. quantize_mxfp4 ignores its importance weights
// (GGML_UNUSED(quant_weights)), so the type registers only the reference
// quantizer: llama-quantize writes the same bytes with or without --imatrix.

func init() {
	quantizers[dtype.MXFP4] = QuantizeMXFP4
}

// mxfp4E8M0 is the shared exponent ggml stores for a block whose largest
// magnitude is amax: (uint8_t)(floorf(log2f(amax)) - 2 + 127), or 0 for an
// all-zero block. The -2 makes the block's largest value land on the
// doubled E2M1 grid (kvalues up to 12 = 6*2) with scale 2^(e-128): amax in
// [2^k, 2^(k+1)) gets e = k+125, so amax/2^(e-128) lies in [8, 16).
//
// The float-to-uint8_t conversion of an out-of-range value is undefined in
// C; x86-64 compilers emit cvttss2si to a 32-bit integer and keep its low
// byte, which is what the wrap below reproduces (amax below 2^-125 wraps to
// 0xF8..0xFF, and llama-quantize's row validation then refuses 0xFF).
func mxfp4E8M0(amax float32) uint8 {
	if !(amax > 0) {
		return 0
	}
	l := float32(math.Floor(float64(log2f(amax))))
	return uint8(int32(l - 2 + 127))
}

// log2f is C's log2f for a positive finite float32: the correctly rounded
// float32 result (glibc's log2f is correctly rounded on every float32
// input; the float64 logarithm rounded once to float32 agrees with it,
// exact powers of two included, where math.Log2 returns the exact integer).
func log2f(x float32) float32 { return float32(math.Log2(float64(x))) }

// bestIndexMXFP4 is best_index_mxfp4: the first index i minimising
// |kvalues[i]*d - x| in float32 (the product rounded before the subtraction).
func bestIndexMXFP4(x, d float32) uint8 {
	best := uint8(0)
	bestErr := abs32(float32(float32(kvaluesMXFP4[0])*d) - x)
	for i := 1; i < 16; i++ {
		err := abs32(float32(float32(kvaluesMXFP4[i])*d) - x)
		if err < bestErr {
			best, bestErr = uint8(i), err
		}
	}
	return best
}

// QuantizeMXFP4 encodes src (len a multiple of 32) into MXFP4 blocks in dst
// (17 bytes per block: the E8M0 exponent, then 16 bytes whose low nibbles
// hold elements 0..15 and high nibbles elements 16..31), as
// quantize_row_mxfp4_ref does.
func QuantizeMXFP4(dst []byte, src []float32) {
	const qk = 32
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		y := dst[i*17 : (i+1)*17]
		amax := float32(0)
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax = a
			}
		}
		e := mxfp4E8M0(amax)
		d := e8m0Half(e)
		y[0] = e
		for j := range qk / 2 {
			y[1+j] = bestIndexMXFP4(x[j], d) | bestIndexMXFP4(x[j+qk/2], d)<<4
		}
	}
}
