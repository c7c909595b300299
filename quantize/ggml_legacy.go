package quantize

import (
	"encoding/binary"
	"math"
)

// Legacy 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//
// The per-type functions take len(src) a multiple of 32 and a dst of at
// least the row size (graph.RowSize); they panic otherwise. Their input must
// be finite, and their output is ggml's for |x| <= 1e10 (beyond that ggml
// overflows its fp16 scales, and float32 intermediates may overflow to
// values whose integer conversion differs between architectures).
// QuantizeRow and DequantizeRow are the checked entry points.
//
// Three rounding rules live here, as in ggml: Q8_0/Q8_1 use roundf (half
// away from zero); Q4_0/Q4_1/Q5_0/Q5_1 truncate x+8.5 (or +0.5, +16.5).

const qk = 32

// roundf is C's roundf (half away from zero) as an int32, for |r| < 2^31:
// truncate, then step away from zero when the (exact) remainder is at
// least one half.
func roundf(r float32) int32 {
	t := int32(r)
	d := float32(r) - float32(t) // float32(r): no fusing with an inlined caller's product
	if d >= 0.5 {
		t++
	}
	if d <= -0.5 {
		t--
	}
	return t
}

// idOverflow reports whether a block's inverse scale id = 1/d is infinite
// (d is a tiny subnormal). ggml then computes x*id = ±Inf or NaN for every
// element, and its x86-64 build converts those to the integer 0x80000000,
// whose low byte, and thus every code, is 0. Callers write zero codes, so
// the conversions below only ever see |x*id| <= 127 or so, where Go's
// conversion is exact on every architecture.
func idOverflow(id float32) bool { return id > math.MaxFloat32 || id < -math.MaxFloat32 }

// QuantizeQ4_0 encodes src into Q4_0 blocks (18 bytes per 32 values).
func QuantizeQ4_0(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*18]
	if useSIMD {
		simdBlocksD(dst, src, nb, 18, kernelQ4_0)
		return
	}
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[18]byte)(dst[i*18:])
		max := absMax(x)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		if idOverflow(id) {
			*(*[16]byte)(y[2:]) = [16]byte{}
			continue
		}
		for j := range qk / 2 {
			x0 := x[j] * id
			x1 := x[qk/2+j] * id
			xi0 := min(15, int8(int32(float32(x0)+8.5)))
			xi1 := min(15, int8(int32(float32(x1)+8.5)))
			y[2+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
}

// DequantizeQ4_0 decodes Q4_0 blocks into dst (len(dst) a multiple of 32).
func DequantizeQ4_0(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*18]
	for i := range nb {
		x := (*[18]byte)(src[i*18:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		for j := range qk / 2 {
			y[j] = float32(int32(x[2+j]&0xF)-8) * d
			y[j+qk/2] = float32(int32(x[2+j]>>4)-8) * d
		}
	}
}

// absMax returns the value of largest magnitude (the first one on ties; +0
// for an all-zero block), as quantize_row_q4_0_ref finds it with
// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`. For non-NaN floats
// the order of magnitudes is the order of the bits without the sign, so the
// loop runs on integers with conditional moves instead of branches.
func absMax(x *[qk]float32) float32 {
	var amax, raw uint32
	for _, v := range x {
		b := math.Float32bits(v)
		if a := b & 0x7fffffff; a > amax {
			amax, raw = a, b
		}
	}
	return math.Float32frombits(raw)
}

// orderKey maps a non-NaN float to an int32 with the same order, ±0 equal.
func orderKey(b uint32) int32 {
	s := int32(b) >> 31
	m := int32(b & 0x7fffffff)
	return m ^ s - s
}

// minMax returns min and max as quantize_row_q4_1_ref finds them (from
// +FLT_MAX / -FLT_MAX, strict comparisons: the first of equal values wins),
// comparing integer order keys to avoid branches.
func minMax(x *[qk]float32) (mn, mx float32) {
	kmin, kmax := orderKey(math.Float32bits(math.MaxFloat32)), orderKey(math.Float32bits(-math.MaxFloat32))
	rawMin, rawMax := math.Float32bits(math.MaxFloat32), math.Float32bits(-math.MaxFloat32)
	for _, v := range x {
		b := math.Float32bits(v)
		k := orderKey(b)
		if k < kmin {
			kmin, rawMin = k, b
		}
		if k > kmax {
			kmax, rawMax = k, b
		}
	}
	return math.Float32frombits(rawMin), math.Float32frombits(rawMax)
}

// QuantizeQ4_1 encodes src into Q4_1 blocks (20 bytes per 32 values).
func QuantizeQ4_1(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*20]
	if useSIMD {
		simdBlocksDM(dst, src, nb, 20, kernelQ4_1)
		return
	}
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[20]byte)(dst[i*20:])
		mn, mx := minMax(x)
		d := (mx - mn) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], mn)
		if idOverflow(id) {
			*(*[16]byte)(y[4:]) = [16]byte{}
			continue
		}
		for j := range qk / 2 {
			x0 := (x[j] - mn) * id
			x1 := (x[qk/2+j] - mn) * id
			xi0 := min(15, int8(int32(float32(x0)+0.5)))
			xi1 := min(15, int8(int32(float32(x1)+0.5)))
			y[4+j] = uint8(xi0) | uint8(xi1)<<4
		}
	}
}

