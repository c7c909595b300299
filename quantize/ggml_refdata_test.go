//go:build refdata

package quantize_test

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

var update = flag.Bool("update", false, "rewrite testdata/quant/golden.bin from the reference files")

// The quantized kjv-llama files llama-quantize wrote from kjv-llama.bf16.gguf.
var kjvQuantFiles = []string{"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func tensorBytes(t *testing.T, f *gguf.File, i int) []byte {
	t.Helper()
	b, err := io.ReadAll(f.TensorReader(i))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every tensor of every llama-quantize output for kjv-llama is reproduced
// byte for byte from the bf16 GGUF.
func TestReproduceLlamaQuantize(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	for _, name := range kjvQuantFiles {
		t.Run(name, func(t *testing.T) {
			out := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama."+name+".gguf"))
			counts := reproduce(t, src, out, nil, plainRows, nil)
			checkAllReproduced(t, out, counts)
		})
	}
}

// stories260K-q8_0-ggufv2.gguf (llama.cpp quantize, 2023) is reproduced from
// stories260K-f32-ggufv1.gguf.
func TestReproduceStories260KQ8_0(t *testing.T) {
	src := openGGUF(t, testref.Shared(t, "real", "gguf", "stories260K-f32-ggufv1.gguf"))
	out := openGGUF(t, testref.Shared(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	counts := reproduce(t, src, out, nil, plainRows, nil)
	if counts[dtype.Q8_0][0] == 0 {
		t.Errorf("no Q8_0 tensors checked: %v", counts)
	}
	for _, typ := range sortedTypes(counts) {
		c := counts[typ]
		t.Logf("%v: %d tensors, %d values identical", typ, c[0], c[1])
	}
	if n := counts[dtype.Q8_0][0] + counts[dtype.F32][0]; n != len(out.Tensors) {
		t.Errorf("checked %d of %d tensors", n, len(out.Tensors))
	}
}

func sortedTypes(m map[dtype.Type][2]int) []dtype.Type {
	ts := make([]dtype.Type, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// TestGenerateGolden writes testdata/quant/golden.bin (run with -update):
// for each reference file and each block type in it, a run of rows (about
// 12 KB of output) of one tensor of that type, preferring tensors whose
// input rows the repository's kjv-llama safetensors holds (everything but
// the permuted attn_q/attn_k) and moving on to later rows when a tensor was
// already used for that type. Without -update it checks that the committed
// file is what it would write.
func TestGenerateGolden(t *testing.T) {
	st := openST(t, testref.Local(t, "kjv-llama", "model.safetensors"))
	var cases []goldenCase
	used := map[string]int{} // type/tensor -> rows already taken
	type cand struct {
		name string
		n    int
		in   []float32
		want []byte
	}
	choose := func(file string, byType map[dtype.Type][]cand, order []dtype.Type, embed bool) {
		for _, typ := range order {
			// The eligible tensor with the fewest rows used so far (the
			// first on ties); the first tensor if none is eligible.
			cs := byType[typ]
			best, bestUsed := cs[0], -1
			for _, c := range cs {
				hf, ok := arch.Llama.HFName(c.name, false)
				if !ok || strings.Contains(c.name, "attn_q") || strings.Contains(c.name, "attn_k") || st.tensors[hf].Dtype != "BF16" {
					continue
				}
				if u := used[typ.String()+"/"+c.name]; bestUsed < 0 || u < bestUsed {
					best, bestUsed = c, u
				}
			}
			key := typ.String() + "/" + best.name
			total := len(best.in) / best.n
			rb := len(best.want) / total
			rows := max(1, min(total, 12288/rb))
			row0 := used[key] % total
			rows = min(rows, total-row0)
			used[key] += rows
			c := goldenCase{
				Name: fmt.Sprintf("%s/%s[%d:%d]", file, best.name, row0, row0+rows),
				Type: typ, N: best.n, Row0: row0, Rows: rows,
				In:   best.in[row0*best.n : (row0+rows)*best.n],
				Want: best.want[row0*rb : (row0+rows)*rb],
			}
			if hf, ok := arch.Llama.HFName(best.name, false); ok && !embed {
				in := make([]float32, len(c.In))
				if st.rows(in, hf, row0, best.n) == nil && slices.Equal(in, c.In) {
					c.Source = hf
				}
			}
			if c.Source == "" { // keep embedded inputs small
				c.Rows = min(c.Rows, max(1, 2048/best.n))
				c.Name = fmt.Sprintf("%s/%s[%d:%d]", file, best.name, row0, row0+c.Rows)
				c.In = c.In[:c.Rows*c.N]
				c.Want = c.Want[:c.Rows*rb]
			}
			cases = append(cases, c)
		}
	}
	collect := func(src, out *gguf.File, file string, embed bool) {
		byType := map[dtype.Type][]cand{}
		var order []dtype.Type
		reproduce(t, src, out, nil, plainRows, func(r reproducedTensor) {
			name, typ, n, in, want := r.Name, r.Type, r.N, r.In, r.Want
			if !typ.IsQuantized() || n == len(in) && len(in) > 4096 {
				return
			}
			if byType[typ] == nil {
				order = append(order, typ)
			}
			byType[typ] = append(byType[typ], cand{name, n, in, want})
		})
		choose(file, byType, order, embed)
	}
	src := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	for _, name := range kjvQuantFiles {
		out := openGGUF(t, testref.Shared(t, "llama.cpp", "kjv-llama."+name+".gguf"))
		collect(src, out, "kjv-llama."+name, false)
	}
	src = openGGUF(t, testref.Shared(t, "real", "gguf", "stories260K-f32-ggufv1.gguf"))
	out := openGGUF(t, testref.Shared(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	collect(src, out, "stories260K-q8_0", true)

	data := encodeGolden(cases)
	updateGolden(t, testref.Local(t, "quant", "golden.bin"), data, len(cases), "TestGenerateGolden")
}
