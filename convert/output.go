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

// removeStaleTemps removes what a killed conversion to final left beside
// it: the temporary files and directories package atomicfile names
// "."+base+".tmpDIGITS" (".tmp-DIGITS" from older versions of this
// package), and a ".old" directory moved aside before a replace. A
// conversion interrupted by SIGINT removes its own; SIGKILL leaves them for
// the next run.
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
