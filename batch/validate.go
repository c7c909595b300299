package batch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/quantbridge/quantbridge/internal/osfile"
)

// ValidationError lists everything Validate found wrong with a manifest,
// one line per problem.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("the manifest cannot run (nothing was done):\n  %s", strings.Join(e.Problems, "\n  "))
}

// Validate checks the whole manifest, every shard's items (so every shard
// of a cluster job stops alike), before anything runs; Run calls it first.
// It checks that every target is one opt.CheckTarget accepts, that every
// model path exists and is a regular file or a directory and that
// opt.CheckInput opens it, that the eval text is a readable file, and that
// every output directory and opt.ReportDir can be written to (each or its
// nearest existing parent; nothing is created). All problems come back in
// one *ValidationError.
func Validate(m *Manifest, opt Options) error {
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	inputs := map[string]bool{}
	dirs := map[string]bool{}
	targets := map[string]bool{}
	for _, it := range m.Items() {
		if opt.CheckTarget != nil && !targets[it.Target.Slug()] {
			targets[it.Target.Slug()] = true
			if err := opt.CheckTarget(it); err != nil {
				add("target %s: %v", it.Target.Slug(), err)
			}
		}
		if !inputs[it.Input] {
			inputs[it.Input] = true
			if _, err := osfile.Stat(it.Input); err != nil {
				add("model %s: %v", it.Model.Name, err)
			} else if opt.CheckInput != nil {
				if err := opt.CheckInput(it.Input); err != nil {
					add("model %s: %v", it.Model.Name, err)
				}
			}
		}
		if d := filepath.Dir(it.Output); !dirs[d] {
			dirs[d] = true
			if err := WritableDir(d); err != nil {
				add("output directory: %v", err)
			}
		}
	}
	if m.Eval != nil {
		if f, _, err := osfile.Open(m.EvalText()); err != nil {
			add("eval text: %v", err)
		} else {
			f.Close()
		}
	}
	if opt.ReportDir != "" {
		if err := WritableDir(opt.ReportDir); err != nil {
			add("report directory: %v", err)
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// WritableDir reports whether files can be created in dir: dir, or the
// nearest of its parents that exists when dir does not (it would be
// created there), must be a directory in which a file can be created; a
// test file is created and removed.
func WritableDir(dir string) error {
	clean := filepath.Clean(dir)
	d := clean
	for {
		st, err := os.Stat(d)
		if err == nil {
			if st.IsDir() {
				break
			}
			if d == clean {
				return fmt.Errorf("%s is not a directory", dir)
			}
			return fmt.Errorf("%s cannot be created: %s is not a directory", dir, d)
		}
		// ENOTDIR: a parent is a file, found as the walk goes up.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return err
		}
		d = parent
	}
	f, err := os.CreateTemp(d, ".qb-write-test*")
	if err != nil {
		if d != clean {
			return fmt.Errorf("%s cannot be created: %w", dir, err)
		}
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
