package arch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// qwenMoELayer are the router and expert names of Qwen-style MoE blocks
// (HF "mlp.gate" and "mlp.experts.{e}.*_proj"; GGUF ffn_gate_inp and the
// stacked ffn_*_exps; mlx-lm's SwitchGLU "mlp.switch_mlp.*_proj").
var (
	qwenMoERouter  = NamePair{"mlp.gate.weight", "ffn_gate_inp.weight"}
	qwenMoEExperts = []NamePair{
		{"mlp.experts.{e}.gate_proj.weight", "ffn_gate_exps.weight"},
		{"mlp.experts.{e}.up_proj.weight", "ffn_up_exps.weight"},
		{"mlp.experts.{e}.down_proj.weight", "ffn_down_exps.weight"},
	}
	qwenMoEMLX = []NamePair{
		{"mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight"},
		{"mlp.switch_mlp.up_proj.weight", "ffn_up_exps.weight"},
		{"mlp.switch_mlp.down_proj.weight", "ffn_down_exps.weight"},
	}
)

// Qwen3MoE is Qwen3MoeForCausalLM (convert_hf_to_gguf.py Qwen3MoeModel →
// Qwen2MoeModel; llama.cpp src/models/qwen3moe.cpp; mlx-lm
// mlx_lm/models/qwen3_moe.py): Qwen3 attention (q/k norm, explicit
// head_dim) and a routed-expert FFN: softmax over the router logits, the
// top num_experts_per_tok experts, their weights renormalised when
// norm_topk_prob, a SwiGLU per expert of width moe_intermediate_size.
//
// Layers listed in mlp_only_layers, and those not on the
// decoder_sparse_step grid ((i+1) % step != 0), have a dense FFN of width
// intermediate_size (transformers and mlx-lm build them; Params.DenseLayers
// lists them). llama.cpp's qwen3moe requires every layer to be sparse, so
// such a model is refused when written to GGUF (see GGUFKV).
//
// llama.cpp always renormalises the chosen weights (build_moe_ffn with
// norm_w true) and the converter writes no key for norm_topk_prob: a GGUF
// reads back with NormTopK set, as llama.cpp evaluates it.
var Qwen3MoE = &Arch{
	Name:            "qwen3moe",
	HFClasses:       []string{"Qwen3MoeForCausalLM"},
	ModelTypes:      []string{"qwen3_moe"},
	RopeType:        "neox",
	DefaultContext:  32768, // transformers Qwen3MoeConfig
	DefaultRMSEps:   1e-6,
	DefaultRopeBase: 10000,
	Globals:         commonGlobals,
	Layer:           with(with(commonLayer, qkNormLayer...), qwenMoERouter),
	MLXLayer:        qwenMoEMLX,
	Experts:         qwenMoEExperts,
	Config:          qwen3MoEConfig,
	WriteConfig:     qwen3MoEWriteConfig,
	GGUFKV:          qwen3MoEKV,
	FromGGUF: func(get KVGetter, p *graph.Params) error {
		p.QKNorm = true
		p.NormTopK = true // build_moe_ffn(..., norm_w = true, ...)
		return nil
	},
	MLXQuant: qwen3MoEMLXQuant,
	Features: Features{QKNorm: true, MoE: true},
	Verified: "qwen3moe-tiny (8 experts, top 2, norm_topk_prob): HF → GGUF BF16 byte-identical (3-D ffn_*_exps); 8 llama-quantize types byte-identical; MLX (switch_mlp, 8-bit router) and HF round trips exact; ppl = transformers fp32 (3e-8) and llama-perplexity (≤ 3.2e-6); token ids = HF. Dense layers (mlp_only_layers) read and evaluated, refused for GGUF (llama.cpp cannot load them)",
}

func init() { Register(Qwen3MoE) }

