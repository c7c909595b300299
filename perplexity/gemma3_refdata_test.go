//go:build refdata

package perplexity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// The whole-text Gemma 3 runs (seconds to tens of seconds each on two
// cores).

// TestGemma3PerplexityHFFull: all chunks of kjv_eval.txt at ctx 128 and
// 256 on the HF checkpoint, within 0.01% of transformers float32.
func TestGemma3PerplexityHFFull(t *testing.T) {
	checkGemma3HF(t, 128, 0)
	checkGemma3HF(t, 256, 0)
}

// TestGemma3PerplexityGGUF: the converter's bf16 GGUF, and quantbridge's
// quantization of it to each type llama-quantize was run with (which must
// be llama-quantize's file, by sha256), against llama-perplexity -c 128
// -b 128 (testdata/arch/reference.json, every type with a figure there):
// the final PPL, its ± and every running value as llama-perplexity prints
// them (llama.cpp's arithmetic is emulated, the sliding layers' own rope
// table included).
func TestGemma3PerplexityGGUF(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Models map[string]*unseenModelRef `json:"models"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/arch/reference.json: %v", err)
	}
	ref := r.Models["gemma3-tiny"]
	if ref == nil {
		t.Fatal("testdata/arch/reference.json: no gemma3-tiny entry")
	}
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// llama-perplexity -f drops one trailing newline (common/arg.cpp).
	s := strings.TrimSuffix(string(text), "\n")
	dir := t.TempDir()
	n := 0
	for typ, g := range ref.GGUF {
		want := g.LlamaPerplexity
		if want == nil {
			continue
		}
		n++
		t.Run(typ, func(t *testing.T) {
			path := testref.Local(t, "arch", "gemma3-tiny.bf16.gguf")
			if typ != "bf16" {
				ft, err := convert.ParseFileType(typ)
				if err != nil {
					t.Fatal(err)
				}
				path = filepath.Join(dir, typ+".gguf")
				if _, err := convert.Convert(context.Background(), testref.Local(t, "arch", "gemma3-tiny.bf16.gguf"), path, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != g.SHA256 {
					t.Errorf("quantbridge's %s file is not llama-quantize's (sha256); the figures below are for quantbridge's file", typ)
				}
			}
			m, err := formats.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tok, err := tokenizer.NewForModel(m)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Evaluate(context.Background(), m, tok, s, Options{Ctx: 128, Batch: 128, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: PPL %.4f ± %.5f, llama-perplexity %.4f ± %.5f", typ, res.PPL, res.PPLStderr, want.PPL, want.Stderr)
			if !samePrinted(res.PPL, want.PPL, 4) || !samePrinted(res.PPLStderr, want.Stderr, 5) {
				t.Errorf("%s: PPL = %.4f +/- %.5f, llama-perplexity %.4f +/- %.5f", typ, res.PPL, res.PPLStderr, want.PPL, want.Stderr)
			}
			if len(res.Running) != len(want.Running) {
				t.Errorf("%s: %d running values, llama-perplexity printed %d", typ, len(res.Running), len(want.Running))
			}
			for i := 0; i < len(res.Running) && i < len(want.Running); i++ {
				if !samePrinted(res.Running[i], want.Running[i], 4) {
					t.Errorf("%s: running value %d: %.4f, llama-perplexity %.4f", typ, i+1, res.Running[i], want.Running[i])
				}
			}
		})
	}
	if n < 2 {
		t.Fatalf("testdata/arch/reference.json: llama-perplexity figures for %d gemma3-tiny files, want bf16 and quantized ones", n)
	}
}
