package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// mk builds a file from a header and dataLen bytes of data.
func mk(header string, dataLen int) []byte {
	b := make([]byte, 8, 8+len(header)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func withLen(b []byte, n uint64) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint64(c, n)
	return c
}

func replace(b []byte, old, new string) []byte {
	if !bytes.Contains(b, []byte(old)) {
		panic("replace: " + old + " not found")
	}
	return bytes.Replace(bytes.Clone(b), []byte(old), []byte(new), 1)
}

// TestBadInput corrupts a real file (hf-samples-overall.safetensors, header
// 526 bytes, 168 data bytes) and synthetic ones; every case must fail with a
// FormatError naming the right offset and problem, never panic.
func TestBadInput(t *testing.T) {
	real, err := os.ReadFile(testref.Local(t, "real", "safetensors", "hf-samples-overall.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	const t1 = `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	cases := []struct {
		name   string
		file   []byte
		offset int64 // -1: don't check
		want   string
	}{
		{"empty file", nil, 0, "too short for the 8-byte header length"},
		{"truncated length", real[:5], 0, "too short"},
		{"length 2^64-1", withLen(real, 1<<64-1), 8, "header length 18446744073709551615 exceeds file size 702"},
		{"length past end", withLen(real, 695), 8, "header length 695 exceeds file size 702"},
		{"truncated in header", real[:300], 8, "header length 526 exceeds file size 300"},
		{"truncated data", real[:len(real)-1], 8 + 468, `tensor "i": data_offsets [144, 168] reach past the 167-byte data section`},
		{"trailing data", append(bytes.Clone(real), 0), 534 + 168, "tensors cover 168 bytes of the 169-byte data section"},
		{"length too short", withLen(real, 525), 8 + 525, "header JSON ends inside"},
		{"zero length", withLen(real, 0), 8, "does not start with '{'"},
		{"not an object", replace(real, `{"__metadata__"`, `["__metadata__"`), 8, "does not start with '{'"},
		{"malformed JSON", replace(real, `"U8",`, `"U8";`), -1, "malformed header JSON"},
		{"invalid UTF-8", replace(real, `"test"`, "\"t\xffst\""), 8 + 19, "not valid UTF-8"},
		{"unknown dtype", replace(real, `"U16"`, `"X16"`), -1, `tensor "H": unknown dtype "X16"`},
		{"shape mismatch", replace(real, `"shape":[6],"data_offsets":[6,18]`, `"shape":[5],"data_offsets":[6,18]`), -1,
			`tensor "H": data_offsets [6, 18] hold 12 bytes but shape [5] of U16 needs 10`},
		{"overlap", replace(real, `[6,18]`, `[0,12]`), 534, `tensor "H" data_offsets [0, 12] overlap tensor "B"`},
		{"hole", mk(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, 6), -1,
			"hole in the data section: bytes [2, 4) belong to no tensor"},
		{"hole at start", mk(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4), -1, "bytes [0, 2) belong to no tensor"},
		{"offsets past end", mk(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[100,102]}}`, 4), -1, "reach past the 4-byte data section"},
		// The Rust crate sorts by (begin, end) and rejects this too.
		{"zero-size inside another", mk(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 2), 8 + 105 + 1, // data offset + begin
			`tensor "a" data_offsets [1, 1] overlap tensor "c"`},
		{"end before begin", mk(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}}`, 4), -1, "end before they begin"},
		{"negative dim", mk(`{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}`, 2), -1, "negative shape dimension -2"},
		{"fractional dim", mk(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,2]}}`, 2), -1, "not an integer"},
		{"dim 2^64", mk(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,2]}}`, 2), -1, "not an integer"},
		{"element overflow", mk(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), -1, "overflows the element count"},
		{"byte overflow", mk(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, 0), -1, "overflows the byte size"},
		{"offset 2^63", mk(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[9223372036854775808,9223372036854775808]}}`, 0), -1, "not an integer in [0, 2^63)"},
		{"negative offset", mk(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[-1,0]}}`, 0), -1, "not an integer"},
		{"three offsets", mk(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}`, 1), -1, "more than 2 elements"},
		{"one offset", mk(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, 1), -1, "has 1 elements, want 2"},
		{"missing dtype", mk(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, 1), -1, "missing dtype"},
		{"missing shape", mk(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, 1), -1, "missing shape"},
		{"missing offsets", mk(`{"a":{"dtype":"U8","shape":[1]}}`, 1), -1, "missing data_offsets"},
		{"dtype not string", mk(`{"a":{"dtype":3,"shape":[1],"data_offsets":[0,1]}}`, 1), -1, "dtype is 3, not a string"},
		{"entry not object", mk(`{"a":[1,2]}`, 0), 9, `tensor "a": entry is [, not an object`},
		{"duplicate field", mk(`{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), -1, "duplicate field dtype"},
		{"duplicate tensor", mk(`{`+t1+`,`+t1+`}`, 8), -1, `duplicate tensor name "a"`},
		{"unsupported dtype", mk(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, 8), -1, "dtype C64 is not supported"},
		{"metadata array", mk(`{"__metadata__":["x"],`+t1+`}`, 8), -1, "__metadata__ is [, not an object or null"},
		{"metadata value not string", mk(`{"__metadata__":{"k":1},`+t1+`}`, 8), -1, `__metadata__ value of "k" is not a string`},
		{"metadata nested", mk(`{"__metadata__":{"k":{}},`+t1+`}`, 8), -1, `not a string`},
		{"duplicate metadata", mk(`{"__metadata__":null,"__metadata__":null,`+t1+`}`, 8), -1, "duplicate __metadata__"},
		{"duplicate metadata key", mk(`{"__metadata__":{"k":"a","k":"b"},`+t1+`}`, 8), -1, `duplicate __metadata__ key "k"`},
		{"trailing garbage", mk(`{`+t1+`}  x`, 8), -1, "unexpected byte 'x' after the header JSON object"},
		{"two objects", mk(`{`+t1+`}{}`, 8), -1, "unexpected byte '{'"},
		{"unterminated", mk(`{`+t1+`     `, 8), -1, "header JSON ends inside"},
		{"unterminated string", mk(`{"a`, 0), -1, "header JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.file), int64(len(tc.file)))
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FormatError", err)
			}
			if !strings.Contains(fe.Msg, tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.offset >= 0 && fe.Offset != tc.offset {
				t.Errorf("error %q at offset %d, want %d", err, fe.Offset, tc.offset)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(tc.file))+1 {
				t.Errorf("offset %d outside the %d-byte file", fe.Offset, len(tc.file))
			}
		})
	}
}

