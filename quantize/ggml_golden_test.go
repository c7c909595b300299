package quantize_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// goldenCase is a few rows of a real tensor and llama-quantize's encoding of
// them, extracted from the reference GGUF files by TestGenerateGolden
// (-tags refdata).
type goldenCase struct {
	Name       string
	Type       graph.Type
	N, Rows    int
	In         []float32
	Want       []byte
	InEncoding graph.Type // BF16 or F32, as stored in golden.bin
}

// golden.bin layout (little endian): "QBGOLD1\n", u32 case count, then per
// case: u16 name length, name, u32 output type, u32 input encoding (BF16 or
// F32), u32 row length, u32 rows, input rows, u32 output length, output bytes.
const goldenMagic = "QBGOLD1\n"

func encodeGolden(cases []goldenCase) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(goldenMagic)
	binary.Write(&b, le, uint32(len(cases)))
	for _, c := range cases {
		enc := graph.BF16
		for _, v := range c.In {
			if quantize.BF16ToFP32(quantize.FP32ToBF16(v)) != v {
				enc = graph.F32
				break
			}
		}
		binary.Write(&b, le, uint16(len(c.Name)))
		b.WriteString(c.Name)
		binary.Write(&b, le, [4]uint32{uint32(c.Type), uint32(enc), uint32(c.N), uint32(c.Rows)})
		raw := make([]byte, len(c.In)*int(enc.TypeSize()))
		if err := quantize.FromFloat32(raw, c.In, enc); err != nil {
			panic(err)
		}
		b.Write(raw)
		binary.Write(&b, le, uint32(len(c.Want)))
		b.Write(c.Want)
	}
	return b.Bytes()
}

func decodeGolden(data []byte) ([]goldenCase, error) {
	le := binary.LittleEndian
	r := bytes.NewReader(data)
	var magic [8]byte
	if _, err := r.Read(magic[:]); err != nil || string(magic[:]) != goldenMagic {
		return nil, errors.New("bad magic")
	}
	var n uint32
	if err := binary.Read(r, le, &n); err != nil {
		return nil, err
	}
	cases := make([]goldenCase, 0, min(n, 1000))
	for range n {
		var nl uint16
		if err := binary.Read(r, le, &nl); err != nil {
			return nil, err
		}
		name := make([]byte, nl)
		if _, err := r.Read(name); err != nil {
			return nil, err
		}
		var h [4]uint32
		if err := binary.Read(r, le, &h); err != nil {
			return nil, err
		}
		c := goldenCase{Name: string(name), Type: graph.Type(h[0]), InEncoding: graph.Type(h[1]), N: int(h[2]), Rows: int(h[3])}
		cnt := c.N * c.Rows
		if int64(cnt)*c.InEncoding.TypeSize() > int64(r.Len()) {
			return nil, fmt.Errorf("%s: input past end", c.Name)
		}
		raw := make([]byte, int64(cnt)*c.InEncoding.TypeSize())
		r.Read(raw)
		c.In = make([]float32, cnt)
		if err := quantize.ToFloat32(c.In, raw, c.InEncoding); err != nil {
			return nil, fmt.Errorf("%s: %v", c.Name, err)
		}
		var wl uint32
		if err := binary.Read(r, le, &wl); err != nil {
			return nil, err
		}
		if int(wl) > r.Len() {
			return nil, fmt.Errorf("%s: output past end", c.Name)
		}
		c.Want = make([]byte, wl)
		r.Read(c.Want)
		cases = append(cases, c)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return cases, nil
}

// Rows of real kjv-llama (and stories260K) tensors encode to exactly the bytes
// llama-quantize wrote, for every block type the reference files contain.
func TestGoldenLlamaQuantize(t *testing.T) {
	data, err := os.ReadFile(testref.Local(t, "quant", "golden.bin"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := decodeGolden(data)
	if err != nil {
		t.Fatalf("golden.bin: %v", err)
	}
	types := map[graph.Type]int{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			rb := len(c.Want) / c.Rows
			for r := range c.Rows {
				got := make([]byte, rb)
				if err := quantize.QuantizeRow(got, c.In[r*c.N:(r+1)*c.N], c.Type); err != nil {
					t.Fatal(err)
				}
				if want := c.Want[r*rb : (r+1)*rb]; !bytes.Equal(got, want) {
					t.Fatalf("%v row %d differs:\n got  %x\n want %x", c.Type, r, got, want)
				}
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
	for _, typ := range []graph.Type{graph.Q8_0, graph.Q4_0, graph.Q4_1, graph.Q5_0, graph.Q5_1, graph.Q2_K, graph.Q3_K, graph.Q4_K, graph.Q5_K, graph.Q6_K} {
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
