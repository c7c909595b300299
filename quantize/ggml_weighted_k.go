package quantize

import (
	"github.com/quantbridge/quantbridge/dtype"
)

// Importance-weighted K-quant quantizers: ggml-quants.c
// quantize_row_q2_K_impl ... quantize_row_q6_K_impl with quant_weights.
// Q2_K weights each value qw * sqrtf(sigma2 + x²) with sigma2 the mean
// square of the super-block, Q3_K/Q4_K/Q5_K with twice that; Q6_K uses the
// importance vector itself. The sub-block scales (and minimums) are then
// fitted by make_qp_quants (Q2_K, Q4_K, Q5_K) or make_qx_quants (Q3_K),
// weighted by the sub-blocks' weight sums.

func init() {
	weightedQuantizers[dtype.Q2_K] = quantizeQ2KW
	weightedQuantizers[dtype.Q3_K] = quantizeQ3KW
	weightedQuantizers[dtype.Q4_K] = func(dst []byte, src, w []float32) { quantizeK45W(dst, src, w, 15) }
	weightedQuantizers[dtype.Q5_K] = func(dst []byte, src, w []float32) { quantizeK45W(dst, src, w, 31) }
	weightedQuantizers[dtype.Q6_K] = quantizeQ6KW
}

// quantizeQ2KW is quantize_row_q2_K_impl.
func quantizeQ2KW(dst []byte, src, qwRow []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*84]
	var (
		L            [qkK]uint8
		weight       [qkK]float32
		mins, scales [16]float32
		sw           [16]float32
		Ls, Lm       [16]uint8
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		qw := qwRow[i*qkK : i*qkK+qkK]
		y := (*[84]byte)(dst[i*84:])
		sigma2 := float32(sumSquares(x[:]) / qkK) // rounded: the division becomes a product
		imatrixWeights(weight[:], x[:], qw, sigma2)
		for j := range 16 {
			var s float32
			for _, w := range weight[16*j : 16*j+16] {
				s += w
			}
			sw[j] = s
		}
		for j := 0; j < 16; j += 2 {
			a, b := 16*j, 16*j+16
			scales[j], mins[j], scales[j+1], mins[j+1] = makeQKX2Pair(3, x[a:a+16], x[b:b+16],
				weight[a:a+16], weight[b:b+16], L[a:a+16], L[b:b+16], -0.9, 0.05, 36, false)
		}
		dm := makeQP(15, scales[:], Ls[:], sw[:])
		mm := makeQP(15, mins[:], Lm[:], sw[:])
		putF16(y[80:], dm)
		putF16(y[82:], mm)
		dm = getF16(y[80:])
		mm = getF16(y[82:])
		sc := (*[16]byte)(y[0:])
		for j := range 16 {
			sc[j] = Ls[j] | Lm[j]<<4
		}
		for j := range 16 {
			d := dm * float32(sc[j]&0xF)
			if d == 0 {
				continue
			}
			m := float32(mm * float32(sc[j]>>4))
			for ii := range 16 {
				l := nearestInt((x[16*j+ii] + m) / d)
				L[16*j+ii] = uint8(clampI32(l, 0, 3))
			}
		}
		qs := (*[64]byte)(y[16:])
		for j := 0; j < qkK; j += 128 {
			for l := range 32 {
				qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
			}
		}
	}
}

// quantizeQ3KW is quantize_row_q3_K_impl with quant_weights.
func quantizeQ3KW(dst []byte, src, qwRow []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*110]
	var (
		L      [qkK]int8
		weight [qkK]float32
		scales [16]float32
		sw     [16]float32
		Ls     [16]int8
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		qw := qwRow[i*qkK : i*qkK+qkK]
		y := (*[110]byte)(dst[i*110:])
		sigma2 := superSigma2(x[:])
		imatrixWeights(weight[:], x[:], qw, sigma2)
		for j := range 16 {
			ws := weight[16*j : 16*j+16]
			var s float32
			for _, w := range ws {
				s += w
			}
			sw[j] = s
			scales[j] = makeQX(4, x[16*j:16*j+16], L[16*j:16*j+16], ws)
		}
		sc := (*[12]byte)(y[96:])
		*sc = [12]byte{}
		dBlock := makeQX(32, scales[:], Ls[:], sw[:])
		for j := range 16 {
			l := uint8(Ls[j])
			if j < 8 {
				sc[j] = l & 0xF
			} else {
				sc[j-8] |= (l & 0xF) << 4
			}
			l >>= 4
			sc[j%4+8] |= l << (2 * (j / 4))
		}
		putF16(y[108:], dBlock)
		dAll := getF16(y[108:])
		for j := range 16 {
			var s int8
			if j < 8 {
				s = int8(sc[j] & 0xF)
			} else {
				s = int8(sc[j-8] >> 4)
			}
			s = (s | int8((sc[8+j%4]>>(2*(j/4)))&3)<<4) - 32
			d := dAll * float32(s)
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := nearestInt(x[16*j+ii] / d)
				L[16*j+ii] = int8(clampI32(l, -4, 3) + 4)
			}
		}
		packQ3K(y[:], &L)
	}
}

