package quantize_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// goldenCase is a run of rows of a real tensor and llama-quantize's
// encoding of them, extracted from the reference GGUF files by
// TestGenerateGolden (-tags refdata). The input rows either come from the
// repository's kjv-llama checkpoint (Source names the safetensors tensor;
// the GGUF bf16 rows are the same for every tensor but the permuted Q/K
// projections) or are stored in golden.bin.
type goldenCase struct {
	Name       string
	Source     string // tensor of testdata/kjv-llama/model.safetensors, or ""
	Type       dtype.Type
	N          int // row length
	Row0, Rows int // first row and row count
	In         []float32
	Want       []byte
}

// golden.bin layout (little endian): "QBGOLD2\n", u32 case count, then per
// case: u16 name length, name, u16 source length, source, u32 output type,
// u32 row length, u32 first row, u32 rows, u32 input encoding (0xFFFFFFFF:
// read from Source; else BF16 or F32) and the input values in it, u32 output length,
// output bytes.
const goldenMagic = "QBGOLD2\n"

// fromSource is the input encoding of a case whose rows come from Source.
const fromSource = dtype.Type(0xFFFFFFFF)

func encodeGolden(cases []goldenCase) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(goldenMagic)
	binary.Write(&b, le, uint32(len(cases)))
	for _, c := range cases {
		binary.Write(&b, le, uint16(len(c.Name)))
		b.WriteString(c.Name)
		binary.Write(&b, le, uint16(len(c.Source)))
		b.WriteString(c.Source)
		enc := fromSource
		if c.Source == "" {
			enc = goldenInputEncoding(c.In)
		}
		binary.Write(&b, le, [5]uint32{uint32(c.Type), uint32(c.N), uint32(c.Row0), uint32(c.Rows), uint32(enc)})
		if enc != fromSource {
			raw := make([]byte, len(c.In)*int(enc.TypeSize()))
			if err := quantize.FromFloat32(raw, c.In, enc); err != nil {
				panic(err)
			}
			b.Write(raw)
		}
		binary.Write(&b, le, uint32(len(c.Want)))
		b.Write(c.Want)
	}
	return b.Bytes()
}

// goldenReader reads golden.bin's fields, remembering the first error.
type goldenReader struct {
	b   []byte
	err error
}

