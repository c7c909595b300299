package perplexity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// synthModel builds a small random model. Q/K rows are in HF order.
type synthSpec struct {
	arch                                    string
	vocab, embd, ffn, layers, heads, kv, hd int
	bias, tied                              bool
	scaling                                 *graph.RopeScaling
}

type synthWeights struct {
	spec    synthSpec
	tensors map[string][]float32
	shapes  map[string][]int64
}

func newSynth(s synthSpec, seed uint64) *synthWeights {
	rng := rand.New(rand.NewPCG(seed, 1))
	w := &synthWeights{spec: s, tensors: map[string][]float32{}, shapes: map[string][]int64{}}
	add := func(name string, scale float64, offset float64, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*rng.NormFloat64())
		}
		w.tensors[name] = v
		w.shapes[name] = shape
	}
	q, kv := int64(s.heads*s.hd), int64(s.kv*s.hd)
	E, F := int64(s.embd), int64(s.ffn)
	add("token_embd.weight", 0.5, 0, int64(s.vocab), E)
	if !s.tied {
		add("output.weight", 0.2, 0, int64(s.vocab), E)
	}
	add("output_norm.weight", 0.1, 1, E)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", 0.1, 1, E)
		add(p+"ffn_norm.weight", 0.1, 1, E)
		add(p+"attn_q.weight", 0.3, 0, q, E)
		add(p+"attn_k.weight", 0.3, 0, kv, E)
		add(p+"attn_v.weight", 0.3, 0, kv, E)
		add(p+"attn_output.weight", 0.2, 0, E, q)
		add(p+"ffn_gate.weight", 0.2, 0, F, E)
		add(p+"ffn_up.weight", 0.2, 0, F, E)
		add(p+"ffn_down.weight", 0.2, 0, E, F)
		if s.bias {
			add(p+"attn_q.bias", 0.3, 0, q)
			add(p+"attn_k.bias", 0.3, 0, kv)
			add(p+"attn_v.bias", 0.3, 0, kv)
		}
	}
	return w
}

// permuteRows applies convert_hf_to_gguf's llama Q/K permutation:
// dst[h·hd + 2i + j] = src[h·hd + j·hd/2 + i].
func permuteRows(src []float32, heads, hd, cols int) []float32 {
	dst := make([]float32, len(src))
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for j := 0; j < 2; j++ {
				d := h*hd + 2*i + j
				s := h*hd + j*hd/2 + i
				copy(dst[d*cols:(d+1)*cols], src[s*cols:(s+1)*cols])
			}
		}
	}
	return dst
}

