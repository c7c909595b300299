package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/quantbridge/quantbridge/graph"
)

// Layout is a planned GGUF file: the header bytes (magic through the
// padding before the data section) and where every tensor goes.
type Layout struct {
	Header     []byte
	DataOffset int64
	Offsets    []int64 // absolute offset of each tensor's data
	Sizes      []int64 // each tensor's data size in bytes (before padding)
	Size       int64   // total file size, including the final padding
	Alignment  int64
}

// Plan lays out a GGUF v3 file holding kv (in the given order) and
// tensors (in the given order; their Offset and Size are computed, not
// trusted). alignment 0 means general.alignment from kv if present, else
// 32; a nonzero alignment must agree with a general.alignment KV. The
// layout is gguf.cpp's: tensor infos record n_dims without trailing unit
// dimensions of ne, data starts at the next alignment boundary and every
// tensor, the last included, is zero-padded to the alignment. A file with
// no tensors ends right after its metadata, with no padding, as
// llama.cpp's gguf-py writes vocab-only files (gguf.cpp would pad it;
// both read the same).
func Plan(kv []graph.KV, tensors []TensorInfo, alignment int64) (*Layout, error) {
	return PlanVersion(latestVersion, kv, tensors, alignment)
}

// PlanVersion is Plan writing the given GGUF version, 2 or 3 (their
// layouts are identical; only the version field differs). Version 2 also
// accepts the flat-block legacy tensors that the reader accepts in v1/v2
// files, so that such files re-write byte for byte.
func PlanVersion(version uint32, kv []graph.KV, tensors []TensorInfo, alignment int64) (*Layout, error) {
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("gguf: cannot write GGUF version %d (2 or 3)", version)
	}
	align, err := planAlignment(kv, alignment)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	e := encoder{w: &b}
	e.raw([]byte(magic))
	e.u32(version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kv)))
	keys := make(map[string]struct{}, len(kv))
	for i, p := range kv {
		if p.Key == "" {
			return nil, fmt.Errorf("gguf: key %d is empty", i)
		}
		if _, dup := keys[p.Key]; dup {
			return nil, fmt.Errorf("gguf: duplicate key %q", p.Key)
		}
		keys[p.Key] = struct{}{}
		if err := e.kv(p); err != nil {
			return nil, err
		}
	}
	l := &Layout{Alignment: align, Offsets: make([]int64, len(tensors)), Sizes: make([]int64, len(tensors))}
	names := make(map[string]struct{}, len(tensors))
	var rel int64
	for i, t := range tensors {
		if len(t.Name) > maxNameLen {
			return nil, fmt.Errorf("gguf: tensor name %q is %d bytes long, the maximum is %d", t.Name, len(t.Name), maxNameLen)
		}
		if _, dup := names[t.Name]; dup {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = struct{}{}
		ne, size, err := tensorLayout(t, version)
		if err != nil {
			return nil, err
		}
		e.str(t.Name)
		e.u32(uint32(len(ne)))
		for _, n := range ne {
			e.u64(uint64(n))
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(rel))
		l.Offsets[i] = rel
		l.Sizes[i] = size
		if size > math.MaxInt64-align-rel {
			return nil, fmt.Errorf("gguf: tensor %q: file size overflows int64", t.Name)
		}
		rel = pad(rel+size, align)
	}
	if len(tensors) > 0 {
		for int64(b.Len())%align != 0 {
			b.WriteByte(0)
		}
	}
	l.Header = b.Bytes()
	l.DataOffset = int64(len(l.Header))
	for i := range l.Offsets {
		l.Offsets[i] += l.DataOffset
	}
	l.Size = l.DataOffset + rel
	return l, nil
}

