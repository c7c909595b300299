package perplexity

import (
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// moeLayer is a routed-experts FFN (Qwen3-MoE, Mixtral): a router
// [experts, embd] and, per expert, a SwiGLU FFN of width ExpertFFN sliced
// from the stacked 3-D ffn_{gate,up,down}_exps tensors.
type moeLayer struct {
	router         *weight
	gate, up, down []*weight
	used           int  // experts chosen per token
	norm           bool // renormalise the chosen weights to sum 1
	// llama: the chosen weights' sum is clamped below at the smallest
	// normal F16 (llama.cpp build_moe_ffn) — the GGUF path.
	clamp bool
}

// weights returns every weight of the layer (for expandAtLoad).
func (mo *moeLayer) weights() []*weight {
	out := []*weight{mo.router}
	out = append(out, mo.gate...)
	out = append(out, mo.up...)
	return append(out, mo.down...)
}

// loadMoE reads the router and expert tensors of the layer with prefix
// pre ("blk.N.").
func (fm *Model) loadMoE(m *graph.Model, pre string, p graph.Params) (*moeLayer, error) {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{m.Path}, a...)...)
	}
	rt := m.Tensor(pre + "ffn_gate_inp.weight")
	if rt == nil {
		return nil, errf("missing tensor %sffn_gate_inp.weight", pre)
	}
	if len(rt.Shape) != 2 || rt.Shape[1] != int64(fm.Embd) || rt.Shape[0] < 1 || rt.Shape[0] > 1<<16 {
		return nil, errf("%s: shape %v, want [experts %d]", rt.Name, rt.Shape, fm.Embd)
	}
	n := int(rt.Shape[0])
	if p.Experts != 0 && p.Experts != n {
		return nil, errf("%s: %d experts, metadata says %d", rt.Name, n, p.Experts)
	}
	used := p.ExpertsUsed
	if used <= 0 || used > n {
		return nil, errf("%d experts used per token is not in [1, %d]", used, n)
	}
	router, err := newWeight(rt)
	if err != nil {
		return nil, errf("%v", err)
	}
	mo := &moeLayer{router: router, used: used, norm: p.NormTopK, clamp: m.Format == graph.FormatGGUF}
	ffn := p.ExpertFFN
	for _, x := range []struct {
		dst        *[]*weight
		name       string
		rows, cols int
	}{
		{&mo.gate, "ffn_gate_exps.weight", ffn, fm.Embd},
		{&mo.up, "ffn_up_exps.weight", ffn, fm.Embd},
		{&mo.down, "ffn_down_exps.weight", fm.Embd, ffn},
	} {
		t := m.Tensor(pre + x.name)
		if t == nil {
			return nil, errf("missing tensor %s%s", pre, x.name)
		}
		if ffn <= 0 && len(t.Shape) == 3 { // width from the tensor
			ffn = int(t.Shape[1])
			if x.name == "ffn_down_exps.weight" {
				ffn = int(t.Shape[2])
			}
			x.rows, x.cols = ffn, fm.Embd
		}
		if len(t.Shape) != 3 || t.Shape[0] != int64(n) || t.Shape[1] != int64(x.rows) || t.Shape[2] != int64(x.cols) {
			return nil, errf("%s: shape %v, want [%d %d %d]", t.Name, t.Shape, n, x.rows, x.cols)
		}
		parts, err := expertSlices(t)
		if err != nil {
			return nil, errf("%v", err)
		}
		for _, pt := range parts {
			w, err := newWeight(pt)
			if err != nil {
				return nil, errf("%v", err)
			}
			*x.dst = append(*x.dst, w)
		}
	}
	return mo, nil
}

// expertSlices returns the 2-D tensors [rows, cols] of each expert of a
// stacked [experts, rows, cols] tensor, reading from its source (MLX
// affine scales and biases sliced alike). Sizes are checked against the
// source before anything is read.
func expertSlices(t *graph.Tensor) ([]*graph.Tensor, error) {
	n, rows, cols := t.Shape[0], t.Shape[1], t.Shape[2]
	if n <= 0 || rows <= 0 || cols <= 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return nil, fmt.Errorf("tensor %s: bad shape %v", t.Name, t.Shape)
	}
	section := func(src graph.Source, what string, per int64) (func(e int64) graph.Source, error) {
		if src == nil {
			return nil, fmt.Errorf("tensor %s: no %s", t.Name, what)
		}
		if per <= 0 || src.Size()/n < per {
			return nil, fmt.Errorf("tensor %s: %s is %d bytes, %d experts of %d needed", t.Name, what, src.Size(), n, per)
		}
		return func(e int64) graph.Source { return io.NewSectionReader(src, e*per, per) }, nil
	}
	var data, scales, biases func(int64) graph.Source
	var err error
	if t.Type == graph.MLXAffine {
		a := t.Affine
		if a == nil || a.GroupSize <= 0 || cols%int64(a.GroupSize) != 0 || a.Bits <= 0 {
			return nil, fmt.Errorf("tensor %s: bad MLX affine parameters", t.Name)
		}
		ss := int64(quantize.AffineScaleSize(a.ScaleType))
		groups := rows * (cols / int64(a.GroupSize)) * ss
		if data, err = section(t.Data, "packed data", rows*cols*int64(a.Bits)/8); err != nil {
			return nil, err
		}
		if scales, err = section(a.Scales, "scales", groups); err != nil {
			return nil, err
		}
		if biases, err = section(a.Biases, "biases", groups); err != nil {
			return nil, err
		}
	} else {
		rs, err := graph.RowSize(t.Type, cols)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %v", t.Name, err)
		}
		if data, err = section(t.Data, "data", rs*rows); err != nil {
			return nil, err
		}
	}
	out := make([]*graph.Tensor, n)
	for e := range out {
		pt := &graph.Tensor{Name: fmt.Sprintf("%s[%d]", t.Name, e), Shape: []int64{rows, cols}, Type: t.Type, Data: data(int64(e))}
		if t.Type == graph.MLXAffine {
			a := *t.Affine
			a.Scales, a.Biases = scales(int64(e)), biases(int64(e))
			pt.Affine = &a
		}
		out[e] = pt
	}
	return out, nil
}

