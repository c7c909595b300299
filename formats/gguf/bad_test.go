package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// offsets of fields in a parsed file, found by re-encoding its header.
type fieldMap struct {
	kv     []int64 // start of each KV (its key length)
	ti     []int64 // start of each tensor info (its name length)
	header int64   // end of the tensor infos
}

func mapFields(t *testing.T, raw []byte) (*File, fieldMap) {
	t.Helper()
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var m fieldMap
	pos := int64(24)
	for _, p := range f.KV {
		m.kv = append(m.kv, pos)
		var b bytes.Buffer
		if err := (&encoder{w: &b}).kv(p); err != nil {
			t.Fatal(err)
		}
		pos += int64(b.Len())
	}
	for _, ti := range f.Tensors {
		m.ti = append(m.ti, pos)
		pos += 8 + int64(len(ti.Name)) + 4 + 8*int64(len(ti.Shape)) + 4 + 8
	}
	m.header = pos
	return f, m
}

func put32(b []byte, off int64, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int64, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// synthetic builds a small valid v3 file: two KVs and three tensors.
func synthetic(t *testing.T) []byte {
	t.Helper()
	kv := []graph.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.alignment", Value: uint32(32)},
		{Key: "tokenizer.ggml.scores", Value: []float32{0, -1, -2}},
	}
	ts := []TensorInfo{
		{Name: "aaaa", Shape: []int64{2, 32}, Type: graph.Q8_0},
		{Name: "bbbb", Shape: []int64{3}, Type: graph.F32},
		{Name: "cccc", Shape: []int64{2, 2}, Type: graph.F16},
	}
	var out bytes.Buffer
	err := Write(&out, kv, ts, func(i int) (graph.Source, error) {
		n := []int{68, 12, 8}[i]
		return bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, n)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// twoKVs is a tensorless v3 file with two u8 KVs.
func twoKVs(k1, k2 string) []byte {
	var buf bytes.Buffer
	e := encoder{w: &buf}
	e.raw([]byte(magic))
	e.u32(3)
	e.u64(0)
	e.u64(2)
	e.kv(graph.KV{Key: k1, Value: uint8(1)})
	e.kv(graph.KV{Key: k2, Value: uint8(2)})
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	stories, err := os.ReadFile(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	sf, sm := mapFields(t, stories)
	syn := synthetic(t)
	_, ym := mapFields(t, syn)
	// tensor info field offsets: name length, n_dims, ne..., type, offset.
	tiType := func(m fieldMap, i int, f *File) int64 {
		return m.ti[i] + 8 + int64(len(f.Tensors[i].Name)) + 4 + 8*int64(len(f.Tensors[i].Shape))
	}
	synF, _ := Read(bytes.NewReader(syn), int64(len(syn)))
	kvVal := func(m fieldMap, f *File, i int) int64 { return m.kv[i] + 8 + int64(len(f.KV[i].Key)) } // type field

	tests := []struct {
		name    string
		base    []byte
		mess    func(b []byte) []byte
		want    string
		wantOff int64 // -1: don't check
	}{
		{"bad magic", stories, func(b []byte) []byte { b[0] = 'X'; return b }, `invalid magic "XGUF"`, 0},
		{"version 0", stories, func(b []byte) []byte { put32(b, 4, 0); return b }, "bad GGUF version 0", 4},
		{"version 4", stories, func(b []byte) []byte { put32(b, 4, 4); return b }, "version 4 is newer", 4},
		{"big-endian version", stories, func(b []byte) []byte { put32(b, 4, 3<<24); return b }, "big-endian", 4},
		{"tensor count 2^62", stories, func(b []byte) []byte { put64(b, 8, 1<<62); return b },
			"tensor count 4611686018427387904 exceeds what a 327648-byte file can hold", 8},
		{"kv count 2^62", stories, func(b []byte) []byte { put64(b, 16, 1<<62); return b },
			"key/value count 4611686018427387904 exceeds what a 327648-byte file can hold", 16},
		{"key length 2^63", stories, func(b []byte) []byte { put64(b, 24, 1<<63); return b },
			"key 0 length 9223372036854775808 exceeds the", 24},
		{"string value length 2^63", stories, func(b []byte) []byte { put64(b, kvVal(sm, sf, 0)+4, 1<<63); return b },
			`value of key "general.architecture" length 9223372036854775808 exceeds`, kvVal(sm, sf, 0) + 4},
		{"array length 2^62", stories, func(b []byte) []byte {
			i := sf.kvIndex("tokenizer.ggml.tokens")
			put64(b, kvVal(sm, sf, i)+8, 1<<62)
			return b
		}, `key "tokenizer.ggml.tokens": array of 4611686018427387904 str exceeds`, -1},
		{"empty key", syn, func(b []byte) []byte {
			// shrink key 0 to length 0 and shift: simplest is a new header
			return append(append([]byte(nil), b[:24]...), append(make([]byte, 8), b[24+8+20:]...)...)
		}, "key 0 is empty", 24},
		{"duplicate key", twoKVs("a.b", "a.b"), func(b []byte) []byte { return b },
			`duplicate key "a.b"`, 24 + 8 + 3 + 4 + 1},
		{"unknown value type", syn, func(b []byte) []byte { put32(b, kvVal(ym, synF, 0), 13); return b },
			`key "general.architecture" has invalid GGUF type 13`, kvVal(ym, synF, 0)},
		{"nested array", syn, func(b []byte) []byte { put32(b, kvVal(ym, synF, 2)+4, 9); return b },
			`key "tokenizer.ggml.scores" has invalid array element type 9`, kvVal(ym, synF, 2) + 4},
		{"alignment not u32", syn, func(b []byte) []byte { put32(b, kvVal(ym, synF, 1), typeInt32); return b },
			`key "general.alignment" must be of type u32 but is i32`, -1},
		{"alignment not power of 2", syn, func(b []byte) []byte { put32(b, kvVal(ym, synF, 1)+4, 48); return b },
			"alignment 48 is not a power of 2", -1},
		{"n_dims 5", syn, func(b []byte) []byte { put32(b, ym.ti[0]+8+4, 5); return b },
			`tensor "aaaa" has 5 dimensions, the maximum is 4`, ym.ti[0] + 12},
		{"negative dim", syn, func(b []byte) []byte { put64(b, ym.ti[0]+16, 1<<63); return b },
			`tensor "aaaa" dimension 0 is negative`, ym.ti[0] + 16},
		{"element overflow", syn, func(b []byte) []byte {
			put64(b, ym.ti[0]+16, 1<<40)
			put64(b, ym.ti[0]+24, 1<<40)
			return b
		}, `tensor "aaaa" shape [1099511627776 1099511627776] has more elements than fit in int64`, ym.ti[0] + 12},
		{"unknown tensor type 99", syn, func(b []byte) []byte { put32(b, tiType(ym, 0, synF), 99); return b },
			`tensor "aaaa" has unknown ggml type 99`, tiType(ym, 0, synF)},
		{"removed tensor type Q4_2", syn, func(b []byte) []byte { put32(b, tiType(ym, 1, synF), 4); return b },
			`tensor "bbbb" has unknown ggml type 4`, tiType(ym, 1, synF)},
		{"row not a multiple of block (v3)", syn, func(b []byte) []byte { put64(b, ym.ti[0]+16, 48); return b },
			`tensor "aaaa" of type Q8_0 has 48 elements per row, not a multiple of the block size 32`, tiType(ym, 0, synF)},
		{"norm made Q4_K (v2)", stories, func(b []byte) []byte {
			i := sf.TensorIndex("output_norm.weight")
			put32(b, tiType(sm, i, sf), uint32(graph.Q4_K))
			return b
		}, `tensor "output_norm.weight" of type Q4_K has 64 elements per row`, -1},
		{"name too long", syn, func(b []byte) []byte {
			// grow tensor 0's name to 64 bytes
			long := bytes.Repeat([]byte{'n'}, 64)
			out := append([]byte(nil), b[:ym.ti[0]]...)
			out = binary.LittleEndian.AppendUint64(out, 64)
			out = append(out, long...)
			return append(out, b[ym.ti[0]+8+4:]...)
		}, "tensor 0 name is 64 bytes long, the maximum is 63", ym.ti[0]},
		{"duplicate tensor name", stories, func(b []byte) []byte {
			i := sf.TensorIndex("blk.0.attn_k.weight")
			copy(b[sm.ti[i]+8:], "blk.0.attn_q.weight")
			return b
		}, `duplicate tensor name "blk.0.attn_q.weight"`, -1},
		{"overlapping offsets", syn, func(b []byte) []byte { put64(b, tiType(ym, 1, synF)+4, 0); return b },
			`tensor "bbbb" has offset 0, expected 96`, tiType(ym, 1, synF) + 4},
		{"gap between tensors", syn, func(b []byte) []byte { put64(b, tiType(ym, 1, synF)+4, 128); return b },
			`tensor "bbbb" has offset 128, expected 96`, tiType(ym, 1, synF) + 4},
		{"offset past end", stories, func(b []byte) []byte {
			put64(b, tiType(sm, 47, sf)+4, 1<<40)
			return b
		}, `has offset 1099511627776, expected`, -1},
		{"data truncated", stories, func(b []byte) []byte { return b[:len(b)-100] },
			`tensor "output.weight" data [`, -1},
		{"data section past end", syn, func(b []byte) []byte { return b[:ym.header+1] },
			"data section would start at", ym.header},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mess(append([]byte(nil), tt.base...))
			err := readBounded(t, b)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, want *FormatError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
			if tt.wantOff >= 0 && fe.Offset != tt.wantOff {
				t.Errorf("error offset %d, want %d (%v)", fe.Offset, tt.wantOff, err)
			}
		})
	}
}

// readBounded reads b and fails the test if that allocated more than
// a few times the input size.
func readBounded(t *testing.T, b []byte) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(bytes.NewReader(b), int64(len(b)))
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > uint64(4*len(b))+1<<20 {
		t.Errorf("reading a %d-byte file allocated %d bytes", len(b), n)
	}
	return err
}

