// Package imatrix reads and writes llama.cpp importance matrices: the
// statistics llama-imatrix collects (per input column of every matrix, the
// sum of squared activations, and the number of tokens that went through it)
// and llama-quantize consumes to weight its quantization searches.
//
// Two file formats exist at llama.cpp commit 34af94cd, and Read tells them
// apart by content as common_imatrix_load does (a GGUF file first, anything
// else as the legacy format):
//
//   - GGUF (what llama-imatrix writes by default): general.type = "imatrix",
//     imatrix.datasets ([]string), imatrix.chunk_count and imatrix.chunk_size
//     (u32), and for every matrix NAME two F32 tensors, NAME.in_sum2 (ne =
//     [n_per_row, n_mat], the raw sums) and NAME.counts (ne = [1, n_mat], the
//     token count of each expert, one for a dense matrix).
//   - legacy .dat (llama-imatrix --output-format dat): int32 entry count, then
//     per entry an int32-length name, int32 ncall, int32 nval and nval float32
//     values holding (sum/count)*ncall; optionally an int32 chunk count and an
//     int32-length dataset name. All little-endian. A legacy Entry has NMat = 1
//     and Counts = {ncall}, its InSum2 the stored values (Matrix.Legacy says
//     which semantics Entry values have).
//
// Importance derives, from either, what llama-quantize hands its quantizers
// (tools/quantize/quantize.cpp load_imatrix). WriteGGUF writes llama-imatrix's
// GGUF layout byte for byte, WriteDat its legacy file (from raw sums).
//
// Every count and length read from a file is checked against the bytes that
// remain before anything is allocated; errors are *FormatError values naming
// the path (ReadFile) and the byte offset.
package imatrix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
)

// Metadata keys of the GGUF format (common/imatrix-loader.h).
const (
	KeyDatasets   = "imatrix.datasets"
	KeyChunkCount = "imatrix.chunk_count"
	KeyChunkSize  = "imatrix.chunk_size"
)

// Entry is one matrix's statistics: InSum2 holds NMat×NPerRow sums of squared
// activations (NMat experts, 1 for a dense matrix), Counts the NMat token
// counts.
type Entry struct {
	Name          string
	NPerRow, NMat int
	InSum2        []float32
	Counts        []float32
}

// Matrix is an importance matrix file's content.
type Matrix struct {
	Datasets              []string
	ChunkCount, ChunkSize int
	Entries               []*Entry // sorted by name

	// Legacy is set for a matrix read from the legacy .dat format: InSum2
	// then holds (sum/count)*ncall and Counts the single ncall.
	Legacy bool
	// HasMetadata is set when a GGUF file holds all three imatrix.* keys;
	// llama-quantize refuses a GGUF imatrix without them.
	HasMetadata bool
}

// FormatError reports a malformed imatrix file.
type FormatError struct {
	Path   string // empty when reading from an io.ReaderAt
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("imatrix: offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s: imatrix: offset %d: %s", e.Path, e.Offset, e.Msg)
}

