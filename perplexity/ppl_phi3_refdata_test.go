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

// The whole-text versions of ppl_phi3_test.go's tests.

// TestPhi3PerplexityHFFull: all chunks at ctx 128 and 256 on the HF
// checkpoint, within 0.01% of transformers.
func TestPhi3PerplexityHFFull(t *testing.T) {
	ref := phi3Ref(t)
	for _, c := range []struct {
		n    int
		want unseenPPL
	}{{128, ref.TransformersFP32.Ctx128}, {256, ref.TransformersFP32.Ctx256}} {
		res, err := EvaluateTokens(context.Background(), phi3HF(t), phi3IDs(t), ref.AddBOS, ref.BOS, Options{Ctx: c.n, Batch: c.n, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		rel := (res.PPL - c.want.PPL) / c.want.PPL
		t.Logf("ctx %d: PPL %.6f, transformers %.6f (rel %.2e)", c.n, res.PPL, c.want.PPL, rel)
		if !(rel <= 1e-4 && rel >= -1e-4) || res.Chunks != c.want.Chunks || res.TokensScored != c.want.Scored {
			t.Errorf("ctx %d: PPL %.6f (%d chunks, %d scored), transformers %.6f (%d, %d)", c.n, res.PPL, res.Chunks, res.TokensScored, c.want.PPL, c.want.Chunks, c.want.Scored)
		}
	}
}

// TestPhi3PerplexityQuantized quantizes the converter's bf16 GGUF to each
// llama-quantize type (the file must be llama-quantize's) and compares
// the perplexity with llama-perplexity -c 128 on llama-quantize's file.
func TestPhi3PerplexityQuantized(t *testing.T) {
	ref := phi3Ref(t)
	dir := t.TempDir()
	for _, typ := range []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K", "Q4_0"} {
		t.Run(typ, func(t *testing.T) {
			g, ok := ref.GGUF[typ]
			if !ok {
				t.Fatalf("reference.json: no phi3-tiny %s", typ)
			}
			ft, err := convert.ParseFileType(typ)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, typ+".gguf")
			if _, err := convert.Convert(context.Background(), testref.Local(t, "arch", "phi3-tiny.bf16.gguf"), out, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
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
			checkUnseenGGUF(t, "phi3-tiny", typ, m, ref)
		})
	}
}
