package arch_test

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// testdata/arch/phi3-tiny (README.md there): Phi3ForCausalLM with fused
// projections and longrope scaling, converted by llama.cpp's
// convert_hf_to_gguf.py (34af94cd) to phi3-tiny.bf16.gguf.

var (
	phi3Short = []float64{1.0, 1.02, 1.04, 1.06, 1.08, 1.1, 1.12, 1.14, 1.16, 1.18, 1.2, 1.22, 1.24, 1.26, 1.28, 1.3}
	phi3Long  = []float64{1.0, 1.1269, 1.2699, 1.431, 1.6125, 1.8171, 2.0477, 2.3075, 2.6002, 2.9302, 3.3019, 3.7209, 4.193, 4.725, 5.3244, 6.0}
)

func TestPhi3Names(t *testing.T) {
	for _, tc := range []struct{ hf, canon string }{
		{"model.layers.0.self_attn.qkv_proj.weight", "blk.0.attn_qkv.weight"},
		{"model.layers.3.mlp.gate_up_proj.weight", "blk.3.ffn_up.weight"},
		{"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
		{"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"},
		{"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"},
		{"lm_head.weight", "output.weight"},
	} {
		for _, mlx := range []bool{false, true} { // mlx-lm keeps the HF names
			got, e, ok := arch.Phi3.CanonicalName(tc.hf, mlx)
			if !ok || got != tc.canon || e != -1 {
				t.Errorf("CanonicalName(%q, %v) = %q, %d, %v; want %q", tc.hf, mlx, got, e, ok, tc.canon)
			}
			back, ok := arch.Phi3.HFName(tc.canon, mlx)
			if !ok || back != tc.hf {
				t.Errorf("HFName(%q, %v) = %q, %v; want %q", tc.canon, mlx, back, ok, tc.hf)
			}
		}
	}
	if a, ok := arch.FromHF("Phi3ForCausalLM"); !ok || a.Name != "phi3" {
		t.Errorf("FromHF(Phi3ForCausalLM) = %v, %v", a, ok)
	}
}

// Both config forms (the published rope_scaling one and transformers 5's
// rope_parameters) parse to the same hyperparameters.
func TestPhi3Config(t *testing.T) {
	want := graph.Params{Layers: 4, Embedding: 128, FFN: 352, Heads: 4, KVHeads: 2, HeadDim: 32,
		RopeBase: 10000, RopeType: "neox", RopeDims: 32, RMSEps: 1e-5, ContextLength: 256, VocabSize: 4160,
		TorchDType:  "bfloat16",
		RopeScaling: &graph.RopeScaling{Type: "longrope", OriginalContext: 64, ShortFactor: phi3Short, LongFactor: phi3Long}}
	for _, p := range []string{"phi3-tiny/config.json", "configs/phi3-tiny.transformers5.config.json"} {
		name, got, _, err := hf.ReadConfigFile(testref.Local(t, "arch", p))
		if err != nil {
			t.Fatal(err)
		}
		if name != "phi3" || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s\n got %+v %+v\nwant %+v %+v", p, name, got, got.RopeScaling, want, want.RopeScaling)
		}
	}
}

func TestPhi3ConfigErrors(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "phi3-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(c map[string]any)
		substr string
	}{
		{"no long_factor", func(c map[string]any) { delete(c["rope_scaling"].(map[string]any), "long_factor") }, `key "rope_scaling": longrope scaling needs short_factor and long_factor`},
		{"short list", func(c map[string]any) {
			rs := c["rope_scaling"].(map[string]any)
			rs["short_factor"] = rs["short_factor"].([]any)[:15]
		}, "short_factor has 15 and long_factor 16 values; rotary dimension 32 needs 16 each"},
		{"factor not a number", func(c map[string]any) { c["rope_scaling"].(map[string]any)["long_factor"].([]any)[3] = "x" }, `key "long_factor": entry 3 is a string`},
		{"zero factor", func(c map[string]any) { c["rope_scaling"].(map[string]any)["long_factor"].([]any)[2] = 0.0 }, "factor 2 (short 1.04, long 0) is not a positive number"},
		{"no original context", func(c map[string]any) { delete(c, "original_max_position_embeddings") }, `key "original_max_position_embeddings": missing`},
		{"bad sliding window", func(c map[string]any) { c["sliding_window"] = -3.0 }, `key "sliding_window"`},
	} {
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		tc.edit(c)
		nb, _ := json.Marshal(c)
		_, _, _, err := hf.ParseConfig(nb)
		if err == nil || !strings.Contains(err.Error(), tc.substr) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: error %v, want one naming config.json and containing %q", tc.name, err, tc.substr)
		}
	}
}

