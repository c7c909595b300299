package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/quantbridge/quantbridge/dtype"
)

// 1-bit lattice quants (ggml-quants.c quantize_row_iq1_s_impl,
// quantize_row_iq1_m_impl, dequantize_row_iq1_s, dequantize_row_iq1_m).
//
//	IQ1_S 50 bytes / 256: d qs[32] qh[8]u16 (3 high index bits x4, 3-bit scale, delta sign)
//	IQ1_M 56 bytes / 256: qs[32] qh[16] scales[8] (3-bit scales; the fp16 d spread over their top nibbles)
//
// Groups of 8 values are points of the 2048-point grid of levels -1, 0, 1,
// shifted by ±IQ1S_DELTA per 32 (IQ1_S) or per 8 (IQ1_M) values.

func init() {
	weightedQuantizers[dtype.IQ1_S] = quantizeIQ1S
	weightedQuantizers[dtype.IQ1_M] = quantizeIQ1M
	dequantizers[dtype.IQ1_S] = DequantizeIQ1S
	dequantizers[dtype.IQ1_M] = DequantizeIQ1M
}

const (
	iq1Delta        = float32(0.125) // IQ1S_DELTA, IQ1M_DELTA
	groupMaxEpsIQ1S = float32(1e-12)
	groupMaxEpsIQ1M = float32(1e-7)
	iq1MaxFloat     = float32(math.MaxFloat32)
)

var (
	iq1XP = [3]float32{-1 + iq1Delta, iq1Delta, 1 + iq1Delta}
	iq1XM = [3]float32{-1 - iq1Delta, -iq1Delta, 1 - iq1Delta}
)

// iq1SortedIndex writes to idx the indices of xb in ascending order of
// value, equal values in index order: glibc's qsort (2.36, the reference
// build) sorts arrays this small with a stable merge sort, and
// iq1_sort_helper compares the values only.
func iq1SortedIndex(idx []int, xb []float32) {
	for j := range idx {
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool { return xb[idx[a]] < xb[idx[b]] })
}

// iq1FindBestNeighbour2 is ggml's iq1_find_best_neighbour2 (the grid-wide
// fallback only runs when every distance is NaN or infinite, where ggml
// reads out of bounds; this port stops there).
func iq1FindBestNeighbour2(g *iq2Lattice, neigh []uint16, xval, weight []float32, scale float32, xg *[3]float32, L []int8) int {
	xval, weight, L = xval[:8], weight[:8], L[:8]
	best := iq1MaxFloat
	index := -1
	for _, j := range neigh {
		pg := &g.grid[j]
		var d2 float32
		for i := range 8 {
			q := xg[(pg[i]-1)/2]
			diff := float32(scale*q) - xval[i]
			d2 += float32(float32(weight[i]*diff) * diff)
		}
		if d2 < best {
			best = d2
			index = int(j)
		}
	}
	if index < 0 {
		panic(searchFailure(fmt.Sprintf("no IQ1 grid neighbour at a finite distance (scale %g)", scale)))
	}
	for i, q := range g.grid[index] {
		L[i] = (q - 1) / 2
	}
	return index
}

