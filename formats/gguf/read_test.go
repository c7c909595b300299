package gguf

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// Header facts of the repository's GGUF files (from
// testdata/real/README.md and an independent struct-based parse).
func TestReadRealFiles(t *testing.T) {
	tests := []struct {
		file       string
		version    uint32
		kvs, ts    int
		dataOffset int64
		firstKV    string
	}{
		{"stories260K-q8_0-ggufv2.gguf", 2, 20, 48, 14240, "general.architecture"},
		{"ggml-vocab-llama-spm.gguf", 3, 22, 0, 723869, "general.architecture"},
		{"ggml-vocab-gpt-2.gguf", 3, 16, 0, 1766807, "general.architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := Open(testref.Local(t, "real", "gguf", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != tt.version || len(f.KV) != tt.kvs || len(f.Tensors) != tt.ts || f.DataOffset != tt.dataOffset || f.Alignment != 32 {
				t.Errorf("got v%d %d KVs %d tensors data@%d align %d; want v%d %d %d data@%d align 32",
					f.Version, len(f.KV), len(f.Tensors), f.DataOffset, f.Alignment, tt.version, tt.kvs, tt.ts, tt.dataOffset)
			}
			if f.KV[0].Key != tt.firstKV {
				t.Errorf("first key %q, want %q", f.KV[0].Key, tt.firstKV)
			}
		})
	}
}

func TestReadModelStories(t *testing.T) {
	m, err := ReadModel(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := graph.Params{Layers: 5, Embedding: 64, FFN: 172, Heads: 8, KVHeads: 4, HeadDim: 8,
		RopeBase: 10000, RopeType: "norm", RopeDims: 8, RMSEps: 1e-5, ContextLength: 512, VocabSize: 512}
	if !reflect.DeepEqual(m.Params, want) {
		t.Errorf("params\n got %+v\nwant %+v", m.Params, want)
	}
	if m.Arch != "llama" || m.Format != graph.FormatGGUF || len(m.Tensors) != 48 || len(m.Metadata) != 20 {
		t.Errorf("arch %q format %q %d tensors %d KVs", m.Arch, m.Format, len(m.Tensors), len(m.Metadata))
	}
	tok := m.Tokenizer
	if tok == nil || tok.Model != "llama" || len(tok.Tokens) != 512 || len(tok.Scores) != 512 || len(tok.Types) != 512 ||
		tok.BOS != 1 || tok.EOS != 2 || tok.PAD != 0 || tok.UNK != 0 || !tok.AddBOS || tok.AddEOS {
		t.Fatalf("tokenizer %+v", tok)
	}
	// ffn_down: ne = [172, 64], Q8_0 as one flat run of 11008/32 blocks.
	ffn := m.Tensor("blk.0.ffn_down.weight")
	if ffn == nil || ffn.Type != graph.Q8_0 || len(ffn.Shape) != 2 || ffn.Shape[0] != 64 || ffn.Shape[1] != 172 || ffn.Data.Size() != 11008/32*34 {
		t.Errorf("ffn_down %+v size %d", ffn, ffn.Data.Size())
	}
	// token_embd data: first block of the file's data section.
	raw, err := os.ReadFile(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	te := m.Tensors[0]
	got, err := graph.ReadAll(te.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw[14240:14240+len(got)]) || te.Name != "token_embd.weight" {
		t.Errorf("tensor 0 %q bytes differ from the file at the data offset", te.Name)
	}
}

func TestTokenizerVocabFiles(t *testing.T) {
	m, err := ReadModel(testref.Local(t, "real", "gguf", "ggml-vocab-gpt-2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer
	if tok.Model != "gpt2" || tok.Pre != "gpt-2" || len(tok.Tokens) != 50257 || len(tok.Merges) != 50000 ||
		tok.Merges[0] != "Ġ t" || tok.Scores != nil || tok.BOS != 50256 || tok.EOS != 50256 || tok.AddBOS || tok.UNK != -1 {
		t.Errorf("gpt-2 tokenizer: model %q pre %q %d tokens %d merges (%q) bos %d eos %d unk %d addbos %v",
			tok.Model, tok.Pre, len(tok.Tokens), len(tok.Merges), tok.Merges[0], tok.BOS, tok.EOS, tok.UNK, tok.AddBOS)
	}
	if m.Params.RopeType != "" || m.Arch != "gpt2" {
		t.Errorf("arch %q rope %q", m.Arch, m.Params.RopeType)
	}
}

// The header of a 50k-token vocabulary with 50k merges parses in
// milliseconds with a handful of allocations per array.
func BenchmarkReadVocabGPT2(b *testing.B) {
	raw, err := os.ReadFile(testref.Local(b, "real", "gguf", "ggml-vocab-gpt-2.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(raw), int64(len(raw))); err != nil {
			b.Fatal(err)
		}
	}
}

// Layout.WriteTensor writes tensors out of order at their planned offsets
// and produces the same bytes as Write.
func TestWriteTensorAt(t *testing.T) {
	raw, err := os.ReadFile(testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := PlanVersion(2, f.KV, f.Tensors, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make(byteWriterAt, l.Size)
	copy(out, l.Header)
	for i := len(f.Tensors) - 1; i >= 0; i-- {
		if err := l.WriteTensor(out, i, f.TensorReader(i)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, raw) {
		t.Error("WriteTensor output differs from the file")
	}
	if err := l.WriteTensor(out, 0, bytes.NewReader(make([]byte, 3))); err == nil {
		t.Error("WriteTensor accepted a source of the wrong size")
	}
}

type byteWriterAt []byte

func (b byteWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(b)) {
		return 0, io.ErrShortWrite
	}
	return copy(b[off:], p), nil
}
