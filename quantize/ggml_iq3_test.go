package quantize_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// iq3GoldenCase is one row of testdata/quant/iq3-golden.bin, written by
// scripts/gen-iq3-golden.sh from ggml itself: the input, the importance
// vector (nil: none), ggml_quantize_chunk's bytes and the type's to_float
// of them.
type iq3GoldenCase struct {
	name    string
	typ     dtype.Type
	in, w   []float32
	want    []byte
	decoded []float32
}

func readIQ3Golden(t *testing.T) []iq3GoldenCase {
	t.Helper()
	data, err := os.ReadFile(testref.Local(t, "quant", "iq3-golden.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const magic = "QBIQ3G1\n"
	if !bytes.HasPrefix(data, []byte(magic)) {
		t.Fatalf("iq3-golden.bin: bad magic")
	}
	r := &goldenReader{b: data[len(magic):]}
	bf16s := func(n int) []float32 {
		b := r.next(2 * n)
		v := make([]float32, n)
		for i := range v {
			if b != nil {
				v[i] = quantize.BF16ToFP32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
		return v
	}
	var cases []iq3GoldenCase
	for range r.u32() {
		var c iq3GoldenCase
		c.name = string(r.next(r.u16()))
		c.typ = dtype.Type(r.u32())
		n := r.u32()
		hasW := r.u32()
		c.in = bf16s(n)
		if hasW != 0 {
			c.w = bf16s(n)
		}
		c.want = r.next(r.u32())
		c.decoded = r.f32s(n)
		if r.err != nil {
			t.Fatalf("iq3-golden.bin: %v", r.err)
		}
		cases = append(cases, c)
	}
	if err := r.end(); err != nil {
		t.Fatalf("iq3-golden.bin: %v", err)
	}
	return cases
}

// QuantizeRowWeighted and DequantizeRow give ggml's bytes and values for
// IQ3_XXS, IQ3_S, TQ1_0 and TQ2_0, with and without importance weights.
func TestIQ3TQGolden(t *testing.T) {
	cases := readIQ3Golden(t)
	seen := map[dtype.Type]int{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := make([]byte, len(c.want))
			if err := quantize.QuantizeRowWeighted(got, c.in, c.w, c.typ); err != nil {
				t.Fatal(err)
			}
			checkRowBytes(t, c.typ, 0, got, c.want)
			if c.w == nil { // QuantizeRow is the unweighted form
				got2 := make([]byte, len(c.want))
				if err := quantize.QuantizeRow(got2, c.in, c.typ); err != nil || !bytes.Equal(got2, c.want) {
					t.Errorf("QuantizeRow differs from ggml (err %v)", err)
				}
			}
			checkDequantized(t, c.typ, c.want, c.decoded)
			seen[c.typ]++
		})
	}
	for _, typ := range []dtype.Type{dtype.IQ3_XXS, dtype.IQ3_S, dtype.TQ1_0, dtype.TQ2_0} {
		if seen[typ] < 5 {
			t.Errorf("%v: %d golden cases", typ, seen[typ])
		}
	}
}

// The zero-subblocks case exercises ggml's IQ3_S quirk: codes and signs of
// the sub-blocks after an all-zero one are written early, leaving the last
// slots zero. The golden bytes show it; check it holds so the case keeps
// testing it.
func TestIQ3SSkippedSubBlockShift(t *testing.T) {
	for _, c := range readIQ3Golden(t) {
		if c.name != "iq3_s/zero-subblocks-w" {
			continue
		}
		blk := c.want[110:220] // block 1 has two all-zero sub-blocks
		if !bytes.Equal(blk[2+48:2+64], make([]byte, 16)) || bytes.Equal(blk[2+8:2+16], make([]byte, 8)) {
			t.Errorf("block 1 qs %x: want the last 16 codes zero and sub-block 1's slot used", blk[2:66])
		}
		return
	}
	t.Fatal("case iq3_s/zero-subblocks-w not found")
}

// Rows of the wrong length or with non-finite values are refused.
func TestIQ3TQErrors(t *testing.T) {
	for _, typ := range []dtype.Type{dtype.IQ3_XXS, dtype.IQ3_S, dtype.TQ1_0, dtype.TQ2_0} {
		src := make([]float32, 256)
		dst := make([]byte, typ.TypeSize())
		if err := quantize.QuantizeRowWeighted(dst[:len(dst)-1], src, nil, typ); err == nil {
			t.Errorf("%v: short dst accepted", typ)
		}
		if err := quantize.QuantizeRowWeighted(make([]byte, 2*len(dst)), make([]float32, 300), nil, typ); err == nil {
			t.Errorf("%v: row of 300 accepted", typ)
		}
		if err := quantize.QuantizeRowWeighted(dst, src, make([]float32, 255), typ); err == nil {
			t.Errorf("%v: 255 weights accepted", typ)
		}
		src[7] = float32(math.NaN())
		if err := quantize.QuantizeRowWeighted(dst, src, nil, typ); err == nil {
			t.Errorf("%v: NaN accepted", typ)
		}
		if !quantize.CanQuantize(typ) || !quantize.CanDequantize(typ) || !quantize.CanQuantizeWeighted(typ) || quantize.RequiresImatrix(typ) {
			t.Errorf("%v: capabilities wrong", typ)
		}
	}
}
