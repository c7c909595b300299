package perplexity

import (
	"sync"

	"github.com/quantbridge/quantbridge/graph"
)

// Fused K-quant products.
//
// mulTileK decodes each weight row of its tile once (kRow) and multiplies
// it against every token of the batch. With the SIMD kernels one call of
// kVecDot (Q3_K, Q5_K, Q6_K) or kRepackDot (repacked Q4_K, Q2_K) computes
// the row's products with all tokens in ggml's order: the integer lanes
// (exact in any grouping) and the float steps (conversions, fused
// multiply-adds, hsum_float_8) that make the order, so no per-token work is
// left in Go. The portable loop of mulTileK is their definition and is
// tested against them bit for bit (TestFusedKQuantSIMD).

// Mode bits of kVecDot.
const (
	kSigned = 1 << iota // codes are signed (Q3_K): VPSIGNB before VPMADDUBSW
	kCorr32             // Q6_K: lanes −= 32·maddwd(bsums, scales)
	kMins               // Q5_K: separate sum of the minimums
)

// fusedK holds the per-row tables the fused kernels read besides the
// codes: scv, 16 int16 per chunk of 32 (lanes 0-7 the scale of its first
// 16 codes, 8-15 of its second: VPMADDWD's multipliers after VPMADDUBSW);
// aux, 16 int16 per block of 256 multiplied with the block's bsums (Q6_K:
// its 16 scales; Q5_K, Q4_K: each minimum twice; Q2_K: its 16 minimums);
// wdm, per block the float32 that multiplies the minimum sum (Q5_K:
// −dmin, the repacked orders: dmin).
type fusedK struct {
	scv, aux []int16
	wdm      []float32
}

// prepare fills f from a decoded row r of type t.
func (f *fusedK) prepare(r *kRow, t graph.Type) {
	k := len(r.q)
	nb := k / 256
	if len(f.scv) != k/2 {
		f.scv, f.aux, f.wdm = make([]int16, k/2), make([]int16, nb*16), make([]float32, nb)
	}
	for c := 0; c < k/32; c++ {
		s := f.scv[c*16 : c*16+16]
		for i := 0; i < 8; i++ {
			s[i], s[8+i] = r.sc2[2*c], r.sc2[2*c+1]
		}
	}
	for b := 0; b < nb; b++ {
		a := f.aux[b*16 : b*16+16]
		switch t {
		case graph.Q6_K:
			for i := range a {
				a[i] = int16(r.sc[b*16+i])
			}
		case graph.Q5_K, graph.Q4_K:
			for c := 0; c < 8; c++ {
				a[2*c], a[2*c+1] = int16(r.mn[b*8+c]), int16(r.mn[b*8+c])
			}
		case graph.Q2_K:
			for i := range a {
				a[i] = int16(r.mn[b*16+i])
			}
		}
		switch t {
		case graph.Q5_K:
			f.wdm[b] = -r.dmin[b]
		case graph.Q4_K, graph.Q2_K:
			f.wdm[b] = r.dmin[b]
		}
	}
}