// ReadFile reads the imatrix file at path; errors name the path.
func ReadFile(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	m, err := Read(f, st.Size())
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Path = path
			return nil, fe
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Read reads an imatrix held by r, size bytes long: GGUF when it starts with
// the GGUF magic, the legacy format otherwise.
func Read(r io.ReaderAt, size int64) (*Matrix, error) {
	var magic [4]byte
	if size >= 4 {
		if _, err := r.ReadAt(magic[:], 0); err != nil {
			return nil, &FormatError{Offset: 0, Msg: err.Error()}
		}
	}
	if string(magic[:]) == "GGUF" {
		return readGGUF(r, size)
	}
	return readLegacy(r, size)
}

func readGGUF(r io.ReaderAt, size int64) (*Matrix, error) {
	f, err := gguf.Read(r, size)
	if err != nil {
		var ge *gguf.FormatError
		if errors.As(err, &ge) {
			return nil, &FormatError{Offset: ge.Offset, Msg: ge.Msg}
		}
		return nil, &FormatError{Msg: err.Error()}
	}
	if len(f.Tensors) < 1 {
		return nil, &FormatError{Offset: f.DataOffset, Msg: "no tensors (no data)"}
	}
	m := &Matrix{}
	// common_imatrix_load takes each key only with the expected type.
	nkeys := 0
	if v, ok := f.Get(KeyDatasets); ok {
		nkeys++
		if ds, ok := v.([]string); ok {
			m.Datasets = ds
		}
	}
	if v, ok := f.Get(KeyChunkCount); ok {
		nkeys++
		if u, ok := v.(uint32); ok {
			m.ChunkCount = int(int32(u))
		}
	}
	if v, ok := f.Get(KeyChunkSize); ok {
		nkeys++
		if u, ok := v.(uint32); ok {
			m.ChunkSize = int(int32(u))
		}
	}
	m.HasMetadata = nkeys == 3

	type pair struct{ sums, counts int }
	pairs := map[string]*pair{}
	for i, t := range f.Tensors {
		var name string
		var isSum bool
		switch {
		case strings.HasSuffix(t.Name, ".in_sum2"):
			name, isSum = strings.TrimSuffix(t.Name, ".in_sum2"), true
		case strings.HasSuffix(t.Name, ".counts"):
			name = strings.TrimSuffix(t.Name, ".counts")
		default:
			continue
		}
		p := pairs[name]
		if p == nil {
			p = &pair{-1, -1}
			pairs[name] = p
		}
		if isSum {
			p.sums = i
		} else {
			p.counts = i
		}
	}
	for name, p := range pairs {
		if p.sums < 0 || p.counts < 0 {
			return nil, &FormatError{Offset: f.DataOffset, Msg: fmt.Sprintf("mismatched sums and counts for %q", name)}
		}
		ts, tc := f.Tensors[p.sums], f.Tensors[p.counts]
		if ts.Type != graph.F32 || tc.Type != graph.F32 {
			return nil, &FormatError{Offset: f.DataOffset + ts.Offset, Msg: fmt.Sprintf("sums and counts for %q must be F32", name)}
		}
		sums, err := readF32(f, p.sums)
		if err != nil {
			return nil, err
		}
		counts, err := readF32(f, p.counts)
		if err != nil {
			return nil, err
		}
		if len(counts) == 0 || len(sums)%len(counts) != 0 {
			return nil, &FormatError{Offset: f.DataOffset + tc.Offset, Msg: fmt.Sprintf("%q: %d sums do not split into %d matrices", name, len(sums), len(counts))}
		}
		m.Entries = append(m.Entries, &Entry{Name: name, NPerRow: len(sums) / len(counts), NMat: len(counts), InSum2: sums, Counts: counts})
	}
	m.sort()
	return m, nil
}

func readF32(f *gguf.File, i int) ([]float32, error) {
	t := f.Tensors[i]
	b := make([]byte, t.Size) // t.Size lies inside the file: gguf.Read checked it
	if _, err := f.TensorReader(i).ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, &FormatError{Offset: f.DataOffset + t.Offset, Msg: fmt.Sprintf("%s: %v", t.Name, err)}
	}
	v := make([]float32, len(b)/4)
	for j := range v {
		v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
	}
	return v, nil
}

// legacyReader reads little-endian values sequentially and checks every
// length against the bytes that remain.
type legacyReader struct {
	r    io.ReaderAt
	off  int64
	size int64
}

func (l *legacyReader) bytes(n int64, what string) ([]byte, error) {
	if n < 0 || n > l.size-l.off {
		return nil, &FormatError{Offset: l.off, Msg: fmt.Sprintf("%s: %d bytes past the end of the file (%d left)", what, n, l.size-l.off)}
	}
	b := make([]byte, n)
	if _, err := l.r.ReadAt(b, l.off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, &FormatError{Offset: l.off, Msg: fmt.Sprintf("%s: %v", what, err)}
	}
	l.off += n
	return b, nil
}

func (l *legacyReader) i32(what string) (int32, error) {
	b, err := l.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b)), nil
}