func planAlignment(kv []graph.KV, alignment int64) (int64, error) {
	var fromKV int64
	for _, p := range kv {
		if p.Key != keyAlignment {
			continue
		}
		a, ok := p.Value.(uint32)
		if !ok {
			return 0, fmt.Errorf("gguf: key %q must be of type u32 but is %s", keyAlignment, typeName(p.Value))
		}
		fromKV = int64(a)
	}
	switch {
	case alignment == 0 && fromKV == 0:
		alignment = defaultAlign
	case alignment == 0:
		alignment = fromKV
	case fromKV != 0 && fromKV != alignment:
		return 0, fmt.Errorf("gguf: alignment %d disagrees with %s = %d", alignment, keyAlignment, fromKV)
	}
	if alignment <= 0 || alignment&(alignment-1) != 0 || alignment > math.MaxUint32 {
		return 0, fmt.Errorf("gguf: alignment %d is not a power of 2", alignment)
	}
	return alignment, nil
}

// tensorLayout returns ne as gguf.cpp writes it (trailing 1s dropped,
// at least one dimension) and the data size in bytes.
func tensorLayout(t TensorInfo, version uint32) ([]int64, int64, error) {
	if len(t.Shape) > maxDims {
		return nil, 0, fmt.Errorf("gguf: tensor %q has %d dimensions, the maximum is %d", t.Name, len(t.Shape), maxDims)
	}
	if !t.Type.IsGGML() || uint32(t.Type) >= typeCount {
		return nil, 0, fmt.Errorf("gguf: tensor %q has type %v, which GGUF cannot hold", t.Name, t.Type)
	}
	ne := make([]int64, 0, maxDims)
	nel := int64(1)
	for j := len(t.Shape) - 1; j >= 0; j-- {
		n := t.Shape[j]
		if n < 0 {
			return nil, 0, fmt.Errorf("gguf: tensor %q has negative dimension %d", t.Name, n)
		}
		if n != 0 && nel > math.MaxInt64/n {
			return nil, 0, fmt.Errorf("gguf: tensor %q shape %v has more elements than fit in int64", t.Name, t.Shape)
		}
		nel *= n
		ne = append(ne, n)
	}
	for len(ne) > 1 && ne[len(ne)-1] == 1 {
		ne = ne[:len(ne)-1]
	}
	if len(ne) == 0 {
		ne = append(ne, 1)
	}
	blk, tsz := t.Type.BlockSize(), t.Type.TypeSize()
	if ne[0]%blk != 0 && (version >= 3 || nel%blk != 0) {
		return nil, 0, fmt.Errorf("gguf: tensor %q of type %v has %d elements per row, not a multiple of the block size %d", t.Name, t.Type, ne[0], blk)
	}
	if nel/blk > math.MaxInt64/tsz {
		return nil, 0, fmt.Errorf("gguf: tensor %q size in bytes overflows int64", t.Name)
	}
	return ne, nel / blk * tsz, nil
}

// Write writes a GGUF v3 file sequentially: Plan(kv, tensors, 0), then
// each tensor's bytes from data(i) followed by zero padding. data(i) must
// return exactly the planned number of bytes.
func Write(w io.Writer, kv []graph.KV, tensors []TensorInfo, data func(i int) (graph.Source, error)) error {
	l, err := Plan(kv, tensors, 0)
	if err != nil {
		return err
	}
	return l.write(w, tensors, data)
}

// Rewrite writes f out again from its parsed header and tensor data. A
// v2 or v3 file written by llama.cpp comes out byte for byte identical; a
// v1 file is written as v3 (as v2 if it holds flat-block legacy tensors).
func Rewrite(w io.Writer, f *File) error {
	v := f.Version
	if v < 2 {
		v = latestVersion
		for _, t := range f.Tensors {
			if len(t.Shape) > 0 && t.Shape[len(t.Shape)-1]%t.Type.BlockSize() != 0 {
				v = 2 // flat-block legacy tensors cannot be written as v3
			}
		}
	}
	l, err := PlanVersion(v, f.KV, f.Tensors, f.Alignment)
	if err != nil {
		return err
	}
	return l.write(w, f.Tensors, func(i int) (graph.Source, error) { return f.TensorReader(i), nil })
}

var zeros [4096]byte

