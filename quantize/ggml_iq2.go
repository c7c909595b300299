package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"

	"github.com/quantbridge/quantbridge/dtype"
)

// 2-bit and 1-bit lattice quants (ggml-quants.c: iq2xs_init_impl,
// quantize_row_iq2_xxs_impl, quantize_row_iq2_xs_impl,
// quantize_row_iq2_s_impl and the dequantize_row_iq2_* functions; IQ1_S and
// IQ1_M are in ggml_iq1.go).
//
//	IQ2_XXS 66 bytes / 256: d qs[32]u16 (per 32: 4 grid bytes, 4x7 sign bits, 4-bit scale)
//	IQ2_XS  74 bytes / 256: d qs[32]u16 (9-bit grid index, 7 sign bits) scales[8]
//	IQ2_S   82 bytes / 256: d qs[32] signs[32] qh[8] scales[8]
//
// Each 8 values of a block are one point of a grid of 8-dimensional
// vectors (256, 512 or 1024 points for IQ2, 2048 for IQ1). The quantizers
// round a scaled group to the 2-bit lattice and, off the grid, pick the best
// of its precomputed neighbours; those tables are built on first use, in
// iq2xs_init_impl's order.

func init() {
	weightedQuantizers[dtype.IQ2_XXS] = quantizeIQ2XXS
	weightedQuantizers[dtype.IQ2_XS] = quantizeIQ2XS
	weightedQuantizers[dtype.IQ2_S] = quantizeIQ2S
	dequantizers[dtype.IQ2_XXS] = DequantizeIQ2XXS
	dequantizers[dtype.IQ2_XS] = DequantizeIQ2XS
	dequantizers[dtype.IQ2_S] = DequantizeIQ2S
}

// iq2Lattice is one iq2_entry_t of iq2xs_init_impl: the grid points as
// levels 2l+1, the map from a packed 2-bit point (16 bits) to its grid
// index, or to -(offset+1) of its neighbour list, and the neighbour lists
// (a count, then that many grid indices).
type iq2Lattice struct {
	grid  [][8]int8
	kmap  []int32
	neigh []uint16
}

// neighbours returns the neighbour list of the off-grid point u.
func (g *iq2Lattice) neighbours(u uint16) []uint16 {
	off := -g.kmap[u] - 1
	n := int32(g.neigh[off])
	return g.neigh[off+1 : off+1+n]
}

const iq2KmapSize = 43692

var (
	iq2Once     [4]sync.Once
	iq2Lattices [4]*iq2Lattice
)

// Lattice indices, as ggml's iq2_data_index.
const (
	latIQ2XXS = iota
	latIQ2XS
	latIQ1 // IQ1_S and IQ1_M
	latIQ2S
)

func iq2LatticeFor(which int) *iq2Lattice {
	iq2Once[which].Do(func() {
		switch which {
		case latIQ2XXS:
			iq2Lattices[which] = newIQ2Lattice(kgridIQ2XXS[:], 2)
		case latIQ2XS:
			iq2Lattices[which] = newIQ2Lattice(kgridIQ2XS[:], 2)
		case latIQ1:
			iq2Lattices[which] = newIQ2Lattice(kgridIQ1S[:], 3)
		case latIQ2S:
			iq2Lattices[which] = newIQ2Lattice(kgridIQ2S[:], 1)
		}
	})
	return iq2Lattices[which]
}