// mulRowKFused computes dst[t·ldd] for tokens [t0, t1) of row wr (its
// tables f) with the SIMD kernels: whole fours of tokens (aligned to 4)
// by the AVX-512 kernels where the CPU has them and the activations have
// their four-token layout, the others one by one.
func mulRowKFused(dst []float32, ldd int, wr *kRow, f *fusedK, o dotOrder, a *q8KBlocks, k, t0, t1, gemvFrom int) {
	nb := k / 256
	repack := o == orderQ4KRepack || o == orderQ2KRepack
	mode := 0
	switch o {
	case orderQ3K:
		mode = kSigned
	case orderQ6K:
		mode = kCorr32
	case orderQ5K:
		mode = kMins
	}
	quads := useAVX512 && a.quadK == k && mode&kSigned == 0
	single := func(t0, t1, per int) {
		if t1 <= t0 {
			return
		}
		_ = dst[(t1-1)*ldd]
		_ = a.q[t1*k-1]
		x, xd, bs := &a.q[t0*k], &a.d[t0*nb], &a.bs16[t0*nb*16]
		if repack {
			kRepackDot(&wr.q[0], &f.scv[0], &f.aux[0], &wr.d[0], &f.wdm[0], x, xd, bs, nb, t1-t0, per, &dst[t0*ldd], ldd)
		} else {
			kVecDot(&wr.q[0], &f.scv[0], &f.aux[0], &wr.d[0], &f.wdm[0], x, xd, bs, nb, t1-t0, mode, &dst[t0*ldd], ldd)
		}
	}
	run := func(t0, t1, per int) {
		q0, q1 := (t0+3)/4, t1/4
		if !quads || q1 <= q0 {
			single(t0, t1, per)
			return
		}
		single(t0, 4*q0, per)
		_ = dst[(4*q1-1)*ldd]
		_ = a.bsq[q1*nb*64-1]
		for q := q0; q < q1; q++ {
			x, xdq, bsq := &a.q[4*q*k], &a.xdq[q*nb*4], &a.bsq[q*nb*64]
			if repack {
				kRepackDot4z(&wr.q[0], &f.scv[0], &f.aux[0], &wr.d[0], &f.wdm[0], x, k, xdq, bsq, nb, per, &dst[4*q*ldd], ldd)
			} else {
				kVecDot4z(&wr.q[0], &f.scv[0], &f.aux[0], &wr.d[0], &f.wdm[0], x, k, xdq, bsq, nb, mode, &dst[4*q*ldd], ldd)
			}
		}
		single(4*q1, t1, per)
	}
	if !repack {
		run(t0, t1, 0)
		return
	}
	per := 2
	if o == orderQ2KRepack {
		per = 4
	}
	g := min(max(gemvFrom, t0), t1)
	run(t0, g, per)
	run(g, t1, 8)
}

// makeQuads fills b.xdq and b.bsq for rows of k values: for each four
// tokens 4q..4q+3 and block j of a row, the four scales d (xdq[(q·nb+j)·4
// + t]) and the four tokens' 16 bsums (bsq[((q·nb+j)·4+t)·16 ...]), the
// layout kRepackDot4z reads. Tokens past the last whole four have none.
func (b *q8KBlocks) makeQuads(k int) {
	nb := k / 256
	if nb == 0 {
		return
	}
	nq := len(b.d) / nb / 4
	b.xdq, b.bsq = make([]float32, nq*nb*4), make([]int16, nq*nb*64)
	for q := 0; q < nq; q++ {
		for j := 0; j < nb; j++ {
			for t := 0; t < 4; t++ {
				src := (4*q+t)*nb + j
				dst := (q*nb+j)*4 + t
				b.xdq[dst] = b.d[src]
				copy(b.bsq[dst*16:dst*16+16], b.bs16[src*16:src*16+16])
			}
		}
	}
	b.quadK = k
}

// kTile is a tile of decoded K-quant rows, reused through kTilePool.
type kTile struct {
	rows [rowTile]kRow
	f    [rowTile]fusedK
}

var kTilePool = sync.Pool{New: func() any { return new(kTile) }}

// mulTileKFused is mulTileK with the SIMD kernels for rows [r0, r1): the
// rows are decoded once, then each block of tokens (small enough to stay
// in L2) meets every row of the tile.
func mulTileKFused(dst []float32, w *weight, o dotOrder, a *q8KBlocks, nTok, gemvFrom, r0, r1 int) {
	k, n := w.cols, w.rows
	kt := kTilePool.Get().(*kTile)
	defer kTilePool.Put(kt)
	for r := r0; r < r1; r++ {
		kt.rows[r-r0].decodeK(w.raw[r*w.rowBytes:(r+1)*w.rowBytes], w.typ, k)
		kt.f[r-r0].prepare(&kt.rows[r-r0], w.typ)
	}
	tb := max(4, (128<<10)/k/4*4)
	for t0 := 0; t0 < nTok; t0 += tb {
		t1 := min(t0+tb, nTok)
		for r := r0; r < r1; r++ {
			mulRowKFused(dst[r:], n, &kt.rows[r-r0], &kt.f[r-r0], o, a, k, t0, t1, gemvFrom)
		}
	}
}

