package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// testdata/arch/gemma3-tiny (README.md there): Gemma3ForCausalLM, 6
// layers (5 sliding, window 32, 1 global), q/k and post norms, (1+w)
// RMSNorm, tied embeddings, Gemma SentencePiece vocabulary;
// gemma3-tiny.bf16.gguf is convert_hf_to_gguf.py --outtype bf16's file.

// TestGemma3HFToGGUFBF16: quantbridge's conversion is the converter's
// file byte for byte (metadata incl. rope.freq_base_swa, sliding_window
// and add_space_prefix after the vocabulary; norms written F32 as
// float32(w)+1; tensor order).
func TestGemma3HFToGGUFBF16(t *testing.T) {
	ref := testref.Local(t, "arch", "gemma3-tiny.bf16.gguf")
	out := filepath.Join(t.TempDir(), "g.gguf")
	unseenConvert(t, testref.Local(t, "arch", "gemma3-tiny"), out, "BF16")
	requireSameGGUF(t, out, ref)
}

// requireSameGGUF requires identical files, naming the first differing
// metadata and tensors when they are not.
func requireSameGGUF(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(g, w) {
		return
	}
	gf, err := gguf.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	wf, err := gguf.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	for i := 0; i < len(gf.KV) || i < len(wf.KV); i++ {
		var a, b graph.KV
		if i < len(gf.KV) {
			a = gf.KV[i]
		}
		if i < len(wf.KV) {
			b = wf.KV[i]
		}
		if a.Key != b.Key || !kvEqual(a.Value, b.Value) {
			t.Errorf("KV %d: %q = %s, reference %q = %s", i, a.Key, shortVal(a.Value), b.Key, shortVal(b.Value))
		}
	}
	sum, size := unseenSHA256(t, want)
	compareUnseen(t, got, unseenFile{SHA256: sum, Size: size, Tensors: unseenTensors(t, want)})
}

