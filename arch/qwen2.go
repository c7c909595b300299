package arch

import "github.com/quantbridge/quantbridge/graph"

// Qwen2 is Qwen2ForCausalLM (convert_hf_to_gguf.py Qwen2Model; llama.cpp
// src/models/qwen2.cpp): the llama layout with q/k/v biases and NEOX rope
// (no permutation).
var Qwen2 = &Arch{
	Name:            "qwen2",
	HFClasses:       []string{"Qwen2ForCausalLM", "Qwen2Model"},
	ModelTypes:      []string{"qwen2"},
	RopeType:        "neox",
	DefaultContext:  32768,
	DefaultRMSEps:   1e-6,
	DefaultRopeBase: 10000,
	Globals:         commonGlobals,
	Layer:           commonLayer,
	Config: func(c *Config, p *graph.Params) error {
		p.AttnBias = true
		return nil
	},
	Verified: "HF → GGUF byte-identical to convert_hf_to_gguf.py (tied, biases, padded vocabulary, sharded); 5 llama-quantize types byte-identical; ppl = transformers fp32 and llama-perplexity (≤ 1.2e-4)",
}

func init() { Register(Qwen2) }
