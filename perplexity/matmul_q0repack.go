package perplexity

import "sync"

// q0Rep16Tile is a tile of up to 16 rows of 32-element block codes laid
// out for q0rep16: per block, eight groups of four elements, each group
// the 4 codes of row 0, then row 1, ... (16 rows, 64 bytes); per block
// and row −128·Σ codes (the offset codes' correction) and the scale. Rows
// past the tile's end are zero.
type q0Rep16Tile struct {
	wt   []int8
	corr []int32
	dw   []float32
	out  [16]float32
	row  q0Row
}

var q0Rep16Pool = sync.Pool{New: func() any { return new(q0Rep16Tile) }}

// mulTileQ0Rep16 is mulTileQ0's repacked order (orderQ0Repack) with
// q0rep16: rows r0..r1-1 (at most 16) of dst for nTok tokens, whose Q8_0
// blocks a carries with offset codes (a.u).
func mulTileQ0Rep16(dst []float32, w *weight, a *q8Blocks, nTok, r0, r1 int, buf []float32) {
	k, n := w.cols, w.rows
	nb := k / 32
	t := q0Rep16Pool.Get().(*q0Rep16Tile)
	defer q0Rep16Pool.Put(t)
	t.wt, t.corr, t.dw = growT(t.wt, nb*512), growT(t.corr, nb*16), growT(t.dw, nb*16)
	clear(t.wt)
	clear(t.corr)
	clear(t.dw)
	for rr := 0; rr < r1-r0; rr++ {
		t.row.decodeRow(w, r0+rr, buf)
		for b := 0; b < nb; b++ {
			codes := t.row.q[b*32 : (b+1)*32]
			var sum int32
			for g := 0; g < 8; g++ {
				copy(t.wt[b*512+g*64+rr*4:][:4], codes[4*g:4*g+4])
			}
			for _, c := range codes {
				sum += int32(c)
			}
			t.corr[b*16+rr] = -128 * sum
			t.dw[b*16+rr] = t.row.d[b]
		}
	}
	for tok := 0; tok < nTok; tok++ {
		q0rep16(&t.wt[0], &t.corr[0], &t.dw[0], &a.u[tok*k], &a.d[tok*nb], nb, &t.out[0])
		copy(dst[tok*n+r0:tok*n+r1], t.out[:r1-r0])
	}
}
