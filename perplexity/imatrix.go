package perplexity

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/quantbridge/quantbridge/formats/imatrix"
	"github.com/quantbridge/quantbridge/graph"
)

// Importance matrix collection, as llama.cpp's llama-imatrix computes it
// (tools/imatrix/imatrix.cpp at 34af94cd, IMatrixCollector::collect_imatrix
// and compute_imatrix):
//
//   - Which products: every ggml_mul_mat whose weight is named blk.* (and
//     output.weight with ProcessOutput; a tied output multiplies
//     token_embd.weight and is never collected), and every ggml_mul_mat_id
//     (routed experts). Attention's own products (K·Q, V·softmax) multiply
//     cache tensors, not weights, and are not collected. Fused projections
//     (Phi-3's attn_qkv, the gate+up ffn_up) are one product in llama.cpp
//     and one entry here, though the forward pass runs them as row views.
//   - What: for each input column j, Σ x_j² over the float32 input rows of
//     the product (before the rounding to the weight's vec_dot type),
//     accumulated in float32; the count of rows. Routed experts keep one
//     row of sums and one count per expert, each token counted once for
//     every expert it was routed to.
//   - Chunking: the text is tokenized once (BOS first), cut into
//     n_chunk = tokens/Ctx chunks (at most Chunks), each chunk's first
//     token overwritten by BOS, every position of every chunk evaluated
//     (llama-imatrix requests all logits). The PPL it prints is
//     llama-perplexity's over the second half of each chunk.
//   - Output: chunk_size = Ctx, chunk_count = the largest count over
//     chunk_size, the text's path as the dataset.
//
// The sums differ from llama-imatrix's only by the forward pass's float
// rounding (GGUF models emulate llama.cpp's, see the package documentation)
// and by summation order (llama-imatrix adds ubatches of up to 512 tokens of
// 16 interleaved sequences). Not reproduced: llama-imatrix skips dense
// products over fewer than 16 tokens in one ubatch, which its batching
// produces only for contexts under 16 tokens with very few chunks.

// ImatrixOptions configure Imatrix.
type ImatrixOptions struct {
	Ctx           int  // context (chunk) length in tokens; 0 means 512 (llama-imatrix's default)
	Chunks        int  // maximum number of chunks; 0 or negative means all
	Threads       int  // worker goroutines; 0 means all CPUs
	ProcessOutput bool // also collect output.weight (llama-imatrix --process-output)
	NoPPL         bool // skip the perplexity (llama-imatrix --no-ppl)
	// Progress receives the running perplexity as llama-imatrix prints it
	// ("[1]54.0991,[2]35.7753,..." and a newline); nil for none.
	Progress    io.Writer
	Activations Activations
	Dataset     string // recorded in imatrix.datasets (llama-imatrix: the -f path)
	// Batch and UBatch are llama-imatrix's -b and -ub (see Options).
	Batch, UBatch int
}

// scoredIn reports whether rows i0..i1-1 of a ubatch of sequences of n
// positions from p0 hold a position in lo..hi.
func scoredIn(i0, i1, n, p0, lo, hi int) bool {
	for i := i0; i < i1; i++ {
		if pos := p0 + i%n; pos >= lo && pos <= hi {
			return true
		}
	}
	return false
}

// ImatrixResult is the outcome of Imatrix.
type ImatrixResult struct {
	Matrix         *imatrix.Matrix
	PPL, PPLStderr float64 // 0 with NoPPL
	Ctx, Chunks    int
	Seconds        float64 // forward-pass and collection time
}

type imStat struct {
	name          string
	nMat, nPerRow int
	sums          []float32
	counts        []int64
	seen          bool
}

type imSlot struct {
	st     *imStat
	expert int
}

type imCollector struct {
	slots   map[*weight]imSlot
	stats   []*imStat
	threads int
	last    *imStat // the stat job 0 of the current call went to
	lastX   []float32
	order   []int
	err     error
}

