package mlx

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// TestConfigJSONByteIdentical: ConfigJSON reproduces config.json files
// written by Python's json.dump(indent=4) as mlx-lm's save_config does: the
// MLX oracle's int4-g64 config, and a mixed_4_6-style config with a
// per-module entry (group_size null) for every quantized layer.
func TestConfigJSONByteIdentical(t *testing.T) {
	for _, name := range []string{"config-int4-g64.json", "config-mixed-4-6.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(testref.Local(t, "mlx", name))
			if err != nil {
				t.Fatal(err)
			}
			_, params, raw, err := hf.ParseConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseQuantization(raw)
			if err != nil {
				t.Fatal(err)
			}
			m := &graph.Model{Config: raw, Params: params}
			got, err := ConfigJSON(m, q)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				i := 0
				for i < len(got) && i < len(data) && got[i] == data[i] {
					i++
				}
				t.Fatalf("config differs at byte %d:\n got %q\nwant %q", i, got[max(0, i-40):min(len(got), i+40)], data[max(0, i-40):min(len(data), i+40)])
			}
		})
	}
}

func TestParseQuantization(t *testing.T) {
	tests := []struct {
		name string
		json string
		want *Quantization // nil with wantErr "" means no quantization
		err  string
	}{
		{"none", `{}`, nil, ""},
		{"null", `{"quantization": null}`, nil, ""},
		{"global", `{"quantization": {"group_size": 64, "bits": 4, "mode": "affine"}}`, &Quantization{GroupSize: 64, Bits: 4, Mode: "affine"}, ""},
		{"old config without mode", `{"quantization": {"group_size": 32, "bits": 8}}`, &Quantization{GroupSize: 32, Bits: 8, Mode: "affine"}, ""},
		{"quantization_config only", `{"quantization_config": {"group_size": 128, "bits": 2}}`, &Quantization{GroupSize: 128, Bits: 2, Mode: "affine"}, ""},
		{"null group", `{"quantization": {"group_size": null, "bits": 3}}`, &Quantization{Bits: 3, Mode: "affine"}, ""},
		{"mxfp4", `{"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}`, &Quantization{GroupSize: 32, Bits: 4, Mode: "mxfp4"}, ""},
		{"per-layer", `{"quantization": {"group_size": 64, "bits": 4,
			"model.layers.10.mlp.down_proj": {"group_size": null, "bits": 6, "mode": "affine"},
			"model.layers.2.mlp.down_proj": {"bits": 8},
			"lm_head": false, "model.embed_tokens": true}}`,
			&Quantization{GroupSize: 64, Bits: 4, Mode: "affine", Layers: []LayerQuantization{
				{Path: "model.embed_tokens", Quantize: true},
				{Path: "model.layers.2.mlp.down_proj", Quantize: true, Params: &LayerParams{Bits: 8}},
				{Path: "model.layers.10.mlp.down_proj", Quantize: true, Params: &LayerParams{Bits: 6, Mode: "affine"}},
				{Path: "lm_head"},
			}}, ""},
		{"bits 7", `{"quantization": {"group_size": 64, "bits": 7}}`, nil, "bits 7 is not supported"},
		{"group 48", `{"quantization": {"group_size": 48, "bits": 4}}`, nil, "group_size 48 is not supported"},
		{"bits string", `{"quantization": {"group_size": 64, "bits": "4"}}`, nil, "quantization.bits: is a string"},
		{"bits fraction", `{"quantization": {"group_size": 64, "bits": 4.5}}`, nil, "not a positive integer"},
		{"bits negative", `{"quantization": {"group_size": 64, "bits": -4}}`, nil, "not a positive integer"},
		{"bits huge", `{"quantization": {"group_size": 64, "bits": 1e300}}`, nil, "not a positive integer"},
		{"missing group", `{"quantization": {"bits": 4}}`, nil, `missing "group_size"`},
		{"empty mode", `{"quantization_config": {"group_size": 64, "bits": 2, "mode": ""}}`, nil, `quantization_config.mode: is empty`},
		{"mode", `{"quantization": {"group_size": 64, "bits": 4, "mode": "int4"}}`, nil, `unknown quantization mode "int4"`},
		{"mode type", `{"quantization": {"group_size": 64, "bits": 4, "mode": 4}}`, nil, "quantization.mode: is a number"},
		{"mxfp4 group", `{"quantization": {"group_size": 64, "bits": 4, "mode": "mxfp4"}}`, nil, "mxfp4 quantization needs group_size 32"},
		{"array", `{"quantization": [64, 4]}`, nil, "is an array, want an object"},
		{"entry number", `{"quantization": {"group_size": 64, "bits": 4, "lm_head": 6}}`, nil, "quantization.lm_head: is a number"},
		{"entry key", `{"quantization": {"group_size": 64, "bits": 4, "lm_head": {"bitz": 6}}}`, nil, "quantization.lm_head.bitz: unknown key"},
		{"entry bits", `{"quantization": {"group_size": 64, "bits": 4, "lm_head": {"bits": 7}}}`, nil, "quantization.lm_head: bits 7"},
		{"empty path", `{"quantization": {"group_size": 64, "bits": 4, "": true}}`, nil, "empty module path"},
		{"awq", `{"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}`, nil, "awq checkpoints are not mlx-lm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg map[string]any
			if err := json.Unmarshal([]byte(tc.json), &cfg); err != nil {
				t.Fatal(err)
			}
			q, err := ParseQuantization(cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tc.want) {
				t.Fatalf("got %+v, want %+v", q, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	var cfg map[string]any
	json.Unmarshal([]byte(`{"quantization": {"group_size": 32, "bits": 4,
		"lm_head": {"group_size": null, "bits": 6, "mode": "affine"},
		"model.embed_tokens": false, "model.norm": true,
		"model.layers.0.mlp.up_proj": {"bits": 8, "group_size": 128}}}`), &cfg)
	q, err := ParseQuantization(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		hasScales bool
		want      Params
		quantized bool
	}{
		{"lm_head", false, Params{64, 6, "affine"}, true}, // null -> mode default 64, not the global 32
		{"model.embed_tokens", true, Params{}, false},
		{"model.norm", false, Params{32, 4, "affine"}, true},
		{"model.layers.0.mlp.up_proj", true, Params{128, 8, "affine"}, true},
		{"model.layers.0.mlp.down_proj", true, Params{32, 4, "affine"}, true},
		{"model.layers.0.mlp.down_proj", false, Params{}, false},
	}
	for _, tc := range tests {
		got, ok := q.Lookup(tc.path, tc.hasScales)
		if got != tc.want || ok != tc.quantized {
			t.Errorf("Lookup(%q, %v) = %+v, %v; want %+v, %v", tc.path, tc.hasScales, got, ok, tc.want, tc.quantized)
		}
	}
}

func TestQuantizable(t *testing.T) {
	tests := []struct {
		name  string
		shape []int64
		gs    int
		want  bool
	}{
		{"token_embd.weight", []int64{4096, 256}, 64, true},
		{"output.weight", []int64{4096, 256}, 64, true},
		{"blk.0.attn_q.weight", []int64{256, 256}, 128, true},
		{"blk.11.ffn_down.weight", []int64{256, 768}, 64, true},
		{"blk.3.attn_v.weight", []int64{128, 896}, 64, true}, // 896 = 14*64 (Qwen2.5-0.5B hidden size)
		{"blk.3.attn_v.weight", []int64{128, 900}, 64, false},
		{"blk.0.attn_norm.weight", []int64{256}, 64, false},
		{"output_norm.weight", []int64{256}, 32, false},
		{"blk.0.attn_q.bias", []int64{256}, 32, false},
		{"blk.0.ffn_up.weight", []int64{768}, 32, false},
		{"rope_freqs.weight", []int64{16, 64}, 32, false},
		{"blk.0.ffn_up.weight", []int64{768, 0}, 32, false},
	}
	for _, tc := range tests {
		if got := Quantizable(tc.name, tc.shape, tc.gs); got != tc.want {
			t.Errorf("Quantizable(%q, %v, %d) = %v, want %v", tc.name, tc.shape, tc.gs, got, tc.want)
		}
	}
}

// synthModel builds a small llama model with bf16 weights; the tensors
// Quantizable selects are quantized with the given per-module bits (g32,
// BF16 scales) through quantize.AffineQuantizeRow.
func synthModel(t *testing.T, bitsFor func(hfPath string) int) (*graph.Model, *Quantization) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	p := graph.Params{Layers: 2, Embedding: 64, FFN: 96, Heads: 4, KVHeads: 2, HeadDim: 16, RopeBase: 10000,
		RopeType: "norm", RopeDims: 16, RMSEps: 1e-5, ContextLength: 128, VocabSize: 128, TorchDType: "bfloat16"}
	m := &graph.Model{Format: graph.FormatHF, Arch: "llama", Params: p}
	add := func(name string, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, 2*n)
		for i := int64(0); i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], quantize.FP32ToBF16(float32(rng.NormFloat64()*0.05)))
		}
		m.Tensors = append(m.Tensors, &graph.Tensor{Name: name, Shape: shape, Type: graph.BF16, Data: bytes.NewReader(b)})
	}
	add("token_embd.weight", 128, 64)
	for l := 0; l < 2; l++ {
		pre := fmt.Sprintf("blk.%d.", l)
		add(pre+"attn_norm.weight", 64)
		add(pre+"attn_q.weight", 64, 64)
		add(pre+"attn_k.weight", 32, 64)
		add(pre+"attn_v.weight", 32, 64)
		add(pre+"attn_output.weight", 64, 64)
		add(pre+"ffn_norm.weight", 64)
		add(pre+"ffn_gate.weight", 96, 64)
		add(pre+"ffn_up.weight", 96, 64)
		add(pre+"ffn_down.weight", 64, 96)
	}
	add("output_norm.weight", 64)
	add("output.weight", 128, 64)
	q := &Quantization{GroupSize: 32, Bits: 4, Mode: ModeAffine}
	for _, tt := range m.Tensors {
		if !Quantizable(tt.Name, tt.Shape, 32) {
			continue
		}
		hfName, _ := arch.Llama.HFName(tt.Name, true)
		base := strings.TrimSuffix(hfName, ".weight")
		bits := bitsFor(base)
		if bits != 4 {
			q.Layers = append(q.Layers, LayerQuantization{Path: base, Quantize: true, Params: &LayerParams{GroupSize: 32, Bits: bits, Mode: ModeAffine}})
		}
		ap := quantize.AffineParams{Bits: bits, GroupSize: 32}
		rows, cols := int(tt.Rows()), int(tt.RowLen())
		src, _ := graph.ReadAll(tt.Data)
		words := quantize.AffinePackedWords(cols, bits)
		packed := make([]byte, 0, 4*rows*words)
		scales := make([]byte, rows*cols/32*2)
		biases := make([]byte, len(scales))
		pw := make([]uint32, words)
		row := make([]float32, cols)
		for r := 0; r < rows; r++ {
			for j := range row {
				row[j] = quantize.BF16ToFP32(binary.LittleEndian.Uint16(src[2*(r*cols+j):]))
			}
			sb := cols / 32 * 2
			if err := quantize.AffineQuantizeRow(pw, scales[r*sb:(r+1)*sb], biases[r*sb:(r+1)*sb], row, ap, graph.BF16); err != nil {
				t.Fatal(err)
			}
			for _, w := range pw {
				packed = binary.LittleEndian.AppendUint32(packed, w)
			}
		}
		tt.Type = graph.MLXAffine
		tt.Data = bytes.NewReader(packed)
		tt.Affine = &graph.Affine{Bits: bits, GroupSize: 32, ScaleType: graph.BF16, Scales: bytes.NewReader(scales), Biases: bytes.NewReader(biases)}
	}
	m.Files = map[string][]byte{"generation_config.json": []byte(`{"bos_token_id": 1}`)}
	return m, q
}

