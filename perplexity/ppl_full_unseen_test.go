//go:build refdata

package perplexity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// The whole-text versions of ppl_unseen_test.go's tests (tens of seconds
// each on two cores), under -tags refdata with the other long runs.

// TestUnseenPerplexityHFFull: all chunks of kjv_eval.txt at ctx 128 and
// 256 on the HF checkpoints, within 0.01% of transformers.
func TestUnseenPerplexityHFFull(t *testing.T) {
	for _, name := range unseenModels {
		checkUnseenHF(t, name, 128, 0)
		checkUnseenHF(t, name, 256, 0)
	}
}

// TestUnseenPerplexityQuantized quantizes the converter's bf16 GGUF with
// quantbridge to each type llama-quantize was run with (the file must be
// llama-quantize's, by sha256) and compares the perplexity with
// llama-perplexity -c 128 on llama-quantize's file.
func TestUnseenPerplexityQuantized(t *testing.T) {
	dir := t.TempDir()
	for _, name := range unseenModels {
		ref := loadUnseenRef(t, name)
		types := []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"}
		if name == "qwen2-bpe-tied" { // the converter's f16 file was made for qwen2 only
			types = append([]string{"f16"}, types...)
		}
		for _, typ := range types {
			t.Run(name+"/"+typ, func(t *testing.T) {
				g, ok := ref.GGUF[typ]
				if !ok {
					t.Fatalf("reference.json: no %s %s", name, typ)
				}
				out := filepath.Join(dir, name+"."+typ+".gguf")
				in := testref.Local(t, "unseen", name+".bf16.gguf")
				ftName := typ
				if typ == "f16" { // the converter's --outtype f16, from the HF checkpoint
					in, ftName = testref.Local(t, "unseen", name), "F16"
				}
				ft, err := convert.ParseFileType(ftName)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := convert.Convert(context.Background(), in, out, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != g.SHA256 {
					t.Errorf("quantbridge's %s file is not llama.cpp's (sha256); the figures below are for quantbridge's file", typ)
				}
				m, err := gguf.ReadModel(out)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				checkUnseenGGUF(t, name, typ, m, ref)
			})
		}
	}
}