// cstring is what llama.cpp makes of a length-delimited name: a C string,
// ending at the first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func readLegacy(r io.ReaderAt, size int64) (*Matrix, error) {
	l := &legacyReader{r: r, size: size}
	n, err := l.i32("entry count")
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf("no data (%d entries)", n)}
	}
	byName := map[string]*Entry{}
	for i := int32(0); i < n; i++ {
		at := l.off
		ln, err := l.i32("name length")
		if err != nil {
			return nil, err
		}
		if ln < 0 {
			return nil, &FormatError{Offset: at, Msg: fmt.Sprintf("entry %d: negative name length %d", i+1, ln)}
		}
		nb, err := l.bytes(int64(ln), "name")
		if err != nil {
			return nil, err
		}
		ncall, err := l.i32("ncall")
		if err != nil {
			return nil, err
		}
		at = l.off
		nval, err := l.i32("value count")
		if err != nil {
			return nil, err
		}
		if nval < 1 {
			return nil, &FormatError{Offset: at, Msg: fmt.Sprintf("entry %d: %d values", i+1, nval)}
		}
		vb, err := l.bytes(4*int64(nval), "values")
		if err != nil {
			return nil, err
		}
		v := make([]float32, nval)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(vb[4*j:]))
		}
		name := cstring(nb)
		// a repeated name replaces the earlier entry, as in llama.cpp's std::map
		byName[name] = &Entry{Name: name, NPerRow: int(nval), NMat: 1, InSum2: v, Counts: []float32{float32(ncall)}}
	}
	m := &Matrix{Legacy: true}
	for _, e := range byName {
		m.Entries = append(m.Entries, e)
	}
	m.sort()
	// the optional trailer: chunk count, then the dataset name
	if l.size-l.off >= 4 {
		c, _ := l.i32("chunk count")
		m.ChunkCount = int(c)
		if l.size-l.off >= 4 {
			at := l.off
			ln, _ := l.i32("dataset length")
			if ln > 0 {
				if b, err := l.bytes(int64(ln), "dataset"); err == nil {
					m.Datasets = []string{cstring(b)}
				} else {
					l.off = at + 4
				}
			}
		}
	}
	return m, nil
}

func (m *Matrix) sort() {
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Name < m.Entries[j].Name })
}

// Lookup returns the entry of the named matrix (GGUF spelling, e.g.
// "blk.0.attn_q.weight"), or nil.
func (m *Matrix) Lookup(name string) *Entry {
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Name >= name })
	if i < len(m.Entries) && m.Entries[i].Name == name {
		return m.Entries[i]
	}
	return nil
}

// Importance returns what llama-quantize passes ggml_quantize_chunk as the
// importance of tensor name: NMat×NPerRow values (per expert, NPerRow),
// and false when the matrix has no entry for it.
//
// As tools/quantize/quantize.cpp load_imatrix computes them: from a GGUF
// imatrix, each expert's sums divided (in float32) by its count rounded to
// the nearest integer, or all ones where that count is 0 (an expert the
// calibration text never reached); from a legacy file, the stored values
// divided by ncall, or the stored values as they are when ncall ≤ 0.
func (m *Matrix) Importance(name string) ([]float32, bool) {
	e := m.Lookup(name)
	if e == nil {
		return nil, false
	}
	out := make([]float32, len(e.InSum2))
	if m.Legacy {
		var ncall float32
		if len(e.Counts) > 0 {
			ncall = e.Counts[0]
		}
		for i, v := range e.InSum2 {
			if ncall > 0 {
				out[i] = v / ncall
			} else {
				out[i] = v
			}
		}
		return out, true
	}
	for j := 0; j < e.NMat; j++ {
		count := roundCount(e.Counts[j])
		row := out[j*e.NPerRow : (j+1)*e.NPerRow]
		sums := e.InSum2[j*e.NPerRow : (j+1)*e.NPerRow]
		for i := range row {
			if count > 0 {
				row[i] = sums[i] / count
			} else {
				row[i] = 1
			}
		}
	}
	return out, true
}

// roundCount is (float)std::lround(c): counts are stored as float32 and read
// back as integers.
func roundCount(c float32) float32 {
	if math.IsNaN(float64(c)) {
		return 0
	}
	return float32(math.Round(float64(c)))
}

