//go:build amd64 && !purego

package perplexity

import "golang.org/x/sys/cpu"

// useKRepackZ selects kRepack16x4z (mulTileKRepackZ) for the repacked
// Q4_K and Q2_K orders: the AVX-512 kernels and AVX512_VNNI's VPDPBUSD and
// VPDPWSSD. A variable so that the tests can compare it with the kernels
// it replaces.
var useKRepackZ = useAVX512 && cpu.X86.HasAVX512VNNI

// kRepack16x4z is repack.cpp's q4_K/q2_K 8x8 order (kRepackDot, per = 2,
// 4 or 8 chunks per float step) for a tile of 16 weight rows arranged by
// kTileZ.arrange and four tokens (x, x+k, x+2k, x+3k; xdq, bsq as
// q8KBlocks.makeQuads lays them out): dst[t·ldd+r] for t < 4 and the rows
// r whose bit is set in mask. q2 ≠ 0: scales per 16 elements (Q2_K),
// else per 32 (Q4_K).
//
//go:noescape
func kRepack16x4z(wq *uint8, sc, mnp *int32, wd, wdm *float32, x *int8, k int, xdq *float32, bsq *int16, nb, per, q2 int, dst *float32, ldd, mask int)

// kArrangeCodes writes the codes of kTileZ.wq for nb blocks of up to 16
// Q4_K rows (Q2_K: q2 ≠ 0) at src, stride bytes apart, the rows set in
// mask (the others zero).
//
//go:noescape
func kArrangeCodes(dst *uint8, src *byte, stride, nb, mask, q2 int)
