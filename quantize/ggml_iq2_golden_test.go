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

// iqCase is a run of rows, an optional importance vector, and what
// llama.cpp's ggml (34af94cd) makes of them: ggml_quantize_chunk's bytes and
// the type's to_float of those bytes. TestGenerateIQ2Golden (-tags 'refdata
// gengolden') writes them to testdata/quant/iq2_golden.bin with
// scripts/ggml-quant-ref.c.
type iqCase struct {
	Name    string
	Type    dtype.Type
	Rows, N int
	In      []float32
	Weights []float32 // N values, or nil (ggml's NULL quant_weights)
	Want    []byte
	Deq     []float32
}

// iq2_golden.bin layout (little endian): "QBIQG1\n\x00", u32 case count,
// then per case: u16 name length, name, u32 type, u32 rows, u32 row
// length, u32 input encoding (BF16 or F32) and the rows*N input values in
// it, u32 1 and N f32 weights (or u32 0), u32 output length, output bytes,
// rows*N f32 dequantized values.
const iqGoldenMagic = "QBIQG1\n\x00"

func encodeIQGolden(cases []iqCase) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(iqGoldenMagic)
	binary.Write(&b, le, uint32(len(cases)))
	for _, c := range cases {
		binary.Write(&b, le, uint16(len(c.Name)))
		b.WriteString(c.Name)
		enc := goldenInputEncoding(c.In)
		binary.Write(&b, le, [4]uint32{uint32(c.Type), uint32(c.Rows), uint32(c.N), uint32(enc)})
		raw := make([]byte, len(c.In)*int(enc.TypeSize()))
		if err := quantize.FromFloat32(raw, c.In, enc); err != nil {
			panic(err)
		}
		b.Write(raw)
		if c.Weights != nil {
			binary.Write(&b, le, uint32(1))
			binary.Write(&b, le, c.Weights)
		} else {
			binary.Write(&b, le, uint32(0))
		}
		binary.Write(&b, le, uint32(len(c.Want)))
		b.Write(c.Want)
		binary.Write(&b, le, c.Deq)
	}
	return b.Bytes()
}

func decodeIQGolden(data []byte) ([]iqCase, error) {
	r := &goldenReader{b: data}
	if string(r.next(len(iqGoldenMagic))) != iqGoldenMagic {
		return nil, errors.New("bad magic")
	}
	n := r.u32()
	var cases []iqCase
	for range n {
		var c iqCase
		c.Name = string(r.next(r.u16()))
		c.Type, c.Rows, c.N = dtype.Type(r.u32()), r.u32(), r.u32()
		enc := dtype.Type(r.u32())
		if r.err != nil {
			break
		}
		if c.Rows <= 0 || c.N <= 0 || c.Rows*c.N > 1<<20 || (enc != dtype.BF16 && enc != dtype.F32) {
			return nil, fmt.Errorf("case %q: bad header", c.Name)
		}
		raw := r.next(c.Rows * c.N * int(enc.TypeSize()))
		if r.err != nil {
			break
		}
		c.In = make([]float32, c.Rows*c.N)
		if err := quantize.ToFloat32(c.In, raw, enc); err != nil {
			return nil, fmt.Errorf("case %q: %v", c.Name, err)
		}
		if r.u32() == 1 {
			c.Weights = r.f32s(c.N)
		}
		c.Want = r.next(r.u32())
		c.Deq = r.f32s(c.Rows * c.N)
		if r.err != nil {
			break
		}
		cases = append(cases, c)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return cases, nil
}

// Rows of kjv-llama tensors with their importance vectors, and synthetic
// rows with ties, zero and tiny groups, and without weights, quantize to
// exactly ggml's bytes and dequantize to exactly ggml's values, for IQ2_XXS,
// IQ2_XS, IQ2_S, IQ1_S and IQ1_M.
func TestGoldenIQ2(t *testing.T) {
	cases := readGoldenFile(t, "iq2_golden.bin", decodeIQGolden)
	types := map[dtype.Type]int{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			rb := len(c.Want) / c.Rows
			for r := range c.Rows {
				got := make([]byte, rb)
				if err := quantize.QuantizeRowWeighted(got, c.In[r*c.N:(r+1)*c.N], c.Weights, c.Type); err != nil {
					t.Fatal(err)
				}
				checkRowBytes(t, c.Type, r, got, c.Want[r*rb:(r+1)*rb])
			}
			checkDequantized(t, c.Type, c.Want, c.Deq)
		})
		types[c.Type]++
	}
	for _, typ := range []dtype.Type{dtype.IQ2_XXS, dtype.IQ2_XS, dtype.IQ2_S, dtype.IQ1_S, dtype.IQ1_M} {
		if types[typ] == 0 {
			t.Errorf("iq2_golden.bin has no %v case", typ)
		}
	}
}

