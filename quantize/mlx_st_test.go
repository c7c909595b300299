package quantize

// A minimal safetensors reader/writer for the MLX kernel tests, so that the
// kernels' tests do not depend on package formats/safetensors.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"testing"
)

type stTensor struct {
	DType string
	Shape []int
	Data  []byte
}

func readST(tb testing.TB, path string) map[string]stTensor {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) < 8 {
		tb.Fatalf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		tb.Fatalf("%s: header length %d beyond file", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	data := b[8+n:]
	out := map[string]stTensor{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			tb.Fatalf("%s: %s: %v", path, name, err)
		}
		if e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > int64(len(data)) {
			tb.Fatalf("%s: %s: bad offsets %v", path, name, e.Offsets)
		}
		out[name] = stTensor{e.DType, e.Shape, data[e.Offsets[0]:e.Offsets[1]]}
	}
	return out
}

func writeST(path string, ts map[string]stTensor) error {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	var data []byte
	for _, n := range names {
		t := ts[n]
		hdr[n] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []int{len(data), len(data) + len(t.Data)}}
		data = append(data, t.Data...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), data...)
	return os.WriteFile(path, out, 0o644)
}

// rowBytes returns row r of a 2-D tensor's data.
func (t stTensor) row(r int) []byte {
	n := len(t.Data) / t.Shape[0]
	return t.Data[r*n : (r+1)*n]
}

func bf16Row(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = BF16ToFP32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func f32Row(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func u32Row(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func u32Bytes(w []uint32) []byte {
	out := make([]byte, 0, 4*len(w))
	for _, v := range w {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	return out
}

func f32Bytes(w []float32) []byte {
	out := make([]byte, 0, 4*len(w))
	for _, v := range w {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff[T comparable](a, b []T) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func describeDiff(what string, i int) string { return fmt.Sprintf("%s differs at index %d", what, i) }
