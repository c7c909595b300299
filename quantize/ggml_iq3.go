package quantize

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"

	"github.com/quantbridge/quantbridge/dtype"
)

// 3-bit formats on the D4 lattice (ggml-quants.c quantize_row_iq3_xxs_impl,
// quantize_row_iq3_s_impl, dequantize_row_iq3_xxs, dequantize_row_iq3_s).
// Block layouts (ggml-common.h), 256 values each:
//
//	IQ3_XXS  98 bytes: d qs[64] scales_and_signs(u32)[8]
//	IQ3_S   110 bytes: d qs[64] qh[8] signs[32] scales[4]
//
// Each group of 4 magnitudes is one entry of a grid (256 entries for
// IQ3_XXS, 512 for IQ3_S) of points whose coordinates are odd numbers
// 1..15; each sub-block of 32 values has a 4-bit scale and 32 sign bits
// (IQ3_XXS stores 7 per 8 values, the 8th making an even count). The
// quantizers search 31 (IQ3_XXS) or 19 (IQ3_S) scales per sub-block and,
// for a group whose rounded point is off the grid, its nearest grid
// neighbours in the weighted metric, as ggml does with the neighbour lists
// iq3xs_init_impl builds (iq3Tables below builds the same lists in the
// same order).

const (
	iq3xxsBlock = 98
	iq3sBlock   = 110
	// groupMaxEpsIQ3XXS is ggml-quants.c GROUP_MAX_EPS_IQ3_XXS.
	groupMaxEpsIQ3XXS = float32(1e-8)
)

// iq3Grid is ggml's iq3_entry_t: a quantization grid, the map from a point
// (4 levels 0..7, 3 bits each) to its grid index or, off the grid, to its
// neighbour list, and the lists.
type iq3Grid struct {
	points [][4]int8   // 2l+1 per coordinate, as iq3xs_init_impl's the_grid
	kmap   [4096]int32 // >= 0: grid index; < 0: -(offset+1) into neighbours
	// neighbours holds, per off-grid point, a count n then n grid indices:
	// every grid point at the nwant smallest squared distances, ordered by
	// (distance, index) as iq3xs_init_impl's qsort leaves them.
	neighbours []uint16
	// nbrLevels parallels neighbours: the 4 levels (0..7) of each listed
	// point, one per byte (0 in the count slots).
	nbrLevels []uint32
	// lanes holds the lists again for iq3Nearest8 (the AVX2 kernel):
	// chunks of 8 points, 32 bytes each (the 8 points' level 0, then 1, 2,
	// 3); the list of the off-grid point at neighbours offset off starts at
	// lanes[laneOff[off]] (laneOff is indexed like neighbours).
	lanes   []uint8
	laneOff []int32
	step    iq3StepTables // for iq3Step (ggml_iq3_step.go)
}

var (
	iq3GridXXS, iq3GridS iq3Grid
	iq3Once              [2]sync.Once
)

// iq3Tables returns the IQ3_XXS (gridSize 256) or IQ3_S (512) grid, built
// on first use as ggml_quantize_init does.
func iq3Tables(gridSize int) *iq3Grid {
	if gridSize == 256 {
		iq3Once[0].Do(func() { iq3GridXXS.build(iq3KGrid256[:], 2) })
		return &iq3GridXXS
	}
	iq3Once[1].Do(func() { iq3GridS.build(iq3KGrid512[:], 3) })
	return &iq3GridS
}

