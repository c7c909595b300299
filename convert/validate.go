package convert

import (
	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
)

// validate refuses a model whose hyperparameters, vocabulary and tensors
// disagree (arch.Validate) before anything is written, and reports its
// warnings.
func validate(m *graph.Model, opt *Options) error {
	warns, err := arch.Validate(m)
	for _, w := range warns {
		opt.warn("%s", w)
	}
	return err
}
