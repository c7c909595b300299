package quantize

// MLX affine quantization (mlx.core.quantize mode "affine") and exact repacks
// between GGUF legacy blocks and MLX affine groups.
//
// The quantizer reproduces ml-explore/mlx @846d1762: the CPU kernel
// mlx/backend/cpu/quantized.cpp quantize<T,U> (RoundCPU) and, as a scalar
// emulation of its source, the Metal kernel
// mlx/backend/metal/kernels/quantized.h affine_quantize (RoundGPU). All
// arithmetic is float32 with every product rounded before it is added (no
// fused multiply-add), as the C++ compiles on x86.

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/dtype"
)

// Rounding selects which MLX kernel's rounding rules AffineQuantizeRow
// follows. The two differ on exact .5 ties and on all-negative groups.
type Rounding int

const (
	// RoundCPU follows MLX's CPU kernel: codes and the edge code q0 are
	// rounded half to even (std::rint), the group maximum starts at -Inf and
	// the minimum at +Inf, and codes are clamped to [0, 2^bits-1].
	RoundCPU Rounding = iota
	// RoundGPU follows MLX's Metal (and CUDA) kernel: rounding is half away
	// from zero (round), the group maximum starts at 0 (so an all-negative
	// group quantizes the range [min, 0]) and the minimum at the largest
	// finite value of the scale dtype, and only the top of the code range is
	// clamped. Fast-math effects of the GPU compiler are not emulated.
	RoundGPU
)

func (r Rounding) String() string {
	switch r {
	case RoundCPU:
		return "cpu"
	case RoundGPU:
		return "gpu"
	}
	return fmt.Sprintf("Rounding(%d)", int(r))
}

// AffineParams are the parameters of MLX affine quantization.
type AffineParams struct {
	Bits      int // 2, 3, 4, 5, 6 or 8
	GroupSize int // 32, 64 or 128
	Rounding  Rounding
}

// Validate reports whether p is a combination MLX accepts (mlx/ops.cpp
// affine_quantize: group_size in {32, 64, 128}, bits in {2,3,4,5,6,8}).
func (p AffineParams) Validate() error {
	switch p.Bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return fmt.Errorf("mlx affine: unsupported bits %d (supported: 2, 3, 4, 5, 6, 8)", p.Bits)
	}
	switch p.GroupSize {
	case 32, 64, 128:
	default:
		return fmt.Errorf("mlx affine: unsupported group size %d (supported: 32, 64, 128)", p.GroupSize)
	}
	if p.Rounding != RoundCPU && p.Rounding != RoundGPU {
		return fmt.Errorf("mlx affine: unknown rounding %d", int(p.Rounding))
	}
	return nil
}

// AffinePackedWords returns the number of uint32 words holding one row of
// cols codes of the given bit width (cols*bits/32, rounded up).
func AffinePackedWords(cols int, bits int) int {
	return (cols*bits + 31) / 32
}

// AffineScaleSize returns the bytes of one scale or bias value of type t
// (BF16, F16 or F32), or 0 for any other type.
func AffineScaleSize(t dtype.Type) int {
	switch t {
	case dtype.BF16, dtype.F16:
		return 2
	case dtype.F32:
		return 4
	}
	return 0
}

// MLXFloatToBF16 converts to bfloat16 as MLX does (mlx/types/bf16.h): round
// to nearest even, every NaN becomes 0x7FC0. It differs from FP32ToBF16
// (ggml) only on NaN, whose sign and payload ggml keeps.
func MLXFloatToBF16(f float32) uint16 {
	if f != f {
		return 0x7fc0
	}
	u := math.Float32bits(f)
	u += (u>>16)&1 + 0x7fff
	return uint16(u >> 16)
}

// MLXFloatToFP16 converts to IEEE half as MLX does (mlx/types/fp16.h, after
// Maratyszcza/FP16): round to nearest even; NaN becomes sign|0x7D00. It
// differs from FP32ToFP16 (ggml) only on NaN.
func MLXFloatToFP16(f float32) uint16 {
	if f != f {
		return uint16(math.Float32bits(f)>>16)&0x8000 | 0x7d00
	}
	return FP32ToFP16(f)
}

