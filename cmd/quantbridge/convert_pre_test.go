package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// A BPE tokenizer whose split regex is not in the known table is refused
// with a hint, and --tokenizer-pre names its pre-tokenizer.
func TestConvertTokenizerPre(t *testing.T) {
	src := testref.Local(t, "unseen", "qwen2-bpe-tied")
	dir := filepath.Join(t.TempDir(), "qwen2-custom")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "tokenizer.json" {
			// Same behaviour, different spelling: no longer recognised by digest.
			data = []byte(strings.Replace(string(data), `|\\s+(?!\\S)|\\s+"`, `|\\s+(?!\\S)|\\s+|\\s+"`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "q.gguf")
	_, err = runApp(t, "convert", "--type", "bf16", dir, out)
	var ee *exitError
	if err == nil || !strings.Contains(err.Error(), "--tokenizer-pre") {
		t.Fatalf("unknown pre-tokenizer: err %v, want a hint at --tokenizer-pre", err)
	}
	if errors.As(err, &ee) && ee.code == 0 {
		t.Fatalf("exit code 0")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("output exists after a failed conversion: %v", err)
	}
	if _, err := runApp(t, "convert", "--type", "bf16", "--tokenizer-pre", "qwen2", dir, out); err != nil {
		t.Fatal(err)
	}
	m, err := gguf.ReadModel(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Tokenizer == nil || m.Tokenizer.Pre != "qwen2" || m.Tokenizer.Model != "gpt2" || len(m.Tokenizer.Merges) == 0 {
		t.Fatalf("tokenizer %+v", m.Tokenizer)
	}
}

// The README's quick start writes into a directory that does not exist yet.
func TestConvertCreatesParentDirectory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "new", "dir", "kjv.Q4_K_M.gguf")
	if _, err := runApp(t, "convert", testref.Local(t, "kjv-llama"), out, "--type", "Q4_K_M"); err != nil {
		t.Fatal(err)
	}
	// llama-quantize's kjv-llama.Q4_K_M.gguf is 4333440 bytes.
	if st, err := os.Stat(out); err != nil || st.Size() != 4333440 {
		t.Fatalf("%s: %v %v", out, st, err)
	}
}