// DequantizeQ4_1 decodes Q4_1 blocks into dst.
func DequantizeQ4_1(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*20]
	for i := range nb {
		x := (*[20]byte)(src[i*20:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		m := getF16(x[2:])
		for j := range qk / 2 {
			y[j] = float32(float32(x[4+j]&0xF)*d) + m
			y[j+qk/2] = float32(float32(x[4+j]>>4)*d) + m
		}
	}
}

// QuantizeQ5_0 encodes src into Q5_0 blocks (22 bytes per 32 values).
func QuantizeQ5_0(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*22]
	if useSIMD {
		simdBlocksD(dst, src, nb, 22, kernelQ5_0)
		return
	}
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[22]byte)(dst[i*22:])
		max := absMax(x)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		if idOverflow(id) {
			*(*[20]byte)(y[2:]) = [20]byte{}
			continue
		}
		var qh uint32
		for j := range qk / 2 {
			x0 := x[j] * id
			x1 := x[qk/2+j] * id
			xi0 := uint8(min(31, int8(int32(float32(x0)+16.5))))
			xi1 := uint8(min(31, int8(int32(float32(x1)+16.5))))
			y[6+j] = xi0&0xF | (xi1&0xF)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(y[2:], qh)
	}
}

// DequantizeQ5_0 decodes Q5_0 blocks into dst.
func DequantizeQ5_0(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*22]
	for i := range nb {
		x := (*[22]byte)(src[i*22:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		qh := binary.LittleEndian.Uint32(x[2:])
		for j := range qk / 2 {
			xh0 := uint8(qh>>j<<4) & 0x10
			xh1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(int32(x[6+j]&0xF|xh0)-16) * d
			y[j+qk/2] = float32(int32(x[6+j]>>4|xh1)-16) * d
		}
	}
}

// QuantizeQ5_1 encodes src into Q5_1 blocks (24 bytes per 32 values).
func QuantizeQ5_1(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*24]
	if useSIMD {
		simdBlocksDM(dst, src, nb, 24, kernelQ5_1)
		return
	}
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[24]byte)(dst[i*24:])
		mn, mx := minMax(x)
		d := (mx - mn) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(y[0:], d)
		putF16(y[2:], mn)
		if idOverflow(id) {
			*(*[20]byte)(y[4:]) = [20]byte{}
			continue
		}
		var qh uint32
		for j := range qk / 2 {
			x0 := (x[j] - mn) * id
			x1 := (x[qk/2+j] - mn) * id
			xi0 := uint8(int32(float32(x0) + 0.5))
			xi1 := uint8(int32(float32(x1) + 0.5))
			y[8+j] = xi0&0xF | (xi1&0xF)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(y[4:], qh)
	}
}

// DequantizeQ5_1 decodes Q5_1 blocks into dst.
func DequantizeQ5_1(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*24]
	for i := range nb {
		x := (*[24]byte)(src[i*24:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		m := getF16(x[2:])
		qh := binary.LittleEndian.Uint32(x[4:])
		for j := range qk / 2 {
			xh0 := uint8(qh>>j<<4) & 0x10
			xh1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(float32(x[8+j]&0xF|xh0)*d) + m
			y[j+qk/2] = float32(float32(x[8+j]>>4|xh1)*d) + m
		}
	}
}

// q8Scale returns Q8_0's d = amax/127 and id = 1/d (0 when d is 0), with
// amax found as ggml's MAX(amax, fabsf(v)) does. For non-NaN floats the
// order of magnitudes is the order of their bits without the sign, which
// keeps the loop in integer registers.
func q8Scale(x *[qk]float32) (d, id float32) {
	var maxBits uint32
	for _, v := range x {
		maxBits = max(maxBits, math.Float32bits(v)&0x7fffffff)
	}
	d = math.Float32frombits(maxBits) / 127
	if d != 0 {
		id = 1 / d
	}
	return d, id
}

// QuantizeQ8_0 encodes src into Q8_0 blocks (34 bytes per 32 values).
func QuantizeQ8_0(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*34]
	if useSIMD {
		simdBlocksD(dst, src, nb, 34, kernelQ8_0)
		return
	}
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[34]byte)(dst[i*34:])
		d, id := q8Scale(x)
		putF16(y[0:], d)
		if idOverflow(id) {
			*(*[qk]byte)(y[2:]) = [qk]byte{}
			continue
		}
		q := (*[qk]byte)(y[2:])
		for j, v := range x {
			q[j] = byte(int8(roundf(v * id)))
		}
	}
}

