package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// Limits mirrored from ggml's gguf.cpp.
const (
	maxNameLen      = 63      // GGML_MAX_NAME-1: tensor names are at most 63 bytes
	maxDims         = 4       // GGML_MAX_DIMS
	maxStringLen    = 1 << 30 // GGUF_MAX_STRING_LENGTH
	maxArrayLen     = 1 << 30 // GGUF_MAX_ARRAY_ELEMENTS
	typeCount       = 43      // GGML_TYPE_COUNT at the reference commit
	defaultAlign    = 32      // GGUF_DEFAULT_ALIGNMENT
	magic           = "GGUF"
	latestVersion   = 3
	keyAlignment    = "general.alignment"
	headerBufferLen = 64 << 10
)

// GGUF metadata value types (gguf.h enum gguf_type).
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

var valueTypeSize = [...]int64{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

var valueTypeName = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name   string
	Shape  []int64    // graph order: outermost first (reverse of GGUF ne)
	Type   graph.Type // ggml id
	Offset int64      // relative to the data section start
	Size   int64      // bytes
}

// File is a parsed GGUF header plus access to the tensor data.
type File struct {
	Version    uint32
	KV         []graph.KV   // in file order
	Tensors    []TensorInfo // in file order
	Alignment  int64
	DataOffset int64 // absolute offset of the data section

	r      io.ReaderAt
	kvAt   []int64 // offset of each KV's key, for error messages
	size   int64
	path   string
	closer io.Closer
}

// Size returns the size of the underlying file in bytes.
func (f *File) Size() int64 { return f.size }

// Path returns the path the file was opened from ("" for Read).
func (f *File) Path() string { return f.path }

// Close closes the file opened by Open; it is a no-op for Read.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}

// TensorReader returns a reader over the i'th tensor's bytes.
func (f *File) TensorReader(i int) *io.SectionReader {
	t := f.Tensors[i]
	return io.NewSectionReader(f.r, f.DataOffset+t.Offset, t.Size)
}

// Get returns the value of a metadata key and whether it is present.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// TensorIndex returns the index of the named tensor, or -1.
func (f *File) TensorIndex(name string) int {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return i
		}
	}
	return -1
}

