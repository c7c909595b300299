package perplexity

import (
	"fmt"
	"math"
)

// runner holds the buffers of one forward pass over a batch of tokens.
// A Model may be shared by several runners; a runner is not safe for
// concurrent use.
type runner struct {
	m       *Model
	threads int
	sc      scratch
	act     actCache

	x, h, q, k, v, att, o []float32
	g, u                  []float32
	logits                []float32
	cos, sin              []float32 // [positions][ropeDims/2]
	ropeLen               int
	ropeInv               []float64 // the frequencies cos/sin were built from
	ropeGGML              bool      // cos/sin are llama.cpp's float32 tables
	// The current layer's rope tables and attention window (setLayer).
	ropeCos, ropeSin []float32
	cosSWA, sinSWA   []float32
	ropeLenSWA       int
	window           int
	attnK            []float32 // attentionGGML's transposed key tiles

	// The sequences of a group (beginGroup) and the micro-batch being run
	// (ubatch): row t of it is position rowP0 + t%rowN of its sequence.
	seqs, seqLen int
	cached       int // positions of every sequence in kc/vc
	rowP0, rowN  int
	kc, vc       [][]float32 // per layer: [seqs][seqLen][KVHeads*HeadDim]

	// routed experts (forward_moe.go)
	moeLogits, moeW, moeOut []float32
	moeX, moeG, moeU, moeY  []float32
	moeSel                  []int

	// hook, when set, sees the float32 input rows of every matrix product
	// before any rounding (imatrix.go): job i of one call, nTok rows of
	// w.cols values each.
	hook func(i int, w *weight, x []float32, nTok int)
	// hookRows, during a routed-experts product, is t*hookK+rank of each
	// input row (forward_moe.go); nil otherwise.
	hookRows []int
	hookK    int
	// ubRows is the row count of the current ubatch's products (llama.cpp's
	// src1->ne[1]): its rows, or its output rows in the last layer's FFN.
	ubRows int
}

