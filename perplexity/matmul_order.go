package perplexity

import (
	"encoding/binary"
	"math"
	"sync/atomic"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// dotOrder is the summation order of a dot product. The fast kernels
// (orderFast) sum in their own order; the others reproduce, to the bit,
// the order of the ggml CPU kernel llama.cpp runs for that product on an
// x86-64 build with AVX-512 and AVX512-BF16 (the machine the reference
// figures of testdata were made on; see the package documentation).
type dotOrder uint8

const (
	orderFast dotOrder = iota
	// orderTinyBLAS16 is llamafile's tinyBLAS<16, __m512> (ggml_mul_mat
	// of F32 and F16 weights, k a multiple of 16, rows a multiple of 4, at
	// least 2 tokens): 16 float32 lanes, lane l accumulating the products
	// of elements 16j+l with fused multiply-adds in order of j, then
	// _mm512_reduce_add_ps.
	orderTinyBLAS16
	// orderTinyBLASBF16 is tinyBLAS<32, __m512bh> (ggml_mul_mat of BF16
	// weights, k a multiple of 32, rows a multiple of 4, at least 2
	// tokens): VDPBF16PS into 16 lanes, then _mm512_reduce_add_ps.
	orderTinyBLASBF16
	// orderVecBF16 is ggml_vec_dot_bf16 with AVX512-BF16, which
	// ggml_mul_mat_id (routed experts) and ggml_mul_mat's fallback run:
	// VDPBF16PS into two accumulators over 64-element steps, each reduced
	// by _mm512_reduce_add_ps and summed in float64 with the scalar tail.
	orderVecBF16
	// orderQ0 is weights of 32-element blocks (Q4_0, Q4_1, Q5_0, Q5_1,
	// Q8_0) times Q8_0/Q8_1 activations, as tinyBLAS_Q0_AVX (ggml_mul_mat)
	// and the ggml_vec_dot_*_q8_* kernels compute it (see mulTileQ0).
	orderQ0
	// orderQ0Repack is repacked Q4_0 weights (q4_0_8x8, rows a multiple
	// of 8) times Q8_0 activations as ggml_gemm/gemv_q4_0_8x8_q8_0
	// compute them: one float32 accumulator per output, adding
	// float(Σ of the block's 32 code products) · (fp16(d_w)·fp16(d_x)) by
	// a fused multiply-add, block after block.
	orderQ0Repack
	// orderQ6K is Q6_K weights times Q8_K activations as
	// ggml_vec_dot_q6_K_q8_K (AVX2) computes them (see mulTileQ6K).
	orderQ6K
	// orderQ5K is Q5_K weights times Q8_K activations as
	// ggml_vec_dot_q5_K_q8_K (AVX2) computes them (see mulTileQ5K).
	orderQ5K
	// orderQ4KRepack is repacked Q4_K weights (q4_K_8x8, rows a multiple
	// of 8) times Q8_K activations (see mulTileQ4KRepack).
	orderQ4KRepack
	// orderQ3K is Q3_K weights times Q8_K activations as
	// ggml_vec_dot_q3_K_q8_K (AVX2) computes them (see mulTileQ3K).
	orderQ3K
	// orderQ2KRepack is repacked Q2_K weights (q2_K_8x8, rows a multiple
	// of 8, AVX-512) times Q8_K activations (see mulTileQ2KRepack).
	orderQ2KRepack
)

// llamaDotOrder returns the order llama.cpp sums w's products in: id for
// ggml_mul_mat_id (routed experts).
func llamaDotOrder(w *weight, nTok int, id bool) dotOrder {
	if w.raw == nil && w.typ != graph.F32 && w.typ != graph.F16 && w.typ != graph.BF16 && w.typ != graph.Q8_0 {
		return orderFast // the codes are needed, and only Q8_0's can be recovered
	}
	sgemm := !id && w.rows%4 == 0 && nTok >= 2 // llamafile_sgemm takes it
	switch w.typ {
	case graph.F32, graph.F16:
		if sgemm && w.cols%16 == 0 {
			return orderTinyBLAS16
		}
	case graph.BF16:
		if sgemm && w.cols%32 == 0 {
			return orderTinyBLASBF16
		}
		return orderVecBF16
	case graph.Q8_0, graph.Q4_1, graph.Q5_0, graph.Q5_1:
		return orderQ0
	case graph.Q6_K:
		return orderQ6K
	case graph.Q5_K:
		return orderQ5K
	case graph.Q4_K:
		if w.rows%8 == 0 {
			return orderQ4KRepack
		}
	case graph.Q3_K:
		return orderQ3K
	case graph.Q2_K:
		if w.rows%8 == 0 {
			return orderQ2KRepack
		}
	case graph.Q4_0:
		// Rows a multiple of 8 are repacked (q4_0_8x8) and multiplied by
		// repack.cpp's GEMM/GEMV, for ggml_mul_mat and ggml_mul_mat_id.
		if w.rows%8 != 0 {
			return orderQ0
		}
		return orderQ0Repack
	}
	return orderFast
}

// q8K reports whether the order multiplies Q8_K codes (the K-quants).
func (o dotOrder) q8K() bool {
	switch o {
	case orderQ2KRepack, orderQ3K, orderQ4KRepack, orderQ5K, orderQ6K:
		return true
	}
	return false
}

func (o dotOrder) dot(w, x []float32) float32 {
	x = x[:len(w)]
	switch o {
	case orderTinyBLAS16:
		var acc [16]float32
		for i := 0; i+16 <= len(w); i += 16 {
			for l := range acc {
				acc[l] = fma32(w[i+l], x[i+l], acc[l])
			}
		}
		return reduce16(&acc)
	case orderTinyBLASBF16:
		var acc [16]float32
		for i := 0; i+32 <= len(w); i += 32 {
			dpbf16(&acc, w[i:i+32], x[i:i+32])
		}
		return reduce16(&acc)
	case orderVecBF16:
		var c1, c2 [16]float32
		i := 0
		for ; i+64 <= len(w); i += 64 {
			dpbf16(&c1, w[i:i+32], x[i:i+32])
			dpbf16(&c2, w[i+32:i+64], x[i+32:i+64])
		}
		s := float64(reduce16(&c1)) + float64(reduce16(&c2))
		for ; i < len(w); i++ {
			s += float64(w[i] * x[i])
		}
		return float32(s)
	}
	return dot(w, x)
}

// dpbf16 is VDPBF16PS on bf16 values held as float32 (their products are
// exact): lane j adds the product of elements 2j+1, then that of 2j, each
// sum rounded to float32.
func dpbf16(acc *[16]float32, w, x []float32) {
	w, x = w[:32], x[:32]
	for j := range acc {
		a := acc[j] + w[2*j+1]*x[2*j+1]
		acc[j] = a + w[2*j]*x[2*j]
	}
}

// fma32 is a·b + c rounded once to float32 (through float64, where a·b is
// exact; the double rounding this allows is far rarer than anything the
// tests can see).
func fma32(a, b, c float32) float32 {
	return float32(float64(a)*float64(b) + float64(c))
}

// reduce16 is gcc's _mm512_reduce_add_ps: the halves added lane-wise (8,
// then 4 lanes), then lanes (0+2) + (1+3).
func reduce16(a *[16]float32) float32 {
	var c [8]float32
	for i := range c {
		c[i] = a[i+8] + a[i]
	}
	var d [4]float32
	for i := range d {
		d[i] = c[i+4] + c[i]
	}
	return (d[0] + d[2]) + (d[1] + d[3])
}

// q8Blocks is a batch of activation rows as Q8_0 blocks: the scale and the
// 32 codes of each block (quantize_row_q8_0's output, recovered exactly
// from the rounded activations: the largest magnitude of a block is 127·d).
type q8Blocks struct {
	d []float32
	q []int8
	// u holds q + 128 as unsigned bytes for q0dot2x4 (VPDPBUSD multiplies
	// unsigned by signed bytes), nil when that kernel is not used.
	u []uint8
}

// newQ8Blocks recovers the blocks of xr, activations already rounded
// through Q8_0 (roundQ8_0).
func newQ8Blocks(xr []float32) *q8Blocks {
	b := new(q8Blocks)
	b.fill(xr, 1)
	return b
}

// fill makes b the blocks of xr (see newQ8Blocks), reusing b's slices,
// with up to threads workers.
func (b *q8Blocks) fill(xr []float32, threads int) {
	b.make(xr, threads, func(i int, blk []float32, q []int8, u []uint8) bool {
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		b.d[i] = d
		if d == 0 {
			clear(q)
		} else {
			for j, v := range blk {
				q[j] = int8(math.RoundToEven(float64(v / d)))
			}
		}
		offsetCodes(u, q)
		return true
	})
}

// quantize makes b the Q8_0 blocks of x as quantize_row_q8_0 makes them
// (d = fp16(amax/127), codes x·127/amax rounded to even): the blocks fill
// recovers from roundQ8_0's rounding of x, without the rounded copy. A
// block whose scale rounds to 0 gets zero codes, as fill recovers them.
// It reports false, leaving b unspecified, when some block's amax or scale
// is not finite (then the caller rounds and recovers instead).
func (b *q8Blocks) quantize(x []float32, threads int) bool {
	return b.make(x, threads, func(i int, blk []float32, q []int8, u []uint8) bool {
		if u != nil && useSIMD {
			return q80Block(&q[0], &u[0], &b.d[i], &blk[0])
		}
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := quantize.FP16ToFP32(quantize.FP32ToFP16(amax / 127))
		if math.IsInf(float64(d), 0) || math.IsNaN(float64(d)) || math.IsInf(float64(amax), 0) {
			return false
		}
		b.d[i] = d
		if d == 0 {
			clear(q)
		} else {
			id := 127 / amax
			for j, v := range blk {
				q[j] = int8(math.RoundToEven(float64(v * id)))
			}
		}
		offsetCodes(u, q)
		return true
	})
}

// make sizes b for the blocks of 32 of x and has block set b.d[i], the
// codes q of block i (values blk) and, where q0dot2x4 takes them (u not
// nil), their offset codes u (see offsetCodes), blocks in parallel on up
// to threads workers. It reports false when a block did (b is then
// unspecified).
func (b *q8Blocks) make(x []float32, threads int, block func(i int, blk []float32, q []int8, u []uint8) bool) bool {
	nb := len(x) / 32
	b.d, b.q = growT(b.d, nb), growT(b.q, nb*32)
	if useQ0VNNI {
		b.u = growT(b.u, nb*32)
	} else {
		b.u = nil
	}
	const per = 64 // blocks per work item
	var bad atomic.Bool
	parallelFor(max(threads, 1), (nb+per-1)/per, func(_, item int) {
		for i := item * per; i < min((item+1)*per, nb); i++ {
			var u []uint8
			if b.u != nil {
				u = b.u[i*32 : (i+1)*32]
			}
			if !block(i, x[i*32:(i+1)*32], b.q[i*32:(i+1)*32], u) {
				bad.Store(true)
				return
			}
		}
	})
	return !bad.Load()
}

// offsetCodes sets u[j] = q[j] + 128 (q0dot2x4's unsigned operand) when u
// is not nil.
func offsetCodes(u []uint8, q []int8) {
	for j, c := range q[:len(u)] {
		u[j] = uint8(c) ^ 0x80
	}
}

// growT returns b resliced to n elements, reallocated when its capacity
// is short (contents unspecified).
func growT[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// q0Row is one weight row of 32-element blocks decoded to integer codes:
// the value of element i of block b is d[b]·q[32b+i] (+ m[b] for the
// types with a minimum).
type q0Row struct {
	d, m []float32
	q    []int8
}

// decodeRow fills r from row i of w: its stored bytes, or (weights
// expanded at load) its float32 values recovered as Q8_0 codes, using
// buf (at least w.cols floats) as scratch.
func (r *q0Row) decodeRow(w *weight, i int, buf []float32) {
	if w.raw != nil {
		r.decode(w.raw[i*w.rowBytes:(i+1)*w.rowBytes], w.typ, w.cols)
		return
	}
	row := buf[:w.cols]
	w.dequantRow(row, i)
	r.recoverQ8_0(row)
}

// decode fills r from row (the stored bytes) of type t, k elements.
func (r *q0Row) decode(row []byte, t graph.Type, k int) {
	nb := k / 32
	if cap(r.q) < k {
		r.d, r.m, r.q = make([]float32, nb), make([]float32, nb), make([]int8, k)
	}
	r.d, r.m, r.q = r.d[:nb], r.m[:nb], r.q[:k]
	f16 := func(b []byte) float32 { return quantize.FP16ToFP32(binary.LittleEndian.Uint16(b)) }
	for b := 0; b < nb; b++ {
		q := r.q[b*32 : (b+1)*32]
		switch t {
		case graph.Q8_0:
			blk := row[b*34 : (b+1)*34]
			r.d[b] = f16(blk)
			for i := range q {
				q[i] = int8(blk[2+i])
			}
		case graph.Q4_0, graph.Q4_1:
			size, off, bias := 18, 2, int8(8)
			if t == graph.Q4_1 {
				size, off, bias = 20, 4, 0
				r.m[b] = f16(row[b*size+2:])
			}
			blk := row[b*size : (b+1)*size]
			r.d[b] = f16(blk)
			for j := 0; j < 16; j++ {
				q[j] = int8(blk[off+j]&0xf) - bias
				q[j+16] = int8(blk[off+j]>>4) - bias
			}
		case graph.Q5_0, graph.Q5_1:
			size, off, bias := 22, 2, int8(16)
			if t == graph.Q5_1 {
				size, off, bias = 24, 4, 0
				r.m[b] = f16(row[b*size+2:])
			}
			blk := row[b*size : (b+1)*size]
			r.d[b] = f16(blk)
			qh := binary.LittleEndian.Uint32(blk[off:])
			qs := blk[off+4:]
			for j := 0; j < 16; j++ {
				h0 := byte((qh>>uint(j))<<4) & 0x10
				h1 := byte(qh>>uint(j+12)) & 0x10
				q[j] = int8(qs[j]&0xf|h0) - bias
				q[j+16] = int8(qs[j]>>4|h1) - bias
			}
		}
	}
}

// recoverQ8_0 fills r from a Q8_0 row expanded to float32 (the stored
// bytes dropped): a block's largest magnitude is 127·d, since
// quantize_row_q8_0 maps it to ±127.
func (r *q0Row) recoverQ8_0(row []float32) {
	b := newQ8Blocks(row)
	r.d, r.q = b.d, b.q
}

// mulTileQ0 is mulTile for weights of 32-element blocks in ggml's order
// (tinyBLAS_Q0_AVX and the ggml_vec_dot_*_q8_* kernels alike): per block
// the exact integer dot products of 8 groups of 4 codes, each scaled by
// fp16(d_w)·fp16(d_x) with a fused multiply-add into its own float32 lane,
// the lanes reduced as hsum_float_8 does; for Q4_1/Q5_1 the minimum terms
// m_w·s_x are summed separately (fused) and added last.
func mulTileQ0(dst []float32, w *weight, a *q8Blocks, s []float32, nTok, tile int, buf []float32, repack bool) {
	k, n := w.cols, w.rows
	nb := k / 32
	r0 := tile * rowTile
	r1 := min(r0+rowTile, n)
	mins := w.typ == graph.Q4_1 || w.typ == graph.Q5_1
	if useSIMD && !repack && nTok > 0 {
		mulTileQ0SIMD(dst, w, a, s, nTok, r0, r1, buf, mins)
		return
	}
	if useSIMD && useQ0VNNI && repack && a.u != nil && r1-r0 <= 16 && nTok > 0 {
		mulTileQ0Rep16(dst, w, a, nTok, r0, r1, buf)
		return
	}
	var wr q0Row
	for r := r0; r < r1; r++ {
		wr.decodeRow(w, r, buf)
		if repack {
			for t := 0; t < nTok; t++ {
				var acc float32
				for b := 0; b < nb; b++ {
					qw := wr.q[b*32 : (b+1)*32]
					qa := a.q[(t*nb+b)*32 : (t*nb+b+1)*32]
					var isum int32
					for i, c := range qw {
						isum += int32(c) * int32(qa[i])
					}
					acc = fma32(float32(isum), wr.d[b]*a.d[t*nb+b], acc)
				}
				dst[t*n+r] = acc
			}
			continue
		}
		for t := 0; t < nTok; t++ {
			var acc [8]float32
			var summs float32
			if useSIMD {
				dot := q0dot(&wr.q[0], &a.q[t*nb*32], &wr.d[0], &a.d[t*nb], nb)
				if mins {
					for b := 0; b < nb; b++ {
						summs = fma32(wr.m[b], s[t*nb+b], summs)
					}
				}
				dst[t*n+r] = dot + summs
				continue
			}
			for b := 0; b < nb; b++ {
				qw := wr.q[b*32 : (b+1)*32]
				qa := a.q[(t*nb+b)*32 : (t*nb+b+1)*32]
				if mins {
					summs = fma32(wr.m[b], s[t*nb+b], summs)
				}
				d := wr.d[b] * a.d[t*nb+b]
				for m := range acc {
					var s int32
					for i := 4 * m; i < 4*m+4; i++ {
						s += int32(qw[i]) * int32(qa[i])
					}
					acc[m] = fma32(d, float32(s), acc[m])
				}
			}
			dst[t*n+r] = reduce8(&acc) + summs
		}
	}
}

// reduce8 is hsum_float_8 (and tinyBLAS's hsum of a __m256): the halves
// added lane-wise, then lanes (0+2) + (1+3).
func reduce8(a *[8]float32) float32 {
	var c [4]float32
	for i := range c {
		c[i] = a[i+4] + a[i]
	}
	return (c[0] + c[2]) + (c[1] + c[3])
}

// permuteDPBF16 reorders each 32-element block of x as [odd elements of
// 0-15, odd of 16-31, even of 0-15, even of 16-31]: on that layout
// tinyBLAS<16>'s lanes (dot4x1t16) add the products in VDPBF16PS's order
// (lane j of each half: element 2j+1, then 2j).
func permuteDPBF16(x []float32) {
	var blk [32]float32
	for i := 0; i+32 <= len(x); i += 32 {
		copy(blk[:], x[i:i+32])
		for j := 0; j < 8; j++ {
			x[i+j] = blk[2*j+1]
			x[i+8+j] = blk[16+2*j+1]
			x[i+16+j] = blk[2*j]
			x[i+24+j] = blk[16+2*j]
		}
	}
}

// q8KBlocks is a batch of activation rows as Q8_K blocks of 256
// (quantize_row_q8_K_ref): scale, codes and the sums of each 16 codes.
type q8KBlocks struct {
	d     []float32
	q     []int8
	bsums []int32
	bs16  []int16 // bsums as int16, as block_q8_K stores them (|Σ| <= 16·127)
	// quadK, xdq, bsq: for rows of quadK values, d and bs16 of each four
	// tokens interleaved by block (see makeQuads); quadK 0: not made.
	quadK int
	xdq   []float32
	bsq   []int16
}

func newQ8KBlocks(x []float32) *q8KBlocks {
	b := new(q8KBlocks)
	b.fill(x, 1)
	return b
}

// fill makes b the Q8_K blocks of x (see newQ8KBlocks), reusing b's
// slices, with up to threads workers; the four-token layout (makeQuads)
// is dropped.
func (b *q8KBlocks) fill(x []float32, threads int) {
	nb := len(x) / 256
	b.d, b.q = growT(b.d, nb), growT(b.q, nb*256)
	b.bsums, b.bs16 = growT(b.bsums, nb*16), growT(b.bs16, nb*16)
	b.quadK, b.xdq, b.bsq = 0, nil, nil
	const per = 8 // blocks per work item
	parallelFor(max(threads, 1), (nb+per-1)/per, func(_, item int) {
		for i := item * per; i < min((item+1)*per, nb); i++ {
			blk := x[i*256 : (i+1)*256]
			q := b.q[i*256 : (i+1)*256]
			var amax, mx float32
			for _, v := range blk {
				if a := float32(math.Abs(float64(v))); a > amax {
					amax, mx = a, v
				}
			}
			if amax == 0 {
				clear(q)
				clear(b.bsums[i*16 : (i+1)*16])
				clear(b.bs16[i*16 : (i+1)*16])
				b.d[i] = 0
				continue
			}
			iscale := -127 / mx
			for j, v := range blk {
				q[j] = int8(min(nearestInt(iscale*v), 127))
			}
			for j := 0; j < 16; j++ {
				var s int32
				for _, c := range q[j*16 : (j+1)*16] {
					s += int32(c)
				}
				b.bsums[i*16+j] = s
				b.bs16[i*16+j] = int16(s)
			}
			b.d[i] = 1 / iscale
		}
	})
}

// laneSumsScaled writes, for the chunks of 32 codes of w and x in groups
// of per chunks, out[8g+m] = Σ over the chunks c of group g of
// sc2[2c+m/4] times the sum of the products of codes 32c+4m .. 32c+4m+3:
// the lanes the K-quant AVX2 kernels accumulate with maddubs/madd, sc2
// holding the scale of the first and of the second 16 codes of each chunk.
func laneSumsScaled(w, x []int8, sc2 []int16, per int, out []int32) {
	n := len(w) / 32
	clear(out[:n/per*8])
	for c := 0; c < n; c++ {
		o := out[c/per*8 : c/per*8+8]
		for m := 0; m < 8; m++ {
			i := 32*c + 4*m
			s := int32(w[i])*int32(x[i]) + int32(w[i+1])*int32(x[i+1]) + int32(w[i+2])*int32(x[i+2]) + int32(w[i+3])*int32(x[i+3])
			o[m] += int32(sc2[2*c+m/4]) * s
		}
	}
}

// kRow is one K-quant weight row decoded for the exact orders: the codes,
// the integer scales (and minimums) of each group, the block scales.
type kRow struct {
	q       []int8
	sc, mn  []int32
	d, dmin []float32
	sc2     []int16 // per chunk of 32: the scales of its two 16s
	lanes   []int32 // laneSumsScaled of q with one token's codes
}

func (r *kRow) init(k, groups int) {
	nb := k / 256
	if len(r.q) != k || len(r.sc) != nb*groups {
		r.q, r.lanes, r.sc2 = make([]int8, k), make([]int32, k/4), make([]int16, k/16)
		r.sc, r.mn = make([]int32, nb*groups), make([]int32, nb*groups)
		r.d, r.dmin = make([]float32, nb), make([]float32, nb)
	}
}

func f16at(b []byte) float32 { return quantize.FP16ToFP32(binary.LittleEndian.Uint16(b)) }

// scaleMinK4 is get_scale_min_k4: the 6-bit scale and minimum j of Q4_K
// and Q5_K.
func scaleMinK4(j int, q []byte) (int32, int32) {
	if j < 4 {
		return int32(q[j] & 63), int32(q[j+4] & 63)
	}
	return int32(q[j+4]&0xf | (q[j-4]>>6)<<4), int32(q[j+4]>>4 | (q[j]>>6)<<4)
}

// decodeK fills r from row, k elements of K-quant type t: codes as the
// AVX2 kernels multiply them (Q6_K 0..63, Q5_K 0..31, Q4_K 0..15, Q3_K
// −4..3, Q2_K 0..3), scales per 16 (Q6_K, Q3_K, Q2_K) or 32 elements.
func (r *kRow) decodeK(row []byte, t graph.Type, k int) {
	nb := k / 256
	switch t {
	case graph.Q6_K:
		r.init(k, 16)
		for b := 0; b < nb; b++ {
			blk := row[b*210 : (b+1)*210]
			ql, qh, scales := blk[:128], blk[128:192], blk[192:208]
			r.d[b] = f16at(blk[208:])
			for i := 0; i < 16; i++ {
				r.sc[b*16+i] = int32(int8(scales[i]))
			}
			q := r.q[b*256 : (b+1)*256]
			for h := 0; h < 2; h++ {
				for l := 0; l < 32; l++ {
					lo, hi, qb := ql[h*64+l], ql[h*64+l+32], qh[h*32+l]
					q[h*128+l] = int8(lo&0xf | (qb&3)<<4)
					q[h*128+l+32] = int8(hi&0xf | (qb>>2&3)<<4)
					q[h*128+l+64] = int8(lo>>4 | (qb>>4&3)<<4)
					q[h*128+l+96] = int8(hi>>4 | (qb>>6&3)<<4)
				}
			}
		}
	case graph.Q5_K, graph.Q4_K:
		size := 176
		if t == graph.Q4_K {
			size = 144
		}
		r.init(k, 8)
		for b := 0; b < nb; b++ {
			blk := row[b*size : (b+1)*size]
			r.d[b], r.dmin[b] = f16at(blk), f16at(blk[2:])
			scales := blk[4:16]
			for j := 0; j < 8; j++ {
				r.sc[b*8+j], r.mn[b*8+j] = scaleMinK4(j, scales)
			}
			q := r.q[b*256 : (b+1)*256]
			if t == graph.Q4_K {
				qs := blk[16:144]
				for j := 0; j < 4; j++ {
					for l := 0; l < 32; l++ {
						q[j*64+l], q[j*64+32+l] = int8(qs[j*32+l]&0xf), int8(qs[j*32+l]>>4)
					}
				}
				continue
			}
			qh, ql := blk[16:48], blk[48:176]
			for j := 0; j < 4; j++ {
				for l := 0; l < 32; l++ {
					lo, hi := ql[j*32+l]&0xf, ql[j*32+l]>>4
					if qh[l]&(1<<uint(2*j)) != 0 {
						lo += 16
					}
					if qh[l]&(1<<uint(2*j+1)) != 0 {
						hi += 16
					}
					q[j*64+l], q[j*64+32+l] = int8(lo), int8(hi)
				}
			}
		}
	case graph.Q3_K:
		r.init(k, 16)
		for b := 0; b < nb; b++ {
			blk := row[b*110 : (b+1)*110]
			hm, qs, sb := blk[:32], blk[32:96], blk[96:108]
			r.d[b] = f16at(blk[108:])
			const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
			a0, a1, tmp := binary.LittleEndian.Uint32(sb), binary.LittleEndian.Uint32(sb[4:]), binary.LittleEndian.Uint32(sb[8:])
			aux := [4]uint32{
				a0&kmask2 | (tmp>>0&kmask1)<<4, a1&kmask2 | (tmp>>2&kmask1)<<4,
				a0>>4&kmask2 | (tmp>>4&kmask1)<<4, a1>>4&kmask2 | (tmp>>6&kmask1)<<4,
			}
			for i := 0; i < 16; i++ {
				r.sc[b*16+i] = int32(int8(aux[i/4]>>(8*uint(i%4)))) - 32
			}
			q := r.q[b*256 : (b+1)*256]
			for j := 0; j < 2; j++ {
				for v := 0; v < 4; v++ {
					bit := uint(4*j + v)
					for l := 0; l < 32; l++ {
						c := int8(qs[j*32+l]>>(2*uint(v))) & 3
						if hm[l]&(1<<bit) == 0 {
							c -= 4
						}
						q[j*128+32*v+l] = c
					}
				}
			}
		}
	case graph.Q2_K:
		r.init(k, 16)
		for b := 0; b < nb; b++ {
			blk := row[b*84 : (b+1)*84]
			scales, qs := blk[:16], blk[16:80]
			r.d[b], r.dmin[b] = f16at(blk[80:]), f16at(blk[82:])
			for g := 0; g < 16; g++ {
				r.sc[b*16+g], r.mn[b*16+g] = int32(scales[g]&0xf), int32(scales[g]>>4)
			}
			q := r.q[b*256 : (b+1)*256]
			for e := range q {
				h, j, l := e/128, (e%128)/32, e%32
				q[e] = int8(qs[h*32+l]>>(2*uint(j))) & 3
			}
		}
	}
	groups := len(r.sc) / nb // 16 or 8 scales per block
	for c := 0; c < k/32; c++ {
		if groups == 16 {
			r.sc2[2*c], r.sc2[2*c+1] = int16(r.sc[2*c]), int16(r.sc[2*c+1])
		} else {
			r.sc2[2*c], r.sc2[2*c+1] = int16(r.sc[c]), int16(r.sc[c])
		}
	}
}

// mulTileK is mulTile for the K-quants in the order of the kernel
// llama.cpp runs for them (see the package documentation):
//
//   - Q3_K, Q5_K, Q6_K: ggml_vec_dot_q*_K_q8_K (AVX2). Per block of 256, 8
//     int32 lanes, lane m holding Σ scale·q·q8 over the elements e with
//     (e mod 32)/4 = m, each lane added by a fused multiply-add with
//     d_x·fp16(d_w), then hsum_float_8; Q6_K subtracts 32·Σ scale·bsum
//     from the lanes (its codes are 0..63), Q5_K adds the minimums
//     −d_x·fp16(dmin)·Σ min·bsum into a separate sum (fused) added last.
//   - repacked Q4_K and Q2_K: repack.cpp's q*_K_8x8 GEMM/GEMV. Per output,
//     the integer sums Σ scale·q·q8 and Σ min·bsum are scaled by
//     fp16(d_w)·d_x and fp16(dmin_w)·d_x into two float32 accumulators by
//     fused multiply-adds, and the result is their difference. The AVX-512
//     GEMM (token rows before gemvFrom) adds once per 64 (Q4_K) or 128
//     (Q2_K) elements, the GEMV (routed experts, the rows left over) once
//     per 256.
func mulTileK(dst []float32, w *weight, o dotOrder, a *q8KBlocks, nTok, gemvFrom, tile int) {
	k, n := w.cols, w.rows
	nb := k / 256
	r0 := tile * rowTile
	r1 := min(r0+rowTile, n)
	per := 8 // chunks of 32 per lane group: a block of 256
	switch o {
	case orderQ4KRepack:
		per = 2 // the GEMM's 64 elements
	case orderQ2KRepack:
		per = 4 // 128
	}
	if useSIMD && nTok > 0 {
		if useKRepackZ && a.quadK == k && (o == orderQ4KRepack || o == orderQ2KRepack) {
			mulTileKRepackZ(dst, w, o, a, nTok, gemvFrom, r0, r1)
			return
		}
		mulTileKFused(dst, w, o, a, nTok, gemvFrom, r0, r1)
		return
	}
	var wr kRow
	for r := r0; r < r1; r++ {
		wr.decodeK(w.raw[r*w.rowBytes:(r+1)*w.rowBytes], w.typ, k)
		for t := 0; t < nTok; t++ {
			laneSumsScaled(wr.q, a.q[t*k:(t+1)*k], wr.sc2, per, wr.lanes)
			switch o {
			case orderQ3K, orderQ5K, orderQ6K:
				var acc [8]float32
				var summs float32
				for b := 0; b < nb; b++ {
					lanes := wr.lanes[b*8 : b*8+8]
					bs := a.bsums[(t*nb+b)*16 : (t*nb+b+1)*16]
					xd := a.d[t*nb+b]
					switch o {
					case orderQ5K:
						mn := wr.mn[b*8 : (b+1)*8]
						var mins int32
						for c := 0; c < 8; c++ {
							mins += mn[c] * (bs[2*c] + bs[2*c+1])
						}
						summs = fma32(-xd*wr.dmin[b], float32(mins), summs)
					case orderQ6K:
						sc := wr.sc[b*16 : (b+1)*16]
						for m := range lanes {
							lanes[m] -= 32 * (bs[2*m]*sc[2*m] + bs[2*m+1]*sc[2*m+1])
						}
					}
					d := xd * wr.d[b]
					for m, v := range lanes {
						acc[m] = fma32(d, float32(v), acc[m])
					}
				}
				dst[t*n+r] = reduce8(&acc) + summs
			case orderQ4KRepack, orderQ2KRepack:
				var acc, accMin float32
				for b := 0; b < nb; b++ {
					bs := a.bsums[(t*nb+b)*16 : (t*nb+b+1)*16]
					xd := a.d[t*nb+b]
					var isumB, iminB int32
					for c0 := 0; c0 < 8; c0 += per {
						var isum, imin int32
						for _, v := range wr.lanes[(b*8+c0)/per*8 : (b*8+c0)/per*8+8] {
							isum += v
						}
						for c := c0; c < c0+per; c++ {
							if o == orderQ4KRepack {
								imin += wr.mn[b*8+c] * (bs[2*c] + bs[2*c+1])
							} else {
								imin += wr.mn[b*16+2*c]*bs[2*c] + wr.mn[b*16+2*c+1]*bs[2*c+1]
							}
						}
						if t < gemvFrom {
							acc = fma32(float32(isum), wr.d[b]*xd, acc)
							accMin = fma32(float32(imin), wr.dmin[b]*xd, accMin)
						} else {
							isumB += isum
							iminB += imin
						}
					}
					if t >= gemvFrom {
						acc = fma32(float32(isumB), wr.d[b]*xd, acc)
						accMin = fma32(float32(iminB), wr.dmin[b]*xd, accMin)
					}
				}
				dst[t*n+r] = acc - accMin
			}
		}
	}
}