// newIQ2Lattice builds iq2xs_init_impl's tables for a grid: every packed
// point not on the grid gets as neighbours the grid points at its nwant
// smallest squared distances, ordered by (distance, index) as its qsort
// with iq2_compare_func (a total order) leaves them.
func newIQ2Lattice(kgrid []uint16, nwant int) *iq2Lattice {
	n := len(kgrid)
	g := &iq2Lattice{grid: make([][8]int8, n), kmap: make([]int32, iq2KmapSize)}
	for k, v := range kgrid {
		for i := range 8 {
			g.grid[k][i] = int8(2*((v>>(2*i))&3) + 1)
		}
	}
	for i := range g.kmap {
		g.kmap[i] = -1
	}
	for k := range g.grid {
		var index uint16
		for i := range 8 {
			index |= uint16((g.grid[k][i]-1)/2) << (2 * i)
		}
		g.kmap[index] = int32(k)
	}
	// Squared distances between two groups of four 2-bit points (levels
	// 2l+1), indexed by their packed bytes: a point's distance to a grid
	// point is the sum over its low and high bytes.
	var quad [256][256]uint8
	for a := range 256 {
		for b := range 256 {
			d2 := 0
			for k := range 4 {
				d := 2 * ((a >> (2 * k) & 3) - (b >> (2 * k) & 3))
				d2 += d * d
			}
			quad[a][b] = uint8(d2)
		}
	}
	lists := make([][]uint16, iq2KmapSize)
	workers := min(runtime.GOMAXPROCS(0), 8)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d2s := make([]uint16, n)
			for i := w; i < iq2KmapSize; i += workers {
				if g.kmap[i] < 0 {
					lists[i] = iq2Neighbours(kgrid, &quad[i&0xff], &quad[i>>8], d2s, nwant)
				}
			}
		}()
	}
	wg.Wait()
	for i, l := range lists {
		if l == nil {
			continue
		}
		g.kmap[i] = -int32(len(g.neigh)) - 1
		g.neigh = append(g.neigh, uint16(len(l)))
		g.neigh = append(g.neigh, l...)
	}
	return g
}

// searchFailure is where ggml's IQ searches abort (GGML_ASSERT, "Oops"):
// with weights or values that make every distance NaN or infinite. The
// quantizers panic with it and runWeighted turns it into an error.
type searchFailure string

// runWeighted runs a weighted quantizer, returning its search failure as
// an error (wrapping ErrInvalidData) where ggml would abort.
func runWeighted(q weightedQuantFunc, dst []byte, src, weights []float32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(searchFailure)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: the search failed (llama.cpp aborts here): %s", ErrInvalidData, string(f))
		}
	}()
	q(dst, src, weights)
	return nil
}

// iq2Neighbours returns the grid indices at the nwant smallest distances
// from a point (lo and hi: the distance rows of its low and high byte), by
// distance, then index: the order of iq2xs_init_impl's qsort.
func iq2Neighbours(kgrid []uint16, lo, hi *[256]uint8, d2s []uint16, nwant int) []uint16 {
	const maxD2 = 8*6*6 + 1 // levels 1..7: at most 36 per coordinate
	var count [maxD2]int32
	for j, v := range kgrid {
		d := uint16(lo[uint8(v)]) + uint16(hi[v>>8]) // up to 288: not a byte
		d2s[j] = d
		count[d]++
	}
	var want [maxD2]bool
	total, nhave := 0, 0
	for d := range count {
		if count[d] == 0 {
			continue
		}
		want[d] = true
		total += int(count[d])
		if nhave++; nhave == nwant {
			break
		}
	}
	// Grid indices in order, stably bucketed by distance.
	var start [maxD2]int
	pos := 0
	for d := range count {
		if want[d] {
			start[d] = pos
			pos += int(count[d])
		}
	}
	out := make([]uint16, total)
	for j, d := range d2s[:len(kgrid)] {
		if want[d] {
			out[start[d]] = uint16(j)
			start[d]++
		}
	}
	return out
}

// iq2FindBestNeighbour is ggml's iq2_find_best_neighbour: the neighbour of
// the smallest weighted squared distance to xval at scale (the first on a
// tie); it writes its levels to L and returns its index.
func iq2FindBestNeighbour(g *iq2Lattice, neigh []uint16, xval, weight []float32, scale float32, L []int8) int {
	xval, weight, L = xval[:8], weight[:8], L[:8]
	best := float32(math.MaxFloat32)
	index := -1
	for _, j := range neigh {
		pg := &g.grid[j]
		var d2 float32
		for i := range 8 {
			diff := float32(scale*float32(pg[i])) - xval[i]
			d2 += float32(float32(weight[i]*diff) * diff)
		}
		if d2 < best {
			best = d2
			index = int(j)
		}
	}
	if index < 0 {
		panic(searchFailure(fmt.Sprintf("no grid neighbour at a finite distance (scale %g)", scale)))
	}
	for i, q := range g.grid[index] {
		L[i] = (q - 1) / 2
	}
	return index
}

// maxF32 is C's MAX(a, b) macro: a > b ? a : b.
func maxF32(a, b float32) float32 {
	if a > b {
		return a
	}
	return b
}