// mulTileT16 is the SIMD tile of the tinyBLAS<16> orders: nr rows (a
// multiple of 4) times nTok tokens into dst (row stride ldd), with the
// AVX-512 kernel where the CPU has it, else four rows per dot4x1t16 call.
func mulTileT16(dst []float32, ldd int, x []float32, k, nTok int, rows []float32, nr int) {
	if useAVX512 {
		mulTileT16z(dst, ldd, x, k, nTok, rows, nr)
		return
	}
	var d4 [4]float32
	for r := 0; r < nr; r += 4 {
		for t := 0; t < nTok; t++ {
			dot4x1t16(&x[t*k], &rows[r*k], k, k, &d4[0])
			copy(dst[t*ldd+r:t*ldd+r+4], d4[:])
		}
	}
}

// mulTileT16z is the tinyBLAS<16> tile loop with the AVX-512 kernel:
// dst[t·ldd+r] = x_t · rows_r for t < nTok, r < nr (nr a multiple of 4, k
// of 16), four tokens by four rows per call, tokens in blocks that stay in
// L2 while the tile's rows pass over them.
func mulTileT16z(dst []float32, ldd int, x []float32, k, nTok int, rows []float32, nr int) {
	_ = dst[(nTok-1)*ldd+nr-1]
	_ = x[nTok*k-1]
	_ = rows[nr*k-1]
	tb := max(4, (256<<10)/(4*k)/4*4)
	for t0 := 0; t0 < nTok; t0 += tb {
		t1 := min(t0+tb, nTok)
		for r := 0; r < nr; r += 4 {
			t := t0
			for ; t+4 <= t1; t += 4 {
				dot4x4t16z(&x[t*k], k, &rows[r*k], k, k, &dst[t*ldd+r], ldd)
			}
			var d4 [4]float32
			for ; t < t1; t++ {
				dot4x1t16(&x[t*k], &rows[r*k], k, k, &d4[0])
				copy(dst[t*ldd+r:t*ldd+r+4], d4[:])
			}
		}
	}
}

// q0Tile is a tile of decoded 32-element-block rows, reused through
// q0TilePool. The rows' codes, scales and minimums are views of q, d and m,
// row after row (q0dot4x4 takes four rows as one address).
type q0Tile struct {
	rows [rowTile]q0Row
	q    []int8
	d, m []float32
	mt   []float32 // the minimums transposed for q0mins16
	// The rows laid out for q0rep16 (mulTileQ0Rep16).
	rep     []int8
	repCorr []int32
	repD    []float32
}

// decode fills qt.rows[:r1-r0] with rows [r0, r1) of w (see
// q0Row.decodeRow), row i's codes at q[i·k:] and its scales and minimums
// at d[i·nb:], m[i·nb:].
func (qt *q0Tile) decode(w *weight, r0, r1 int, buf []float32) {
	k := w.cols
	nb := k / 32
	nr := r1 - r0
	qt.q, qt.d, qt.m = growT(qt.q, nr*k), growT(qt.d, nr*nb), growT(qt.m, nr*nb)
	for i := range nr {
		q := qt.q[i*k : (i+1)*k : (i+1)*k]
		d := qt.d[i*nb : (i+1)*nb : (i+1)*nb]
		r := &qt.rows[i]
		r.q, r.d, r.m = q, d, qt.m[i*nb:(i+1)*nb:(i+1)*nb]
		r.decodeRow(w, r0+i, buf)
		if &r.q[0] != &q[0] {
			// Recovered from float32 (recoverQ8_0) into slices of its own.
			copy(q, r.q)
			copy(d, r.d)
			r.q, r.d = q, d
		}
	}
}

var q0TilePool = sync.Pool{New: func() any { return new(q0Tile) }}