func (l *Layout) write(w io.Writer, tensors []TensorInfo, data func(i int) (graph.Source, error)) error {
	if _, err := w.Write(l.Header); err != nil {
		return fmt.Errorf("gguf: writing header: %w", err)
	}
	pos := l.DataOffset
	for i := range tensors {
		src, err := data(i)
		if err != nil {
			return fmt.Errorf("gguf: tensor %q: %w", tensors[i].Name, err)
		}
		if err := checkSource(tensors[i].Name, src, l.Sizes[i]); err != nil {
			return err
		}
		n, err := io.Copy(w, io.NewSectionReader(src, 0, l.Sizes[i]))
		if err == nil && n != l.Sizes[i] {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("gguf: writing tensor %q: %w", tensors[i].Name, err)
		}
		pos += n
		if err := writeZeros(w, pad(pos, l.Alignment)-pos); err != nil {
			return fmt.Errorf("gguf: writing padding after tensor %q: %w", tensors[i].Name, err)
		}
		pos = pad(pos, l.Alignment)
	}
	return nil
}

func checkSource(name string, src graph.Source, want int64) error {
	if src == nil {
		return fmt.Errorf("gguf: tensor %q has no data", name)
	}
	if src.Size() != want {
		return fmt.Errorf("gguf: tensor %q data is %d bytes, its shape and type need %d", name, src.Size(), want)
	}
	return nil
}

// WriteTensor writes tensor i's data and its trailing zero padding at its
// planned offset. Calls for different tensors may run concurrently on an
// io.WriterAt such as *os.File; the header is written with
// w.WriteAt(l.Header, 0).
func (l *Layout) WriteTensor(w io.WriterAt, i int, src graph.Source) error {
	if i < 0 || i >= len(l.Offsets) {
		return fmt.Errorf("gguf: tensor index %d out of range [0, %d)", i, len(l.Offsets))
	}
	if err := checkSource(fmt.Sprintf("#%d", i), src, l.Sizes[i]); err != nil {
		return err
	}
	ow := io.NewOffsetWriter(w, l.Offsets[i])
	n, err := io.Copy(ow, io.NewSectionReader(src, 0, l.Sizes[i]))
	if err == nil && n != l.Sizes[i] {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		end := l.Offsets[i] + l.Sizes[i]
		err = writeZeros(ow, pad(end, l.Alignment)-end)
	}
	if err != nil {
		return fmt.Errorf("gguf: writing tensor %d at offset %d: %w", i, l.Offsets[i], err)
	}
	return nil
}

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// encoder appends little-endian GGUF fields to a buffer.
type encoder struct {
	w   *bytes.Buffer
	tmp [8]byte
}

func (e *encoder) raw(b []byte) { e.w.Write(b) }
func (e *encoder) u8(v uint8)   { e.w.WriteByte(v) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.tmp[:], v)
	e.w.Write(e.tmp[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.tmp[:], v)
	e.w.Write(e.tmp[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.tmp[:], v)
	e.w.Write(e.tmp[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.w.WriteString(s)
}
func (e *encoder) bool(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

var errValueType = errors.New("has a Go type GGUF cannot hold")

func (e *encoder) kv(p graph.KV) error {
	typ, elem, ok := valueType(p.Value)
	if !ok {
		return fmt.Errorf("gguf: key %q: value %s (%T)", p.Key, errValueType, p.Value)
	}
	e.str(p.Key)
	e.u32(typ)
	switch v := p.Value.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case bool:
		e.bool(v)
	case string:
		e.str(v)
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	default:
		e.u32(elem)
		e.array(p.Value)
	}
	return nil
}

func (e *encoder) array(v any) {
	switch a := v.(type) {
	case []uint8:
		e.u64(uint64(len(a)))
		e.raw(a)
	case []int8:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u8(uint8(x))
		}
	case []uint16:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u16(x)
		}
	case []int16:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u16(uint16(x))
		}
	case []uint32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []float32:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.bool(x)
		}
	case []string:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.str(x)
		}
	case []uint64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float64:
		e.u64(uint64(len(a)))
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	}
}
