package perplexity

import (
	"context"
	"fmt"
	"math"
)

// How llama-perplexity, llama-imatrix and their KL-divergence mode batch
// the chunks of a text, which the llama.cpp emulation reproduces because
// the batching decides part of the arithmetic.
//
// With a batch of n_batch tokens (-b, default 2048) and chunks of n_ctx
// tokens, max(1, n_batch/n_ctx) chunks (n_seq) are evaluated together as
// that many sequences (n_parallel), each with its own key/value cache
// stream (kv_unified is off), in llama_decode calls of up to n_batch
// tokens per sequence; the last group holds the chunks that remain. Each
// decode is split into micro-batches (ubatches) of at most n_ubatch
// tokens (-ub, default 512) by split_equal: the same positions of every
// sequence of the group, floor(n_ubatch/S) of them for S sequences, rows
// ordered sequence after sequence. So at ctx 128 a ubatch holds 32
// positions of 16 chunks, and at ctx 512 the last group of 3 chunks is
// run 170 positions at a time. What depends on it: flash attention takes
// its tiled kernel for at least 64 query rows of a sequence and its
// one-row kernel (attention_onechunk.go) below that, the repacked
// K-quant products multiply the last rows of a ubatch past a multiple of
// four by their GEMV kernels, and the last layer's FFN runs on the output
// rows of the ubatch only.

// batchPlan is the batching of chunks of one context length.
type batchPlan struct {
	seqs   int // n_seq: chunks evaluated together
	batch  int // n_batch: tokens of one llama_decode call
	ubatch int // n_ubatch: tokens of one micro-batch
}

// DefaultBatch and DefaultUBatch are llama.cpp's default n_batch and
// n_ubatch.
const (
	DefaultBatch  = 2048
	DefaultUBatch = 512
)

// newBatchPlan is the batching of chunks of ctx tokens with a batch of
// batch tokens and micro-batches of ubatch tokens (0: llama.cpp's
// defaults), clamped as llama-perplexity and llama_context clamp them.
func newBatchPlan(ctx, batch, ubatch int) batchPlan {
	if batch <= 0 {
		batch = DefaultBatch
	}
	if ubatch <= 0 {
		ubatch = DefaultUBatch
	}
	seqs := max(1, batch/ctx)
	batch = min(batch, seqs*ctx)
	return batchPlan{seqs: seqs, batch: batch, ubatch: min(ubatch, batch)}
}

// wholeChunks is the plan that evaluates one chunk of ctx tokens in one
// micro-batch (the float32 forward pass, whose results do not depend on
// the batching).
func wholeChunks(ctx int) batchPlan {
	return batchPlan{seqs: 1, batch: ctx, ubatch: ctx}
}

// pieces calls fn with the positions p0..p0+n-1 of every micro-batch of a
// group of seqs sequences of ctx tokens, in order.
func (b batchPlan) pieces(seqs, ctx int, fn func(p0, n int) error) error {
	L := max(1, b.ubatch/seqs)
	for j0 := 0; j0 < ctx; j0 += b.batch { // llama_decode calls
		j1 := min(ctx, j0+b.batch)
		for p := j0; p < j1; p += L {
			if err := fn(p, min(L, j1-p)); err != nil {
				return err
			}
		}
	}
	return nil
}

// groups runs fn over the chunks of tokens (nChunk chunks of nCtx tokens)
// a group at a time, as llama-perplexity and llama-imatrix batch them: c0
// is the group's first chunk, S its chunk count and group their tokens
// (S·nCtx, bos over each chunk's first token when addBOS). It stops at
// the first error, or when ctx is done.
func (b batchPlan) groups(ctx context.Context, tokens []int, nCtx, nChunk int, addBOS bool, bos int, fn func(c0, S int, group []int) error) error {
	group := make([]int, b.seqs*nCtx)
	for c0 := 0; c0 < nChunk; c0 += b.seqs {
		if err := ctx.Err(); err != nil {
			return err
		}
		S := min(b.seqs, nChunk-c0)
		g := group[:S*nCtx]
		copy(g, tokens[c0*nCtx:(c0+S)*nCtx])
		for s := 0; s < S && addBOS; s++ {
			g[s*nCtx] = bos
		}
		if err := fn(c0, S, g); err != nil {
			return fmt.Errorf("chunks %d-%d: %w", c0+1, c0+S, err)
		}
	}
	return nil
}

// ubatchTokens returns in dst (reused) the tokens of a micro-batch:
// positions p0..p0+n-1 of each of a group's sequences of nCtx tokens, one
// sequence after another.
func ubatchTokens(dst, group []int, nCtx, p0, n int) []int {
	dst = dst[:0]
	for s := 0; s+nCtx <= len(group); s += nCtx {
		dst = append(dst, group[s+p0:s+p0+n]...)
	}
	return dst
}

// nllSums accumulates negative log-likelihoods in text order, as
// llama-perplexity sums them (in float64).
type nllSums struct {
	sum, sum2 float64
	n         int
}

func (a *nllSums) add(nlls []float64) {
	for _, v := range nlls {
		a.sum += v
		a.sum2 += v * v
		a.n++
	}
}

// running is the perplexity so far (llama-perplexity's [i] value).
func (a *nllSums) running() float64 { return math.Exp(a.sum / float64(a.n)) }

// ppl is the final perplexity and its standard error, as llama-perplexity
// prints them (0, 0 with nothing scored).
func (a *nllSums) ppl() (ppl, stderr float64) {
	if a.n == 0 {
		return 0, 0
	}
	mean := a.sum / float64(a.n)
	ppl = math.Exp(mean)
	if v := a.sum2/float64(a.n) - mean*mean; v > 0 && a.n > 1 {
		stderr = math.Sqrt(v/float64(a.n-1)) * ppl
	}
	return ppl, stderr
}
