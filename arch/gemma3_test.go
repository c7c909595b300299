package arch_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
)

// gemma3Classic is the published form of a Gemma 3 text config.json
// (rope_theta + rope_local_base_freq, sliding_window_pattern).
const gemma3Classic = `{"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 128,
 "intermediate_size": 352, "num_hidden_layers": 7, "num_attention_heads": 4, "num_key_value_heads": 2,
 "head_dim": 64, "query_pre_attn_scalar": 48, "sliding_window": 32, "sliding_window_pattern": 3,
 "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
 "rms_norm_eps": 1e-06, "vocab_size": 1024, "hidden_activation": "gelu_pytorch_tanh",
 "final_logit_softcapping": null, "attn_logit_softcapping": null}`

// gemma3V5 is what transformers 5 writes: rope_parameters per layer type
// and layer_types (here not periodic), inside a
// Gemma3ForConditionalGeneration's text_config.
const gemma3V5 = `{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
 "vision_config": {"hidden_size": 32}, "mm_tokens_per_image": 4,
 "text_config": {"model_type": "gemma3_text", "hidden_size": 128, "intermediate_size": 352,
 "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 1024,
 "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
 "sliding_window": 512, "final_logit_softcapping": 30.0,
 "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 500000.0},
                     "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}}}`

func TestGemma3Config(t *testing.T) {
	name, p, _, err := hf.ParseConfig([]byte(gemma3Classic))
	if err != nil {
		t.Fatal(err)
	}
	if name != "gemma3" || p.HeadDim != 64 || p.RopeDims != 64 || !p.QKNorm || p.Activation != "gelu_tanh" ||
		p.SlidingWindow != 32 || p.RopeBase != 1e6 || p.RopeBaseSWA != 10000 || p.AttnScale != 1/math.Sqrt(48) ||
		!p.Tied || p.FinalLogitSoftcap != 0 || p.ContextLength != 131072 || p.RopeScaling == nil || p.RopeScaling.Factor != 8 {
		t.Errorf("classic: %s %+v", name, p)
	}
	// pattern 3: layers 2 and 5 global.
	if want := []bool{true, true, false, true, true, false, true}; !slices.Equal(p.SlidingLayers, want) {
		t.Errorf("classic sliding layers %v, want %v", p.SlidingLayers, want)
	}

	name, p, _, err = hf.ParseConfig([]byte(gemma3V5))
	if err != nil {
		t.Fatal(err)
	}
	// head_dim absent: Gemma3TextConfig's 256, not hidden/heads.
	if name != "gemma3" || p.HeadDim != 256 || p.RopeDims != 256 || p.KVHeads != 1 || p.SlidingWindow != 512 ||
		p.RopeBase != 500000 || p.RopeBaseSWA != 20000 || p.AttnScale != 1.0/16 || p.FinalLogitSoftcap != 30 || p.RopeScaling != nil {
		t.Errorf("transformers 5 form: %s %+v", name, p)
	}
	if want := []bool{true, false, true, false}; !slices.Equal(p.SlidingLayers, want) {
		t.Errorf("layer_types: %v, want %v", p.SlidingLayers, want)
	}
}

func TestGemma3ConfigErrors(t *testing.T) {
	for _, tc := range []struct{ edit, key string }{
		{`"attn_logit_softcapping": 50.0`, "attn_logit_softcapping"},
		{`"hidden_activation": "gelu"`, "hidden_activation"},
		{`"layer_types": ["full_attention"]`, "layer_types"},
		{`"layer_types": ["a", "b", "c", "d", "e", "f", "g"]`, "layer_types"},
		{`"query_pre_attn_scalar": 0`, "query_pre_attn_scalar"},
		{`"sliding_window": -1`, "sliding_window"},
		{`"rope_local_base_freq": "x"`, "rope_local_base_freq"},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(gemma3Classic), &m); err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte("{"+tc.edit+"}"), &e); err != nil {
			t.Fatal(err)
		}
		for k, v := range e {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		_, _, _, err := hf.ParseConfig(b)
		var ce *arch.ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: error %v, want a config.json error about %q", tc.edit, err, tc.key)
		}
	}
}

