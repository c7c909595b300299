package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Phi-3 against testdata/arch/phi3-tiny (README.md there): the
// converter's bf16 GGUF is in the repository; llama-quantize's files are
// recorded in testdata/arch/reference.json (sha256 and per-tensor records).

// phi3Types are the llama-quantize types recorded for phi3-tiny.
var phi3Types = []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K", "Q4_0"}

func loadArchReference(t testing.TB) *unseenReference {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r unseenReference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/arch/reference.json: %v", err)
	}
	return &r
}

// TestPhi3HFToGGUFBF16: the bytes of convert_hf_to_gguf.py --outtype bf16
// (fused attn_qkv / ffn_up, rope_factors_long/short first, Phi-3's own
// key order, the Phi-3 vocabulary), from both config.json forms.
func TestPhi3HFToGGUFBF16(t *testing.T) {
	want, err := os.ReadFile(testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	// The transformers-5 form (rope_parameters) in a directory of the same
	// name (general.name comes from it).
	v5 := filepath.Join(t.TempDir(), "phi3-tiny")
	copyDir(t, testref.Local(t, "arch", "phi3-tiny"), v5)
	cfg, err := os.ReadFile(testref.Local(t, "arch", "configs", "phi3-tiny.transformers5.config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v5, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{testref.Local(t, "arch", "phi3-tiny"), v5} {
		out := filepath.Join(t.TempDir(), "bf16.gguf")
		unseenConvert(t, in, out, "")
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			ref := testref.Local(t, "arch", "phi3-tiny.bf16.gguf")
			sum, size := unseenSHA256(t, ref)
			t.Errorf("%s: not the converter's file", in)
			compareUnseen(t, out, unseenFile{SHA256: sum, Size: size, Tensors: unseenTensors(t, ref)})
		}
	}
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPhi3Quantize: the bf16 GGUF, and the HF checkpoint in one pass, to
// every recorded llama-quantize type (attn_qkv takes attn_v's rules; the
// rope factor vectors stay F32).
func TestPhi3Quantize(t *testing.T) {
	r := loadArchReference(t)
	dir := t.TempDir()
	for _, typ := range phi3Types {
		t.Run(typ, func(t *testing.T) {
			want := r.file(t, "phi3-tiny", typ)
			for _, in := range []string{"phi3-tiny.bf16.gguf", "phi3-tiny"} {
				out := filepath.Join(dir, typ+".gguf")
				unseenConvert(t, testref.Local(t, "arch", in), out, typ)
				compareUnseen(t, out, want)
				os.Remove(out)
			}
		})
	}
}

// TestPhi3MLX: HF → MLX 4-bit keeps mlx-lm's phi3.py layout (fused
// qkv_proj and gate_up_proj under the HF names, quantized like every
// nn.Linear: phi3.py declares no sanitize and no quantization predicate;
// norms stay bf16) and the config Phi3's ModelArgs reads; the MLX
// directory back to GGUF has the converter's tensor layout.
func TestPhi3MLX(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "mlx")
	if _, err := Convert(t.Context(), testref.Local(t, "arch", "phi3-tiny"), out, Options{Jobs: 2, Target: MLXTarget{Bits: 4, GroupSize: 64}}); err != nil {
		t.Fatal(err)
	}
	names := safetensorsTensors(t, out)
	for _, n := range []string{"model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.self_attn.qkv_proj.scales", "model.layers.0.self_attn.qkv_proj.biases",
		"model.layers.3.mlp.gate_up_proj.weight", "model.layers.3.mlp.gate_up_proj.scales", "model.layers.3.mlp.down_proj.weight",
		"model.embed_tokens.scales", "lm_head.scales", "model.layers.2.input_layernorm.weight", "model.norm.weight"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no tensor %s", n)
		}
	}
	// mlx-lm quantizes a Linear only when its input width is a multiple
	// of the group size: down_proj (352) and the norms stay bf16.
	for _, n := range []string{"model.layers.3.mlp.down_proj.scales", "model.norm.scales", "model.layers.0.input_layernorm.scales"} {
		if _, ok := names[n]; ok {
			t.Errorf("%s: not quantized by mlx-lm", n)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if q := c["quantization"]; !reflect.DeepEqual(q, map[string]any{"group_size": 64.0, "bits": 4.0, "mode": "affine"}) {
		t.Errorf("quantization %v", q)
	}
	rs, _ := c["rope_scaling"].(map[string]any)
	if rs["type"] != "longrope" || len(rs["long_factor"].([]any)) != 16 || c["original_max_position_embeddings"] != 64.0 {
		t.Errorf("rope_scaling %v, original_max_position_embeddings %v", rs, c["original_max_position_embeddings"])
	}
	m, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	qkv := m.Tensor("blk.0.attn_qkv.weight")
	if qkv == nil || qkv.Type != graph.MLXAffine || !reflect.DeepEqual(qkv.Shape, []int64{256, 128}) || m.Tensor("blk.0.ffn_up.weight").Shape[0] != 704 {
		t.Fatalf("MLX model reads back as %+v", qkv)
	}
	// mlx-lm's phi3 ModelArgs default tie_word_embeddings to False.
	delete(c, "tie_word_embeddings")
	nb, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(out, "config.json"), nb, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, err := formats.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Params.Tied {
		t.Errorf("MLX phi3 without tie_word_embeddings reads as tied")
	}
	m2.Close()
	g := filepath.Join(dir, "back.gguf")
	if _, err := Convert(t.Context(), out, g, Options{Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(g)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Tensors[0].Name != "rope_factors_long.weight" || f.Tensors[1].Name != "rope_factors_short.weight" {
		t.Errorf("GGUF from MLX starts with %s, %s", f.Tensors[0].Name, f.Tensors[1].Name)
	}
	for _, ti := range f.Tensors {
		if ti.Name == "blk.1.attn_qkv.weight" && ti.Type != graph.Q4_1 {
			t.Errorf("%s: %v, want the exact Q4_1 repack", ti.Name, ti.Type)
		}
	}
}

// TestPhi3GGUFToHF: GGUF → HF restores config.json's longrope (factor
// lists from the tensors, original context, no attention_factor as it is
// the derived one), the fused tensors under their HF names and no factor
// tensors; converted again it gives the converter's tensors and metadata
// (in another tensor order, the special-token ids in another order).
func TestPhi3GGUFToHF(t *testing.T) {
	ref := testref.Local(t, "arch", "phi3-tiny.bf16.gguf")
	out := filepath.Join(t.TempDir(), "phi3-tiny")
	if _, err := Convert(t.Context(), ref, out, Options{Jobs: 2, Target: HFTarget{}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wb, err := os.ReadFile(testref.Local(t, "arch", "phi3-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wb, &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"architectures", "model_type", "rope_scaling", "original_max_position_embeddings", "max_position_embeddings",
		"rope_theta", "sliding_window", "hidden_size", "intermediate_size", "num_key_value_heads", "vocab_size", "tie_word_embeddings", "rms_norm_eps"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("config.json %s = %v, original %v", k, got[k], want[k])
		}
	}
	names := safetensorsTensors(t, out)
	wantNames := safetensorsTensors(t, testref.Local(t, "arch", "phi3-tiny"))
	if len(names) != len(wantNames) {
		t.Errorf("%d tensors, original %d", len(names), len(wantNames))
	}
	for n, sum := range wantNames {
		// Norms come back F32 (the converter stores them so); the
		// projections are the original bytes.
		if names[n] != sum && !strings.HasSuffix(n, "norm.weight") {
			t.Errorf("%s: %s, original %s", n, names[n], sum)
		}
	}
	g := filepath.Join(t.TempDir(), "again.gguf")
	unseenConvert(t, out, g, "")
	// The HF writer's tensor order is not the original file's; compare by
	// name.
	gotT, wantT := unseenTensors(t, g), unseenTensors(t, ref)
	byName := func(a, b unseenTensor) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(gotT, byName)
	slices.SortFunc(wantT, byName)
	if !reflect.DeepEqual(gotT, wantT) {
		t.Errorf("tensors after GGUF → HF → GGUF differ:\n%v\n%v", gotT, wantT)
	}
	gf, err := gguf.Open(g)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	wf, err := gguf.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	wantKV := map[string]any{}
	for _, kv := range wf.KV {
		wantKV[kv.Key] = kv.Value
	}
	if len(gf.KV) != len(wf.KV) {
		t.Errorf("%d KVs, converter %d", len(gf.KV), len(wf.KV))
	}
	for _, kv := range gf.KV {
		if w, ok := wantKV[kv.Key]; !ok || !kvEqual(kv.Value, w) {
			t.Errorf("KV %s = %s, converter %s", kv.Key, shortVal(kv.Value), shortVal(w))
		}
	}
}
