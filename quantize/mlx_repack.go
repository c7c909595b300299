package quantize

// Exact repacks between GGUF legacy blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and
// MLX affine groups. A GGUF block of 32 values x_j = d*(q_j - o) (Q4_0: o=8,
// Q5_0: o=16, Q8_0 stored signed, o=128 after q^0x80) or x_j = d*q_j + m
// (Q4_1, Q5_1) is an MLX affine group of 32 with scale d and bias -o*d or m.
// mlx's own GGUF loader (mlx/io/gguf_quants.cpp) maps Q4_0, Q4_1 and Q8_0 this
// way with F16 scales; Q5_0/Q5_1 follow the same identity at 5 bits.
// Only the codes, scales and biases are mapped exactly: the two libraries
// evaluate q*scale+bias with different roundings (GGUF in float32, MLX in the
// scales' dtype), so dequantized values can differ in the last bits.

import (
	"encoding/binary"
	"fmt"

	"github.com/quantbridge/quantbridge/dtype"
)

// mlxRepackInfo describes a GGUF type that repacks exactly to MLX affine.
type mlxRepackInfo struct {
	bits      int
	blockSize int  // bytes per 32-element block
	hasMin    bool // Q4_1, Q5_1: block stores m
	offset    int  // o in x = d*(q-o) for types without m
}

func mlxRepackable(t dtype.Type) (mlxRepackInfo, bool) {
	switch t {
	case dtype.Q4_0:
		return mlxRepackInfo{bits: 4, blockSize: 18, offset: 8}, true
	case dtype.Q4_1:
		return mlxRepackInfo{bits: 4, blockSize: 20, hasMin: true}, true
	case dtype.Q5_0:
		return mlxRepackInfo{bits: 5, blockSize: 22, offset: 16}, true
	case dtype.Q5_1:
		return mlxRepackInfo{bits: 5, blockSize: 24, hasMin: true}, true
	case dtype.Q8_0:
		return mlxRepackInfo{bits: 8, blockSize: 34, offset: 128}, true
	}
	return mlxRepackInfo{}, false
}

// RepackableGGUF reports whether GGUF type t has an exact MLX affine
// equivalent (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and at which bit width.
func RepackableGGUF(t dtype.Type) (bits int, ok bool) {
	ri, ok := mlxRepackable(t)
	return ri.bits, ok
}

// ggufBlockCodes decodes the 32 unsigned codes of one GGUF block (after the
// d/m header) and returns d, m (m only for Q4_1/Q5_1).
func mlxGGUFBlockCodes(codes *[32]uint32, blk []byte, t dtype.Type) (d, m uint16) {
	d = binary.LittleEndian.Uint16(blk)
	switch t {
	case dtype.Q4_0, dtype.Q4_1:
		qs := blk[2:]
		if t == dtype.Q4_1 {
			m = binary.LittleEndian.Uint16(blk[2:])
			qs = blk[4:]
		}
		for j := 0; j < 16; j++ {
			codes[j] = uint32(qs[j] & 0x0f)
			codes[j+16] = uint32(qs[j] >> 4)
		}
	case dtype.Q5_0, dtype.Q5_1:
		rest := blk[2:]
		if t == dtype.Q5_1 {
			m = binary.LittleEndian.Uint16(blk[2:])
			rest = blk[4:]
		}
		qh := binary.LittleEndian.Uint32(rest)
		qs := rest[4:]
		for j := 0; j < 16; j++ {
			codes[j] = uint32(qs[j]&0x0f) | (qh>>uint(j)&1)<<4
			codes[j+16] = uint32(qs[j]>>4) | (qh>>uint(j+16)&1)<<4
		}
	case dtype.Q8_0:
		for j := 0; j < 32; j++ {
			codes[j] = uint32(blk[2+j] ^ 0x80)
		}
	}
	return d, m
}

// putGGUFBlock encodes one GGUF block from 32 unsigned codes and d, m.
func mlxPutGGUFBlock(blk []byte, codes *[32]uint32, d, m uint16, t dtype.Type) {
	binary.LittleEndian.PutUint16(blk, d)
	switch t {
	case dtype.Q4_0, dtype.Q4_1:
		qs := blk[2:]
		if t == dtype.Q4_1 {
			binary.LittleEndian.PutUint16(blk[2:], m)
			qs = blk[4:]
		}
		for j := 0; j < 16; j++ {
			qs[j] = byte(codes[j]) | byte(codes[j+16])<<4
		}
	case dtype.Q5_0, dtype.Q5_1:
		rest := blk[2:]
		if t == dtype.Q5_1 {
			binary.LittleEndian.PutUint16(blk[2:], m)
			rest = blk[4:]
		}
		var qh uint32
		qs := rest[4:]
		for j := 0; j < 16; j++ {
			qs[j] = byte(codes[j]&0x0f) | byte(codes[j+16]&0x0f)<<4
			qh |= (codes[j] >> 4 & 1) << uint(j)
			qh |= (codes[j+16] >> 4 & 1) << uint(j+16)
		}
		binary.LittleEndian.PutUint32(rest, qh)
	case dtype.Q8_0:
		for j := 0; j < 32; j++ {
			blk[2+j] = byte(codes[j]) ^ 0x80
		}
	}
}

