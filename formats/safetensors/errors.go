package safetensors

import "fmt"

// FormatError reports malformed safetensors input: the file, the byte offset
// (from the start of the file) where the problem was found, and what is
// wrong.
type FormatError struct {
	Path   string
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("safetensors: offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("safetensors: %s: offset %d: %s", e.Path, e.Offset, e.Msg)
}

func formatErr(path string, off int64, format string, args ...any) *FormatError {
	return &FormatError{Path: path, Offset: off, Msg: fmt.Sprintf(format, args...)}
}
