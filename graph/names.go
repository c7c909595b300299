package graph

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// This file is the one place that maps Hugging Face (and MLX, which keeps HF
// names) tensor names and architectures to the canonical GGUF scheme.

// hfArch maps HF config "architectures" entries to canonical arch names.
var hfArch = map[string]string{
	"LlamaForCausalLM":   "llama",
	"LLaMAForCausalLM":   "llama",
	"MistralForCausalLM": "llama",
	"LlamaModel":         "llama",
	"Qwen2ForCausalLM":   "qwen2",
	"Qwen2Model":         "qwen2",
}

// hfArchFor is the inverse used when writing HF/MLX config.json.
var hfArchFor = map[string]string{
	"llama": "LlamaForCausalLM",
	"qwen2": "Qwen2ForCausalLM",
}

// hfModelType is config.json's model_type for each canonical arch.
var hfModelType = map[string]string{"llama": "llama", "qwen2": "qwen2"}

// SupportedArchs lists the canonical architectures quantbridge converts.
func SupportedArchs() []string { return []string{"llama", "qwen2"} }

// ArchFromHF returns the canonical architecture for an HF architectures
// entry (or model_type), and whether it is supported.
func ArchFromHF(name string) (string, bool) {
	if a, ok := hfArch[name]; ok {
		return a, true
	}
	switch name { // model_type values
	case "llama", "mistral":
		return "llama", true
	case "qwen2":
		return "qwen2", true
	}
	return "", false
}

// HFArchitecture returns the HF architectures entry and model_type for a
// canonical arch.
func HFArchitecture(arch string) (architecture, modelType string, ok bool) {
	a, ok := hfArchFor[arch]
	return a, hfModelType[arch], ok
}

// UnsupportedArchError is returned for an architecture quantbridge cannot
// convert; it lists the supported ones.
type UnsupportedArchError struct{ Arch string }

func (e *UnsupportedArchError) Error() string {
	return fmt.Sprintf("unsupported architecture %q (supported: %s)", e.Arch, strings.Join(SupportedArchs(), ", "))
}

// layer-local name pairs: HF suffix after "model.layers.N." -> GGUF suffix after "blk.N."
var hfLayerNames = [][2]string{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.q_proj.bias", "attn_q.bias"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.k_proj.bias", "attn_k.bias"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.v_proj.bias", "attn_v.bias"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"self_attn.o_proj.bias", "attn_output.bias"},
	{"self_attn.q_norm.weight", "attn_q_norm.weight"},
	{"self_attn.k_norm.weight", "attn_k_norm.weight"},
	{"mlp.gate_proj.weight", "ffn_gate.weight"},
	{"mlp.up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

var hfGlobalNames = [][2]string{
	{"model.embed_tokens.weight", "token_embd.weight"},
	{"model.norm.weight", "output_norm.weight"},
	{"lm_head.weight", "output.weight"},
}

// CanonicalName maps an HF/MLX tensor name to the canonical GGUF name. MLX
// quantization companions (".scales", ".biases") map like ".weight" with the
// suffix kept. ok is false when the name has no mapping; the name is then
// returned unchanged.
func CanonicalName(hf string) (string, bool) {
	base, suffix := hf, ""
	for _, s := range []string{".scales", ".biases"} {
		if strings.HasSuffix(hf, s) {
			base, suffix = strings.TrimSuffix(hf, s)+".weight", s
		}
	}
	out, ok := canonical(base)
	if !ok {
		return hf, false
	}
	if suffix != "" {
		out = strings.TrimSuffix(out, ".weight") + suffix
	}
	return out, true
}

func canonical(hf string) (string, bool) {
	for _, p := range hfGlobalNames {
		if hf == p[0] {
			return p[1], true
		}
	}
	const pre = "model.layers."
	if rest, ok := strings.CutPrefix(hf, pre); ok {
		i := strings.IndexByte(rest, '.')
		if i <= 0 {
			return hf, false
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 {
			return hf, false
		}
		for _, p := range hfLayerNames {
			if rest[i+1:] == p[0] {
				return "blk." + rest[:i] + "." + p[1], true
			}
		}
	}
	return hf, false
}

// HFName maps a canonical GGUF name back to the HF/MLX name. ok is false
// when there is no mapping; the name is then returned unchanged.
func HFName(canon string) (string, bool) {
	for _, p := range hfGlobalNames {
		if canon == p[1] {
			return p[0], true
		}
	}
	if rest, ok := strings.CutPrefix(canon, "blk."); ok {
		i := strings.IndexByte(rest, '.')
		if i <= 0 {
			return canon, false
		}
		if _, err := strconv.Atoi(rest[:i]); err != nil {
			return canon, false
		}
		for _, p := range hfLayerNames {
			if rest[i+1:] == p[1] {
				return "model.layers." + rest[:i] + "." + p[0], true
			}
		}
	}
	return canon, false
}

// LayerIndex returns N for a "blk.N." canonical name, or -1.
func LayerIndex(canon string) int {
	rest, ok := strings.CutPrefix(canon, "blk.")
	if !ok {
		return -1
	}
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return -1
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil {
		return -1
	}
	return n
}

// SortLlamaCpp sorts tensors the way llama.cpp's model loader orders its
// weights map (weight_name_comparer): non-block tensors first (layer -1),
// then by layer number, then by name.
func SortLlamaCpp(ts []*Tensor) {
	sort.SliceStable(ts, func(i, j int) bool {
		li, lj := LayerIndex(ts[i].Name), LayerIndex(ts[j].Name)
		if li != lj {
			return li < lj
		}
		return ts[i].Name < ts[j].Name
	})
}
