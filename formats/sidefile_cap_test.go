package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/mlx"
)

// TestOpenHugeConfig: a 510 MB config.json (sparse: it takes no disk
// space) is refused with an error naming it, its size and the cap, for an
// HF and an MLX reader alike; it used to be decoded and exhaust memory.
func TestOpenHugeConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"quantization": {"bits": 4, "group_size": 64}, "x": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cfg, 510<<20); err != nil {
		t.Fatal(err)
	}
	want := cfg + ": 534773760 bytes, over the 8388608-byte limit for this file"
	m, err := Open(dir)
	if err == nil {
		m.Close()
		t.Fatal("Open: no error")
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Open: error %q, want %q", err, want)
	}
	if _, err := mlx.ReadDir(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("mlx.ReadDir: error %v, want %q", err, want)
	}
}
