// Package atomicfile writes output files and directories so that their
// final path never holds a partial result: everything is written under a
// temporary name beside the final path ("."+base+".tmp" and random digits,
// in the same directory, so the rename cannot cross file systems), synced,
// and renamed into place; on failure the temporary is removed.
//
// It does not clean up temporaries left by a killed process (the caller
// knows which names are its own; see convert's removeStaleTemps) and does
// not lock: two writers of the same final path race, the last rename wins.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// tempPattern is the os.CreateTemp / os.MkdirTemp pattern for final.
func tempPattern(final string) string { return "." + filepath.Base(final) + ".tmp*" }

// File is a file written under a temporary name in its final directory
// and renamed into place by Commit.
type File struct {
	*os.File
	final string
	perm  fs.FileMode
	done  bool
}

// Create creates the temporary file for final; Commit will give it mode
// perm. The directory of final must exist.
func Create(final string, perm fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(final), tempPattern(final))
	if err != nil {
		return nil, err
	}
	return &File{File: f, final: final, perm: perm}, nil
}

// Commit syncs and closes the temporary file, sets its mode and renames it
// to its final name (replacing a file there), then syncs the directory
// (best effort). On error the temporary file is removed.
func (f *File) Commit() error {
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: sync: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: close: %w", f.Name(), err)
	}
	if err := os.Chmod(f.Name(), f.perm); err != nil {
		f.Abort()
		return err
	}
	if err := os.Rename(f.Name(), f.final); err != nil {
		f.Abort()
		return err
	}
	f.done = true
	syncDir(filepath.Dir(f.final))
	return nil
}

// Abort closes and removes the temporary file; it is a no-op after Commit
// or an earlier Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// Write creates path (mode perm) with what fill writes to the temporary
// file, through Create and Commit. fill's error is returned as it is.
func Write(path string, perm fs.FileMode, fill func(f *os.File) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fill(f.File); err != nil {
		return err
	}
	return f.Commit()
}

// Dir is a directory built under a temporary name (Path) beside its final
// path and renamed into place by Commit.
type Dir struct {
	Path  string
	final string
	done  bool
}

// CreateDir creates the parent of final if needed and the temporary
// directory beside final.
func CreateDir(final string) (*Dir, error) {
	parent := filepath.Dir(filepath.Clean(final))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	p, err := os.MkdirTemp(parent, tempPattern(final))
	if err != nil {
		return nil, err
	}
	return &Dir{Path: p, final: final}, nil
}

// Commit gives the directory mode 0755 and renames it to its final name.
// Whatever stands there is first moved aside (to Path+".old"), put back if
// the rename fails, and removed once the new directory is in place. The
// files inside are not synced (the caller syncs what it wrote).
func (d *Dir) Commit() error {
	if err := os.Chmod(d.Path, 0o755); err != nil {
		return err
	}
	var old string
	if _, err := os.Lstat(d.final); err == nil {
		old = d.Path + ".old"
		if err := os.Rename(d.final, old); err != nil {
			return fmt.Errorf("move %s aside: %w", d.final, err)
		}
	}
	if err := os.Rename(d.Path, d.final); err != nil {
		if old != "" {
			os.Rename(old, d.final)
		}
		return err
	}
	d.done = true
	syncDir(filepath.Dir(filepath.Clean(d.final)))
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// Abort removes the temporary directory; it is a no-op after Commit or an
// earlier Abort.
func (d *Dir) Abort() {
	if !d.done {
		d.done = true
		os.RemoveAll(d.Path)
	}
}

// syncDir persists a rename in dir, best effort.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
