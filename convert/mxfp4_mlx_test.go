package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/perplexity"
	"github.com/quantbridge/quantbridge/quantize"
	"github.com/quantbridge/quantbridge/tokenizer"
)

func convertTo(t *testing.T, in, out string, target Target) {
	t.Helper()
	if _, err := Convert(context.Background(), in, out, Options{Jobs: 2, Target: target}); err != nil {
		t.Fatalf("convert %s -> %s: %v", in, out, err)
	}
}

func tensorBytes(t *testing.T, tt *graph.Tensor) []byte {
	t.Helper()
	b := make([]byte, tt.Data.Size())
	if _, err := tt.Data.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatalf("%s: %v", tt.Name, err)
	}
	return b
}

// stArray reads a named array of an MLX directory's model.safetensors.
func stArray(t *testing.T, f *safetensors.File, name string) []byte {
	t.Helper()
	i := f.Index(name)
	if i < 0 {
		t.Fatalf("no %s", name)
	}
	s := f.Section(i)
	b := make([]byte, s.Size())
	if _, err := s.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// TestMXFP4GGUFMLXRoundTrip: llama-quantize-identical MXFP4_MOE output of
// qwen3moe-tiny converted to MLX keeps every expert tensor as an mlx
// mxfp4 module (per-module config entry, U32 codes and U8 scales that
// MLX's own dequantization rule turns into ggml's values), and back to GGUF
// (no --type), MLX -> MLX and GGUF -> MLX --q-mode mxfp4 give the same
// bytes.
func TestMXFP4GGUFMLXRoundTrip(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.gguf")
	ft, _ := ParseFileType("MXFP4_MOE")
	convertTo(t, testref.Local(t, "arch", "qwen3moe-tiny.bf16.gguf"), q, GGUFTarget{FileType: ft})
	mdir := filepath.Join(dir, "mlx")
	convertTo(t, q, mdir, MLXTarget{})

	src, err := gguf.ReadModel(q)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfgb, err := os.ReadFile(filepath.Join(mdir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Quantization map[string]any }
	if err := json.Unmarshal(cfgb, &cfg); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.Open(filepath.Join(mdir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	for _, tt := range src.Tensors {
		if tt.Type != graph.MXFP4 {
			continue
		}
		n++
		blocks := tensorBytes(t, tt)
		// blk.L.ffn_X_exps.weight -> model.layers.L.mlp.switch_mlp.X_proj
		l := graph.LayerIndex(tt.Name)
		kind := strings.TrimSuffix(strings.TrimPrefix(tt.Name[strings.LastIndex(tt.Name[:len(tt.Name)-len(".weight")], ".")+1:], "ffn_"), "_exps.weight")
		path := "model.layers." + string(rune('0'+l)) + ".mlp.switch_mlp." + kind + "_proj"
		e, ok := cfg.Quantization[path].(map[string]any)
		if !ok || e["mode"] != "mxfp4" || e["group_size"] != 32.0 || e["bits"] != 4.0 {
			t.Errorf("%s: config entry %v, want mxfp4 32/4", path, cfg.Quantization[path])
		}
		codes, scales := stArray(t, st, path+".weight"), stArray(t, st, path+".scales")
		words := make([]uint32, len(codes)/4)
		for i := range words {
			words[i] = binary.LittleEndian.Uint32(codes[4*i:])
		}
		got, want := make([]float32, tt.Elements()), make([]float32, tt.Elements())
		if err := quantize.MLXFP4DequantizeRow(got, words, scales); err != nil {
			t.Fatal(err)
		}
		if err := quantize.DequantizeRow(want, blocks, graph.MXFP4); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: element %d: MLX %g, GGUF %g", tt.Name, i, got[i], want[i])
			}
		}
	}
	if n != 9 {
		t.Fatalf("%d MXFP4 tensors, want 9", n)
	}

	back := filepath.Join(dir, "back.gguf")
	convertTo(t, mdir, back, GGUFTarget{})
	bm, err := gguf.ReadModel(back)
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	for _, tt := range src.Tensors {
		if tt.Type != graph.MXFP4 {
			continue
		}
		bt := bm.Tensor(tt.Name)
		if bt == nil || bt.Type != graph.MXFP4 || !bytes.Equal(tensorBytes(t, bt), tensorBytes(t, tt)) {
			t.Errorf("%s: GGUF -> MLX -> GGUF changed the tensor", tt.Name)
		}
	}
	// --q-mode mxfp4 copies tensors that are MXFP4 already (MLX's
	// quantizer would clip groups whose largest code is below 6).
	mq := filepath.Join(dir, "mlxq")
	convertTo(t, q, mq, MLXTarget{Mode: "mxfp4"})
	qm, err := formats.Open(mq)
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	for _, tt := range src.Tensors {
		if tt.Type != graph.MXFP4 {
			continue
		}
		qt := qm.Tensor(tt.Name)
		if qt == nil || qt.Type != graph.MXFP4 || !bytes.Equal(tensorBytes(t, qt), tensorBytes(t, tt)) {
			t.Errorf("%s: --q-mode mxfp4 changed an MXFP4 tensor", tt.Name)
		}
	}
	m2 := filepath.Join(dir, "mlx2")
	convertTo(t, mdir, m2, MLXTarget{})
	a, _ := os.ReadFile(filepath.Join(mdir, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(m2, "model.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("MLX -> MLX changed model.safetensors")
	}
}

// TestMLXQModeMXFP4: --q-mode mxfp4 writes what MLX's CPU quantizer makes
// of each bf16 weight (quantize.MLXFP4QuantizeRow, checked against numpy
// vectors in package quantize), the config mlx-lm writes (global
// group_size 32, bits 4, mode mxfp4; the MoE routers affine 8-bit group
// 64 by qwen3_moe's quant_predicate), and the result evaluates like the
// same weights in GGUF: its perplexity (float32 forward, as MLX runs it)
// equals that of the GGUF file made from it with float32 activations.
func TestMLXQModeMXFP4(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "arch", "qwen3moe-tiny")
	mdir := filepath.Join(dir, "mlx")
	convertTo(t, hfDir, mdir, MLXTarget{Mode: "mxfp4"})
	cfgb, err := os.ReadFile(filepath.Join(mdir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Quantization map[string]any }
	if err := json.Unmarshal(cfgb, &cfg); err != nil {
		t.Fatal(err)
	}
	qz := cfg.Quantization
	if qz["mode"] != "mxfp4" || qz["group_size"] != 32.0 || qz["bits"] != 4.0 {
		t.Errorf("quantization %v", qz)
	}
	if r, ok := qz["model.layers.1.mlp.gate"].(map[string]any); !ok || r["bits"] != 8.0 || r["group_size"] != 64.0 || r["mode"] != nil {
		t.Errorf("router entry %v, want {group_size 64, bits 8}", qz["model.layers.1.mlp.gate"])
	}
	hf, err := formats.Open(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	st, err := safetensors.Open(filepath.Join(mdir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct{ canon, path string }{
		{"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj"},
		{"blk.2.ffn_down_exps.weight", "model.layers.2.mlp.switch_mlp.down_proj"},
		{"token_embd.weight", "model.embed_tokens"},
	} {
		src := hf.Tensor(c.canon)
		if src == nil || src.Type != graph.BF16 {
			t.Fatalf("%s: %v", c.canon, src)
		}
		f := make([]float32, src.Elements())
		if err := quantize.ToFloat32(f, tensorBytes(t, src), graph.BF16); err != nil {
			t.Fatal(err)
		}
		words := make([]uint32, len(f)/8)
		scales := make([]byte, len(f)/32)
		if err := quantize.MLXFP4QuantizeRow(words, scales, f, graph.BF16); err != nil {
			t.Fatal(err)
		}
		codes := make([]byte, 4*len(words))
		for i, w := range words {
			binary.LittleEndian.PutUint32(codes[4*i:], w)
		}
		if !bytes.Equal(stArray(t, st, c.path+".weight"), codes) || !bytes.Equal(stArray(t, st, c.path+".scales"), scales) {
			t.Errorf("%s: codes or scales differ from MLXFP4QuantizeRow", c.path)
		}
	}

	// Perplexity: the MLX directory and the GGUF file converted from it
	// (no --type: mxfp4 modules copied as MXFP4, the affine routers
	// dequantized to the auto type BF16, which holds their bf16 values)
	// hold the same weights and must give the same figure.
	back := filepath.Join(dir, "back.gguf")
	convertTo(t, mdir, back, GGUFTarget{})
	// ... and back to MLX: the same bytes (q/k rows permuted to GGUF's
	// rotary order and back as whole rows of blocks).
	m2 := filepath.Join(dir, "mlx2")
	convertTo(t, back, m2, MLXTarget{})
	st2, err := safetensors.Open(filepath.Join(m2, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	for _, name := range []string{"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.2.mlp.switch_mlp.up_proj"} {
		for _, part := range []string{".weight", ".scales"} {
			if !bytes.Equal(stArray(t, st, name+part), stArray(t, st2, name+part)) {
				t.Errorf("%s%s: MLX -> GGUF -> MLX changed the bytes", name, part)
			}
		}
	}
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ppl := func(path string) float64 {
		m, err := formats.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		tok, err := tokenizer.New(m.Tokenizer)
		if err != nil {
			t.Fatal(err)
		}
		res, err := perplexity.Evaluate(context.Background(), m, tok, strings.TrimSuffix(string(text), "\n"),
			perplexity.Options{Ctx: 128, Chunks: 8, Threads: 2, Activations: perplexity.ActivationsFloat32})
		if err != nil {
			t.Fatal(err)
		}
		return res.PPL
	}
	pm, pg := ppl(mdir), ppl(back)
	t.Logf("PPL MLX mxfp4 %.6f, GGUF MXFP4 %.6f", pm, pg)
	if math.IsNaN(pm) || pm <= 1 || pm != pg {
		t.Errorf("PPL MLX %v, GGUF %v: want equal", pm, pg)
	}
}
