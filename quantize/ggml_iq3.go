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
	points [][4]int8    // 2l+1 per coordinate, as iq3xs_init_impl's the_grid
	pointF [][4]float32 // the same as float32 (the searches' float q)
	kmap   [4096]int32  // >= 0: grid index; < 0: -(offset+1) into neighbours
	// neighbours holds, per off-grid point, a count n then n grid indices:
	// every grid point at the nwant smallest squared distances, ordered by
	// (distance, index) as iq3xs_init_impl's qsort leaves them.
	neighbours []uint16
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
	g.pointF = make([][4]float32, n)
	for k, v := range kgrid {
		for i := range 4 {
			l := int8(v>>(3*i)) & 7
			g.points[k][i] = 2*l + 1
			g.pointF[k][i] = float32(2*l + 1)
		}
	}
	for i := range g.kmap {
		g.kmap[i] = -1
	}
	for k, p := range g.points {
		var index int
		for i := range 4 {
			index |= int((p[i]-1)/2) << (3 * i)
		}
		g.kmap[index] = int32(k)
	}
	type cand struct{ d2, j int32 }
	dist := make([]cand, n)
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
			dist[j] = cand{d2, int32(j)}
		}
		// (distance, index) is a total order: any sort gives qsort's result.
		slices.SortFunc(dist, func(a, b cand) int {
			if a.d2 != b.d2 {
				return int(a.d2 - b.d2)
			}
			return int(a.j - b.j)
		})
		g.kmap[i] = -int32(len(g.neighbours) + 1)
		start := len(g.neighbours)
		g.neighbours = append(g.neighbours, 0)
		d2, nhave := dist[0].d2, 1
		for _, c := range dist {
			if c.d2 > d2 {
				if nhave == nwant {
					break
				}
				d2 = c.d2
				nhave++
			}
			g.neighbours = append(g.neighbours, uint16(c.j))
		}
		g.neighbours[start] = uint16(len(g.neighbours) - start - 1)
	}
}

// bestNeighbour is iq3_find_best_neighbour: among the neighbour list at
// off (the grid points nearest the off-grid point), the one with the
// smallest weighted squared error at scale (the first on ties); it writes
// that point's levels to L and returns its grid index.
func (g *iq3Grid) bestNeighbour(off int, xval, weight []float32, scale float32, L []int8) int {
	xval, weight, L = xval[:4], weight[:4], L[:4]
	nb := int(g.neighbours[off])
	list := g.neighbours[off+1 : off+1+nb]
	bestD2 := float32(math.MaxFloat32)
	best := -1
	for _, j := range list {
		pg := &g.pointF[j]
		var d2 float32
		for i := range 4 {
			diff := float32(scale*pg[i]) - xval[i]
			d2 += float32(float32(weight[i]*diff) * diff)
		}
		if d2 < bestD2 {
			bestD2, best = d2, int(j)
		}
	}
	p := &g.points[best]
	for i := range 4 {
		L[i] = (p[i] - 1) / 2
	}
	return best
}

// iq3Level is ggml's MAX(0, MIN(kMaxQ-1, nearest_int(0.5f*(id*x-1)))) for
// kMaxQ = 8 (also used with 15 as the upper bound for the block scales).
func iq3Level(id, x float32, hi int32) int32 {
	return clampI32(nearestInt(0.5*(float32(id*x)-1)), 0, hi)
}

