package quantize

// The per-scale step of the IQ3 search (one candidate scale of
// quantize_row_iq3_s_impl / quantize_row_iq3_xxs_impl: round the 32
// magnitudes, move every off-grid group of 4 to its best neighbour, form
// sumqx and sumq2) has an AVX-512 kernel, iq3Step. Its tables are built
// here from the grid's neighbour lists, in the same order.

// iq3StepTables is what iq3Step reads: per point u (4 levels, 3 bits
// each), 0 where u is on the grid, else the byte offset of u's neighbour
// list in lanes16 (low 24 bits) and its length (high 8 bits, >= 1); and
// the lists as chunks of 16 points, 64 bytes each (the 16 points' level of
// coordinate 0, then 1, 2, 3; padding lanes 0).
type iq3StepTables struct {
	info    [4096]uint32
	lanes16 []uint8
}

// iq3Scratch holds one sub-block's steps for the AVX-512 search: per
// candidate scale (up to 32, a multiple of 4 for iq3Sums), the levels, the
// grid flags, the terms of the sums (iq3Step) and the sums (iq3Sums).
type iq3Scratch struct {
	laux   [32][32]int8
	onGrid [32][8]bool
	prod   [32][64]float32
	sums   [32][2]float32
}

// buildStep fills g.step from g.kmap, g.neighbours and g.nbrLevels.
func (g *iq3Grid) buildStep() {
	t := &g.step
	for u, v := range g.kmap {
		if v >= 0 {
			continue
		}
		off := int(-v - 1)
		n := int(g.neighbours[off])
		if n < 1 || n > 255 || len(t.lanes16) >= 1<<24 {
			panic("quantize: IQ3 neighbour list out of range")
		}
		t.info[u] = uint32(len(t.lanes16)) | uint32(n)<<24
		chunk := make([]uint8, 64*((n+15)/16))
		for j, p := range g.nbrLevels[off+1 : off+1+n] {
			for i := range 4 {
				chunk[64*(j/16)+16*i+j%16] = uint8(p >> (8 * i))
			}
		}
		t.lanes16 = append(t.lanes16, chunk...)
	}
}

// stepGo is the portable step at one candidate scale: id is the inverse
// scale the levels are rounded with, sq[l] = (1/id)*(2l+1). It writes the
// levels to Laux and whether each group's rounded point was on the grid to
// onGrid, and returns sumqx = sum(wx[i]*q[i]), sumq2 = sum(weight[i]*q[i]*q[i])
// (q = 2L+1, summed in order) and false where a neighbour search failed.
func (g *iq3Grid) stepGo(xval, waux, wx, weight *[32]float32, id float32, sq *[8]float32, Laux *[32]int8, onGrid *[8]bool) (sumqx, sumq2 float32, ok bool) {
	const kMaxQ = 8
	ok = true
	for k := range 8 {
		x := (*[4]float32)(xval[4*k:])
		la := (*[4]int8)(Laux[4*k:])
		l0 := iq3Level(id, x[0], kMaxQ-1)
		l1 := iq3Level(id, x[1], kMaxQ-1)
		l2 := iq3Level(id, x[2], kMaxQ-1)
		l3 := iq3Level(id, x[3], kMaxQ-1)
		u := l0 | l1<<3 | l2<<6 | l3<<9
		gi := g.kmap[u&4095]
		onGrid[k] = gi >= 0
		if gi >= 0 {
			*la = [4]int8{int8(l0), int8(l1), int8(l2), int8(l3)}
			continue
		}
		pos := g.nearest(int(-gi-1), x, (*[4]float32)(waux[4*k:]), sq)
		if pos < 0 {
			ok = false
			*la = [4]int8{int8(l0), int8(l1), int8(l2), int8(l3)}
			continue
		}
		p := g.nbrLevels[pos]
		*la = [4]int8{int8(p & 7), int8(p >> 8 & 7), int8(p >> 16 & 7), int8(p >> 24 & 7)}
	}
	for i := range 32 {
		q := float32(2*int32(Laux[i]) + 1)
		sumqx += float32(wx[i] * q)
		sumq2 += float32(float32(weight[i]*q) * q)
	}
	return sumqx, sumq2, ok
}