// iqSignFold writes |xb| to xval and returns the sign bits of the 8 values;
// with evenSigns (IQ2_XXS, IQ2_XS) an odd number of negative values is made
// even by flipping the sign of the value of least weight*x², as the sign
// byte stores 7 bits and the parity.
func iqSignFold(xval, xb, weight []float32, evenSigns bool) uint8 {
	xval, xb, weight = xval[:8], xb[:8], weight[:8]
	var s uint8
	nflip := 0
	for i, v := range xb {
		if v >= 0 {
			xval[i] = v
		} else {
			xval[i] = -v
			nflip++
			s |= 1 << i
		}
	}
	if evenSigns && nflip%2 != 0 {
		imin := 0
		min := weight[0] * xb[0] * xb[0]
		for i := 1; i < 8; i++ {
			if ax := weight[i] * xb[i] * xb[i]; ax < min {
				min = ax
				imin = i
			}
		}
		xval[imin] = -xval[imin]
		s ^= 1 << imin
	}
	return s
}

// iq2Round rounds 8 values to 2-bit lattice levels at inverse scale id and
// returns them packed (u) with the levels in L.
func iq2Round(xval []float32, id float32, L []int8) uint16 {
	xval, L = xval[:8], L[:8]
	var u uint16
	for i := range 8 {
		l := clampI32(nearestInt(0.5*(float32(id*xval[i])-1)), 0, 2)
		L[i] = int8(l)
		u |= uint16(l) << (2 * i)
	}
	return u
}

// iq2Fit returns sum w·x·q and sum w·q² over the codes L (q = 2L+1).
func iq2Fit(weight, xval []float32, L []int8) (sumqx, sumq2 float32) {
	for i, l := range L {
		w := weight[i]
		q := float32(2*int32(l) + 1)
		sumqx += float32(float32(w*xval[i]) * q)
		sumq2 += float32(float32(w*q) * q)
	}
	return sumqx, sumq2
}

func iq2Pack(L []int8) uint16 {
	var u uint16
	for i, l := range L[:8] {
		u |= uint16(l) << (2 * i)
	}
	return u
}

// onGrid returns the grid index of the packed point u, which must be on the
// grid (ggml aborts with "Oops: found point not on grid" otherwise).
func (g *iq2Lattice) onGrid(u uint16) int {
	gi := g.kmap[u]
	if gi < 0 {
		panic(searchFailure(fmt.Sprintf("found point %d not on grid", u)))
	}
	return int(gi)
}