// build is iq3xs_init_impl: nwant is the number of distinct distances whose
// points form an off-grid point's neighbour list (2 for 256 points, 3 for
// 512).
func (g *iq3Grid) build(kgrid []uint16, nwant int) {
	n := len(kgrid)
	g.points = make([][4]int8, n)
	for k, v := range kgrid {
		for i := range 4 {
			g.points[k][i] = 2*(int8(v>>(3*i))&7) + 1
		}
	}
	for i := range g.kmap {
		g.kmap[i] = -1
	}
	for k, v := range kgrid {
		g.kmap[v] = int32(k) // kgrid[k] is the point's index l0 | l1<<3 | ...
	}
	// (distance, index) packed in one key: a total order, so sorting gives
	// qsort's result with iq3_compare_func.
	keys := make([]uint32, n)
	for i := range g.kmap {
		if g.kmap[i] >= 0 {
			continue
		}
		var pos [4]int32
		for k := range 4 {
			pos[k] = 2*int32((i>>(3*k))&7) + 1
		}
		for j, p := range g.points {
			var d2 int32
			for k := range 4 {
				d := int32(p[k]) - pos[k]
				d2 += d * d
			}
			keys[j] = uint32(d2)<<16 | uint32(j)
		}
		slices.Sort(keys)
		g.kmap[i] = -int32(len(g.neighbours) + 1)
		start := len(g.neighbours)
		g.neighbours = append(g.neighbours, 0)
		g.nbrLevels = append(g.nbrLevels, 0)
		d2, nhave := keys[0]>>16, 1
		for _, key := range keys {
			if key>>16 > d2 {
				if nhave == nwant {
					break
				}
				d2 = key >> 16
				nhave++
			}
			j := key & 0xFFFF
			g.neighbours = append(g.neighbours, uint16(j))
			v := uint32(kgrid[j])
			g.nbrLevels = append(g.nbrLevels, v&7|(v>>3&7)<<8|(v>>6&7)<<16|(v>>9&7)<<24)
		}
		g.neighbours[start] = uint16(len(g.neighbours) - start - 1)
	}
	g.laneOff = make([]int32, len(g.neighbours))
	for off := 0; off < len(g.neighbours); off += 1 + int(g.neighbours[off]) {
		n := int(g.neighbours[off])
		g.laneOff[off] = int32(len(g.lanes))
		chunk := make([]uint8, 32*((n+7)/8))
		for j, v := range g.nbrLevels[off+1 : off+1+n] {
			for i := range 4 {
				chunk[32*(j/8)+8*i+j%8] = uint8(v >> (8 * i))
			}
		}
		g.lanes = append(g.lanes, chunk...)
	}
	g.buildStep()
}

// nearest is iq3_find_best_neighbour for the off-grid point whose list
// starts at off: among the listed grid points, the one with the smallest
// weighted squared error sum(w[i]*(scale*q[i] - x[i])²) (the first on
// ties), where sq[l] = scale*(2l+1). It returns the point's position in
// g.neighbours (its grid index there, its levels in g.nbrLevels), or -1
// where no error is below FLT_MAX (ggml aborts: GGML_ASSERT).
func (g *iq3Grid) nearest(off int, x, w *[4]float32, sq *[8]float32) int {
	n := int(g.neighbours[off])
	if useSIMD {
		j := iq3Nearest8(&g.lanes[g.laneOff[off]], n, x, w, sq)
		if j < 0 {
			return -1
		}
		return off + 1 + j
	}
	lv := g.nbrLevels[off+1 : off+1+n]
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	w0, w1, w2, w3 := w[0], w[1], w[2], w[3]
	best := float32(math.MaxFloat32)
	bj := -1
	for j, p := range lv {
		d0 := sq[p&7] - x0
		d1 := sq[p>>8&7] - x1
		d2 := sq[p>>16&7] - x2
		d3 := sq[p>>24&7] - x3
		// C: d2 = 0; d2 += w*diff*diff per element (0 + t0 is t0).
		e := float32(float32(w0*d0)*d0) + float32(float32(w1*d1)*d1)
		e = float32(e) + float32(float32(w2*d2)*d2)
		e = float32(e) + float32(float32(w3*d3)*d3)
		if e < best {
			best, bj = e, j
		}
	}
	if bj < 0 {
		return -1
	}
	return off + 1 + bj
}

// iq3Level is ggml's MAX(0, MIN(kMaxQ-1, nearest_int(0.5f*(id*x-1)))) for
// kMaxQ = 8 (also used with 15 as the upper bound for the block scales).
func iq3Level(id, x float32, hi int32) int32 {
	return clampI32(nearestInt(0.5*(float32(id*x)-1)), 0, hi)
}

// iq3ScaledLevels sets sq[l] = scale*(2l+1), the products
// iq3_find_best_neighbour forms.
func iq3ScaledLevels(sq *[8]float32, scale float32) {
	for l := range sq {
		sq[l] = scale * float32(2*l+1)
	}
}