// The types that llama.cpp refuses to quantize without an importance
// matrix refuse here too; IQ2_S and IQ1_M run with their default weighting.
func TestIQ2RequiresImatrix(t *testing.T) {
	src := make([]float32, 256)
	for i := range src {
		src[i] = float32(i%7) - 3
	}
	for _, tc := range []struct {
		typ  dtype.Type
		need bool
	}{{dtype.IQ2_XXS, true}, {dtype.IQ2_XS, true}, {dtype.IQ1_S, true}, {dtype.IQ2_S, false}, {dtype.IQ1_M, false}} {
		dst := make([]byte, tc.typ.TypeSize())
		err := quantize.QuantizeRow(dst, src, tc.typ)
		if (err != nil) != tc.need {
			t.Errorf("%v without weights: error %v, want an error: %v", tc.typ, err, tc.need)
		}
		if quantize.CanQuantize(tc.typ) == tc.need || !quantize.CanDequantize(tc.typ) || !quantize.CanQuantizeWeighted(tc.typ) {
			t.Errorf("%v: CanQuantize %v CanDequantize %v CanQuantizeWeighted %v", tc.typ,
				quantize.CanQuantize(tc.typ), quantize.CanDequantize(tc.typ), quantize.CanQuantizeWeighted(tc.typ))
		}
	}
}

// A scale that overflows fp16 fails validation, as ggml_validate_row_data
// does, including IQ1_M's scale spread over its scale words.
func TestIQ2ValidateRow(t *testing.T) {
	for _, typ := range []dtype.Type{dtype.IQ2_XXS, dtype.IQ2_XS, dtype.IQ2_S, dtype.IQ1_S, dtype.IQ1_M} {
		blk := make([]byte, typ.TypeSize())
		if err := quantize.ValidateRow(blk, typ); err != nil {
			t.Errorf("%v zero block: %v", typ, err)
		}
		if typ == dtype.IQ1_M {
			// fp16 0x7c00 (inf): top nibbles 0, 0, c, 7 of the scale words.
			binary.LittleEndian.PutUint16(blk[52:], 0xc000)
			binary.LittleEndian.PutUint16(blk[54:], 0x7000)
		} else {
			binary.LittleEndian.PutUint16(blk, 0x7c00)
		}
		if err := quantize.ValidateRow(blk, typ); !errors.Is(err, quantize.ErrInvalidData) {
			t.Errorf("%v block with an infinite scale: error %v", typ, err)
		}
	}
}

// Hostile importance vectors (NaN, infinite, negative, huge, zero) and
// huge values never crash the IQ2/IQ1 searches: where ggml would abort,
// QuantizeRowWeighted returns an error wrapping ErrInvalidData; otherwise
// the row passes validation.
func TestIQ2HostileWeights(t *testing.T) {
	src := make([]float32, 512)
	for i := range src {
		src[i] = float32(math.Sin(float64(i)*0.7)) * float32(1+i%5)
	}
	big := make([]float32, len(src))
	for i, v := range src {
		big[i] = v * 1e9
	}
	fill := func(v float32) []float32 {
		w := make([]float32, len(src))
		for i := range w {
			w[i] = v
			if i%3 == 0 {
				w[i] = 1
			}
		}
		return w
	}
	weights := map[string][]float32{
		"nan": fill(float32(math.NaN())), "inf": fill(float32(math.Inf(1))), "negative": fill(-1),
		"huge": fill(1e38), "zero": make([]float32, len(src)), "one": fill(1),
	}
	failed := 0
	for _, typ := range []dtype.Type{dtype.IQ2_XXS, dtype.IQ2_XS, dtype.IQ2_S, dtype.IQ1_S, dtype.IQ1_M} {
		for name, w := range weights {
			for xname, x := range map[string][]float32{"plain": src, "big": big} {
				dst := make([]byte, 2*typ.TypeSize())
				err := quantize.QuantizeRowWeighted(dst, x, w, typ)
				if err != nil && !errors.Is(err, quantize.ErrInvalidData) {
					t.Errorf("%v %s weights, %s values: %v", typ, name, xname, err)
				}
				if err != nil {
					failed++
				}
				if name == "one" && xname == "plain" && err != nil {
					t.Errorf("%v: ordinary row: %v", typ, err)
				}
			}
		}
	}
	if failed == 0 {
		t.Error("no hostile case failed: NaN weights should make the searches fail")
	}
}
