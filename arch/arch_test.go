package arch

import (
	"errors"
	"strings"
	"testing"
)

func TestNameMapping(t *testing.T) {
	tests := []struct{ hf, canon string }{
		{"model.embed_tokens.weight", "token_embd.weight"},
		{"model.norm.weight", "output_norm.weight"},
		{"lm_head.weight", "output.weight"},
		{"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
		{"model.layers.11.self_attn.k_proj.bias", "blk.11.attn_k.bias"},
		{"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
		{"model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"},
		{"model.layers.7.self_attn.o_proj.weight", "blk.7.attn_output.weight"},
	}
	for _, a := range []*Arch{Llama, Qwen2} {
		for _, tc := range tests {
			got, e, ok := a.CanonicalName(tc.hf, false)
			if !ok || got != tc.canon || e != -1 {
				t.Errorf("%s: CanonicalName(%q) = %q, %d, %v; want %q", a.Name, tc.hf, got, e, ok, tc.canon)
			}
			back, ok := a.HFName(tc.canon, false)
			if !ok || back != tc.hf {
				t.Errorf("%s: HFName(%q) = %q, %v; want %q", a.Name, tc.canon, back, ok, tc.hf)
			}
		}
	}
	// MLX quantization companions keep their suffix.
	if got, _, _ := Llama.CanonicalName("model.layers.2.mlp.up_proj.scales", true); got != "blk.2.ffn_up.scales" {
		t.Errorf("scales: %q", got)
	}
	if got, _, _ := Llama.CanonicalName("model.embed_tokens.biases", true); got != "token_embd.biases" {
		t.Errorf("biases: %q", got)
	}
	// Unmapped names pass through unchanged.
	for _, n := range []string{"model.layers.x.self_attn.q_proj.weight", "model.layers.0.self_attn.rotary_emb.inv_freq", "foo"} {
		if got, _, ok := Llama.CanonicalName(n, false); ok || got != n {
			t.Errorf("CanonicalName(%q) = %q, %v; want unchanged", n, got, ok)
		}
	}
}

// An architecture with per-expert HF tensors maps each expert to the
// stacked GGUF tensor and back; MLX names come from MLXLayer.
func TestExpertNames(t *testing.T) {
	a := &Arch{
		Name:     "test-moe",
		Layer:    commonLayer,
		Experts:  []NamePair{{"mlp.experts.{e}.gate_proj.weight", "ffn_gate_exps.weight"}},
		MLXLayer: []NamePair{{"mlp.switch_mlp.gate_proj.weight", "ffn_gate_exps.weight"}},
	}
	for _, tc := range []struct {
		hf     string
		canon  string
		expert int
		ok     bool
	}{
		{"model.layers.3.mlp.experts.7.gate_proj.weight", "blk.3.ffn_gate_exps.weight", 7, true},
		{"model.layers.0.mlp.experts.0.gate_proj.weight", "blk.0.ffn_gate_exps.weight", 0, true},
		{"model.layers.0.mlp.experts.07.gate_proj.weight", "model.layers.0.mlp.experts.07.gate_proj.weight", -1, false},
		{"model.layers.0.mlp.experts.x.gate_proj.weight", "model.layers.0.mlp.experts.x.gate_proj.weight", -1, false},
		{"model.layers.0.mlp.experts..gate_proj.weight", "model.layers.0.mlp.experts..gate_proj.weight", -1, false},
	} {
		got, e, ok := a.CanonicalName(tc.hf, false)
		if got != tc.canon || e != tc.expert || ok != tc.ok {
			t.Errorf("CanonicalName(%q) = %q, %d, %v; want %q, %d, %v", tc.hf, got, e, ok, tc.canon, tc.expert, tc.ok)
		}
	}
	if n, ok := a.HFExpertName("blk.3.ffn_gate_exps.weight", 5); !ok || n != "model.layers.3.mlp.experts.5.gate_proj.weight" {
		t.Errorf("HFExpertName = %q, %v", n, ok)
	}
	if n, _, ok := a.CanonicalName("model.layers.2.mlp.switch_mlp.gate_proj.scales", true); !ok || n != "blk.2.ffn_gate_exps.scales" {
		t.Errorf("MLX CanonicalName = %q, %v", n, ok)
	}
	if n, ok := a.HFName("blk.2.ffn_gate_exps.weight", true); !ok || n != "model.layers.2.mlp.switch_mlp.gate_proj.weight" {
		t.Errorf("MLX HFName = %q, %v", n, ok)
	}
}

func TestRegistry(t *testing.T) {
	for _, tc := range []struct{ hf, arch string }{
		{"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "llama"}, {"mistral", "llama"},
		{"Qwen2ForCausalLM", "qwen2"}, {"qwen2", "qwen2"},
	} {
		a, ok := FromHF(tc.hf)
		if !ok || a.Name != tc.arch {
			t.Errorf("FromHF(%q) = %v, %v; want %s", tc.hf, a, ok, tc.arch)
		}
	}
	if _, ok := FromHF("FalconForCausalLM"); ok {
		t.Error("FromHF(FalconForCausalLM) ok")
	}
	err := error(&UnsupportedError{Arch: "FalconForCausalLM"})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "llama") || !strings.Contains(err.Error(), "Qwen2ForCausalLM") {
		t.Errorf("UnsupportedError = %v", err)
	}
	for _, a := range All() {
		if a.RopeType != "norm" && a.RopeType != "neox" {
			t.Errorf("%s: rope type %q", a.Name, a.RopeType)
		}
		if len(a.HFClasses) == 0 || len(a.ModelTypes) == 0 {
			t.Errorf("%s: no HF class or model_type", a.Name)
		}
	}
}