// mulTileQ0SIMD is mulTileQ0's orderQ0 loop with the SIMD kernels for
// rows [r0, r1): the rows decoded once, then each L2-sized block of tokens
// meets every row, eight or four tokens per call (q0dot4x8, q0dot4x4:
// four rows; q0dot2x4: a last pair; q0dot4: one row); the Q4_1/Q5_1
// minimum terms (mins) are added in the portable loop's order, by
// q0mins16 for all the tile's rows with AVX-512, else in Go row by row.
func mulTileQ0SIMD(dst []float32, w *weight, a *q8Blocks, s []float32, nTok, r0, r1 int, buf []float32, mins bool) {
	k, n := w.cols, w.rows
	nb := k / 32
	qt := q0TilePool.Get().(*q0Tile)
	defer q0TilePool.Put(qt)
	// Stored Q8_0 rows go to the raw kernels (q0dot4x8raw, q0dot4x4raw,
	// q0dot2x4raw) in place when they cover the whole tile (pairs of rows,
	// whole fours of tokens: the token blocks below are multiples of 4);
	// otherwise the rows are decoded first.
	inPlace := useQ0VNNI && a.u != nil && w.typ == graph.Q8_0 && w.raw != nil && (r1-r0)%2 == 0 && nTok%4 == 0 && !mins
	if !inPlace {
		qt.decode(w, r0, r1, buf)
	}
	_ = dst[(nTok-1)*n+r1-1]
	_ = a.q[nTok*k-1]
	tb := max(8, (128<<10)/k/8*8) // whole eights of tokens for q0dot4x8
	// With AVX-512 the minimum terms of the tile's rows are added by
	// q0mins16 for each token block, from the minimums transposed.
	minsZ := mins && useAVX512 && r1-r0 <= 16
	if minsZ {
		qt.mt = growT(qt.mt, 16*nb)
		clear(qt.mt)
		for i := range r1 - r0 {
			for b, m := range qt.rows[i].m {
				qt.mt[16*b+i] = m
			}
		}
	}
	// tail finishes row r for tokens [t, t1) and adds the minimum terms
	// of tokens [t0, t1) (those q0mins16 does not add).
	tail := func(wr *q0Row, r, t0, t, t1 int) {
		for ; t < t1; t++ {
			dst[t*n+r] = q0dot(&wr.q[0], &a.q[t*k], &wr.d[0], &a.d[t*nb], nb)
		}
		if mins && !minsZ {
			for t := t0; t < t1; t++ {
				var summs float32
				for b := 0; b < nb; b++ {
					summs = fma32(wr.m[b], s[t*nb+b], summs)
				}
				dst[t*n+r] += summs
			}
		}
	}
	for t0 := 0; t0 < nTok; t0 += tb {
		t1 := min(t0+tb, nTok)
		r := r0
		if useQ0VNNI && a.u != nil {
			// Four rows by eight tokens per call, then by four; then two
			// rows by four tokens.
			for ; r+4 <= r1; r += 4 {
				t := t0
				if inPlace {
					rb := w.rowBytes
					for ; t+8 <= t1; t += 8 {
						q0dot4x8raw(&w.raw[r*rb], rb, &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
					}
					if t < t1 { // four tokens left: t1−t0 and tb are multiples of 4
						q0dot4x4raw(&w.raw[r*rb], rb, &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
					}
					continue
				}
				i := r - r0
				for ; t+8 <= t1; t += 8 {
					q0dot4x8(&qt.q[i*k], &qt.d[i*nb], &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
				}
				for ; t+4 <= t1; t += 4 {
					q0dot4x4(&qt.q[i*k], &qt.d[i*nb], &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
				}
				for j := range 4 {
					tail(&qt.rows[i+j], r+j, t0, t, t1)
				}
			}
			for ; r+2 <= r1; r += 2 {
				if inPlace {
					rb := w.rowBytes
					for t := t0; t < t1; t += 4 {
						q0dot2x4raw(&w.raw[r*rb], &w.raw[(r+1)*rb], &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
					}
					continue
				}
				w0, w1 := &qt.rows[r-r0], &qt.rows[r+1-r0]
				t := t0
				for ; t+4 <= t1; t += 4 {
					q0dot2x4(&w0.q[0], &w1.q[0], &w0.d[0], &w1.d[0], &a.u[t*k], k, &a.d[t*nb], nb, &dst[t*n+r], n)
				}
				tail(w0, r, t0, t, t1)
				tail(w1, r+1, t0, t, t1)
			}
		}
		for ; r < r1; r++ {
			wr := &qt.rows[r-r0]
			t := t0
			for ; t+4 <= t1; t += 4 {
				q0dot4(&wr.q[0], &a.q[t*k], k, &wr.d[0], &a.d[t*nb], nb, &dst[t*n+r], n)
			}
			tail(wr, r, t0, t, t1)
		}
		if minsZ {
			q0mins16(&dst[t0*n+r0], n, &qt.mt[0], &s[t0*nb], nb, t1-t0, uint16(1<<(r1-r0)-1))
		}
	}
}
