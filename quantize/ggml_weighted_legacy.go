package quantize

import (
	"encoding/binary"

	"github.com/quantbridge/quantbridge/dtype"
)

// Importance-weighted legacy quantizers: ggml-quants.c
// quantize_row_q4_0_impl, q4_1, q5_0 and q5_1 with quant_weights. The
// weights of a block are qw[j] * sqrtf(sigma2 + x[j]²), sigma2 the mean
// square of the whole row; Q4_0/Q5_0 run make_qx_quants, Q4_1/Q5_1
// make_qkx3_quants (-0.9, 0.05, 36 steps).

func init() {
	weightedQuantizers[dtype.Q4_0] = func(dst []byte, src, w []float32) { quantizeLegacyW(dst, src, w, 8, 18) }
	weightedQuantizers[dtype.Q5_0] = func(dst []byte, src, w []float32) { quantizeLegacyW(dst, src, w, 16, 22) }
	weightedQuantizers[dtype.Q4_1] = func(dst []byte, src, w []float32) { quantizeLegacyMinW(dst, src, w, 15, 20) }
	weightedQuantizers[dtype.Q5_1] = func(dst []byte, src, w []float32) { quantizeLegacyMinW(dst, src, w, 31, 24) }
}

// rowSigma2 is the legacy impls' sum_x2/n_per_row.
func rowSigma2(x []float32) float32 { return sumSquares(x) / float32(len(x)) }

// quantizeLegacyW is quantize_row_q4_0_impl (nmax 8, 18-byte blocks) and
// quantize_row_q5_0_impl (nmax 16, 22-byte blocks) with weights qw.
func quantizeLegacyW(dst []byte, src, qw []float32, nmax int32, blockBytes int) {
	nb := len(src) / qk
	dst = dst[:nb*blockBytes]
	qw = qw[:nb*qk]
	sigma2 := rowSigma2(src[:nb*qk])
	var (
		weight [qk]float32
		L      [qk]int8
	)
	for ib := range nb {
		xb := src[qk*ib : qk*ib+qk]
		y := dst[blockBytes*ib : blockBytes*ib+blockBytes]
		imatrixWeights(weight[:], xb, qw[qk*ib:qk*ib+qk], sigma2)
		putF16(y[0:], makeQX(nmax, xb, L[:], weight[:]))
		if nmax == 8 {
			for j := range 16 {
				y[2+j] = uint8(L[j]) | uint8(L[j+16])<<4
			}
			continue
		}
		var qh uint32
		for j := range 16 {
			x0, x1 := uint8(L[j]), uint8(L[j+16])
			y[6+j] = x0&0xF | (x1&0xF)<<4
			qh |= uint32(x0&0x10) >> 4 << j
			qh |= uint32(x1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	}
}

// quantizeLegacyMinW is quantize_row_q4_1_impl (nmax 15, 20-byte blocks)
// and quantize_row_q5_1_impl (nmax 31, 24-byte blocks) with weights qw.
func quantizeLegacyMinW(dst []byte, src, qw []float32, nmax int32, blockBytes int) {
	nb := len(src) / qk
	dst = dst[:nb*blockBytes]
	qw = qw[:nb*qk]
	sigma2 := rowSigma2(src[:nb*qk])
	var (
		weight  [qk]float32
		L, Laux [qk]uint8
	)
	for ib := range nb {
		xb := src[qk*ib : qk*ib+qk]
		y := dst[blockBytes*ib : blockBytes*ib+blockBytes]
		imatrixWeights(weight[:], xb, qw[qk*ib:qk*ib+qk], sigma2)
		d, m := makeQKX2(nmax, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(y[0:], d)
		putF16(y[2:], -m)
		if nmax == 15 {
			for j := range 16 {
				y[4+j] = L[j] | L[j+16]<<4
			}
			continue
		}
		var qh uint32
		for j := range 16 {
			x0, x1 := L[j], L[j+16]
			y[8+j] = x0&0xF | (x1&0xF)<<4
			qh |= uint32(x0&0x10) >> 4 << j
			qh |= uint32(x1&0x10) >> 4 << (j + 16)
		}
		binary.LittleEndian.PutUint32(y[4:], qh)
	}
}
