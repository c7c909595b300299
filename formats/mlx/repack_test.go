package mlx

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// TestRepackRealQ8_0 repacks every Q8_0 tensor of a GGUF written by
// llama.cpp's quantize (testdata/real/gguf/stories260K-q8_0-ggufv2.gguf)
// into MLX affine 8-bit group-32 rows, checks that q*scale+bias equals
// ggml's d*q exactly for every element, and that the reverse repack gives
// back the original bytes.
func TestRepackRealQ8_0(t *testing.T) {
	m, err := gguf.ReadModel(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tensors, elems, skipped int
	for _, ts := range m.Tensors {
		if ts.Type != graph.Q8_0 {
			continue
		}
		cols := int(ts.RowLen())
		if cols%32 != 0 {
			// This 2023 file quantized ffn_down (rows of 172) with blocks
			// that straddle rows; MLX groups never do, so no repack.
			_, err := quantize.RepackGGUFToAffine(make([]uint32, cols/4), nil, nil, nil, graph.Q8_0, cols)
			if err == nil {
				t.Fatalf("%s: repack of %d-column rows accepted", ts.Name, cols)
			}
			skipped++
			continue
		}
		tensors++
		rs := cols / 32 * 34
		data, err := graph.ReadAll(ts.Data)
		if err != nil {
			t.Fatal(err)
		}
		packed := make([]uint32, quantize.AffinePackedWords(cols, 8))
		scales, biases := make([]byte, cols/32*2), make([]byte, cols/32*2)
		back := make([]byte, rs)
		for r := 0; r < int(ts.Rows()); r++ {
			row := data[r*rs : (r+1)*rs]
			p, err := quantize.RepackGGUFToAffine(packed, scales, biases, row, graph.Q8_0, cols)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < cols; j++ {
				blk := row[j/32*34:]
				d := float64(quantize.FP16ToFP32(binary.LittleEndian.Uint16(blk)))
				want := d * float64(int8(blk[2+j%32]))
				s := float64(quantize.FP16ToFP32(binary.LittleEndian.Uint16(scales[j/32*2:])))
				b := float64(quantize.FP16ToFP32(binary.LittleEndian.Uint16(biases[j/32*2:])))
				q := float64(packed[j/4] >> (8 * (j % 4)) & 0xff)
				if q*s+b != want {
					t.Fatalf("%s row %d col %d: %g*%g%+g != %g", ts.Name, r, j, q, s, b, want)
				}
				elems++
			}
			ok, err := quantize.RepackAffineToGGUF(back, graph.Q8_0, packed, scales, biases, p, graph.F16, cols)
			if err != nil || !ok {
				t.Fatalf("%s row %d: reverse repack %v %v", ts.Name, r, ok, err)
			}
			if !bytes.Equal(back, row) {
				t.Fatalf("%s row %d: reverse repack differs", ts.Name, r)
			}
		}
	}
	if tensors == 0 {
		t.Fatal("no Q8_0 tensors")
	}
	if skipped != 5 {
		t.Errorf("%d tensors with rows not a multiple of 32, want the 5 ffn_down", skipped)
	}
	t.Logf("%d Q8_0 tensors, %d elements repacked exactly; %d skipped", tensors, elems, skipped)
}

// TestConfigJSONFromGGUF: a model without a source config (read from GGUF)
// gets hf.WriteConfig's config plus the quantization keys, which reads back
// to the same hyperparameters; its tokenizer becomes tokenizer files.
func TestConfigJSONFromGGUF(t *testing.T) {
	m, err := gguf.ReadModel(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	q := &Quantization{GroupSize: 32, Bits: 8, Mode: ModeAffine}
	b, err := ConfigJSON(m, q)
	if err != nil {
		t.Fatal(err)
	}
	arch, p, raw, err := hf.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if arch != "llama" || p.Layers != 5 || p.Embedding != 64 || p.FFN != 172 || p.Heads != 8 || p.KVHeads != 4 ||
		p.VocabSize != 512 || p.RMSEps != m.Params.RMSEps || p.RopeBase != 10000 || p.Tied != m.Params.Tied {
		t.Errorf("config reads back as %s %+v; model %+v", arch, p, m.Params)
	}
	if _, ok := raw["tie_word_embeddings"]; !ok {
		t.Error("tie_word_embeddings not written")
	}
	if q2, err := ParseQuantization(raw); err != nil || !reflect.DeepEqual(q2, q) {
		t.Errorf("quantization reads back as %+v, %v", q2, err)
	}
	files, err := auxFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(files["tokenizer.model"]) == 0 || len(files["tokenizer_config.json"]) == 0 {
		t.Errorf("tokenizer files %v", len(files))
	}
}