// qwen3MoEConfig parses Qwen3MoeConfig's own keys: the Qwen3 ones
// (attention_bias, head_dim default) and num_experts (transformers 5
// writes num_local_experts), num_experts_per_tok, moe_intermediate_size,
// norm_topk_prob (default false), decoder_sparse_step (default 1) and
// mlp_only_layers (default none).
func qwen3MoEConfig(c *Config, p *graph.Params) error {
	if err := qwen3Config(c, p); err != nil {
		return err
	}
	key := "num_experts"
	if !c.Has(key) && c.Has("num_local_experts") {
		key = "num_local_experts"
	}
	var err error
	if p.Experts, err = c.Size(key, 0, true); err != nil {
		return err
	}
	if p.ExpertsUsed, err = c.Size("num_experts_per_tok", 0, true); err != nil {
		return err
	}
	if p.ExpertsUsed > p.Experts {
		return c.Errf("num_experts_per_tok", "%d is more than the %d experts", p.ExpertsUsed, p.Experts)
	}
	if p.ExpertFFN, err = c.Size("moe_intermediate_size", 0, true); err != nil {
		return err
	}
	if p.NormTopK, err = c.Bool("norm_topk_prob", false); err != nil {
		return err
	}
	step, err := c.Size("decoder_sparse_step", 1, false)
	if err != nil {
		return err
	}
	only, err := c.Ints("mlp_only_layers")
	if err != nil {
		return err
	}
	p.DenseLayers = qwenDenseLayers(p.Layers, step, only)
	return nil
}

// qwenDenseLayers lists the layers with a dense FFN, as
// Qwen3MoeDecoderLayer decides: layer i is sparse iff it is not in
// mlpOnly and (i+1) % step == 0.
func qwenDenseLayers(layers, step int, mlpOnly []int) []int {
	var dense []int
	for i := 0; i < layers; i++ {
		if slices.Contains(mlpOnly, i) || (i+1)%step != 0 {
			dense = append(dense, i)
		}
	}
	return dense
}

func qwen3MoEWriteConfig(p *graph.Params, out map[string]any) {
	qwen3WriteConfig(p, out)
	delete(out, "num_local_experts")
	out["num_experts"] = p.Experts
	out["num_experts_per_tok"] = p.ExpertsUsed
	out["moe_intermediate_size"] = p.ExpertFFN
	out["norm_topk_prob"] = p.NormTopK
	if len(p.DenseLayers) == 0 {
		out["decoder_sparse_step"] = 1
		out["mlp_only_layers"] = []any{}
		return
	}
	if _, ok := out["decoder_sparse_step"]; !ok {
		out["decoder_sparse_step"] = 1
	}
	l := make([]any, len(p.DenseLayers))
	for i, d := range p.DenseLayers {
		l[i] = d
	}
	if step, ok := out["decoder_sparse_step"].(float64); ok && step != 1 {
		return // kept from the source config.json with its mlp_only_layers
	}
	out["mlp_only_layers"] = l
}

// qwen3MoEKV is Qwen2MoeModel.set_gguf_parameters' own keys:
// expert_feed_forward_length from moe_intermediate_size and
// expert_shared_feed_forward_length from shared_expert_intermediate_size.
// It refuses a model with dense layers, which llama.cpp's qwen3moe cannot
// load (every layer must have ffn_gate_inp and the expert tensors).
func qwen3MoEKV(b *KVBuilder, hp HParams, m *graph.Model) error {
	if len(m.Params.DenseLayers) > 0 {
		return fmt.Errorf("gguf: %s: layers %v have a dense FFN (mlp_only_layers / decoder_sparse_step), which llama.cpp's qwen3moe does not support (every layer must be sparse)", m.Path, m.Params.DenseLayers)
	}
	ffn, ok := hp.Int("moe_intermediate_size")
	if !ok && hp.Raw == nil && m.Params.ExpertFFN > 0 {
		ffn, ok = m.Params.ExpertFFN, true
	}
	if ok {
		b.AddArch("expert_feed_forward_length", uint32(ffn))
	}
	if v, ok := hp.Int("shared_expert_intermediate_size"); ok {
		b.AddArch("expert_shared_feed_forward_length", uint32(v))
	}
	return nil
}

// qwen3MoEMLXQuant is mlx_lm/models/qwen3_moe.py Model.quant_predicate:
// the router (a path ending "mlp.gate") is quantized with group size 64
// and 8 bits whatever the requested settings.
func qwen3MoEMLXQuant(canonName string, shape []int64, bits, group int) (int, int, bool) {
	if strings.HasSuffix(canonName, ".ffn_gate_inp.weight") {
		return 8, 64, true
	}
	return bits, group, true
}