func (r *goldenReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("field of %d bytes runs past the end (%d left)", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *goldenReader) u16() int {
	if v := r.next(2); v != nil {
		return int(binary.LittleEndian.Uint16(v))
	}
	return 0
}

func (r *goldenReader) u32() int {
	if v := r.next(4); v != nil {
		return int(binary.LittleEndian.Uint32(v))
	}
	return 0
}

// f32s reads n little-endian float32 values (none once an error occurred).
func (r *goldenReader) f32s(n int) []float32 {
	raw := r.next(4 * n)
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// end is the reader's first error, or an error if bytes are left over.
func (r *goldenReader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return nil
}

// goldenInputEncoding is how the golden files store input values: BF16 when
// every value is exact in it, else F32.
func goldenInputEncoding(in []float32) dtype.Type {
	for _, v := range in {
		if quantize.BF16ToFP32(quantize.FP32ToBF16(v)) != v {
			return dtype.F32
		}
	}
	return dtype.BF16
}

// readGoldenFile reads testdata/quant/name and decodes its cases.
func readGoldenFile[C any](t *testing.T, name string, decode func([]byte) ([]C, error)) []C {
	t.Helper()
	data, err := os.ReadFile(testref.Local(t, "quant", name))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := decode(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cases
}

// checkDequantized fails t unless DequantizeRow decodes b (of type typ) to
// exactly ggml's values want.
func checkDequantized(t *testing.T, typ dtype.Type, b []byte, want []float32) {
	t.Helper()
	dec := make([]float32, len(want))
	if err := quantize.DequantizeRow(dec, b, typ); err != nil {
		t.Fatal(err)
	}
	for i := range dec {
		if math.Float32bits(dec[i]) != math.Float32bits(want[i]) {
			t.Errorf("%v element %d dequantizes to %v, ggml %v", typ, i, dec[i], want[i])
			return
		}
	}
}

// checkRowBytes fails t at the first block where got differs from want,
// row r of a typ tensor.
func checkRowBytes(t *testing.T, typ dtype.Type, r int, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	bs := int(typ.TypeSize())
	for b := 0; b+bs <= len(got) && b+bs <= len(want); b += bs {
		if !bytes.Equal(got[b:b+bs], want[b:b+bs]) {
			t.Fatalf("%v row %d block %d differs:\n got  %x\n want %x", typ, r, b/bs, got[b:b+bs], want[b:b+bs])
		}
	}
	t.Fatalf("%v row %d: %d bytes, want %d", typ, r, len(got), len(want))
}

// decodeGolden parses golden.bin, reading Source rows from st.
func decodeGolden(data []byte, st *stFile) ([]goldenCase, error) {
	r := &goldenReader{b: data}
	if string(r.next(len(goldenMagic))) != goldenMagic {
		return nil, errors.New("bad magic")
	}
	n := r.u32()
	var cases []goldenCase
	for i := 0; i < n && r.err == nil; i++ {
		c := goldenCase{Name: string(r.next(r.u16())), Source: string(r.next(r.u16()))}
		c.Type, c.N, c.Row0, c.Rows = dtype.Type(r.u32()), r.u32(), r.u32(), r.u32()
		enc := dtype.Type(r.u32())
		if r.err != nil {
			break
		}
		if c.N <= 0 || c.Rows <= 0 || c.N*c.Rows > 1<<22 {
			return nil, fmt.Errorf("%s: bad size %d x %d", c.Name, c.Rows, c.N)
		}
		c.In = make([]float32, c.N*c.Rows)
		var err error
		if enc == fromSource {
			err = st.rows(c.In, c.Source, c.Row0, c.N)
		} else {
			err = quantize.ToFloat32(c.In, r.next(len(c.In)*int(enc.TypeSize())), enc)
		}
		if err != nil && r.err == nil {
			return nil, fmt.Errorf("%s: %v", c.Name, err)
		}
		c.Want = r.next(r.u32())
		cases = append(cases, c)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return cases, nil
}

// stFile is just enough of a safetensors reader for the golden inputs.
type stFile struct {
	data    []byte
	tensors map[string]struct {
		Dtype   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
}

func openST(t testing.TB, path string) *stFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &stFile{}
	hl := int(binary.LittleEndian.Uint64(data))
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hl], &hdr); err != nil {
		t.Fatal(err)
	}
	delete(hdr, "__metadata__")
	raw, _ := json.Marshal(hdr)
	if err := json.Unmarshal(raw, &f.tensors); err != nil {
		t.Fatal(err)
	}
	f.data = data[8+hl:]
	return f
}

// rows decodes len(dst)/n rows of n values of the named BF16 tensor, from
// row row0 on.
func (f *stFile) rows(dst []float32, name string, row0, n int) error {
	ti, ok := f.tensors[name]
	if !ok || ti.Dtype != "BF16" || ti.Shape[len(ti.Shape)-1] != n {
		return fmt.Errorf("no BF16 tensor %q with rows of %d", name, n)
	}
	off := ti.Offsets[0] + 2*row0*n
	if off+2*len(dst) > ti.Offsets[1] {
		return fmt.Errorf("rows past the end of %q", name)
	}
	return quantize.ToFloat32(dst, f.data[off:off+2*len(dst)], dtype.BF16)
}

// Rows of real kjv-llama (and stories260K) tensors encode to exactly the bytes
// llama-quantize wrote, for every block type the reference files contain.
func TestGoldenLlamaQuantize(t *testing.T) {
	st := openST(t, testref.Local(t, "kjv-llama", "model.safetensors"))
	cases := readGoldenFile(t, "golden.bin", func(data []byte) ([]goldenCase, error) { return decodeGolden(data, st) })
	types := map[dtype.Type]int{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			rb := len(c.Want) / c.Rows
			for r := range c.Rows {
				got := make([]byte, rb)
				if err := quantize.QuantizeRow(got, c.In[r*c.N:(r+1)*c.N], c.Type); err != nil {
					t.Fatal(err)
				}
				checkRowBytes(t, c.Type, r, got, c.Want[r*rb:(r+1)*rb])
				// The decoded row is close to the input (real rows are less
				// regular than Gaussian ones: allow 1.5 times the bound).
				dec := make([]float32, c.N)
				if err := quantize.DequantizeRow(dec, got, c.Type); err != nil {
					t.Fatal(err)
				}
				if e, bound := relRMSE(c.In[r*c.N:(r+1)*c.N], dec), 1.5*maxRelRMSE[c.Type]; e > bound {
					t.Errorf("%v row %d: relative RMSE %.4f > %.4f", c.Type, r, e, bound)
				}
			}
		})
		types[c.Type]++
	}
	for _, typ := range []dtype.Type{dtype.Q8_0, dtype.Q4_0, dtype.Q4_1, dtype.Q5_0, dtype.Q5_1, dtype.Q2_K, dtype.Q3_K, dtype.Q4_K, dtype.Q5_K, dtype.Q6_K} {
		if types[typ] == 0 {
			t.Errorf("golden.bin has no %v case", typ)
		}
	}
}

func relRMSE(want, got []float32) float64 {
	var se, s2 float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		se += d * d
		s2 += float64(want[i]) * float64(want[i])
	}
	if s2 == 0 {
		return math.Sqrt(se)
	}
	return math.Sqrt(se / s2)
}