func sameTensors(t *testing.T, got, want *graph.Model) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		if g == nil {
			t.Fatalf("tensor %s missing", w.Name)
		}
		if g.Type != w.Type || !slices.Equal(g.Shape, w.Shape) {
			t.Fatalf("%s: %v %v, want %v %v", w.Name, g.Type, g.Shape, w.Type, w.Shape)
		}
		eq := func(what string, a, b graph.Source) {
			x, err := graph.ReadAll(a)
			if err != nil {
				t.Fatal(err)
			}
			y, _ := graph.ReadAll(b)
			if !bytes.Equal(x, y) {
				t.Fatalf("%s %s: bytes differ", w.Name, what)
			}
		}
		eq("data", g.Data, w.Data)
		if w.Affine != nil {
			ga, wa := g.Affine, w.Affine
			if ga == nil || ga.Bits != wa.Bits || ga.GroupSize != wa.GroupSize || ga.ScaleType != wa.ScaleType {
				t.Fatalf("%s: affine %+v, want %+v", w.Name, ga, wa)
			}
			eq("scales", ga.Scales, wa.Scales)
			eq("biases", ga.Biases, wa.Biases)
		}
	}
}

// TestWriteReadRoundTrip writes a synthetic mixed-precision model (4-bit,
// 6-bit for v_proj/down_proj of layer 0 and lm_head, 8-bit embeddings),
// reads it back and compares every tensor; with a small shard limit it
// checks the sharded layout too.
func TestWriteReadRoundTrip(t *testing.T) {
	bitsFor := func(p string) int {
		switch {
		case p == "lm_head", strings.HasPrefix(p, "model.layers.0.") && (strings.HasSuffix(p, "v_proj") || strings.HasSuffix(p, "down_proj")):
			return 6
		case p == "model.embed_tokens":
			return 8
		}
		return 4
	}
	for _, shard := range []int64{0, 20000} {
		t.Run(fmt.Sprintf("shard%d", shard), func(t *testing.T) {
			m, q := synthModel(t, bitsFor)
			dir := t.TempDir()
			opt := WriteOptions{MaxShardBytes: shard, Workers: 2}
			if err := WriteDir(dir, m, q, opt); err != nil {
				t.Fatal(err)
			}
			if !IsMLXDir(dir) {
				t.Fatal("IsMLXDir = false for a written directory")
			}
			got, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			sameTensors(t, got, m)
			if got.Arch != "llama" || got.Params.Layers != 2 || got.Params.Tied || got.Params.VocabSize != 128 {
				t.Errorf("params %s %+v", got.Arch, got.Params)
			}
			if string(got.Files["generation_config.json"]) != `{"bos_token_id": 1}` {
				t.Errorf("generation_config.json not carried over: %q", got.Files["generation_config.json"])
			}
			gq, err := ParseQuantization(got.Config)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gq, q) {
				t.Errorf("quantization read back %+v, want %+v", gq, q)
			}
			idx, err := safetensors.ReadIndex(filepath.Join(dir, IndexName))
			if err != nil {
				t.Fatal(err)
			}
			shards := map[string]bool{}
			for _, f := range idx.WeightMap {
				shards[f] = true
			}
			if shard == 0 && (len(shards) != 1 || !shards["model.safetensors"]) {
				t.Errorf("shards %v, want model.safetensors", shards)
			}
			if shard > 0 && (len(shards) < 3 || !shards[fmt.Sprintf("model-00001-of-%05d.safetensors", len(shards))]) {
				t.Errorf("shards %v", shards)
			}
			// total_parameters counts logical elements: 2*128*64 + 2 layers.
			perLayer := int64(64*64*2 + 32*64*2 + 96*64*3 + 64*2)
			if want := float64(2*128*64 + 2*perLayer + 64); idx.Metadata["total_parameters"] != want {
				t.Errorf("total_parameters %v, want %v", idx.Metadata["total_parameters"], want)
			}
			// Rewriting without Overwrite fails; with it, a rewrite into
			// one shard removes the stale shards.
			if err := WriteDir(dir, m, q, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("rewrite without Overwrite: %v", err)
			}
			m2, _ := synthModel(t, bitsFor)
			if err := WriteDir(dir, m2, q, WriteOptions{Overwrite: true}); err != nil {
				t.Fatal(err)
			}
			matches, _ := filepath.Glob(filepath.Join(dir, "model*.safetensors"))
			if len(matches) != 1 {
				t.Errorf("after overwrite: %v", matches)
			}
		})
	}
}

