// Package osfile opens and reads the files the format readers take from
// disk: Open gives a file with its size for the io.ReaderAt readers,
// ReadLimited reads a small side file (config.json, tokenizer files) whole,
// refusing one larger than the caller allows before allocating. Both refuse
// directories. It does not parse anything and does not write files.
package osfile

import (
	"fmt"
	"os"
)

// Open opens path for reading and returns it with its size. A directory is
// an error. The caller closes the file; on error nothing is left open.
func Open(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory", path)
	}
	return f, st.Size(), nil
}

// ReadLimited reads the whole file at path, which may be at most limit
// bytes long. A missing file gives an error matching fs.ErrNotExist.
func ReadLimited(path string, limit int64) ([]byte, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit for this file", path, size, limit)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); int64(n) != size {
		return nil, fmt.Errorf("%s: read %d of %d bytes: %v", path, n, size, err)
	}
	return b, nil
}