// WriteGGUF writes m as llama-imatrix writes its GGUF output
// (IMatrixCollector::save_imatrix): KVs general.type, imatrix.datasets,
// imatrix.chunk_count, imatrix.chunk_size in that order; for each entry in
// name order NAME.in_sum2 (F32, ne [NPerRow, NMat]) and NAME.counts (F32, ne
// [1, NMat]), entries without values left out; alignment 32. Values are
// written as they are (a Matrix read from a legacy file keeps the legacy
// semantics).
func (m *Matrix) WriteGGUF(w io.Writer) error {
	datasets := m.Datasets
	if datasets == nil {
		datasets = []string{}
	}
	if m.ChunkCount < 0 || m.ChunkCount > math.MaxUint32 || m.ChunkSize < 0 || m.ChunkSize > math.MaxUint32 {
		return fmt.Errorf("imatrix: chunk count %d or size %d out of range", m.ChunkCount, m.ChunkSize)
	}
	kv := []graph.KV{
		{Key: "general.type", Value: "imatrix"},
		{Key: KeyDatasets, Value: datasets},
		{Key: KeyChunkCount, Value: uint32(m.ChunkCount)},
		{Key: KeyChunkSize, Value: uint32(m.ChunkSize)},
	}
	entries := append([]*Entry(nil), m.Entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	var tensors []gguf.TensorInfo
	var data [][]float32
	for _, e := range entries {
		if len(e.InSum2) == 0 || e.NMat == 0 {
			continue
		}
		if e.NMat < 0 || e.NPerRow < 0 || len(e.InSum2) != e.NMat*e.NPerRow || len(e.Counts) != e.NMat {
			return fmt.Errorf("imatrix: entry %q: %d sums and %d counts for %d×%d", e.Name, len(e.InSum2), len(e.Counts), e.NMat, e.NPerRow)
		}
		tensors = append(tensors,
			gguf.TensorInfo{Name: e.Name + ".in_sum2", Shape: []int64{int64(e.NMat), int64(e.NPerRow)}, Type: graph.F32},
			gguf.TensorInfo{Name: e.Name + ".counts", Shape: []int64{int64(e.NMat), 1}, Type: graph.F32})
		data = append(data, e.InSum2, e.Counts)
	}
	if len(tensors) == 0 {
		// gguf.Write ends a tensorless file after its metadata; gguf.cpp
		// (gguf_write_to_file) pads it to the alignment.
		var buf bytes.Buffer
		if err := gguf.Write(&buf, kv, nil, nil); err != nil {
			return err
		}
		buf.Write(make([]byte, (32-buf.Len()%32)%32))
		_, err := w.Write(buf.Bytes())
		return err
	}
	return gguf.Write(w, kv, tensors, func(i int) (graph.Source, error) {
		v := data[i]
		b := make([]byte, 4*len(v))
		for j, x := range v {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
		}
		return bytes.NewReader(b), nil
	})
}

// WriteDat writes m in the legacy format as llama-imatrix --output-format
// dat does (IMatrixCollector::save_imatrix_legacy) from raw sums and counts:
// entries whose counts are all zero are left out; each entry stores ncall =
// ⌈max count / ChunkSize⌉ and, per value, (sum/count)·ncall in float32 (1·ncall
// for an expert with count 0); then ChunkCount and the first dataset (an
// empty name when there is none). m must hold raw sums (not be Legacy) and
// have a positive ChunkSize.
func (m *Matrix) WriteDat(w io.Writer) error {
	if m.Legacy {
		return errors.New("imatrix: WriteDat: the matrix already holds legacy values")
	}
	if m.ChunkSize <= 0 {
		return fmt.Errorf("imatrix: WriteDat: chunk size %d", m.ChunkSize)
	}
	entries := append([]*Entry(nil), m.Entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	var keep []*Entry
	for _, e := range entries {
		for _, c := range e.Counts {
			if c != 0 {
				keep = append(keep, e)
				break
			}
		}
	}
	var b []byte
	put := func(v int32) { b = binary.LittleEndian.AppendUint32(b, uint32(v)) }
	put(int32(len(keep)))
	for _, e := range keep {
		if e.NMat <= 0 || len(e.Counts) != e.NMat || len(e.InSum2) != e.NMat*e.NPerRow {
			return fmt.Errorf("imatrix: entry %q: %d sums and %d counts for %d×%d", e.Name, len(e.InSum2), len(e.Counts), e.NMat, e.NPerRow)
		}
		put(int32(len(e.Name)))
		b = append(b, e.Name...)
		var mx int64
		for _, c := range e.Counts {
			mx = max(mx, int64(c))
		}
		ncall := int32((mx + int64(m.ChunkSize) - 1) / int64(m.ChunkSize))
		put(ncall)
		put(int32(len(e.InSum2)))
		for i, v := range e.InSum2 {
			count := float32(int64(e.Counts[i/e.NPerRow]))
			if count == 0 {
				v, count = 1, 1
			}
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v/count*float32(ncall)))
		}
	}
	put(int32(m.ChunkCount))
	ds := ""
	if len(m.Datasets) > 0 {
		ds = m.Datasets[len(m.Datasets)-1]
	}
	put(int32(len(ds)))
	b = append(b, ds...)
	_, err := w.Write(b)
	return err
}
