package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrExists is returned when the output exists and overwriting was not
// allowed (Options.Force).
var ErrExists = errors.New("output exists (use --force to overwrite)")

// ErrSameFile is returned when the output would overwrite the input.
var ErrSameFile = errors.New("output is the input")

// checkPaths refuses in == out and an existing out without force.
func checkPaths(in, out string, force bool) error {
	if out == "" {
		return errors.New("no output path")
	}
	ai, err1 := filepath.Abs(in)
	ao, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && filepath.Clean(ai) == filepath.Clean(ao) {
		return fmt.Errorf("%s: %w", out, ErrSameFile)
	}
	so, err := os.Stat(out)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s: %w", out, err)
	}
	if si, err := os.Stat(in); err == nil && os.SameFile(si, so) {
		return fmt.Errorf("%s: %w", out, ErrSameFile)
	}
	if !force {
		return fmt.Errorf("%s: %w", out, ErrExists)
	}
	return nil
}

// tempFile is an output file written under a temporary name in the
// destination directory and renamed into place by commit.
type tempFile struct {
	*os.File
	final string
	done  bool
}

func createTemp(final string) (*tempFile, error) {
	removeStaleTemps(final)
	dir := filepath.Dir(final)
	f, err := os.CreateTemp(dir, "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return &tempFile{File: f, final: final}, nil
}

// commit syncs, closes and renames the temporary file to its final name.
func (t *tempFile) commit() error {
	if err := t.Sync(); err != nil {
		t.abort()
		return fmt.Errorf("%s: sync: %w", t.Name(), err)
	}
	if err := t.Close(); err != nil {
		t.abort()
		return fmt.Errorf("%s: close: %w", t.Name(), err)
	}
	if err := os.Chmod(t.Name(), 0o644); err != nil {
		t.abort()
		return err
	}
	if err := os.Rename(t.Name(), t.final); err != nil {
		t.abort()
		return fmt.Errorf("rename %s to %s: %w", t.Name(), t.final, err)
	}
	t.done = true
	if d, err := os.Open(filepath.Dir(t.final)); err == nil {
		d.Sync() // best effort: persist the rename
		d.Close()
	}
	return nil
}

// abort closes and removes the temporary file; it is a no-op after commit.
func (t *tempFile) abort() {
	if t.done {
		return
	}
	t.done = true
	t.Close()
	os.Remove(t.Name())
}

// removeStaleTemps removes what a killed conversion to final left beside
// it: the temporary files and directories this package and the format
// writers name "."+base+".tmp-DIGITS" or ".tmpDIGITS" (and a ".old"
// directory moved aside before a replace). A conversion interrupted by
// SIGINT removes its own; SIGKILL leaves them for the next run.
func removeStaleTemps(final string) {
	dir, base := filepath.Split(filepath.Clean(final))
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + base + ".tmp"
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		rest = strings.TrimPrefix(rest, "-")
		rest = strings.TrimSuffix(rest, ".old")
		if rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
