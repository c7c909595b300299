package arch

import (
	"math"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/jsonnum"
)

// Gemma3 is Gemma 3's language model: Gemma3ForCausalLM (model_type
// gemma3_text) and the text part of Gemma3ForConditionalGeneration
// (config.json "text_config"; its vision tensors are skipped and the
// "language_model." name prefix removed, see SkipHFTensor and
// CanonicalName). References at llama.cpp 34af94cd: conversion/gemma.py
// Gemma3Model, src/models/gemma3.cpp, src/llama-hparams.cpp; mlx-lm
// mlx_lm/models/gemma3_text.py and gemma3.py.
//
//   - RMSNorm weights are stored as w and applied as (1+w) by transformers
//     and mlx-lm; the converter writes w+1 (Gemma3Model.modify_tensors adds
//     1.0 to every tensor whose HF name ends in "norm.weight", after
//     prepare_tensors has widened bf16 to float32, and writes them F32):
//     NormOffset.
//   - Four norms per layer: input_layernorm (attn_norm),
//     post_attention_layernorm (post_attention_norm, applied to the
//     attention output before the residual add), pre_feedforward_layernorm
//     (ffn_norm), post_feedforward_layernorm (post_ffw_norm); q/k RMSNorm
//     per head before rope.
//   - Embeddings scaled by √hidden_size, GELU (tanh approximation) gated
//     FFN, NEOX rope, tied embeddings by default.
//   - Sliding-window layers (window sliding_window; layer_types, else
//     every layer but each sliding_window_pattern-th) use rope base
//     rope_local_base_freq; the others rope_theta and rope scaling.
//   - Attention scale query_pre_attn_scalar^-½ in transformers and mlx-lm;
//     llama.cpp ignores that key and uses 1/√head_dim (1/√(hidden/heads)
//     for the 62-layer 27B), see gemma3FromGGUF.
var Gemma3 = &Arch{
	Name:             "gemma3",
	HFClasses:        []string{"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"},
	ModelTypes:       []string{"gemma3_text", "gemma3"},
	RopeType:         "neox",
	DefaultContext:   131072, // Gemma3TextConfig defaults
	DefaultRMSEps:    1e-6,
	DefaultRopeBase:  1_000_000,
	DefaultTied:      true,
	NormOffset:       1,
	SPMNoSpacePrefix: true,
	Globals: []NamePair{
		{"model.embed_tokens.weight", "token_embd.weight"},
		{"model.norm.weight", "output_norm.weight"},
		{"lm_head.weight", "output.weight"},
	},
	Layer: []NamePair{
		{"input_layernorm.weight", "attn_norm.weight"},
		{"self_attn.q_proj.weight", "attn_q.weight"},
		{"self_attn.k_proj.weight", "attn_k.weight"},
		{"self_attn.v_proj.weight", "attn_v.weight"},
		{"self_attn.o_proj.weight", "attn_output.weight"},
		{"self_attn.q_norm.weight", "attn_q_norm.weight"},
		{"self_attn.k_norm.weight", "attn_k_norm.weight"},
		{"post_attention_layernorm.weight", "post_attention_norm.weight"},
		{"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
		{"mlp.gate_proj.weight", "ffn_gate.weight"},
		{"mlp.up_proj.weight", "ffn_up.weight"},
		{"mlp.down_proj.weight", "ffn_down.weight"},
		{"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
	},
	Config:      gemma3Config,
	WriteConfig: gemma3WriteConfig,
	GGUFKV:      gemma3KV,
	FromGGUF:    gemma3FromGGUF,
	Features: Features{
		QKNorm:     true,
		Activation: "gelu_tanh",
		PostNorms:  true,
		EmbedScale: true,
	},
	Verified: "gemma3-tiny (sliding window 32 < ctx, 5 sliding + 1 global layer, (1+w) norms, q/k norms, GELU-tanh, tied; also the Gemma3ForConditionalGeneration form): HF → GGUF BF16 byte-identical to convert_hf_to_gguf.py; 8 llama-quantize types byte-identical; MLX and HF round trips exact; ppl = transformers fp32 (2e-9) and llama-perplexity (every printed figure: bf16 and 8 quantized types at -b 128, bf16 at the default batch); token ids = HF and llama-tokenize",
}

func init() { Register(Gemma3) }

// Gemma3TextConfig defaults (transformers configuration_gemma3.py) for
// keys a config.json may leave out.
const (
	gemma3DefaultHeadDim     = 256
	gemma3DefaultWindow      = 4096
	gemma3DefaultPattern     = 6
	gemma3DefaultLocalBase   = 10000
	gemma3DefaultQueryScalar = 256
)

// gemma3LocalThetaKeys are TextModel's find_hparam keys for the
// sliding-layer rope base.
var gemma3LocalThetaKeys = []string{"local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"}

func gemma3Config(c *Config, p *graph.Params) error {
	p.QKNorm = true
	if !c.Has("head_dim") {
		p.HeadDim, p.RopeDims = gemma3DefaultHeadDim, gemma3DefaultHeadDim
	}
	act, err := c.String("hidden_activation", "")
	if err != nil {
		return err
	}
	key := "hidden_activation"
	if act == "" {
		key = "hidden_act"
		if act, err = c.String("hidden_act", "gelu_pytorch_tanh"); err != nil {
			return err
		}
	}
	switch act {
	case "gelu_pytorch_tanh", "gelu_new", "gelu_tanh":
		p.Activation = "gelu_tanh"
	default:
		// llama.cpp's gemma3 graph always uses the tanh approximation.
		return c.Errf(key, "activation %q is not supported (gelu_pytorch_tanh)", act)
	}
	if c.Has("attn_logit_softcapping") {
		return c.Errf("attn_logit_softcapping", "is set; Gemma 3 has no attention logit soft-capping (the converter refuses it)")
	}
	if p.FinalLogitSoftcap, err = c.Float("final_logit_softcapping", 0); err != nil {
		return err
	}
	qs, err := c.Float("query_pre_attn_scalar", gemma3DefaultQueryScalar)
	if err != nil {
		return err
	}
	if !(qs > 0) || math.IsInf(qs, 0) {
		return c.Errf("query_pre_attn_scalar", "must be a positive number, got %v", qs)
	}
	p.AttnScale = 1 / math.Sqrt(qs)

	// Sliding-window layers.
	if p.SlidingWindow, err = c.Size("sliding_window", gemma3DefaultWindow, false); err != nil {
		return err
	}
	types, err := c.Strings("layer_types")
	if err != nil {
		return err
	}
	p.SlidingLayers = make([]bool, p.Layers)
	switch {
	case types != nil:
		if len(types) != p.Layers {
			return c.Errf("layer_types", "has %d entries for %d layers", len(types), p.Layers)
		}
		for i, t := range types {
			switch t {
			case "sliding_attention":
				p.SlidingLayers[i] = true
			case "full_attention":
			default:
				return c.Errf("layer_types", "entry %d is %q (sliding_attention or full_attention)", i, t)
			}
		}
	default:
		pat, err := c.Size("sliding_window_pattern", gemma3DefaultPattern, false)
		if err != nil {
			return err
		}
		for i := range p.SlidingLayers {
			p.SlidingLayers[i] = (i+1)%pat != 0
		}
	}

	// Rope base of the sliding layers: rope_parameters.sliding_attention
	// (transformers 5), else rope_local_base_freq and its aliases.
	p.RopeBaseSWA = math.NaN()
	if rp, ok := c.M["rope_parameters"].(map[string]any); ok {
		if sa, ok := rp["sliding_attention"].(map[string]any); ok {
			if p.RopeBaseSWA, err = c.FloatIn(sa, "rope_theta", math.NaN()); err != nil {
				return err
			}
			if typ, _ := sa["rope_type"].(string); typ != "" && typ != "default" {
				return c.Errf("rope_parameters", "sliding_attention rope_type %q is not supported (default)", typ)
			}
		}
	}
	for _, k := range gemma3LocalThetaKeys {
		if !math.IsNaN(p.RopeBaseSWA) {
			break
		}
		if p.RopeBaseSWA, err = c.Float(k, math.NaN()); err != nil {
			return err
		}
	}
	if math.IsNaN(p.RopeBaseSWA) {
		p.RopeBaseSWA = gemma3DefaultLocalBase
	}
	if !(p.RopeBaseSWA > 0) || math.IsInf(p.RopeBaseSWA, 0) {
		return c.Errf("rope_local_base_freq", "must be a positive number, got %v", p.RopeBaseSWA)
	}
	return nil
}

// gemma3WriteConfig writes a Gemma3ForCausalLM config.json (a
// Gemma3ForConditionalGeneration source's text_config is flattened: the
// output holds the language model only).
func gemma3WriteConfig(p *graph.Params, out map[string]any) {
	if tc, ok := out["text_config"].(map[string]any); ok {
		for k, v := range tc {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	}
	for _, k := range []string{"text_config", "vision_config", "mm_tokens_per_image", "boi_token_index", "eoi_token_index", "image_token_index", "initializer_range_vision"} {
		delete(out, k)
	}
	hd := p.HeadDim
	if hd == 0 && p.Heads > 0 {
		hd = p.Embedding / p.Heads
	}
	out["head_dim"] = hd
	out["hidden_activation"] = "gelu_pytorch_tanh"
	out["hidden_act"] = "gelu_pytorch_tanh"
	out["attention_bias"] = false
	out["attn_logit_softcapping"] = nil
	if p.FinalLogitSoftcap != 0 {
		out["final_logit_softcapping"] = p.FinalLogitSoftcap
	} else {
		out["final_logit_softcapping"] = nil
	}
	if p.AttnScale > 0 {
		qs := 1 / (p.AttnScale * p.AttnScale)
		if r := math.Round(qs); math.Abs(qs-r) < 1e-3*r {
			qs = r
		}
		out["query_pre_attn_scalar"] = qs
	}
	if p.SlidingWindow > 0 {
		out["sliding_window"] = p.SlidingWindow
	}
	if len(p.SlidingLayers) > 0 {
		types := make([]any, len(p.SlidingLayers))
		for i, s := range p.SlidingLayers {
			types[i] = "full_attention"
			if s {
				types[i] = "sliding_attention"
			}
		}
		out["layer_types"] = types
		if pat := slidingPattern(p.SlidingLayers); pat > 0 {
			out["sliding_window_pattern"] = pat // mlx-lm reads this key
		} else {
			delete(out, "sliding_window_pattern")
		}
	}
	swa := p.RopeBaseSWA
	if swa == 0 {
		swa = gemma3DefaultLocalBase
	}
	if rp, ok := out["rope_parameters"].(map[string]any); ok {
		full := map[string]any{}
		for k, v := range rp {
			if k != "full_attention" && k != "sliding_attention" {
				full[k] = v
			}
		}
		out["rope_parameters"] = map[string]any{
			"full_attention":    full,
			"sliding_attention": map[string]any{"rope_type": "default", "rope_theta": swa},
		}
		delete(out, "rope_local_base_freq")
	} else {
		out["rope_local_base_freq"] = swa
	}
}

// slidingPattern returns n when layer i is sliding exactly when (i+1)%n
// != 0 (transformers' sliding_window_pattern, llama.cpp's swa period),
// else 0.
func slidingPattern(s []bool) int {
	for n := 1; n <= len(s)+1; n++ {
		ok := true
		for i, v := range s {
			if v != ((i+1)%n != 0) {
				ok = false
				break
			}
		}
		if ok {
			return n
		}
	}
	return 0
}

// gemma3KV is Gemma3Model.set_gguf_parameters' own keys, after
// TextModel's: several re-set (in place) with the Gemma3TextConfig
// defaults, the final logit soft-cap when set, the sliding window unless
// sliding_window_pattern is 1.
func gemma3KV(b *KVBuilder, hp HParams, m *graph.Model) error {
	p := m.Params
	intOr := func(def int, key string) int {
		if hp.Raw == nil {
			return def
		}
		if v, ok := hp.Int(key); ok {
			return v
		}
		return def
	}
	floatOr := func(def float64, key string) float64 {
		if hp.Raw == nil {
			return def
		}
		if v, ok := hp.Float(key); ok {
			return v
		}
		return def
	}
	ctxDef, headsDef, kvDef, hdDef, epsDef := 131072, 8, 4, gemma3DefaultHeadDim, 1e-6
	if hp.Raw == nil {
		ctxDef, headsDef, kvDef, hdDef, epsDef = p.ContextLength, p.Heads, p.KVHeads, p.HeadDim, p.RMSEps
	}
	b.AddArch("context_length", uint32(intOr(ctxDef, "max_position_embeddings")))
	b.AddArch("attention.head_count", uint32(intOr(headsDef, "num_attention_heads")))
	b.AddArch("attention.layer_norm_rms_epsilon", float32(floatOr(epsDef, "rms_norm_eps")))
	hd := intOr(hdDef, "head_dim")
	b.AddArch("attention.key_length", uint32(hd))
	b.AddArch("attention.value_length", uint32(hd))
	theta := p.RopeBase
	if hp.Raw != nil {
		theta = 1_000_000
		if v, ok := jsonnum.Float(hp.Rope()["rope_theta"]); ok {
			theta = v
		}
	}
	b.AddArch("rope.freq_base", float32(theta))
	if sc := floatOr(p.FinalLogitSoftcap, "final_logit_softcapping"); sc != 0 {
		b.AddArch("final_logit_softcapping", float32(sc))
	}
	pattern, hasPattern := 0, false
	if hp.Raw != nil {
		pattern, hasPattern = hp.Int("sliding_window_pattern")
	}
	if !hasPattern || pattern != 1 {
		w := p.SlidingWindow
		if hp.Raw != nil {
			v, ok := hp.Int("sliding_window")
			if !ok {
				v = gemma3DefaultWindow
			}
			w = v
		}
		if w > 0 {
			b.AddArch("attention.sliding_window", uint32(w))
		}
	}
	b.AddArch("attention.head_count_kv", uint32(intOr(kvDef, "num_key_value_heads")))
	return nil
}

// gemma3FromGGUF reads what llama.cpp's gemma3 loader reads
// (llama_model_gemma3::load_arch_hparams): the sliding window and, when
// it is positive, the swa period (sliding_window_pattern, a number or a
// per-layer array; default 6: layer il slides when il % period <
// period-1) and the sliding layers' rope base (rope.freq_base_swa,
// default 10000); the final logit soft-cap; and its attention scale,
// 1/√head_dim, or 1/√(hidden/heads) for the 62-layer 27B model, computed
// in float32 as llama.cpp does (query_pre_attn_scalar is not in the file).
func gemma3FromGGUF(get KVGetter, p *graph.Params) error {
	p.QKNorm = true
	p.Activation = "gelu_tanh"
	num := func(key string) (float64, bool) {
		v, ok := get(key)
		if !ok {
			return 0, false
		}
		return GGUFNumber(v)
	}
	if w, ok := num("attention.sliding_window"); ok && w > 0 {
		p.SlidingWindow = int(w)
		p.SlidingLayers = make([]bool, p.Layers)
		period := gemma3DefaultPattern
		if v, ok := get("attention.sliding_window_pattern"); ok {
			switch x := v.(type) {
			case []bool:
				for i := range p.SlidingLayers {
					if i < len(x) {
						p.SlidingLayers[i] = x[i]
					}
				}
				period = -1
			default:
				if f, ok := GGUFNumber(v); ok {
					period = int(f)
				}
			}
		}
		if period >= 0 {
			for i := range p.SlidingLayers {
				p.SlidingLayers[i] = period == 0 || i%period < period-1
			}
		}
		p.RopeBaseSWA = gemma3DefaultLocalBase
		if v, ok := num("rope.freq_base_swa"); ok {
			p.RopeBaseSWA = v
		}
	}
	if v, ok := num("final_logit_softcapping"); ok {
		p.FinalLogitSoftcap = v
	}
	d := float32(p.HeadDim)
	if p.Layers == 62 && p.Heads > 0 {
		d = float32(p.Embedding / p.Heads)
	}
	if d > 0 {
		p.AttnScale = float64(1 / float32(math.Sqrt(float64(d))))
	}
	return nil
}