// TestValidEdgeCases are unusual but valid headers (the Rust crate accepts
// them).
func TestValidEdgeCases(t *testing.T) {
	cases := []struct {
		name    string
		file    []byte
		tensors int
	}{
		{"empty object", mk(`{}`, 0), 0},
		{"padded with spaces", mk(`{}      `, 0), 0},
		{"whitespace inside", mk("{ \"a\" : { \"dtype\" : \"U8\" ,\n\"shape\":[ 1 ],\t\"data_offsets\":[0,1] } }\r\n", 1), 1},
		{"unknown entry field ignored", mk(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":{"x":[1,{"y":null}]}}}`, 1), 1},
		{"zero-size tensors share an offset", mk(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 2), 3},
		{"zero dim times huge dim", mk(`{"a":{"dtype":"F64","shape":[0,4611686018427387904],"data_offsets":[0,0]}}`, 0), 1},
		{"metadata null only", mk(`{"__metadata__":null}`, 0), 0},
		{"metadata empty", mk(`{"__metadata__":{}}`, 0), 0},
		{"escaped name", mk(`{"a\"\u00e9\n":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}}`, 1), 1},
		{"F8 dtypes", mk(`{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F8_E5M2","shape":[1],"data_offsets":[2,3]}}`, 3), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Read(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Tensors) != tc.tensors {
				t.Errorf("%d tensors, want %d", len(f.Tensors), tc.tensors)
			}
		})
	}
	f, _ := Read(bytes.NewReader(cases[8].file), int64(len(cases[8].file)))
	if f.Tensors[0].Name != "a\"\u00e9\n" {
		t.Errorf("escaped name read as %q", f.Tensors[0].Name)
	}
}

// hugeReader pretends to be a file of any size, all zeros after prefix.
type hugeReader struct{ prefix []byte }

func (h hugeReader) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = 0
		if k := off + int64(i); k < int64(len(h.prefix)) {
			p[i] = h.prefix[k]
		}
	}
	return len(p), nil
}

