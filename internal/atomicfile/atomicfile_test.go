package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// entries lists dir's names (temporaries included).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o644}, {"second, replacing", 0o600}} {
		if err := Write(path, tc.perm, func(f *os.File) error { _, err := f.WriteString(tc.data); return err }); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		st, _ := os.Stat(path)
		if err != nil || string(b) != tc.data || st.Mode().Perm() != tc.perm {
			t.Errorf("after Write(%q, %v): %q %v, mode %v", tc.data, tc.perm, b, err, st.Mode().Perm())
		}
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(f *os.File) error { f.WriteString("partial"); return boom })
	if err != boom {
		t.Errorf("fill error came back as %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second, replacing" {
		t.Errorf("a failed Write changed the file: %q", b)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("temporaries left behind: %v", names)
	}
}

func TestDir(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "new")
	final := filepath.Join(parent, "model")
	for _, content := range []string{"a", "b"} {
		d, err := CreateDir(final)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Path, content), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		d.Abort() // no-op after Commit
		if names := entries(t, final); len(names) != 1 || names[0] != content {
			t.Errorf("after commit %q: %v", content, names)
		}
		if names := entries(t, parent); len(names) != 1 {
			t.Errorf("temporaries left behind: %v", names)
		}
	}
	d, err := CreateDir(final)
	if err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if names := entries(t, parent); len(names) != 1 {
		t.Errorf("Abort left %v", names)
	}
}
