package osfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLimited(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadLimited(path, 8); err != nil || string(b) != `{"a": 1}` {
		t.Errorf("ReadLimited = %q, %v", b, err)
	}
	for _, tc := range []struct {
		path  string
		limit int64
		want  string
	}{
		{path, 7, "8 bytes, over the 7-byte limit for this file"},
		{dir, 1 << 20, dir + " is a directory"},
		{filepath.Join(dir, "missing"), 1 << 20, "no such file"},
	} {
		_, err := ReadLimited(tc.path, tc.limit)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadLimited(%s, %d) error %v, want %q", tc.path, tc.limit, err, tc.want)
		}
	}
	if _, err := ReadLimited(filepath.Join(dir, "missing"), 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not match fs.ErrNotExist", err)
	}
	f, size, err := Open(path)
	if err != nil || size != 8 {
		t.Fatalf("Open = %v, %d, %v", f, size, err)
	}
	f.Close()
}
