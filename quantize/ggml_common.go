package quantize

import (
	"encoding/binary"
	"math"
)

// Exactness notes for this file and the other ggml_*.go kernels:
//   - All arithmetic is float32 in C source order, left to right.
//   - Every product that feeds an addition or subtraction is wrapped in
//     float32(...) so that Go never fuses it into an FMA (the Go spec lets a
//     compiler fuse x*y+z unless the product is explicitly converted).
//   - C integer conversions (int -> uint8_t/int8_t) wrap, as Go's do.

// groupMaxEps is ggml-quants.c GROUP_MAX_EPS.
const groupMaxEps = float32(1e-15)

// nearestInt is ggml's nearest_int: round half to even via the float
// magic-number trick. Like the C code (asserts compiled out in a release
// build) it returns garbage-but-deterministic results for |f| > 4194303, and
// this port reproduces that garbage bit for bit.
func nearestInt(f float32) int32 {
	// float32(f) keeps an inlined caller's product from fusing into the add.
	v := float32(f) + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func abs32(f float32) float32 {
	return math.Float32frombits(math.Float32bits(f) &^ (1 << 31))
}

func clampI32(v, lo, hi int32) int32 {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, FP32ToFP16(f)) }
func getF16(b []byte) float32    { return FP16ToFP32(binary.LittleEndian.Uint16(b)) }

