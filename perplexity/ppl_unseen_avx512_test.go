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
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

var unseenAVX512Types = []string{"bf16", "Q8_0", "Q4_K_M"}

// TestUnseenLlamaPerplexityAVX512 evaluates the unseen fixtures' bf16 GGUFs
// and quantbridge's Q8_0, Q6_K, Q5_K_M, Q4_K_M and Q4_0 of them (which must
// be llama-quantize's files, by sha256) at ctx 128, one chunk per batch
// and at the default batch, against llama-perplexity on a CPU with the
// AVX-512 kernels quantbridge emulates
// (testdata/unseen/llama-perplexity-avx512.json,
// scripts/unseen-llama-perplexity.py): every running value, the final
// PPL and its ± as llama-perplexity prints them. (reference.json's
// figures were made on a CPU without those kernels; they are held to
// 0.1% by TestUnseenPerplexityGGUF.)
//
// The default suite runs bf16, Q8_0 and Q4_K_M; -tags refdata adds Q6_K,
// Q5_K_M and Q4_0.
func TestUnseenLlamaPerplexityAVX512(t *testing.T) {
	var ref struct {
		Models map[string]map[string]map[string]struct {
			PPL     float64   `json:"ppl"`
			Stderr  float64   `json:"stderr"`
			Running []float64 `json:"running"`
		} `json:"models"`
	}
	b, err := os.ReadFile(testref.Local(t, "unseen", "llama-perplexity-avx512.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(text)
	if len(s) > 0 && s[len(s)-1] == '\n' { // llama-perplexity -f drops one final newline
		s = s[:len(s)-1]
	}
	dir := t.TempDir()
	for _, name := range unseenModels {
		sums := loadUnseenRef(t, name)
		for _, typ := range unseenAVX512Types {
			want, ok := ref.Models[name][typ]
			if !ok {
				t.Fatalf("llama-perplexity-avx512.json: no %s %s", name, typ)
			}
			path := testref.Local(t, "unseen", name+".bf16.gguf")
			if typ != "bf16" {
				ft, err := convert.ParseFileType(typ)
				if err != nil {
					t.Fatal(err)
				}
				path = filepath.Join(dir, name+"."+typ+".gguf")
				if _, err := convert.Convert(context.Background(), testref.Local(t, "unseen", name+".bf16.gguf"), path, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sums.GGUF[typ].SHA256 {
					t.Fatalf("%s %s: quantbridge's file is not llama-quantize's (sha256)", name, typ)
				}
			}
			m, err := gguf.ReadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.New(m.Tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []string{"b128", "default"} {
				w, ok := want[batch]
				if !ok {
					t.Fatalf("llama-perplexity-avx512.json: no %s %s %s", name, typ, batch)
				}
				opt := Options{Ctx: 128, Threads: 2}
				if batch == "b128" {
					opt.Batch = 128
				}
				res, err := Evaluate(context.Background(), m, tok, s, opt)
				if err != nil {
					t.Fatal(err)
				}
				bad := 0
				for i := 0; i < len(res.Running) && i < len(w.Running); i++ {
					if !samePrinted(res.Running[i], w.Running[i], 4) {
						bad++
						if bad <= 3 {
							t.Errorf("%s %s %s: running value %d: %.4f, llama-perplexity %.4f", name, typ, batch, i+1, res.Running[i], w.Running[i])
						}
					}
				}
				if len(res.Running) != len(w.Running) || !samePrinted(res.PPL, w.PPL, 4) || !samePrinted(res.PPLStderr, w.Stderr, 5) {
					t.Errorf("%s %s %s: PPL = %.4f +/- %.5f over %d chunks, llama-perplexity %.4f +/- %.5f over %d", name, typ, batch, res.PPL, res.PPLStderr, len(res.Running), w.PPL, w.Stderr, len(w.Running))
				}
			}
			m.Close()
		}
	}
}
