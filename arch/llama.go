package arch

import (
	"fmt"

	"github.com/quantbridge/quantbridge/graph"
)

// Llama is LlamaForCausalLM, MistralForCausalLM and MixtralForCausalLM
// (convert_hf_to_gguf.py LlamaModel; llama.cpp src/models/llama.cpp):
// RMSNorm, rotate-half rope stored NORM in GGUF (Q/K rows permuted), GQA,
// SwiGLU, optional attention biases, llama3 rope scaling written as
// rope_freqs.weight.
//
// Mixtral is the same architecture with a routed-expert FFN in every
// layer: the router block_sparse_moe.gate (GGUF ffn_gate_inp) and
// per-expert w1/w2/w3 (gate/down/up) stacked into ffn_{gate,down,up}_exps
// (LlamaModel.modify_tensors; mlx-lm mlx_lm/models/mixtral.py sanitize
// stacks them as block_sparse_moe.switch_mlp.{gate,down,up}_proj). The
// router's softmax over the top-k logits equals llama.cpp's softmax over
// all logits renormalised over the top k (NormTopK). A config with
// num_local_experts selects it; a model with experts is written back as
// MixtralForCausalLM.
var Llama = &Arch{
	Name:             "llama",
	HFClasses:        []string{"LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM", "LlamaModel", "MixtralForCausalLM"},
	ModelTypes:       []string{"llama", "mistral", "mixtral"},
	ExpertsHFClass:   "MixtralForCausalLM",
	ExpertsModelType: "mixtral",
	RopeType:         "norm",
	PermuteQK:        true,
	LlamaVocab:       true,
	SPMSpacePrefixKV: true,
	Llama3RopeFreqs:  true,
	DefaultContext:   2048,
	DefaultRMSEps:    1e-6,
	DefaultRopeBase:  10000,
	Globals:          commonGlobals,
	Layer:            with(commonLayer, NamePair{"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"}),
	Experts: []NamePair{
		{"block_sparse_moe.experts.{e}.w1.weight", "ffn_gate_exps.weight"},
		{"block_sparse_moe.experts.{e}.w2.weight", "ffn_down_exps.weight"},
		{"block_sparse_moe.experts.{e}.w3.weight", "ffn_up_exps.weight"},
	},
	MLXLayer: []NamePair{
		{"block_sparse_moe.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight"},
		{"block_sparse_moe.switch_mlp.down_proj.weight", "ffn_down_exps.weight"},
		{"block_sparse_moe.switch_mlp.up_proj.weight", "ffn_up_exps.weight"},
	},
	Config: func(c *Config, p *graph.Params) error {
		var err error
		if p.AttnBias, err = c.Bool("attention_bias", false); err != nil {
			return err
		}
		return mixtralConfig(c, p)
	},
	FromGGUF: func(get KVGetter, p *graph.Params) error {
		if p.Experts > 0 {
			p.NormTopK = true // build_moe_ffn(..., norm_w = true, ...)
			if p.ExpertFFN == 0 {
				p.ExpertFFN = p.FFN
			}
		}
		return nil
	},
	WriteConfig: func(p *graph.Params, out map[string]any) {
		hd := p.HeadDim
		if hd == 0 && p.Heads > 0 {
			hd = p.Embedding / p.Heads
		}
		out["head_dim"] = hd
		out["attention_bias"] = p.AttnBias
		if _, ok := out["mlp_bias"]; !ok {
			out["mlp_bias"] = false
		}
		if p.Experts > 0 {
			// MixtralConfig: intermediate_size is the expert width
			delete(out, "mlp_bias")
			out["num_local_experts"] = p.Experts
			out["num_experts_per_tok"] = p.ExpertsUsed
			if p.ExpertFFN > 0 {
				out["intermediate_size"] = p.ExpertFFN
			}
		}
	},
	GGUFKV:   llamaKV,
	Verified: "HF → GGUF byte-identical to convert_hf_to_gguf.py (kjv-llama, llama3 BPE with rope scaling); 12 llama-quantize types byte-identical; MLX affine bit-identical to mlx; ppl = transformers fp32 and llama-perplexity (all 13 kjv types ≤ 1.5e-6). Mixtral (mixtral-tiny, 8 experts top 2): HF → GGUF BF16 byte-identical, 8 llama-quantize types byte-identical, round trips exact, ppl = transformers fp32 (2e-8) and llama-perplexity (≤ 5.7e-6)",
}

func init() { Register(Llama) }

// llamaKV is LlamaModel.set_gguf_parameters' own keys: vocab_size and
// rope.dimension_count.
func llamaKV(b *KVBuilder, hp HParams, m *graph.Model) error {
	vocab, ok := hp.Int("vocab_size")
	if !ok {
		vocab = m.Params.VocabSize
		if vocab == 0 && m.Tokenizer != nil {
			vocab = len(m.Tokenizer.Tokens)
		}
	}
	b.AddArch("vocab_size", uint32(vocab))
	rd := b.HeadDim
	if !b.HasHeadDim {
		if !b.HasHead || b.NHead == 0 {
			return fmt.Errorf("gguf: %s: model has no attention head count", m.Path)
		}
		rd = b.NEmbd / b.NHead
	}
	b.AddArch("rope.dimension_count", uint32(rd))
	return nil
}

// mixtralConfig reads MixtralConfig's expert keys when config.json has
// num_local_experts: every layer is sparse, num_experts_per_tok
// (required) experts of width intermediate_size are chosen per token, and
// their weights are a softmax over the chosen logits (NormTopK).
func mixtralConfig(c *Config, p *graph.Params) error {
	if !c.Has("num_local_experts") {
		return nil
	}
	var err error
	if p.Experts, err = c.Size("num_local_experts", 0, true); err != nil {
		return err
	}
	if p.ExpertsUsed, err = c.Size("num_experts_per_tok", 0, true); err != nil {
		return err
	}
	if p.ExpertsUsed > p.Experts {
		return c.Errf("num_experts_per_tok", "%d is more than the %d experts", p.ExpertsUsed, p.Experts)
	}
	p.ExpertFFN = p.FFN
	p.NormTopK = true
	return nil
}
