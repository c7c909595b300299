package arch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

func TestQwenDenseLayers(t *testing.T) {
	for _, c := range []struct {
		layers, step int
		only         []int
		want         []int
	}{
		{4, 1, nil, nil},
		{4, 2, nil, []int{0, 2}},
		{4, 1, []int{0, 3}, []int{0, 3}},
		{6, 3, []int{5}, []int{0, 1, 3, 4, 5}},
	} {
		if got := qwenDenseLayers(c.layers, c.step, c.only); !slices.Equal(got, c.want) {
			t.Errorf("layers %d step %d only %v: %v, want %v", c.layers, c.step, c.only, got, c.want)
		}
	}
}

func TestQwen3MoEConfig(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"num_local_experts": 8.0, "num_experts_per_tok": 2.0, "moe_intermediate_size": 96.0,
			"norm_topk_prob": true, "head_dim": 32.0}
	}
	var p graph.Params
	p.Layers, p.HeadDim = 3, 32
	if err := qwen3MoEConfig(&Config{Path: "config.json", M: base()}, &p); err != nil {
		t.Fatal(err)
	}
	if p.Experts != 8 || p.ExpertsUsed != 2 || p.ExpertFFN != 96 || !p.NormTopK || !p.QKNorm || p.DenseLayers != nil {
		t.Errorf("params %+v", p)
	}
	for _, c := range []struct {
		drop, key string
		set       any
	}{
		{drop: "num_experts_per_tok", key: "num_experts_per_tok"},
		{drop: "moe_intermediate_size", key: "moe_intermediate_size"},
		{drop: "num_local_experts", key: "num_experts"},
		{key: "num_experts_per_tok", set: 9.0},
	} {
		m := base()
		delete(m, c.drop)
		if c.set != nil {
			m[c.key] = c.set
		}
		var p graph.Params
		err := qwen3MoEConfig(&Config{Path: "dir/config.json", M: m}, &p)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), "dir/config.json") {
			t.Errorf("without %q / %q=%v: error %v, want one naming dir/config.json and %q", c.drop, c.key, c.set, err, c.key)
		}
	}
}

// TestQwen3MoEDenseLayersRefusedForGGUF: llama.cpp's qwen3moe needs every
// layer sparse, so a model with dense layers is not written to GGUF.
func TestQwen3MoEDenseLayersRefusedForGGUF(t *testing.T) {
	m := &graph.Model{Path: "m", Arch: "qwen3moe", Params: graph.Params{DenseLayers: []int{0}}}
	err := qwen3MoEKV(&KVBuilder{arch: "qwen3moe"}, HParams{}, m)
	if err == nil || !strings.Contains(err.Error(), "[0]") {
		t.Errorf("error %v", err)
	}
}

func TestMixtralNamesAndClass(t *testing.T) {
	for _, c := range []struct {
		hf     string
		mlx    bool
		want   string
		expert int
	}{
		{"model.layers.3.block_sparse_moe.gate.weight", false, "blk.3.ffn_gate_inp.weight", -1},
		{"model.layers.3.block_sparse_moe.experts.7.w1.weight", false, "blk.3.ffn_gate_exps.weight", 7},
		{"model.layers.3.block_sparse_moe.experts.0.w2.weight", false, "blk.3.ffn_down_exps.weight", 0},
		{"model.layers.3.block_sparse_moe.experts.2.w3.weight", false, "blk.3.ffn_up_exps.weight", 2},
		{"model.layers.1.block_sparse_moe.switch_mlp.down_proj.scales", true, "blk.1.ffn_down_exps.scales", -1},
	} {
		got, e, ok := Llama.CanonicalName(c.hf, c.mlx)
		if !ok || got != c.want || e != c.expert {
			t.Errorf("%s: %s expert %d, want %s %d", c.hf, got, e, c.want, c.expert)
		}
	}
	if a, mt := Llama.HFClassFor(&graph.Params{Experts: 8}); a != "MixtralForCausalLM" || mt != "mixtral" {
		t.Errorf("with experts: %s %s", a, mt)
	}
	if a, mt := Llama.HFClassFor(&graph.Params{}); a != "LlamaForCausalLM" || mt != "llama" {
		t.Errorf("dense: %s %s", a, mt)
	}
	if a, mt := Qwen3MoE.HFClassFor(&graph.Params{Experts: 8}); a != "Qwen3MoeForCausalLM" || mt != "qwen3_moe" {
		t.Errorf("qwen3moe: %s %s", a, mt)
	}
	if b, g, ok := Qwen3MoE.MLXQuant("blk.0.ffn_gate_inp.weight", []int64{8, 128}, 4, 32); !ok || b != 8 || g != 64 {
		t.Errorf("router: %d %d %v, want 8 64 (qwen3_moe.py quant_predicate)", b, g, ok)
	}
	if b, g, ok := Qwen3MoE.MLXQuant("blk.0.ffn_up_exps.weight", []int64{8, 96, 128}, 4, 32); !ok || b != 4 || g != 32 {
		t.Errorf("experts: %d %d %v", b, g, ok)
	}
}
