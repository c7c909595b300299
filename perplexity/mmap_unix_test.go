//go:build unix

package perplexity

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestMapSection(t *testing.T) {
	data := make([]byte, 3*os.Getpagesize()+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(len(data))
	for _, tc := range []struct {
		name   string
		src    io.ReaderAt
		n      int64
		mapped bool
	}{
		{"whole file", io.NewSectionReader(f, 0, size), size, true},
		{"unaligned start", io.NewSectionReader(f, 4097, size-4097), size - 4097, true},
		{"prefix of a section", io.NewSectionReader(f, 10, 100), 50, true},
		{"more than the section", io.NewSectionReader(f, 10, 100), 101, false},
		{"section past the end of the file", io.NewSectionReader(f, size-10, 100), 100, false},
		{"not a file", io.NewSectionReader(bytes.NewReader(data), 0, size), size, false},
		{"not a section", f, 10, false},
		{"nothing", io.NewSectionReader(f, 0, size), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, unmap, ok := mapSection(tc.src, tc.n, tc.n%2 == 0)
			if ok != tc.mapped {
				t.Fatalf("mapped = %v, want %v", ok, tc.mapped)
			}
			if !ok {
				return
			}
			defer unmap()
			_, off, _ := tc.src.(*io.SectionReader).Outer()
			if int64(len(b)) != tc.n || cap(b) != len(b) || !bytes.Equal(b, data[off:off+tc.n]) {
				t.Fatalf("mapped %d bytes (cap %d) differ from the file's [%d, +%d)", len(b), cap(b), off, tc.n)
			}
		})
	}
}
