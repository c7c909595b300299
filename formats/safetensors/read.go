package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// MaxHeaderSize is the largest header the reference implementation accepts
// (safetensors/src/tensor.rs MAX_HEADER_SIZE).
const MaxHeaderSize = 100_000_000

// TensorInfo is one tensor entry of a header.
type TensorInfo struct {
	Name  string
	DType graph.Type
	Shape []int64
	// Begin and End are the data_offsets as written: relative to the start
	// of the data section, End exclusive.
	Begin, End int64
}

// Elements returns the number of elements (1 for a scalar).
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is a parsed and validated safetensors file. Its tensor data stays in
// the underlying io.ReaderAt.
type File struct {
	Path string
	// Metadata is __metadata__; nil when absent or JSON null.
	Metadata map[string]string
	// MetadataKeys are Metadata's keys in the order the header lists them.
	MetadataKeys []string
	// Tensors are in header order (the JSON object's key order as written),
	// which need not be data order.
	Tensors    []TensorInfo
	HeaderSize int64 // the u64 N
	DataOffset int64 // 8 + N
	Size       int64 // the file size

	r      io.ReaderAt
	closer io.Closer
	index  map[string]int
}

// Index returns the position of the named tensor in Tensors, or -1.
func (f *File) Index(name string) int {
	if i, ok := f.index[name]; ok {
		return i
	}
	return -1
}

// Section returns a reader over the data of Tensors[i].
func (f *File) Section(i int) *io.SectionReader {
	t := &f.Tensors[i]
	return io.NewSectionReader(f.r, f.DataOffset+t.Begin, t.End-t.Begin)
}

// Close closes the file if Open opened it; it is a no-op for Read.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer = nil
	return c.Close()
}

