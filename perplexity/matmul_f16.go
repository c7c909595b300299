package perplexity

import (
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// F16 and BF16 weights on the 16-bit kernels.
//
// llama.cpp multiplies F16 and BF16 weights with llamafile's tinyBLAS on
// the stored 16-bit values: the activations are rounded to the weight type
// (vec_dot_type) and both operands are loaded as 16-bit codes, widened in
// registers (VCVTPH2PS) or multiplied as they are (VDPBF16PS). Where the
// CPU has those instructions the weights are multiplied in the same way,
// straight from the stored (mapped) rows: no float32 copy of a tile is
// made, and the activations take half the cache. The per-element order is
// orderTinyBLAS16's or orderTinyBLASBF16's, so the results are the bits of
// the float32 kernels (TestHalfKernels; TestHalfKernelsKJV on kjv-llama),
// with one exception: VDPBF16PS reads subnormal bf16 inputs as zero and
// flushes subnormal partial sums to zero, which dpbf16 does not
// (TestVDPBF16PSSubnormals). llama.cpp runs the instruction itself, so
// there the kernel is the reference; no product of a model's weights and
// activations comes near 2^-126.

// halfRows reports whether w's stored rows suit the 16-bit kernels: F16 or
// BF16 rows, four at a time, on a CPU with the kernels' instructions, SIMD
// kernels on (tests turn useSIMD off for the portable paths).
func halfRows(w *weight) bool {
	if !useSIMD || w.raw == nil || w.rowBytes != 2*w.cols || w.rows%4 != 0 {
		return false
	}
	switch w.typ {
	case graph.F16:
		return useAVX512 && w.cols%16 == 0
	case graph.BF16:
		return useAVX512BF16 && w.cols%32 == 0
	}
	return false
}

// halfKernel reports whether j runs on the 16-bit kernels: stored rows
// that suit them (halfRows), not expanded at load, in the tinyBLAS order of
// their type.
func halfKernel(j *mulJob) bool {
	w := j.w
	if w.f32 != nil || !halfRows(w) {
		return false
	}
	return w.typ == graph.F16 && j.order == orderTinyBLAS16 || w.typ == graph.BF16 && j.order == orderTinyBLASBF16
}

// setHalves points j.x16 at the 16-bit codes of j.x (the unrounded
// activations) rounded to the weight type as llama.cpp rounds them
// (vec_dot_type: round to nearest even) when j runs on the 16-bit kernels,
// and reports whether it does; j.order must be set. The codes are made
// once per matrix-product input and replace the float32 rounding
// (actCache.rounded), which such a job does not need.
func (c *actCache) setHalves(j *mulJob, nTok int) bool {
	if !halfKernel(j) {
		return false
	}
	k := activationKind(j.w.typ)
	x := j.x[:nTok*j.w.cols]
	if !c.h16Valid[k] || len(c.h16[k]) != len(x) {
		if cap(c.h16[k]) < len(x) {
			c.h16[k] = make([]uint16, len(x))
		}
		c.h16[k] = c.h16[k][:len(x)]
		toHalves(c.h16[k], x, j.w.cols, k, c.threads)
		c.h16Valid[k] = true
	}
	j.x16 = c.h16[k]
	return true
}

// toHalves writes the fp16 (actF16) or bf16 (actBF16) codes of x (rows of
// n values) in parallel over rows: quantize.FP32ToFP16 and FP32ToBF16,
// whose codes roundActivations expands (VCVTPS2PH gives the same codes
// for every value but NaN, whose payload it keeps).
func toHalves(dst []uint16, x []float32, n int, kind actKind, threads int) {
	parallelFor(max(threads, 1), len(x)/n, func(_, row int) {
		d, s := dst[row*n:(row+1)*n], x[row*n:(row+1)*n]
		if kind == actF16 {
			m := 0
			if useAVX512 && n >= 16 {
				m = n &^ 15
				f32ToF16AVX(&d[0], &s[0], m)
			}
			for i := m; i < n; i++ {
				d[i] = quantize.FP32ToFP16(s[i])
			}
			return
		}
		for i, v := range s {
			d[i] = quantize.FP32ToBF16(v)
		}
	})
}

// mulTileHalf is mulTile for a job on the 16-bit kernels (j.x16 set):
// rows [tile·rowTile, +rowTile) of dst = x × wᵀ, four weight rows by six
// (or five) tokens per kernel call, tokens in blocks of about 256 KiB that
// stay in L2 while the tile's rows pass over them.
func mulTileHalf(j *mulJob, nTok, tile int) {
	w := j.w
	k, n := w.cols, w.rows
	r0 := tile * rowTile
	r1 := min(r0+rowTile, n)
	if nTok <= 0 || r0 >= r1 {
		return
	}
	dst, x := j.dst[:nTok*n], j.x16[:nTok*k]
	raw := w.raw[r0*w.rowBytes : r1*w.rowBytes]
	_ = dst[(nTok-1)*n+r1-1]
	k6, k5, k1 := dot4x6h, dot4x5h, dot4x1h
	if w.typ == graph.BF16 {
		k6, k5, k1 = dot4x6bf, dot4x5bf, dot4x1bf
	}
	tb := max(6, (256<<10)/(2*k)/6*6)
	for t0 := 0; t0 < nTok; t0 += tb {
		t1 := min(t0+tb, nTok)
		// As llamafile's BLOCK_SIZE: six tokens per call, five for
		// the rest where that covers them; single tokens otherwise.
		n6, n5 := (t1-t0)/6, 0
		if rem := (t1 - t0) % 6; rem != 0 && n6+1 >= 6-rem {
			n6, n5 = n6+1-(6-rem), 6-rem
		}
		for r := r0; r < r1; r += 4 {
			wp := &raw[(r-r0)*w.rowBytes]
			t := t0
			for i := 0; i < n6; i, t = i+1, t+6 {
				k6(&x[t*k], k, wp, k, k, &dst[t*n+r], n)
			}
			for i := 0; i < n5; i, t = i+1, t+5 {
				k5(&x[t*k], k, wp, k, k, &dst[t*n+r], n)
			}
			for ; t < t1; t++ {
				k1(&x[t*k], k, wp, k, k, &dst[t*n+r], n)
			}
		}
	}
}
