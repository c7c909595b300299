package perplexity

// mulTileQ0Rep16 is mulTileQ0's repacked order (orderQ0Repack) with
// q0rep16: rows r0..r1-1 (at most 16) of dst for nTok tokens, whose Q8_0
// blocks a carries with offset codes (a.u). The tile's rows are decoded
// (q0Tile.decode) and laid out for q0rep16: per block, eight groups of
// four elements, each group the 4 codes of row 0, then row 1, ... (16
// rows, 64 bytes); per block and row −128·Σ codes (the offset codes'
// correction) and the scale; rows past r1 zero.
func mulTileQ0Rep16(dst []float32, w *weight, a *q8Blocks, nTok, r0, r1 int, buf []float32) {
	k, n := w.cols, w.rows
	nb := k / 32
	qt := q0TilePool.Get().(*q0Tile)
	defer q0TilePool.Put(qt)
	qt.decode(w, r0, r1, buf)
	qt.rep, qt.repCorr, qt.repD = growT(qt.rep, nb*512), growT(qt.repCorr, nb*16), growT(qt.repD, nb*16)
	clear(qt.rep)
	clear(qt.repCorr)
	clear(qt.repD)
	for rr := range r1 - r0 {
		row := &qt.rows[rr]
		for b := range nb {
			codes := row.q[b*32 : (b+1)*32]
			var sum int32
			for g := range 8 {
				copy(qt.rep[b*512+g*64+rr*4:][:4], codes[4*g:4*g+4])
			}
			for _, c := range codes {
				sum += int32(c)
			}
			qt.repCorr[b*16+rr] = -128 * sum
			qt.repD[b*16+rr] = row.d[b]
		}
	}
	var out [16]float32
	for t := range nTok {
		q0rep16(&qt.rep[0], &qt.repCorr[0], &qt.repD[0], &a.u[t*k], &a.d[t*nb], nb, &out[0])
		copy(dst[t*n+r0:t*n+r1], out[:r1-r0])
	}
}
