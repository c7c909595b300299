//go:build refdata

package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Every llama.cpp-written v2/v3 GGUF of the reference set re-writes byte
// for byte.
func TestRewriteAllReference(t *testing.T) {
	var files []string
	for _, dir := range []string{"llama.cpp", filepath.Join("real", "gguf")} {
		m, err := filepath.Glob(filepath.Join(testref.Shared(t, dir), "*.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) != 20 {
		t.Fatalf("found %d reference GGUF files, want 20", len(files))
	}
	n := 0
	for _, p := range files {
		if filepath.Base(p) == "stories260K-f32-ggufv1.gguf" {
			continue // v1: see TestReadV1
		}
		n++
		t.Run(filepath.Base(p), func(t *testing.T) { checkRewrite(t, p) })
	}
	if n != 19 {
		t.Errorf("rewrote %d files, want 19", n)
	}
}

// The v1 file reads (32-bit counts, lengths and dimensions), its tensors
// match the v2 file's F32 norms byte for byte, and it re-writes as a v3
// file that reads back with identical KVs, infos and data.
func TestReadV1(t *testing.T) {
	v1, err := Open(testref.Shared(t, "real", "gguf", "stories260K-f32-ggufv1.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	if v1.Version != 1 || len(v1.KV) != 18 || len(v1.Tensors) != 48 || v1.DataOffset != 11456 {
		t.Fatalf("v%d %d KVs %d tensors data@%d", v1.Version, len(v1.KV), len(v1.Tensors), v1.DataOffset)
	}
	v2, err := Open(testref.Shared(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	for i, ti := range v1.Tensors {
		t2 := v2.Tensors[i]
		if ti.Name != t2.Name || !slices.Equal(ti.Shape, t2.Shape) {
			t.Fatalf("tensor %d: v1 %q %v, v2 %q %v", i, ti.Name, ti.Shape, t2.Name, t2.Shape)
		}
		if ti.Type != graph.F32 || ti.Size != 4*elements(ti.Shape) {
			t.Errorf("v1 tensor %q type %v size %d", ti.Name, ti.Type, ti.Size)
		}
		if t2.Type == graph.F32 {
			a, _ := graph.ReadAll(v1.TensorReader(i))
			b, _ := graph.ReadAll(v2.TensorReader(i))
			if !bytes.Equal(a, b) {
				t.Errorf("F32 tensor %q differs between v1 and v2 files", ti.Name)
			}
		}
	}
	var out bytes.Buffer
	if err := Rewrite(&out, v1); err != nil {
		t.Fatal(err)
	}
	v3, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != 3 || len(v3.KV) != len(v1.KV) || len(v3.Tensors) != len(v1.Tensors) {
		t.Fatalf("rewritten: v%d %d KVs %d tensors", v3.Version, len(v3.KV), len(v3.Tensors))
	}
	for i := range v1.KV {
		if v1.KV[i].Key != v3.KV[i].Key || typeName(v1.KV[i].Value) != typeName(v3.KV[i].Value) {
			t.Errorf("KV %d: %q %s vs %q %s", i, v1.KV[i].Key, typeName(v1.KV[i].Value), v3.KV[i].Key, typeName(v3.KV[i].Value))
		}
	}
	for i := range v1.Tensors {
		a, _ := graph.ReadAll(v1.TensorReader(i))
		b, _ := graph.ReadAll(v3.TensorReader(i))
		if !bytes.Equal(a, b) || v1.Tensors[i].Name != v3.Tensors[i].Name {
			t.Errorf("tensor %d %q differs after v1->v3", i, v1.Tensors[i].Name)
		}
	}
	raw, _ := os.ReadFile(testref.Shared(t, "real", "gguf", "stories260K-f32-ggufv1.gguf"))
	if !bytes.Equal(out.Bytes()[v3.DataOffset:], raw[v1.DataOffset:]) {
		t.Errorf("v3 data section differs from the v1 data section")
	}
}

func elements(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// Params and tokenizers of the other reference files (values from
// testdata/real/README.md's header dumps).
func TestReferenceModels(t *testing.T) {
	open := func(t *testing.T, elem ...string) *graph.Model {
		m, err := ReadModel(testref.Shared(t, elem...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	t.Run("llama-2-tiny-random-f16", func(t *testing.T) {
		m := open(t, "real", "gguf", "llama-2-tiny-random-f16.gguf")
		want := graph.Params{Layers: 1, Embedding: 8, FFN: 32, Heads: 2, KVHeads: 2, HeadDim: 4, RopeBase: 10000,
			RopeType: "norm", RopeDims: 4, RMSEps: m.Params.RMSEps, ContextLength: 4096, VocabSize: 32000}
		if !reflect.DeepEqual(m.Params, want) {
			t.Errorf("params %+v\nwant   %+v", m.Params, want)
		}
		tok := m.Tokenizer
		if len(tok.Tokens) != 32000 || tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || !tok.AddBOS || len(m.Tensors) != 12 {
			t.Errorf("tokenizer: %d tokens bos %d eos %d unk %d addbos %v; %d tensors", len(tok.Tokens), tok.BOS, tok.EOS, tok.UNK, tok.AddBOS, len(m.Tensors))
		}
	})
	t.Run("bert-bge", func(t *testing.T) {
		m := open(t, "real", "gguf", "ggml-vocab-bert-bge.gguf")
		tok := m.Tokenizer
		if tok.Model != "bert" || tok.Pre != "bert-bge" || len(tok.Tokens) != 30522 || tok.SEP != 102 || tok.CLS != 101 ||
			tok.MASK != 103 || tok.PAD != 0 || tok.UNK != 100 || !tok.AddBOS || m.Params.RopeType != "neox" {
			t.Errorf("bert tokenizer %+v rope %q", *tok, m.Params.RopeType)
		}
		if v, _ := m.Meta("bert.attention.causal"); v != false {
			t.Errorf("bert.attention.causal = %v", v)
		}
	})
	t.Run("phi-3", func(t *testing.T) {
		m := open(t, "real", "gguf", "ggml-vocab-phi-3.gguf")
		tok := m.Tokenizer
		if tok.Model != "llama" || len(tok.ChatTemplate) != 269 || tok.EOS != 32000 || tok.PAD != 32000 || m.Params.RopeType != "neox" {
			t.Errorf("phi-3 tokenizer: model %q template %d bytes eos %d pad %d rope %q", tok.Model, len(tok.ChatTemplate), tok.EOS, tok.PAD, m.Params.RopeType)
		}
	})
	t.Run("kjv bf16", func(t *testing.T) {
		m := open(t, "llama.cpp", "kjv-llama.bf16.gguf")
		want := graph.Params{Layers: 6, Embedding: 256, FFN: 768, Heads: 8, KVHeads: 4, HeadDim: 32, RopeBase: 10000,
			RopeType: "norm", RopeDims: 32, RMSEps: 1e-5, ContextLength: 512, VocabSize: 4096}
		if !reflect.DeepEqual(m.Params, want) {
			t.Errorf("params %+v\nwant   %+v", m.Params, want)
		}
	})
}