// ModelKV of the HF checkpoint is the converter's metadata: every key, in
// its order (Phi3MiniModel.set_gguf_parameters does not call TextModel's;
// rope.scaling.attn_factor comes right after general.architecture), with
// its value types; ExtraTensors are its factor tensors, byte for byte.
func TestPhi3ModelKV(t *testing.T) {
	m, err := hf.ReadDir(testref.Local(t, "arch", "phi3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := gguf.Open(testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := arch.ModelKV(m, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(f.KV) {
		t.Errorf("%d KVs, converter %d", len(got), len(f.KV))
	}
	for i := 0; i < len(got) && i < len(f.KV); i++ {
		g, w := got[i], f.KV[i]
		if g.Key != w.Key || !reflect.DeepEqual(g.Value, w.Value) {
			gs, ws := []rune(strings.TrimSpace(strings.ReplaceAll(jsonish(g.Value), "\n", " "))), []rune(jsonish(w.Value))
			t.Errorf("KV %d: %s = %.80s (%T), converter %s = %.80s (%T)", i, g.Key, string(gs), g.Value, w.Key, string(ws), w.Value)
		}
	}
	for i, k := range []string{"general.architecture", "phi3.rope.scaling.attn_factor", "general.type"} {
		if got[i].Key != k {
			t.Errorf("KV %d is %s, want %s", i, got[i].Key, k)
		}
	}
	if v := got[1].Value.(float32); v != float32(math.Sqrt(1+math.Log(4)/math.Log(64))) {
		t.Errorf("attn_factor %v", v)
	}
	extra, err := arch.Phi3.ExtraTensors(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) != 2 || extra[0].Name != "rope_factors_long.weight" || extra[1].Name != "rope_factors_short.weight" {
		t.Fatalf("extra tensors %v", extra)
	}
	for _, x := range extra {
		gm, err := f.Model()
		if err != nil {
			t.Fatal(err)
		}
		want := gm.Tensor(x.Name)
		if want == nil || want.Type != graph.F32 || !reflect.DeepEqual(want.Shape, x.Shape) {
			t.Fatalf("%s: converter has %+v", x.Name, want)
		}
		a, _ := graph.ReadAll(x.Data)
		b, _ := graph.ReadAll(want.Data)
		if string(a) != string(b) {
			t.Errorf("%s: bytes differ from the converter's", x.Name)
		}
	}
}

func jsonish(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A GGUF read through formats.Open gets longrope back from its factor
// tensors and keys, and config.json written from it has Phi-3's form.
func TestPhi3FromGGUF(t *testing.T) {
	m, err := formats.Open(testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rs := m.Params.RopeScaling
	if rs == nil || rs.Type != "longrope" || rs.OriginalContext != 64 || math.Abs(rs.AttnFactor-1.1547005) > 1e-7 ||
		!reflect.DeepEqual(rs.ShortFactor, phi3Short) || !reflect.DeepEqual(rs.LongFactor, phi3Long) {
		t.Fatalf("rope scaling %+v", rs)
	}
	if m.Params.SlidingWindow != 0 || m.Params.SlidingLayers != nil || m.Params.RopeDims != 32 {
		t.Errorf("params %+v", m.Params)
	}
	b, err := hf.WriteConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "longrope", "short_factor": floats(phi3Short), "long_factor": floats(phi3Long)}
	if !reflect.DeepEqual(c["rope_scaling"], want) {
		t.Errorf("rope_scaling %v\nwant %v", c["rope_scaling"], want)
	}
	if c["original_max_position_embeddings"] != 64.0 || c["sliding_window"] != nil || c["max_position_embeddings"] != 256.0 || c["rope_theta"] != 10000.0 {
		t.Errorf("config %s", b)
	}
	if _, ok := c["attention_bias"]; ok {
		t.Errorf("config has attention_bias (Phi3Config has none)")
	}
	// And it parses back to the same hyperparameters.
	_, p, _, err := hf.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.RopeScaling, &graph.RopeScaling{Type: "longrope", OriginalContext: 64, ShortFactor: phi3Short, LongFactor: phi3Long}) {
		t.Errorf("parsed back: %+v", p.RopeScaling)
	}
}

func floats(v []float64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// The converter's attention factor and its cases.
func TestLongropeAttnFactor(t *testing.T) {
	for _, tc := range []struct {
		ctx, orig int
		want      float64
	}{
		{256, 64, math.Sqrt(1 + math.Log(4)/math.Log(64))},
		{131072, 4096, 1.1902380714238083}, // Phi-3-mini-128k
		{4096, 4096, 1},
		{2048, 4096, 1},
	} {
		if got := arch.LongropeAttnFactor(tc.ctx, tc.orig); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("LongropeAttnFactor(%d, %d) = %v, want %v", tc.ctx, tc.orig, got, tc.want)
		}
	}
}

// Phi-4-mini's partial_rotary_factor and a sliding window: the rotary
// dimension int(factor × hidden) // heads, the window written as
// attention.sliding_window (and marked on every layer for transformers'
// forward pass, not for llama.cpp's, which disables it for phi3).
func TestPhi3PartialRotaryAndWindow(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "phi3-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c["partial_rotary_factor"] = 0.75
	c["sliding_window"] = 48.0
	rs := c["rope_scaling"].(map[string]any)
	rs["short_factor"] = rs["short_factor"].([]any)[:12]
	rs["long_factor"] = rs["long_factor"].([]any)[:12]
	nb, _ := json.Marshal(c)
	_, p, raw, err := hf.ParseConfig(nb)
	if err != nil {
		t.Fatal(err)
	}
	if p.RopeDims != 24 || len(p.RopeScaling.LongFactor) != 12 || p.SlidingWindow != 48 || !reflect.DeepEqual(p.SlidingLayers, []bool{true, true, true, true}) {
		t.Errorf("params %+v", p)
	}
	hm, err := hf.ReadDir(testref.Local(t, "arch", "phi3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	m := &graph.Model{Path: "phi4-mini-like", Arch: "phi3", Params: p, Config: raw, Tokenizer: hm.Tokenizer, Tensors: hm.Tensors}
	kv, err := arch.ModelKV(m, 32)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, e := range kv {
		got[e.Key] = e.Value
	}
	if got["phi3.rope.dimension_count"] != uint32(24) || got["phi3.attention.sliding_window"] != uint32(48) {
		t.Errorf("rope.dimension_count %v, attention.sliding_window %v", got["phi3.rope.dimension_count"], got["phi3.attention.sliding_window"])
	}
	ts, err := arch.Phi3.ExtraTensors(m)
	if err != nil || len(ts) != 2 || ts[0].Shape[0] != 12 {
		t.Errorf("extra tensors %v, %v", ts, err)
	}
	// Without longrope: no attn_factor key, no factor tensors; the
	// original context is still required and written.
	delete(raw, "rope_scaling")
	m.Params.RopeScaling = nil
	if kv, err = arch.ModelKV(m, 32); err != nil {
		t.Fatal(err)
	}
	for _, e := range kv {
		if e.Key == "phi3.rope.scaling.attn_factor" {
			t.Errorf("attn_factor without long factors")
		}
		if e.Key == "phi3.rope.scaling.original_context_length" && e.Value != uint32(64) {
			t.Errorf("original context %v", e.Value)
		}
	}
	if ts, _ := arch.Phi3.ExtraTensors(m); len(ts) != 0 {
		t.Errorf("factor tensors without longrope")
	}
	delete(raw, "original_max_position_embeddings")
	if _, err := arch.ModelKV(m, 32); err == nil || !strings.Contains(err.Error(), "original_max_position_embeddings") {
		t.Errorf("no original context: error %v", err)
	}
}
