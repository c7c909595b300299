package perplexity

import (
	"math"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// Activation rounding (llama.cpp's vec_dot_type).
//
// ggml's CPU backend never multiplies a quantized or 16-bit weight row by a
// float32 activation row: it first converts the activations to the weight
// type's vec_dot_type (ggml-cpu.c type_traits_cpu) and then takes an
// integer (or 16-bit) dot product. Mathematically that dot product equals
// the float dot product of the dequantized weight row with the activation
// row rounded through that encoding, so emulating llama.cpp needs no
// integer kernels: the activations are rounded once per matrix product and
// the float kernel is used unchanged. Only the summation order differs.
type actKind uint8

const (
	actF32  actKind = iota // no rounding
	actF16                 // F16 weights: activations to fp16
	actBF16                // BF16 weights: activations to bf16
	actQ8_0                // Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4
	actQ8_1                // Q4_1, Q5_1: Q8_0's rounding plus the block-sum correction
	actQ8_K                // k-quants and the other i-quants
	nActKinds
)

// activationKind returns the activation encoding llama.cpp's CPU backend
// uses for weights of type t. MLX affine weights have no llama.cpp
// counterpart and use float32 activations (as MLX does).
func activationKind(t graph.Type) actKind {
	switch t {
	case graph.F16:
		return actF16
	case graph.BF16:
		return actBF16
	case graph.Q4_1, graph.Q5_1:
		return actQ8_1
	case graph.Q4_0, graph.Q5_0, graph.Q8_0, graph.Q8_1,
		graph.IQ4_NL, graph.MXFP4, graph.NVFP4, graph.Q1_0, graph.Q2_0:
		return actQ8_0
	case graph.Q2_K, graph.Q3_K, graph.Q4_K, graph.Q5_K, graph.Q6_K, graph.Q8_K,
		graph.IQ2_XXS, graph.IQ2_XS, graph.IQ3_XXS, graph.IQ1_S, graph.IQ3_S,
		graph.IQ2_S, graph.IQ4_XS, graph.IQ1_M, graph.TQ1_0, graph.TQ2_0:
		return actQ8_K
	}
	return actF32
}

// actCache keeps the rounded copies of the current matrix-product input, so
// Q, K and V (or gate and up) share one rounding.
type actCache struct {
	threads int // workers for the rounding (0: 1)
	valid   [nActKinds]bool
	buf     [nActKinds][]float32
	// q81 holds, for actQ8_1, one correction per block of 32:
	// fp16(d·Σq) − fp16(d)·Σq (see q81Correction).
	q81 []float32
	// q81s holds, for actQ8_1, each block's stored sum s = fp16(d·Σq).
	q81s []float32
	// q8K holds the Q8_K blocks of the input (for orderQ6K), made from
	// the unrounded activations when buf[actQ8_K] is.
	q8K *q8KBlocks
	// q8 holds the Q8_0 blocks of buf[actQ8_0] (for orderQ8_0), nil when
	// not made yet.
	q8 *q8Blocks
	// q8buf and q8Kbuf are the storage q8 and q8K point to, reused from
	// input to input (every new slice of this size would be memory the
	// kernel zeroes and faults in again).
	q8buf  q8Blocks
	q8Kbuf q8KBlocks
	// h16 holds the fp16/bf16 codes of buf[actF16], buf[actBF16] for the
	// 16-bit kernels (see setHalves).
	h16      [nActKinds][]uint16
	h16Valid [nActKinds]bool
}

func (c *actCache) reset() {
	c.valid = [nActKinds]bool{}
	c.h16Valid = [nActKinds]bool{}
	c.q8 = nil
}

// q8Blocks returns the Q8_0 blocks of xr, the actQ8_0 rounding returned
// by rounded, made once per input.
func (c *actCache) q8Blocks(xr []float32) *q8Blocks {
	if c.q8 == nil || len(c.q8.d)*32 != len(xr) {
		c.q8buf.fill(xr, c.threads)
		c.q8 = &c.q8buf
	}
	return c.q8
}

// q8Direct returns the Q8_0 blocks of x (unrounded activations) as
// q8Blocks would recover them from rounded(Q8_0, x, n), made straight
// from x when every block's scale is finite; ok false (nothing made) when
// not, and the caller rounds instead.
func (c *actCache) q8Direct(x []float32) (b *q8Blocks, ok bool) {
	if c.q8 != nil && len(c.q8.d)*32 == len(x) {
		return c.q8, true
	}
	if !c.q8buf.quantize(x, c.threads) {
		return nil, false
	}
	c.q8 = &c.q8buf
	return c.q8, true
}

// rounded returns x (rows of n values) rounded as llama.cpp rounds
// activations for weight type t.
func (c *actCache) rounded(t graph.Type, x []float32, n int) []float32 {
	k := activationKind(t)
	if k == actF32 {
		return x
	}
	if c.valid[k] && len(c.buf[k]) == len(x) {
		return c.buf[k]
	}
	c.buf[k] = grow(c.buf[k], len(x))
	roundActivationsPar(c.buf[k], x, n, k, c.threads)
	if k == actQ8_1 {
		c.q81 = grow(c.q81, len(x)/32)
		c.q81s = grow(c.q81s, len(x)/32)
		perRow := n / 32
		parallelFor(c.threads, len(x)/n, func(_, row int) {
			for b := row * perRow; b < (row+1)*perRow; b++ {
				c.q81[b] = q81Correction(x[b*32 : (b+1)*32])
				c.q81s[b] = q81Sum(x[b*32 : (b+1)*32])
			}
		})
	}
	if k == actQ8_K {
		c.q8Kbuf.fill(x, c.threads)
		c.q8K = &c.q8Kbuf
		if useAVX512 {
			c.q8K.makeQuads(n)
		}
	}
	c.valid[k] = true
	return c.buf[k]
}

// q81Correction is what ggml's Q4_1×Q8_1 and Q5_1×Q8_1 dot products add
// beyond the dot product of the dequantized weights with the rounded
// activations, per unit of the weight block's minimum m. They compute
// d_w·d_a·Σq_w·q_a + m·s with s = fp16(d·Σq_a) stored by quantize_row_q8_1
// (d = amax/127 in float32), whereas the dequantized form gives
// m·fp16(d)·Σq_a.
func q81Correction(x []float32) float32 {
	d, sum := q81Codes(x)
	s := quantize.FP16ToFP32(quantize.FP32ToFP16(d * float32(sum)))
	dh := quantize.FP16ToFP32(quantize.FP32ToFP16(d))
	return s - dh*float32(sum)
}

// q81Sum is the s field quantize_row_q8_1 stores for a block of 32:
// fp16(d·Σq) with d = amax/127 in float32.
func q81Sum(x []float32) float32 {
	d, sum := q81Codes(x)
	return quantize.FP16ToFP32(quantize.FP32ToFP16(d * float32(sum)))
}

// q81Codes is quantize_row_q8_1's scale d = amax/127 (float32) of a block
// and the sum of its rounded codes.
func q81Codes(x []float32) (d float32, sum int32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d = amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for _, v := range x {
		sum += int32(math.RoundToEven(float64(v * id)))
	}
	return d, sum
}

// addMinCorrection adds Σ_b mins[r,b]·corr[t,b] to dst[t,r] (the Q8_1 block
// sum correction for Q4_1/Q5_1 weights).
func addMinCorrection(dst []float32, w *weight, corr []float32, nTok, threads int) {
	nb := w.cols / 32
	n := w.rows
	parallelFor(threads, (n+63)/64, func(_, tile int) {
		for r := tile * 64; r < min((tile+1)*64, n); r++ {
			m := w.mins[r*nb : (r+1)*nb]
			for t := 0; t < nTok; t++ {
				c := corr[t*nb : (t+1)*nb]
				var s float32
				for b, v := range m {
					s += v * c[b]
				}
				dst[t*n+r] += s
			}
		}
	})
}

// roundActivationsPar is roundActivations with the rows (of n values)
// spread over threads workers.
func roundActivationsPar(dst, x []float32, n int, k actKind, threads int) {
	rows := len(x) / n
	parallelFor(threads, rows, func(_, r int) {
		roundActivations(dst[r*n:(r+1)*n], x[r*n:(r+1)*n], n, k)
	})
}

// roundActivations writes x rounded through encoding k into dst, row by row
// (rows of n values).
func roundActivations(dst, x []float32, n int, k actKind) {
	switch k {
	case actF16:
		for i, v := range x {
			dst[i] = quantize.FP16ToFP32(quantize.FP32ToFP16(v))
		}
	case actBF16:
		for i, v := range x {
			dst[i] = quantize.BF16ToFP32(quantize.FP32ToBF16(v))
		}
	case actQ8_0, actQ8_1:
		for i := 0; i+32 <= len(x); i += 32 {
			roundQ8_0(dst[i:i+32], x[i:i+32])
		}
	case actQ8_K:
		for i := 0; i+256 <= len(x); i += 256 {
			roundQ8_K(dst[i:i+256], x[i:i+256])
		}
	default:
		copy(dst, x)
	}
}

// roundQ8_0 is ggml's x86 quantize_row_q8_0 for one block of 32 followed by
// its dequantization: d = amax/127 stored as fp16, codes round(x*127/amax)
// with ties to even.
func roundQ8_0(dst, x []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := quantize.FP16ToFP32(quantize.FP32ToFP16(amax / 127))
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	if useSIMD && len(x) == 32 {
		q80Apply(&dst[0], &x[0], 32, id, d)
		return
	}
	for i, v := range x {
		dst[i] = d * float32(math.RoundToEven(float64(v*id)))
	}
}

// roundQ8_K is ggml's quantize_row_q8_K_ref for one block of 256 followed by
// its dequantization: the signed value of largest magnitude maps to -127,
// codes nearest_int(x*iscale) capped at 127, d = 1/iscale in float32.
func roundQ8_K(dst, x []float32) {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax == 0 {
		clear(dst[:len(x)])
		return
	}
	iscale := -127 / mx
	d := 1 / iscale
	if useSIMD && len(x) == 256 {
		q8KApply(&dst[0], &x[0], 256, iscale, d)
		return
	}
	for i, v := range x {
		q := min(nearestInt(iscale*v), 127)
		dst[i] = d * float32(q)
	}
}

// nearestInt is ggml's nearest_int: round half to even via the 1.5·2²³
// magic number (valid for |f| <= 4194303).
func nearestInt(f float32) int32 {
	val := f + 12582912
	return int32(math.Float32bits(val)&0x007fffff) - 0x00400000
}
