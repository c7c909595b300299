//go:build refdata

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// mixtral-tiny (8 experts, top 2; no GGUF in testdata/arch): HF → BF16 GGUF
// with convert (byte-identical to convert_hf_to_gguf.py), then imatrix
// through the CLI, against llama-imatrix -b 128 and at its default batch on
// that GGUF: byte for byte.
// The dataset path is the one llama-imatrix was given, so run from the
// repository root.
func TestImatrixMixtralIdentical(t *testing.T) {
	root := testref.Root(t)
	t.Chdir(root)
	g := filepath.Join(t.TempDir(), "mixtral-tiny.bf16.gguf")
	if _, err := runApp(t, "convert", "testdata/arch/mixtral-tiny", g); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ batch, ref string }{
		{"128", "mixtral-tiny.c128.b128.imatrix.gguf"},
		{"2048", "mixtral-tiny.c128.imatrix.gguf"}, // llama-imatrix's default batch
	} {
		out := filepath.Join(t.TempDir(), "mixtral.imatrix.gguf")
		if log, err := runApp(t, "imatrix", "-c", "128", "-b", c.batch, "-t", "2", "--no-ppl", "-f", "testdata/kjv_eval.txt", "-o", out, g); err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(root, "testdata", "imatrix", c.ref))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("-b %s: not byte-identical to llama-imatrix's %s", c.batch, c.ref)
		}
	}
}