// moeFFN computes the routed-experts FFN of r.h ([T][Embd]) into r.o, as
// llama.cpp's build_moe_ffn does with softmax gating: router logits, a
// softmax over all experts, the top `used` experts (largest first),
// their probabilities renormalised to sum 1 (the sum clamped below at
// 2^-14 on the GGUF path), a SwiGLU FFN per chosen expert, each output
// scaled by its weight and the outputs summed in rank order. Only the
// chosen experts are computed: the tokens routed to each expert are
// gathered and multiplied as one batch.
func (r *runner) moeFFN(mo *moeLayer, T int) {
	m := r.m
	E, k := m.Embd, mo.used
	nExp := mo.router.rows
	r.moeLogits = grow(r.moeLogits, T*nExp)
	r.act.reset()
	r.mul(r.moeLogits, mo.router, r.h, T)

	// routing
	if cap(r.moeSel) < T*k {
		r.moeSel = make([]int, T*k)
	}
	sel := r.moeSel[:T*k]
	r.moeW = grow(r.moeW, T*k)
	wts := r.moeW
	r.rows(T, func(t0, t1 int) {
		idx := make([]int, nExp)
		for t := t0; t < t1; t++ {
			p := r.moeLogits[t*nExp : (t+1)*nExp]
			softmaxInPlace(p, r.m.activations)
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
			var sum float64
			for j := 0; j < k; j++ {
				sel[t*k+j] = idx[j]
				wts[t*k+j] = p[idx[j]]
				sum += float64(p[idx[j]])
			}
			if mo.norm {
				s := float32(sum)
				if mo.clamp {
					s = max(s, 6.103515625e-5)
				}
				for j := 0; j < k; j++ {
					wts[t*k+j] /= s
				}
			}
		}
	})

	// experts: gather the rows routed to each, one batch per expert
	ffn := mo.gate[0].rows
	r.moeOut = grow(r.moeOut, T*k*E)
	out := r.moeOut
	var rowsOf [][]int // per expert: t*k+j of each routed (token, rank)
	rowsOf = make([][]int, nExp)
	for i, e := range sel {
		rowsOf[e] = append(rowsOf[e], i)
	}
	for e, list := range rowsOf {
		n := len(list)
		if n == 0 {
			continue
		}
		r.moeX = grow(r.moeX, n*E)
		r.moeG = grow(r.moeG, n*ffn)
		r.moeU = grow(r.moeU, n*ffn)
		r.moeY = grow(r.moeY, n*E)
		for i, tj := range list {
			t := tj / k
			copy(r.moeX[i*E:(i+1)*E], r.h[t*E:(t+1)*E])
		}
		r.act.reset()
		r.hookRows, r.hookK = list, k
		r.mulExperts(n, mulJob{dst: r.moeG, w: mo.gate[e], x: r.moeX}, mulJob{dst: r.moeU, w: mo.up[e], x: r.moeX})
		r.rows(n, func(t0, t1 int) { r.swiglu(r.moeG[t0*ffn:t1*ffn], r.moeU[t0*ffn:t1*ffn], ffn) })
		r.act.reset()
		r.mulExperts(n, mulJob{dst: r.moeY, w: mo.down[e], x: r.moeG})
		r.hookRows = nil
		for i, tj := range list {
			w := wts[tj]
			y := r.moeY[i*E : (i+1)*E]
			o := out[tj*E : (tj+1)*E]
			for c := range o {
				o[c] = y[c] * w
			}
		}
	}
	// sum over the ranks, in rank order
	r.rows(T, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			dst := r.o[t*E : (t+1)*E]
			copy(dst, out[t*k*E:(t*k+1)*E])
			for j := 1; j < k; j++ {
				addTo(dst, out[(t*k+j)*E:(t*k+j+1)*E])
			}
		}
	})
}

// softmaxInPlace is ggml's soft_max of one row: exp(x - max) in float32,
// summed in float64, scaled by the float32 reciprocal of the sum. With
// ggml set the exponentials are ggml_vec_soft_max_f32's to the bit
// (ggml_v_expf over 16 lanes, each group's float32 sum added in float64,
// libm's expf for the rest).
func softmaxInPlace(p []float32, ggml bool) {
	mx := float32(math.Inf(-1))
	for _, x := range p {
		mx = max(mx, x)
	}
	var sum float64
	i := 0
	if ggml {
		for ; i+faLanes <= len(p); i += faLanes {
			var lanes [faLanes]float32
			for l := range lanes {
				lanes[l] = vexpf(p[i+l] - mx)
				p[i+l] = lanes[l]
			}
			sum += float64(reduce16(&lanes))
		}
		for ; i < len(p); i++ {
			e := expf32(p[i] - mx)
			p[i] = e
			sum += float64(e)
		}
	}
	for ; i < len(p); i++ {
		e := float32(math.Exp(float64(p[i] - mx)))
		p[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range p {
		p[i] *= inv
	}
}
