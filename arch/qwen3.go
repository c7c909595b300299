package arch

import "github.com/quantbridge/quantbridge/graph"

// qkNormLayer are the per-head q/k RMSNorm weights of Qwen3-style
// attention (convert_hf_to_gguf.py's tensor map: self_attn.q_norm →
// attn_q_norm, self_attn.k_norm → attn_k_norm).
var qkNormLayer = []NamePair{
	{"self_attn.q_norm.weight", "attn_q_norm.weight"},
	{"self_attn.k_norm.weight", "attn_k_norm.weight"},
}

// Qwen3 is Qwen3ForCausalLM (convert_hf_to_gguf.py Qwen3Model, a
// Qwen2Model without its own GGUF keys; llama.cpp src/models/qwen3.cpp;
// mlx-lm mlx_lm/models/qwen3.py): the llama layout with an RMSNorm of
// every q and k head before NEOX rope, an explicit head_dim that may
// differ from hidden_size/num_attention_heads, and no biases unless
// attention_bias says so.
var Qwen3 = &Arch{
	Name:            "qwen3",
	HFClasses:       []string{"Qwen3ForCausalLM", "Qwen3Model"},
	ModelTypes:      []string{"qwen3"},
	RopeType:        "neox",
	DefaultContext:  32768, // transformers Qwen3Config
	DefaultRMSEps:   1e-6,
	DefaultRopeBase: 10000,
	DefaultTied:     false,
	Globals:         commonGlobals,
	Layer:           with(commonLayer, qkNormLayer...),
	Config:          qwen3Config,
	WriteConfig:     qwen3WriteConfig,
	FromGGUF: func(get KVGetter, p *graph.Params) error {
		p.QKNorm = true // llama.cpp's qwen3 loads attn_{q,k}_norm unconditionally
		return nil
	},
	Features: Features{QKNorm: true},
	Verified: "qwen3-tiny (q/k norm, head_dim 48 ≠ hidden/heads, tied): HF → GGUF BF16 byte-identical to convert_hf_to_gguf.py; 8 llama-quantize types byte-identical; MLX and HF round trips exact; ppl = transformers fp32 (4e-8) and llama-perplexity (≤ 1e-6: llama.cpp's CPU arithmetic emulated bit for bit); token ids = HF",
}

func init() { Register(Qwen3) }

// qwen3HeadDim is transformers' Qwen3Config/Qwen3MoeConfig head_dim
// default. convert_hf_to_gguf.py writes attention.key_length only when
// config.json names head_dim, so a config without it is read as
// transformers reads it (published Qwen3 configs all name it).
const qwen3HeadDim = 128

// qwen3Config parses what Qwen3Config adds to the common keys:
// attention_bias (default false) and head_dim's default; q/k norms are
// always present.
func qwen3Config(c *Config, p *graph.Params) error {
	var err error
	if p.AttnBias, err = c.Bool("attention_bias", false); err != nil {
		return err
	}
	if !c.Has("head_dim") {
		if p.RopeDims == p.HeadDim {
			p.RopeDims = qwen3HeadDim
		}
		p.HeadDim = qwen3HeadDim
	}
	p.QKNorm = true
	return nil
}

// qwen3WriteConfig writes head_dim (which Qwen3Config would otherwise
// default to 128) and attention_bias.
func qwen3WriteConfig(p *graph.Params, out map[string]any) {
	hd := p.HeadDim
	if hd == 0 && p.Heads > 0 {
		hd = p.Embedding / p.Heads
	}
	out["head_dim"] = hd
	out["attention_bias"] = p.AttnBias
}
