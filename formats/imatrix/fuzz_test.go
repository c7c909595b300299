package imatrix

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzRead: any input either fails with a *FormatError or parses into a
// matrix whose entries are consistent (NMat×NPerRow sums, NMat counts) and
// whose Importance does not panic; a parsed GGUF matrix writes with WriteGGUF
// and reads back to the same entries. Seeds: llama-imatrix's own GGUF and
// legacy outputs.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"kjv-llama.c128.imatrix.gguf", "kjv-llama.c128.imatrix.dat", "qwen3moe-tiny.c128.imatrix.gguf"} {
		b, err := os.ReadFile(testref.Local(f, "imatrix", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(append(le32(1, 1), append([]byte{'a'}, le32(3, 1, 0, 47, 2)...)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, want *FormatError", err, err)
			}
			return
		}
		for i, e := range m.Entries {
			if i > 0 && m.Entries[i-1].Name >= e.Name {
				t.Fatalf("entries not sorted: %q, %q", m.Entries[i-1].Name, e.Name)
			}
			if len(e.InSum2) != e.NMat*e.NPerRow || len(e.Counts) != e.NMat {
				t.Fatalf("%q: %d sums %d counts for %d×%d", e.Name, len(e.InSum2), len(e.Counts), e.NMat, e.NPerRow)
			}
			if v, ok := m.Importance(e.Name); !ok || len(v) != len(e.InSum2) {
				t.Fatalf("%q: importance %d values, ok %v", e.Name, len(v), ok)
			}
		}
		if m.Legacy {
			return
		}
		var out bytes.Buffer
		if err := m.WriteGGUF(&out); err != nil {
			return // e.g. a chunk count that does not fit the format
		}
		m2, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			if len(m.Entries) == 0 {
				return // nothing to write back: a file with no tensors is refused
			}
			t.Fatalf("written matrix does not read back: %v", err)
		}
		nonEmpty := 0
		for _, e := range m.Entries {
			if len(e.InSum2) > 0 {
				nonEmpty++
			}
		}
		if len(m2.Entries) != nonEmpty {
			t.Fatalf("%d entries read back, want %d", len(m2.Entries), nonEmpty)
		}
	})
}