// quantizeIQ1S is quantize_iq1_s for one row (quantize_row_iq1_s_impl).
// weights is required.
func quantizeIQ1S(dst []byte, x, qw []float32) {
	const blockSize = 32
	g := iq2LatticeFor(latIQ1)
	nbl := len(x) / qkK
	dst = dst[:nbl*50]
	var (
		scales     [qkK / blockSize]float32
		shifts     [qkK / blockSize]int8
		weight     [blockSize]float32
		sumx, sumw [blockSize + 1]float32
		idx        [blockSize]int
		L          [blockSize]int8
		index      [blockSize / 8]uint16
	)
	le := binary.LittleEndian
	for ibl := range nbl {
		y := dst[ibl*50 : ibl*50+50]
		clear(y)
		var maxScale float32
		xbl := x[qkK*ibl : qkK*ibl+qkK]
		sigma2 := superSigma2(xbl)
		for ib := range qkK / blockSize {
			xb := xbl[blockSize*ib : blockSize*ib+blockSize]
			qwb := qw[qkK*ibl+blockSize*ib : qkK*ibl+blockSize*ib+blockSize]
			imatrixWeights(weight[:], xb, qwb, sigma2)
			max := abs32(xb[0])
			for _, v := range xb[1:] {
				max = maxF32(max, abs32(v))
			}
			if max < groupMaxEpsIQ1S {
				scales[ib] = 0
				shifts[ib] = 1
				continue
			}
			iq1SortedIndex(idx[:], xb)
			for j := range blockSize {
				i := idx[j]
				sumx[j+1] = sumx[j] + float32(weight[i]*xb[i])
				sumw[j+1] = sumw[j] + weight[i]
			}
			bestScore, scale := -iq1MaxFloat, max
			besti1, besti2, bestShift := -1, -1, 0
			for i1 := 0; i1 <= blockSize; i1++ {
				for i2 := i1; i2 <= blockSize; i2++ {
					for _, sh := range [2]int{1, -1} {
						xx := &iq1XP
						if sh < 0 {
							xx = &iq1XM
						}
						sumqx := float32(float32(float32((sumx[i1]-sumx[0])*xx[0])+float32((sumx[i2]-sumx[i1])*xx[1])) + float32((sumx[blockSize]-sumx[i2])*xx[2]))
						sumq2 := float32(float32(float32(float32((sumw[i1]-sumw[0])*xx[0])*xx[0])+float32(float32((sumw[i2]-sumw[i1])*xx[1])*xx[1])) + float32(float32((sumw[blockSize]-sumw[i2])*xx[2])*xx[2]))
						if sumq2 > 0 && float32(sumqx*sumqx) > float32(bestScore*sumq2) {
							scale = sumqx / sumq2
							bestScore = scale * sumqx
							besti1, besti2, bestShift = i1, i2, sh
						}
					}
				}
			}
			if besti1 < 0 || besti2 < 0 || bestShift == 0 {
				scales[ib] = 0
				shifts[ib] = 1
				continue
			}
			for j := range blockSize {
				switch {
				case j < besti1:
					L[idx[j]] = 0
				case j < besti2:
					L[idx[j]] = 1
				default:
					L[idx[j]] = 2
				}
			}
			if scale < 0 {
				for j := range L {
					L[j] = 2 - L[j]
				}
				scale = -scale
				bestShift = -bestShift
			}
			xx := &iq1XP
			if bestShift != 1 {
				xx = &iq1XM
			}
			allOnGrid := true
			for k := range blockSize / 8 {
				u := iq2Pack(L[8*k:])
				gi := int(g.kmap[u])
				if gi < 0 {
					allOnGrid = false
					gi = iq1FindBestNeighbour2(g, g.neighbours(u), xb[8*k:], weight[8*k:], scale, xx, L[8*k:])
				}
				index[k] = uint16(gi)
			}
			if !allOnGrid {
				var sumqx, sumq2 float32
				for k := range blockSize / 8 {
					pg := &g.grid[index[k]]
					for j := range 8 {
						w := weight[8*k+j]
						q := xx[(pg[j]-1)/2]
						sumqx += float32(float32(w*q) * xb[8*k+j])
						sumq2 += float32(float32(w*q) * q)
					}
				}
				if sumqx > 0 && sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			var h uint16
			for k := range blockSize / 8 {
				y[2+(blockSize/8)*ib+k] = uint8(index[k])
				h |= (index[k] >> 8) << (3 * k)
			}
			le.PutUint16(y[34+2*ib:], h)
			scales[ib] = scale
			shifts[ib] = int8(bestShift)
			maxScale = maxF32(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 15
		putF16(y, d*1.125)
		id := 1 / d
		for ib := range qkK / blockSize {
			l := clampI32(nearestInt(0.5*(float32(id*scales[ib])-1)), 0, 7)
			if shifts[ib] == -1 {
				l |= 8
			}
			le.PutUint16(y[34+2*ib:], le.Uint16(y[34+2*ib:])|uint16(l)<<12)
		}
	}
}

// quantizeIQ1M is quantize_iq1_m for one row (quantize_row_iq1_m_impl);
// nil weights select its default weighting (x²).
func quantizeIQ1M(dst []byte, x, qw []float32) {
	const blockSize = 16
	g := iq2LatticeFor(latIQ1)
	nbl := len(x) / qkK
	dst = dst[:nbl*56]
	masks := [4]uint8{0x00, 0x80, 0x08, 0x88}
	var (
		scales [qkK / blockSize]float32
		shifts [qkK / blockSize]int
		weight [blockSize]float32
		idx    [blockSize]int
		L      [blockSize]int8
		index  [blockSize / 8]uint16
	)
	// For shift k (0: +,+; 1: +,-; 2: -,+; 3: -,-) the grid values of the
	// first and the second 8 values.
	xxFor := func(k, half int) *[3]float32 {
		if (half == 0 && k < 2) || (half == 1 && k%2 == 0) {
			return &iq1XP
		}
		return &iq1XM
	}
	setWeights := func(xb, qwb []float32, sigma2 float32) {
		if qwb != nil {
			imatrixWeights(weight[:], xb, qwb, sigma2)
		} else {
			for i := range blockSize {
				weight[i] = xb[i] * xb[i]
			}
		}
	}
	for ibl := range nbl {
		y := dst[ibl*56 : ibl*56+56]
		clear(y)
		qs, qh := y[0:32], y[32:48]
		var maxScale float32
		xbl := x[qkK*ibl : qkK*ibl+qkK]
		sigma2 := superSigma2(xbl)
		qwBlock := func(ib int) []float32 {
			if qw == nil {
				return nil
			}
			return qw[qkK*ibl+blockSize*ib : qkK*ibl+blockSize*ib+blockSize]
		}
		for ib := range qkK / blockSize {
			xb := xbl[blockSize*ib : blockSize*ib+blockSize]
			setWeights(xb, qwBlock(ib), sigma2)
			max := abs32(xb[0])
			for _, v := range xb[1:] {
				max = maxF32(max, abs32(v))
			}
			if max < groupMaxEpsIQ1M {
				scales[ib] = 0
				shifts[ib] = 0
				continue
			}
			iq1SortedIndex(idx[:], xb)
			bestScore, scale := -iq1MaxFloat, max
			besti1, besti2, bestK := -1, -1, -1
			for i1 := 0; i1 <= blockSize; i1++ {
				for i2 := i1; i2 <= blockSize; i2++ {
					var sumqx, sumq2 [4]float32
					for j := range blockSize {
						grp := 2
						if j < i1 {
							grp = 0
						} else if j < i2 {
							grp = 1
						}
						i := idx[j]
						half := 0
						if i >= blockSize/2 {
							half = 1
						}
						for k := range 4 {
							xv := xxFor(k, half)[grp]
							wx := float32(weight[i] * xv)
							sumqx[k] += float32(wx * xb[i])
							sumq2[k] += float32(wx * xv)
						}
					}
					for k := range 4 {
						if sumq2[k] > 0 && float32(sumqx[k]*sumqx[k]) > float32(bestScore*sumq2[k]) {
							scale = sumqx[k] / sumq2[k]
							bestScore = scale * sumqx[k]
							besti1, besti2, bestK = i1, i2, k
						}
					}
				}
			}
			if besti1 < 0 || besti2 < 0 || bestK < 0 {
				scales[ib] = 0
				shifts[ib] = 0
				continue
			}
			for j := range blockSize {
				switch {
				case j < besti1:
					L[idx[j]] = 0
				case j < besti2:
					L[idx[j]] = 1
				default:
					L[idx[j]] = 2
				}
			}
			if scale < 0 {
				for j := range L {
					L[j] = 2 - L[j]
				}
				scale = -scale
				bestK = 3 - bestK
			}
			allOnGrid := true
			for k := range blockSize / 8 {
				u := iq2Pack(L[8*k:])
				gi := int(g.kmap[u])
				if gi < 0 {
					allOnGrid = false
					gi = iq1FindBestNeighbour2(g, g.neighbours(u), xb[8*k:], weight[8*k:], scale, xxFor(bestK, k), L[8*k:])
				}
				index[k] = uint16(gi)
			}
			if !allOnGrid {
				var sumqx, sumq2 float32
				for k := range blockSize / 8 {
					xx := xxFor(bestK, k)
					pg := &g.grid[index[k]]
					for j := range 8 {
						w := weight[8*k+j]
						q := xx[(pg[j]-1)/2]
						sumqx += float32(float32(w*q) * xb[8*k+j])
						sumq2 += float32(float32(w*q) * q)
					}
				}
				if sumqx > 0 && sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			qs[2*ib] = uint8(index[0])
			qs[2*ib+1] = uint8(index[1])
			qh[ib] = uint8(index[0]>>8) | uint8(index[1]>>8)<<4
			scales[ib] = scale
			shifts[ib] = bestK
			maxScale = maxF32(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		var sc [4]uint16
		d := maxScale / 15
		id := 1 / d
		var sumqx, sumq2 float32
		for ib := range qkK / blockSize {
			l := clampI32(nearestInt(0.5*(float32(id*scales[ib])-1)), 0, 7)
			sc[ib/4] |= uint16(l) << (3 * (ib % 4))
			qh[ib] |= masks[shifts[ib]]
			xb := xbl[blockSize*ib : blockSize*ib+blockSize]
			setWeights(xb, qwBlock(ib), sigma2)
			fl := float32(2*l + 1)
			for k := range blockSize / 8 {
				xx := xxFor(shifts[ib], k)
				pg := &g.grid[int(qs[2*ib+k])+(int(qh[ib])<<(8-4*k))&0x700]
				for j := range 8 {
					w := weight[8*k+j]
					q := xx[(pg[j]-1)/2] * fl
					sumqx += float32(float32(w*q) * xb[8*k+j])
					sumq2 += float32(float32(w*q) * q)
				}
			}
		}
		if sumq2 > 0 {
			d = sumqx / sumq2
		}
		s := FP32ToFP16(d * 1.1125)
		sc[0] |= (s & 0x000f) << 12
		sc[1] |= (s & 0x00f0) << 8
		sc[2] |= (s & 0x0f00) << 4
		sc[3] |= s & 0xf000
		for i, v := range sc {
			binary.LittleEndian.PutUint16(y[48+2*i:], v)
		}
	}
}

// DequantizeIQ1S decodes IQ1_S blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ1S(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*50]
	le := binary.LittleEndian
	for i := range nb {
		x := src[i*50 : i*50+50]
		d := getF16(x)
		for ib := range 8 {
			qh := le.Uint16(x[34+2*ib:])
			dl := d * float32(2*((qh>>12)&7)+1)
			delta := iq1Delta
			if qh&0x8000 != 0 {
				delta = -iq1Delta
			}
			for l := range 4 {
				grid := &iq1sGrid[uint16(x[2+4*ib+l])|((qh>>(3*l))&7)<<8]
				y := dst[i*qkK+32*ib+8*l : i*qkK+32*ib+8*l+8]
				for j := range 8 {
					y[j] = dl * (float32(grid[j]) + delta)
				}
			}
		}
	}
}

// DequantizeIQ1M decodes IQ1_M blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ1M(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*56]
	le := binary.LittleEndian
	for i := range nb {
		x := src[i*56 : i*56+56]
		qs, qh := x[0:32], x[32:48]
		var sc [4]uint16
		for k := range sc {
			sc[k] = le.Uint16(x[48+2*k:])
		}
		d := FP16ToFP32(sc[0]>>12 | (sc[1]>>8)&0x00f0 | (sc[2]>>4)&0x0f00 | sc[3]&0xf000)
		for ib := range 16 { // blocks of 16 values
			dl := d * float32(2*((sc[ib/4]>>(3*(ib%4)))&7)+1)
			h := qh[ib]
			for l := range 2 {
				gi := uint16(qs[2*ib+l]) | uint16(h>>(4*l))&7<<8
				delta := iq1Delta
				if h&(0x08<<(4*l)) != 0 {
					delta = -iq1Delta
				}
				grid := &iq1sGrid[gi]
				y := dst[i*qkK+16*ib+8*l : i*qkK+16*ib+8*l+8]
				for j := range 8 {
					y[j] = dl * (float32(grid[j]) + delta)
				}
			}
		}
	}
}