// DequantizeQ8_0 decodes Q8_0 blocks into dst.
func DequantizeQ8_0(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*34]
	for i := range nb {
		x := (*[34]byte)(src[i*34:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		q := (*[qk]byte)(x[2:])
		for j := range y {
			y[j] = float32(int8(q[j])) * d
		}
	}
}

// QuantizeQ8_1 encodes src into Q8_1 blocks (36 bytes per 32 values: d,
// s = d*sum(q), 32 int8 codes).
func QuantizeQ8_1(dst []byte, src []float32) {
	nb := len(src) / qk
	dst = dst[:nb*36]
	for i := range nb {
		x := (*[qk]float32)(src[i*qk:])
		y := (*[36]byte)(dst[i*36:])
		d, id := q8Scale(x)
		putF16(y[0:], d)
		if idOverflow(id) {
			*(*[34]byte)(y[2:]) = [34]byte{} // s = fp16(0*d) = 0 too
			continue
		}
		q := (*[qk]byte)(y[4:])
		var sum int32
		for j := range qk / 2 {
			v0 := int8(roundf(x[j] * id))
			v1 := int8(roundf(x[qk/2+j] * id))
			q[j] = byte(v0)
			q[qk/2+j] = byte(v1)
			sum += int32(v0) + int32(v1)
		}
		putF16(y[2:], float32(sum)*d)
	}
}

// DequantizeQ8_1 decodes Q8_1 blocks into dst (ggml has no dequantizer for
// Q8_1; this is qs*d, the same as Q8_0).
func DequantizeQ8_1(dst []float32, src []byte) {
	nb := len(dst) / qk
	src = src[:nb*36]
	for i := range nb {
		x := (*[36]byte)(src[i*36:])
		y := (*[qk]float32)(dst[i*qk:])
		d := getF16(x[0:])
		q := (*[qk]byte)(x[4:])
		for j := range y {
			y[j] = float32(int8(q[j])) * d
		}
	}
}

// Legacy-block kernels for simdBlocksD/simdBlocksDM. The kernels are named
// by constant and called directly (not through a func value) so the scale
// buffers stay on the stack.
const (
	kernelQ4_0 = iota
	kernelQ5_0
	kernelQ8_0
	kernelQ4_1
	kernelQ5_1
)

// simdBlocksD runs an AVX2 legacy-block kernel (codes written in place, each
// block's scale returned) over nb blocks in batches of 256 and stores each
// scale as fp16 at the start of its blockBytes-sized block.
func simdBlocksD(dst []byte, src []float32, nb, blockBytes, kernel int) {
	var d [256]float32
	for i := 0; i < nb; i += len(d) {
		n := min(len(d), nb-i)
		y, x := &dst[blockBytes*i], &src[qk*i]
		switch kernel {
		case kernelQ4_0:
			q40Blocks(y, x, n, &d[0])
		case kernelQ5_0:
			q50Blocks(y, x, n, &d[0])
		case kernelQ8_0:
			q8Blocks(y, x, n, &d[0])
		}
		for k, v := range d[:n] {
			putF16(dst[blockBytes*(i+k):], v)
		}
	}
}

// simdBlocksDM is simdBlocksD for the types with a per-block minimum too
// (Q4_1, Q5_1): scale then minimum, both fp16.
func simdBlocksDM(dst []byte, src []float32, nb, blockBytes, kernel int) {
	var d, m [256]float32
	for i := 0; i < nb; i += len(d) {
		n := min(len(d), nb-i)
		y, x := &dst[blockBytes*i], &src[qk*i]
		switch kernel {
		case kernelQ4_1:
			q41Blocks(y, x, n, &d[0], &m[0])
		case kernelQ5_1:
			q51Blocks(y, x, n, &d[0], &m[0])
		}
		for k := range n {
			putF16(dst[blockBytes*(i+k):], d[k])
			putF16(dst[blockBytes*(i+k)+2:], m[k])
		}
	}
}