func TestHeaderTooLarge(t *testing.T) {
	b := withLen(make([]byte, 8), MaxHeaderSize+1)
	_, err := Read(hugeReader{b}, 1<<40)
	if err == nil || !strings.Contains(err.Error(), "header length 100000001 exceeds the limit of 100000000 bytes") {
		t.Fatalf("got %v", err)
	}
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, io.ErrClosedPipe }

func TestReadErrorsAndPaths(t *testing.T) {
	if _, err := Read(errReader{}, 100); err == nil || !strings.Contains(err.Error(), "io: read/write on closed pipe") {
		t.Errorf("read error: %v", err)
	}
	// Open puts the path in the message.
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(p, withLen(make([]byte, 1024), 1<<64-1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	want := "safetensors: " + p + ": offset 8: header length 18446744073709551615 exceeds file size 1024"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if _, err := OpenCheckpoint(filepath.Dir(p)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("OpenCheckpoint: %v", err)
	}
	if _, err := OpenCheckpoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model.safetensors.index.json") {
		t.Errorf("empty dir: %v", err)
	}
}

// FuzzHeader feeds arbitrary bytes to Read. It must never panic; whatever it
// accepts must have sections inside the file and must survive a
// write/read-back round trip. Seeded from the repository's small files and
// corruptions of them. Run longer with:
//
//	go test ./formats/safetensors -run '^$' -fuzz FuzzHeader -fuzztime 5m
func FuzzHeader(f *testing.F) {
	for _, p := range [][]string{
		{"real", "safetensors", "hf-samples-overall.safetensors"},
		{"real", "mlx", "mlx-swift-lm-fixture", "case_01_greedy.safetensors"},
	} {
		b, err := os.ReadFile(testref.Local(f, p...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(withLen(b, 1<<64-1))
		f.Add(b[:len(b)/2])
	}
	for _, p := range [][]string{
		{"real", "mlx", "dpo-adapters-qwen2.5-0.5b-4bit", "adapters.safetensors"},
		{"real", "safetensors", "tiny-random-llama-2", "model.safetensors"},
	} {
		// header only, with the data shrunk away: invalid but close
		b, err := os.ReadFile(testref.Local(f, p...))
		if err != nil {
			f.Fatal(err)
		}
		n := binary.LittleEndian.Uint64(b)
		f.Add(b[:8+n])
	}
	f.Add(mk(`{"__metadata__":null,"s":{"dtype":"F8_E4M3","shape":[],"data_offsets":[0,1]}}`, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("non-FormatError %T: %v", err, err)
			}
			return
		}
		pts := make([]PlanTensor, len(r.Tensors))
		var total int64
		for i, ti := range r.Tensors {
			s := r.Section(i)
			if r.DataOffset+ti.Begin+s.Size() > int64(len(b)) {
				t.Fatalf("tensor %q section past the end", ti.Name)
			}
			total += s.Size()
			pts[i] = PlanTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape}
		}
		if total != int64(len(b))-r.DataOffset {
			t.Fatalf("tensors cover %d of %d data bytes", total, int64(len(b))-r.DataOffset)
		}
		l, err := Plan(pts, PlanOptions{Metadata: r.Metadata, MetadataKeys: r.MetadataKeys, MetadataNull: r.Metadata == nil})
		if err != nil {
			t.Fatalf("Plan of an accepted file: %v", err)
		}
		var out bytes.Buffer
		if _, err := l.WriteTo(&out, func(i int) (graph.Source, error) { return r.Section(i), nil }); err != nil {
			t.Fatal(err)
		}
		r2, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("re-reading our own output: %v", err)
		}
		if len(r2.Tensors) != len(r.Tensors) {
			t.Fatalf("round trip: %d tensors, want %d", len(r2.Tensors), len(r.Tensors))
		}
		for i := range r.Tensors {
			a, _ := graph.ReadAll(r.Section(i))
			c, _ := graph.ReadAll(r2.Section(i))
			if r2.Tensors[i].Name != r.Tensors[i].Name || !bytes.Equal(a, c) {
				t.Fatalf("round trip: tensor %d differs", i)
			}
		}
	})
}
