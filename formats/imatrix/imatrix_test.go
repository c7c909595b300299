package imatrix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// The files under testdata/imatrix were written by llama-imatrix (llama.cpp
// 34af94cd) over testdata/kjv_eval.txt with -c 128 (see testdata/imatrix/README.md).

func TestReadGGUFReal(t *testing.T) {
	for _, tc := range []struct {
		file          string
		entries, nmat int
		moeName       string
		first, last   string
	}{
		{"kjv-llama.c128.imatrix.gguf", 42, 1, "", "blk.0.attn_k.weight", "blk.5.ffn_up.weight"},
		{"qwen3moe-tiny.c128.imatrix.gguf", 0, 8, "blk.0.ffn_down_exps.weight", "", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m, err := ReadFile(testref.Local(t, "imatrix", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Legacy || !m.HasMetadata || m.ChunkSize != 128 || m.ChunkCount < 1 {
				t.Fatalf("legacy %v metadata %v chunk size %d count %d", m.Legacy, m.HasMetadata, m.ChunkSize, m.ChunkCount)
			}
			if len(m.Datasets) != 1 || m.Datasets[0] != "testdata/kjv_eval.txt" {
				t.Errorf("datasets %q", m.Datasets)
			}
			if tc.entries > 0 && len(m.Entries) != tc.entries {
				t.Errorf("%d entries, want %d", len(m.Entries), tc.entries)
			}
			if tc.first != "" && (m.Entries[0].Name != tc.first || m.Entries[len(m.Entries)-1].Name != tc.last) {
				t.Errorf("entries %q … %q", m.Entries[0].Name, m.Entries[len(m.Entries)-1].Name)
			}
			tokens := float32(m.ChunkCount * m.ChunkSize)
			for _, e := range m.Entries {
				if len(e.InSum2) != e.NMat*e.NPerRow || len(e.Counts) != e.NMat {
					t.Fatalf("%s: %d sums %d counts for %d×%d", e.Name, len(e.InSum2), len(e.Counts), e.NMat, e.NPerRow)
				}
				if e.NMat == 1 && e.Counts[0] != tokens {
					t.Errorf("%s: count %v, want %v tokens", e.Name, e.Counts[0], tokens)
				}
			}
			if tc.moeName != "" {
				e := m.Lookup(tc.moeName)
				if e == nil || e.NMat != tc.nmat {
					t.Fatalf("%s: %+v", tc.moeName, e)
				}
				// top-2 routing: every token counted twice over the experts
				var sum float32
				for _, c := range e.Counts {
					sum += c
				}
				if sum != 2*tokens {
					t.Errorf("%s: expert counts sum to %v, want %v", tc.moeName, sum, 2*tokens)
				}
				imp, ok := m.Importance(tc.moeName)
				if !ok || len(imp) != e.NMat*e.NPerRow {
					t.Fatalf("importance: %d values", len(imp))
				}
				for j := 0; j < e.NMat; j++ {
					if e.Counts[j] > 0 && imp[j*e.NPerRow] != e.InSum2[j*e.NPerRow]/e.Counts[j] {
						t.Errorf("expert %d: importance %v, want %v", j, imp[j*e.NPerRow], e.InSum2[j*e.NPerRow]/e.Counts[j])
					}
				}
			}
		})
	}
}

// WriteGGUF reproduces llama-imatrix's files byte for byte.
func TestWriteGGUFIdentical(t *testing.T) {
	for _, f := range []string{"kjv-llama.c128.imatrix.gguf", "qwen3moe-tiny.c128.imatrix.gguf"} {
		p := testref.Local(t, "imatrix", f)
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.WriteGGUF(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: written %d bytes differ from llama-imatrix's %d", f, buf.Len(), len(want))
		}
	}
}

// The legacy file (--output-format dat) of the same run: 42 entries holding
// (sum/count)*ncall with ncall = 47 chunks; its importance equals the GGUF
// file's to float32 rounding.
func TestReadLegacyReal(t *testing.T) {
	d, err := ReadFile(testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := ReadFile(testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Legacy || d.ChunkCount != 47 || len(d.Datasets) != 1 || d.Datasets[0] != "testdata/kjv_eval.txt" {
		t.Fatalf("legacy %v chunks %d datasets %q", d.Legacy, d.ChunkCount, d.Datasets)
	}
	if len(d.Entries) != len(g.Entries) {
		t.Fatalf("%d entries, GGUF has %d", len(d.Entries), len(g.Entries))
	}
	for i, e := range d.Entries {
		if e.Name != g.Entries[i].Name || e.Counts[0] != 47 || len(e.InSum2) != len(g.Entries[i].InSum2) {
			t.Fatalf("entry %d: %s ncall %v %d values; GGUF %s %d", i, e.Name, e.Counts[0], len(e.InSum2), g.Entries[i].Name, len(g.Entries[i].InSum2))
		}
		a, _ := d.Importance(e.Name)
		b, _ := g.Importance(e.Name)
		for j := range a {
			if math.Abs(float64(a[j]-b[j])) > 1e-6*math.Abs(float64(b[j])) {
				t.Fatalf("%s[%d]: legacy importance %v, GGUF %v", e.Name, j, a[j], b[j])
			}
		}
	}
}

func le32(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func f32(v float32) int32 { return int32(math.Float32bits(v)) }

func TestImportanceRules(t *testing.T) {
	m := &Matrix{Entries: []*Entry{
		{Name: "a", NPerRow: 2, NMat: 3, InSum2: []float32{6, 9, 1, 2, 10, 20}, Counts: []float32{3, 0, 2.4}},
	}}
	got, ok := m.Importance("a")
	want := []float32{2, 3, 1, 1, 5, 10} // count 0: ones; 2.4 rounds to 2
	if !ok || !equal(got, want) {
		t.Errorf("GGUF importance %v, want %v", got, want)
	}
	if _, ok := m.Importance("b"); ok {
		t.Error("absent entry found")
	}
	l := &Matrix{Legacy: true, Entries: []*Entry{
		{Name: "x", NPerRow: 2, NMat: 1, InSum2: []float32{8, 4}, Counts: []float32{4}},
		{Name: "y", NPerRow: 2, NMat: 1, InSum2: []float32{8, 4}, Counts: []float32{0}},
	}}
	if got, _ := l.Importance("x"); !equal(got, []float32{2, 1}) {
		t.Errorf("legacy importance %v", got)
	}
	if got, _ := l.Importance("y"); !equal(got, []float32{8, 4}) {
		t.Errorf("legacy importance with ncall 0: %v, want the values", got)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadLegacyRules(t *testing.T) {
	var b []byte
	b = append(b, le32(2)...)
	b = append(b, le32(3)...)
	b = append(b, "b\x00z"...) // names end at a NUL, as C strings
	b = append(b, le32(5, 1, f32(1.5))...)
	b = append(b, le32(1)...)
	b = append(b, 'a')
	b = append(b, le32(7, 2, f32(1), f32(2))...)
	m, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 2 || m.Entries[0].Name != "a" || m.Entries[1].Name != "b" || m.ChunkCount != 0 || m.Datasets != nil {
		t.Fatalf("entries %+v %+v chunks %d datasets %q", m.Entries[0], m.Entries[1], m.ChunkCount, m.Datasets)
	}
	if e := m.Lookup("b"); e.Counts[0] != 5 || e.InSum2[0] != 1.5 {
		t.Errorf("b: %+v", e)
	}
	// with the trailer
	b2 := append(append([]byte(nil), b...), le32(9, 4)...)
	b2 = append(b2, "x.tx"...)
	m, err = Read(bytes.NewReader(b2), int64(len(b2)))
	if err != nil || m.ChunkCount != 9 || len(m.Datasets) != 1 || m.Datasets[0] != "x.tx" {
		t.Fatalf("trailer: %v %+v", err, m)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		msg  string
	}{
		{"empty", nil, "entry count"},
		{"zero entries", le32(0), "no data"},
		{"negative name length", le32(1, -1), "negative name length"},
		{"huge name", le32(1, 1<<30), "past the end"},
		{"zero values", append(append(le32(1, 1), 'a'), le32(1, 0)...), "0 values"},
		{"huge values", append(append(le32(1, 1), 'a'), le32(1, 1<<30)...), "past the end"},
		{"truncated values", append(append(le32(1, 1), 'a'), le32(1, 2, 0)...), "past the end"},
	} {
		_, err := Read(bytes.NewReader(tc.b), int64(len(tc.b)))
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want a *FormatError with %q", tc.name, err, tc.msg)
		}
	}
}

func TestReadFileErrorNamesPath(t *testing.T) {
	p := t.TempDir() + "/bad.imatrix"
	if err := os.WriteFile(p, le32(0), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":") {
		t.Fatalf("error %v does not name %s", err, p)
	}
}

// GGUF-level rules: pairs must be complete, F32, and the counts must divide
// the sums.
func TestReadGGUFRules(t *testing.T) {
	good := &Matrix{ChunkCount: 1, ChunkSize: 4, Datasets: []string{"t"}, Entries: []*Entry{
		{Name: "blk.0.w", NPerRow: 2, NMat: 2, InSum2: []float32{1, 2, 3, 4}, Counts: []float32{4, 0}},
	}}
	var buf bytes.Buffer
	if err := good.WriteGGUF(&buf); err != nil {
		t.Fatal(err)
	}
	m, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if e := m.Lookup("blk.0.w"); e == nil || e.NMat != 2 || e.NPerRow != 2 || !equal(e.InSum2, good.Entries[0].InSum2) || !equal(e.Counts, good.Entries[0].Counts) {
		t.Fatalf("round trip: %+v", m.Entries)
	}
	if got, _ := m.Importance("blk.0.w"); !equal(got, []float32{0.25, 0.5, 1, 1}) {
		t.Errorf("importance %v", got)
	}
	// an empty matrix still writes a readable-by-gguf file, padded to 32
	var empty bytes.Buffer
	if err := (&Matrix{}).WriteGGUF(&empty); err != nil || empty.Len()%32 != 0 {
		t.Fatalf("empty: %v, %d bytes", err, empty.Len())
	}
	if _, err := Read(bytes.NewReader(empty.Bytes()), int64(empty.Len())); err == nil || !strings.Contains(err.Error(), "no tensors") {
		t.Errorf("empty matrix read: %v", err)
	}
}

// encodeLegacy (the fuzz seeds' writer) reproduces llama-imatrix's legacy
// file byte for byte.
func TestEncodeLegacyReal(t *testing.T) {
	p := testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.dat")
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := encodeLegacy(m); !bytes.Equal(got, want) {
		t.Errorf("re-encoded legacy file (%d bytes) differs from llama-imatrix's (%d)", len(got), len(want))
	}
}

// WriteDat turns llama-imatrix's GGUF output into the legacy file the same
// run writes with --output-format dat, byte for byte.
func TestWriteDatIdentical(t *testing.T) {
	g, err := ReadFile(testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(testref.Local(t, "imatrix", "kjv-llama.c128.imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := g.WriteDat(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteDat: %d bytes differ from llama-imatrix's %d", buf.Len(), len(want))
	}
	// partial data: an expert never routed to stores ones; an entry without
	// any count is left out
	m := &Matrix{ChunkSize: 4, ChunkCount: 2, Datasets: []string{"a.txt"}, Entries: []*Entry{
		{Name: "e", NPerRow: 1, NMat: 2, InSum2: []float32{6, 5}, Counts: []float32{3, 0}},
		{Name: "z", NPerRow: 1, NMat: 1, InSum2: []float32{1}, Counts: []float32{0}},
	}}
	buf.Reset()
	if err := m.WriteDat(&buf); err != nil {
		t.Fatal(err)
	}
	d, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	// ncall = ⌈3/4⌉ = 1: values (6/3)·1 and 1
	if len(d.Entries) != 1 || d.Entries[0].Counts[0] != 1 || !equal(d.Entries[0].InSum2, []float32{2, 1}) || d.ChunkCount != 2 || d.Datasets[0] != "a.txt" {
		t.Errorf("partial: %+v %+v", d, d.Entries[0])
	}
	if err := d.WriteDat(&buf); err == nil {
		t.Error("WriteDat of a legacy matrix: no error")
	}
}