func newRunner(m *Model, threads int) *runner {
	r := &runner{m: m, threads: defaultThreads(threads)}
	r.act.threads = r.threads
	return r
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// forward runs tokens (positions 0..len-1, one sequence, causal attention)
// through the model and returns the logits of positions from..len-1, one
// row of Vocab floats each. The returned slice is reused by the next call.
func (r *runner) forward(tokens []int, from int) ([]float32, error) {
	n, err := r.hidden(tokens, from)
	if err != nil {
		return nil, err
	}
	return r.logitsRows(0, n), nil
}

// ffnBlock is how many positions the dense MLP takes at once (a multiple
// of 4; see hidden).
var ffnBlock = 1024

// logitBlock is how many positions' logits EvaluateTokens has at once
// (a multiple of 4): at ctx 2048 the second half's 1024 rows of a
// 32000-token vocabulary would be 131 MB; blocks of 256 keep it at 33 MB
// for three more passes over the output matrix (ctx 512 scores 256
// positions: one block).
var logitBlock = 256

// hidden runs tokens through the model as forward does and leaves the
// final normed hidden states of positions from..len-1 in r.h, whose count
// it returns; logitsRows then multiplies them by the output matrix. The
// tokens are one micro-batch (ubatch).
func (r *runner) hidden(tokens []int, from int) (int, error) {
	T := len(tokens)
	if T == 0 || from < 0 || from >= T {
		return 0, fmt.Errorf("forward: %d tokens, logits from %d", T, from)
	}
	r.beginGroup(1, T)
	return r.ubatch(tokens, 0, T, from)
}

// beginGroup starts the evaluation of seqs sequences of seqLen tokens
// each, run through ubatch in micro-batches: the key/value cache of every
// layer is cleared (llama_memory_clear).
func (r *runner) beginGroup(seqs, seqLen int) {
	r.seqs, r.seqLen = seqs, seqLen
	r.cached = 0
}

// ubatch runs one micro-batch as llama.cpp's decode runs a ubatch that
// split_equal made: positions p0..p0+n-1 of each of the group's
// sequences (beginGroup), tokens holding their ids sequence after sequence
// (the ubatch's row order). Every position attends to the earlier
// positions of its own sequence (the key/value cache of the previous
// micro-batches and this one). Positions before out0 have no output: as
// llama.cpp's graphs take only the output rows (inp_out_ids) after the
// last layer's attention, that layer's FFN and the final norm run on the
// output rows alone. ubatch leaves their final normed hidden states in r.h,
// sequence after sequence, and returns their count.
func (r *runner) ubatch(tokens []int, p0, n, out0 int) (int, error) {
	m := r.m
	S := r.seqs
	T := S * n
	if len(tokens) != T || p0 != r.cached || p0+n > r.seqLen {
		return 0, fmt.Errorf("forward: ubatch of %d tokens at position %d of %d sequences of %d (%d cached)", len(tokens), p0, S, r.seqLen, r.cached)
	}
	E, qDim, kvDim := m.Embd, m.Heads*m.HeadDim, m.KVHeads*m.HeadDim
	r.ubRows = T
	r.x = grow(r.x, T*E)
	r.h = grow(r.h, T*E)
	r.q = grow(r.q, T*qDim)
	r.k = grow(r.k, T*kvDim)
	r.v = grow(r.v, T*kvDim)
	r.att = grow(r.att, T*qDim)
	r.o = grow(r.o, T*E)
	fb := max(4, ffnBlock&^3)
	r.g = grow(r.g, min(T, fb)*m.FFN)
	r.u = grow(r.u, min(T, fb)*m.FFN)
	r.ropeTables(r.seqLen)
	r.rowP0, r.rowN = p0, n
	// Whole sequences in one micro-batch need no cache: their keys and
	// values are r.k and r.v.
	cache := S > 1 || n != r.seqLen
	if cache {
		if len(r.kc) != len(m.layers) {
			r.kc, r.vc = make([][]float32, len(m.layers)), make([][]float32, len(m.layers))
		}
		for li := range m.layers {
			r.kc[li] = grow(r.kc[li], S*r.seqLen*kvDim)
			r.vc[li] = grow(r.vc[li], S*r.seqLen*kvDim)
		}
	}

	for t, id := range tokens {
		if id < 0 || id >= m.Vocab {
			return 0, fmt.Errorf("token id %d at position %d is outside the vocabulary (%d)", id, p0+t%n, m.Vocab)
		}
		m.tokEmbd.dequantRow(r.x[t*E:(t+1)*E], id)
	}
	r.scaleEmbeddings(T)
	for li := range m.layers {
		l := &m.layers[li]
		r.setLayer(li, r.seqLen)
		r.rows(T, func(t0, t1 int) { rmsNorm(r.h[t0*E:], r.x[t0*E:], l.attnNorm, t1-t0, E, m.eps, m.activations) })
		r.act.reset()
		r.mulJobs(T, mulJob{dst: r.q, w: l.wq, x: r.h}, mulJob{dst: r.k, w: l.wk, x: r.h}, mulJob{dst: r.v, w: l.wv, x: r.h})
		addBias(r.q, l.bq, T)
		addBias(r.k, l.bk, T)
		addBias(r.v, l.bv, T)
		r.qkNorm(l, T)
		r.rows(T, func(t0, t1 int) {
			r.rope(r.q, t0, t1, m.Heads)
			r.rope(r.k, t0, t1, m.KVHeads)
		})
		r.scaleQ(T)
		if m.activations {
			// llama.cpp's KV cache holds K (after RoPE) and V as F16.
			roundActivationsPar(r.k[:T*kvDim], r.k[:T*kvDim], kvDim, actF16, r.threads)
			roundActivationsPar(r.v[:T*kvDim], r.v[:T*kvDim], kvDim, actF16, r.threads)
		}
		for s := 0; s < S; s++ {
			k, v := r.k[s*n*kvDim:(s+1)*n*kvDim], r.v[s*n*kvDim:(s+1)*n*kvDim]
			if cache {
				base := s * r.seqLen * kvDim
				copy(r.kc[li][base+p0*kvDim:], k)
				copy(r.vc[li][base+p0*kvDim:], v)
				k, v = r.kc[li][base:base+(p0+n)*kvDim], r.vc[li][base:base+(p0+n)*kvDim]
			}
			r.attention(r.q[s*n*qDim:(s+1)*n*qDim], r.att[s*n*qDim:(s+1)*n*qDim], k, v, p0, n)
		}
		r.act.reset()
		r.mul(r.o, l.wo, r.att, T)
		addBias(r.o, l.bo, T)
		r.postNorm(r.o, l.attnPostNorm, T)
		addTo(r.x[:T*E], r.o[:T*E])
		if li == len(m.layers)-1 && out0 > p0 {
			// The output rows (inp_out_ids): positions out0.. of each
			// sequence.
			o := max(0, p0+n-out0)
			for s := 0; s < S; s++ {
				copy(r.x[s*o*E:(s+1)*o*E], r.x[(s*n+n-o)*E:(s+1)*n*E])
			}
			T = S * o
			r.ubRows = T
			if T == 0 {
				break
			}
		}

		r.rows(T, func(t0, t1 int) { rmsNorm(r.h[t0*E:], r.x[t0*E:], l.ffnNorm, t1-t0, E, m.eps, m.activations) })
		if l.moe != nil {
			r.moeFFN(l.moe, T) // forward_moe.go
			addTo(r.x[:T*E], r.o[:T*E])
			continue
		}
		// The MLP a block of ffnBlock positions at a time: the gate and
		// up outputs of all positions at once would be the largest
		// buffers of a long context. Every position's products are
		// the same as in one batch (ffnBlock is a multiple of 4, so the
		// GEMM/GEMV split of the repacked K-quant orders falls on the
		// same tokens), and the imatrix hook sees the positions in order.
		for t0 := 0; t0 < T; t0 += fb {
			t1 := min(t0+fb, T)
			h := r.h[t0*E : t1*E]
			r.act.reset()
			r.mulJobs(t1-t0, mulJob{dst: r.g, w: l.gate, x: h}, mulJob{dst: r.u, w: l.up, x: h})
			r.gateAct(t1 - t0)
			r.act.reset()
			r.mul(r.o[t0*E:t1*E], l.down, r.g, t1-t0)
		}
		r.postNorm(r.o, l.ffnPostNorm, T)
		addTo(r.x[:T*E], r.o[:T*E])
	}
	r.cached = p0 + n
	if T > 0 {
		rmsNorm(r.h, r.x, m.outNorm, T, E, m.eps, m.activations)
	}
	return T, nil
}

// logitsRows returns the logits of rows [i0, i1) of the hidden states
// hidden left, one row of Vocab floats each, in a slice reused by the
// next call.
func (r *runner) logitsRows(i0, i1 int) []float32 {
	m := r.m
	n := i1 - i0
	r.logits = grow(r.logits, n*m.Vocab)
	r.act.reset()
	r.mul(r.logits, m.output, r.h[i0*m.Embd:i1*m.Embd], n)
	r.softcapLogits(n)
	return r.logits
}

// mul is matMul with the activations rounded as llama.cpp rounds them for
// w's type when the model emulates it.
func (r *runner) mul(dst []float32, w *weight, x []float32, nTok int) {
	r.mulJobs(nTok, mulJob{dst: dst, w: w, x: x})
}

// mulExperts is mul for one expert's slice of a stacked expert tensor:
// llama.cpp multiplies those with ggml_mul_mat_id, whose row-by-row dot
// products sum in another order than ggml_mul_mat's.
func (r *runner) mulExperts(nTok int, jobs ...mulJob) {
	r.mulJobsID(nTok, true, jobs...)
}

// rows runs fn on consecutive ranges of the n token rows [t0, t1) in
// parallel (element-wise and per-row steps: the same arithmetic as one
// call over all rows).
func (r *runner) rows(n int, fn func(t0, t1 int)) {
	const step = 16
	parallelFor(r.threads, (n+step-1)/step, func(_, i int) {
		fn(i*step, min((i+1)*step, n))
	})
}

// mulJobs is mul for several weights applied to the same activations, run
// as one parallel loop (see matMulJobs).
func (r *runner) mulJobs(nTok int, jobs ...mulJob) {
	r.mulJobsID(nTok, false, jobs...)
}

func (r *runner) mulJobsID(nTok int, id bool, jobs ...mulJob) {
	if r.hook != nil {
		for i, j := range jobs {
			r.hook(i, j.w, j.x[:nTok*j.w.cols], nTok)
		}
	}
	if r.m.activations {
		for i := range jobs {
			j := &jobs[i]
			j.order = llamaDotOrder(j.w, nTok, id)
			if r.act.setHalves(j, nTok) {
				continue // the 16-bit kernels take x rounded to the weight type
			}
			q0 := j.order == orderQ0 || j.order == orderQ0Repack
			if q0 && activationKind(j.w.typ) == actQ8_0 && useQ0VNNI {
				// The Q8_0 blocks straight from x: the integer kernels
				// need no rounded float32 copy.
				if q8, ok := r.act.q8Direct(j.x[:nTok*j.w.cols]); ok {
					j.q8, j.x = q8, nil
				}
			}
			if j.x != nil {
				j.x = r.act.rounded(j.w.typ, j.x[:nTok*j.w.cols], j.w.cols)
				if j.order == orderTinyBLASBF16 && useSIMD {
					j.x = append([]float32(nil), j.x[:nTok*j.w.cols]...)
					permuteDPBF16(j.x)
				}
				if q0 {
					j.q8, j.q8s = r.act.q8Blocks(j.x), r.act.q81s
				}
			}
			if j.order.q8K() {
				j.q8K = r.act.q8K
			}
			if !id {
				j.gemvFrom = nTok - nTok%4
			}
		}
	} else {
		for i := range jobs {
			jobs[i].floatAct = true
		}
	}
	matMulJobs(jobs, nTok, r.threads, &r.sc)
	if r.m.activations {
		for _, j := range jobs {
			if j.w.mins != nil && j.order != orderQ0 && j.order != orderQ0Repack {
				addMinCorrection(j.dst, j.w, r.act.q81, nTok, r.threads)
			}
		}
	}
}

// rmsNorm writes y[t] = x[t] / sqrt(mean(x[t]²) + eps) * w for n rows of
// width e. The sum of squares is accumulated in float64 as ggml does. With
// ggml set it is ggml's rms_norm to the bit: each square rounded to
// float32 before it is added, scale = 1/sqrtf(mean+eps) in float32;
// otherwise the squares are exact and the scale is rounded once.
func rmsNorm(y, x, w []float32, n, e int, eps float32, ggml bool) {
	w = w[:e]
	for t := 0; t < n; t++ {
		xr := x[t*e : (t+1)*e]
		yr := y[t*e : (t+1)*e]
		var ss float64
		var scale float32
		if ggml {
			for _, v := range xr {
				ss += float64(v * v)
			}
			mean := float32(ss / float64(e))
			scale = 1 / float32(math.Sqrt(float64(mean+eps)))
		} else {
			for _, v := range xr {
				ss += float64(v) * float64(v)
			}
			mean := float32(ss / float64(e))
			scale = float32(1 / math.Sqrt(float64(mean+eps)))
		}
		for i, v := range xr {
			yr[i] = v * scale * w[i]
		}
	}
}

func addBias(y, b []float32, n int) {
	if b == nil {
		return
	}
	e := len(b)
	for t := 0; t < n; t++ {
		addTo(y[t*e:(t+1)*e], b)
	}
}

// addTo adds s to dst element-wise.
func addTo(dst, s []float32) {
	s = s[:len(dst)]
	for i := range dst {
		dst[i] += s[i]
	}
}

// expNeg replaces every x of s (all <= sub) by float32(exp(float64(x −
// sub))): expNegAVX's float64 evaluation with the AVX2 kernels, math.Exp
// otherwise.
func expNeg(s []float32, sub float32) {
	if useSIMD && len(s) >= 4 {
		m := len(s) &^ 3
		expNegAVX(&s[0], &s[0], m, sub)
		s = s[m:]
	}
	for i, x := range s {
		s[i] = float32(math.Exp(float64(x - sub)))
	}
}

// swiglu writes silu(g)*u into g, rows of n values; in the llama.cpp
// emulation as ggml_vec_swiglu_f32 computes it (swigluGGML).
func (r *runner) swiglu(g, u []float32, n int) {
	if !r.m.activations {
		swiglu(g, u)
		return
	}
	for i := 0; i+n <= len(g); i += n {
		swigluGGML(g[i:i+n], u[i:i+n])
	}
}

// swiglu writes silu(g)*u into g.
func swiglu(g, u []float32) {
	u = u[:len(g)]
	if useSIMD && len(g) >= 8 {
		m := len(g) &^ 7
		swigluAVX(&g[0], &u[0], m)
		g, u = g[m:], u[m:]
	}
	for i, x := range g {
		g[i] = x / (1 + float32(math.Exp(float64(-x)))) * u[i]
	}
}

// ropeTables fills cos/sin for positions 0..T-1.
func (r *runner) ropeTables(T int) {
	half := r.m.ropeDims / 2
	inv, ms, g := r.m.ropeFor(T) // longrope picks its table by T
	if r.ropeLen >= T && len(r.ropeInv) > 0 && &r.ropeInv[0] == &inv[0] {
		return
	}
	r.cos = grow(r.cos, T*half)
	r.sin = grow(r.sin, T*half)
	r.ropeLen, r.ropeInv = T, inv
	r.ropeGGML = r.m.activations && g != nil
	if r.ropeGGML {
		g.table(r.cos, r.sin, T, half)
		return
	}
	for p := 0; p < T; p++ {
		for i := 0; i < half; i++ {
			th := float64(p) * inv[i]
			r.cos[p*half+i] = float32(math.Cos(th)) * ms
			r.sin[p*half+i] = float32(math.Sin(th)) * ms
		}
	}
}

// rope rotates the first ropeDims of every head of rows t0..t1-1 of x
// ([T][heads*HeadDim]) by the row's position in its sequence (see ubatch): NORM mode rotates adjacent pairs (2i, 2i+1), NEOX mode pairs
// (i, i+ropeDims/2).
func (r *runner) rope(x []float32, t0, t1, heads int) {
	m := r.m
	D, half := m.HeadDim, m.ropeDims/2
	cos, sin := r.ropeCos, r.ropeSin
	if cos == nil {
		cos, sin = r.cos, r.sin
	}
	fused := r.ropeGGML // llama.cpp's tables: its rotation too
	for t := t0; t < t1; t++ {
		p := r.rowP0 + t%r.rowN // the row's position
		cs := cos[p*half : (p+1)*half]
		sn := sin[p*half : (p+1)*half]
		for h := 0; h < heads; h++ {
			v := x[(t*heads+h)*D : (t*heads+h+1)*D]
			stride, pair := 2, 1 // NORM: (2i, 2i+1)
			if m.neox {
				stride, pair = 1, half // NEOX: (i, i+half)
			}
			for i := 0; i < half; i++ {
				p0 := i * stride
				x0, x1 := v[p0], v[p0+pair]
				if fused {
					v[p0], v[p0+pair] = ropeFMA(x0, x1, cs[i], sn[i])
				} else {
					v[p0] = x0*cs[i] - x1*sn[i]
					v[p0+pair] = x0*sn[i] + x1*cs[i]
				}
			}
		}
	}
}

// attention computes causal multi-head attention with grouped key/value
// heads for n query rows of one sequence at positions p0..p0+n-1 (q and
// att: [n][Heads·HeadDim]) over the keys and values of its positions
// 0..p0+n-1 (k and v: [p0+n][KVHeads·HeadDim]): att[i, head] =
// Σ_{j≤p0+i} softmax_j(q_i·k_j/√D) v_j. With llama.cpp's activations it
// is ggml's flash attention: the tiled kernel for at least faTileQ rows
// (attentionGGML), the one-row kernel otherwise (attentionOneChunk).
func (r *runner) attention(q, att, k, v []float32, p0, n int) {
	m := r.m
	D, H, KV := m.HeadDim, m.Heads, m.KVHeads
	qDim, kvDim := H*D, KV*D
	group := H / KV
	scale := float32(1 / math.Sqrt(float64(D)))
	if m.activations {
		scale = 1 / float32(math.Sqrt(float64(D))) // llama.cpp: 1.0f/sqrtf(n_embd_head)
	}
	if m.scoreScale != 0 {
		scale = m.scoreScale
	}
	if r.useGGMLAttention(n) {
		r.attentionGGML(q, att, k, v, p0, n, scale)
		return
	}
	if m.activations {
		r.attentionOneChunk(q, att, k, v, p0, n, scale)
		return
	}
	const qBlock = 16
	blocks := (n + qBlock - 1) / qBlock
	bufs := r.sc.attnBufs(r.threads, p0+n)
	parallelFor(r.threads, H*blocks, func(worker, item int) {
		h, b := item/blocks, item%blocks
		kvh := h / group
		s := bufs[worker]
		for i := b * qBlock; i < min((b+1)*qBlock, n); i++ {
			t := p0 + i // the row's position
			qv := q[i*qDim+h*D : i*qDim+(h+1)*D]
			mx := float32(math.Inf(-1))
			j0 := r.attnFrom(t) // keys j0..t (sliding window)
			nk := t + 1 - j0
			if useSIMD && D%8 == 0 {
				_ = k[t*kvDim+kvh*D+D-1]
				scoresAVX(&s[0], &qv[0], &k[j0*kvDim+kvh*D], kvDim, nk, D)
				for j, x := range s[:nk] {
					x *= scale
					s[j] = x
					mx = max(mx, x)
				}
			} else {
				for j := j0; j <= t; j++ {
					x := dot(qv, k[j*kvDim+kvh*D:]) * scale
					s[j-j0] = x
					mx = max(mx, x)
				}
			}
			expNeg(s[:nk], mx)
			var sum float64
			for _, e := range s[:nk] {
				sum += float64(e)
			}
			inv := float32(1 / sum)
			out := att[i*qDim+h*D : i*qDim+(h+1)*D]
			clear(out)
			if useSIMD && D%8 == 0 {
				_ = v[t*kvDim+kvh*D+D-1]
				pvAVX(&out[0], &s[0], inv, &v[j0*kvDim+kvh*D], kvDim, nk, D)
				continue
			}
			for j := j0; j <= t; j++ {
				axpy(out, s[j-j0]*inv, v[j*kvDim+kvh*D:j*kvDim+(kvh+1)*D])
			}
		}
	})
}

func (s *scratch) attnBufs(threads, n int) [][]float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.attn) < threads {
		s.attn = append(s.attn, nil)
	}
	for i := 0; i < threads; i++ {
		if cap(s.attn[i]) < n {
			s.attn[i] = make([]float32, n)
		}
		s.attn[i] = s.attn[i][:n]
	}
	return s.attn[:threads]
}
