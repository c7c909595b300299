package perplexity

import (
	"sync"

	"github.com/quantbridge/quantbridge/graph"
)

// The repacked Q4_K and Q2_K orders sixteen rows at a time.
//
// kRepackDot and kRepackDot4z multiply one weight row with one or four
// tokens, so each float step of repack.cpp's order needs the integer sums
// of that one output gathered from the lanes of a register. ggml's
// q4_K_8x8 GEMM instead keeps one lane per weight row (its AVX-512 path:
// two 8-row blocks, 16 rows, per register): mulTileKRepackZ decodes a
// tile's codes once into groups of four per row, interleaved across its
// rows (kTileZ), and kRepack16x4z computes the 16 rows' integer sums for four
// tokens in 16 int32 lanes per token (VPDPBUSD with the tokens' codes
// broadcast), then runs the float steps for all 16 rows by vector
// instructions. The integers are exact, the float steps per output the
// same as kRepackDot's, so the results are the same bits (tested by
// TestFusedKQuantSIMD against mulTileK's portable loop).

// kTileZ is a tile of decoded repacked-order rows and their arrangement
// for kRepack16x4z, reused through kTileZPool:
//
//   - wq: for each 4 elements e..e+3, the 4 codes of row 0, of row 1, …
//     of row 15 (64 bytes);
//   - sc: per scale region (Q4_K: 32 elements, Q2_K: 16), the int32 scale
//     of each row;
//   - mnp: per chunk c of 32 elements, each row's int16 pair of minimum
//     multipliers (fusedK.aux[2c], aux[2c+1]) as one int32;
//   - wd, wdm: per block of 256, each row's d and dmin.
//
// Rows past the tile's last (a tile of 8) are zero. rows and f are the
// decoded rows for kRepackDot, for the tokens left out of whole fours.
type kTileZ struct {
	rows    [rowTile]kRow
	f       [rowTile]fusedK
	wq      []uint8
	sc, mnp []int32
	wd, wdm []float32
}

var kTileZPool = sync.Pool{New: func() any { return new(kTileZ) }}

// arrange fills z.wq … z.wdm from rows [r0, r1) (at most 16) of w, of
// type Q4_K or Q2_K: the codes by kArrangeCodes, the scales and minimums
// as decodeK reads them.
func (z *kTileZ) arrange(w *weight, r0, r1 int) {
	k, t := w.cols, w.typ
	nb, nr := k/256, r1-r0
	region, q2 := 32, 0
	if t == graph.Q2_K {
		region, q2 = 16, 1
	}
	if len(z.wq) != k*16 || len(z.sc) != k/region*16 {
		z.wq, z.sc, z.mnp = make([]uint8, k*16), make([]int32, k/region*16), make([]int32, k/32*16)
		z.wd, z.wdm = make([]float32, nb*16), make([]float32, nb*16)
	}
	raw := w.raw[r0*w.rowBytes : r1*w.rowBytes]
	kArrangeCodes(&z.wq[0], &raw[0], w.rowBytes, nb, 1<<nr-1, q2)
	for r := 0; r < 16; r++ {
		if r >= nr {
			for j := 0; j < k/region; j++ {
				z.sc[j*16+r] = 0
			}
			for c := 0; c < k/32; c++ {
				z.mnp[c*16+r] = 0
			}
			for b := 0; b < nb; b++ {
				z.wd[b*16+r], z.wdm[b*16+r] = 0, 0
			}
			continue
		}
		row := raw[r*w.rowBytes : (r+1)*w.rowBytes]
		for b := 0; b < nb; b++ {
			mnp := (*[128]int32)(z.mnp[b*128:])
			switch t {
			case graph.Q4_K:
				blk := (*[144]byte)(row[b*144:])
				z.wd[b*16+r], z.wdm[b*16+r] = f16at(blk[:]), f16at(blk[2:])
				sc := (*[128]int32)(z.sc[b*128:])
				q := (*[12]byte)(blk[4:])
				// get_scale_min_k4 of chunks c and c+4.
				for c := 0; c < 4; c++ {
					s, m := int32(q[c]&63), int32(q[c+4]&63)
					sc[(c*16+r)&127], mnp[(c*16+r)&127] = s, m|m<<16
					s, m = int32(q[c+8]&0xf|(q[c]>>6)<<4), int32(q[c+8]>>4|(q[c+4]>>6)<<4)
					sc[(c*16+64+r)&127], mnp[(c*16+64+r)&127] = s, m|m<<16
				}
			case graph.Q2_K:
				blk := (*[84]byte)(row[b*84:])
				z.wd[b*16+r], z.wdm[b*16+r] = f16at(blk[80:]), f16at(blk[82:])
				sc := (*[256]int32)(z.sc[b*256:])
				for g := 0; g < 16; g++ {
					sc[(g*16+r)&255] = int32(blk[g] & 0xf)
				}
				for c := 0; c < 8; c++ {
					mnp[(c*16+r)&127] = int32(blk[2*c]>>4) | int32(blk[2*c+1]>>4)<<16
				}
			}
		}
	}
}

// mulTileKRepackZ is mulTileKFused for the repacked orders with
// kRepack16x4z (useKRepackZ, a.quadK == k): rows [r0, r1) (at most
// rowTile) decoded and arranged once, then every whole four of tokens
// before gemvFrom in the GEMM's grouping and every whole four from it in
// the GEMV's, the tokens left (the four that gemvFrom splits, those past
// the last whole four) row by row by mulRowKFused.
func mulTileKRepackZ(dst []float32, w *weight, o dotOrder, a *q8KBlocks, nTok, gemvFrom, r0, r1 int) {
	k, n := w.cols, w.rows
	nb, nr := k/256, r1-r0
	z := kTileZPool.Get().(*kTileZ)
	defer kTileZPool.Put(z)
	z.arrange(w, r0, r1)
	per, q2 := 2, 0
	if o == orderQ2KRepack {
		per, q2 = 4, 1
	}
	g := min(max(gemvFrom, 0), nTok)
	nq := nTok / 4
	if nq > 0 {
		_ = dst[(4*nq-1)*n+r1-1]
		_ = a.q[4*nq*k-1]
		_ = a.xdq[nq*nb*4-1]
		_ = a.bsq[nq*nb*64-1]
	}
	mask := 1<<nr - 1
	quad := func(q, per int) {
		kRepack16x4z(&z.wq[0], &z.sc[0], &z.mnp[0], &z.wd[0], &z.wdm[0], &a.q[4*q*k], k, &a.xdq[q*nb*4], &a.bsq[q*nb*64], nb, per, q2, &dst[4*q*n+r0], n, mask)
	}
	for q := 0; q < g/4; q++ {
		quad(q, per)
	}
	for q := (g + 3) / 4; q < nq; q++ {
		quad(q, 8)
	}
	lo, hi := 4*(g/4), min(4*((g+3)/4), nTok)
	tail := max(4*nq, hi)
	if hi > lo || tail < nTok {
		for r := r0; r < r1; r++ {
			wr, f := &z.rows[r-r0], &z.f[r-r0]
			wr.decodeK(w.raw[r*w.rowBytes:(r+1)*w.rowBytes], w.typ, k)
			f.prepare(wr, w.typ)
			if hi > lo {
				mulRowKFused(dst[r:], n, wr, f, o, a, k, lo, hi, gemvFrom)
			}
			if tail < nTok {
				mulRowKFused(dst[r:], n, wr, f, o, a, k, tail, nTok, gemvFrom)
			}
		}
	}
}