// model returns the weights as a graph.Model of the given format, with
// matrices encoded as typ (F32, F16, BF16 or a ggml block type). For GGUF
// llama models Q/K rows (and biases) are permuted as the converter does.
func (w *synthWeights) model(format graph.Format, typ graph.Type) *graph.Model {
	s := w.spec
	m := &graph.Model{Format: format, Path: "synthetic", Arch: s.arch, Params: graph.Params{
		Layers: s.layers, Embedding: s.embd, FFN: s.ffn, Heads: s.heads, KVHeads: s.kv, HeadDim: s.hd,
		RopeBase: 10000, RMSEps: 1e-5, VocabSize: s.vocab, Tied: s.tied, RopeScaling: s.scaling,
	}}
	for name, v := range w.tensors {
		shape := w.shapes[name]
		if format == graph.FormatGGUF && s.arch == "llama" {
			cols := 1
			if len(shape) == 2 {
				cols = int(shape[1])
			}
			switch {
			case hasSuffix(name, "attn_q.weight"), hasSuffix(name, "attn_q.bias"):
				v = permuteRows(v, s.heads, s.hd, cols)
			case hasSuffix(name, "attn_k.weight"), hasSuffix(name, "attn_k.bias"):
				v = permuteRows(v, s.kv, s.hd, cols)
			}
		}
		t := typ
		if len(shape) == 1 {
			t = graph.F32
		}
		b, err := encode(v, t, shape)
		if err != nil {
			panic(err)
		}
		m.Tensors = append(m.Tensors, &graph.Tensor{Name: name, Shape: shape, Type: t, Data: bytes.NewReader(b)})
	}
	graph.SortLlamaCpp(m.Tensors)
	return m
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func encode(v []float32, t graph.Type, shape []int64) ([]byte, error) {
	if t == graph.F32 {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b, nil
	}
	cols := int(shape[len(shape)-1])
	rs, err := graph.RowSize(t, int64(cols))
	if err != nil {
		return nil, err
	}
	rows := len(v) / cols
	b := make([]byte, int(rs)*rows)
	for r := 0; r < rows; r++ {
		if err := quantize.QuantizeRow(b[r*int(rs):(r+1)*int(rs)], v[r*cols:(r+1)*cols], t); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// naiveForward is a straightforward float64 reference of the llama/qwen2
// forward pass on HF-ordered weights (NEOX rotation), returning all logits.
func naiveForward(w *synthWeights, tokens []int) [][]float64 {
	s := w.spec
	T, E, D := len(tokens), s.embd, s.hd
	get := func(n string) []float32 { return w.tensors[n] }
	matvec := func(name string, x []float64, rows int) []float64 {
		W := get(name)
		cols := len(x)
		y := make([]float64, rows)
		for r := range y {
			for c := 0; c < cols; c++ {
				y[r] += float64(W[r*cols+c]) * x[c]
			}
		}
		if b := get(name[:len(name)-len("weight")] + "bias"); b != nil {
			for r := range y {
				y[r] += float64(b[r])
			}
		}
		return y
	}
	norm := func(x []float64, wn []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+1e-5)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * float64(wn[i])
		}
		return y
	}
	invFreq, _ := ropeFrequencies(10000, D, s.scaling, nil)
	rope := func(v []float64, pos, heads int) {
		for h := 0; h < heads; h++ {
			for i := 0; i < D/2; i++ {
				th := float64(pos) * invFreq[i]
				a, b := v[h*D+i], v[h*D+i+D/2]
				v[h*D+i] = a*math.Cos(th) - b*math.Sin(th)
				v[h*D+i+D/2] = a*math.Sin(th) + b*math.Cos(th)
			}
		}
	}
	x := make([][]float64, T)
	emb := get("token_embd.weight")
	for t, id := range tokens {
		x[t] = make([]float64, E)
		for i := range x[t] {
			x[t][i] = float64(emb[id*E+i])
		}
	}
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range x {
			h := norm(x[t], get(p+"attn_norm.weight"))
			qs[t] = matvec(p+"attn_q.weight", h, s.heads*D)
			ks[t] = matvec(p+"attn_k.weight", h, s.kv*D)
			vs[t] = matvec(p+"attn_v.weight", h, s.kv*D)
			rope(qs[t], t, s.heads)
			rope(ks[t], t, s.kv)
		}
		for t := range x {
			att := make([]float64, s.heads*D)
			for h := 0; h < s.heads; h++ {
				kh := h / (s.heads / s.kv)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					for d := 0; d < D; d++ {
						sc[j] += qs[t][h*D+d] * ks[j][kh*D+d]
					}
					sc[j] /= math.Sqrt(float64(D))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for d := 0; d < D; d++ {
						att[h*D+d] += sc[j] / sum * vs[j][kh*D+d]
					}
				}
			}
			o := matvec(p+"attn_output.weight", att, E)
			for i := range o {
				x[t][i] += o[i]
			}
			h := norm(x[t], get(p+"ffn_norm.weight"))
			g := matvec(p+"ffn_gate.weight", h, s.ffn)
			u := matvec(p+"ffn_up.weight", h, s.ffn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			dn := matvec(p+"ffn_down.weight", g, E)
			for i := range dn {
				x[t][i] += dn[i]
			}
		}
	}
	out := "output.weight"
	if s.tied {
		out = "token_embd.weight"
	}
	logits := make([][]float64, T)
	for t := range x {
		logits[t] = matvec(out, norm(x[t], get("output_norm.weight")), s.vocab)
	}
	return logits
}

