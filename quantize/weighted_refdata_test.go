//go:build refdata

package quantize_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// The llama-quantize --imatrix outputs for kjv-llama whose tensor types
// have weighted quantizers here (../shared/testdata/imatrix, README.md
// there says how they were made).
var kjvImatrixFiles = []string{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L",
	"Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}

// loadImatrix reads an imatrix GGUF as llama-quantize's load_imatrix does:
// per tensor, in_sum2 divided by counts (per expert), 1 where a count is 0.
func loadImatrix(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f := openGGUF(t, path)
	readF32 := func(i int) []float32 {
		ti := f.Tensors[i]
		if ti.Type != dtype.F32 {
			t.Fatalf("%s: %s is %v, want F32", path, ti.Name, ti.Type)
		}
		b, err := io.ReadAll(f.TensorReader(i))
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, len(b)/4)
		if err := quantize.ToFloat32(v, b, dtype.F32); err != nil {
			t.Fatal(err)
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
		if ci < 0 {
			t.Fatalf("%s: %s has no counts", path, name)
		}
		sums, counts := readF32(i), readF32(ci)
		ne0 := len(sums) / len(counts)
		e := make([]float32, len(sums))
		for j, c := range counts {
			for k := range ne0 {
				if c > 0 {
					e[j*ne0+k] = sums[j*ne0+k] / c
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

// reproduceWeighted re-encodes every tensor of out from the same tensor of
// src with QuantizeRowWeighted, weighted by imatrix[name] (nil where the
// imatrix has no entry, as llama-quantize does), and compares bytes. It
// returns per output type the tensors and rows checked.
func reproduceWeighted(t *testing.T, src, out *gguf.File, imatrix map[string][]float32, each func(name string, typ dtype.Type, n int, in, w []float32, want []byte)) map[dtype.Type][2]int {
	counts := map[dtype.Type][2]int{}
	for i, ti := range out.Tensors {
		si := src.TensorIndex(ti.Name)
		if si < 0 {
			t.Errorf("%s: tensor %s not in %s", out.Path(), ti.Name, src.Path())
			continue
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
		want := tensorBytes(t, out, i)
		w := imatrix[ti.Name]
		if w != nil && len(w) != n {
			t.Fatalf("%s: imatrix has %d values for rows of %d", ti.Name, len(w), n)
		}
		rb, err := dtype.RowSize(ti.Type, int64(n))
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		got := make([]byte, len(want))
		for r := 0; r < elems/n; r++ {
			row := got[r*int(rb) : (r+1)*int(rb)]
			if err := quantize.QuantizeRowWeighted(row, in[r*n:(r+1)*n], w, ti.Type); err != nil {
				t.Fatalf("%s row %d: %v", ti.Name, r, err)
			}
		}
		if !bytes.Equal(got, want) {
			bs := int(ti.Type.TypeSize())
			nbad := 0
			for b := 0; b < len(got); b += bs {
				if !bytes.Equal(got[b:b+bs], want[b:b+bs]) {
					if nbad == 0 {
						t.Errorf("%s: %s (%v, imatrix %v) differs first at block %d (byte %d):\n got  %x\n want %x",
							filepath.Base(out.Path()), ti.Name, ti.Type, w != nil, b/bs, b, got[b:b+bs], want[b:b+bs])
					}
					nbad++
				}
			}
			t.Errorf("%s: %d of %d blocks differ", ti.Name, nbad, len(got)/bs)
		}
		c := counts[ti.Type]
		counts[ti.Type] = [2]int{c[0] + 1, c[1] + elems/n}
		if each != nil {
			each(ti.Name, ti.Type, n, in, w, want)
		}
	}
	return counts
}

// Every tensor of every llama-quantize --imatrix output for kjv-llama
// (types this package quantizes with weights) is reproduced byte for byte
// from the bf16 GGUF and the imatrix.
func TestReproduceLlamaQuantizeImatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imatrix := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	for _, name := range kjvImatrixFiles {
		t.Run(name, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, "kjv-llama.imatrix."+name+".gguf"))
			counts := reproduceWeighted(t, src, out, imatrix, nil)
			total := 0
			var log []string
			for _, typ := range sortedTypes(counts) {
				c := counts[typ]
				log = append(log, fmt.Sprintf("%v: %d tensors (%d rows)", typ, c[0], c[1]))
				total += c[0]
			}
			t.Logf("identical: %s", strings.Join(log, ", "))
			if total != len(out.Tensors) || total == 0 {
				t.Errorf("checked %d of %d tensors", total, len(out.Tensors))
			}
		})
	}
}

// IQ4_NL and IQ4_XS also run without an importance matrix (weights x²):
// llama-quantize's outputs without --imatrix are reproduced byte for byte.
func TestReproduceLlamaQuantizeIQ4NoImatrix(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	for _, name := range []string{"IQ4_NL", "IQ4_XS"} {
		t.Run(name, func(t *testing.T) {
			out := openGGUF(t, testref.Imatrix(t, "kjv-llama."+name+".gguf"))
			counts := reproduceWeighted(t, src, out, nil, nil)
			total := 0
			var log []string
			for _, typ := range sortedTypes(counts) {
				c := counts[typ]
				log = append(log, fmt.Sprintf("%v: %d tensors (%d rows)", typ, c[0], c[1]))
				total += c[0]
			}
			t.Logf("identical: %s", strings.Join(log, ", "))
			if total != len(out.Tensors) || total == 0 {
				t.Errorf("checked %d of %d tensors", total, len(out.Tensors))
			}
		})
	}
}

// TestGenerateWeightedGolden writes testdata/quant/golden_weighted.bin (run
// with -update): for each type with a weighted quantizer, two rows of the
// first tensor of that type with an importance vector and 256-value rows,
// plus one row of a 768-value ffn_down tensor for the legacy types (their
// weights use the whole row's mean square), from the --imatrix reference
// files; and IQ4_NL/IQ4_XS rows from the files made without an imatrix.
// Without -update it checks that the committed file is what it would write.
func TestGenerateWeightedGolden(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imatrix := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	var cases []weightedCase
	done := map[string]bool{}
	collect := func(file string, imatrix map[string][]float32) {
		out := openGGUF(t, testref.Imatrix(t, file))
		reproduceWeighted(t, src, out, imatrix, func(name string, typ dtype.Type, n int, in, w []float32, want []byte) {
			if !quantize.CanQuantizeWeighted(typ) || (imatrix != nil) != (w != nil) {
				return
			}
			if w == nil && typ != dtype.IQ4_NL && typ != dtype.IQ4_XS {
				return // golden.bin has the reference quantizers
			}
			rb := len(want) / (len(in) / n)
			key := fmt.Sprintf("%v/%d/%v", typ, n, w != nil)
			rows := 2
			if n != 256 {
				legacy := typ == dtype.Q4_0 || typ == dtype.Q4_1 || typ == dtype.Q5_0 || typ == dtype.Q5_1
				if !legacy || !strings.Contains(name, "ffn_down") {
					return
				}
				rows = 1
			}
			if done[key] {
				return
			}
			done[key] = true
			cases = append(cases, weightedCase{
				Name: fmt.Sprintf("%s/%s[0:%d]/%v", strings.TrimSuffix(file, ".gguf"), name, rows, typ),
				Type: typ, N: n, Rows: rows,
				In: in[:rows*n], Weights: w, Want: want[:rows*rb],
			})
		})
	}
	for _, name := range kjvImatrixFiles {
		collect("kjv-llama.imatrix."+name+".gguf", imatrix)
	}
	for _, name := range []string{"IQ4_NL", "IQ4_XS"} {
		collect("kjv-llama."+name+".gguf", nil)
	}
	data := encodeWeightedGolden(cases)
	path := testref.Local(t, "quant", "golden_weighted.bin")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d cases, %d bytes", path, len(cases), len(data))
		return
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, data) {
		t.Errorf("%s is stale: run go test -tags refdata -run TestGenerateWeightedGolden ./quantize/ -update", path)
	}
}
