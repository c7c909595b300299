package quantize

import (
	"fmt"

	"github.com/quantbridge/quantbridge/dtype"
)

// Importance-weighted quantization (llama-quantize --imatrix).
//
// ggml_quantize_chunk passes every quantizer an optional importance vector
// (quant_weights, one value per column of the row: the imatrix entry of the
// tensor, or of the expert, divided by its count). Without one, the legacy
// and K-quant types run their reference quantizers (QuantizeRow); with one
// they run a weighted search. The IQ and TQ types always run their own
// quantizer, with a default weighting when the vector is nil, and some
// (RequiresImatrix) refuse to run without one.
//
// Each type registers its weighted quantizer in weightedQuantizers from the
// file that implements it (an init function), so that adding a type touches
// one file.

// weightedQuantFunc quantizes one row of len(src) values into dst, weighted
// by weights (len(src) values, or nil for ggml's NULL quant_weights).
type weightedQuantFunc func(dst []byte, src, weights []float32)

// weightedQuantizers holds ggml's quantize_<type> for a row, weights given.
var weightedQuantizers = map[dtype.Type]weightedQuantFunc{}

// RequiresImatrix reports whether llama.cpp refuses to quantize to t
// without an importance matrix (ggml_quantize_requires_imatrix: IQ2_XXS,
// IQ2_XS, IQ1_S).
func RequiresImatrix(t dtype.Type) bool {
	return t == dtype.IQ2_XXS || t == dtype.IQ2_XS || t == dtype.IQ1_S
}

// CanQuantizeWeighted reports whether QuantizeRowWeighted accepts t with a
// non-nil importance vector.
func CanQuantizeWeighted(t dtype.Type) bool {
	_, ok := weightedQuantizers[t]
	return ok
}

// QuantizeRowWeighted is QuantizeRow with an importance vector, as
// ggml_quantize_chunk computes it for one row: weights holds one value per
// element of src (len(weights) == len(src)), or is nil for an unweighted
// quantization (llama-quantize without --imatrix). Types without a
// weighted quantizer (F16, BF16, F32, Q8_0, ...) ignore weights, as ggml
// does. A nil vector for a type RequiresImatrix reports is an error.
func QuantizeRowWeighted(dst []byte, src, weights []float32, t dtype.Type) error {
	if weights != nil && len(weights) != len(src) {
		return fmt.Errorf("quantize to %v: %d importance weights for a row of %d values", t, len(weights), len(src))
	}
	q, ok := weightedQuantizers[t]
	if !ok {
		return QuantizeRow(dst, src, t)
	}
	if weights == nil {
		if RequiresImatrix(t) {
			return fmt.Errorf("quantize to %v: the type needs an importance matrix (--imatrix)", t)
		}
		if _, ok := quantizers[t]; ok {
			return QuantizeRow(dst, src, t) // the reference quantizer, as ggml's NULL quant_weights
		}
	}
	if err := checkRowArgs(dst, src, t); err != nil {
		return err
	}
	if err := runWeighted(q, dst, src, weights); err != nil {
		return fmt.Errorf("quantize to %v: %w", t, err)
	}
	return validateQuantized(dst, t)
}