// search is the search both quantizers run on one sub-block of 32 values
// (magnitudes xval, weights weight, waux = sqrt(weight)): nsteps scales
// (15 + is*0.2)/max for is in -half..half, then a pass that moves every
// group still off the grid (IQ3_XXS: only those; IQ3_S: every group,
// refineAll) to its best neighbour at the chosen scale. It writes the grid
// levels to L and returns the scale, and false where ggml would abort (no
// neighbour with a finite error: values near the float32 range). sc is the
// scratch of the AVX-512 steps (iq3Step), one per goroutine.
func (g *iq3Grid) search(xval, weight, waux *[32]float32, max float32, half int, onGridInit, refineAll bool, L *[32]int8, sc *iq3Scratch) (float32, bool) {
	const kMaxQ = 8
	var (
		Laux              [32]int8
		onGrid, onGridAux [8]bool
		wx                [32]float32
		sq                [8]float32
		best              float32
		scale             = max / (2*kMaxQ - 1)
		ok                = true
	)
	for i := range wx {
		wx[i] = weight[i] * xval[i]
	}
	for k := range onGrid {
		onGrid[k] = onGridInit
	}
	// The AVX-512 step rounds with VCVTPS2DQ, which agrees with nearestInt
	// on every product a NaN-free sub-block gives (|id*x| is at most ~17,
	// or +Inf, or the default NaN of 0*Inf); a NaN input's payload could
	// reach nearestInt's bits, so such sub-blocks take the portable step.
	fast := useIQ3Step()
	for _, v := range xval {
		if v != v {
			fast = false
		}
	}
	if fast && 2*half+1 <= len(sc.sums) {
		// Every step first, then their sums side by side (iq3Sums), then
		// ggml's comparisons in its order.
		n := 2*half + 1
		for s := range n {
			id := (2*kMaxQ - 1 + float32(float32(s-half)*0.2)) / max
			iq3ScaledLevels(&sq, 1/id)
			if !iq3Step(&g.step.info[0], &g.step.lanes16[0], xval, waux, &wx, weight, id, &sq, &sc.laux[s], &sc.onGrid[s], &sc.prod[s]) {
				ok = false
			}
		}
		iq3Sums(&sc.prod[0], (n+3)/4, &sc.sums[0])
		for s := range n {
			sumqx, sumq2 := sc.sums[s][0], sc.sums[s][1]
			if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
				scale = sumqx / sumq2
				best = scale * sumqx
				*L = sc.laux[s]
				onGrid = sc.onGrid[s]
			}
		}
	} else {
		for is := -half; is <= half; is++ {
			id := (2*kMaxQ - 1 + float32(float32(is)*0.2)) / max
			iq3ScaledLevels(&sq, 1/id)
			sumqx, sumq2, stepOK := g.stepGo(xval, waux, &wx, weight, id, &sq, &Laux, &onGridAux)
			ok = ok && stepOK
			if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
				scale = sumqx / sumq2
				best = scale * sumqx
				*L = Laux
				onGrid = onGridAux
			}
		}
	}
	nOff := 0
	for _, on := range onGrid {
		if !on {
			nOff++
		}
	}
	if nOff > 0 && scale > 0 {
		id := 1 / scale
		iq3ScaledLevels(&sq, scale)
		for k := range 8 {
			if onGrid[k] && !refineAll {
				continue
			}
			x := (*[4]float32)(xval[4*k:])
			var u int32
			for i := range 4 {
				u |= iq3Level(id, x[i], kMaxQ-1) << (3 * i)
			}
			gi := int(g.kmap[u])
			if gi < 0 {
				pos := g.nearest(-gi-1, x, (*[4]float32)(waux[4*k:]), &sq)
				if pos < 0 {
					ok = false
					continue
				}
				gi = int(g.neighbours[pos])
			}
			p := &g.points[gi]
			for i := range 4 {
				L[4*k+i] = (p[i] - 1) / 2
			}
		}
		var sumqx, sumq2 float32
		for i := range 32 {
			q := float32(2*int32(L[i]) + 1)
			sumqx += float32(wx[i] * q)
			sumq2 += float32(float32(weight[i]*q) * q)
		}
		if sumq2 > 0 {
			scale = sumqx / sumq2
		}
	}
	return scale, ok
}

// iq3Weights fills the sub-block's weights as both quantizers do: the
// importance qw[i]*sqrt(sigma2 + x²), or x² without one, and their roots.
func iq3Weights(xb, qw []float32, sigma2 float32, weight, waux *[32]float32) {
	xb = xb[:32]
	if qw != nil {
		qw = qw[:32]
		imatrixWeights(weight[:], xb, qw, sigma2)
	} else {
		for i := range 32 {
			weight[i] = xb[i] * xb[i]
		}
	}
	for i := range 32 {
		waux[i] = sqrt32(weight[i])
	}
}

