package convert

import (
	"fmt"
	"strings"
)

// dryRun is Options.DryRun's result for a GGUF output: the plan as a
// Summary (each tensor's planned type, encoded size and the reason for the
// type), nothing written. As llama-quantize --dry-run, a plan whose types
// need an importance matrix that is not given is reported (a warning), not
// refused.
func dryRun(in string, ft FileType, plans []TensorPlan, needImatrix error, opt *Options) *Summary {
	if needImatrix != nil {
		opt.warn("dry run only: %v", needImatrix)
	}
	s := &Summary{Input: in, Type: ft.Name, Tensors: make([]TensorSummary, len(plans))}
	var elems int64
	for i, p := range plans {
		b := p.Bytes()
		s.Tensors[i] = TensorSummary{Name: p.Name, From: p.From.String(), To: p.To.String(), Bytes: b, Reason: p.Reason}
		s.TotalBytes += b
		elems += elementsOf(p.Shape)
	}
	if elems > 0 {
		s.BitsPerWeight = float64(s.TotalBytes) * 8 / float64(elems)
	}
	return s
}

// FormatPlan writes a dry run's Summary as a table: name, from, to, size
// and why, one tensor per line.
func FormatPlan(s *Summary) string {
	var b strings.Builder
	w := 0
	for _, t := range s.Tensors {
		w = max(w, len(t.Name))
	}
	for _, t := range s.Tensors {
		fmt.Fprintf(&b, "%-*s  %-7s -> %-7s %10d  %s\n", w, t.Name, t.From, t.To, t.Bytes, t.Reason)
	}
	fmt.Fprintf(&b, "%s: %d tensors, %.2f MiB of tensor data, %.2f bits per weight\n", s.Type, len(s.Tensors), float64(s.TotalBytes)/(1<<20), s.BitsPerWeight)
	return b.String()
}
