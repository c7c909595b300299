//go:build !unix

package perplexity

import "io"

// mapSection maps nothing on systems without mmap here: the caller reads
// the weights into memory (see mmap_unix.go).
func mapSection(src io.ReaderAt, n int64, populate bool) (b []byte, unmap func(), ok bool) {
	return nil, nil, false
}
