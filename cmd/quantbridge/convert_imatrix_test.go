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

// TestConvertImatrix: convert --imatrix writes llama-quantize's
// quantize.imatrix.* KVs after general.file_type; the types that need an
// importance matrix fail without one as llama-quantize does (exit 1,
// naming the first tensor), and the imatrix flags are usage errors where
// they cannot apply.
func TestConvertImatrix(t *testing.T) {
	dir := t.TempDir()
	hf := testref.Local(t, "kjv-llama")
	imx := testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.gguf")
	out := filepath.Join(dir, "kjv.q8_0.gguf")
	if _, err := runApp(t, "convert", "-j", "2", "--type", "Q8_0", "--imatrix", imx, "--exclude-weights", "blk.5.", hf, out); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := len(f.KV)
	var keys []string
	for _, kv := range f.KV[n-5:] {
		keys = append(keys, kv.Key)
	}
	if want := "general.file_type quantize.imatrix.file quantize.imatrix.dataset quantize.imatrix.entries_count quantize.imatrix.chunks_count"; strings.Join(keys, " ") != want {
		t.Errorf("last KVs %v, want %s", keys, want)
	}
	for key, want := range map[string]any{
		"quantize.imatrix.file":          imx,
		"quantize.imatrix.dataset":       "testdata/kjv_eval.txt",
		"quantize.imatrix.entries_count": uint32(35), // 42 less blk.5's 7
		"quantize.imatrix.chunks_count":  uint32(47),
	} {
		if v, _ := f.Get(key); v != want {
			t.Errorf("%s = %v (%T), want %v", key, v, v, want)
		}
	}

	// --dry-run: the plan, nothing written; a missing imatrix is a warning.
	dry := filepath.Join(dir, "dry.gguf")
	stdout, stderr, code := runMain(t, "convert", "--dry-run", "--type", "IQ2_M", hf, dry)
	if code != 0 || !strings.Contains(stderr, "requires an importance matrix") ||
		!strings.Contains(stdout, "blk.0.attn_v.weight") || !strings.Contains(stdout, "IQ2_M: 57 tensors") {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// llama-quantize's IQ2_M tensor sizes (kjv-llama.imatrix.IQ2_M.gguf).
	for _, line := range []string{"output.weight             BF16    -> Q5_K        720896", "token_embd.weight         BF16    -> IQ3_S       450560", "blk.0.attn_k.weight       BF16    -> IQ2_S        10496"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("dry run: no line %q in\n%s", line, stdout)
		}
	}
	// From a GGUF input: qwen3-tiny's rows (128, 192, 352) are no multiple
	// of 256, so IQ4_XS falls back to IQ4_NL.
	stdout, _, code = runMain(t, "convert", "--dry-run", "--type", "IQ4_XS", testref.Local(t, "arch", "qwen3-tiny.bf16.gguf"), dry)
	if code != 0 || !strings.Contains(stdout, "blk.0.ffn_down.weight") || !strings.Contains(stdout, "fallback IQ4_XS->IQ4_NL") {
		t.Errorf("GGUF dry run: exit %d, stdout %q", code, stdout)
	}
	if _, err := os.Stat(dry); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run wrote %s: %v", dry, err)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--dry-run", hf, filepath.Join(dir, "a.gguf")}, 2, "--dry-run"},
		{[]string{"--dry-run", "--type", "INT4", hf, filepath.Join(dir, "mlx")}, 2, "--dry-run"},
		{[]string{"--type", "IQ2_XXS", hf, filepath.Join(dir, "a.gguf")}, 1, "requires an importance matrix (--imatrix): tensor blk.0.attn_k.weight"},
		{[]string{"--type", "Q2_K_S", hf, filepath.Join(dir, "a.gguf")}, 1, "requires an importance matrix"},
		{[]string{"--type", "IQ2_M", "--imatrix", filepath.Join(dir, "none.gguf"), hf, filepath.Join(dir, "a.gguf")}, 1, "none.gguf"},
		{[]string{"--imatrix", imx, hf, filepath.Join(dir, "a.gguf")}, 2, "needs --type"},
		{[]string{"--type", "BF16", "--imatrix", imx, hf, filepath.Join(dir, "a.gguf")}, 2, "contradict"},
		{[]string{"--type", "INT4", "--imatrix", imx, hf, filepath.Join(dir, "mlx")}, 2, "does not apply"},
		{[]string{"--type", "Q4_0", "--imatrix", imx, "--include-weights", "a", "--exclude-weights", "b", hf, filepath.Join(dir, "a.gguf")}, 2, "contradict"},
	} {
		_, err := runApp(t, append([]string{"convert", "-j", "2"}, c.args...)...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want exit %d mentioning %q", c.args, err, c.code, c.want)
		}
	}
}
