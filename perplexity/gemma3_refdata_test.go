//go:build refdata

package perplexity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/internal/testref"
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
// (testdata/arch/reference.json): final PPL within 0.1%, ± within 1%,
// running values within 0.1%.
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
	if ref == nil || len(ref.GGUF) == 0 {
		t.Fatal("testdata/arch/reference.json: no gemma3-tiny entry")
	}
	dir := t.TempDir()
	for typ, g := range ref.GGUF {
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
			checkUnseenGGUF(t, "gemma3-tiny", typ, m, ref)
		})
	}
}
