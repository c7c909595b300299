package safetensors

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/atomicfile"
)

// PlanTensor describes one tensor to write.
type PlanTensor struct {
	Name  string
	DType graph.Type
	Shape []int64
}

// PlanOptions control the header Plan writes.
type PlanOptions struct {
	// Metadata becomes "__metadata__" (written first). Keys are written in
	// MetadataKeys order when given (it must list exactly Metadata's keys),
	// else sorted. A non-nil empty map writes "__metadata__":{}.
	Metadata     map[string]string
	MetadataKeys []string
	// MetadataNull writes "__metadata__":null, as MLX does without metadata.
	// It is an error together with a non-nil Metadata.
	MetadataNull bool
	// Pad8 right-pads the header JSON with spaces so that 8+N is a multiple
	// of 8, as the reference writer (safetensors >= 0.3) does.
	Pad8 bool
	// SortByName orders header keys and data by tensor name (byte order), as
	// the reference writer did up to safetensors 0.2 (and as it still does
	// whenever all tensors share one dtype, e.g. an all-BF16 checkpoint).
	SortByName bool
	// SortByDType orders by the current reference writer's rule: descending
	// dtype (the Rust Dtype enum order, which is increasing alignment), then
	// name. It takes precedence over SortByName. With neither, tensors are
	// written in the order given.
	SortByDType bool
	// MLXStyle spells the header as MLX's save_safetensors does (nlohmann
	// json): every object's keys sorted, "__metadata__" included and always
	// present (null when Metadata is empty), tensor fields in the order
	// data_offsets, dtype, shape. Data stays in the order the other options
	// give (MLX's own is unordered_map order). MLX does not pad (leave Pad8
	// off to match it).
	MLXStyle bool
}

// Layout is a planned file. Header is the complete prefix: the 8-byte
// little-endian length N followed by the N-byte JSON header (with padding),
// so DataOffset == len(Header).
type Layout struct {
	Header     []byte
	DataOffset int64
	// Offsets and Sizes are indexed like the tensors given to Plan; Offsets
	// are absolute file offsets.
	Offsets []int64
	Sizes   []int64
	// Order lists tensor indexes in data (and header) order.
	Order []int
	// Size is the total file size.
	Size int64
}