func (f *File) kvIndex(key string) int {
	for i, kv := range f.KV {
		if kv.Key == key {
			return i
		}
	}
	return -1
}

// Truncating a file anywhere before its end is an error naming the
// offset; it never panics.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"stories260K-q8_0-ggufv2.gguf", "ggml-vocab-llama-spm.gguf"} {
		raw, err := os.ReadFile(testref.Local(t, "real", "gguf", name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		var cuts []int64
		for c := int64(0); c < 4096; c++ {
			cuts = append(cuts, c)
		}
		for c := int64(4096); c < int64(len(raw)); c += int64(len(raw)) / 150 {
			cuts = append(cuts, c)
		}
		cuts = append(cuts, f.DataOffset-1, int64(len(raw))-1)
		for _, c := range cuts {
			_, err := Read(bytes.NewReader(raw[:c]), c)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%s cut at %d: error %v, want *FormatError", filepath.Base(name), c, err)
			}
			if fe.Offset > c {
				t.Fatalf("%s cut at %d: error offset %d past the cut: %v", name, c, fe.Offset, err)
			}
		}
	}
}

// Open prefixes errors with the path.
func TestOpenErrorPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.gguf")
	b := make([]byte, 1<<20)
	copy(b, "GGUF\x03\x00\x00\x00")
	put64(b, 8, 1<<62)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	want := "gguf: " + p + ": offset 8: tensor count 4611686018427387904 exceeds what a 1048576-byte file can hold"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
