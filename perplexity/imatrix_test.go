package perplexity

import (
	"bytes"
	"context"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/quantbridge/quantbridge/formats/imatrix"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// The references are llama-imatrix's (llama.cpp 34af94cd) over
// testdata/kjv_eval.txt at -c 128 (testdata/imatrix/README.md). With -b 128
// it evaluates one chunk per batch, as llama-perplexity does, and the
// evaluator's GGUF path reproduces its arithmetic: the files are identical
// byte for byte. With its default batch (16 chunks of 128 at once, in
// ubatches of 512 tokens) llama.cpp's own attention sums in another order;
// the dense sums move by ≤ 0.13% and a few routing decisions of the MoE
// models flip (so do expert counts) — llama-imatrix differs from itself
// between the two batch sizes exactly as much.

// imatrixRun runs Imatrix over testdata/kjv_eval.txt as the command does.
func imatrixRun(tb testing.TB, m *graph.Model, opt ImatrixOptions) *ImatrixResult {
	tb.Helper()
	tok, err := tokenizer.NewForModel(m)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(testref.Local(tb, "kjv_eval.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	ids, err := Tokenize(tok, tokenizer.NewTextReader(f, false, true), Options{Ctx: opt.Ctx, Chunks: opt.Chunks})
	if err != nil {
		tb.Fatal(err)
	}
	opt.Dataset = "testdata/kjv_eval.txt" // as llama-imatrix was given it
	if opt.Threads == 0 {
		opt.Threads = 2
	}
	res, err := Imatrix(context.Background(), m, ids, tok.AddBOS(), tok.BOS(), opt)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func readImatrix(tb testing.TB, name string) (*imatrix.Matrix, []byte) {
	tb.Helper()
	p := testref.Local(tb, "imatrix", name)
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := imatrix.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return m, b
}

func encodeImatrix(tb testing.TB, m *imatrix.Matrix) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := m.WriteGGUF(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// compareImatrix checks got against want: the same chunking, entries and
// counts, and in_sum2 within worst and median relative differences. It
// returns the two figures.
func compareImatrix(tb testing.TB, got, want *imatrix.Matrix, worst, median float64) (float64, float64) {
	tb.Helper()
	if got.ChunkCount != want.ChunkCount || got.ChunkSize != want.ChunkSize || len(got.Entries) != len(want.Entries) {
		tb.Fatalf("chunks %d×%d, %d entries; want %d×%d, %d", got.ChunkCount, got.ChunkSize, len(got.Entries), want.ChunkCount, want.ChunkSize, len(want.Entries))
	}
	var rel []float64
	w, wname := 0.0, ""
	for i, e := range got.Entries {
		f := want.Entries[i]
		if e.Name != f.Name || e.NMat != f.NMat || e.NPerRow != f.NPerRow {
			tb.Fatalf("entry %d: %s %d×%d, want %s %d×%d", i, e.Name, e.NMat, e.NPerRow, f.Name, f.NMat, f.NPerRow)
		}
		for j := range e.Counts {
			if e.Counts[j] != f.Counts[j] {
				tb.Errorf("%s: count[%d] = %v, want %v", e.Name, j, e.Counts[j], f.Counts[j])
			}
		}
		for j := range e.InSum2 {
			d := math.Abs(float64(e.InSum2[j])-float64(f.InSum2[j])) / math.Abs(float64(f.InSum2[j]))
			if f.InSum2[j] == 0 {
				d = math.Abs(float64(e.InSum2[j]))
			}
			rel = append(rel, d)
			if d > w {
				w, wname = d, e.Name
			}
		}
	}
	sort.Float64s(rel)
	med := rel[len(rel)/2]
	if w > worst || med > median {
		tb.Errorf("in_sum2: worst relative difference %.3g (%s), median %.3g; want ≤ %g and ≤ %g", w, wname, med, worst, median)
	}
	return w, med
}

// qwen3moe-tiny (8 experts, top 2) from its BF16 GGUF: llama-imatrix -b 128
// byte for byte — entries, per-expert counts, every sum, the metadata — and
// its running perplexity; and llama-imatrix at its default batch.
func TestImatrixMoEIdentical(t *testing.T) {
	m := loadGGUF(t, testref.Local(t, "arch", "qwen3moe-tiny.bf16.gguf"))
	res := imatrixRun(t, m, ImatrixOptions{Ctx: 128, Batch: 128})
	_, want := readImatrix(t, "qwen3moe-tiny.c128.b128.imatrix.gguf")
	if got := encodeImatrix(t, res.Matrix); !bytes.Equal(got, want) {
		ref, _ := readImatrix(t, "qwen3moe-tiny.c128.b128.imatrix.gguf")
		compareImatrix(t, res.Matrix, ref, 0, 0)
		t.Fatalf("not byte-identical to llama-imatrix -b 128")
	}
	// llama-imatrix printed "Final estimate: PPL = 15.5642 +/- 1.16746"
	if math.Abs(res.PPL-15.5642) > 5e-5 || math.Abs(res.PPLStderr-1.16746) > 5e-6 || res.Chunks != 50 {
		t.Errorf("PPL %.4f ± %.5f over %d chunks, llama-imatrix: 15.5642 ± 1.16746 over 50", res.PPL, res.PPLStderr, res.Chunks)
	}
	// At llama-imatrix's default batch (16 chunks at once, ubatches of 32
	// positions of each): its default-batch file byte for byte.
	res = imatrixRun(t, m, ImatrixOptions{Ctx: 128})
	_, want = readImatrix(t, "qwen3moe-tiny.c128.imatrix.gguf")
	if got := encodeImatrix(t, res.Matrix); !bytes.Equal(got, want) {
		ref, _ := readImatrix(t, "qwen3moe-tiny.c128.imatrix.gguf")
		compareImatrix(t, res.Matrix, ref, 0, 0)
		t.Fatalf("not byte-identical to llama-imatrix at its default batch")
	}
}

// Phi-3's fused attn_qkv and gate+up ffn_up are one product each in
// llama.cpp, one entry each here; 10 chunks, against llama-imatrix -b 128
// --chunks 10 (Phi-3's own steps are not bit-emulated: float tolerance).
func TestImatrixFusedPhi3(t *testing.T) {
	m := loadGGUF(t, testref.Local(t, "arch", "phi3-tiny.bf16.gguf"))
	res := imatrixRun(t, m, ImatrixOptions{Ctx: 128, Batch: 128, Chunks: 10, NoPPL: true})
	want, _ := readImatrix(t, "phi3-tiny.c128.b128.chunks10.imatrix.gguf")
	if res.PPL != 0 {
		t.Errorf("NoPPL: PPL %v", res.PPL)
	}
	if e := res.Matrix.Lookup("blk.0.attn_qkv.weight"); e == nil || res.Matrix.Lookup("blk.0.ffn_gate.weight") != nil || res.Matrix.Lookup("blk.0.attn_q.weight") != nil {
		t.Fatalf("fused entries: %v", e)
	}
	compareImatrix(t, res.Matrix, want, 0.01, 0.001)
}

// The bundled HF checkpoint (float32 activations, as transformers) against
// llama-imatrix on its BF16 GGUF, at both batch sizes: the same entries and
// counts, in_sum2 within the tolerance (≤ 1% worst, ≤ 0.1% median).
func TestImatrixHFWithinTolerance(t *testing.T) {
	res := imatrixRun(t, loadKJV(t), ImatrixOptions{Ctx: 128, ProcessOutput: true})
	if res.Matrix.Lookup("output.weight") == nil {
		t.Fatal("--process-output: no output.weight entry")
	}
	// llama-imatrix was run without --process-output
	var blk []*imatrix.Entry
	for _, e := range res.Matrix.Entries {
		if e.Name != "output.weight" {
			blk = append(blk, e)
		}
	}
	if e := res.Matrix.Lookup("output.weight"); e.Counts[0] != 47*128 || e.NPerRow != 256 {
		t.Errorf("output.weight: %d per row, count %v", e.NPerRow, e.Counts[0])
	}
	got := *res.Matrix
	got.Entries = blk
	for _, f := range []string{"kjv-llama.c128.b128.imatrix.gguf", "kjv-llama.c128.imatrix.gguf"} {
		want, _ := readImatrix(t, f)
		w, med := compareImatrix(t, &got, want, 0.01, 0.001)
		t.Logf("%s: worst %.3g median %.3g", f, w, med)
	}
}

func TestImatrixErrors(t *testing.T) {
	m := loadKJV(t)
	if _, err := Imatrix(context.Background(), m, make([]int, 100), true, 1, ImatrixOptions{Ctx: 64}); err == nil {
		t.Error("100 tokens at ctx 64: no error")
	}
	if _, err := Imatrix(context.Background(), m, make([]int, 100), true, 1, ImatrixOptions{Ctx: 2}); err == nil {
		t.Error("ctx 2: no error")
	}
}
