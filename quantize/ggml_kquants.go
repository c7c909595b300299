package quantize

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// K-quants: 256-element super-blocks. Block layouts (ggml-common.h):
//
//	Q2_K  84 bytes: scales[16] qs[64] d dmin
//	Q3_K 110 bytes: hmask[32] qs[64] scales[12] d
//	Q4_K 144 bytes: d dmin scales[12] qs[128]
//	Q5_K 176 bytes: d dmin scales[12] qh[32] qs[128]
//	Q6_K 210 bytes: ql[128] qh[64] scales[16](int8) d
//	Q8_K 292 bytes: d(float32) qs[256](int8) bsums[16](int16)
//
// The per-type functions take len(src) a multiple of 256 and a dst of at
// least the row size; they panic otherwise. Like the legacy ones they expect
// finite input and match ggml for |x| <= 1e10 (QuantizeRow checks both).

const qkK = 256

// QuantizeQ2K encodes src into Q2_K blocks (quantize_row_q2_K_ref).
func QuantizeQ2K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*84]
	var (
		L       [qkK]uint8
		weights [qkK]float32
		mins    [16]float32
		scales  [16]float32
	)
	const q4scale = float32(15)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[84]byte)(dst[i*84:])
		sc := (*[16]byte)(y[0:])
		var lanes [2][12][8]float32 // SIMD: scale, the_min, and (iscale, min) of the codes
		if useSIMD {
			var xt, wt, aux [128]float32
			for g := range 2 {
				lanePrep(&xt[0], &wt[0], &x[128*g], 16, lanePrepAbs)
				qkx2x8(&xt[0], &wt[0], &aux[0], 16, 3, &q2kNums[0], len(q2kNums), 1, &lanes[g])
				copy(scales[8*g:8*g+8], lanes[g][0][:])
				copy(mins[8*g:8*g+8], lanes[g][1][:])
			}
		} else {
			for l, v := range x {
				weights[l] = abs32(v)
			}
			for j := 0; j < 16; j += 2 {
				a, b := 16*j, 16*j+16
				scales[j], mins[j], scales[j+1], mins[j+1] = makeQKX2Pair(3, x[a:a+16], x[b:b+16],
					weights[a:a+16], weights[b:b+16], L[a:a+16], L[b:b+16], -0.5, 0.1, 15, true)
			}
		}
		var maxScale, maxMin float32
		for j := range 16 {
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range 16 {
				sc[j] = uint8(nearestInt(iscale * scales[j]))
			}
			putF16(y[80:], maxScale/q4scale)
		} else {
			*sc = [16]byte{}
			putF16(y[80:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range 16 {
				sc[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
			}
			putF16(y[82:], maxMin/q4scale)
		} else {
			putF16(y[82:], 0)
		}
		dAll := getF16(y[80:])
		mAll := getF16(y[82:])
		for j := range 16 {
			d := dAll * float32(sc[j]&0xF)
			if d == 0 {
				if useSIMD {
					g, k := j/8, j%8
					qkx2Codes(L[16*j:16*j+16], x[16*j:16*j+16], lanes[g][2][k], lanes[g][3][k], 3)
				}
				continue
			}
			dm := float32(mAll * float32(sc[j]>>4))
			if useSIMD {
				quantDiv(&L[16*j], &x[16*j], 16, dm, d, 0, 3, 0)
				continue
			}
			for ii := range 16 {
				l := nearestInt((x[16*j+ii] + dm) / d)
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

// DequantizeQ2K decodes Q2_K blocks into dst.
func DequantizeQ2K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*84]
	for i := range nb {
		x := (*[84]byte)(src[i*84:])
		y := dst[i*qkK : i*qkK+qkK]
		d := getF16(x[80:])
		mn := getF16(x[82:])
		is := 0
		o := 0
		for n := 0; n < qkK; n += 128 {
			q := x[16+n/4 : 16+n/4+32]
			for shift := uint(0); shift < 8; shift += 2 {
				sc := x[is]
				is++
				dl, ml := d*float32(sc&0xF), float32(mn*float32(sc>>4))
				for l := range 16 {
					y[o] = float32(dl*float32((q[l]>>shift)&3)) - ml
					o++
				}
				sc = x[is]
				is++
				dl, ml = d*float32(sc&0xF), float32(mn*float32(sc>>4))
				for l := range 16 {
					y[o] = float32(dl*float32((q[l+16]>>shift)&3)) - ml
					o++
				}
			}
		}
	}
}

// QuantizeQ3K encodes src into Q3_K blocks (quantize_row_q3_K_ref).
func QuantizeQ3K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*110]
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[110]byte)(dst[i*110:])
		var maxScale, amax float32
		var lt [2][128]float32 // SIMD: codes - 4, lanes of 8 sub-blocks
		if useSIMD {
			var xt [128]float32
			for g := range 2 {
				lanePrep(&xt[0], nil, &x[128*g], 16, lanePrepNone)
				q3x8(&xt[0], &lt[g][0], 16, 4, (*[8]float32)(scales[8*g:]))
			}
		} else {
			for j := range 16 {
				scales[j] = makeQ3(4, x[16*j:16*j+16], L[16*j:16*j+16])
			}
		}
		for j := range 16 {
			scale := abs32(scales[j])
			if scale > amax {
				amax = scale
				maxScale = scales[j]
			}
		}
		sc := (*[12]byte)(y[96:])
		*sc = [12]byte{}
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range 16 {
				l := int8(nearestInt(iscale * scales[j]))
				l = max(-32, min(31, l)) + 32
				if j < 8 {
					sc[j] = uint8(l) & 0xF
				} else {
					sc[j-8] |= (uint8(l) & 0xF) << 4
				}
				l >>= 4
				sc[j%4+8] |= uint8(l) << (2 * (j / 4))
			}
			putF16(y[108:], 1/iscale)
		} else {
			putF16(y[108:], 0)
		}
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
				if useSIMD {
					for ii := range 16 {
						L[16*j+ii] = int8(lt[j/8][8*ii+j%8]) + 4
					}
				}
				continue
			}
			if useSIMD {
				quantDiv((*uint8)(unsafe.Pointer(&L[16*j])), &x[16*j], 16, 0, d, -4, 3, 4)
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

// q3Scales unpacks the 16 6-bit scales of a Q3_K block (minus 32).
func q3Scales(b []byte) [16]int8 {
	b = b[:12]
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(b[0:])
	a1 := binary.LittleEndian.Uint32(b[4:])
	tmp := binary.LittleEndian.Uint32(b[8:])
	aux := [4]uint32{
		(a0 & kmask2) | (((tmp >> 0) & kmask1) << 4),
		(a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
		((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4),
		((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4),
	}
	var s [16]int8
	for k, a := range aux {
		for b := range 4 {
			s[4*k+b] = int8(uint8(a>>(8*b))) - 32
		}
	}
	return s
}

// DequantizeQ3K decodes Q3_K blocks into dst.
func DequantizeQ3K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*110]
	for i := range nb {
		x := (*[110]byte)(src[i*110:])
		y := dst[i*qkK : i*qkK+qkK]
		dAll := getF16(x[108:])
		scales := q3Scales(x[96:])
		hm := x[0:32]
		m := uint8(1)
		is := 0
		o := 0
		for n := 0; n < qkK; n += 128 {
			q := x[32+n/4 : 32+n/4+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for half := 0; half < 32; half += 16 {
					dl := dAll * float32(scales[is])
					is++
					for l := half; l < half+16; l++ {
						v := int32((q[l] >> shift) & 3)
						if hm[l]&m == 0 {
							v -= 4
						}
						y[o] = dl * float32(v)
						o++
					}
				}
				m <<= 1
			}
		}
	}
}

// quantizeK45 is the shared body of quantize_row_q4_K_ref (nmax 15) and
// quantize_row_q5_K_ref (nmax 31): it fills d, dmin and the 12 scale bytes
// of y and returns the 256 codes in L.
func quantizeK45(x *[qkK]float32, hdr *[16]byte, L *[qkK]uint8, nmax int32) {
	var (
		weights [qkK]float32
		mins    [8]float32
		scales  [8]float32
	)
	rmin, nstep := float32(-1), 20
	if nmax == 31 {
		rmin, nstep = -0.5, 15
	}
	var lanes [12][8]float32 // SIMD: scale, the_min, and (iscale, min) of the codes
	if useSIMD {
		var xt, wt, aux [qkK]float32
		lanePrep(&xt[0], &wt[0], &x[0], 32, lanePrepAvX)
		nums := q4kNums
		if nmax == 31 {
			nums = q5kNums
		}
		qkx2x8(&xt[0], &wt[0], &aux[0], 32, int(nmax), &nums[0], len(nums), 0, &lanes)
		scales, mins = lanes[0], lanes[1]
	} else {
		for j := range 8 {
			xs := (*[32]float32)(x[32*j:])
			var sumX2 float32
			for _, v := range xs {
				sumX2 += float32(v * v)
			}
			avX := float32(math.Sqrt(float64(sumX2 / 32)))
			ws := (*[32]float32)(weights[32*j:])
			for l, v := range xs {
				ws[l] = avX + abs32(v)
			}
		}
		for j := 0; j < 8; j += 2 {
			a, b := 32*j, 32*j+32
			scales[j], mins[j], scales[j+1], mins[j+1] = makeQKX2Pair(nmax, x[a:a+32], x[b:b+32],
				weights[a:a+32], weights[b:b+32], L[a:a+32], L[b:b+32], rmin, 0.1, nstep, false)
		}
	}
	var maxScale, maxMin float32
	for j := range 8 {
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := (*[12]byte)(hdr[4:])
	for j := range 8 {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = (ls & 0xF) | (lm&0xF)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(hdr[0:], maxScale/63)
	putF16(hdr[2:], maxMin/63)
	dAll := getF16(hdr[0:])
	mAll := getF16(hdr[2:])
	for j := range 8 {
		s, m := getScaleMinK4(j, sc[:])
		d := dAll * float32(s)
		xs := (*[32]float32)(x[32*j:])
		ls := (*[32]uint8)(L[32*j:])
		if d == 0 {
			if useSIMD {
				qkx2Codes(ls[:], xs[:], lanes[2][j], lanes[3][j], nmax)
			}
			continue
		}
		dm := float32(mAll * float32(m))
		if useSIMD {
			quantDiv(&ls[0], &xs[0], 32, dm, d, 0, nmax, 0)
			continue
		}
		for ii, v := range xs {
			ls[ii] = uint8(clampI32(nearestInt((v+dm)/d), 0, nmax))
		}
	}
}

// QuantizeQ4K encodes src into Q4_K blocks (quantize_row_q4_K_ref).
func QuantizeQ4K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*144]
	var L [qkK]uint8
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[144]byte)(dst[i*144:])
		quantizeK45(x, (*[16]byte)(y[0:]), &L, 15)
		q := (*[128]byte)(y[16:])
		for c := range 4 {
			for l := range 32 {
				q[32*c+l] = L[64*c+l] | L[64*c+32+l]<<4
			}
		}
	}
}

