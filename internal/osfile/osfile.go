// Package osfile opens and reads the files the format readers take from
// disk: Open gives a file with its size for the io.ReaderAt readers,
// ReadLimited reads a small side file (config.json, tokenizer files) whole,
// refusing one larger than the caller allows before allocating. Both refuse
// directories and anything else that is not a regular file (a named pipe
// would block the open or the read forever; a device has no size). Stat
// checks an input path that may be a file or a directory. It does not
// parse anything and does not write files.
package osfile

import (
	"fmt"
	"io/fs"
	"os"
)

// Stat returns the FileInfo of an input path, which must be a regular file
// or a directory (symbolic links followed); a named pipe, device or socket
// is an error saying which it is.
func Stat(path string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, st.Mode(), true); err != nil {
		return nil, err
	}
	return st, nil
}

// checkMode refuses what is neither a regular file nor (when dirOK) a
// directory.
func checkMode(path string, m fs.FileMode, dirOK bool) error {
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		if dirOK {
			return nil
		}
		return fmt.Errorf("%s is a directory", path)
	case m&fs.ModeNamedPipe != 0:
		return fmt.Errorf("%s is a named pipe, not a regular file", path)
	case m&fs.ModeSocket != 0:
		return fmt.Errorf("%s is a socket, not a regular file", path)
	case m&fs.ModeDevice != 0:
		return fmt.Errorf("%s is a device, not a regular file", path)
	}
	return fmt.Errorf("%s is not a regular file (mode %v)", path, m)
}

// Open opens the regular file path for reading and returns it with its
// size. A directory, named pipe, device or socket is an error, found before
// the open (which blocks on a pipe without writer). The caller closes the
// file; on error nothing is left open.
func Open(path string) (*os.File, int64, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, 0, err
	} else if err := checkMode(path, st.Mode(), false); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if err := checkMode(path, st.Mode(), false); err != nil { // replaced since the check above
		f.Close()
		return nil, 0, err
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
		return nil, fmt.Errorf("%s: %d bytes is more than the %d this reader accepts", path, size, limit)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); int64(n) != size {
		return nil, fmt.Errorf("%s: read %d of %d bytes: %v", path, n, size, err)
	}
	return b, nil
}