// QuantizeIQ3XXS encodes src (len a multiple of 256) into IQ3_XXS blocks
// as quantize_iq3_xxs does, weighted by weights (one per value) or, with
// weights nil, by x² (ggml's NULL quant_weights).
func QuantizeIQ3XXS(dst []byte, src, weights []float32) {
	g := iq3Tables(256)
	sc := new(iq3Scratch)
	nb := len(src) / qkK
	dst = dst[:nb*iq3xxsBlock]
	var (
		scales       [8]float32
		weight, waux [32]float32
		xval         [32]float32
		L            [32]int8
		blockSigns   [4]uint8
	)
	failed := false
	for ibl := range nb {
		y := (*[iq3xxsBlock]byte)(dst[ibl*iq3xxsBlock:])
		*y = [iq3xxsBlock]byte{}
		qs := y[2:66]
		sas := y[66:98] // scales_and_signs, little-endian uint32[8]
		xbl := src[ibl*qkK : (ibl+1)*qkK]
		sigma2 := superSigma2(xbl)
		var maxScale float32
		for ib := range 8 {
			xb := xbl[32*ib : 32*ib+32]
			var qw []float32
			if weights != nil {
				qw = weights[ibl*qkK+32*ib:]
			}
			iq3Weights(xb, qw, sigma2, &weight, &waux)
			for k := range 4 {
				nflip := 0
				var s uint8
				for i := range 8 {
					if v := xb[8*k+i]; v >= 0 {
						xval[8*k+i] = v
					} else {
						xval[8*k+i] = -v
						nflip++
						s |= 1 << i
					}
				}
				if nflip%2 != 0 {
					imin := 0
					min := float32(weight[8*k]*xb[8*k]) * xb[8*k]
					for i := 1; i < 8; i++ {
						if ax := float32(weight[8*k+i]*xb[8*k+i]) * xb[8*k+i]; ax < min {
							min, imin = ax, i
						}
					}
					xval[8*k+imin] = -xval[8*k+imin]
					s ^= 1 << imin
				}
				blockSigns[k] = s & 127
			}
			max := xval[0]
			for _, v := range xval[1:] {
				if v > max {
					max = v
				}
			}
			L = [32]int8{}
			if max < groupMaxEpsIQ3XXS {
				scales[ib] = 0
				continue
			}
			scale, ok := g.search(&xval, &weight, &waux, max, 15, true, false, &L, sc)
			failed = failed || !ok
			if scale < 0 {
				scale = -scale
				for k := range blockSigns {
					blockSigns[k] = ^blockSigns[k] & 127
				}
			}
			for k := range 8 {
				var u int
				for i := range 4 {
					u |= int(L[4*k+i]) << (3 * i)
				}
				qs[8*ib+k] = uint8(g.kmap[u]) // on the grid by construction
			}
			binary.LittleEndian.PutUint32(sas[4*ib:], uint32(blockSigns[0])|uint32(blockSigns[1])<<7|
				uint32(blockSigns[2])<<14|uint32(blockSigns[3])<<21)
			scales[ib] = scale
			if scale > maxScale {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			*y = [iq3xxsBlock]byte{}
			continue
		}
		d := maxScale / 31
		putF16(y[0:], d*1.0125)
		id := 1 / d
		for ib := range 8 {
			l := iq3Level(id, scales[ib], 15)
			v := binary.LittleEndian.Uint32(sas[4*ib:])
			binary.LittleEndian.PutUint32(sas[4*ib:], v|uint32(l)<<28)
		}
	}
	iq3Fail(dst, failed)
}

// QuantizeIQ3S encodes src (len a multiple of 256) into IQ3_S blocks as
// quantize_iq3_s does, weighted by weights or, nil, by x².
func QuantizeIQ3S(dst []byte, src, weights []float32) {
	g := iq3Tables(512)
	sc := new(iq3Scratch)
	nb := len(src) / qkK
	dst = dst[:nb*iq3sBlock]
	var (
		scales       [8]float32
		weight, waux [32]float32
		xval         [32]float32
		L            [32]int8
		blockSigns   [4]uint8
	)
	failed := false
	for ibl := range nb {
		y := (*[iq3sBlock]byte)(dst[ibl*iq3sBlock:])
		*y = [iq3sBlock]byte{}
		qh := y[66:74]
		// ggml advances its qs and signs pointers only past the sub-blocks
		// it quantizes (an all-zero sub-block is skipped with continue), so
		// the sub-blocks after one land early; qh is indexed by ib.
		qsOff, signsOff := 2, 74
		xbl := src[ibl*qkK : (ibl+1)*qkK]
		sigma2 := superSigma2(xbl)
		var maxScale float32
		for ib := range 8 {
			xb := xbl[32*ib : 32*ib+32]
			var qw []float32
			if weights != nil {
				qw = weights[ibl*qkK+32*ib:]
			}
			iq3Weights(xb, qw, sigma2, &weight, &waux)
			for k := range 4 {
				var s uint8
				for i := range 8 {
					if v := xb[8*k+i]; v >= 0 {
						xval[8*k+i] = v
					} else {
						xval[8*k+i] = -v
						s |= 1 << i
					}
				}
				blockSigns[k] = s
			}
			max := xval[0]
			for _, v := range xval[1:] {
				if v > max {
					max = v
				}
			}
			L = [32]int8{}
			if max == 0 {
				scales[ib] = 0
				continue
			}
			scale, ok := g.search(&xval, &weight, &waux, max, 9, false, true, &L, sc)
			failed = failed || !ok
			if scale < 0 {
				scale = -scale
				for k := range blockSigns {
					blockSigns[k] = ^blockSigns[k]
				}
			}
			for k := range 8 {
				var u int
				for i := range 4 {
					u |= int(L[4*k+i]) << (3 * i)
				}
				gi := g.kmap[u]
				y[qsOff+k] = uint8(gi)
				qh[ib] |= uint8(gi>>8) << k
			}
			qsOff += 8
			copy(y[signsOff:], blockSigns[:])
			signsOff += 4
			scales[ib] = scale
			if scale > maxScale {
				maxScale = scale
			}
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y[0:], d*1.033)
		id := 1 / d
		for ib := 0; ib < 8; ib += 2 {
			l1 := iq3Level(id, scales[ib], 15)
			l2 := iq3Level(id, scales[ib+1], 15)
			y[106+ib/2] = uint8(l1 | l2<<4)
		}
	}
	iq3Fail(dst, failed)
}

// iq3Fail marks a row whose search failed (ggml aborts with GGML_ASSERT:
// no grid neighbour with a finite error, for values near the float32 range)
// with a NaN scale in its first block, so that the row validation
// QuantizeRowWeighted runs reports it as an error.
func iq3Fail(dst []byte, failed bool) {
	if failed && len(dst) >= 2 {
		dst[0], dst[1] = 0x00, 0x7e
	}
}

// DequantizeIQ3XXS decodes IQ3_XXS blocks into dst (len a multiple of 256).
func DequantizeIQ3XXS(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*iq3xxsBlock]
	for i := range nb {
		x := (*[iq3xxsBlock]byte)(src[i*iq3xxsBlock:])
		d := getF16(x[0:])
		qs := x[2:66]
		for ib := range 8 {
			aux := binary.LittleEndian.Uint32(x[66+4*ib:])
			db := float32(d*(0.5+float32(aux>>28))) * 0.5
			y := dst[i*qkK+32*ib : i*qkK+32*ib+32]
			for l := range 4 {
				signs := ksignsIQ2XS(aux >> (7 * l))
				g1 := iq3xxsGrid[qs[8*ib+2*l]]
				g2 := iq3xxsGrid[qs[8*ib+2*l+1]]
				for j := range 4 {
					y[8*l+j] = iq3Signed(db*float32(uint8(g1>>(8*j))), signs, j)
					y[8*l+j+4] = iq3Signed(db*float32(uint8(g2>>(8*j))), signs, j+4)
				}
			}
		}
	}
}

