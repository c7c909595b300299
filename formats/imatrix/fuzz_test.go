package imatrix

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// FuzzRead: any input either fails with a *FormatError or parses into a
// matrix whose entries are consistent (NMat×NPerRow sums, NMat counts) and
// whose Importance does not panic; a parsed GGUF matrix writes with WriteGGUF
// and reads back to the same entries. Seeds: llama-imatrix's own GGUF and
// legacy outputs.
func FuzzRead(f *testing.F) {
	// Seeds: llama-imatrix's own files, cut to a few entries so that the
	// fuzzer mutates kilobytes, not the 60 KB originals (GGUF re-written by
	// WriteGGUF, which reproduces llama-imatrix's layout; legacy re-encoded).
	for _, c := range []struct {
		name string
		keep []string
	}{
		{"kjv-llama.c128.imatrix.gguf", []string{"blk.0.attn_k.weight", "blk.5.ffn_up.weight"}},
		{"qwen3moe-tiny.c128.imatrix.gguf", []string{"blk.0.ffn_down_exps.weight", "blk.0.ffn_gate_inp.weight"}},
		{"kjv-llama.c128.imatrix.dat", []string{"blk.0.attn_k.weight", "blk.3.ffn_down.weight"}},
	} {
		m, err := ReadFile(testref.Local(f, "imatrix", c.name))
		if err != nil {
			f.Fatal(err)
		}
		var es []*Entry
		for _, n := range c.keep {
			if e := m.Lookup(n); e != nil {
				es = append(es, e)
			} else {
				f.Fatalf("%s: no entry %s", c.name, n)
			}
		}
		m.Entries = es
		if m.Legacy {
			f.Add(encodeLegacy(m))
			continue
		}
		var buf bytes.Buffer
		if err := m.WriteGGUF(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
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

// encodeLegacy writes m in the legacy .dat layout (save_imatrix_legacy).
func encodeLegacy(m *Matrix) []byte {
	b := le32(int32(len(m.Entries)))
	for _, e := range m.Entries {
		b = append(b, le32(int32(len(e.Name)))...)
		b = append(b, e.Name...)
		b = append(b, le32(int32(e.Counts[0]), int32(len(e.InSum2)))...)
		for _, v := range e.InSum2 {
			b = append(b, le32(int32(math.Float32bits(v)))...)
		}
	}
	b = append(b, le32(int32(m.ChunkCount))...)
	if len(m.Datasets) > 0 {
		b = append(b, le32(int32(len(m.Datasets[0])))...)
		b = append(b, m.Datasets[0]...)
	}
	return b
}