// Open opens and validates a GGUF file. Errors are prefixed with the path.
// The caller must Close the returned File.
func Open(path string) (*File, error) {
	fh, size, err := osfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := read(fh, size, path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Read parses and validates the GGUF file held by r, size bytes long.
// Tensor data is not read; TensorReader gives access to it.
func Read(r io.ReaderAt, size int64) (*File, error) { return read(r, size, "") }

// decoder reads the header sequentially through a buffer and knows how
// much of the file remains, so that no count read from the file can make
// it allocate more than the file could hold.
type decoder struct {
	br      *bufio.Reader
	path    string
	pos     int64 // absolute offset of the next byte
	size    int64
	version uint32
	scratch [8]byte
	arena   []byte // backing store for strings
}

func (d *decoder) errorf(off int64, format string, args ...any) error {
	return &FormatError{Path: d.path, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) remaining() int64 { return d.size - d.pos }

func (d *decoder) fill(b []byte, what string) error { return d.fill2(b, what, "") }

// fill2 reads len(b) bytes; what+suffix names them in errors (the two
// parts are joined only on error, so hot loops do not allocate).
func (d *decoder) fill2(b []byte, what, suffix string) error {
	if int64(len(b)) > d.remaining() {
		return d.errorf(d.pos, "unexpected end of file reading %s%s: need %d bytes, %d left", what, suffix, len(b), d.remaining())
	}
	if _, err := io.ReadFull(d.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return d.errorf(d.pos, "unexpected end of file reading %s%s", what, suffix)
		}
		return d.errorf(d.pos, "reading %s%s: %v", what, suffix, err)
	}
	d.pos += int64(len(b))
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.fill(d.scratch[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(d.scratch[:4]), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.fill(d.scratch[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(d.scratch[:8]), nil
}

// count reads a count or length: u32 in GGUF v1, u64 later.
func (d *decoder) count(what string) (uint64, error) {
	if d.version == 1 {
		v, err := d.u32(what)
		return uint64(v), err
	}
	return d.u64(what)
}

func (d *decoder) lenSize() int64 {
	if d.version == 1 {
		return 4
	}
	return 8
}

// str reads a length-prefixed string. Strings share arena chunks, so a
// 150k-token vocabulary costs a handful of allocations.
func (d *decoder) str(what string) (string, error) {
	at := d.pos
	var n uint64
	if d.version == 1 {
		if err := d.fill2(d.scratch[:4], what, " length"); err != nil {
			return "", err
		}
		n = uint64(binary.LittleEndian.Uint32(d.scratch[:4]))
	} else {
		if err := d.fill2(d.scratch[:8], what, " length"); err != nil {
			return "", err
		}
		n = binary.LittleEndian.Uint64(d.scratch[:8])
	}
	if n > uint64(d.remaining()) {
		return "", d.errorf(at, "%s length %d exceeds the %d bytes left in the file", what, n, d.remaining())
	}
	if n > maxStringLen {
		return "", d.errorf(at, "%s length %d exceeds the maximum %d", what, n, maxStringLen)
	}
	if n == 0 {
		return "", nil
	}
	if uint64(cap(d.arena)-len(d.arena)) < n {
		c := max(int(n), int(min(d.remaining(), headerBufferLen)))
		d.arena = make([]byte, 0, c)
	}
	start := len(d.arena)
	d.arena = d.arena[:start+int(n)]
	b := d.arena[start : start+int(n) : start+int(n)]
	if err := d.fill(b, what); err != nil {
		return "", err
	}
	return unsafe.String(&b[0], len(b)), nil
}

func read(r io.ReaderAt, size int64, path string) (*File, error) {
	d := &decoder{path: path, size: size}
	if size < 0 {
		return nil, d.errorf(0, "negative file size %d", size)
	}
	d.br = bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(size, headerBufferLen)))

	var m [4]byte
	if err := d.fill(m[:], "magic"); err != nil {
		return nil, err
	}
	if string(m[:]) != magic {
		return nil, d.errorf(0, "invalid magic %q, expected %q", m[:], magic)
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 0:
		return nil, d.errorf(4, "bad GGUF version 0")
	case version&0xFFFF == 0:
		return nil, d.errorf(4, "GGUF version %d is implausibly large: is the file big-endian?", version)
	case version > latestVersion:
		return nil, d.errorf(4, "GGUF version %d is newer than the supported version %d", version, latestVersion)
	}
	d.version = version
	f := &File{Version: version, r: r, size: size, path: path}

	// Counts. The smallest tensor info is a name length, n_dims, type and
	// offset; the smallest KV is a key length, a type and a one-byte value.
	at := d.pos
	nt, err := d.count("tensor count")
	if err != nil {
		return nil, err
	}
	at2 := d.pos
	nkv, err := d.count("metadata key/value count")
	if err != nil {
		return nil, err
	}
	minInfo := d.lenSize() + 4 + 4 + 8
	minKV := d.lenSize() + 4 + 1
	if nt > math.MaxInt64 || int64(nt) > d.remaining()/minInfo {
		return nil, d.errorf(at, "tensor count %d exceeds what a %d-byte file can hold", nt, size)
	}
	if nkv > math.MaxInt64 || int64(nkv) > d.remaining()/minKV {
		return nil, d.errorf(at2, "metadata key/value count %d exceeds what a %d-byte file can hold", nkv, size)
	}
	if int64(nt)*minInfo+int64(nkv)*minKV > d.remaining() {
		return nil, d.errorf(at, "%d tensors and %d key/values exceed what a %d-byte file can hold", nt, nkv, size)
	}

	// Key/value pairs.
	f.KV = make([]graph.KV, 0, nkv)
	seen := make(map[string]struct{}, nkv)
	for i := uint64(0); i < nkv; i++ {
		kat := d.pos
		key, err := d.str(fmt.Sprintf("key %d", i))
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, d.errorf(kat, "key %d is empty", i)
		}
		if _, dup := seen[key]; dup {
			return nil, d.errorf(kat, "duplicate key %q", key)
		}
		seen[key] = struct{}{}
		v, err := d.value(key)
		if err != nil {
			return nil, err
		}
		f.KV = append(f.KV, graph.KV{Key: key, Value: v})
		f.kvAt = append(f.kvAt, kat)
	}

	f.Alignment = defaultAlign
	if v, ok := f.Get(keyAlignment); ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, d.errorf(d.pos, "key %q must be of type u32 but is %s", keyAlignment, typeName(v))
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, d.errorf(d.pos, "alignment %d is not a power of 2", a)
		}
		f.Alignment = int64(a)
	}

	// Tensor infos.
	f.Tensors = make([]TensorInfo, 0, nt)
	infoAt := make([]int64, 0, nt) // offset of each info's offset field
	names := make(map[string]struct{}, nt)
	for i := uint64(0); i < nt; i++ {
		nat := d.pos
		name, err := d.str(fmt.Sprintf("tensor %d name", i))
		if err != nil {
			return nil, err
		}
		if len(name) > maxNameLen {
			return nil, d.errorf(nat, "tensor %d name is %d bytes long, the maximum is %d", i, len(name), maxNameLen)
		}
		if _, dup := names[name]; dup {
			return nil, d.errorf(nat, "duplicate tensor name %q", name)
		}
		names[name] = struct{}{}
		t, off, err := d.tensorInfo(name)
		if err != nil {
			return nil, err
		}
		f.Tensors = append(f.Tensors, t)
		infoAt = append(infoAt, off)
	}

	// Data section: aligned after the infos when there are tensors.
	f.DataOffset = d.pos
	if nt > 0 {
		f.DataOffset = pad(d.pos, f.Alignment)
		if f.DataOffset > size {
			return nil, d.errorf(d.pos, "data section would start at %d, past the end of the %d-byte file", f.DataOffset, size)
		}
	}
	var expect int64
	dataLen := size - f.DataOffset
	for i, t := range f.Tensors {
		if t.Offset != expect {
			return nil, d.errorf(infoAt[i], "tensor %q has offset %d, expected %d (tensor data must be contiguous in tensor-info order)", t.Name, t.Offset, expect)
		}
		if t.Size > dataLen-t.Offset {
			return nil, d.errorf(infoAt[i], "tensor %q data [%d, %d) runs past the end of the file (data section is %d bytes)", t.Name, f.DataOffset+t.Offset, f.DataOffset+t.Offset+t.Size, dataLen)
		}
		expect = pad(t.Offset+t.Size, f.Alignment)
	}
	return f, nil
}

// tensorInfo reads the rest of one tensor info after its name. It returns
// the offset of the info's data-offset field for error messages.
func (d *decoder) tensorInfo(name string) (TensorInfo, int64, error) {
	t := TensorInfo{Name: name}
	at := d.pos
	nd, err := d.u32("n_dims of tensor " + quote(name))
	if err != nil {
		return t, 0, err
	}
	if nd > maxDims {
		return t, 0, d.errorf(at, "tensor %q has %d dimensions, the maximum is %d", name, nd, maxDims)
	}
	ne := [maxDims]int64{1, 1, 1, 1}
	for j := range nd {
		dat := d.pos
		var v uint64
		if d.version == 1 {
			var v32 uint32
			v32, err = d.u32("dimension of tensor " + quote(name))
			v = uint64(v32)
		} else {
			v, err = d.u64("dimension of tensor " + quote(name))
		}
		if err != nil {
			return t, 0, err
		}
		if int64(v) < 0 {
			return t, 0, d.errorf(dat, "tensor %q dimension %d is negative (%d)", name, j, int64(v))
		}
		ne[j] = int64(v)
	}
	nel := int64(1)
	zero := false
	for _, n := range ne {
		if n == 0 {
			zero = true
		}
	}
	if !zero {
		for _, n := range ne {
			if nel > math.MaxInt64/n {
				return t, 0, d.errorf(at, "tensor %q shape %v has more elements than fit in int64", name, ne[:nd])
			}
			nel *= n
		}
	} else {
		nel = 0
	}

	tat := d.pos
	ty, err := d.u32("type of tensor " + quote(name))
	if err != nil {
		return t, 0, err
	}
	gt := graph.Type(ty)
	if ty >= typeCount || !gt.IsGGML() {
		return t, 0, d.errorf(tat, "tensor %q has unknown ggml type %d", name, int32(ty))
	}
	blk, tsz := gt.BlockSize(), gt.TypeSize()
	if ne[0]%blk != 0 {
		// GGUF v1/v2-era llama.cpp quantized rows of any length as one
		// flat run of blocks (stories260K's ffn_down, ne0=172, Q8_0).
		// Current llama.cpp rejects such tensors; we read them from those
		// old versions only, when the whole tensor is a whole number of
		// blocks, so their bytes stay addressable.
		if d.version >= 3 || nel%blk != 0 {
			return t, 0, d.errorf(tat, "tensor %q of type %v has %d elements per row, not a multiple of the block size %d", name, gt, ne[0], blk)
		}
	}
	if nel/blk > math.MaxInt64/tsz {
		return t, 0, d.errorf(at, "tensor %q size in bytes overflows int64", name)
	}
	t.Type = gt
	t.Size = nel / blk * tsz

	oat := d.pos
	off, err := d.u64("data offset of tensor " + quote(name))
	if err != nil {
		return t, 0, err
	}
	if off > math.MaxInt64 {
		return t, 0, d.errorf(oat, "tensor %q offset %d overflows int64", name, off)
	}
	t.Offset = int64(off)
	t.Shape = make([]int64, nd)
	for j := range nd {
		t.Shape[int(nd)-1-int(j)] = ne[j]
	}
	return t, oat, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// value reads one KV value (type tag included).
func (d *decoder) value(key string) (any, error) {
	at := d.pos
	typ, err := d.u32("type of key " + quote(key))
	if err != nil {
		return nil, err
	}
	if typ == typeArray {
		eat := d.pos
		et, err := d.u32("array element type of key " + quote(key))
		if err != nil {
			return nil, err
		}
		if et >= uint32(len(valueTypeSize)) || et == typeArray {
			return nil, d.errorf(eat, "key %q has invalid array element type %d", key, int32(et))
		}
		cat := d.pos
		n, err := d.count("array length of key " + quote(key))
		if err != nil {
			return nil, err
		}
		elem := valueTypeSize[et]
		if et == typeString {
			elem = d.lenSize()
		}
		if n > uint64(d.remaining()/elem) {
			return nil, d.errorf(cat, "key %q: array of %d %s exceeds the %d bytes left in the file", key, n, valueTypeName[et], d.remaining())
		}
		if n > maxArrayLen {
			return nil, d.errorf(cat, "key %q: array of %d elements exceeds the maximum %d", key, n, maxArrayLen)
		}
		return d.array(key, et, int(n))
	}
	if typ >= uint32(len(valueTypeSize)) {
		return nil, d.errorf(at, "key %q has invalid GGUF type %d", key, int32(typ))
	}
	if typ == typeString {
		return d.str("value of key " + quote(key))
	}
	b := d.scratch[:valueTypeSize[typ]]
	if err := d.fill(b, "value of key "+quote(key)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch typ {
	case typeUint8:
		return b[0], nil
	case typeInt8:
		return int8(b[0]), nil
	case typeUint16:
		return le.Uint16(b), nil
	case typeInt16:
		return int16(le.Uint16(b)), nil
	case typeUint32:
		return le.Uint32(b), nil
	case typeInt32:
		return int32(le.Uint32(b)), nil
	case typeFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case typeBool:
		return b[0] != 0, nil
	case typeUint64:
		return le.Uint64(b), nil
	case typeInt64:
		return int64(le.Uint64(b)), nil
	default: // typeFloat64
		return math.Float64frombits(le.Uint64(b)), nil
	}
}

// array reads n elements of type et; n has been checked against the file.
func (d *decoder) array(key string, et uint32, n int) (any, error) {
	what := "array element of key " + quote(key)
	if et == typeString {
		out := make([]string, n)
		for i := range out {
			s, err := d.str(what)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	raw := make([]byte, int64(n)*valueTypeSize[et])
	if err := d.fill(raw, what); err != nil {
		return nil, err
	}
	return decodeArray(et, raw, n), nil
}

func decodeArray(et uint32, raw []byte, n int) any {
	le := binary.LittleEndian
	switch et {
	case typeUint8:
		return raw
	case typeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out
	case typeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out
	case typeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out
	case typeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out
	case typeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out
	case typeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out
	case typeBool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out
	case typeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out
	case typeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out
	default: // typeFloat64
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out
	}
}

// pad rounds n up to a multiple of align (a power of two).
func pad(n, align int64) int64 { return (n + align - 1) &^ (align - 1) }
