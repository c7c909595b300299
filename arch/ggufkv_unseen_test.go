package arch_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// unseenFixtures are the checkpoints of testdata/unseen (see its README):
// each HF directory and the GGUF llama.cpp's convert_hf_to_gguf.py made of
// it with --outtype bf16.
var unseenFixtures = []string{"qwen2-bpe-tied", "llama3-bpe-tied"}

// TestUnseenModelKVMatchesConverter: ModelKV of each HF checkpoint equals,
// key for key, type for type and value for value, the metadata the
// converter wrote.
func TestUnseenModelKVMatchesConverter(t *testing.T) {
	for _, name := range unseenFixtures {
		t.Run(name, func(t *testing.T) {
			ref, err := gguf.Open(testref.Local(t, "unseen", name+".bf16.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			m, err := hf.ReadDir(testref.Local(t, "unseen", name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			kv, err := arch.ModelKV(m, 32) // MOSTLY_BF16
			if err != nil {
				t.Fatal(err)
			}
			unseenCompareKV(t, kv, ref.KV)
		})
	}
}

// TestUnseenTensorsMatchConverter: the HF checkpoint's tensors, under
// their canonical names, are the converter's tensors with the same shapes
// (the converter adds rope_freqs.weight for llama3 rope scaling and no
// output.weight for tied embeddings).
func TestUnseenTensorsMatchConverter(t *testing.T) {
	for _, name := range unseenFixtures {
		t.Run(name, func(t *testing.T) {
			ref, err := gguf.Open(testref.Local(t, "unseen", name+".bf16.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			m, err := hf.ReadDir(testref.Local(t, "unseen", name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			want := map[string][]int64{}
			for _, ti := range ref.Tensors {
				want[ti.Name] = ti.Shape
			}
			if _, ok := want["output.weight"]; ok {
				t.Errorf("converter wrote output.weight for a tied checkpoint")
			}
			_, hasFreqs := want["rope_freqs.weight"]
			if hasFreqs != (name == "llama3-bpe-tied") {
				t.Errorf("rope_freqs.weight present %v", hasFreqs)
			}
			delete(want, "rope_freqs.weight")
			got := map[string][]int64{}
			for _, tn := range m.Tensors {
				got[tn.Name] = tn.Shape
				if tn.Type != graph.BF16 {
					t.Errorf("%s: HF tensor type %v, want BF16", tn.Name, tn.Type)
				}
			}
			if !reflect.DeepEqual(got, want) {
				for k, v := range want {
					if !reflect.DeepEqual(got[k], v) {
						t.Errorf("%s: HF shape %v, converter %v", k, got[k], v)
					}
				}
				for k, v := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("%s %v: not in the converter's GGUF", k, v)
					}
				}
			}
		})
	}
}

// TestUnseenTokenizerMatchesConverter: the vocabulary formats/hf reads
// from tokenizer.json/tokenizer_config.json equals the one the converter
// wrote (pieces, types, merges, pre-tokenizer, special ids, add flags), and
// the GGUF reader reads the converter's metadata back to the same.
func TestUnseenTokenizerMatchesConverter(t *testing.T) {
	wantPre := map[string]string{"qwen2-bpe-tied": "qwen2", "llama3-bpe-tied": "llama-bpe"}
	for _, name := range unseenFixtures {
		t.Run(name, func(t *testing.T) {
			g, err := gguf.ReadModel(testref.Local(t, "unseen", name+".bf16.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			m, err := hf.ReadDir(testref.Local(t, "unseen", name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			a, b := m.Tokenizer, g.Tokenizer
			if a == nil || b == nil {
				t.Fatalf("tokenizer: HF %v, GGUF %v", a != nil, b != nil)
			}
			if b.Model != graph.TokenizerBPE || b.Pre != wantPre[name] {
				t.Errorf("GGUF tokenizer %q/%q, want gpt2/%q", b.Model, b.Pre, wantPre[name])
			}
			check := func(what string, x, y any) {
				t.Helper()
				if !reflect.DeepEqual(x, y) {
					t.Errorf("%s: HF %s, converter %s", what, unseenShort(x), unseenShort(y))
				}
			}
			check("model", a.Model, b.Model)
			check("pre", a.Pre, b.Pre)
			check("tokens", a.Tokens, b.Tokens)
			check("types", a.Types, b.Types)
			check("merges", a.Merges, b.Merges)
			check("bos", a.BOS, b.BOS)
			check("eos", a.EOS, b.EOS)
			check("pad", a.PAD, b.PAD)
			check("unk", a.UNK, b.UNK)
			check("add_bos", a.AddBOS, b.AddBOS)
			check("add_eos", a.AddEOS, b.AddEOS)
			check("chat_template", a.ChatTemplate, b.ChatTemplate)
		})
	}
}

func unseenCompareKV(t *testing.T, got, want []graph.KV) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			t.Errorf("KV %d: missing %q (%T)", i, want[i].Key, want[i].Value)
		case i >= len(want):
			t.Errorf("KV %d: extra %q (%T) = %s", i, got[i].Key, got[i].Value, unseenShort(got[i].Value))
		case got[i].Key != want[i].Key || fmt.Sprintf("%T", got[i].Value) != fmt.Sprintf("%T", want[i].Value):
			t.Errorf("KV %d: got %q (%T), want %q (%T)", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		case !reflect.DeepEqual(got[i].Value, want[i].Value):
			t.Errorf("KV %d %q: got %s, want %s", i, got[i].Key, unseenShort(got[i].Value), unseenShort(want[i].Value))
		}
	}
}

func unseenShort(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