func TestForwardSynthetic(t *testing.T) {
	specs := []struct {
		name string
		spec synthSpec
	}{
		{"llama-gqa", synthSpec{arch: "llama", vocab: 96, embd: 64, ffn: 96, layers: 2, heads: 4, kv: 2, hd: 16}},
		{"llama-mha-headdim", synthSpec{arch: "llama", vocab: 64, embd: 32, ffn: 64, layers: 2, heads: 4, kv: 4, hd: 12}},
		{"llama3-scaling-tied", synthSpec{arch: "llama", vocab: 80, embd: 64, ffn: 64, layers: 1, heads: 2, kv: 1, hd: 32, tied: true,
			scaling: &graph.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalContext: 16}}},
		{"qwen2-bias-tied", synthSpec{arch: "qwen2", vocab: 72, embd: 64, ffn: 128, layers: 2, heads: 4, kv: 2, hd: 16, bias: true, tied: true}},
	}
	tokens := []int{1, 5, 9, 33, 2, 17, 40, 8, 8, 3, 60, 11, 7}
	for _, sc := range specs {
		w := newSynth(sc.spec, 42)
		want := naiveForward(w, tokens)
		formats := []graph.Format{graph.FormatHF, graph.FormatGGUF}
		for _, f := range formats {
			for _, threads := range []int{1, 4} {
				t.Run(fmt.Sprintf("%s/%s/t%d", sc.name, f, threads), func(t *testing.T) {
					fm, err := LoadModel(w.model(f, graph.F32))
					if err != nil {
						t.Fatal(err)
					}
					from := 3
					got, err := newRunner(fm, threads).forward(tokens, from)
					if err != nil {
						t.Fatal(err)
					}
					var maxd float64
					for p := from; p < len(tokens); p++ {
						for v := 0; v < fm.Vocab; v++ {
							maxd = math.Max(maxd, math.Abs(float64(got[(p-from)*fm.Vocab+v])-want[p][v]))
						}
					}
					if maxd > 1e-4 {
						t.Errorf("max |logit - naive float64 reference| = %g > 1e-4", maxd)
					}
				})
			}
		}
	}
}

// TestForwardQuantizedWeights checks that block-quantized weights run
// directly (expanded a tile at a time, or once at load) and agree with the
// same weights dequantized to F32.
func TestForwardQuantizedWeights(t *testing.T) {
	w := newSynth(synthSpec{arch: "llama", vocab: 64, embd: 256, ffn: 256, layers: 1, heads: 4, kv: 2, hd: 64}, 7)
	tokens := []int{1, 5, 9, 33, 2, 17, 40, 8}
	saved := expandBudget
	defer func() { expandBudget = saved }()
	for _, c := range []struct {
		typ    graph.Type
		budget int64
	}{
		{graph.F16, 0}, {graph.BF16, 0}, {graph.Q8_0, 0}, {graph.Q4_K, 0}, {graph.Q6_K, 0},
		{graph.BF16, saved}, {graph.Q4_K, saved},
	} {
		typ := c.typ
		expandBudget = c.budget
		t.Run(fmt.Sprintf("%v/budget%d", typ, c.budget), func(t *testing.T) {
			q := w.model(graph.FormatGGUF, typ)
			// The same codes dequantized to F32 tensors.
			f := &graph.Model{Format: q.Format, Arch: q.Arch, Params: q.Params, Path: "dequantized"}
			for _, tn := range q.Tensors {
				wt, err := newWeight(&graph.Tensor{Name: tn.Name, Shape: []int64{tn.Rows(), tn.RowLen()}, Type: tn.Type, Data: tn.Data})
				if err != nil {
					t.Fatal(err)
				}
				v := make([]float32, tn.Elements())
				wt.dequantRows(v, 0, wt.rows)
				b, _ := encode(v, graph.F32, tn.Shape)
				f.Tensors = append(f.Tensors, &graph.Tensor{Name: tn.Name, Shape: tn.Shape, Type: graph.F32, Data: bytes.NewReader(b)})
			}
			mq, err := LoadModel(q)
			if err != nil {
				t.Fatal(err)
			}
			if expanded := mq.layers[0].wq.f32 != nil; expanded != (c.budget > 0) {
				t.Fatalf("budget %d: weights expanded at load = %v", c.budget, expanded)
			}
			mf, err := LoadModel(f)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := newRunner(mq, 2).forward(tokens, 0)
			a = append([]float32(nil), a...)
			b, _ := newRunner(mf, 2).forward(tokens, 0)
			var maxd float64
			for i := range a {
				maxd = math.Max(maxd, math.Abs(float64(a[i]-b[i])))
			}
			if maxd > 1e-4 {
				t.Errorf("quantized vs dequantized weights: max logit difference %g", maxd)
			}
		})
	}
}

