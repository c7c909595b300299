package convert

import (
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// plainFloat reports whether t is one of the float types llama-quantize
// converts directly.
func plainFloat(t graph.Type) bool { return t == graph.F32 || t == graph.F16 || t == graph.BF16 }

// canDecode reports whether tensors of type t can be turned into float32
// (llama_tensor_dequantize_impl: F32, F16, BF16 and dequantizable block
// types).
func canDecode(t graph.Type) bool {
	return plainFloat(t) || (t.IsQuantized() && t != graph.MLXAffine && quantize.CanDequantize(t))
}

// canEncode reports whether float32 rows can be encoded as type t.
func canEncode(t graph.Type) bool {
	return plainFloat(t) || (t.IsQuantized() && t != graph.MLXAffine && quantize.CanQuantize(t))
}

// decodeRows converts whole rows of type t to float32: len(dst) elements
// from exactly graph.RowSize(t, len(dst)) bytes of src.
func decodeRows(dst []float32, src []byte, t graph.Type) error {
	return quantize.ToFloat32(dst, src, t)
}

// encodeRows encodes whole rows of float32 as type t into dst (exactly
// graph.RowSize(t, len(src)) bytes). Rows never share a block, so a slab of
// rows encodes like each row on its own.
func encodeRows(dst []byte, src []float32, t graph.Type) error {
	return quantize.FromFloat32(dst, src, t)
}

// firstNonFinite returns the index of the first NaN or ±Inf, or -1.
func firstNonFinite(xs []float32) int {
	for i, f := range xs {
		if math.Float32bits(f)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

// errNonFinite names the tensor and the element of a NaN/Inf input value.
func errNonFinite(name string, elem int64, v float32) error {
	return fmt.Errorf("tensor %s: element %d is %v; refusing to convert non-finite values", name, elem, v)
}
