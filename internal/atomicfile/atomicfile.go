// Package atomicfile writes output files and directories so that their
// final path never holds a partial result: everything is written under a
// temporary name beside the final path ("."+base+".tmp" and random digits,
// in the same directory, so the rename cannot cross file systems), synced,
// and renamed into place; on failure the temporary is removed.
//
// Every temporary name is unique (os.CreateTemp, os.MkdirTemp), and its
// writer holds an exclusive flock on it until it is renamed or removed.
// RemoveStale removes the temporaries of a final path that no live process
// holds, i.e. what a killed writer left; a concurrent writer's temporary is
// never touched. Where flock is not available (or refused, as on some
// network file systems) nothing is proven stale and nothing is removed.
// There is no lock on the final path: two writers of the same final path
// both complete, and the last rename wins.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempPattern is the os.CreateTemp / os.MkdirTemp pattern for final.
func tempPattern(final string) string { return "." + filepath.Base(final) + ".tmp*" }

// errLocked is tryLock's answer for a path another open file has locked.
var errLocked = errors.New("locked by another process")

// maxTries bounds the retries of a temporary created just as RemoveStale
// took it for a dead writer's.
const maxTries = 16

// lockNew locks the temporary just created at path. It returns ok false
// when the temporary is not (or no longer) this writer's own: locked or
// removed by a concurrent RemoveStale in the instant between its creation
// and the lock; the caller then creates another. Where locks are not
// available the temporary is kept unlocked (RemoveStale cannot lock it
// either).
func lockNew(path string, dir bool) (lock *os.File, ok bool) {
	lock, err := tryLock(path, dir)
	if err != nil {
		return nil, !errors.Is(err, errLocked) && !errors.Is(err, fs.ErrNotExist)
	}
	ls, err1 := lock.Stat()
	ps, err2 := os.Lstat(path)
	if err1 != nil || err2 != nil || !os.SameFile(ls, ps) {
		lock.Close()
		return nil, false
	}
	return lock, true
}

// File is a file written under a temporary name in its final directory
// and renamed into place by Commit.
type File struct {
	*os.File
	final string
	perm  fs.FileMode
	lock  *os.File // holds the temporary's flock; nil where unavailable
	done  bool
}

// Create creates the temporary file for final; Commit will give it mode
// perm. The directory of final must exist.
func Create(final string, perm fs.FileMode) (*File, error) {
	for range maxTries {
		f, err := os.CreateTemp(filepath.Dir(final), tempPattern(final))
		if err != nil {
			return nil, err
		}
		lock, ok := lockNew(f.Name(), false)
		if !ok {
			f.Close() // RemoveStale removes it
			continue
		}
		return &File{File: f, final: final, perm: perm, lock: lock}, nil
	}
	return nil, fmt.Errorf("%s: could not create a temporary file beside it", final)
}

// unlock releases the temporary's lock once it is renamed or removed.
func unlock(lock **os.File) {
	if *lock != nil {
		(*lock).Close()
		*lock = nil
	}
}

// Commit syncs and closes the temporary file, sets its mode and renames it
// to its final name (replacing a file there), then syncs the directory
// (best effort). On error the temporary file is removed.
func (f *File) Commit() error {
	// Errors of os.File methods and os functions name the file already.
	if err := f.Sync(); err != nil {
		f.Abort()
		return err
	}
	if err := f.Close(); err != nil {
		f.Abort()
		return err
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
	unlock(&f.lock)
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
	unlock(&f.lock)
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
	lock  *os.File // holds Path's flock; nil where unavailable
	done  bool
}

// CreateDir creates the parent of final if needed and the temporary
// directory beside final.
func CreateDir(final string) (*Dir, error) {
	parent := filepath.Dir(filepath.Clean(final))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	for range maxTries {
		p, err := os.MkdirTemp(parent, tempPattern(final))
		if err != nil {
			return nil, err
		}
		if lock, ok := lockNew(p, true); ok {
			return &Dir{Path: p, final: final, lock: lock}, nil
		}
	}
	return nil, fmt.Errorf("%s: could not create a temporary directory beside it", final)
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
	if st, err := os.Lstat(d.final); err == nil {
		old = d.Path + ".old"
		// Held until it is removed, so RemoveStale leaves the ".old"
		// name alone while this process lives.
		if st.IsDir() {
			if lock, err := tryLock(d.final, true); err == nil {
				defer lock.Close()
			}
		}
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
	unlock(&d.lock)
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
		unlock(&d.lock)
	}
}

// RemoveStale removes what killed writers of final left beside it: the
// temporary files and directories this package names "."+base+".tmpDIGITS"
// (".tmp-DIGITS" from older versions), and the ".old" directory a Dir
// commit moves aside, but only those no live process holds locked. It
// returns the paths it removed.
func RemoveStale(final string) []string {
	dir, base := filepath.Split(filepath.Clean(final))
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	prefix := "." + base + ".tmp"
	var removed []string
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
		p := filepath.Join(dir, e.Name())
		lock, err := tryLock(p, e.IsDir())
		if err != nil {
			continue // a live writer's, or not provably stale
		}
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
		}
		lock.Close()
	}
	return removed
}

// syncDir persists a rename in dir, best effort.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
