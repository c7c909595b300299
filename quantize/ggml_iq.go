package quantize

import (
	"encoding/binary"
	"math"
)

// Non-linear 4-bit formats, dequantization only (ggml-quants.c
// dequantize_row_iq4_nl, dequantize_row_iq4_xs, dequantize_row_mxfp4).
//
//	IQ4_NL  18 bytes / 32: d qs[16]
//	IQ4_XS 136 bytes / 256: d scales_h(u16) scales_l[4] qs[128]
//	MXFP4   17 bytes / 32: e(E8M0) qs[16]

// kvaluesIQ4NL is ggml-common.h kvalues_iq4nl.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// kvaluesMXFP4 is ggml-common.h kvalues_fp4: E2M1 values, doubled.
var kvaluesMXFP4 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// e8m0Half is ggml_e8m0_to_fp32_half: 2^(e-128) (half the E8M0 scale, to
// match the doubled kvalues).
func e8m0Half(e uint8) float32 {
	if e < 2 {
		return math.Float32frombits(0x00200000 << e)
	}
	return math.Float32frombits(uint32(e-1) << 23)
}

// DequantizeIQ4NL decodes IQ4_NL blocks into dst (len(dst) a multiple of 32).
func DequantizeIQ4NL(dst []float32, src []byte) {
	nb := len(dst) / 32
	src = src[:nb*18]
	for i := range nb {
		x := (*[18]byte)(src[i*18:])
		y := (*[32]float32)(dst[i*32:])
		d := getF16(x[0:])
		for j := range 16 {
			q := x[2+j]
			y[j] = d * float32(kvaluesIQ4NL[q&0xF])
			y[j+16] = d * float32(kvaluesIQ4NL[q>>4])
		}
	}
}

// DequantizeIQ4XS decodes IQ4_XS blocks into dst (len(dst) a multiple of 256).
func DequantizeIQ4XS(dst []float32, src []byte) {
	nb := len(dst) / qkK
	src = src[:nb*136]
	for i := range nb {
		x := (*[136]byte)(src[i*136:])
		d := getF16(x[0:])
		scalesH := binary.LittleEndian.Uint16(x[2:])
		for ib := range 8 {
			ls := int32(x[4+ib/2]>>(4*(ib%2)))&0xF | int32((scalesH>>(2*ib))&3)<<4
			dl := d * float32(ls-32)
			qs := (*[16]byte)(x[8+16*ib:])
			y := (*[32]float32)(dst[i*qkK+32*ib:])
			for j, q := range qs {
				y[j] = dl * float32(kvaluesIQ4NL[q&0xF])
				y[j+16] = dl * float32(kvaluesIQ4NL[q>>4])
			}
		}
	}
}

// DequantizeMXFP4 decodes MXFP4 blocks into dst (len(dst) a multiple of 32).
func DequantizeMXFP4(dst []float32, src []byte) {
	nb := len(dst) / 32
	src = src[:nb*17]
	for i := range nb {
		x := (*[17]byte)(src[i*17:])
		y := (*[32]float32)(dst[i*32:])
		d := e8m0Half(x[0])
		for j := range 16 {
			q := x[1+j]
			y[j] = float32(kvaluesMXFP4[q&0xF]) * d
			y[j+16] = float32(kvaluesMXFP4[q>>4]) * d
		}
	}
}
