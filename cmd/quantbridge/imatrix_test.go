package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/imatrix"
	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestImatrixCommand(t *testing.T) {
	dir := t.TempDir()
	text := testref.Local(t, "kjv_eval.txt")
	hf := testref.Local(t, "kjv-llama")

	// The same weights as HF and as MLX give the same file: tensor names in
	// GGUF spelling whatever the input format.
	mlxDir := filepath.Join(dir, "kjv-mlx")
	if _, err := runApp(t, "convert", "--type", "BF16", hf, mlxDir); err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for i, model := range []string{hf, mlxDir} {
		out := filepath.Join(dir, []string{"hf", "mlx"}[i]+".imatrix.gguf")
		log, err := runApp(t, "imatrix", "-c", "128", "--chunks", "3", "-t", "2", "-f", text, "-o", out, model)
		if err != nil {
			t.Fatalf("%s: %v\n%s", model, err, log)
		}
		if !strings.Contains(log, "[1]54.") || !strings.Contains(log, "Final estimate: PPL = ") {
			t.Errorf("%s: no perplexity in the output:\n%s", model, log)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("HF and MLX inputs give different imatrix files")
	}
	m, err := imatrix.Read(bytes.NewReader(files[0]), int64(len(files[0])))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 42 || m.ChunkCount != 3 || m.ChunkSize != 128 || len(m.Datasets) != 1 || m.Datasets[0] != text ||
		m.Entries[0].Name != "blk.0.attn_k.weight" || m.Entries[0].Counts[0] != 3*128 {
		t.Errorf("%d entries, %d chunks of %d, datasets %q, first %s %v", len(m.Entries), m.ChunkCount, m.ChunkSize, m.Datasets, m.Entries[0].Name, m.Entries[0].Counts)
	}
	if m.Lookup("output.weight") != nil {
		t.Error("output.weight collected without --process-output")
	}

	// --output-format dat: llama-imatrix's legacy file
	datOut := filepath.Join(dir, "kjv.dat")
	if log, err := runApp(t, "imatrix", "-c", "128", "--chunks", "2", "-t", "2", "--no-ppl", "--output-format", "dat", "-f", text, "-o", datOut, hf); err != nil {
		t.Fatalf("%v\n%s", err, log)
	} else if strings.Contains(log, "Final estimate") {
		t.Errorf("--no-ppl printed a perplexity:\n%s", log)
	}
	d, err := imatrix.ReadFile(datOut)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Legacy || len(d.Entries) != 42 || d.ChunkCount != 2 || d.Entries[0].Counts[0] != 2 || d.Datasets[0] != text {
		t.Errorf("dat: legacy %v, %d entries, %d chunks, ncall %v, datasets %q", d.Legacy, len(d.Entries), d.ChunkCount, d.Entries[0].Counts, d.Datasets)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"imatrix", "-f", text, hf, hf}, "exactly one MODEL"},
		{[]string{"imatrix", "-c", "2", "-f", text, hf}, "--ctx 2"},
		{[]string{"imatrix", "--chunks", "-1", "-f", text, hf}, "--chunks -1"},
		{[]string{"imatrix", "-c", "8192", "-o", filepath.Join(dir, "x.gguf"), "-f", text, hf}, "text too short"},
		{[]string{"imatrix", "-f", filepath.Join(dir, "missing.txt"), hf}, "missing.txt"},
		{[]string{"imatrix", "--output-format", "txt", "-f", text, hf}, "--output-format"},
		{[]string{"imatrix", "-b", "0", "-o", filepath.Join(dir, "x.gguf"), "-f", text, hf}, "--batch-size 0"},
		{[]string{"imatrix", "-ub", "-3", "-o", filepath.Join(dir, "x.gguf"), "-f", text, hf}, "--ubatch-size -3"},
		{[]string{"ppl", "-b", "0", "-f", text, hf}, "--batch-size 0"},
	} {
		out, err := runApp(t, c.args...)
		if err == nil || !strings.Contains(err.Error()+out, c.msg) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); !os.IsNotExist(err) {
		t.Errorf("a failed run left its output: %v", err)
	}
}
