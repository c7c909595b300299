//go:build refdata && gengolden

package quantize_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// ggmlQuantRef runs scripts/ggml-quant-ref.c (built against
// ~/llama.cpp/build/bin, or $LLAMA_CPP) on rows and weights.
func ggmlQuantRef(t *testing.T, bin string, typ dtype.Type, rows, n int, in, weights []float32) ([]byte, []float32) {
	t.Helper()
	var req bytes.Buffer
	has := uint32(0)
	if weights != nil {
		has = 1
	}
	binary.Write(&req, binary.LittleEndian, [4]uint32{uint32(typ), uint32(rows), uint32(n), has})
	binary.Write(&req, binary.LittleEndian, in)
	if weights != nil {
		binary.Write(&req, binary.LittleEndian, weights)
	}
	cmd := exec.Command(bin)
	cmd.Stdin = &req
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	rb, _ := dtype.RowSize(typ, int64(n))
	q := out[:rows*int(rb)]
	deq := make([]float32, rows*n)
	for i := range deq {
		deq[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[len(q)+4*i:]))
	}
	return q, deq
}

// TestGenerateIQ2Golden writes testdata/quant/iq2_golden.bin (built only
// with -tags 'refdata gengolden', as it needs llama.cpp's libggml-base): rows of kjv-llama with their imatrix weights and synthetic
// rows, quantized and dequantized by llama.cpp's own ggml.
func TestGenerateIQ2Golden(t *testing.T) {
	llama := os.Getenv("LLAMA_CPP")
	if llama == "" {
		home, _ := os.UserHomeDir()
		llama = filepath.Join(home, "llama.cpp")
	}
	bin := filepath.Join(t.TempDir(), "ggml-quant-ref")
	build := exec.Command("gcc", "-O2", "-o", bin, filepath.Join(testref.Root(t), "scripts", "ggml-quant-ref.c"),
		"-I", filepath.Join(llama, "ggml", "include"), "-L", filepath.Join(llama, "build", "bin"), "-lggml-base")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building ggml-quant-ref: %v\n%s", err, out)
	}
	os.Setenv("LD_LIBRARY_PATH", filepath.Join(llama, "build", "bin"))

	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	imat := loadImatrix(t, testref.Imatrix(t, "kjv.imatrix.gguf"))
	realRow := func(name string, row int) ([]float32, []float32) {
		si := src.TensorIndex(name)
		st := src.Tensors[si]
		n := int(st.Shape[len(st.Shape)-1])
		all := make([]float32, int(st.Size)/2)
		if err := quantize.ToFloat32(all, tensorBytes(t, src, si), st.Type); err != nil {
			t.Fatal(err)
		}
		return all[row*n : (row+1)*n], imat[name]
	}
	rng := rand.New(rand.NewPCG(11, 2))
	synth := func(kind string) ([]float32, []float32) {
		x := make([]float32, 256)
		w := make([]float32, 256)
		for i := range x {
			w[i] = float32(rng.ExpFloat64()) + 0.01
			switch kind {
			case "ties": // few distinct values: equal keys in IQ1's sort, off-grid points
				x[i] = 0.01 * float32(rng.IntN(5)-2)
			case "zeros": // a zero group of 32, a tiny group, a spike
				switch {
				case i < 32:
					x[i] = 0
				case i < 64:
					x[i] = 1e-9 * float32(rng.NormFloat64())
				case i == 100:
					x[i] = -0.5
				default:
					x[i] = 0.02 * float32(rng.NormFloat64())
				}
			default: // heavy tailed
				x[i] = 0.02 * float32(rng.NormFloat64()*math.Exp(rng.NormFloat64()))
			}
		}
		return x, w
	}
	types := []dtype.Type{dtype.IQ2_XXS, dtype.IQ2_XS, dtype.IQ2_S, dtype.IQ1_S, dtype.IQ1_M}
	var cases []iqCase
	for k, typ := range types {
		name := []string{"blk.1.ffn_down.weight", "blk.3.ffn_down.weight", "blk.5.ffn_down.weight", "blk.2.ffn_down.weight", "blk.4.ffn_down.weight"}[k]
		in, w := realRow(name, 7+k)
		cases = append(cases, iqCase{Name: fmt.Sprintf("%v/%s", typ, name), Type: typ, Rows: 1, N: len(in), In: in, Weights: w})
		for _, kind := range []string{"ties", "zeros", "heavy"} {
			in, w := synth(kind)
			cases = append(cases, iqCase{Name: fmt.Sprintf("%v/%s", typ, kind), Type: typ, Rows: 1, N: 256, In: in, Weights: w})
			if !quantize.RequiresImatrix(typ) && kind != "zeros" {
				cases = append(cases, iqCase{Name: fmt.Sprintf("%v/%s-noweights", typ, kind), Type: typ, Rows: 1, N: 256, In: in})
			}
		}
	}
	for i := range cases {
		c := &cases[i]
		c.Want, c.Deq = ggmlQuantRef(t, bin, c.Type, c.Rows, c.N, c.In, c.Weights)
	}
	data := encodeIQGolden(cases)
	if err := os.WriteFile(testref.Local(t, "quant", "iq2_golden.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d cases, %d bytes", len(cases), len(data))
}
