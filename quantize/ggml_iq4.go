package quantize

import (
	"encoding/binary"
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// IQ4_NL and IQ4_XS quantization: ggml-quants.c quantize_iq4_nl and
// quantize_iq4_xs, both quantize_row_iq4_nl_impl with ntry = 7 (what
// llama-quantize runs, with or without an importance matrix). Each block
// of 32 values gets the scale maximising sumqx²/sumq2 over 16 candidate
// scales, codes the nearest of the 16 kvalues_iq4nl; IQ4_XS then quantizes
// the 8 block scales of a super-block to 6 bits under one fp16 scale and
// recomputes the codes. Weights are qw * sqrtf(sigma2 + x²) with sigma2
// twice the mean square of the (super-)block, or x² without a vector.

func init() {
	weightedQuantizers[dtype.IQ4_NL] = QuantizeIQ4NL
	weightedQuantizers[dtype.IQ4_XS] = QuantizeIQ4XS
}

// iq4Index is ggml's best_index_int8 on kvalues_iq4nl: 0 for x <= -127,
// 15 for x >= 113 (and NaN), else, with ml the index of the largest value
// <= x, ml or ml+1 by C's float32 test x-val[ml] < val[ml+1]-x.
//
// That test is monotonic in x, so between val[k] and val[k+1] it picks k+1
// exactly from a threshold float iq4Thresholds[k] on, and the code is the
// number of thresholds <= x. The thresholds are more than 1 apart, so the
// cell of floats that C's truncation int32(x) maps to holds at most one:
// the code is the count below the cell plus x >= the cell's threshold,
// two table lookups (iq4Cells). TestIQ4IndexMatchesSearch checks it
// against the binary search.
func iq4Index(x float32) uint8 {
	if x != x {
		return 15
	}
	if x < -127 {
		x = -127
	}
	if x > 113 {
		x = 113
	}
	c := &iq4Cells[uint8(int32(x)+127)]
	return c.base + iq4Step(x, c.thr)
}

// iq4Step is 1 if x >= thr else 0, without a branch: x-thr is >= +0 or
// negative exactly as x >= thr or not (a difference of distinct floats is
// never zero; x-Inf is -Inf).
func iq4Step(x, thr float32) uint8 {
	return uint8(math.Float32bits(x-thr)>>31) ^ 1
}

// iq4Cell is the cell of the floats x with int32(x) == t, at index t+127:
// the number of thresholds below every x in it and the threshold inside
// it (+Inf if none).
type iq4Cell struct {
	thr  float32
	base uint8
}

// iq4Better is best_index_int8's last test: whether x, between val[k] and
// val[k+1], is coded k+1.
func iq4Better(x float32, k int) bool {
	return !(x-float32(kvaluesIQ4NL[k]) < float32(kvaluesIQ4NL[k+1])-x)
}

// iq4Thresholds[k] is the smallest float in [val[k], val[k+1]) that
// best_index_int8 codes k+1.
var iq4Thresholds = func() (t [15]float32) {
	for k := range t {
		x := float32(kvaluesIQ4NL[k]+kvaluesIQ4NL[k+1]) / 2
		for iq4Better(x, k) {
			x = math.Nextafter32(x, -1000)
		}
		for !iq4Better(x, k) {
			x = math.Nextafter32(x, 1000)
		}
		t[k] = x
	}
	return t
}()

var iq4Cells = func() (cells [256]iq4Cell) {
	count := func(x float32) (n uint8) {
		for _, t := range iq4Thresholds {
			if x >= t {
				n++
			}
		}
		return n
	}
	for t := int32(-127); t <= 113; t++ {
		// The floats x in -127..113 with int32(x) == t: [t, t+1) for t > 0,
		// (t-1, t] for t < 0, (-1, 1) for t = 0.
		lo, hi := float32(t), float32(t)
		switch {
		case t > 0:
			hi = math.Nextafter32(float32(t+1), 0)
		case t < 0:
			lo = math.Nextafter32(float32(t-1), 0)
		default:
			lo, hi = math.Nextafter32(-1, 0), math.Nextafter32(1, 0)
		}
		lo, hi = max(lo, -127), min(hi, 113)
		c := iq4Cell{thr: float32(math.Inf(1)), base: count(lo)}
		switch count(hi) - c.base {
		case 0:
		case 1:
			c.thr = iq4Thresholds[c.base]
		default:
			panic("quantize: two IQ4 thresholds in one cell")
		}
		cells[uint8(t+127)] = c
	}
	return cells
}()

// kvaluesIQ4NLF is kvaluesIQ4NL as float32.
var kvaluesIQ4NLF = func() (f [16]float32) {
	for i, v := range kvaluesIQ4NL {
		f[i] = float32(v)
	}
	return f
}()

// iq4BlockScale is the per-block part of quantize_row_iq4_nl_impl (ntry 7)
// for one block of 32 values xb with weights w: the best scale, and the
// codes of the first candidate in L. It reports false for an all-zero
// block (amax < GROUP_MAX_EPS), leaving L alone.
func iq4BlockScale(xb, w *[32]float32, L *[32]uint8) (float32, bool) {
	const ntry = 7
	var amax, max float32
	for _, v := range xb {
		if ax := abs32(v); ax > amax {
			amax, max = ax, v
		}
	}
	if amax < groupMaxEps {
		return 0, false
	}
	d := -max / kvaluesIQ4NLF[0]
	id := 1 / d
	var sumqx, sumq2 float32
	for j, x := range xb {
		l := iq4Index(id * x)
		L[j] = l
		q := kvaluesIQ4NLF[l&15]
		wq := float32(w[j] * q)
		sumqx += float32(wq * x)
		sumq2 += float32(wq * q)
	}
	d = 0
	if sumq2 > 0 {
		d = sumqx / sumq2
	}
	best := d * sumqx
	for itry := -ntry; itry <= ntry; itry++ {
		sumqx, sumq2 := iq4Sums(xb, w, float32(itry+int(kvaluesIQ4NL[0]))/max)
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			d = sumqx / sumq2
			best = d * sumqx
		}
	}
	return d, true
}

