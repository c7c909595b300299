package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// A checkpoint whose config.json vocab_size disagrees with its embedding
// rows is neither converted nor scored (it used to write an 8192-token
// GGUF over 4096 rows, and score PPL 1.9e7 with vocab_size 100): exit 1,
// the reason on the error, nothing written.
func TestInconsistentModelRefused(t *testing.T) {
	src := testref.Local(t, "kjv-llama")
	text := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("In the beginning God created the heaven and the earth.\n", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, vocab := range []string{"100", "8192"} {
		dir := t.TempDir()
		ents, _ := os.ReadDir(src)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "config.json" {
				b = []byte(strings.Replace(string(b), `"vocab_size": 4096`, `"vocab_size": `+vocab, 1))
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		outDir := t.TempDir()
		out := filepath.Join(outDir, "x.gguf")
		_, err := runApp(t, "convert", "--type", "Q8_0", dir, out)
		if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "vocab_size "+vocab) || !strings.Contains(err.Error(), "4096 rows") {
			t.Errorf("vocab_size %s: convert error %v (exit %d)", vocab, err, exitCode(err))
		}
		if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
			t.Errorf("vocab_size %s: convert left %d files", vocab, len(ents))
		}
		stdout, err := runApp(t, "ppl", "-c", "64", "-f", text, dir)
		if err == nil || exitCode(err) != 1 || strings.Contains(stdout, "PPL") {
			t.Errorf("vocab_size %s: ppl error %v (exit %d), output %q", vocab, err, exitCode(err), stdout)
		}
	}
}