// RepackGGUFToAffine converts one row of cols values stored as GGUF type t
// (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0; src holds cols/32 blocks) into MLX affine
// codes with group size 32 and F16 scales and biases, exactly: Q4_0 gives
// scale d, bias -8d; Q4_1 scale d, bias m; Q5_0 bias -16d; Q5_1 bias m; Q8_0
// 8-bit codes q^0x80 with bias -128d (the -o*d products are computed in
// float32 and rounded to F16 as mlx's GGUF loader does; they are exact unless
// they overflow F16). packed needs AffinePackedWords(cols, bits) words and
// scales and biases 2*cols/32 bytes each. It returns the parameters of the
// result (Rounding is irrelevant and left RoundCPU).
func RepackGGUFToAffine(packed []uint32, scales, biases []byte, src []byte, t dtype.Type, cols int) (AffineParams, error) {
	ri, ok := mlxRepackable(t)
	if !ok {
		return AffineParams{}, fmt.Errorf("mlx repack: GGUF type %v has no exact MLX affine form", t)
	}
	p := AffineParams{Bits: ri.bits, GroupSize: 32}
	if cols < 0 || cols%32 != 0 {
		return p, fmt.Errorf("mlx repack: row length %d is not a multiple of 32", cols)
	}
	nb := cols / 32
	if len(src) != nb*ri.blockSize {
		return p, fmt.Errorf("mlx repack: %v row of %d columns needs %d bytes, got %d", t, cols, nb*ri.blockSize, len(src))
	}
	if err := checkAffineRow(len(packed), len(scales), len(biases), cols, p, dtype.F16); err != nil {
		return p, err
	}
	clear(packed)
	bits := uint(ri.bits)
	var codes [32]uint32
	for b := 0; b < nb; b++ {
		d, m := mlxGGUFBlockCodes(&codes, src[b*ri.blockSize:(b+1)*ri.blockSize], t)
		bias := m
		if !ri.hasMin {
			bias = MLXFloatToFP16(float32(-ri.offset) * FP16ToFP32(d))
		}
		binary.LittleEndian.PutUint16(scales[2*b:], d)
		binary.LittleEndian.PutUint16(biases[2*b:], bias)
		pos := uint(b*32) * bits
		for _, c := range codes {
			k, off := pos>>5, pos&31
			packed[k] |= c << off
			if off+bits > 32 {
				packed[k+1] |= c >> (32 - off)
			}
			pos += bits
		}
	}
	return p, nil
}

// exactFP16 returns v as F16 bits when the conversion is exact.
func mlxExactFP16(v float32) (uint16, bool) {
	if v != v {
		return 0, false
	}
	h := FP32ToFP16(v)
	return h, FP16ToFP32(h) == v
}

// RepackAffineToGGUF converts one MLX affine row (cols values) into GGUF type
// t (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0; dst holds cols/32 blocks) when that is
// exact: the bit width matches t (4, 5 or 8), the group size is a multiple
// of 32, every scale and bias is exactly representable in F16, and for the
// types without a stored minimum (Q4_0, Q5_0, Q8_0) every bias equals -8,
// -16 or -128 times its scale. Otherwise it returns ok == false and leaves
// dst unspecified, and the caller must dequantize and requantize. Bad
// lengths or parameters are errors.
func RepackAffineToGGUF(dst []byte, t dtype.Type, packed []uint32, scales, biases []byte, p AffineParams, scaleType dtype.Type, cols int) (ok bool, err error) {
	ri, ok := mlxRepackable(t)
	if !ok {
		return false, fmt.Errorf("mlx repack: GGUF type %v has no exact MLX affine form", t)
	}
	if cols < 0 {
		return false, fmt.Errorf("mlx repack: negative row length %d", cols)
	}
	if err := checkAffineRow(len(packed), len(scales), len(biases), cols, p, scaleType); err != nil {
		return false, err
	}
	nb := cols / 32
	if len(dst) != nb*ri.blockSize {
		return false, fmt.Errorf("mlx repack: %v row of %d columns needs %d bytes, got %d", t, cols, nb*ri.blockSize, len(dst))
	}
	if p.Bits != ri.bits || p.GroupSize%32 != 0 {
		return false, nil
	}
	bits := uint(p.Bits)
	var codes [32]uint32
	for b := 0; b < nb; b++ {
		g := b * 32 / p.GroupSize
		s, bias := affineGetScale(scales, g, scaleType), affineGetScale(biases, g, scaleType)
		d, okd := mlxExactFP16(s)
		if !okd {
			return false, nil
		}
		var m uint16
		if ri.hasMin {
			var okm bool
			if m, okm = mlxExactFP16(bias); !okm {
				return false, nil
			}
		} else if float32(-ri.offset)*s != bias {
			return false, nil
		}
		for j := range codes {
			codes[j] = affineCode(packed, b*32+j, bits)
		}
		mlxPutGGUFBlock(dst[b*ri.blockSize:(b+1)*ri.blockSize], &codes, d, m, t)
	}
	return true, nil
}
