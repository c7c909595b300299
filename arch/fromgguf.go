package arch

import (
	"fmt"

	"github.com/quantbridge/quantbridge/graph"
)

// ApplyGGUF completes m.Params of a model read from a GGUF file with its
// architecture's own keys (Arch.FromGGUF) and the parameters it stores as
// tensors (Arch.FromGGUFTensors: longrope factor lists), after
// formats/gguf derived the common ones. Architectures without these hooks,
// and unknown ones, are left alone.
func ApplyGGUF(m *graph.Model) error {
	a, ok := Lookup(m.Arch)
	if !ok {
		return nil
	}
	if a.FromGGUF != nil {
		get := func(key string) (any, bool) { return m.Meta(m.Arch + "." + key) }
		if err := a.FromGGUF(get, &m.Params); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	if a.FromGGUFTensors != nil {
		if err := a.FromGGUFTensors(m); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	return nil
}

// GGUFNumber returns a GGUF metadata value of any numeric type (or the
// first element of a numeric array, as llama.cpp reads per-layer arrays of
// uniform models) as a float64.
func GGUFNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case uint8:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case int16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	case []uint32:
		if len(x) > 0 {
			return float64(x[0]), true
		}
	case []int32:
		if len(x) > 0 {
			return float64(x[0]), true
		}
	case []float32:
		if len(x) > 0 {
			return float64(x[0]), true
		}
	}
	return 0, false
}
