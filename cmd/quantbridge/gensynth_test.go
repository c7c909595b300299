package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestGenSyntheticLoadsInLlamaCpp checks gen-synthetic's tiny model against
// the figures llama-perplexity 34af94cd printed for the same file (its
// vocabulary is what llama.cpp needs to load it: byte pieces, <0x0A>):
//
//	quantbridge gen-synthetic --preset tiny synth-tiny.gguf
//	llama-perplexity -m synth-tiny.gguf -f testdata/kjv_eval.txt -c 128 -b 128 -t 2 --chunks 4
//	[1]4319.1352,[2]4107.9550,[3]4199.1366,[4]4255.7895
//
// The weights are seeded, so the file and the figures are fixed.
func TestGenSyntheticLoadsInLlamaCpp(t *testing.T) {
	text := testref.Local(t, "kjv_eval.txt")
	model := filepath.Join(t.TempDir(), "synth-tiny.gguf")
	if _, err := runApp(t, "gen-synthetic", "--preset", "tiny", model); err != nil {
		t.Fatal(err)
	}
	// llama-tokenize -m synth-tiny.gguf -f FILE --ids --no-escape, FILE
	// holding "Hi é\n\tx{}": "▁H" i "▁" then é, newline and tab as byte
	// pieces, x { }.
	file := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(file, []byte("Hi é\n\tx{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runApp(t, "tokenize", "--json", model, file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out), "[1,299,426,259,198,172,13,12,441,444,446]"; got != want {
		t.Errorf("tokenize: %s, llama-tokenize %s", got, want)
	}
	r, err := runPPLJSON(t, "-f", text, "--chunks", "4", model)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{4319.1352, 4107.9550, 4199.1366, 4255.7895}
	if len(r.Running) != len(want) {
		t.Fatalf("running values %v, want %v", r.Running, want)
	}
	for i, w := range want {
		if math.Abs(r.Running[i]-w)/w > 1e-6 {
			t.Errorf("chunk %d: ppl %.4f, llama-perplexity %.4f", i+1, r.Running[i], w)
		}
	}
}
