//go:build refdata

package quantize_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// iq3Types are the types ggml_iq3.go and ggml_tq.go quantize.
var iq3Types = map[dtype.Type]bool{dtype.IQ3_XXS: true, dtype.IQ3_S: true, dtype.TQ1_0: true, dtype.TQ2_0: true}

// loadImatrixGGUF reads an imatrix GGUF (<tensor>.in_sum2, <tensor>.counts)
// into llama-quantize's importance vectors (tools/quantize/quantize.cpp
// load_imatrix): per expert j, in_sum2/lround(counts[j]), or 1 where the
// count is 0.
func loadImatrixGGUF(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f := openGGUF(t, path)
	f32 := func(i int) []float32 {
		raw := tensorBytes(t, f, i)
		v := make([]float32, len(raw)/4)
		for k := range v {
			v[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
		}
		return v
	}
	out := map[string][]float32{}
	for i, ti := range f.Tensors {
		name, ok := strings.CutSuffix(ti.Name, ".in_sum2")
		if !ok {
			continue
		}
		ci := f.TensorIndex(name + ".counts")
		if ci < 0 || ti.Type != dtype.F32 || f.Tensors[ci].Type != dtype.F32 {
			t.Fatalf("%s: %s: no F32 counts", path, ti.Name)
		}
		sums, counts := f32(i), f32(ci)
		ne0 := len(sums) / len(counts)
		e := make([]float32, len(sums))
		for j, c := range counts {
			count := float32(math.Round(float64(c)))
			for k := range ne0 {
				if count > 0 {
					e[j*ne0+k] = sums[j*ne0+k] / count
				} else {
					e[j*ne0+k] = 1
				}
			}
		}
		out[name] = e
	}
	if len(out) == 0 {
		t.Fatalf("%s: no imatrix entries", path)
	}
	return out
}

// reproduceIQ3Weighted re-encodes every tensor of out whose type is in types
// from the same tensor of src with QuantizeRowWeighted, weighted by imat's
// entry for it (nil where it has none, as llama-quantize), and compares
// bytes. It returns the tensors checked per type and how many of them were
// weighted.
func reproduceIQ3Weighted(t *testing.T, src, out *gguf.File, imat map[string][]float32, types map[dtype.Type]bool) (checked, weighted map[dtype.Type]int) {
	checked, weighted = map[dtype.Type]int{}, map[dtype.Type]int{}
	for i, ti := range out.Tensors {
		if !types[ti.Type] {
			continue
		}
		si := src.TensorIndex(ti.Name)
		if si < 0 {
			t.Fatalf("%s: tensor %s not in %s", out.Path(), ti.Name, src.Path())
		}
		st := src.Tensors[si]
		n := int(st.Shape[len(st.Shape)-1])
		elems := 1
		for _, d := range st.Shape {
			elems *= int(d)
		}
		in := make([]float32, elems)
		if err := quantize.ToFloat32(in, tensorBytes(t, src, si), st.Type); err != nil {
			t.Fatalf("%s %s: %v", src.Path(), st.Name, err)
		}
		w := imat[ti.Name]
		if w != nil {
			weighted[ti.Type]++
			if len(w) != n { // 2-D tensors only in kjv-llama
				t.Fatalf("%s: imatrix has %d values for rows of %d", ti.Name, len(w), n)
			}
		}
		want := tensorBytes(t, out, i)
		rb, err := dtype.RowSize(ti.Type, int64(n))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		for r := range elems / n {
			if err := quantize.QuantizeRowWeighted(got[r*int(rb):(r+1)*int(rb)], in[r*n:(r+1)*n], w, ti.Type); err != nil {
				t.Fatalf("%s row %d: %v", ti.Name, r, err)
			}
		}
		if !bytes.Equal(got, want) {
			bs := int(ti.Type.TypeSize())
			diff := 0
			first := -1
			for b := 0; b < len(got); b += bs {
				if !bytes.Equal(got[b:b+bs], want[b:b+bs]) {
					if first < 0 {
						first = b
					}
					diff++
				}
			}
			t.Errorf("%s: %s (%v, weighted %v): %d of %d blocks differ, first %d:\n got  %x\n want %x",
				filepath.Base(out.Path()), ti.Name, ti.Type, w != nil, diff, len(got)/bs, first/bs, got[first:first+bs], want[first:first+bs])
		}
		// The decoder is total on what the encoder wrote.
		back := make([]float32, elems)
		if err := quantize.DequantizeRow(back, want, ti.Type); err != nil {
			t.Errorf("%s: %v", ti.Name, err)
		}
		checked[ti.Type]++
	}
	return checked, weighted
}

// Every IQ3_XXS, IQ3_S, TQ1_0 and TQ2_0 tensor llama-quantize --imatrix
// wrote for kjv-llama (the IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, TQ1_0, TQ2_0
// mixes) is reproduced byte for byte from the bf16 GGUF and the imatrix,
// and so is every such tensor of the files made without an imatrix.
func TestReproduceIQ3Imatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imat := loadImatrixGGUF(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	for _, tc := range []struct {
		file    string
		imatrix bool
	}{
		{"kjv-llama.imatrix.IQ3_XXS.gguf", true},
		{"kjv-llama.imatrix.IQ3_XS.gguf", true},
		{"kjv-llama.imatrix.IQ3_S.gguf", true},
		{"kjv-llama.imatrix.IQ3_M.gguf", true},
		{"kjv-llama.imatrix.TQ1_0.gguf", true},
		{"kjv-llama.imatrix.TQ2_0.gguf", true},
		{"kjv-llama.IQ3_S.gguf", false},
		{"kjv-llama.IQ3_M.gguf", false},
		{"kjv-llama.TQ1_0.gguf", false},
		{"kjv-llama.TQ2_0.gguf", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, tc.file))
			var m map[string][]float32
			if tc.imatrix {
				m = imat
			}
			checked, weighted := reproduceIQ3Weighted(t, src, out, m, iq3Types)
			if len(checked) == 0 {
				t.Fatal("no tensor of the IQ3/TQ types")
			}
			for typ, n := range checked {
				t.Logf("%v: %d tensors identical (%d weighted by the imatrix)", typ, n, weighted[typ])
			}
		})
	}
}
