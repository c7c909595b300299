package arch

import (
	"fmt"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// expertKV writes TextModel.set_gguf_parameters' mixture-of-experts keys
// (conversion/base.py, after the norm epsilons): expert_count from
// num_local_experts / num_experts / n_routed_experts, expert_used_count
// from num_experts_per_tok / num_experts_per_token / top_k_experts,
// expert_group_count and expert_group_used_count from n_group and
// topk_group, and expert_gating_func from the scoring function key. A
// model without config.json (read from GGUF or MLX without one) writes
// the counts from Params.
func expertKV(b *KVBuilder, hp HParams, m *graph.Model) error {
	if hp.Raw == nil {
		if m.Params.Experts > 0 {
			b.AddArch("expert_count", uint32(m.Params.Experts))
		}
		if m.Params.ExpertsUsed > 0 {
			b.AddArch("expert_used_count", uint32(m.Params.ExpertsUsed))
		}
		return nil
	}
	if v, ok := hp.Int("num_local_experts", "num_experts", "n_routed_experts"); ok {
		b.AddArch("expert_count", uint32(v))
	}
	if v, ok := hp.Int("num_experts_per_tok", "num_experts_per_token", "top_k_experts"); ok {
		b.AddArch("expert_used_count", uint32(v))
	}
	if v, ok := hp.Int("n_group"); ok {
		b.AddArch("expert_group_count", uint32(v))
	}
	if v, ok := hp.Int("topk_group"); ok {
		b.AddArch("expert_group_used_count", uint32(v))
	}
	if v, ok := hp.Find("score_function", "scoring_func", "score_func", "moe_router_activation", "moe_router_activation_func", "expert_selection_fn"); ok {
		// gguf-py ExpertGatingFuncType
		switch v {
		case "softmax":
			b.AddArch("expert_gating_func", uint32(1))
		case "sigmoid":
			b.AddArch("expert_gating_func", uint32(2))
		case "sqrtsoftplus":
			b.AddArch("expert_gating_func", uint32(4))
		default:
			return fmt.Errorf("gguf: %s: unsupported expert score gating function %v", m.Path, v)
		}
	}
	return nil
}

// expertParams is gguf-py GGUFWriter.get_total_parameter_count's split of
// the parameters for the size label of a MoE model (gguf.size_label
// writes "{experts}x{shared+per-expert}"): a tensor named "*_exps.*" of
// three or more dimensions counts its size divided by its expert count
// (the outermost dimension, the second for a bias) as expert parameters;
// everything else is shared. n is the mean expert count over the expert
// tensors, 0 when there are none.
func expertParams(m *graph.Model) (shared, expert int64, n int) {
	var sum, tensors int64
	for _, t := range m.Tensors {
		size := t.Elements()
		if !strings.Contains(t.Name, "_exps.") || len(t.Shape) < 3 {
			shared += size
			continue
		}
		e := t.Shape[len(t.Shape)-3]
		if strings.Contains(t.Name, ".bias") {
			e = t.Shape[len(t.Shape)-2]
		}
		if e <= 0 {
			shared += size
			continue
		}
		expert += size / e
		sum += e
		tensors++
	}
	if tensors == 0 {
		return shared, expert, 0
	}
	return shared, expert, int(sum / tensors)
}