// sqrt32 is C's sqrtf (the float64 square root of a float32 rounds to the
// correctly rounded float32 result).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// iq3Search is the search both quantizers run on one sub-block of 32
// values (magnitudes xval, weights weight, waux = sqrt(weight)): nsteps
// scales (15 + is*0.2)/max for is in -(nsteps/2)..nsteps/2, then a pass
// that moves every group still off the grid (IQ3_XXS: only those; IQ3_S:
// every group, refineAll) to its best neighbour at the chosen scale. It
// writes the grid levels to L and returns the scale.
func (g *iq3Grid) search(xval, weight, waux *[32]float32, max float32, half int, onGridInit, refineAll bool, L *[32]int8) float32 {
	const kMaxQ = 8
	var (
		Laux              [32]int8
		onGrid, onGridAux [8]bool
		best              float32
		scale             = max / (2*kMaxQ - 1)
	)
	for k := range onGrid {
		onGrid[k] = onGridInit
	}
	for is := -half; is <= half; is++ {
		id := (2*kMaxQ - 1 + float32(float32(is)*0.2)) / max
		thisScale := 1 / id
		for k := range 8 {
			var u int
			for i := range 4 {
				l := iq3Level(id, xval[4*k+i], kMaxQ-1)
				Laux[4*k+i] = int8(l)
				u |= int(l) << (3 * i)
			}
			onGridAux[k] = true
			if gi := g.kmap[u]; gi < 0 {
				onGridAux[k] = false
				g.bestNeighbour(int(-gi-1), xval[4*k:], waux[4*k:], thisScale, Laux[4*k:])
			}
		}
		var sumqx, sumq2 float32
		for i := range 32 {
			w := weight[i]
			q := float32(2*int32(Laux[i]) + 1)
			sumqx += float32(float32(w*xval[i]) * q)
			sumq2 += float32(float32(w*q) * q)
		}
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = scale * sumqx
			*L = Laux
			onGrid = onGridAux
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
		for k := range 8 {
			if onGrid[k] && !refineAll {
				continue
			}
			var u int
			for i := range 4 {
				u |= int(iq3Level(id, xval[4*k+i], kMaxQ-1)) << (3 * i)
			}
			gi := int(g.kmap[u])
			if gi < 0 {
				gi = g.bestNeighbour(-gi-1, xval[4*k:], waux[4*k:], scale, L[4*k:])
			}
			p := &g.points[gi]
			for i := range 4 {
				L[4*k+i] = (p[i] - 1) / 2
			}
		}
		var sumqx, sumq2 float32
		for i := range 32 {
			w := weight[i]
			q := float32(2*int32(L[i]) + 1)
			sumqx += float32(float32(w*xval[i]) * q)
			sumq2 += float32(float32(w*q) * q)
		}
		if sumq2 > 0 {
			scale = sumqx / sumq2
		}
	}
	return scale
}

// iq3Weights fills the sub-block's weights as both quantizers do: the
// importance qw[i]*sqrt(sigma2 + x²), or x² without one, and their roots.
func iq3Weights(xb, qw []float32, sigma2 float32, weight, waux *[32]float32) {
	xb = xb[:32]
	if qw != nil {
		qw = qw[:32]
		for i := range 32 {
			weight[i] = qw[i] * sqrt32(sigma2+float32(xb[i]*xb[i]))
		}
	} else {
		for i := range 32 {
			weight[i] = xb[i] * xb[i]
		}
	}
	for i := range 32 {
		waux[i] = sqrt32(weight[i])
	}
}

// iq3Sigma2 is 2*Σx²/256 over a super-block, summed in order.
func iq3Sigma2(x []float32) float32 {
	var sumx2 float32
	for _, v := range x[:qkK] {
		sumx2 += float32(v * v)
	}
	return 2 * sumx2 / qkK
}

// QuantizeIQ3XXS encodes src (len a multiple of 256) into IQ3_XXS blocks
// as quantize_iq3_xxs does, weighted by weights (one per value) or, with
// weights nil, by x² (ggml's NULL quant_weights).
func QuantizeIQ3XXS(dst []byte, src, weights []float32) {
	g := iq3Tables(256)
	nb := len(src) / qkK
	dst = dst[:nb*iq3xxsBlock]
	var (
		scales       [8]float32
		weight, waux [32]float32
		xval         [32]float32
		L            [32]int8
		blockSigns   [4]uint8
	)
	for ibl := range nb {
		y := (*[iq3xxsBlock]byte)(dst[ibl*iq3xxsBlock:])
		*y = [iq3xxsBlock]byte{}
		qs := y[2:66]
		sas := y[66:98] // scales_and_signs, little-endian uint32[8]
		xbl := src[ibl*qkK : (ibl+1)*qkK]
		sigma2 := iq3Sigma2(xbl)
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
			scale := g.search(&xval, &weight, &waux, max, 15, true, false, &L)
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
}

// QuantizeIQ3S encodes src (len a multiple of 256) into IQ3_S blocks as
// quantize_iq3_s does, weighted by weights or, nil, by x².
func QuantizeIQ3S(dst []byte, src, weights []float32) {
	g := iq3Tables(512)
	nb := len(src) / qkK
	dst = dst[:nb*iq3sBlock]
	var (
		scales       [8]float32
		weight, waux [32]float32
		xval         [32]float32
		L            [32]int8
		blockSigns   [4]uint8
	)
	for ibl := range nb {
		y := (*[iq3sBlock]byte)(dst[ibl*iq3sBlock:])
		*y = [iq3sBlock]byte{}
		qh := y[66:74]
		// ggml advances its qs and signs pointers only past the sub-blocks
		// it quantizes (an all-zero sub-block is skipped with continue), so
		// the sub-blocks after one land early; qh is indexed by ib.
		qsOff, signsOff := 2, 74
		xbl := src[ibl*qkK : (ibl+1)*qkK]
		sigma2 := iq3Sigma2(xbl)
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
			scale := g.search(&xval, &weight, &waux, max, 9, false, true, &L)
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
				signs := iq3KSigns[(aux>>(7*l))&127]
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