// iq4Sums is one candidate scale's sums, sumqx = Σ w·q·x and sumq2 =
// Σ w·q², q the value nearest id·x (C's order: (w*q)*x, (w*q)*q). id and x
// are finite here, so NaN never reaches the lookup.
func iq4Sums(xb, w *[32]float32, id float32) (sumqx, sumq2 float32) {
	for j := range 32 {
		x := xb[j]
		al := id * x
		if al < -127 {
			al = -127
		}
		if al > 113 {
			al = 113
		}
		c := &iq4Cells[uint8(int32(al)+127)]
		q := kvaluesIQ4NLF[(c.base+iq4Step(al, c.thr))&15]
		wq := float32(w[j] * q)
		sumqx += float32(wq * x)
		sumq2 += float32(wq * q)
	}
	return sumqx, sumq2
}

// iq4Weights fills w with the block's weights: qw * sqrtf(sigma2 + x²), or
// x² when qw is nil.
func iq4Weights(w, xb *[32]float32, qw []float32, sigma2 float32) {
	if qw == nil {
		for j, v := range xb {
			w[j] = v * v
		}
		return
	}
	imatrixWeights(w[:], xb[:], qw[:32], sigma2)
}

// iq4Pack writes ggml's IQ4 nibble order: byte j of each 16-byte group
// holds code j (low) and code j+16 (high) of a 32-value block.
func iq4Pack(q []byte, L []uint8) {
	nb := len(L) / 32
	q = q[:16*nb]
	for i := range nb {
		for j := range 16 {
			q[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// QuantizeIQ4NL encodes src into IQ4_NL blocks (18 bytes per 32 values) as
// ggml's quantize_iq4_nl does, weighted by qw (len(src) values) or, for a
// nil qw, by x². len(src) must be a multiple of 32.
func QuantizeIQ4NL(dst []byte, src, qw []float32) {
	nb := len(src) / 32
	dst = dst[:nb*18]
	var (
		w [32]float32
		L [32]uint8
	)
	for ib := range nb {
		xb := (*[32]float32)(src[32*ib:])
		y := (*[18]byte)(dst[18*ib:])
		sigma2 := float32(sumSquares(xb[:]) * (2.0 / 32))
		var qb []float32
		if qw != nil {
			qb = qw[32*ib : 32*ib+32]
		}
		iq4Weights(&w, xb, qb, sigma2)
		scale, _ := iq4BlockScale(xb, &w, &L)
		putF16(y[0:], scale)
		var id float32
		if scale != 0 {
			id = 1 / scale
		}
		for j, v := range xb {
			L[j] = iq4Index(id * v)
		}
		iq4Pack(y[2:], L[:])
	}
}

// QuantizeIQ4XS encodes src into IQ4_XS blocks (136 bytes per 256 values)
// as ggml's quantize_iq4_xs does, weighted by qw (len(src) values) or, for
// a nil qw, by x². len(src) must be a multiple of 256.
func QuantizeIQ4XS(dst []byte, src, qw []float32) {
	nb := len(src) / qkK
	dst = dst[:nb*136]
	var (
		w      [32]float32
		L      [qkK]uint8
		scales [8]float32
	)
	for ibl := range nb {
		x := (*[qkK]float32)(src[qkK*ibl:])
		y := (*[136]byte)(dst[136*ibl:])
		sigma2 := float32(sumSquares(x[:]) * (2.0 / qkK))
		var maxScale, amaxScale float32
		for ib := range 8 {
			xb := (*[32]float32)(x[32*ib:])
			var qb []float32
			if qw != nil {
				qb = qw[qkK*ibl+32*ib : qkK*ibl+32*ib+32]
			}
			iq4Weights(&w, xb, qb, sigma2)
			d, ok := iq4BlockScale(xb, &w, (*[32]uint8)(L[32*ib:]))
			scales[ib] = d
			if !ok {
				continue
			}
			if a := abs32(d); a > amaxScale {
				amaxScale, maxScale = a, d
			}
		}
		d := -maxScale / 32
		putF16(y[0:], d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var scalesH uint16
		sl := (*[4]byte)(y[4:])
		for ib := range 8 {
			l := clampI32(nearestInt(id*scales[ib]), -32, 31)
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib : 32*ib+32] {
				L[32*ib+j] = iq4Index(idl * v)
			}
			l += 32
			lo, hi := uint8(l&0xF), uint16(l>>4)
			if ib%2 == 0 {
				sl[ib/2] = lo
			} else {
				sl[ib/2] |= lo << 4
			}
			scalesH |= hi << (2 * ib)
		}
		binary.LittleEndian.PutUint16(y[2:], scalesH)
		iq4Pack(y[8:], L[:])
	}
}