// iq3Signed is v * (signs & kmask_iq2xs[j] ? -1.f : 1.f).
func iq3Signed(v float32, signs uint8, j int) float32 {
	if signs&(1<<j) != 0 {
		return -v
	}
	return v
}

// DequantizeIQ3S decodes IQ3_S blocks into dst (len a multiple of 256).
func DequantizeIQ3S(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*iq3sBlock]
	for i := range nb {
		x := (*[iq3sBlock]byte)(src[i*iq3sBlock:])
		d := getF16(x[0:])
		qs, qh, signs, sc := x[2:66], x[66:74], x[74:106], x[106:110]
		for ib := range 8 {
			s := sc[ib/2] >> (4 * (ib % 2)) & 0xF
			db := d * float32(1+2*int32(s))
			y := dst[i*qkK+32*ib : i*qkK+32*ib+32]
			for l := range 4 {
				g1 := iq3sGrid[int(qs[8*ib+2*l])|int(qh[ib]>>(2*l)&1)<<8]
				g2 := iq3sGrid[int(qs[8*ib+2*l+1])|int(qh[ib]>>(2*l+1)&1)<<8]
				sg := signs[4*ib+l]
				for j := range 4 {
					y[8*l+j] = iq3Signed(db*float32(uint8(g1>>(8*j))), sg, j)
					y[8*l+j+4] = iq3Signed(db*float32(uint8(g2>>(8*j))), sg, j+4)
				}
			}
		}
	}
}

func init() {
	weightedQuantizers[dtype.IQ3_XXS] = QuantizeIQ3XXS
	weightedQuantizers[dtype.IQ3_S] = QuantizeIQ3S
	dequantizers[dtype.IQ3_XXS] = DequantizeIQ3XXS
	dequantizers[dtype.IQ3_S] = DequantizeIQ3S
}