// newImCollector maps every weight of fm whose products llama-imatrix
// collects to its entry. orig is the model before fused projections were
// split into row views.
func newImCollector(fm *Model, orig *graph.Model, processOutput bool, threads int) *imCollector {
	c := &imCollector{slots: map[*weight]imSlot{}, threads: threads}
	byName := map[string]*imStat{}
	add := func(w *weight, name string, expert, nMat int) {
		if w == nil {
			return
		}
		st := byName[name]
		if st == nil {
			st = &imStat{name: name, nMat: nMat, nPerRow: w.cols, sums: make([]float32, nMat*w.cols), counts: make([]int64, nMat)}
			byName[name] = st
			c.stats = append(c.stats, st)
		}
		c.slots[w] = imSlot{st, expert}
	}
	for li := range fm.layers {
		l := &fm.layers[li]
		pre := fmt.Sprintf("blk.%d.", li)
		qkv := orig.Tensor(pre+"attn_qkv.weight") != nil && orig.Tensor(pre+"attn_q.weight") == nil
		for _, x := range []struct {
			w    *weight
			name string
		}{{l.wq, "attn_q"}, {l.wk, "attn_k"}, {l.wv, "attn_v"}} {
			if qkv {
				x.name = "attn_qkv"
			}
			add(x.w, pre+x.name+".weight", 0, 1)
		}
		add(l.wo, pre+"attn_output.weight", 0, 1)
		fusedUp := l.gate != nil && orig.Tensor(pre+"ffn_gate.weight") == nil
		if fusedUp {
			add(l.gate, pre+"ffn_up.weight", 0, 1)
		} else {
			add(l.gate, pre+"ffn_gate.weight", 0, 1)
		}
		add(l.up, pre+"ffn_up.weight", 0, 1)
		add(l.down, pre+"ffn_down.weight", 0, 1)
		if mo := l.moe; mo != nil {
			add(mo.router, pre+"ffn_gate_inp.weight", 0, 1)
			for _, x := range []struct {
				ws   []*weight
				name string
			}{{mo.gate, "ffn_gate_exps"}, {mo.up, "ffn_up_exps"}, {mo.down, "ffn_down_exps"}} {
				for e, w := range x.ws {
					add(w, pre+x.name+".weight", e, len(x.ws))
				}
			}
		}
	}
	if processOutput && fm.output != fm.tokEmbd {
		add(fm.output, "output.weight", 0, 1)
	}
	return c
}

// collect is the runner's hook: job i of one multiplication call. rows,
// for a routed-experts product, gives t*k+rank of each input row.
func (c *imCollector) collect(i int, w *weight, x []float32, nTok int, rows []int, k int) {
	s, ok := c.slots[w]
	if !ok || nTok == 0 {
		return
	}
	// Row views of one fused tensor on the same input are one product.
	if i > 0 && s.st == c.last && len(x) > 0 && len(c.lastX) > 0 && &x[0] == &c.lastX[0] {
		return
	}
	c.last, c.lastX = s.st, x
	st := s.st
	st.seen = true
	n := st.nPerRow
	acc := st.sums[s.expert*n : (s.expert+1)*n]
	// ggml_mul_mat_id's collection walks the ranks, then the tokens; a
	// dense product's, the tokens. The order matters only to float rounding.
	order := c.order[:0]
	if rows != nil && k > 1 {
		for rank := 0; rank < k; rank++ {
			for t, tj := range rows[:nTok] {
				if tj%k == rank {
					order = append(order, t)
				}
			}
		}
	}
	c.order = order
	const block = 64
	parallelFor(c.threads, (n+block-1)/block, func(_, b int) {
		j0, j1 := b*block, min((b+1)*block, n)
		a := acc[j0:j1]
		add := func(t int) {
			for j, v := range x[t*n+j0 : t*n+j1] {
				a[j] += v * v
			}
		}
		if len(order) > 0 {
			for _, t := range order {
				add(t)
			}
			return
		}
		for t := 0; t < nTok; t++ {
			add(t)
		}
	})
	st.counts[s.expert] += int64(nTok)
	if c.err == nil {
		for _, v := range acc {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				c.err = fmt.Errorf("imatrix: non-finite values in %s", st.name)
				break
			}
		}
	}
}

