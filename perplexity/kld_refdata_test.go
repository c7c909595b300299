//go:build refdata

package perplexity

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// TestKLDivergenceMatchesLlamaPerplexity: kjv-llama Q4_K_M against its
// bf16 base (llama.cpp's files), ctx 128, one chunk per batch and at the
// default batch: the whole report, every line as llama-perplexity
// --kl-divergence prints it from its --kl-divergence-base file
// (testdata/kld, scripts/kld-reference.sh), the base's 16-bit
// log-probabilities included.
func TestKLDivergenceMatchesLlamaPerplexity(t *testing.T) {
	q, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.Q4_K_M.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	base, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	tok, err := tokenizer.NewForModel(q)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(string(b), "\n") // as llama-perplexity -f reads it
	for _, c := range []struct {
		name  string
		batch int
	}{{"b128", 128}, {"default", 0}} {
		want, err := os.ReadFile(testref.Local(t, "kld", "kjv-llama.Q4_K_M."+c.name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Evaluate(context.Background(), q, tok, text, Options{Ctx: 128, Batch: c.batch, KLBase: base})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := res.KL.WriteReport(&buf); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(buf.String(), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
		if len(lines) != len(wantLines) {
			t.Errorf("%s: %d report lines, llama-perplexity %d", c.name, len(lines), len(wantLines))
		}
		for i := 0; i < len(lines) && i < len(wantLines); i++ {
			if lines[i] != wantLines[i] {
				t.Errorf("%s: %q, llama-perplexity %q", c.name, lines[i], wantLines[i])
			}
		}
	}
}
