package gguf

import "fmt"

// FormatError reports a malformed GGUF file: which file, the byte offset
// where the problem was found, and what is wrong.
type FormatError struct {
	Path   string // file path; empty when reading from an io.ReaderAt
	Offset int64  // absolute byte offset in the file
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("gguf: offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("gguf: %s: offset %d: %s", e.Path, e.Offset, e.Msg)
}