// DequantizeQ4K decodes Q4_K blocks into dst.
func DequantizeQ4K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*144]
	for i := range nb {
		x := (*[144]byte)(src[i*144:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d := getF16(x[0:])
		mn := getF16(x[2:])
		sc := x[4:16]
		for c := range 4 {
			s1, m1 := getScaleMinK4(2*c, sc)
			s2, m2 := getScaleMinK4(2*c+1, sc)
			d1, dm1 := d*float32(s1), float32(mn*float32(m1))
			d2, dm2 := d*float32(s2), float32(mn*float32(m2))
			q := (*[32]byte)(x[16+32*c:])
			y1 := (*[32]float32)(y[64*c:])
			y2 := (*[32]float32)(y[64*c+32:])
			for l, b := range q {
				y1[l] = float32(d1*float32(b&0xF)) - dm1
				y2[l] = float32(d2*float32(b>>4)) - dm2
			}
		}
	}
}

// QuantizeQ5K encodes src into Q5_K blocks (quantize_row_q5_K_ref).
func QuantizeQ5K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*176]
	var L [qkK]uint8
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[176]byte)(dst[i*176:])
		quantizeK45(x, (*[16]byte)(y[0:]), &L, 31)
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

// DequantizeQ5K decodes Q5_K blocks into dst.
func DequantizeQ5K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*176]
	for i := range nb {
		x := (*[176]byte)(src[i*176:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d := getF16(x[0:])
		mn := getF16(x[2:])
		sc := x[4:16]
		qh := (*[32]byte)(x[16:])
		u1, u2 := uint8(1), uint8(2)
		for c := range 4 {
			s1, m1 := getScaleMinK4(2*c, sc)
			s2, m2 := getScaleMinK4(2*c+1, sc)
			d1, dm1 := d*float32(s1), float32(mn*float32(m1))
			d2, dm2 := d*float32(s2), float32(mn*float32(m2))
			ql := (*[32]byte)(x[48+32*c:])
			y1 := (*[32]float32)(y[64*c:])
			y2 := (*[32]float32)(y[64*c+32:])
			for l, b := range ql {
				v1, v2 := b&0xF, b>>4
				if qh[l]&u1 != 0 {
					v1 += 16
				}
				if qh[l]&u2 != 0 {
					v2 += 16
				}
				y1[l] = float32(d1*float32(v1)) - dm1
				y2[l] = float32(d2*float32(v2)) - dm2
			}
			u1 <<= 2
			u2 <<= 2
		}
	}
}

// QuantizeQ6K encodes src into Q6_K blocks (quantize_row_q6_K_ref).
func QuantizeQ6K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*210]
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[210]byte)(dst[i*210:])
		var maxScale, maxAbsScale float32
		var lanes [2][8]float32
		var iscales [16]float32 // SIMD: the iscale of each sub-block's codes
		if useSIMD {
			var xt [128]float32
			for g := range 2 {
				lanePrep(&xt[0], nil, &x[128*g], 16, lanePrepNone)
				qx8(&xt[0], 16, 32, &q6kNums[0], &lanes)
				copy(scales[8*g:8*g+8], lanes[0][:])
				copy(iscales[8*g:8*g+8], lanes[1][:])
			}
		} else {
			for ib := 0; ib < 16; ib += 2 {
				a, b := 16*ib, 16*ib+16
				scales[ib], scales[ib+1] = makeQXPair(32, x[a:a+16], x[b:b+16], L[a:a+16], L[b:b+16])
			}
		}
		for _, scale := range scales {
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
				if useSIMD {
					qxCodes(L[16*j:16*j+16], x[16*j:16*j+16], iscales[j], 32)
				}
				continue
			}
			if useSIMD {
				quantDiv((*uint8)(unsafe.Pointer(&L[16*j])), &x[16*j], 16, 0, d, -32, 31, 32)
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

// DequantizeQ6K decodes Q6_K blocks into dst.
func DequantizeQ6K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*210]
	for i := range nb {
		x := (*[210]byte)(src[i*210:])
		d := getF16(x[208:])
		for c := range 2 {
			y := (*[128]float32)(dst[i*qkK+128*c:])
			ql := (*[64]byte)(x[64*c:])
			qh := (*[32]byte)(x[128+32*c:])
			sc := (*[8]byte)(x[192+8*c:])
			for l := range 32 {
				is := l / 16
				q1 := int32(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				y[l] = d * float32(int8(sc[is+0])) * float32(q1)
				y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

// QuantizeQ8K encodes src into Q8_K blocks (quantize_row_q8_K_ref; used by
// ggml only as an intermediate for dot products).
func QuantizeQ8K(dst []byte, src []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*292]
	for i := range nb {
		x := (*[qkK]float32)(src[i*qkK:])
		y := (*[292]byte)(dst[i*292:])
		var max, amax float32
		for _, v := range x {
			if ax := abs32(v); ax > amax {
				amax = ax
				max = v
			}
		}
		if amax == 0 {
			*y = [292]byte{}
			continue
		}
		iscale := -127 / max
		qs := (*[qkK]byte)(y[4:])
		for j, v := range x {
			qs[j] = byte(int8(min(127, nearestInt(iscale*v))))
		}
		for j := range 16 {
			var sum int32
			for ii := range 16 {
				sum += int32(int8(qs[16*j+ii]))
			}
			binary.LittleEndian.PutUint16(y[260+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(y[0:], math.Float32bits(1/iscale))
	}
}

// DequantizeQ8K decodes Q8_K blocks into dst.
func DequantizeQ8K(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*292]
	for i := range nb {
		x := (*[292]byte)(src[i*292:])
		y := (*[qkK]float32)(dst[i*qkK:])
		d := math.Float32frombits(binary.LittleEndian.Uint32(x[0:]))
		for j := range y {
			y[j] = d * float32(int8(x[4+j]))
		}
	}
}

// packQ3K writes a Q3_K block's high-bit mask (y[0:32]) and low 2-bit
// codes (y[32:96]) from its 256 codes 0..7 in L, as quantize_row_q3_K_ref
// and its weighted variant do (L is left holding the low bits).
func packQ3K(y []byte, L *[qkK]int8) {
	hmask := (*[32]byte)(y[0:])
	*hmask = [32]byte{}
	m := 0
	hm := uint8(1)
	for j := range qkK {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		m++
		if m == qkK/8 {
			m = 0
			hm <<= 1
		}
	}
	qs := (*[64]byte)(y[32:])
	for j := 0; j < qkK; j += 128 {
		for l := range 32 {
			qs[j/4+l] = uint8(L[j+l]) | uint8(L[j+l+32])<<2 | uint8(L[j+l+64])<<4 | uint8(L[j+l+96])<<6
		}
	}
}
