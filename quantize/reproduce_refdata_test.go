//go:build refdata

package quantize_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/imatrix"
	"github.com/quantbridge/quantbridge/quantize"
)

// Helpers of the refdata tests that re-encode llama-quantize's outputs:
// "quantize every tensor of a reference GGUF (with its importance vector)
// and compare bytes".

// loadImatrix reads an imatrix file into what llama-quantize's load_imatrix
// hands its quantizers for each tensor (imatrix.Matrix.Importance).
func loadImatrix(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	m, err := imatrix.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, e := range m.Entries {
		out[e.Name], _ = m.Importance(e.Name)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no imatrix entries", path)
	}
	return out
}

// rowQuantizer encodes one row of the named tensor as typ.
type rowQuantizer func(dst []byte, src []float32, typ dtype.Type, name string) error

// plainRows quantizes as llama-quantize does without an importance matrix.
func plainRows(dst []byte, src []float32, typ dtype.Type, _ string) error {
	return quantize.FromFloat32(dst, src, typ)
}

// weightedRows quantizes with QuantizeRowWeighted, weighted by imat[name]
// (nil where imat has no entry, as llama-quantize does; imat nil: no
// importance matrix at all).
func weightedRows(imat map[string][]float32) rowQuantizer {
	return func(dst []byte, src []float32, typ dtype.Type, name string) error {
		return quantize.QuantizeRowWeighted(dst, src, imat[name], typ)
	}
}

// reproducedTensor is a tensor reproduced byte for byte: its source values
// (rows of N) and the reference bytes.
type reproducedTensor struct {
	Name string
	Type dtype.Type
	N    int
	In   []float32
	Want []byte
}

// reproduce re-encodes every tensor of out whose type is in types (nil:
// every tensor) from the same tensor of src with quant, row by row in
// parallel, and compares bytes. It calls each (if not nil) on every tensor
// checked and returns, per output type, the number of tensors and values
// checked.
func reproduce(t *testing.T, src, out *gguf.File, types map[dtype.Type]bool, quant rowQuantizer, each func(reproducedTensor)) map[dtype.Type][2]int {
	counts := map[dtype.Type][2]int{}
	for i, ti := range out.Tensors {
		if types != nil && !types[ti.Type] {
			continue
		}
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
		if int64(n)%ti.Type.BlockSize() != 0 {
			// 2023 llama.cpp (stories260K ffn_down, ne0 = 172) quantized
			// such a tensor as one flat array, blocks crossing rows.
			n = elems
		}
		rb, err := dtype.RowSize(ti.Type, int64(n))
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		got := make([]byte, len(want))
		rows := elems / n
		if rows*int(rb) != len(want) {
			t.Fatalf("%s: %d bytes for %d rows of %d bytes", ti.Name, len(want), rows, rb)
		}
		errs := make([]error, rows)
		var wg sync.WaitGroup
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for r := range rows {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[r] = quant(got[r*int(rb):(r+1)*int(rb)], in[r*n:(r+1)*n], ti.Type, ti.Name)
			}()
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("%s row %d: %v", ti.Name, r, err)
			}
		}
		if !bytes.Equal(got, want) {
			bs := int(ti.Type.TypeSize())
			nbad, first := 0, -1
			for b := 0; b < len(got); b += bs {
				if !bytes.Equal(got[b:b+bs], want[b:b+bs]) {
					if first < 0 {
						first = b
					}
					nbad++
				}
			}
			t.Errorf("%s: %s (%v): %d of %d blocks differ, first block %d (row %d):\n got  %x\n want %x",
				filepath.Base(out.Path()), ti.Name, ti.Type, nbad, len(got)/bs, first/bs, first/int(rb), got[first:first+bs], want[first:first+bs])
		}
		c := counts[ti.Type]
		counts[ti.Type] = [2]int{c[0] + 1, c[1] + elems}
		if each != nil {
			each(reproducedTensor{Name: ti.Name, Type: ti.Type, N: n, In: in, Want: want})
		}
	}
	return counts
}

// checkDecodes dequantizes the reference bytes of r: they decode, finite,
// with the source's scale (relative RMS error at most 0.9; the exact values
// are checked in the default suite's golden blocks). It returns that error.
func checkDecodes(t *testing.T, r reproducedTensor) float64 {
	t.Helper()
	deq := make([]float32, len(r.In))
	if err := quantize.DequantizeRow(deq, r.Want, r.Type); err != nil {
		t.Fatalf("%s: %v", r.Name, err)
	}
	var se, sx float64
	for j, v := range deq {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: element %d dequantizes to %v", r.Name, j, v)
		}
		d := float64(v - r.In[j])
		se += d * d
		sx += float64(r.In[j]) * float64(r.In[j])
	}
	rel := math.Sqrt(se / sx)
	if rel > 0.9 {
		t.Errorf("%s: relative RMS error of the dequantized reference %.3f", r.Name, rel)
	}
	return rel
}

// checkAllReproduced logs what reproduce checked in out, per type, and fails
// unless that was every tensor of out.
func checkAllReproduced(t *testing.T, out *gguf.File, counts map[dtype.Type][2]int) {
	t.Helper()
	total := 0
	var log []string
	for _, typ := range sortedTypes(counts) {
		c := counts[typ]
		log = append(log, fmt.Sprintf("%v: %d tensors (%d values)", typ, c[0], c[1]))
		total += c[0]
	}
	t.Logf("identical: %s", strings.Join(log, ", "))
	if total != len(out.Tensors) || total == 0 {
		t.Errorf("checked %d of %d tensors", total, len(out.Tensors))
	}
}

// updateGolden writes a golden file's data (ncases cases) to path under
// -update; otherwise it fails when the committed file differs, naming the
// test (run) that regenerates it.
func updateGolden(t *testing.T, path string, data []byte, ncases int, run string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d cases, %d bytes", path, ncases, len(data))
		return
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, data) {
		t.Errorf("%s is stale: run go test -tags refdata -run %s -update ./quantize/", path, run)
	}
}
