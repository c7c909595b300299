package main

import (
	"errors"
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

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
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
