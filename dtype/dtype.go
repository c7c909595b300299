// Package dtype names the element encodings of tensor data: ggml's type ids
// (with their block layouts) and the encodings that have none (safetensors
// dtypes, MLX affine). It is a leaf package shared by graph (the
// intermediate representation) and quantize (the kernels), so the kernels
// never depend on the graph.
package dtype

import (
	"fmt"
	"strings"
)

// Type is the element encoding of a tensor's data. Values below 1000 are
// ggml's own type ids (ggml.h enum ggml_type), so a GGUF reader or writer can
// convert with a plain cast. Values from 1000 on are encodings that have no
// ggml id: safetensors dtypes and MLX's packed affine quantization.
type Type uint32

// ggml types (ids as in ggml.h).
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
	NVFP4   Type = 40
	Q1_0    Type = 41
	Q2_0    Type = 42
)

// Encodings without a ggml id.
const (
	U8 Type = 1000 + iota
	U16
	U32
	U64
	Bool
	F8_E4M3
	F8_E5M2
	// MLXAffine is MLX's group-wise affine quantization: codes packed
	// LSB-first into uint32 words per row, plus per-group scales and biases
	// (see Tensor.Affine).
	MLXAffine
)

type typeTraits struct {
	name  string
	block int64 // elements per block
	size  int64 // bytes per block
}

var traits = map[Type]typeTraits{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20},
	Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66}, IQ2_XS: {"IQ2_XS", 256, 74}, IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S: {"IQ1_S", 256, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", 256, 110},
	IQ2_S: {"IQ2_S", 256, 82}, IQ4_XS: {"IQ4_XS", 256, 136},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	F64: {"F64", 1, 8}, IQ1_M: {"IQ1_M", 256, 56}, BF16: {"BF16", 1, 2},
	TQ1_0: {"TQ1_0", 256, 54}, TQ2_0: {"TQ2_0", 256, 66},
	MXFP4: {"MXFP4", 32, 17}, NVFP4: {"NVFP4", 64, 36},
	Q1_0: {"Q1_0", 128, 18}, Q2_0: {"Q2_0", 64, 18},
	U8: {"U8", 1, 1}, U16: {"U16", 1, 2}, U32: {"U32", 1, 4}, U64: {"U64", 1, 8},
	Bool: {"BOOL", 1, 1}, F8_E4M3: {"F8_E4M3", 1, 1}, F8_E5M2: {"F8_E5M2", 1, 1},
}

// Known reports whether t is a type this package knows the layout of.
// MLXAffine is known but has no fixed block layout (see Affine).
func (t Type) Known() bool {
	_, ok := traits[t]
	return ok || t == MLXAffine
}

// IsGGML reports whether t is one of ggml's type ids.
func (t Type) IsGGML() bool { return t < 1000 && t.Known() }

// BlockSize is the number of elements per block (1 for plain types).
// It is 0 for MLXAffine and unknown types.
func (t Type) BlockSize() int64 { return traits[t].block }

// TypeSize is the number of bytes per block. It is 0 for MLXAffine and
// unknown types.
func (t Type) TypeSize() int64 { return traits[t].size }

// IsQuantized reports whether t is a block-quantized encoding.
func (t Type) IsQuantized() bool {
	if t == MLXAffine {
		return true
	}
	return traits[t].block > 1
}

// IsFloat reports whether t is a plain (unquantized) floating-point type.
func (t Type) IsFloat() bool {
	switch t {
	case F32, F16, BF16, F64, F8_E4M3, F8_E5M2:
		return true
	}
	return false
}

func (t Type) String() string {
	if t == MLXAffine {
		return "MLX_AFFINE"
	}
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// ParseType parses a type name as ggml and safetensors spell it
// (case-insensitive): "Q4_K", "bf16", "F8_E4M3", "BOOL".
func ParseType(s string) (Type, bool) {
	u := strings.ToUpper(s)
	for t, tr := range traits {
		if tr.name == u {
			return t, true
		}
	}
	if u == "MLX_AFFINE" {
		return MLXAffine, true
	}
	return 0, false
}

// RowSize returns the bytes of one row of n elements of type t, or an error if
// n is not a multiple of the block size or t has no fixed layout.
func RowSize(t Type, n int64) (int64, error) {
	tr, ok := traits[t]
	if !ok {
		return 0, fmt.Errorf("type %v has no fixed row layout", t)
	}
	if n < 0 || n%tr.block != 0 {
		return 0, fmt.Errorf("row of %d elements is not a multiple of %v's block size %d", n, t, tr.block)
	}
	return n / tr.block * tr.size, nil
}
