package graph

import "github.com/quantbridge/quantbridge/dtype"

// Type is the element encoding of a tensor's data (see package dtype).
type Type = dtype.Type

// The encodings, as package dtype declares them.
const (
	F32       = dtype.F32
	F16       = dtype.F16
	Q4_0      = dtype.Q4_0
	Q4_1      = dtype.Q4_1
	Q5_0      = dtype.Q5_0
	Q5_1      = dtype.Q5_1
	Q8_0      = dtype.Q8_0
	Q8_1      = dtype.Q8_1
	Q2_K      = dtype.Q2_K
	Q3_K      = dtype.Q3_K
	Q4_K      = dtype.Q4_K
	Q5_K      = dtype.Q5_K
	Q6_K      = dtype.Q6_K
	Q8_K      = dtype.Q8_K
	IQ2_XXS   = dtype.IQ2_XXS
	IQ2_XS    = dtype.IQ2_XS
	IQ3_XXS   = dtype.IQ3_XXS
	IQ1_S     = dtype.IQ1_S
	IQ4_NL    = dtype.IQ4_NL
	IQ3_S     = dtype.IQ3_S
	IQ2_S     = dtype.IQ2_S
	IQ4_XS    = dtype.IQ4_XS
	I8        = dtype.I8
	I16       = dtype.I16
	I32       = dtype.I32
	I64       = dtype.I64
	F64       = dtype.F64
	IQ1_M     = dtype.IQ1_M
	BF16      = dtype.BF16
	TQ1_0     = dtype.TQ1_0
	TQ2_0     = dtype.TQ2_0
	MXFP4     = dtype.MXFP4
	NVFP4     = dtype.NVFP4
	Q1_0      = dtype.Q1_0
	Q2_0      = dtype.Q2_0
	U8        = dtype.U8
	U16       = dtype.U16
	U32       = dtype.U32
	U64       = dtype.U64
	Bool      = dtype.Bool
	F8_E4M3   = dtype.F8_E4M3
	F8_E5M2   = dtype.F8_E5M2
	MLXAffine = dtype.MLXAffine
)

// ParseType parses a type name as ggml and safetensors spell it (see dtype.ParseType).
func ParseType(s string) (Type, bool) { return dtype.ParseType(s) }

// RowSize returns the bytes of one row of n elements of type t (see dtype.RowSize).
func RowSize(t Type, n int64) (int64, error) { return dtype.RowSize(t, n) }