// TestReadRealMLXFiles reads the MLX-written files of testdata/real/mlx:
// "__metadata__": null, unpadded headers, data out of key order, scalar
// tensors.
func TestReadRealMLXFiles(t *testing.T) {
	m, err := ReadFile(testref.Local(t, "real", "mlx", "dpo-adapters-qwen2.5-0.5b-4bit", "adapters.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Tensors) != 8 || len(m.Metadata) != 0 {
		t.Fatalf("%d tensors, metadata %v", len(m.Tensors), m.Metadata)
	}
	a := m.Tensor("model.layers.22.self_attn.q_proj.lora_a")
	if a == nil || a.Type != graph.F32 || !slices.Equal(a.Shape, []int64{896, 8}) {
		t.Fatalf("lora_a: %+v", a)
	}
	vb := m.Tensor("model.layers.23.self_attn.v_proj.lora_b")
	if vb == nil || !slices.Equal(vb.Shape, []int64{8, 128}) || vb.Data.Size() != 8*128*4 {
		t.Fatalf("v lora_b: %+v", vb)
	}

	m2, err := ReadFile(testref.Local(t, "real", "mlx", "mlx-swift-lm-fixture", "case_01_greedy.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	// testdata/real/README.md says 11 string values; the header holds 10
	// (acceptLens ... userPrompt).
	if len(m2.Metadata) != 10 {
		t.Errorf("%d metadata entries, want 10", len(m2.Metadata))
	}
	if v, ok := m2.Meta("prompt"); !ok || !strings.Contains(v.(string), "\n") {
		t.Errorf("prompt metadata %q", v)
	}
	for _, c := range []struct {
		name string
		typ  graph.Type
	}{{"inputs/temperature", graph.F32}, {"outputs/acceptance_rate", graph.F32}, {"outputs/num_rounds", graph.I32}} {
		s := m2.Tensor(c.name)
		if s == nil || s.Type != c.typ || len(s.Shape) != 0 || s.Elements() != 1 || s.Data.Size() != 4 {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
}

// writeST writes a safetensors file of (name, dtype, shape) with zero data.
func writeST(t *testing.T, path string, ts []safetensors.PlanTensor) {
	t.Helper()
	err := safetensors.WriteFile(path, ts, func(i int) (graph.Source, error) {
		n, _ := arrayBytes(ts[i].DType, ts[i].Shape)
		return bytes.NewReader(make([]byte, n)), nil
	}, safetensors.PlanOptions{Metadata: map[string]string{"format": "mlx"}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBadInput: malformed directories give errors naming the file and the
// problem.
func TestBadInput(t *testing.T) {
	base, err := os.ReadFile(testref.Local(t, "mlx", "config-int4-g64.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfgWith := func(old, new string) string { return strings.Replace(string(base), old, new, 2) }
	st := func(name string, dt graph.Type, shape ...int64) safetensors.PlanTensor {
		return safetensors.PlanTensor{Name: name, DType: dt, Shape: shape}
	}
	good := []safetensors.PlanTensor{
		st("model.embed_tokens.weight", graph.U32, 4096, 32),
		st("model.embed_tokens.scales", graph.BF16, 4096, 4),
		st("model.embed_tokens.biases", graph.BF16, 4096, 4),
		st("model.norm.weight", graph.BF16, 256),
	}
	tests := []struct {
		name    string
		config  string
		tensors []safetensors.PlanTensor
		file    string // the file the error must name
		want    string
	}{
		{"bits 7", cfgWith(`"bits": 4`, `"bits": 7`), good, ConfigName, "bits 7 is not supported"},
		{"group 48", cfgWith(`"group_size": 64`, `"group_size": 48`), good, ConfigName, "group_size 48 is not supported"},
		{"bad json", string(base[:200]), good, ConfigName, "JSON"},
		{"missing scales", string(base), []safetensors.PlanTensor{good[0], good[2], good[3]}, "model.safetensors", `"model.embed_tokens.scales"`},
		{"missing scales and biases", string(base), []safetensors.PlanTensor{good[0], good[3]}, "model.safetensors", `"model.embed_tokens.weight" is packed U32 but "model.embed_tokens.scales" is missing`},
		{"missing biases", string(base), []safetensors.PlanTensor{good[0], good[1], good[3]}, "model.safetensors", "needs biases"},
		{"scales shape", string(base), []safetensors.PlanTensor{good[0], st("model.embed_tokens.scales", graph.BF16, 4096, 5), st("model.embed_tokens.biases", graph.BF16, 4096, 5), good[3]}, "model.safetensors", "does not match"},
		{"scales rows", string(base), []safetensors.PlanTensor{good[0], st("model.embed_tokens.scales", graph.BF16, 4095, 4), st("model.embed_tokens.biases", graph.BF16, 4095, 4), good[3]}, "model.safetensors", "does not match"},
		{"biases dtype", string(base), []safetensors.PlanTensor{good[0], good[1], st("model.embed_tokens.biases", graph.F16, 4096, 4), good[3]}, "model.safetensors", "is F16"},
		{"weight dtype", string(base), []safetensors.PlanTensor{st("model.embed_tokens.weight", graph.I32, 4096, 32), good[1], good[2], good[3]}, "model.safetensors", "want U32"},
		{"scales dtype", string(base), []safetensors.PlanTensor{good[0], st("model.embed_tokens.scales", graph.I32, 4096, 4), st("model.embed_tokens.biases", graph.I32, 4096, 4), good[3]}, "model.safetensors", "want BF16, F16 or F32"},
		{"not quantized config", cfgWith(`"quantization`, `"x_quantization`), good, "model.safetensors", `no "quantization" entry`},
		{"layer says no", cfgWith(`"mode": "affine"`, `"mode": "affine", "model.embed_tokens": false`), good, "model.safetensors", "marks \"model.embed_tokens\" as not quantized"},
		{"mode", cfgWith(`"mode": "affine"`, `"mode": "affine", "model.embed_tokens": {"mode": "nvfp4"}`), good, "model.safetensors", "uses nvfp4 quantization"},
		{"mxfp4 with biases", cfgWith(`"mode": "affine"`, `"mode": "affine", "model.embed_tokens": {"mode": "mxfp4"}`), good, "model.safetensors", "has biases"},
		{"mxfp4 scales dtype", cfgWith(`"mode": "affine"`, `"mode": "affine", "model.embed_tokens": {"mode": "mxfp4"}`),
			[]safetensors.PlanTensor{st("model.embed_tokens.weight", graph.U32, 4096, 32), st("model.embed_tokens.scales", graph.BF16, 4096, 8), good[3]}, "model.safetensors", "want U8"},
		{"mxfp4 scales shape", cfgWith(`"mode": "affine"`, `"mode": "affine", "model.embed_tokens": {"mode": "mxfp4"}`),
			[]safetensors.PlanTensor{st("model.embed_tokens.weight", graph.U32, 4096, 32), st("model.embed_tokens.scales", graph.U8, 4096, 4), good[3]}, "model.safetensors", "4 words per group"},
		{"untied without lm_head", string(base), good, ConfigName, "no lm_head.weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigName), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			writeST(t, filepath.Join(dir, "model.safetensors"), tc.tensors)
			m, err := ReadDirOptions(dir, ReadOptions{SkipTokenizer: true})
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Fatalf("error %q, want %q naming %s", err, tc.want, tc.file)
			}
		})
	}
}

// FuzzConfig parses arbitrary config.json bytes as an mlx-lm config: no
// panic; an accepted quantization object survives ConfigJSON's output.
func FuzzConfig(f *testing.F) {
	for _, name := range []string{"config-int4-g64.json", "config-mixed-4-6.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "mlx", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"quantization": {"group_size": null, "bits": 8, "lm_head": true, "x": {"quantize_input": true, "mode": "nvfp4", "group_size": 16}}}`))
	f.Add([]byte(`{"quantization_config": {"quant_method": "gptq"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		var cfg map[string]any
		if json.Unmarshal(data, &cfg) != nil {
			return
		}
		q, err := ParseQuantization(cfg)
		if err != nil || q == nil {
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		out, err := ConfigJSON(&graph.Model{Config: map[string]any{"model_type": "llama"}}, q)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("ConfigJSON wrote invalid JSON: %v\n%s", err, out)
		}
		q2, err := ParseQuantization(back)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip: %+v != %+v", q, q2)
		}
	})
}