// Plan lays out a safetensors file: the header bytes and where each tensor's
// data goes. The header is compact JSON in the reference (serde_json)
// spelling: "__metadata__" first when present, then each tensor as
// {"dtype":..,"shape":[..],"data_offsets":[b,e]} in data order; data is
// contiguous. MLXStyle changes the spelling (see PlanOptions).
func Plan(tensors []PlanTensor, opt PlanOptions) (*Layout, error) {
	if opt.MetadataNull && len(opt.Metadata) > 0 {
		return nil, fmt.Errorf("safetensors: plan: MetadataNull with non-nil Metadata")
	}
	n := len(tensors)
	l := &Layout{Offsets: make([]int64, n), Sizes: make([]int64, n), Order: make([]int, n)}
	infos := make([]dtypeInfo, n)
	seen := make(map[string]bool, n)
	for i, t := range tensors {
		if t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: plan: tensor name __metadata__ is reserved")
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("safetensors: plan: tensor name %q is not valid UTF-8", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: plan: duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = true
		d, ok := dtypeByType(t.DType)
		if !ok {
			return nil, fmt.Errorf("safetensors: plan: tensor %q: type %v has no safetensors dtype", t.Name, t.DType)
		}
		infos[i] = d
		elems := int64(1)
		for _, dim := range t.Shape {
			if dim < 0 {
				return nil, fmt.Errorf("safetensors: plan: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			if dim != 0 && elems > math.MaxInt64/dim {
				return nil, fmt.Errorf("safetensors: plan: tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			elems *= dim
		}
		if elems > math.MaxInt64/d.size {
			return nil, fmt.Errorf("safetensors: plan: tensor %q: shape %v overflows", t.Name, t.Shape)
		}
		l.Sizes[i] = elems * d.size
		l.Order[i] = i
	}
	switch {
	case opt.SortByDType:
		sort.SliceStable(l.Order, func(a, b int) bool {
			ia, ib := l.Order[a], l.Order[b]
			if infos[ia].rank != infos[ib].rank {
				return infos[ia].rank > infos[ib].rank
			}
			return tensors[ia].Name < tensors[ib].Name
		})
	case opt.SortByName:
		sort.SliceStable(l.Order, func(a, b int) bool { return tensors[l.Order[a]].Name < tensors[l.Order[b]].Name })
	}

	// Data offsets, in data order.
	var pos int64
	for _, i := range l.Order {
		if pos > math.MaxInt64-l.Sizes[i] {
			return nil, fmt.Errorf("safetensors: plan: total data size overflows")
		}
		l.Offsets[i] = pos // relative for now
		pos += l.Sizes[i]
	}

	// Header entries: in data order, or sorted by key for MLXStyle.
	metaNull := opt.MetadataNull || (opt.MLXStyle && len(opt.Metadata) == 0)
	hasMeta := metaNull || opt.Metadata != nil
	type entry struct {
		key    string
		tensor int // -1 for __metadata__
	}
	var entries []entry
	if hasMeta {
		entries = append(entries, entry{"__metadata__", -1})
	}
	for _, i := range l.Order {
		entries = append(entries, entry{tensors[i].Name, i})
	}
	if opt.MLXStyle {
		sort.SliceStable(entries, func(a, b int) bool { return entries[a].key < entries[b].key })
	}

	js := make([]byte, 8, 8+64*n+64)
	js = append(js, '{')
	for k, e := range entries {
		if k > 0 {
			js = append(js, ',')
		}
		js = appendSerdeString(js, e.key)
		js = append(js, ':')
		if e.tensor < 0 {
			if metaNull {
				js = append(js, "null"...)
				continue
			}
			order := opt.MetadataKeys
			if opt.MLXStyle {
				order = nil // nlohmann objects are sorted
			}
			keys, err := metadataOrder(opt.Metadata, order)
			if err != nil {
				return nil, err
			}
			js = append(js, '{')
			for m, mk := range keys {
				if m > 0 {
					js = append(js, ',')
				}
				js = appendSerdeString(js, mk)
				js = append(js, ':')
				js = appendSerdeString(js, opt.Metadata[mk])
			}
			js = append(js, '}')
			continue
		}
		i := e.tensor
		var shape []byte
		for k, d := range tensors[i].Shape {
			if k > 0 {
				shape = append(shape, ',')
			}
			shape = strconv.AppendInt(shape, d, 10)
		}
		var offs []byte
		offs = strconv.AppendInt(offs, l.Offsets[i], 10)
		offs = append(offs, ',')
		offs = strconv.AppendInt(offs, l.Offsets[i]+l.Sizes[i], 10)
		if opt.MLXStyle { // fields in key order
			js = append(js, `{"data_offsets":[`...)
			js = append(js, offs...)
			js = append(js, `],"dtype":"`...)
			js = append(js, infos[i].name...)
			js = append(js, `","shape":[`...)
			js = append(js, shape...)
			js = append(js, "]}"...)
		} else {
			js = append(js, `{"dtype":"`...)
			js = append(js, infos[i].name...)
			js = append(js, `","shape":[`...)
			js = append(js, shape...)
			js = append(js, `],"data_offsets":[`...)
			js = append(js, offs...)
			js = append(js, "]}"...)
		}
	}
	js = append(js, '}')
	if opt.Pad8 {
		for (len(js)-8)%8 != 0 {
			js = append(js, ' ')
		}
	}
	hn := int64(len(js) - 8)
	if hn > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: plan: header of %d bytes exceeds the %d-byte limit", hn, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(js[:8], uint64(hn))
	l.Header = js
	l.DataOffset = int64(len(js))
	for i := range l.Offsets {
		l.Offsets[i] += l.DataOffset
	}
	if pos > math.MaxInt64-l.DataOffset {
		return nil, fmt.Errorf("safetensors: plan: total file size overflows")
	}
	l.Size = l.DataOffset + pos
	return l, nil
}

func metadataOrder(meta map[string]string, order []string) ([]string, error) {
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("safetensors: plan: metadata %q is not valid UTF-8", k)
		}
	}
	if order == nil {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys, nil
	}
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := meta[k]; !ok || seen[k] {
			return nil, fmt.Errorf("safetensors: plan: MetadataKeys entry %q is missing from Metadata or repeated", k)
		}
		seen[k] = true
	}
	if len(seen) != len(meta) {
		return nil, fmt.Errorf("safetensors: plan: MetadataKeys lists %d of %d metadata keys", len(seen), len(meta))
	}
	return order, nil
}

// appendSerdeString appends s as a JSON string escaped the way serde_json
// (the reference writer) escapes: '"' and '\\', \b \t \n \f \r, other
// control characters as \u00xx (lowercase hex); everything else, non-ASCII
// included, verbatim.
func appendSerdeString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// WriteAt writes the header and every tensor's data to w at the planned
// offsets, running up to workers data copies at once (workers < 1 means 1).
// data(i) is called once per tensor, possibly concurrently; each source must
// hold exactly Sizes[i] bytes. w must accept concurrent WriteAt calls at
// disjoint offsets (an *os.File does).
func (l *Layout) WriteAt(w io.WriterAt, data func(i int) (graph.Source, error), workers int) error {
	if _, err := w.WriteAt(l.Header, 0); err != nil {
		return err
	}
	if workers < 1 {
		workers = 1
	}
	var g errgroup.Group
	g.SetLimit(workers)
	for _, i := range l.Order {
		g.Go(func() error {
			src, err := l.source(data, i)
			if err != nil {
				return err
			}
			_, err = copyBuffered(io.NewOffsetWriter(w, l.Offsets[i]), io.NewSectionReader(src, 0, l.Sizes[i]))
			return err
		})
	}
	return g.Wait()
}

func (l *Layout) source(data func(i int) (graph.Source, error), i int) (graph.Source, error) {
	src, err := data(i)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("safetensors: tensor %d: nil data source", i)
	}
	if src.Size() != l.Sizes[i] {
		return nil, fmt.Errorf("safetensors: tensor %d: data source holds %d bytes, the header says %d", i, src.Size(), l.Sizes[i])
	}
	return src, nil
}

