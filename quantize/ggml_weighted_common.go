package quantize

import "math"

// Helpers of the importance-weighted quantizers (ggml-quants.c
// quantize_row_<type>_impl with quant_weights). The exactness rules of
// ggml_common.go apply: float32 in C order, every product feeding a sum
// rounded explicitly.
//
// make_qkx3_quants with a weight vector is make_qkx2_quants operation for
// operation (its max <= min test is max == min, as min <= max), so the
// weighted K-quants call makeQKX2 and makeQKX2Pair.

// sqrt32 is C's sqrtf (correctly rounded, as sqrtss).
func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// sumSquares is ggml's `for (j...) sum_x2 += x[j]*x[j]`.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// superSigma2 is ggml's sigma2 = 2*sumx2/QK_K over a 256-value super-block
// (IQ1, IQ2_S, IQ3 and the weighted Q3_K/Q4_K/Q5_K), rounded so that the
// division (a product by 2⁻⁸) cannot fuse with what uses it.
func superSigma2(x []float32) float32 {
	return float32(float32(2*sumSquares(x[:qkK])) / qkK)
}

// imatrixWeights fills w with ggml's qw[j] * sqrtf(sigma2 + x[j]*x[j]).
func imatrixWeights(w, x, qw []float32, sigma2 float32) {
	n := len(x)
	w, qw = w[:n], qw[:n]
	for j, v := range x {
		w[j] = float32(qw[j] * sqrt32(sigma2+float32(v*v)))
	}
}

// makeQX is ggml's make_qx_quants with rmse_type 1 (the only form the
// quantizers use): a symmetric fit of len(x) values to codes -nmax..nmax-1
// (stored +nmax in L), weighted by qw (nil: x², ggml's qw == NULL), trying
// 19 scales and keeping the one maximising sumlx²/suml2.
func makeQX(nmax int32, x []float32, L []int8, qw []float32) float32 {
	n := len(x)
	L = L[:n]
	if qw != nil {
		qw = qw[:n]
	}
	var max, amax float32
	for i := range n {
		if ax := abs32(x[i]); ax > amax {
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
	fnmax := float32(nmax)
	iscale := -fnmax / max
	var sumlx, suml2 float32
	for i := range n {
		l := clampI32(nearestInt(iscale*x[i]), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := x[i] * x[i]
		if qw != nil {
			w = qw[i]
		}
		fl := float32(l)
		sumlx += float32(float32(w*x[i]) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fnmax + float32(0.1*float32(is))) / max
		sumlx, suml2 = 0, 0
		for i := range n {
			l := clampI32(nearestInt(iscale*x[i]), -nmax, nmax-1)
			w := x[i] * x[i]
			if qw != nil {
				w = qw[i]
			}
			fl := float32(l)
			sumlx += float32(float32(w*x[i]) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i := range n {
				l := clampI32(nearestInt(iscale*x[i]), -nmax, nmax-1)
				L[i] = int8(l + nmax)
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQP is ggml's make_qp_quants: a fit of the non-negative values x
// (sub-block scales or minimums) to codes 0..nmax with a single scale,
// weighted by qw: 9 candidate scales, then up to 5 rounds of coordinate
// descent. Codes are stored as C's uint8_t stores them (wrapping).
func makeQP(nmax int32, x []float32, L []uint8, qw []float32) float32 {
	n := len(x)
	L, qw = L[:n], qw[:n]
	var max float32
	for _, v := range x {
		if !(max > v) { // C's MAX(max, v)
			max = v
		}
	}
	if max < groupMaxEps {
		for i := range L {
			L[i] = 0
		}
		return 0
	}
	fnmax := float32(nmax)
	iscale := fnmax / max
	for i := range n {
		L[i] = uint8(nearestInt(iscale * x[i]))
	}
	scale := 1 / iscale
	var bestMSE float32
	for i := range n {
		diff := x[i] - float32(scale*float32(L[i]))
		bestMSE += float32(float32(qw[i]*diff) * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := (float32(0.1*float32(is)) + fnmax) / max
		scaleIs := 1 / iscaleIs
		var mse float32
		for i := range n {
			l := min(nmax, nearestInt(iscaleIs*x[i]))
			diff := x[i] - float32(scaleIs*float32(l))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < bestMSE {
			bestMSE = mse
			iscale = iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i := range n {
		l := min(nmax, nearestInt(iscale*x[i]))
		L[i] = uint8(l)
		w := qw[i]
		fl := float32(l)
		sumlx += float32(float32(w*x[i]) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for range 5 {
		changed := false
		for i := range n {
			w := qw[i]
			fL := float32(L[i])
			slx := sumlx - float32(float32(w*x[i])*fL)
			sl2 := suml2 - float32(float32(w*fL)*fL)
			if slx > 0 && sl2 > 0 {
				newL := min(nmax, nearestInt(float32(x[i]*sl2)/slx))
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(float32(w*x[i]) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = uint8(newL)
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
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}
