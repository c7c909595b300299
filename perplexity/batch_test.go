package perplexity

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestBatchPlan checks the batching of chunks against llama-perplexity's
// arithmetic (perplexity.cpp: n_seq = max(1, n_batch/n_ctx), n_batch
// clamped to n_seq·n_ctx; llama_context: n_ubatch ≤ n_batch;
// split_equal: floor(n_ubatch/S) positions of each of S sequences).
func TestBatchPlan(t *testing.T) {
	type piece struct{ p0, n int }
	for _, c := range []struct {
		ctx, batch, ubatch, seqs int // seqs: sequences in the group
		wantSeqs                 int
		want                     []piece
	}{
		{128, 0, 0, 16, 16, []piece{{0, 32}, {32, 32}, {64, 32}, {96, 32}}},
		{128, 0, 0, 15, 16, []piece{{0, 34}, {34, 34}, {68, 34}, {102, 26}}},
		{512, 0, 0, 4, 4, []piece{{0, 128}, {128, 128}, {256, 128}, {384, 128}}},
		{512, 0, 0, 3, 4, []piece{{0, 170}, {170, 170}, {340, 170}, {510, 2}}},
		{512, 0, 0, 2, 4, []piece{{0, 256}, {256, 256}}},
		{512, 0, 0, 1, 4, []piece{{0, 512}}},
		{128, 128, 0, 1, 1, []piece{{0, 128}}},
		{512, 512, 0, 1, 1, []piece{{0, 512}}},
		{2048, 0, 0, 1, 1, []piece{{0, 512}, {512, 512}, {1024, 512}, {1536, 512}}},
		// ctx above the batch: one chunk in decodes of n_batch tokens,
		// each split into ubatches.
		{4096, 2048, 1024, 1, 1, []piece{{0, 1024}, {1024, 1024}, {2048, 1024}, {3072, 1024}}},
		{1600, 700, 512, 1, 1, []piece{{0, 512}, {512, 188}, {700, 512}, {1212, 188}, {1400, 200}}},
		// n_ubatch clamped to n_batch (clamped to n_seq·n_ctx).
		{300, 1000, 4096, 3, 3, []piece{{0, 300}}},
		{300, 1000, 4096, 2, 3, []piece{{0, 300}}},
		{64, 2048, 512, 32, 32, []piece{{0, 16}, {16, 16}, {32, 16}, {48, 16}}},
		{4, 2048, 512, 512, 512, []piece{{0, 1}, {1, 1}, {2, 1}, {3, 1}}},
	} {
		p := newBatchPlan(c.ctx, c.batch, c.ubatch)
		var got []piece
		p.pieces(c.seqs, c.ctx, func(p0, n int) error {
			got = append(got, piece{p0, n})
			return nil
		})
		if p.seqs != c.wantSeqs || !slices.Equal(got, c.want) {
			t.Errorf("ctx %d -b %d -ub %d, %d sequences: %d per group, micro-batches %v; want %d, %v", c.ctx, c.batch, c.ubatch, c.seqs, p.seqs, got, c.wantSeqs, c.want)
		}
	}
}

// batchedReference is testdata/llama-perplexity-batch.json: llama-perplexity's
// figures for kjv-llama's GGUFs at its default batching
// (scripts/llama-perplexity-batch-refs.py).
type batchedReference struct {
	Ctx map[string]map[string]struct {
		PPL     float64   `json:"ppl"`
		Stderr  float64   `json:"stderr"`
		Running []float64 `json:"running"`
	} `json:"ctx"`
}

