package arch

import (
	"fmt"

	"github.com/quantbridge/quantbridge/graph"
)

// ApplyGGUF completes the Params of m, a model read from a GGUF file
// (formats/gguf decodes the keys every architecture shares), with what m's
// architecture reads from its own keys (Arch.FromGGUF). A model of an
// architecture not in the registry is left as it is.
func ApplyGGUF(m *graph.Model) error {
	a, ok := registry[m.Arch]
	if !ok || a.FromGGUF == nil {
		return nil
	}
	prefix := m.Arch + "."
	get := func(key string) (any, bool) { return m.Meta(prefix + key) }
	if err := a.FromGGUF(get, &m.Params); err != nil {
		return fmt.Errorf("%s: %w", m.Path, err)
	}
	return nil
}
