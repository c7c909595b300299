package quantize_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/quantize"
)

// weightedCase is a run of rows of a kjv-llama tensor, the importance
// vector llama-quantize weighted it by (nil: none) and the bytes it wrote,
// extracted from the --imatrix reference files by
// TestGenerateWeightedGolden (-tags refdata).
type weightedCase struct {
	Name    string
	Type    dtype.Type
	N, Rows int
	In      []float32 // Rows*N values, exact in bf16
	Weights []float32 // N values, or nil
	Want    []byte
}

// golden_weighted.bin layout (little endian): "QBWGOLD1", u32 case count,
// then per case: u16 name length, name, u32 type, u32 row length, u32 rows,
// u32 1 if weights follow else 0, the input as bf16, the weights as f32,
// u32 output length, output bytes.
const weightedGoldenMagic = "QBWGOLD1"

func encodeWeightedGolden(cases []weightedCase) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(weightedGoldenMagic)
	binary.Write(&b, le, uint32(len(cases)))
	for _, c := range cases {
		binary.Write(&b, le, uint16(len(c.Name)))
		b.WriteString(c.Name)
		hasW := uint32(0)
		if c.Weights != nil {
			hasW = 1
		}
		binary.Write(&b, le, [4]uint32{uint32(c.Type), uint32(c.N), uint32(c.Rows), hasW})
		raw := make([]byte, 2*len(c.In))
		if err := quantize.FromFloat32(raw, c.In, dtype.BF16); err != nil {
			panic(err)
		}
		b.Write(raw)
		binary.Write(&b, le, c.Weights)
		binary.Write(&b, le, uint32(len(c.Want)))
		b.Write(c.Want)
	}
	return b.Bytes()
}

func decodeWeightedGolden(data []byte) ([]weightedCase, error) {
	r := &goldenReader{b: data}
	if string(r.next(len(weightedGoldenMagic))) != weightedGoldenMagic {
		return nil, errors.New("bad magic")
	}
	n := r.u32()
	var cases []weightedCase
	for i := 0; i < n && r.err == nil; i++ {
		c := weightedCase{Name: string(r.next(r.u16()))}
		c.Type, c.N, c.Rows = dtype.Type(r.u32()), r.u32(), r.u32()
		hasW := r.u32()
		if r.err != nil {
			break
		}
		if c.N <= 0 || c.Rows <= 0 || c.N*c.Rows > 1<<20 || hasW > 1 {
			return nil, fmt.Errorf("%s: bad header (%d x %d, weights %d)", c.Name, c.Rows, c.N, hasW)
		}
		c.In = make([]float32, c.N*c.Rows)
		if raw := r.next(2 * len(c.In)); raw != nil {
			if err := quantize.ToFloat32(c.In, raw, dtype.BF16); err != nil {
				return nil, fmt.Errorf("%s: %v", c.Name, err)
			}
		}
		if hasW == 1 {
			c.Weights = r.f32s(c.N)
		}
		c.Want = r.next(r.u32())
		cases = append(cases, c)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return cases, nil
}

// Rows of real kjv-llama tensors quantized with their importance vectors
// (and IQ4 rows without one) give exactly the bytes llama-quantize
// --imatrix wrote; with weights, the output differs from the unweighted
// quantization (the weights are used).
func TestGoldenWeighted(t *testing.T) {
	cases := readGoldenFile(t, "golden_weighted.bin", decodeWeightedGolden)
	weighted := map[dtype.Type]int{}
	unweighted := map[dtype.Type]int{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if len(c.Want)%c.Rows != 0 {
				t.Fatalf("%d output bytes for %d rows", len(c.Want), c.Rows)
			}
			rb := len(c.Want) / c.Rows
			same := 0
			for r := range c.Rows {
				src := c.In[r*c.N : (r+1)*c.N]
				got := make([]byte, rb)
				if err := quantize.QuantizeRowWeighted(got, src, c.Weights, c.Type); err != nil {
					t.Fatal(err)
				}
				want := c.Want[r*rb : (r+1)*rb]
				checkRowBytes(t, c.Type, r, got, want)
				plain := make([]byte, rb)
				if err := quantize.QuantizeRow(plain, src, c.Type); err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(plain, want) {
					same++
				}
			}
			if c.Weights != nil && same == c.Rows {
				t.Errorf("the weighted rows equal the unweighted ones: the weights were not used")
			}
			if c.Weights == nil && same != c.Rows {
				t.Errorf("QuantizeRow differs from QuantizeRowWeighted without weights in %d of %d rows", c.Rows-same, c.Rows)
			}
		})
		if c.Weights != nil {
			weighted[c.Type]++
		} else {
			unweighted[c.Type]++
		}
	}
	for _, typ := range []dtype.Type{dtype.Q4_0, dtype.Q4_1, dtype.Q5_0, dtype.Q5_1, dtype.Q2_K, dtype.Q3_K, dtype.Q4_K, dtype.Q5_K, dtype.Q6_K, dtype.IQ4_NL, dtype.IQ4_XS} {
		if weighted[typ] == 0 {
			t.Errorf("golden_weighted.bin has no weighted %v case", typ)
		}
	}
	for _, typ := range []dtype.Type{dtype.IQ4_NL, dtype.IQ4_XS} {
		if unweighted[typ] == 0 {
			t.Errorf("golden_weighted.bin has no %v case without weights", typ)
		}
	}
}

// QuantizeRowWeighted checks its arguments as QuantizeRow does.
func TestQuantizeRowWeightedErrors(t *testing.T) {
	src := make([]float32, 256)
	for i := range src {
		src[i] = float32(i%17) - 8
	}
	w := make([]float32, 256)
	for i := range w {
		w[i] = 1
	}
	for _, typ := range []dtype.Type{dtype.Q4_0, dtype.Q3_K, dtype.IQ4_NL, dtype.IQ4_XS} {
		rb, _ := dtype.RowSize(typ, 256)
		if err := quantize.QuantizeRowWeighted(make([]byte, rb), src, w[:255], typ); err == nil {
			t.Errorf("%v: 255 weights for 256 values: no error", typ)
		}
		if err := quantize.QuantizeRowWeighted(make([]byte, rb-1), src, w, typ); err == nil {
			t.Errorf("%v: short dst: no error", typ)
		}
		bad := append([]float32(nil), src...)
		bad[7] = float32(math.Inf(1))
		if err := quantize.QuantizeRowWeighted(make([]byte, rb), bad, w, typ); !errors.Is(err, quantize.ErrNonFinite) {
			t.Errorf("%v: infinite input: %v, want ErrNonFinite", typ, err)
		}
		if !quantize.CanQuantizeWeighted(typ) {
			t.Errorf("CanQuantizeWeighted(%v) = false", typ)
		}
	}
}