func loadBatchedReference(tb testing.TB) *batchedReference {
	tb.Helper()
	b, err := os.ReadFile(testref.Local(tb, "llama-perplexity-batch.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var r batchedReference
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	return &r
}

// samePrinted reports whether got prints as want does with the given
// decimals (llama-perplexity's %.4f and %.5f).
func samePrinted(got, want float64, decimals int) bool {
	return fmt.Sprintf("%.*f", decimals, got) == fmt.Sprintf("%.*f", decimals, want)
}

// checkBatched evaluates m on kjv_eval.txt at ctx with llama-perplexity's
// default batching and requires every running value, the final PPL and
// its ± to print as llama-perplexity's do.
func checkBatched(t *testing.T, m *Model, typ string, ctx int, ref *batchedReference) {
	t.Helper()
	want, ok := ref.Ctx[fmt.Sprint(ctx)][typ]
	if !ok {
		t.Fatalf("llama-perplexity-batch.json has no %s at ctx %d", typ, ctx)
	}
	res, err := evaluate(context.Background(), m, nil, kjvTokens(t), true, 1, Options{Ctx: ctx, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Running) != len(want.Running) {
		t.Fatalf("%s ctx %d: %d chunks, llama-perplexity %d", typ, ctx, len(res.Running), len(want.Running))
	}
	for i, v := range res.Running {
		if !samePrinted(v, want.Running[i], 4) {
			t.Errorf("%s ctx %d: [%d]%.4f, llama-perplexity [%d]%.4f", typ, ctx, i+1, v, i+1, want.Running[i])
		}
	}
	if !samePrinted(res.PPL, want.PPL, 4) || !samePrinted(res.PPLStderr, want.Stderr, 5) {
		t.Errorf("%s ctx %d: PPL = %.4f +/- %.5f, llama-perplexity %.4f +/- %.5f", typ, ctx, res.PPL, res.PPLStderr, want.PPL, want.Stderr)
	}
	t.Logf("%s ctx %d: PPL = %.4f +/- %.5f, as llama-perplexity (%d running values)", typ, ctx, res.PPL, res.PPLStderr, len(res.Running))
}

// TestLlamaPerplexityBatched quantizes the bundled kjv-llama to Q4_K_M and
// Q8_0 (byte-identical to llama-quantize's files) and evaluates them at
// ctx 128 (groups of 16 chunks in ubatches of 32 rows per chunk: the
// one-row flash attention) and 512 (groups of 4 and 3 chunks: ubatches of
// 128 and of 170, 170, 170 and 2 rows per chunk, with GEMV rows) as
// llama-perplexity does by default: every printed figure must be
// llama-perplexity's.
func TestLlamaPerplexityBatched(t *testing.T) {
	ref := loadBatchedReference(t)
	dir := t.TempDir()
	for _, typ := range []string{"Q4_K_M", "Q8_0"} {
		ft, err := convert.ParseFileType(typ)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, typ+".gguf")
		if _, err := convert.Convert(context.Background(), testref.Local(t, "kjv-llama"), path, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
			t.Fatal(err)
		}
		fm, err := loadModel(loadGGUF(t, path), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, ctx := range []int{128, 512} {
			checkBatched(t, fm, typ, ctx, ref)
		}
	}
}

// TestUBatchKVCache evaluates kjv-llama Q8_0 at ctx 256, one chunk per
// batch, in one micro-batch per chunk and in micro-batches of 64, 128 and
// 192 (then 64) positions, whose attention reads the keys and values of the earlier
// micro-batches from the cache. With 64 rows and more the tiled flash
// attention runs, and every row's arithmetic is the same: the running
// values must be equal to the bit. In micro-batches of 16 (the one-row
// kernel, fp16 accumulators) the final PPL must stay within 1e-3.
func TestUBatchKVCache(t *testing.T) {
	ft, err := convert.ParseFileType("Q8_0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "q8.gguf")
	if _, err := convert.Convert(context.Background(), testref.Local(t, "kjv-llama"), path, convert.Options{Target: convert.GGUFTarget{FileType: ft}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	fm, err := loadModel(loadGGUF(t, path), true)
	if err != nil {
		t.Fatal(err)
	}
	toks := kjvTokens(t)
	run := func(ub int) *Result {
		res, err := evaluate(context.Background(), fm, nil, toks, true, 1, Options{Ctx: 256, Chunks: 6, Batch: 256, UBatch: ub, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	whole := run(256)
	for _, ub := range []int{64, 128, 192, 16} {
		got := run(ub)
		if ub < faTileQ {
			if math.Abs(got.PPL-whole.PPL) > 1e-3*whole.PPL {
				t.Errorf("-ub %d: PPL %.10g, in one micro-batch %.10g", ub, got.PPL, whole.PPL)
			}
		} else if !slices.Equal(got.Running, whole.Running) {
			t.Errorf("-ub %d: running values %.10g, in one micro-batch %.10g", ub, got.Running, whole.Running)
		}
		t.Logf("-ub %d: PPL %.10g, one micro-batch %.10g", ub, got.PPL, whole.PPL)
	}
}