func TestRoundQ8(t *testing.T) {
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * float32(i%7+1)
	}
	for _, c := range []struct {
		k     actKind
		block int
	}{{actQ8_0, 32}, {actQ8_K, 256}} {
		got := make([]float32, len(x))
		roundActivations(got, x, len(x), c.k)
		for b := 0; b < len(x); b += c.block {
			var amax float64
			for _, v := range x[b : b+c.block] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+c.block; i++ {
				// error at most half a step, plus for Q8_0 the fp16
				// rounding of the scale (relative 2^-11, times up to 127 steps)
				if d := math.Abs(float64(got[i] - x[i])); d > amax/127*(0.5+127.0/2048)+1e-6 {
					t.Errorf("kind %d: element %d: %v rounded to %v (step %v)", c.k, i, x[i], got[i], amax/127)
				}
			}
		}
	}
	// Q8_K: the element of largest magnitude is reproduced (code -127).
	got := make([]float32, 256)
	roundActivations(got, x, 256, actQ8_K)
	var imax int
	for i, v := range x {
		if math.Abs(float64(v)) > math.Abs(float64(x[imax])) {
			imax = i
		}
	}
	if math.Abs(float64(got[imax]-x[imax])) > 1e-6 {
		t.Errorf("Q8_K: extreme element %v rounded to %v", x[imax], got[imax])
	}
}

// TestQ81Correction checks the Q4_1 × activation product under llama.cpp
// emulation against ggml_vec_dot_q4_1_q8_1's formula written out on the
// integer codes: Σ_b d_w·fp16(d_a)·Σ q_w·q_a + m·fp16(d_a·Σ q_a).
func TestQ81Correction(t *testing.T) {
	const cols = 128
	rng := rand.New(rand.NewPCG(5, 6))
	wv := make([]float32, cols)
	x := make([]float32, cols)
	for i := range wv {
		wv[i] = float32(rng.NormFloat64()*0.1 + 0.03)
		x[i] = float32(rng.NormFloat64())
	}
	raw, err := encode(wv, graph.Q4_1, []int64{1, cols})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWeight(&graph.Tensor{Name: "w", Shape: []int64{1, cols}, Type: graph.Q4_1, Data: bytes.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{m: &Model{activations: true}, threads: 1}
	got := make([]float32, 1)
	r.mul(got, w, x, 1)

	var want float64
	for b := 0; b < cols/32; b++ {
		blk := raw[b*20 : (b+1)*20]
		dw := float64(quantize.FP16ToFP32(binary.LittleEndian.Uint16(blk)))
		mw := float64(quantize.FP16ToFP32(binary.LittleEndian.Uint16(blk[2:])))
		xb := x[b*32 : (b+1)*32]
		var amax float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		qa := make([]int, 32)
		sumq := 0
		for i, v := range xb {
			qa[i] = int(math.RoundToEven(float64(v * (127 / amax))))
			sumq += qa[i]
		}
		isum := 0
		for j := 0; j < 16; j++ {
			isum += int(blk[4+j]&15)*qa[j] + int(blk[4+j]>>4)*qa[j+16]
		}
		da := float64(quantize.FP16ToFP32(quantize.FP32ToFP16(d)))
		s := float64(quantize.FP16ToFP32(quantize.FP32ToFP16(d * float32(sumq))))
		want += dw*da*float64(isum) + mw*s
	}
	if math.Abs(float64(got[0])-want) > 1e-5*math.Max(1, math.Abs(want)) {
		t.Errorf("Q4_1 row · activations = %v, ggml formula gives %v", got[0], want)
	}
}
