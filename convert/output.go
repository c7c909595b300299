package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantbridge/quantbridge/internal/atomicfile"
)

// ErrExists is returned when the output exists and overwriting was not
// allowed (Options.Force). A GGUF file output replaces an existing regular
// file without Force, as llama-quantize and convert_hf_to_gguf.py do; a
// directory output (and anything at a .gguf path that is not a regular
// file) is replaced only with Force, as mlx_lm.convert refuses an
// existing directory: it may hold files that are not ours.
var ErrExists = errors.New("output exists (use --force to overwrite)")

// ErrSameFile is returned when the output would overwrite the input.
var ErrSameFile = errors.New("output is the input")

// checkPaths refuses in == out and an existing out without force, except a
// regular file at a GGUF output path (see ErrExists).
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
		return err // *PathError: names out
	}
	if si, err := os.Stat(in); err == nil && os.SameFile(si, so) {
		return fmt.Errorf("%s: %w", out, ErrSameFile)
	}
	if force {
		return nil
	}
	if lo, err := os.Lstat(out); err == nil && lo.Mode().IsRegular() && strings.HasSuffix(strings.ToLower(out), ".gguf") {
		return nil
	}
	return fmt.Errorf("%s: %w", out, ErrExists)
}

// createTemp removes what killed conversions to final left beside it and
// creates final's temporary output file (mode 0644 once committed), and
// final's parent directory if it does not exist, as mlx_lm.convert does.
func createTemp(final string) (*atomicfile.File, error) {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	removeStaleTemps(final)
	f, err := atomicfile.Create(final, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return f, nil
}

// removeStaleTemps removes what killed conversions to final left beside
// it (atomicfile.RemoveStale): temporaries no live process holds. A
// conversion interrupted by a signal removes its own; SIGKILL leaves them
// for the next run; a concurrent conversion's are left alone.
func removeStaleTemps(final string) { atomicfile.RemoveStale(final) }
