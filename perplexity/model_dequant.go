package perplexity

import (
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// canDequant reports whether the forward pass can expand weights of type t.
func canDequant(t graph.Type) bool {
	switch t {
	case graph.F32, graph.F16, graph.BF16:
		return true
	}
	return t.IsGGML() && quantize.CanDequantize(t)
}

// dequantBlocks expands one row of a ggml block type.
func dequantBlocks(dst []float32, src []byte, t graph.Type) error {
	return quantize.ToFloat32(dst, src, t)
}
