package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestSmallSlabs runs the permuting directions with one head's rows per
// piece of work (SlabBytes 1): the Q/K row permutation must not depend on
// how a tensor is cut into slabs.
func TestSmallSlabs(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	bf16 := filepath.Join(dir, "kjv.bf16.gguf")
	convertOK(t, hfDir, bf16, Options{SlabBytes: 1})
	if got := fileSHA256(t, bf16); got != refSHA256["BF16"] {
		t.Errorf("HF -> GGUF with 1-byte slabs: sha256 %s, want convert_hf_to_gguf's %s", got, refSHA256["BF16"])
	}
	back := filepath.Join(dir, "hf")
	convertOK(t, bf16, back, Options{To: "hf", Dtype: graph.BF16, SlabBytes: 1})
	got, err := os.ReadFile(filepath.Join(back, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(hfDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("GGUF -> HF with 1-byte slabs: model.safetensors differs from the original checkpoint")
	}
}