// quantizeIQ2XXS is quantize_iq2_xxs for one row (quantize_row_iq2_xxs_impl).
// weights is required (the caller checks RequiresImatrix).
func quantizeIQ2XXS(dst []byte, x, qw []float32) {
	const kMaxQ = 3
	g := iq2LatticeFor(latIQ2XXS)
	nbl := len(x) / qkK
	dst = dst[:nbl*66]
	var (
		scales     [8]float32
		weight     [32]float32
		xval       [32]float32
		waux       [32]float32
		L, Laux    [32]int8
		Lqp        [32]uint8
		blockSigns [4]uint8
		q2         [16]uint32
	)
	for ibl := range nbl {
		y := dst[ibl*66 : ibl*66+66]
		q2 = [16]uint32{}
		var maxScale float32
		xbl := x[qkK*ibl : qkK*ibl+qkK]
		sigma2 := float32(sumSquares(xbl) / qkK) // rounded: the division becomes a product
		for ib := range 8 {
			xb := xbl[32*ib : 32*ib+32]
			qwb := qw[qkK*ibl+32*ib : qkK*ibl+32*ib+32]
			imatrixWeights(weight[:], xb, qwb, sigma2)
			for i := range 32 {
				waux[i] = sqrt32(weight[i])
			}
			for k := range 4 {
				blockSigns[k] = iqSignFold(xval[8*k:], xb[8*k:], weight[8*k:], true) & 127
			}
			max := xval[0]
			for _, v := range xval[1:] {
				max = maxF32(max, v)
			}
			if max < groupMaxEps {
				scales[ib] = 0
				continue
			}
			scale := makeQP(kMaxQ+1, xval[:], Lqp[:], weight[:])
			effMax := scale * kMaxQ
			if effMax <= 0 {
				scales[ib] = 0
				continue
			}
			var best float32
			for is := -6; is <= 6; is++ {
				id := (float32(2*kMaxQ-1) + float32(float32(is)*0.1)) / effMax
				thisScale := 1 / id
				for k := range 4 {
					u := iq2Round(xval[8*k:], id, Laux[8*k:])
					if g.kmap[u] < 0 {
						iq2FindBestNeighbour(g, g.neighbours(u), xval[8*k:], waux[8*k:], thisScale, Laux[8*k:])
					}
				}
				sumqx, sumq2 := iq2Fit(weight[:], xval[:], Laux[:])
				if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
					scale = sumqx / sumq2
					best = scale * sumqx
					L = Laux
				}
			}
			if scale > 0 {
				id := 1 / scale
				for k := range 4 {
					var lv [8]int8
					u := iq2Round(xval[8*k:], id, lv[:])
					gi := int(g.kmap[u])
					if gi < 0 {
						gi = iq2FindBestNeighbour(g, g.neighbours(u), xval[8*k:], waux[8*k:], scale, L[8*k:])
					}
					for i, q := range g.grid[gi] {
						L[8*k+i] = (q - 1) / 2
					}
				}
				sumqx, sumq2 := iq2Fit(weight[:], xval[:], L[:])
				if sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range blockSigns {
					blockSigns[k] = ^blockSigns[k] & 127
				}
			}
			for k := range 4 {
				gi := g.onGrid(iq2Pack(L[8*k:]))
				q2[2*ib] |= uint32(gi) << (8 * k)
				q2[2*ib+1] |= uint32(blockSigns[k]) << (7 * k)
			}
			scales[ib] = scale
			maxScale = maxF32(maxScale, scale)
		}
		if maxScale == 0 {
			clear(y)
			continue
		}
		d := maxScale / 31
		putF16(y, d)
		id := 1 / d
		for ib := range 8 {
			l := clampI32(nearestInt(0.5*(float32(id*scales[ib])-1)), 0, 15)
			q2[2*ib+1] |= uint32(l) << 28
		}
		for i, v := range q2 {
			binary.LittleEndian.PutUint32(y[2+4*i:], v)
		}
	}
}

// iq2SearchXS is the 16-value search of quantize_row_iq2_xs_impl and
// quantize_row_iq2_s_impl (they differ only in the lattice): it fills L
// with on-grid levels and returns the group's scale.
func iq2SearchXS(g *iq2Lattice, xval, weight, waux []float32, max float32, L *[16]int8) float32 {
	const kMaxQ = 3
	var (
		Laux              [16]int8
		onGrid, onGridAux [2]bool
		best              float32
		scale             = max / (2*kMaxQ - 1)
	)
	onGrid = [2]bool{true, true}
	for is := -9; is <= 9; is++ {
		id := (float32(2*kMaxQ-1) + float32(float32(is)*0.1)) / max
		thisScale := 1 / id
		for k := range 2 {
			u := iq2Round(xval[8*k:], id, Laux[8*k:])
			onGridAux[k] = true
			if g.kmap[u] < 0 {
				onGridAux[k] = false
				iq2FindBestNeighbour(g, g.neighbours(u), xval[8*k:], waux[8*k:], thisScale, Laux[8*k:])
			}
		}
		sumqx, sumq2 := iq2Fit(weight, xval, Laux[:])
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = scale * sumqx
			*L = Laux
			onGrid = onGridAux
		}
	}
	if (!onGrid[0] || !onGrid[1]) && scale > 0 {
		id := 1 / scale
		for k := range 2 {
			if onGrid[k] {
				continue
			}
			u := iq2Round(xval[8*k:], id, L[8*k:])
			if g.kmap[u] < 0 {
				iq2FindBestNeighbour(g, g.neighbours(u), xval[8*k:], waux[8*k:], scale, L[8*k:])
			}
		}
		sumqx, sumq2 := iq2Fit(weight, xval, L[:])
		if sumq2 > 0 {
			scale = sumqx / sumq2
		}
	}
	return scale
}

