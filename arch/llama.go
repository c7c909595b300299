package arch

import (
	"fmt"

	"github.com/quantbridge/quantbridge/graph"
)

// Llama is LlamaForCausalLM and MistralForCausalLM (convert_hf_to_gguf.py
// LlamaModel; llama.cpp src/models/llama.cpp): RMSNorm, rotate-half rope
// stored NORM in GGUF (Q/K rows permuted), GQA, SwiGLU, optional
// attention biases, llama3 rope scaling written as rope_freqs.weight.
var Llama = &Arch{
	Name:             "llama",
	HFClasses:        []string{"LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM", "LlamaModel"},
	ModelTypes:       []string{"llama", "mistral"},
	RopeType:         "norm",
	PermuteQK:        true,
	SPMSpacePrefixKV: true,
	Llama3RopeFreqs:  true,
	DefaultContext:   2048,
	DefaultRMSEps:    1e-6,
	DefaultRopeBase:  10000,
	Globals:          commonGlobals,
	Layer:            commonLayer,
	Config: func(c *Config, p *graph.Params) error {
		var err error
		p.AttnBias, err = c.Bool("attention_bias", false)
		return err
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
	},
	GGUFKV:   llamaKV,
	Verified: "HF → GGUF byte-identical to convert_hf_to_gguf.py (kjv-llama, llama3 BPE with rope scaling); 12 llama-quantize types byte-identical; MLX affine bit-identical to mlx; ppl = transformers fp32 and llama-perplexity (≤ 0.08%)",
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