func TestGemma3Names(t *testing.T) {
	for _, tc := range []struct{ hf, canon string }{
		{"model.embed_tokens.weight", "token_embd.weight"},
		{"model.layers.3.input_layernorm.weight", "blk.3.attn_norm.weight"},
		{"model.layers.3.post_attention_layernorm.weight", "blk.3.post_attention_norm.weight"},
		{"model.layers.3.pre_feedforward_layernorm.weight", "blk.3.ffn_norm.weight"},
		{"model.layers.3.post_feedforward_layernorm.weight", "blk.3.post_ffw_norm.weight"},
		{"model.layers.0.self_attn.q_norm.weight", "blk.0.attn_q_norm.weight"},
		{"model.layers.0.self_attn.k_norm.weight", "blk.0.attn_k_norm.weight"},
		{"model.norm.weight", "output_norm.weight"},
	} {
		got, _, ok := arch.Gemma3.CanonicalName(tc.hf, false)
		if !ok || got != tc.canon {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", tc.hf, got, ok, tc.canon)
		}
		if back, ok := arch.Gemma3.HFName(tc.canon, false); !ok || back != tc.hf {
			t.Errorf("HFName(%q) = %q, %v", tc.canon, back, ok)
		}
	}
	// Gemma3ForConditionalGeneration: both transformers layouts.
	for _, n := range []string{"language_model.model.layers.2.mlp.up_proj.weight", "model.language_model.layers.2.mlp.up_proj.weight"} {
		if got, _, ok := arch.Gemma3.CanonicalName(n, false); !ok || got != "blk.2.ffn_up.weight" {
			t.Errorf("CanonicalName(%q) = %q, %v", n, got, ok)
		}
	}
	for n, skip := range map[string]bool{
		"model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight": true,
		"vision_tower.vision_model.post_layernorm.weight":                 true,
		"model.multi_modal_projector.mm_input_projection_weight":          true,
		"multi_modal_projector.mm_soft_emb_norm.weight":                   true,
		"model.language_model.layers.0.mlp.gate_proj.weight":              false,
		"language_model.model.embed_tokens.weight":                        false,
	} {
		if arch.SkipHFTensor(n) != skip {
			t.Errorf("SkipHFTensor(%q) = %v", n, !skip)
		}
	}
	for n, want := range map[string]float32{"blk.0.attn_norm.weight": 1, "blk.0.attn_k_norm.weight": 1, "blk.1.post_ffw_norm.weight": 1,
		"output_norm.weight": 1, "blk.0.attn_q.weight": 0, "token_embd.weight": 0} {
		if got := arch.Gemma3.NormOffsetOf(n); got != want {
			t.Errorf("NormOffsetOf(%q) = %v", n, got)
		}
	}
	if arch.Llama.NormOffsetOf("blk.0.attn_norm.weight") != 0 {
		t.Error("llama norms offset")
	}
}

// FromGGUF reads what llama.cpp's gemma3 loader reads.
func TestGemma3FromGGUF(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kv      map[string]any
		layers  int
		sliding []bool
		swa     float64
		scale   float64
	}{
		{"default period 6", map[string]any{"attention.sliding_window": uint32(512)}, 7,
			[]bool{true, true, true, true, true, false, true}, 10000, float64(float32(1) / float32(math.Sqrt(64)))},
		{"period 2, swa base", map[string]any{"attention.sliding_window": uint32(8), "attention.sliding_window_pattern": uint32(2), "rope.freq_base_swa": float32(2e4)}, 4,
			[]bool{true, false, true, false}, 2e4, 0.125},
		{"per-layer array", map[string]any{"attention.sliding_window": uint32(8), "attention.sliding_window_pattern": []bool{false, true, true}}, 3,
			[]bool{false, true, true}, 10000, 0.125},
		{"no window", map[string]any{}, 3, nil, 0, 0.125},
	} {
		p := graph.Params{Layers: tc.layers, HeadDim: 64, Embedding: 128, Heads: 4}
		get := func(k string) (any, bool) { v, ok := tc.kv[k]; return v, ok }
		if err := arch.Gemma3.FromGGUF(get, &p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.SlidingLayers, tc.sliding) || p.RopeBaseSWA != tc.swa || p.AttnScale != tc.scale || !p.QKNorm || p.Activation != "gelu_tanh" {
			t.Errorf("%s: sliding %v swa %v scale %v", tc.name, p.SlidingLayers, p.RopeBaseSWA, p.AttnScale)
		}
	}
	// The 62-layer 27B model: 1/√(hidden/heads) in float32.
	p := graph.Params{Layers: 62, HeadDim: 128, Embedding: 5376, Heads: 32}
	if err := arch.Gemma3.FromGGUF(func(string) (any, bool) { return nil, false }, &p); err != nil {
		t.Fatal(err)
	}
	if want := float64(1 / float32(math.Sqrt(168))); p.AttnScale != want {
		t.Errorf("27B scale %v, want %v", p.AttnScale, want)
	}
}

// WriteConfig's Gemma 3 keys read back to the same parameters, in both
// config forms; a Gemma3ForConditionalGeneration config comes out as a
// flat Gemma3ForCausalLM one.
func TestGemma3WriteConfig(t *testing.T) {
	for _, src := range []string{gemma3Classic, gemma3V5} {
		_, p, raw, err := hf.ParseConfig([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		b, err := hf.WriteConfig(&graph.Model{Arch: "gemma3", Params: p, Config: raw})
		if err != nil {
			t.Fatal(err)
		}
		name, q, out, err := hf.ParseConfig(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if name != "gemma3" || q.HeadDim != p.HeadDim || q.SlidingWindow != p.SlidingWindow || !slices.Equal(q.SlidingLayers, p.SlidingLayers) ||
			q.RopeBase != p.RopeBase || q.RopeBaseSWA != p.RopeBaseSWA || q.AttnScale != p.AttnScale || q.FinalLogitSoftcap != p.FinalLogitSoftcap {
			t.Errorf("round trip:\n got  %+v\n want %+v\n%s", q, p, b)
		}
		if out["architectures"].([]any)[0] != "Gemma3ForCausalLM" || out["text_config"] != nil || out["vision_config"] != nil {
			t.Errorf("written config: %s", b)
		}
	}
}
