// Package testref locates test data: the repository's own testdata/ (used by
// the default test suite) and the full reference set in ../shared/testdata
// beside the checkout (used by tests built with -tags refdata).
package testref

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root (the directory holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testref: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Local returns the path of a file under the repository's testdata/.
func Local(tb testing.TB, elem ...string) string {
	tb.Helper()
	return filepath.Join(append([]string{Root(tb), "testdata"}, elem...)...)
}

// Shared returns the path of a file under ../shared/testdata. The reference
// suite (-tags refdata) needs it, so a missing directory fails the test
// rather than skipping it. QUANTBRIDGE_SHARED overrides the location.
func Shared(tb testing.TB, elem ...string) string {
	tb.Helper()
	base := os.Getenv("QUANTBRIDGE_SHARED")
	if base == "" {
		base = filepath.Join(filepath.Dir(Root(tb)), "shared")
	}
	dir := filepath.Join(base, "testdata")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("testref: reference data not found at %s (set QUANTBRIDGE_SHARED): %v", dir, err)
	}
	return filepath.Join(append([]string{dir}, elem...)...)
}

// Imatrix returns the path of a file of the importance-matrix reference set
// (llama-imatrix and llama-quantize --imatrix outputs, llama-perplexity logs
// on them): under .refs/imatrix when scripts/imatrix-refs.sh has rebuilt the
// set there (each file checked against the sha256 of llama.cpp's), else
// under ../shared/testdata/imatrix.
func Imatrix(tb testing.TB, elem ...string) string {
	tb.Helper()
	gen := filepath.Join(Root(tb), ".refs", "imatrix")
	if _, err := os.Stat(gen); err == nil {
		return filepath.Join(append([]string{gen}, elem...)...)
	}
	dir := Shared(tb, "imatrix")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("testref: the importance-matrix reference set is in neither %s nor %s: run scripts/imatrix-refs.sh", gen, dir)
	}
	return filepath.Join(append([]string{dir}, elem...)...)
}
