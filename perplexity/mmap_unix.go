//go:build unix

package perplexity

import (
	"io"
	"os"
	"syscall"
)

// mapSection maps the n bytes that src reads read-only from the file
// behind it, when src is an io.SectionReader over an *os.File (the GGUF
// and safetensors readers give such sections) that holds all n bytes. The
// forward pass then reads the weights where the page cache holds them, as
// llama.cpp's mmap does: no copy, no anonymous memory to fault in (which
// costs more than the evaluation's first pass over a 1B model on some
// virtual machines), and pages the kernel can share and drop. unmap
// releases the mapping; ok is false (and nothing is mapped) when src is
// not such a section or the map fails, and the caller reads instead.
//
// With populate the kernel maps every page at once (MAP_POPULATE on
// Linux, as llama.cpp's loader does), which costs less than the page
// faults of a first pass; without it pages come in as they are touched
// (the token embeddings, of which a pass reads a few rows).
//
// A mapped file that another process truncates while it is mapped makes
// the reads fault (SIGBUS), as it does for llama.cpp; quantbridge never
// writes its inputs.
func mapSection(src io.ReaderAt, n int64, populate bool) (b []byte, unmap func(), ok bool) {
	sr, isSection := src.(*io.SectionReader)
	if !isSection || n <= 0 {
		return nil, nil, false
	}
	outer, off, size := sr.Outer()
	f, isFile := outer.(*os.File)
	if !isFile || off < 0 || n > size {
		return nil, nil, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || off > st.Size()-n {
		return nil, nil, false
	}
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	length := off - start + n
	if int64(int(length)) != length {
		return nil, nil, false
	}
	flags := syscall.MAP_SHARED
	if populate {
		flags |= mapPopulate
	}
	m, err := syscall.Mmap(int(f.Fd()), start, int(length), syscall.PROT_READ, flags)
	if err != nil {
		return nil, nil, false
	}
	return m[off-start : off-start+n : off-start+n], func() { syscall.Munmap(m) }, true
}
