package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/internal/atomicfile"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestOverwriteFileOutput: a GGUF output replaces an existing regular file
// without Force (as llama-quantize and convert_hf_to_gguf.py do, so a
// command can be run twice); a symbolic link or a directory at the output
// path, and an existing directory output, need Force.
func TestOverwriteFileOutput(t *testing.T) {
	dir := t.TempDir()
	in := tinyLlama(t, dir, "")
	q80 := mustFT(t, "Q8_0")
	out := filepath.Join(dir, "tiny.Q8_0.gguf")
	if err := os.WriteFile(out, []byte("an older output"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ConvertGGUF(context.Background(), in, out, Options{Target: GGUFTarget{FileType: q80}})
	if err != nil {
		t.Fatalf("replacing a regular file: %v", err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() != s.TotalBytes {
		t.Errorf("after the replace: %v, %v; want %d bytes", st, err, s.TotalBytes)
	}
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ConvertGGUF(context.Background(), in, link, Options{Target: GGUFTarget{FileType: q80}}); !errors.Is(err, ErrExists) {
		t.Errorf("symbolic link output without Force: %v, want ErrExists", err)
	}
	if _, err := Convert(context.Background(), in, dir, Options{Target: MLXTarget{Bits: 8}}); !errors.Is(err, ErrExists) {
		t.Errorf("existing directory output without Force: %v, want ErrExists", err)
	}
}

// TestConcurrentConversions: a conversion does not remove the temporary
// output of another one running to the same path (it used to, taking it
// for a killed conversion's), and both finish.
func TestConcurrentConversions(t *testing.T) {
	dir := t.TempDir()
	in := tinyLlama(t, dir, "")
	out := filepath.Join(dir, "tiny.Q8_0.gguf")
	// The other conversion, halfway through its output.
	other, err := atomicfile.Create(out, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Abort()
	if _, err := ConvertGGUF(context.Background(), in, out, Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other.Name()); err != nil {
		t.Fatalf("the other conversion's temporary file was removed: %v", err)
	}
	if err := other.Commit(); err != nil {
		t.Errorf("the other conversion could not finish: %v", err)
	}

	// The same for directory outputs.
	mlxOut := filepath.Join(dir, "mlx")
	otherDir, err := atomicfile.CreateDir(mlxOut)
	if err != nil {
		t.Fatal(err)
	}
	defer otherDir.Abort()
	convertOK(t, testref.Local(t, "kjv-llama"), mlxOut, Options{Target: MLXTarget{Bits: 4}})
	if _, err := os.Stat(otherDir.Path); err != nil {
		t.Fatalf("the other conversion's temporary directory was removed: %v", err)
	}
}