// makeQKX2 is ggml's make_qkx2_quants: an asymmetric (scale, min) fit of
// len(x) values to codes 0..nmax, trying nstep+1 candidate scales and keeping
// the one with the smallest weighted error (squared, or absolute with
// useMad). It writes the codes to L, uses Laux as scratch, and returns the
// scale and -min (a non-negative offset).
func makeQKX2(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	n := len(x)
	weights = weights[:n]
	L = L[:n]
	Laux = Laux[:n]
	min := x[0]
	max := x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < min {
			min = x[i]
		}
		if x[i] > max {
			max = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if min > 0 {
		min = 0
	}
	if max == min {
		for i := range L {
			L[i] = 0
		}
		return 0, -min
	}
	fnmax := float32(nmax)
	iscale := fnmax / (max - min)
	scale = 1 / iscale
	var bestError float32
	for i := range n {
		l := clampI32(nearestInt(iscale*(x[i]-min)), 0, nmax)
		L[i] = uint8(l)
		diff := float32(scale*float32(l)) + min - x[i]
		if useMad {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -min
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + fnmax) / (max - min)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := clampI32(nearestInt(iscale*(x[i]-min)), 0, nmax)
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			wl := w * fl
			sumL += float32(wl)
			sumL2 += float32(float32(wl) * fl)
			sumXL += float32(float32(wl) * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range n {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - x[i]
				if useMad {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				copy(L, Laux)
				bestError = curError
				scale = thisScale
				min = thisMin
			}
		}
	}
	return scale, -min
}

// makeQ3 is ggml's make_q3_quants with do_rmse == true (as
// quantize_row_q3_K_ref calls it): a symmetric fit to codes -nmax..nmax-1
// (stored +nmax in L) refined by up to 5 rounds of coordinate descent.
func makeQ3(nmax int32, x []float32, L []int8) float32 {
	n := len(x)
	L = L[:n]
	var max, amax float32
	for i := range n {
		ax := abs32(x[i])
		if ax > amax {
			amax = ax
			max = x[i]
		}
	}
	if amax < groupMaxEps {
		for i := range L {
			L[i] = 0
		}
		return 0
	}
	iscale := -float32(nmax) / max
	var sumlx, suml2 float32
	for i := range n {
		l := clampI32(nearestInt(iscale*x[i]), -nmax, nmax-1)
		L[i] = int8(l)
		w := x[i] * x[i]
		fl := float32(l)
		sumlx += float32(float32(w*x[i]) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for range 5 {
		changed := false
		for i := range n {
			w := x[i] * x[i]
			fL := float32(L[i])
			slx := sumlx - float32(float32(w*x[i])*fL)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*fL)*fL)
				newL := clampI32(nearestInt(float32(x[i]*sl2)/slx), -nmax, nmax-1)
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(float32(w*x[i]) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx = slx
						suml2 = sl2
						changed = true
					}
				}
			}
		}
		if !changed {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// getScaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j from the 12 packed bytes of a Q4_K/Q5_K block.
func getScaleMinK4(j int, q []byte) (d, m uint8) {
	q = q[:12]
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

// The fast paths below run two independent sub-blocks in lockstep: the
// float32 sums of one sub-block form serial dependency chains (their order
// is fixed by C), so interleaving a second sub-block's chains roughly
// doubles the work per cycle without changing a single rounding. They give
// the same results as makeQKX2 and makeQX (tested).

// roundClamp is float32(clampI32(nearestInt(f), lo, hi)): C's
// MAX(lo, MIN(hi, nearest_int(f))) as the float the sums use.
func roundClamp(f float32, lo, hi int32) float32 {
	return float32(clampI32(nearestInt(f), lo, hi))
}

// makeQKX2Pair is makeQKX2 on sub-blocks a and b (len(xa) == len(xb) <= 32).
func makeQKX2Pair(nmax int32, xa, xb, wa, wb []float32, La, Lb []uint8, rmin, rdelta float32, nstep int, useMad bool) (scaleA, theMinA, scaleB, theMinB float32) {
	n := len(xa)
	xb, wa, wb, La, Lb = xb[:n], wa[:n], wb[:n], La[:n], Lb[:n]
	minA, maxA, minB, maxB := xa[0], xa[0], xb[0], xb[0]
	sumWA, sumWB := wa[0], wb[0]
	sumXA, sumXB := float32(sumWA*xa[0]), float32(sumWB*xb[0])
	for i := 1; i < n; i++ {
		a, b := xa[i], xb[i]
		if a < minA {
			minA = a
		}
		if a > maxA {
			maxA = a
		}
		if b < minB {
			minB = b
		}
		if b > maxB {
			maxB = b
		}
		sumWA += wa[i]
		sumXA += float32(wa[i] * a)
		sumWB += wb[i]
		sumXB += float32(wb[i] * b)
	}
	if minA > 0 {
		minA = 0
	}
	if minB > 0 {
		minB = 0
	}
	if maxA == minA || maxB == minB || nstep < 1 {
		var laux [32]uint8
		scaleA, theMinA = makeQKX2(nmax, xa, wa, La, laux[:n], rmin, rdelta, nstep, useMad)
		scaleB, theMinB = makeQKX2(nmax, xb, wb, Lb, laux[:n], rmin, rdelta, nstep, useMad)
		return
	}
	fnmax := float32(nmax)
	iscaleA, iscaleB := fnmax/(maxA-minA), fnmax/(maxB-minB)
	scaleA, scaleB = 1/iscaleA, 1/iscaleB
	var bestA, bestB float32
	for i := range n {
		la := roundClamp(iscaleA*(xa[i]-minA), 0, nmax)
		lb := roundClamp(iscaleB*(xb[i]-minB), 0, nmax)
		La[i], Lb[i] = uint8(la), uint8(lb)
		da := float32(scaleA*la) + minA - xa[i]
		db := float32(scaleB*lb) + minB - xb[i]
		if useMad {
			da, db = abs32(da), abs32(db)
		} else {
			da, db = da*da, db*db
		}
		bestA += float32(wa[i] * da)
		bestB += float32(wb[i] * db)
	}
	var auxA, auxB [32]float32
	aA, aB := auxA[:n], auxB[:n]
	for is := 0; is <= nstep; is++ {
		step := rmin + float32(rdelta*float32(is)) + fnmax
		iscaleA, iscaleB = step/(maxA-minA), step/(maxB-minB)
		var sLA, sL2A, sXLA, sLB, sL2B, sXLB float32
		for i := range n {
			la := roundClamp(iscaleA*(xa[i]-minA), 0, nmax)
			lb := roundClamp(iscaleB*(xb[i]-minB), 0, nmax)
			aA[i], aB[i] = la, lb
			wla, wlb := float32(wa[i]*la), float32(wb[i]*lb)
			sLA += wla
			sLB += wlb
			sL2A += float32(wla * la)
			sL2B += float32(wlb * lb)
			sXLA += float32(wla * xa[i])
			sXLB += float32(wlb * xb[i])
		}
		DA := float32(sumWA*sL2A) - float32(sLA*sLA)
		DB := float32(sumWB*sL2B) - float32(sLB*sLB)
		okA, okB := DA > 0, DB > 0
		var tsA, tmA, tsB, tmB float32
		if okA {
			tsA = (float32(sumWA*sXLA) - float32(sumXA*sLA)) / DA
			tmA = (float32(sL2A*sumXA) - float32(sLA*sXLA)) / DA
			if tmA > 0 {
				tmA = 0
				tsA = sXLA / sL2A
			}
		}
		if okB {
			tsB = (float32(sumWB*sXLB) - float32(sumXB*sLB)) / DB
			tmB = (float32(sL2B*sumXB) - float32(sLB*sXLB)) / DB
			if tmB > 0 {
				tmB = 0
				tsB = sXLB / sL2B
			}
		}
		var ceA, ceB float32
		switch {
		case okA && okB && useMad:
			for i := range n {
				da := float32(tsA*aA[i]) + tmA - xa[i]
				db := float32(tsB*aB[i]) + tmB - xb[i]
				ceA += float32(wa[i] * abs32(da))
				ceB += float32(wb[i] * abs32(db))
			}
		case okA && okB:
			for i := range n {
				da := float32(tsA*aA[i]) + tmA - xa[i]
				db := float32(tsB*aB[i]) + tmB - xb[i]
				ceA += float32(wa[i] * float32(da*da))
				ceB += float32(wb[i] * float32(db*db))
			}
		case okA:
			ceA = qkx2Error(xa, wa, aA, tsA, tmA, useMad)
		case okB:
			ceB = qkx2Error(xb, wb, aB, tsB, tmB, useMad)
		}
		if okA && ceA < bestA {
			for i, l := range aA {
				La[i] = uint8(l)
			}
			bestA, scaleA, minA = ceA, tsA, tmA
		}
		if okB && ceB < bestB {
			for i, l := range aB {
				Lb[i] = uint8(l)
			}
			bestB, scaleB, minB = ceB, tsB, tmB
		}
	}
	return scaleA, -minA, scaleB, -minB
}

// qkx2Error is makeQKX2's weighted error of codes L under (scale, min).
func qkx2Error(x, w, L []float32, scale, min float32, useMad bool) float32 {
	n := len(x)
	w, L = w[:n], L[:n]
	var e float32
	for i := range n {
		d := float32(scale*L[i]) + min - x[i]
		if useMad {
			d = abs32(d)
		} else {
			d = d * d
		}
		e += float32(w[i] * d)
	}
	return e
}

// makeQXPair is makeQX on sub-blocks a and b (len(xa) == len(xb) <= 16).
func makeQXPair(nmax int32, xa, xb []float32, La, Lb []int8) (scaleA, scaleB float32) {
	n := len(xa)
	xb, La, Lb = xb[:n], La[:n], Lb[:n]
	var maxA, amaxA, maxB, amaxB float32
	for i := range n {
		if ax := abs32(xa[i]); ax > amaxA {
			amaxA, maxA = ax, xa[i]
		}
		if bx := abs32(xb[i]); bx > amaxB {
			amaxB, maxB = bx, xb[i]
		}
	}
	if amaxA < groupMaxEps || amaxB < groupMaxEps {
		return makeQX(nmax, xa, La, nil), makeQX(nmax, xb, Lb, nil)
	}
	// Per-element weights w = x² and w*x, as C computes them in every pass.
	var wA, wxA, wB, wxB [16]float32
	for i := range n {
		wA[i] = xa[i] * xa[i]
		wxA[i] = wA[i] * xa[i]
		wB[i] = xb[i] * xb[i]
		wxB[i] = wB[i] * xb[i]
	}
	fnmax := float32(nmax)
	lo, hi := -nmax, nmax-1
	iscaleA, iscaleB := -fnmax/maxA, -fnmax/maxB
	var sumlxA, suml2A, sumlxB, suml2B float32
	for i := range n {
		la := roundClamp(iscaleA*xa[i], lo, hi)
		lb := roundClamp(iscaleB*xb[i], lo, hi)
		La[i], Lb[i] = int8(int32(la)+nmax), int8(int32(lb)+nmax)
		sumlxA += float32(wxA[i] * la)
		suml2A += float32(float32(wA[i]*la) * la)
		sumlxB += float32(wxB[i] * lb)
		suml2B += float32(float32(wB[i]*lb) * lb)
	}
	if suml2A != 0 {
		scaleA = sumlxA / suml2A
	}
	if suml2B != 0 {
		scaleB = sumlxB / suml2B
	}
	bestA, bestB := scaleA*sumlxA, scaleB*sumlxB
	var auxA, auxB [16]float32
	aA, aB := auxA[:n], auxB[:n]
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		step := -(fnmax + float32(0.1*float32(is)))
		iscaleA, iscaleB = step/maxA, step/maxB
		sumlxA, suml2A, sumlxB, suml2B = 0, 0, 0, 0
		for i := range n {
			la := roundClamp(iscaleA*xa[i], lo, hi)
			lb := roundClamp(iscaleB*xb[i], lo, hi)
			aA[i], aB[i] = la, lb
			sumlxA += float32(wxA[i] * la)
			suml2A += float32(float32(wA[i]*la) * la)
			sumlxB += float32(wxB[i] * lb)
			suml2B += float32(float32(wB[i]*lb) * lb)
		}
		if suml2A > 0 && float32(sumlxA*sumlxA) > float32(bestA*suml2A) {
			for i, l := range aA {
				La[i] = int8(int32(l) + nmax)
			}
			scaleA = sumlxA / suml2A
			bestA = scaleA * sumlxA
		}
		if suml2B > 0 && float32(sumlxB*sumlxB) > float32(bestB*suml2B) {
			for i, l := range aB {
				Lb[i] = int8(int32(l) + nmax)
			}
			scaleB = sumlxB / suml2B
			bestB = scaleB * sumlxB
		}
	}
	return scaleA, scaleB
}