// Imatrix runs m over tokens (as common_tokenize(text, add_special=true)
// returns them) as llama-imatrix does and returns the importance matrix it
// would write. When addBOS is set, each chunk's first token is overwritten
// by bos.
func Imatrix(ctx context.Context, m *graph.Model, tokens []int, addBOS bool, bos int, opt ImatrixOptions) (*ImatrixResult, error) {
	fm, err := loadModel(m, useLlamaActivations(m, opt.Activations))
	if err != nil {
		return nil, err
	}
	nCtx, nChunk, err := chunkPlan(fm, len(tokens), opt.Ctx, opt.Chunks, addBOS, bos, "imatrix", "for a context of %d tokens")
	if err != nil {
		return nil, err
	}
	plan := wholeChunks(nCtx)
	if fm.activations {
		plan = newBatchPlan(nCtx, opt.Batch, opt.UBatch)
	}
	run := newRunner(fm, opt.Threads)
	col := newImCollector(fm, m, opt.ProcessOutput, run.threads)
	run.hook = func(i int, w *weight, x []float32, nTok int) {
		// llama-imatrix ignores a ggml_mul_mat over fewer than 16 rows of
		// a ubatch (its batching makes them: the last ubatch of a group
		// of 3 chunks of 512 has 6 rows).
		if fm.activations && run.hookRows == nil && run.ubRows < 16 {
			return
		}
		col.collect(i, w, x, nTok, run.hookRows, run.hookK)
	}

	first := nCtx / 2
	scoredAll := nCtx - 1 - first
	logitsNeeded := !opt.NoPPL || opt.ProcessOutput // the hook sees output.weight's input
	res := &ImatrixResult{Ctx: nCtx, Chunks: nChunk}
	var sums nllSums
	ub := make([]int, 0, plan.seqs*plan.ubatch)
	nlls := make([]float64, plan.seqs*scoredAll)
	V := fm.Vocab
	start := time.Now()
	err = plan.groups(ctx, tokens, nCtx, nChunk, addBOS, bos, func(c0, S int, group []int) error {
		run.beginGroup(S, nCtx)
		err := plan.pieces(S, nCtx, func(p0, n int) error {
			ub = ubatchTokens(ub, group, nCtx, p0, n)
			col.last, col.lastX = nil, nil
			// Every position is an output of llama-imatrix's batches,
			// so the last layer's FFN runs on all of them.
			rows, err := run.ubatch(ub, p0, n, 0)
			if err != nil {
				return err
			}
			if col.err != nil {
				return col.err
			}
			if !logitsNeeded {
				return nil
			}
			// The logits in blocks of rows (starting at multiples of 4,
			// the last ending at the ubatch's last row, as in its output
			// product); without ProcessOutput only the blocks holding
			// scored positions.
			block := max(4, logitBlock&^3)
			for i0 := 0; i0 < rows; i0 += block {
				i1 := min(i0+block, rows)
				if !opt.ProcessOutput && !scoredIn(i0, i1, n, p0, first, nCtx-2) {
					continue
				}
				logits := run.logitsRows(i0, i1)
				if opt.NoPPL {
					continue
				}
				parallelFor(run.threads, i1-i0, func(w, i int) {
					s, pos := (i0+i)/n, p0+(i0+i)%n
					if pos < first || pos > nCtx-2 {
						return
					}
					nlls[s*scoredAll+pos-first] = -logSoftmax(logits[i*V:(i+1)*V], group[s*nCtx+pos+1])
				})
			}
			return nil
		})
		if err != nil || opt.NoPPL {
			return err
		}
		for s := 0; s < S; s++ {
			sums.add(nlls[s*scoredAll : (s+1)*scoredAll])
			if opt.Progress != nil {
				fmt.Fprintf(opt.Progress, "[%d]%.4f,", c0+s+1, sums.running())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fm.source, err)
	}
	res.Seconds = time.Since(start).Seconds()
	if opt.Progress != nil && !opt.NoPPL {
		fmt.Fprintln(opt.Progress)
	}
	res.PPL, res.PPLStderr = sums.ppl()
	res.Matrix = col.matrix(nCtx, opt.Dataset)
	return res, nil
}

// matrix is what IMatrixCollector::save_imatrix writes.
func (c *imCollector) matrix(chunkSize int, dataset string) *imatrix.Matrix {
	m := &imatrix.Matrix{ChunkSize: chunkSize, HasMetadata: true, Datasets: []string{}}
	if dataset != "" {
		m.Datasets = []string{dataset}
	}
	var maxCount int64
	for _, st := range c.stats {
		if !st.seen {
			continue
		}
		e := &imatrix.Entry{Name: st.name, NPerRow: st.nPerRow, NMat: st.nMat, InSum2: st.sums, Counts: make([]float32, st.nMat)}
		for i, n := range st.counts {
			e.Counts[i] = float32(n)
			maxCount = max(maxCount, n)
		}
		m.Entries = append(m.Entries, e)
	}
	m.ChunkCount = int(maxCount / int64(chunkSize))
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Name < m.Entries[j].Name })
	return m
}
