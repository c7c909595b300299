package safetensors

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// repoFiles are the safetensors files in the repository's testdata, with
// facts checked by hand from their headers (testdata/real/README.md).
var repoFiles = []struct {
	path       []string
	tensors    int
	headerSize int64
	first      TensorInfo // Tensors[0], in header order
	meta       map[string]string
}{
	{[]string{"kjv-llama", "model.safetensors"}, 57, 0, TensorInfo{}, map[string]string{"format": "pt"}},
	{[]string{"kjv-llama.ref_logits.safetensors"}, 2, 0, TensorInfo{}, nil},
	{[]string{"real", "safetensors", "hf-samples-overall.safetensors"}, 9, 526,
		TensorInfo{Name: "B", DType: graph.U8, Shape: []int64{6}, Begin: 0, End: 6}, map[string]string{"test": "a"}},
	{[]string{"real", "safetensors", "tiny-random-llama-2", "model.safetensors"}, 21, 2160,
		TensorInfo{Name: "lm_head.weight", DType: graph.BF16, Shape: []int64{3000, 16}, Begin: 0, End: 96000}, map[string]string{"format": "pt"}},
	{[]string{"real", "mlx", "dpo-adapters-qwen2.5-0.5b-4bit", "adapters.safetensors"}, 8, 850,
		TensorInfo{Name: "model.layers.22.self_attn.q_proj.lora_a", DType: graph.F32, Shape: []int64{896, 8}, Begin: 86016, End: 114688}, nil},
	{[]string{"real", "mlx", "mlx-swift-lm-fixture", "case_01_greedy.safetensors"}, 5, 860, TensorInfo{}, nil},
}

func TestReadRepoFiles(t *testing.T) {
	for _, tc := range repoFiles {
		path := testref.Local(t, tc.path...)
		t.Run(tc.path[len(tc.path)-1], func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Tensors) != tc.tensors {
				t.Errorf("%d tensors, want %d", len(f.Tensors), tc.tensors)
			}
			if tc.headerSize != 0 && f.HeaderSize != tc.headerSize {
				t.Errorf("header size %d, want %d", f.HeaderSize, tc.headerSize)
			}
			if f.DataOffset != 8+f.HeaderSize {
				t.Errorf("data offset %d, header size %d", f.DataOffset, f.HeaderSize)
			}
			if tc.first.Name != "" && !reflect.DeepEqual(f.Tensors[0], tc.first) {
				t.Errorf("first tensor %+v, want %+v", f.Tensors[0], tc.first)
			}
			if tc.meta != nil && !reflect.DeepEqual(f.Metadata, tc.meta) {
				t.Errorf("metadata %v, want %v", f.Metadata, tc.meta)
			}
			for i, ti := range f.Tensors {
				if f.Index(ti.Name) != i {
					t.Errorf("Index(%q) = %d, want %d", ti.Name, f.Index(ti.Name), i)
				}
			}
		})
	}
}