// quantizeIQ2XS is quantize_iq2_xs for one row (quantize_row_iq2_xs_impl).
// weights is required.
func quantizeIQ2XS(dst []byte, x, qw []float32) {
	g := iq2LatticeFor(latIQ2XS)
	nbl := len(x) / qkK
	dst = dst[:nbl*74]
	var (
		scales     [16]float32
		weight     [16]float32
		xval       [16]float32
		waux       [16]float32
		L          [16]int8
		blockSigns [2]uint8
		q2         [32]uint16
	)
	for ibl := range nbl {
		y := dst[ibl*74 : ibl*74+74]
		clear(y)
		q2 = [32]uint16{}
		var maxScale float32
		xbl := x[qkK*ibl : qkK*ibl+qkK]
		sigma2 := float32(sumSquares(xbl) / qkK) // rounded: the division becomes a product
		for ib := range 16 {
			xb := xbl[16*ib : 16*ib+16]
			qwb := qw[qkK*ibl+16*ib : qkK*ibl+16*ib+16]
			imatrixWeights(weight[:], xb, qwb, sigma2)
			for i := range 16 {
				waux[i] = sqrt32(weight[i])
			}
			for k := range 2 {
				blockSigns[k] = iqSignFold(xval[8*k:], xb[8*k:], weight[8*k:], true) & 127
			}
			max := xval[0]
			for _, v := range xval[1:] {
				max = maxF32(max, v)
			}
			L = [16]int8{}
			if max < groupMaxEps {
				scales[ib] = 0
				continue
			}
			scale := iq2SearchXS(g, xval[:], weight[:], waux[:], max, &L)
			if scale < 0 {
				scale = -scale
				for k := range blockSigns {
					blockSigns[k] = ^blockSigns[k] & 127
				}
			}
			for k := range 2 {
				gi := g.onGrid(iq2Pack(L[8*k:]))
				q2[2*ib+k] = uint16(gi) | uint16(blockSigns[k])<<9
			}
			scales[ib] = scale
			maxScale = maxF32(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y, d)
		id := 1 / d
		for ib := range 16 {
			l := clampI32(nearestInt(0.5*(float32(id*scales[ib])-1)), 0, 15)
			y[66+ib/2] |= uint8(l) << (4 * (ib % 2))
		}
		for i, v := range q2 {
			binary.LittleEndian.PutUint16(y[2+2*i:], v)
		}
	}
}

// groupMaxEpsIQ2S is ggml-quants.c GROUP_MAX_EPS_IQ2_S.
const groupMaxEpsIQ2S = float32(1e-8)

// quantizeIQ2S is quantize_iq2_s for one row (quantize_row_iq2_s_impl);
// nil weights select its default weighting (sigma²/4 + x²).
func quantizeIQ2S(dst []byte, x, qw []float32) {
	g := iq2LatticeFor(latIQ2S)
	nbl := len(x) / qkK
	dst = dst[:nbl*82]
	var (
		scales     [16]float32
		weight     [16]float32
		xval       [16]float32
		waux       [16]float32
		L          [16]int8
		blockSigns [2]uint8
	)
	for ibl := range nbl {
		y := dst[ibl*82 : ibl*82+82]
		clear(y)
		var maxScale float32
		xbl := x[qkK*ibl : qkK*ibl+qkK]
		sigma2 := superSigma2(xbl)
		for ib := range 16 {
			xb := xbl[16*ib : 16*ib+16]
			if qw != nil {
				qwb := qw[qkK*ibl+16*ib : qkK*ibl+16*ib+16]
				imatrixWeights(weight[:], xb, qwb, sigma2)
			} else {
				for i := range 16 {
					weight[i] = float32(0.25*sigma2) + float32(xb[i]*xb[i])
				}
			}
			for i := range 16 {
				waux[i] = sqrt32(weight[i])
			}
			for k := range 2 {
				blockSigns[k] = iqSignFold(xval[8*k:], xb[8*k:], weight[8*k:], false)
			}
			max := xval[0]
			for _, v := range xval[1:] {
				max = maxF32(max, v)
			}
			L = [16]int8{}
			if max < groupMaxEpsIQ2S {
				scales[ib] = 0
				continue
			}
			scale := iq2SearchXS(g, xval[:], weight[:], waux[:], max, &L)
			if scale < 0 {
				scale = -scale
				for k := range blockSigns {
					blockSigns[k] = ^blockSigns[k]
				}
			}
			for k := range 2 {
				gi := g.onGrid(iq2Pack(L[8*k:]))
				i8 := 2*ib + k
				y[2+i8] = uint8(gi)
				y[66+i8/4] |= uint8(gi>>8) << (2 * (i8 % 4))
				y[2+32+i8] = blockSigns[k]
			}
			scales[ib] = scale
			maxScale = maxF32(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(y, d*0.9875)
		id := 1 / d
		for ib := range 16 {
			l := clampI32(nearestInt(0.5*(float32(id*scales[ib])-1)), 0, 15)
			y[74+ib/2] |= uint8(l) << (4 * (ib % 2))
		}
	}
}

// iq2Values returns the dequantization grid of a lattice: byte i of entry
// k is the value of level i (ggml-common.h iq2xxs_grid, iq2xs_grid,
// iq2s_grid: levels 8, 25, 43, 62; iq1s_grid: -1, 0, 1), derived from the
// index tables (scripts/gen-iq2-tables.py checks the derivation).
func iq2Values(kgrid []uint16, levels [4]int8) [][8]int8 {
	g := make([][8]int8, len(kgrid))
	for k, v := range kgrid {
		for i := range 8 {
			g[k][i] = levels[(v>>(2*i))&3]
		}
	}
	return g
}

var (
	iq2xxsGrid = iq2Values(kgridIQ2XXS[:], [4]int8{8, 25, 43, 62})
	iq2xsGrid  = iq2Values(kgridIQ2XS[:], [4]int8{8, 25, 43, 62})
	iq2sGrid   = iq2Values(kgridIQ2S[:], [4]int8{8, 25, 43, 62})
	iq1sGrid   = iq2Values(kgridIQ1S[:], [4]int8{-1, 0, 1, 0})
)

// ksignsIQ2XS is ggml-common.h ksigns_iq2xs: 7 sign bits plus their parity.
func ksignsIQ2XS(i uint32) uint8 {
	i &= 127
	return uint8(i) | uint8(bits.OnesCount32(i)&1)<<7
}

// iq2Signed writes db·grid[j], negated where bit j of signs is set.
func iq2Signed(y []float32, db float32, grid *[8]int8, signs uint8) {
	y = y[:8]
	for j := range 8 {
		v := db * float32(grid[j])
		if signs&(1<<j) != 0 {
			v = -v
		}
		y[j] = v
	}
}

// DequantizeIQ2XXS decodes IQ2_XXS blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ2XXS(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*66]
	le := binary.LittleEndian
	for i := range nb {
		x := src[i*66 : i*66+66]
		d := getF16(x)
		for ib := range 8 {
			a0 := le.Uint32(x[2+8*ib:])
			a1 := le.Uint32(x[6+8*ib:])
			db := d * (0.5 + float32(a1>>28)) * 0.25
			for l := range 4 {
				iq2Signed(dst[i*qkK+32*ib+8*l:], db, &iq2xxsGrid[uint8(a0>>(8*l))], ksignsIQ2XS(a1>>(7*l)))
			}
		}
	}
}

// DequantizeIQ2XS decodes IQ2_XS blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ2XS(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*74]
	le := binary.LittleEndian
	for i := range nb {
		x := src[i*74 : i*74+74]
		d := getF16(x)
		for ib := range 8 {
			sc := x[66+ib]
			db := [2]float32{d * (0.5 + float32(sc&0xf)) * 0.25, d * (0.5 + float32(sc>>4)) * 0.25}
			for l := range 4 {
				q := le.Uint16(x[2+2*(4*ib+l):])
				iq2Signed(dst[i*qkK+32*ib+8*l:], db[l/2], &iq2xsGrid[q&511], ksignsIQ2XS(uint32(q>>9)))
			}
		}
	}
}

// DequantizeIQ2S decodes IQ2_S blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ2S(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*82]
	for i := range nb {
		x := src[i*82 : i*82+82]
		d := getF16(x)
		qs, signs, qh, scales := x[2:34], x[34:66], x[66:74], x[74:82]
		for ib := range 8 {
			db := [2]float32{d * (0.5 + float32(scales[ib]&0xf)) * 0.25, d * (0.5 + float32(scales[ib]>>4)) * 0.25}
			for l := range 4 {
				gi := uint16(qs[4*ib+l]) | uint16(qh[ib])<<(8-2*l)&0x300
				iq2Signed(dst[i*qkK+32*ib+8*l:], db[l/2], &iq2sGrid[gi], signs[4*ib+l])
			}
		}
	}
}