// quantizeK45W is quantize_row_q4_K_impl (nmax 15, 144-byte blocks) and
// quantize_row_q5_K_impl (nmax 31, 176-byte blocks) with quant_weights.
func quantizeK45W(dst []byte, src, qwRow []float32, nmax int32) {
	nb := len(src) / qkK
	blockBytes := 144
	if nmax == 31 {
		blockBytes = 176
	}
	dst = dst[:nb*blockBytes]
	var (
		L            [qkK]uint8
		weight       [qkK]float32
		mins, scales [8]float32
		sw           [8]float32
		Ls, Lm       [8]uint8
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		qw := qwRow[i*qkK : i*qkK+qkK]
		y := dst[i*blockBytes : i*blockBytes+blockBytes]
		sigma2 := superSigma2(x[:])
		imatrixWeights(weight[:], x[:], qw, sigma2)
		for j := range 8 {
			var s float32
			for _, w := range weight[32*j : 32*j+32] {
				s += w
			}
			sw[j] = s
		}
		for j := 0; j < 8; j += 2 {
			a, b := 32*j, 32*j+32
			scales[j], mins[j], scales[j+1], mins[j+1] = makeQKX2Pair(nmax, x[a:a+32], x[b:b+32],
				weight[a:a+32], weight[b:b+32], L[a:a+32], L[b:b+32], -0.9, 0.05, 36, false)
		}
		dBlock := makeQP(63, scales[:], Ls[:], sw[:])
		mBlock := makeQP(63, mins[:], Lm[:], sw[:])
		sc := (*[12]byte)(y[4:])
		for j := range 8 {
			ls, lm := Ls[j], Lm[j]
			if nmax == 31 {
				ls, lm = min(63, ls), min(63, lm)
			}
			if j < 4 {
				sc[j] = ls
				sc[j+4] = lm
			} else {
				sc[j+4] = (ls & 0xF) | (lm&0xF)<<4
				sc[j-4] |= (ls >> 4) << 6
				sc[j] |= (lm >> 4) << 6
			}
		}
		putF16(y[0:], dBlock)
		putF16(y[2:], mBlock)
		dAll := getF16(y[0:])
		mAll := getF16(y[2:])
		for j := range 8 {
			s, m := getScaleMinK4(j, sc[:])
			d := dAll * float32(s)
			if d == 0 {
				continue
			}
			dm := float32(mAll * float32(m))
			for ii := range 32 {
				l := nearestInt((x[32*j+ii] + dm) / d)
				L[32*j+ii] = uint8(clampI32(l, 0, nmax))
			}
		}
		if nmax == 15 {
			q := y[16:144]
			for c := range 4 {
				for l := range 32 {
					q[32*c+l] = L[64*c+l] | L[64*c+32+l]<<4
				}
			}
			continue
		}
		qh := (*[32]byte)(y[16:])
		ql := (*[128]byte)(y[48:])
		*qh = [32]byte{}
		m1, m2 := uint8(1), uint8(2)
		for c := range 4 {
			n := 64 * c
			for j := range 32 {
				l1 := L[n+j]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				l2 := L[n+j+32]
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[32*c+j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
		}
	}
}

// quantizeQ6KW is quantize_row_q6_K_impl with quant_weights: make_qx_quants
// weighted by the importance vector itself, then the reference's scale
// quantization.
func quantizeQ6KW(dst []byte, src, qwRow []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*210]
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		qw := qwRow[i*qkK : i*qkK+qkK]
		y := (*[210]byte)(dst[i*210:])
		var maxScale, maxAbsScale float32
		for ib := range 16 {
			scale := makeQX(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16], qw[16*ib:16*ib+16])
			scales[ib] = scale
			if a := abs32(scale); a > maxAbsScale {
				maxAbsScale = a
				maxScale = scale
			}
		}
		if maxAbsScale < groupMaxEps {
			*y = [210]byte{}
			continue
		}
		iscale := -128 / maxScale
		putF16(y[208:], 1/iscale)
		sc := (*[16]byte)(y[192:])
		for ib := range 16 {
			sc[ib] = uint8(min(127, nearestInt(iscale*scales[ib])))
		}
		dAll := getF16(y[208:])
		for j := range 16 {
			d := dAll * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for ii := range 16 {
				l := nearestInt(x[16*j+ii] / d)
				L[16*j+ii] = int8(clampI32(l, -32, 31) + 32)
			}
		}
		ql := (*[128]byte)(y[0:])
		qh := (*[64]byte)(y[128:])
		for c := range 2 {
			j := 128 * c
			for l := range 32 {
				q1 := uint8(L[j+l]) & 0xF
				q2 := uint8(L[j+l+32]) & 0xF
				q3 := uint8(L[j+l+64]) & 0xF
				q4 := uint8(L[j+l+96]) & 0xF
				ql[64*c+l] = q1 | q3<<4
				ql[64*c+l+32] = q2 | q4<<4
				qh[32*c+l] = uint8(L[j+l]>>4) | uint8(L[j+l+32]>>4)<<2 | uint8(L[j+l+64]>>4)<<4 | uint8(L[j+l+96]>>4)<<6
			}
		}
	}
}