func copyBuffered(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, buf)
}

// WriteTo writes the header and then every tensor's data sequentially, in
// data order, calling data(i) once per tensor just before copying it.
func (l *Layout) WriteTo(w io.Writer, data func(i int) (graph.Source, error)) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := bw.Write(l.Header)
	total := int64(n)
	if err != nil {
		return total, err
	}
	for _, i := range l.Order {
		src, err := l.source(data, i)
		if err != nil {
			return total, err
		}
		k, err := bw.ReadFrom(io.NewSectionReader(src, 0, l.Sizes[i]))
		total += k
		if err != nil {
			return total, err
		}
		if k != l.Sizes[i] {
			return total, fmt.Errorf("safetensors: tensor %d: read %d of %d bytes", i, k, l.Sizes[i])
		}
	}
	return total, bw.Flush()
}

// WriteFile plans and writes a safetensors file at path, streaming each
// tensor from data(i) in data order. It writes to a temporary file in the
// same directory and renames it into place, so path never holds a partial
// file.
func WriteFile(path string, tensors []PlanTensor, data func(i int) (graph.Source, error), opt PlanOptions) error {
	l, err := Plan(tensors, opt)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		n, err := l.WriteTo(f, data)
		if err != nil {
			return fmt.Errorf("safetensors: writing %s: %w", path, err)
		}
		if n != l.Size {
			return fmt.Errorf("safetensors: writing %s: wrote %d bytes, planned %d", path, n, l.Size)
		}
		return nil
	})
}
