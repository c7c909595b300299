package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestMain(m *testing.M) {
	// The child of TestRemoveStale: create a temporary for the final path
	// given, say so, and wait to be killed.
	if final := os.Getenv("ATOMICFILE_HOLD"); final != "" {
		var name string
		if strings.HasSuffix(final, "dir") {
			d, err := CreateDir(final)
			if err != nil {
				panic(err)
			}
			name = d.Path
		} else {
			f, err := Create(final, 0o644)
			if err != nil {
				panic(err)
			}
			name = f.Name()
		}
		fmt.Println(name)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestConcurrentWriters: two writers of one final path each get their own
// temporary, RemoveStale (which each conversion runs before it starts)
// leaves a live writer's alone, and both commit.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out.gguf")
	a, err := Create(final, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	if got := RemoveStale(final); len(got) != 0 {
		t.Fatalf("RemoveStale removed a live writer's temporary: %v", got)
	}
	b, err := Create(final, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() == b.Name() {
		t.Fatalf("both writers got %s", a.Name())
	}
	b.WriteString("b")
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	a.WriteString("a")
	if err := a.Commit(); err != nil {
		t.Fatalf("first writer after the second committed: %v", err)
	}
	if data, _ := os.ReadFile(final); string(data) != "a" {
		t.Errorf("final holds %q, want the last commit's %q", data, "a")
	}

	dfinal := filepath.Join(dir, "model")
	da, err := CreateDir(dfinal)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Abort()
	if got := RemoveStale(dfinal); len(got) != 0 {
		t.Fatalf("RemoveStale removed a live writer's temporary directory: %v", got)
	}
	db, err := CreateDir(dfinal)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := da.Commit(); err != nil {
		t.Fatalf("first directory writer after the second committed: %v", err)
	}
	if names := entries(t, dir); len(names) != 2 {
		t.Errorf("after both commits: %v, want out.gguf and model", names)
	}
}