func TestMLXQuirks(t *testing.T) {
	// "__metadata__": null, unpadded header, data out of key order.
	f, err := Open(testref.Local(t, "real", "mlx", "dpo-adapters-qwen2.5-0.5b-4bit", "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata != nil || f.MetadataKeys != nil {
		t.Errorf("metadata %v %v, want nil for JSON null", f.Metadata, f.MetadataKeys)
	}
	if f.DataOffset != 858 {
		t.Errorf("data offset %d, want 858", f.DataOffset)
	}
	last := f.Tensors[f.Index("model.layers.23.self_attn.q_proj.lora_b")]
	if last.Begin != 0 || last.End != 28672 {
		t.Errorf("lora_b offsets [%d,%d], want [0,28672]", last.Begin, last.End)
	}

	// Scalars (shape []) and string metadata with newlines, in key order.
	g, err := Open(testref.Local(t, "real", "mlx", "mlx-swift-lm-fixture", "case_01_greedy.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.MetadataKeys) != 10 || len(g.Metadata) != 10 {
		t.Errorf("%d metadata keys, want 10 (python json.loads count)", len(g.MetadataKeys))
	}
	i := g.Index("outputs/num_rounds")
	if i < 0 {
		t.Fatal("outputs/num_rounds missing")
	}
	ti := g.Tensors[i]
	if ti.DType != graph.I32 || len(ti.Shape) != 0 || ti.Shape == nil || ti.End-ti.Begin != 4 {
		t.Errorf("scalar tensor %+v, want I32 shape [] 4 bytes", ti)
	}
	b := make([]byte, 4)
	if _, err := g.Section(i).ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if n := int32(binary.LittleEndian.Uint32(b)); n <= 0 || n > 64 {
		t.Errorf("num_rounds = %d, want a small positive count", n)
	}
}

// TestDTypeValues decodes hf-samples-overall.safetensors: each tensor holds
// range(-3, 3) cast to its dtype by numpy.
func TestDTypeValues(t *testing.T) {
	f, err := Open(testref.Local(t, "real", "safetensors", "hf-samples-overall.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// IEEE half bits of -3..2 (kept local: no dependency on package quantize).
	f16 := map[uint16]float64{0xC200: -3, 0xC000: -2, 0xBC00: -1, 0: 0, 0x3C00: 1, 0x4000: 2}
	decode := map[graph.Type]func(b []byte) float64{
		graph.U8:  func(b []byte) float64 { return float64(int8(b[0])) },
		graph.I8:  func(b []byte) float64 { return float64(int8(b[0])) },
		graph.U16: func(b []byte) float64 { return float64(int16(binary.LittleEndian.Uint16(b))) },
		graph.I16: func(b []byte) float64 { return float64(int16(binary.LittleEndian.Uint16(b))) },
		graph.U32: func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) },
		graph.I32: func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) },
		graph.F16: func(b []byte) float64 { return f16[binary.LittleEndian.Uint16(b)] },
		graph.F32: func(b []byte) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) },
		graph.F64: func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) },
	}
	want := map[string]graph.Type{"B": graph.U8, "H": graph.U16, "I": graph.U32, "b": graph.I8,
		"h": graph.I16, "i": graph.I32, "e": graph.F16, "f": graph.F32, "d": graph.F64}
	for i, ti := range f.Tensors {
		if want[ti.Name] != ti.DType {
			t.Errorf("%s: dtype %v, want %v", ti.Name, ti.DType, want[ti.Name])
		}
		data, err := graph.ReadAll(f.Section(i))
		if err != nil {
			t.Fatal(err)
		}
		size := int(len(data) / 6)
		for k := 0; k < 6; k++ {
			// unsigned types wrap: U8 253 reads as int8 -3 etc.
			if got := decode[ti.DType](data[k*size:]); got != float64(k-3) {
				t.Errorf("%s[%d] = %v, want %d", ti.Name, k, got, k-3)
			}
		}
	}
}

func TestOpenCheckpointDir(t *testing.T) {
	c, err := OpenCheckpoint(testref.Local(t, "real", "safetensors", "tiny-random-llama-2"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Files) != 1 || len(c.Tensors) != 21 || c.Metadata["format"] != "pt" {
		t.Fatalf("files %d tensors %d metadata %v", len(c.Files), len(c.Tensors), c.Metadata)
	}
	tt := c.Tensors[0]
	if tt.Name != "lm_head.weight" || tt.Type != graph.BF16 || !reflect.DeepEqual(tt.Shape, []int64{3000, 16}) || tt.Data.Size() != 96000 {
		t.Errorf("first tensor %s %v %v %d", tt.Name, tt.Type, tt.Shape, tt.Data.Size())
	}

	m, err := ReadModel(testref.Local(t, "real", "safetensors", "hf-samples-overall.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Format != graph.FormatSafetensors || m.Arch != "" || len(m.Tensors) != 9 ||
		!reflect.DeepEqual(m.Metadata, []graph.KV{{Key: "test", Value: "a"}}) {
		t.Errorf("model %v %q %d %v", m.Format, m.Arch, len(m.Tensors), m.Metadata)
	}
}