// roundTo rounds v to the precision of scale dtype t, as MLX's
// static_cast<T>(float) does.
func affineRoundTo(v float32, t dtype.Type) float32 {
	switch t {
	case dtype.BF16:
		return BF16ToFP32(MLXFloatToBF16(v))
	case dtype.F16:
		return FP16ToFP32(MLXFloatToFP16(v))
	}
	return v
}

func affinePutScale(b []byte, i int, v float32, t dtype.Type) {
	switch t {
	case dtype.BF16:
		binary.LittleEndian.PutUint16(b[2*i:], MLXFloatToBF16(v))
	case dtype.F16:
		binary.LittleEndian.PutUint16(b[2*i:], MLXFloatToFP16(v))
	default:
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
}

func affineGetScale(b []byte, i int, t dtype.Type) float32 {
	switch t {
	case dtype.BF16:
		return BF16ToFP32(binary.LittleEndian.Uint16(b[2*i:]))
	case dtype.F16:
		return FP16ToFP32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
}

// typeMax is Limits<T>::max of the Metal kernel: the largest finite value
// of the scale (= input) dtype.
func affineTypeMax(t dtype.Type) float32 {
	switch t {
	case dtype.BF16:
		return BF16ToFP32(0x7f7f)
	case dtype.F16:
		return 65504
	}
	return math.MaxFloat32
}

func checkAffineRow(packedLen, scalesLen, biasesLen, cols int, p AffineParams, scaleType dtype.Type) error {
	if err := p.Validate(); err != nil {
		return err
	}
	ss := AffineScaleSize(scaleType)
	if ss == 0 {
		return fmt.Errorf("mlx affine: unsupported scale type %v (want BF16, F16 or F32)", scaleType)
	}
	if cols%p.GroupSize != 0 {
		return fmt.Errorf("mlx affine: row length %d is not a multiple of group size %d", cols, p.GroupSize)
	}
	if want := AffinePackedWords(cols, p.Bits); packedLen != want {
		return fmt.Errorf("mlx affine: packed row has %d words, want %d for %d columns at %d bits", packedLen, want, cols, p.Bits)
	}
	want := cols / p.GroupSize * ss
	if scalesLen != want || biasesLen != want {
		return fmt.Errorf("mlx affine: scales/biases have %d/%d bytes, want %d for %d groups of %v", scalesLen, biasesLen, want, cols/p.GroupSize, scaleType)
	}
	return nil
}

func mlxAbs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// mlxRint rounds half to even (std::rint in the default rounding mode).
func mlxRint(f float32) float32 { return float32(math.RoundToEven(float64(f))) }

// mlxRoundAway rounds half away from zero (Metal round).
func mlxRoundAway(f float32) float32 { return float32(math.Round(float64(f))) }

// AffineQuantizeRow quantizes one row src (len(src) a multiple of
// p.GroupSize) as mlx.core.quantize(mode="affine") does. The codes go into
// packed (AffinePackedWords(len(src), p.Bits) words, zeroed first) as an
// LSB-first bit stream: code i occupies bits [i*Bits, (i+1)*Bits) of the row,
// word k holding stream bits [32k, 32k+32). Each group's scale and bias are
// written to scales and biases (len(src)/GroupSize values each) encoded as
// scaleType, which is BF16, F16 or F32 (MLX uses the input dtype).
//
// Per group, in float32: edge is whichever of min and max has the larger
// magnitude (max on a tie); scale = max((max-min)/(2^bits-1), 1e-7), negated
// unless edge is the min; q0 = round(edge/scale); if q0 != 0 then
// scale = edge/q0 and bias = edge, else bias = 0; code = clamp(round((w -
// bias)/scale), 0, 2^bits-1) with the float32 scale and bias, which are only
// then rounded to scaleType. src values must be finite: NaN or ±Inf is an
// error, since MLX's result for them is undefined.
func AffineQuantizeRow(packed []uint32, scales, biases []byte, src []float32, p AffineParams, scaleType dtype.Type) error {
	if err := checkAffineRow(len(packed), len(scales), len(biases), len(src), p, scaleType); err != nil {
		return err
	}
	clear(packed)
	gs := p.GroupSize
	bits := uint(p.Bits)
	nBins := float32(int(1)<<bits - 1)
	const eps = float32(1e-7)
	round := mlxRint
	if p.Rounding == RoundGPU {
		round = mlxRoundAway
	}
	for g := 0; g < len(src)/gs; g++ {
		w := src[g*gs : (g+1)*gs]
		wMin, wMax := float32(math.Inf(1)), float32(math.Inf(-1))
		if p.Rounding == RoundGPU {
			wMin, wMax = affineTypeMax(scaleType), 0
		}
		for j, x := range w {
			if x != x || mlxAbs32(x) > math.MaxFloat32 {
				return fmt.Errorf("mlx affine: non-finite value %g at column %d", x, g*gs+j)
			}
			if wMax < x {
				wMax = x
			}
			if x < wMin {
				wMin = x
			}
		}
		mask := mlxAbs32(wMin) > mlxAbs32(wMax)
		scale := (wMax - wMin) / nBins
		if scale < eps {
			scale = eps
		}
		edge := wMax
		if mask {
			edge = wMin
		} else {
			scale = -scale
		}
		q0 := round(edge / scale)
		bias := float32(0)
		if q0 != 0 {
			scale = edge / q0
			bias = edge
		}
		pos := uint(g*gs) * bits
		for _, x := range w {
			v := float64((x - bias) / scale)
			if p.Rounding == RoundGPU {
				v = math.Round(v)
			} else {
				v = math.RoundToEven(v)
			}
			// Clamp to [0, nBins]; below -0 never happens for finite
			// input, the lower bound is kept for safety.
			c := uint32(0)
			if v >= float64(nBins) {
				c = uint32(nBins)
			} else if v > 0 {
				c = uint32(v)
			}
			k, off := pos>>5, pos&31
			packed[k] |= c << off
			if off+bits > 32 {
				packed[k+1] |= c >> (32 - off)
			}
			pos += bits
		}
		affinePutScale(scales, g, scale, scaleType)
		affinePutScale(biases, g, bias, scaleType)
	}
	return nil
}

// affineCode returns code i of a packed row.
func affineCode(packed []uint32, i int, bits uint) uint32 {
	pos := uint(i) * bits
	k, off := pos>>5, pos&31
	c := packed[k] >> off
	if off+bits > 32 {
		c |= packed[k+1] << (32 - off)
	}
	return c & (1<<bits - 1)
}

// AffineDequantizeRow dequantizes one packed row into dst (len(dst) columns)
// as mlx.core.dequantize does on the CPU: w = q*scale + bias evaluated in the
// scales' dtype (the product is rounded to scaleType, then the sum), then
// widened to float32. For F32 scales that is the float32 expression with the
// product rounded before the add.
func AffineDequantizeRow(dst []float32, packed []uint32, scales, biases []byte, p AffineParams, scaleType dtype.Type) error {
	if err := checkAffineRow(len(packed), len(scales), len(biases), len(dst), p, scaleType); err != nil {
		return err
	}
	gs := p.GroupSize
	bits := uint(p.Bits)
	for g := 0; g < len(dst)/gs; g++ {
		s := affineGetScale(scales, g, scaleType)
		b := affineGetScale(biases, g, scaleType)
		for j := g * gs; j < (g+1)*gs; j++ {
			q := float32(affineCode(packed, j, bits))
			v := affineRoundTo(float32(q*s), scaleType)
			dst[j] = affineRoundTo(float32(v+b), scaleType)
		}
	}
	return nil
}
