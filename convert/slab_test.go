package convert

import (
	"bytes"
	"fmt"
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
	convertOK(t, bf16, back, Options{Target: HFTarget{Dtype: ptr(graph.BF16)}, SlabBytes: 1})
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
	// Exact repacks both ways (GGUF Q8_0 → MLX 8-bit g32 → GGUF Q8_0),
	// whole tensors vs one head per piece.
	q8 := filepath.Join(dir, "kjv.q8_0.gguf")
	convertOK(t, hfDir, q8, Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}})
	var mlxDirs, ggufs []string
	for _, slab := range []int64{0, 1} {
		// same base name: it becomes general.name
		m := filepath.Join(dir, fmt.Sprint(slab), "mlx8")
		convertOK(t, q8, m, Options{Target: MLXTarget{Bits: 8, GroupSize: 32}, SlabBytes: slab})
		g := filepath.Join(dir, fmt.Sprintf("back-%d.gguf", slab))
		convertOK(t, m, g, Options{SlabBytes: slab})
		mlxDirs, ggufs = append(mlxDirs, m), append(ggufs, g)
	}
	sameTensors(t, "GGUF -> MLX repack, 1-byte slabs", safetensorsTensors(t, mlxDirs[1]), safetensorsTensors(t, mlxDirs[0]))
	if fileSHA256(t, ggufs[1]) != fileSHA256(t, ggufs[0]) {
		t.Error("MLX -> GGUF repack depends on the slab size")
	}
}