// TestGemma3GGUFToHFToGGUF: GGUF → HF takes the norm offset off (the HF
// checkpoint holds w, as transformers expects) and writes a
// Gemma3ForCausalLM config with the sliding layers, both rope bases and
// the attention scalar; converting that back gives the converter's file's
// tensors again, byte for byte.
func TestGemma3GGUFToHFToGGUF(t *testing.T) {
	dir := t.TempDir()
	ref := testref.Local(t, "arch", "gemma3-tiny.bf16.gguf")
	hfDir := filepath.Join(dir, "hf")
	if _, err := Convert(t.Context(), ref, hfDir, Options{Target: HFTarget{}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	m, err := hf.ReadDir(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src, err := hf.ReadDir(testref.Local(t, "arch", "gemma3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p, q := m.Params, src.Params
	if m.Arch != "gemma3" || p.SlidingWindow != 32 || !slices.Equal(p.SlidingLayers, q.SlidingLayers) ||
		p.RopeBase != 1e6 || p.RopeBaseSWA != 10000 || p.AttnScale != q.AttnScale || p.HeadDim != 64 || !p.Tied || p.Activation != "gelu_tanh" {
		t.Errorf("config read back: %s %+v\nsource: %+v", m.Arch, p, q)
	}
	// Norms: the HF values again (bf16 w widened to F32), not w+1.
	for _, name := range []string{"blk.0.attn_norm.weight", "blk.5.post_ffw_norm.weight", "blk.3.attn_q_norm.weight", "output_norm.weight"} {
		got := tensorFloats(t, m.Tensor(name))
		want := tensorFloats(t, src.Tensor(name))
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v..., source %v...", name, got[:4], want[:4])
		}
	}
	back := filepath.Join(dir, "back.gguf")
	unseenConvert(t, hfDir, back, "BF16")
	// The HF writer orders tensors by dtype (F32 norms first), so the
	// converter would write them in that order too: compare by name.
	want := map[string]unseenTensor{}
	for _, x := range unseenTensors(t, ref) {
		want[x.Name] = x
	}
	got := unseenTensors(t, back)
	if len(got) != len(want) {
		t.Errorf("%d tensors, reference %d", len(got), len(want))
	}
	for _, g := range got {
		w := want[g.Name]
		if g.Type != w.Type || !slices.Equal(g.Shape, w.Shape) || g.SHA256 != w.SHA256 {
			t.Errorf("%s: %s %v, reference %s %v (or the bytes differ)", g.Name, g.Type, g.Shape, w.Type, w.Shape)
		}
	}
}

// tensorFloats decodes an F32, F16 or BF16 tensor.
func tensorFloats(t *testing.T, tn *graph.Tensor) []float32 {
	t.Helper()
	if tn == nil {
		t.Fatal("missing tensor")
	}
	b, err := graph.ReadAll(tn.Data)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, tn.Elements())
	if err := decodeRows(out, b, tn.Type); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGemma3HFToMLX: mlx-lm's layout for gemma3_text (mlx_lm/models/
// gemma3_text.py: HF names, norms kept as w, no lm_head when tied) and
// its default quantization predicate (mlx_lm/utils.py quantize_model:
// Linear and Embedding layers whose last dimension is a multiple of the
// group size — down_proj's 352 is not, at group 64), config.json with
// "quantization".
func TestGemma3HFToMLX(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mlx")
	if _, err := Convert(t.Context(), testref.Local(t, "arch", "gemma3-tiny"), out, Options{Target: MLXTarget{Bits: 4, GroupSize: 64}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	for _, tn := range f.Tensors {
		got[tn.Name] = fmt.Sprintf("%v %v", tn.DType, tn.Shape)
	}
	want := map[string]string{
		"model.embed_tokens.weight":                        "U32 [1024 16]",
		"model.embed_tokens.scales":                        "BF16 [1024 2]",
		"model.norm.weight":                                "BF16 [128]",
		"model.layers.0.input_layernorm.weight":            "BF16 [128]",
		"model.layers.0.pre_feedforward_layernorm.weight":  "BF16 [128]",
		"model.layers.5.post_feedforward_layernorm.weight": "BF16 [128]",
		"model.layers.0.self_attn.q_norm.weight":           "BF16 [64]",
		"model.layers.0.self_attn.q_proj.weight":           "U32 [256 16]",
		"model.layers.0.self_attn.o_proj.biases":           "BF16 [128 4]",
		"model.layers.0.mlp.gate_proj.weight":              "U32 [352 16]",
		"model.layers.0.mlp.down_proj.weight":              "BF16 [128 352]",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(f.Tensors) != 6*(6*3+1+6)+3+1 { // per layer: 6 quantized matrices ×3, down_proj, 6 norms; embeddings ×3, norm
		t.Errorf("%d tensors", len(f.Tensors))
	}
	if _, ok := got["lm_head.weight"]; ok {
		t.Error("tied model has lm_head.weight")
	}
	// Norm values are the HF checkpoint's bf16 bytes (w, not w+1).
	src, err := safetensors.Open(testref.Local(t, "arch", "gemma3-tiny", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, n := range []string{"model.layers.2.post_attention_layernorm.weight", "model.norm.weight"} {
		a, b := stTensorBytes(t, f, n), stTensorBytes(t, src, n)
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the HF checkpoint's", n)
		}
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(cfg["quantization"])
	if string(q) != `{"bits":4,"group_size":64,"mode":"affine"}` || cfg["model_type"] != "gemma3_text" || cfg["sliding_window_pattern"] != 6.0 {
		t.Errorf("config: quantization %s, model_type %v, sliding_window_pattern %v", q, cfg["model_type"], cfg["sliding_window_pattern"])
	}
	// And it reads back as an MLX Gemma 3 model.
	m, err := mlx.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Arch != "gemma3" || !m.Params.Tied || m.Params.RopeBaseSWA != 10000 || m.Params.SlidingWindow != 32 {
		t.Errorf("read back: %s %+v", m.Arch, m.Params)
	}
}

func stTensorBytes(t *testing.T, f *safetensors.File, name string) []byte {
	t.Helper()
	i := f.Index(name)
	if i < 0 {
		t.Fatalf("no tensor %s", name)
	}
	b, err := graph.ReadAll(f.Section(i))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGemma3ConditionalToGGUF: a Gemma3ForConditionalGeneration
// checkpoint (config with text_config; transformers 5 names
// "model.language_model.*", a vision tower and projector) converts to the
// same tensors as the text model, and the same hyperparameters, as
// convert_hf_to_gguf.py's TextModel (vision tensors filtered out,
// "language_model." removed).
// gemma3ConditionalDir writes a Gemma3ForConditionalGeneration
// checkpoint made of gemma3-tiny: the conditional config, the tensors
// renamed "model.language_model.*" (transformers 5), and a vision tower
// and projector tensor.
func gemma3ConditionalDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gemma3-conditional")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srcDir := testref.Local(t, "arch", "gemma3-tiny")
	for _, n := range []string{"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		b, err := os.ReadFile(filepath.Join(srcDir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(testref.Local(t, "arch", "configs", "gemma3-conditional.config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := safetensors.Open(filepath.Join(srcDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var pts []safetensors.PlanTensor
	var data []graph.Source
	for i, tn := range src.Tensors {
		pts = append(pts, safetensors.PlanTensor{Name: strings.Replace(tn.Name, "model.", "model.language_model.", 1), DType: tn.DType, Shape: tn.Shape})
		data = append(data, src.Section(i))
	}
	vision := make([]byte, 4*32*3*14*14)
	binary.LittleEndian.PutUint32(vision, math.Float32bits(1))
	for _, n := range []string{"model.vision_tower.vision_model.embeddings.patch_embedding.weight", "model.multi_modal_projector.mm_input_projection_weight"} {
		pts = append(pts, safetensors.PlanTensor{Name: n, DType: graph.F32, Shape: []int64{32, 3, 14, 14}})
		data = append(data, bytes.NewReader(vision))
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), pts, func(i int) (graph.Source, error) { return data[i], nil }, safetensors.PlanOptions{Metadata: map[string]string{"format": "pt"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGemma3ConditionalToGGUF(t *testing.T) {
	dir := gemma3ConditionalDir(t)
	out := filepath.Join(t.TempDir(), "c.gguf")
	unseenConvert(t, dir, out, "BF16")
	ref := testref.Local(t, "arch", "gemma3-tiny.bf16.gguf")
	want, got := unseenTensors(t, ref), unseenTensors(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d tensors, text model %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].SHA256 != want[i].SHA256 || got[i].Type != want[i].Type {
			t.Errorf("tensor %d: %s %s, text model %s %s", i, got[i].Name, got[i].Type, want[i].Name, want[i].Type)
		}
	}
	gf, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	wf, err := gguf.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	for _, k := range []string{"gemma3.block_count", "gemma3.context_length", "gemma3.attention.sliding_window", "gemma3.rope.freq_base",
		"gemma3.rope.freq_base_swa", "gemma3.attention.key_length", "gemma3.attention.head_count_kv", "tokenizer.ggml.add_space_prefix"} {
		a, okA := gf.Get(k)
		b, okB := wf.Get(k)
		if !okA || !okB || !kvEqual(a, b) {
			t.Errorf("%s: %v (%v), text model %v (%v)", k, a, okA, b, okB)
		}
	}
}

// TestGemma3Quantize quantizes the converter's bf16 GGUF to every type
// llama-quantize was run with (testdata/arch/reference.json) and requires
// its file: per-tensor types (rows of 64, 128, 256 and 352: K-quant
// fallbacks), bytes and whole-file sha256; Q4_K_M also straight from the
// HF checkpoint (norm offset and quantization in one pass).
func TestGemma3Quantize(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r unseenReference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/arch/reference.json: %v", err)
	}
	files := r.Models["gemma3-tiny"].GGUF
	if len(files) < 2 {
		t.Fatal("testdata/arch/reference.json: no gemma3-tiny llama-quantize files")
	}
	dir := t.TempDir()
	for typ, want := range files {
		if typ == "bf16" {
			continue
		}
		t.Run(typ, func(t *testing.T) {
			out := filepath.Join(dir, typ+".gguf")
			unseenConvert(t, testref.Local(t, "arch", "gemma3-tiny.bf16.gguf"), out, typ)
			compareUnseen(t, out, want)
			if typ == "Q4_K_M" {
				hfOut := filepath.Join(dir, "hf."+typ+".gguf")
				unseenConvert(t, testref.Local(t, "arch", "gemma3-tiny"), hfOut, typ)
				compareUnseen(t, hfOut, want)
			}
		})
	}
}

// TestGemma3ConditionalToMLXAndHF: the language model of a
// Gemma3ForConditionalGeneration checkpoint written as MLX or HF is a
// plain Gemma3ForCausalLM (flat config, "model.*" names) with the text
// model's hyperparameters.
func TestGemma3ConditionalToMLXAndHF(t *testing.T) {
	dir := gemma3ConditionalDir(t)
	src, err := hf.ReadDir(testref.Local(t, "arch", "gemma3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, tc := range []struct {
		name string
		tgt  Target
	}{{"mlx", MLXTarget{Bits: 8, GroupSize: 64}}, {"hf", HFTarget{}}} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), tc.name)
			if _, err := Convert(t.Context(), dir, out, Options{Target: tc.tgt, Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			b, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg["model_type"] != "gemma3_text" || cfg["text_config"] != nil || cfg["vision_config"] != nil || cfg["hidden_size"] != 128.0 {
				t.Errorf("config.json:\n%s", b)
			}
			var m *graph.Model
			if tc.name == "mlx" {
				m, err = mlx.ReadDir(out)
			} else {
				m, err = hf.ReadDir(out)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p, q := m.Params, src.Params
			if m.Arch != "gemma3" || p.Layers != q.Layers || p.HeadDim != q.HeadDim || p.SlidingWindow != q.SlidingWindow ||
				!slices.Equal(p.SlidingLayers, q.SlidingLayers) || p.RopeBaseSWA != q.RopeBaseSWA || p.AttnScale != q.AttnScale || len(m.Tensors) != len(src.Tensors) {
				t.Errorf("read back: %s %+v, %d tensors\ntext model: %+v, %d tensors", m.Arch, p, len(m.Tensors), q, len(src.Tensors))
			}
			f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Index("model.layers.0.self_attn.q_norm.weight") < 0 || f.Index("model.embed_tokens.weight") < 0 {
				t.Errorf("tensor names are not the text model's")
			}
		})
	}
}