// Open opens and validates the safetensors file at path. The caller must
// Close it.
func Open(path string) (*File, error) {
	fh, size, err := osfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := read(fh, size, path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Read parses and validates a safetensors file of the given size from r.
// Only the header is read; Section gives access to tensor data.
func Read(r io.ReaderAt, size int64) (*File, error) {
	return read(r, size, "")
}

func read(r io.ReaderAt, size int64, path string) (*File, error) {
	if size < 8 {
		return nil, formatErr(path, 0, "file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, formatErr(path, 0, "reading header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(size-8) {
		return nil, formatErr(path, 8, "header length %d exceeds file size %d", n, size)
	}
	if n > MaxHeaderSize {
		return nil, formatErr(path, 8, "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	buf := make([]byte, n)
	if err := readFull(r, buf, 8); err != nil {
		return nil, formatErr(path, 8, "reading %d-byte header: %v", n, err)
	}
	f := &File{
		Path:       path,
		HeaderSize: int64(n),
		DataOffset: 8 + int64(n),
		Size:       size,
		r:          r,
	}
	if err := f.parseHeader(buf); err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	k, err := r.ReadAt(b, off)
	if k == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// headerParser walks the header JSON token by token so that key order is
// kept and every error carries a file offset.
type headerParser struct {
	f   *File
	buf []byte
	dec *json.Decoder
}

func (p *headerParser) off() int64 { return 8 + p.dec.InputOffset() }

func (p *headerParser) errf(format string, args ...any) error {
	return formatErr(p.f.Path, p.off(), format, args...)
}

// jsonErr converts a decoder error into a FormatError at the right offset.
func (p *headerParser) jsonErr(err error, what string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return formatErr(p.f.Path, 8+se.Offset, "malformed header JSON in %s: %v", what, se)
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return p.errf("header JSON ends inside %s", what)
	}
	return p.errf("malformed header JSON in %s: %v", what, err)
}

func (p *headerParser) token(what string) (json.Token, error) {
	t, err := p.dec.Token()
	if err != nil {
		return nil, p.jsonErr(err, what)
	}
	return t, nil
}

func (f *File) parseHeader(buf []byte) error {
	if !utf8.Valid(buf) {
		i := 0
		for i < len(buf) {
			r, w := utf8.DecodeRune(buf[i:])
			if r == utf8.RuneError && w <= 1 {
				break
			}
			i += w
		}
		return formatErr(f.Path, 8+int64(i), "header is not valid UTF-8")
	}
	if len(buf) == 0 || buf[0] != '{' {
		return formatErr(f.Path, 8, "header does not start with '{'")
	}
	p := &headerParser{f: f, buf: buf, dec: json.NewDecoder(bytes.NewReader(buf))}
	p.dec.UseNumber()
	if _, err := p.token("header"); err != nil {
		return err
	}
	f.index = make(map[string]int)
	sawMeta := false
	for p.dec.More() {
		keyOff := p.off()
		t, err := p.token("header key")
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok {
			return p.errf("header key is %v, not a string", t)
		}
		if key == "__metadata__" {
			if sawMeta {
				return formatErr(f.Path, keyOff, "duplicate __metadata__")
			}
			sawMeta = true
			if err := p.parseMetadata(); err != nil {
				return err
			}
			continue
		}
		if _, dup := f.index[key]; dup {
			return formatErr(f.Path, keyOff, "duplicate tensor name %q", key)
		}
		ti, err := p.parseTensor(key, keyOff)
		if err != nil {
			return err
		}
		f.index[key] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	if _, err := p.token("header"); err != nil { // the closing '}'
		return err
	}
	end := p.dec.InputOffset()
	for i := end; i < int64(len(buf)); i++ {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return formatErr(f.Path, 8+i, "unexpected byte %q after the header JSON object", buf[i])
		}
	}
	return nil
}

func (p *headerParser) parseMetadata() error {
	t, err := p.token("__metadata__")
	if err != nil {
		return err
	}
	if t == nil {
		return nil // JSON null, as MLX writes
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return p.errf("__metadata__ is %v, not an object or null", t)
	}
	meta := make(map[string]string)
	for p.dec.More() {
		t, err := p.token("__metadata__ key")
		if err != nil {
			return err
		}
		k, ok := t.(string)
		if !ok {
			return p.errf("__metadata__ key is %v, not a string", t)
		}
		t, err = p.token("__metadata__ value")
		if err != nil {
			return err
		}
		v, ok := t.(string)
		if !ok {
			return p.errf("__metadata__ value of %q is not a string", k)
		}
		if _, dup := meta[k]; dup {
			return p.errf("duplicate __metadata__ key %q", k)
		}
		meta[k] = v
		p.f.MetadataKeys = append(p.f.MetadataKeys, k)
	}
	if _, err := p.token("__metadata__"); err != nil {
		return err
	}
	p.f.Metadata = meta
	return nil
}

func (p *headerParser) parseTensor(name string, keyOff int64) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	bad := func(format string, args ...any) (TensorInfo, error) {
		return ti, formatErr(p.f.Path, keyOff, "tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	t, err := p.token("tensor entry")
	if err != nil {
		return ti, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return bad("entry is %v, not an object", t)
	}
	var haveDType, haveShape, haveOffsets bool
	var dtypeName string
	for p.dec.More() {
		t, err := p.token("tensor entry key")
		if err != nil {
			return ti, err
		}
		k, _ := t.(string)
		switch k {
		case "dtype":
			if haveDType {
				return bad("duplicate field dtype")
			}
			haveDType = true
			t, err := p.token("dtype")
			if err != nil {
				return ti, err
			}
			s, ok := t.(string)
			if !ok {
				return bad("dtype is %v, not a string", t)
			}
			dtypeName = s
		case "shape":
			if haveShape {
				return bad("duplicate field shape")
			}
			haveShape = true
			vals, err := p.intArray("shape", -1)
			if err != nil {
				return ti, err
			}
			ti.Shape = make([]int64, len(vals))
			for i, v := range vals {
				d, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return bad("shape dimension %s is not an integer in [0, 2^63)", v)
				}
				if d < 0 {
					return bad("negative shape dimension %d", d)
				}
				ti.Shape[i] = d
			}
		case "data_offsets":
			if haveOffsets {
				return bad("duplicate field data_offsets")
			}
			haveOffsets = true
			vals, err := p.intArray("data_offsets", 2)
			if err != nil {
				return ti, err
			}
			var o [2]int64
			for i, v := range vals {
				u, err := strconv.ParseUint(v, 10, 64)
				if err != nil || u > math.MaxInt64 {
					return bad("data offset %s is not an integer in [0, 2^63)", v)
				}
				o[i] = int64(u)
			}
			ti.Begin, ti.End = o[0], o[1]
		default:
			// The reference crate ignores unknown fields.
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return ti, p.jsonErr(err, "tensor entry")
			}
		}
	}
	if _, err := p.token("tensor entry"); err != nil {
		return ti, err
	}
	switch {
	case !haveDType:
		return bad("missing dtype")
	case !haveShape:
		return bad("missing shape")
	case !haveOffsets:
		return bad("missing data_offsets")
	}
	dt, ok := dtypeByName(dtypeName)
	if !ok {
		if unsupportedDtypes[dtypeName] {
			return bad("dtype %s is not supported by quantbridge", dtypeName)
		}
		return bad("unknown dtype %q", dtypeName)
	}
	ti.DType = dt.typ
	elems := int64(1)
	for _, d := range ti.Shape {
		if d != 0 && elems > math.MaxInt64/d {
			return bad("shape %v overflows the element count", ti.Shape)
		}
		elems *= d
	}
	if elems > math.MaxInt64/dt.size {
		return bad("shape %v of %s overflows the byte size", ti.Shape, dt.name)
	}
	nbytes := elems * dt.size
	if ti.End < ti.Begin {
		return bad("data_offsets [%d, %d] end before they begin", ti.Begin, ti.End)
	}
	dataLen := p.f.Size - p.f.DataOffset
	if ti.End > dataLen {
		return bad("data_offsets [%d, %d] reach past the %d-byte data section", ti.Begin, ti.End, dataLen)
	}
	if ti.End-ti.Begin != nbytes {
		return bad("data_offsets [%d, %d] hold %d bytes but shape %v of %s needs %d",
			ti.Begin, ti.End, ti.End-ti.Begin, ti.Shape, dt.name, nbytes)
	}
	return ti, nil
}

// intArray reads a JSON array of numbers (as literal strings). want < 0
// accepts any length.
func (p *headerParser) intArray(what string, want int) ([]string, error) {
	t, err := p.token(what)
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return nil, p.errf("%s is %v, not an array", what, t)
	}
	var out []string
	for p.dec.More() {
		t, err := p.token(what)
		if err != nil {
			return nil, err
		}
		num, ok := t.(json.Number)
		if !ok {
			return nil, p.errf("%s element %v is not a number", what, t)
		}
		out = append(out, string(num))
		if want >= 0 && len(out) > want {
			return nil, p.errf("%s has more than %d elements", what, want)
		}
	}
	if _, err := p.token(what); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, p.errf("%s has %d elements, want %d", what, len(out), want)
	}
	return out, nil
}

// validate checks that the tensors tile the data section exactly.
func (f *File) validate() error {
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ta, tb := &f.Tensors[order[a]], &f.Tensors[order[b]]
		if ta.Begin != tb.Begin {
			return ta.Begin < tb.Begin
		}
		return ta.End < tb.End
	})
	var pos int64
	prev := ""
	for _, i := range order {
		t := &f.Tensors[i]
		switch {
		case t.Begin > pos:
			return formatErr(f.Path, f.DataOffset+pos,
				"hole in the data section: bytes [%d, %d) belong to no tensor (next is %q)", pos, t.Begin, t.Name)
		case t.Begin < pos:
			return formatErr(f.Path, f.DataOffset+t.Begin,
				"tensor %q data_offsets [%d, %d] overlap tensor %q, which ends at %d", t.Name, t.Begin, t.End, prev, pos)
		}
		pos = t.End
		prev = t.Name
	}
	if dataLen := f.Size - f.DataOffset; pos != dataLen {
		return formatErr(f.Path, f.DataOffset+pos,
			"tensors cover %d bytes of the %d-byte data section (trailing bytes)", pos, dataLen)
	}
	return nil
}
