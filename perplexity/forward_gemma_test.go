package perplexity

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// gemmaSynth is a small random Gemma 3 model: 3 layers, the middle one
// global, window 3 (shorter than the 11 test tokens), distinct rope
// bases, attention scale ≠ 1/√head_dim, tied embeddings. norms holds the
// HF values w of the (1+w) norms.
type gemmaSynth struct {
	vocab, embd, ffn, layers, heads, kv, hd, window int
	sliding                                         []bool
	base, baseSWA, attnScale, softcap               float64
	t                                               map[string][]float32
	shape                                           map[string][]int64
}

func newGemmaSynth(seed uint64) *gemmaSynth {
	s := &gemmaSynth{vocab: 40, embd: 16, ffn: 24, layers: 3, heads: 2, kv: 1, hd: 8, window: 3,
		sliding: []bool{true, false, true}, base: 1e6, baseSWA: 100, attnScale: 1 / math.Sqrt(6), softcap: 5,
		t: map[string][]float32{}, shape: map[string][]int64{}}
	rng := rand.New(rand.NewPCG(seed, 7))
	add := func(name string, scale float64, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(scale * rng.NormFloat64())
		}
		s.t[name], s.shape[name] = v, shape
	}
	E, F, q, kv, D := int64(s.embd), int64(s.ffn), int64(s.heads*s.hd), int64(s.kv*s.hd), int64(s.hd)
	add("token_embd.weight", 0.3, int64(s.vocab), E)
	add("output_norm.weight", 0.2, E)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		for _, n := range []string{"attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm"} {
			add(p+n+".weight", 0.2, E)
		}
		add(p+"attn_q_norm.weight", 0.2, D)
		add(p+"attn_k_norm.weight", 0.2, D)
		add(p+"attn_q.weight", 0.3, q, E)
		add(p+"attn_k.weight", 0.3, kv, E)
		add(p+"attn_v.weight", 0.3, kv, E)
		add(p+"attn_output.weight", 0.3, E, q)
		add(p+"ffn_gate.weight", 0.3, F, E)
		add(p+"ffn_up.weight", 0.3, F, E)
		add(p+"ffn_down.weight", 0.3, E, F)
	}
	return s
}

// model returns s as a graph.Model: HF weights as they are, GGUF norms as
// w+1 (what the converter writes).
func (s *gemmaSynth) model(format graph.Format) *graph.Model {
	m := &graph.Model{Format: format, Path: "synthetic-gemma3", Arch: "gemma3", Params: graph.Params{
		Layers: s.layers, Embedding: s.embd, FFN: s.ffn, Heads: s.heads, KVHeads: s.kv, HeadDim: s.hd,
		RopeBase: s.base, RMSEps: 1e-6, VocabSize: s.vocab, Tied: true, QKNorm: true, Activation: "gelu_tanh",
		SlidingWindow: s.window, SlidingLayers: s.sliding, RopeBaseSWA: s.baseSWA, AttnScale: s.attnScale,
		FinalLogitSoftcap: s.softcap,
	}}
	if format == graph.FormatGGUF {
		// What llama.cpp reads (its attention scale is 1/√head_dim, not
		// Params.AttnScale: see arch.Gemma3's FromGGUF).
		m.Metadata = []graph.KV{
			{Key: "gemma3.attention.sliding_window", Value: uint32(s.window)},
			{Key: "gemma3.attention.sliding_window_pattern", Value: s.sliding},
			{Key: "gemma3.rope.freq_base_swa", Value: float32(s.baseSWA)},
			{Key: "gemma3.final_logit_softcapping", Value: float32(s.softcap)},
		}
	}
	for name, v := range s.t {
		shape := s.shape[name]
		if format == graph.FormatGGUF && len(shape) == 1 {
			w := make([]float32, len(v))
			for i := range v {
				w[i] = v[i] + 1
			}
			v = w
		}
		b, err := encode(v, graph.F32, shape)
		if err != nil {
			panic(err)
		}
		m.Tensors = append(m.Tensors, &graph.Tensor{Name: name, Shape: shape, Type: graph.F32, Data: bytes.NewReader(b)})
	}
	graph.SortLlamaCpp(m.Tensors)
	return m
}

// naive is a float64 Gemma 3 forward pass written from transformers'
// modeling_gemma3.py: (1+w) norms, √E embedding scale, q/k norms, rope
// per layer type, a sliding layer's query at p sees keys p' with
// p-window < p' <= p, post norms, GELU-tanh, soft-capped logits.
func (s *gemmaSynth) naive(tokens []int) [][]float64 {
	T, E, D := len(tokens), s.embd, s.hd
	matvec := func(name string, x []float64, rows int) []float64 {
		W := s.t[name]
		y := make([]float64, rows)
		for r := range y {
			for c := range x {
				y[r] += float64(W[r*len(x)+c]) * x[c]
			}
		}
		return y
	}
	norm := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+1e-6)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * (1 + float64(w[i]))
		}
		return y
	}
	rope := func(v []float64, pos, heads int, base float64) {
		for h := 0; h < heads; h++ {
			for i := 0; i < D/2; i++ {
				th := float64(pos) * math.Pow(base, -float64(2*i)/float64(D))
				a, b := v[h*D+i], v[h*D+i+D/2]
				v[h*D+i] = a*math.Cos(th) - b*math.Sin(th)
				v[h*D+i+D/2] = a*math.Sin(th) + b*math.Cos(th)
			}
		}
	}
	x := make([][]float64, T)
	emb := s.t["token_embd.weight"]
	for t, id := range tokens {
		x[t] = make([]float64, E)
		for i := range x[t] {
			x[t][i] = float64(emb[id*E+i]) * math.Sqrt(float64(E))
		}
	}
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		base := s.base
		if s.sliding[l] {
			base = s.baseSWA
		}
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range x {
			h := norm(x[t], s.t[p+"attn_norm.weight"])
			qs[t] = matvec(p+"attn_q.weight", h, s.heads*D)
			ks[t] = matvec(p+"attn_k.weight", h, s.kv*D)
			vs[t] = matvec(p+"attn_v.weight", h, s.kv*D)
			for hh := 0; hh < s.heads; hh++ {
				copy(qs[t][hh*D:], norm(qs[t][hh*D:(hh+1)*D], s.t[p+"attn_q_norm.weight"]))
			}
			for hh := 0; hh < s.kv; hh++ {
				copy(ks[t][hh*D:], norm(ks[t][hh*D:(hh+1)*D], s.t[p+"attn_k_norm.weight"]))
			}
			rope(qs[t], t, s.heads, base)
			rope(ks[t], t, s.kv, base)
		}
		for t := range x {
			att := make([]float64, s.heads*D)
			for h := 0; h < s.heads; h++ {
				kh := h / (s.heads / s.kv)
				var w []float64
				var js []int
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					if s.sliding[l] && !(j > t-s.window) {
						continue
					}
					var d float64
					for k := 0; k < D; k++ {
						d += qs[t][h*D+k] * ks[j][kh*D+k]
					}
					d *= s.attnScale
					w, js = append(w, d), append(js, j)
					mx = math.Max(mx, d)
				}
				var sum float64
				for i := range w {
					w[i] = math.Exp(w[i] - mx)
					sum += w[i]
				}
				for i, j := range js {
					for k := 0; k < D; k++ {
						att[h*D+k] += w[i] / sum * vs[j][kh*D+k]
					}
				}
			}
			o := norm(matvec(p+"attn_output.weight", att, E), s.t[p+"post_attention_norm.weight"])
			for i := range o {
				x[t][i] += o[i]
			}
			h := norm(x[t], s.t[p+"ffn_norm.weight"])
			g := matvec(p+"ffn_gate.weight", h, s.ffn)
			u := matvec(p+"ffn_up.weight", h, s.ffn)
			for i, v := range g {
				g[i] = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))) * u[i]
			}
			dn := norm(matvec(p+"ffn_down.weight", g, E), s.t[p+"post_ffw_norm.weight"])
			for i := range dn {
				x[t][i] += dn[i]
			}
		}
	}
	logits := make([][]float64, T)
	for t := range x {
		logits[t] = matvec("token_embd.weight", norm(x[t], s.t["output_norm.weight"]), s.vocab)
		for i, v := range logits[t] {
			logits[t][i] = s.softcap * math.Tanh(v/s.softcap)
		}
	}
	return logits
}

// The Gemma 3 forward pass (HF weights w, and GGUF weights w+1 with the
// attention scale applied to Q) equals the float64 reference; a window
// off by one, a missing norm offset or the wrong rope base for a layer
// type moves the logits far beyond the tolerance.
func TestForwardGemma3Synthetic(t *testing.T) {
	s := newGemmaSynth(3)
	tokens := []int{2, 17, 5, 33, 8, 8, 21, 0, 39, 12, 30}
	want := s.naive(tokens)
	sg := *s
	sg.attnScale = 1 / math.Sqrt(float64(s.hd)) // llama.cpp's gemma3 scale
	wantGGUF := sg.naive(tokens)
	for _, format := range []graph.Format{graph.FormatHF, graph.FormatGGUF} {
		t.Run(string(format), func(t *testing.T) {
			want := want
			if format == graph.FormatGGUF {
				want = wantGGUF
			}
			fm, err := LoadModel(s.model(format))
			if err != nil {
				t.Fatal(err)
			}
			got, err := newRunner(fm, 2).forward(tokens, 0)
			if err != nil {
				t.Fatal(err)
			}
			var maxDiff float64
			for p := range tokens {
				for i := 0; i < s.vocab; i++ {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[p*s.vocab+i])-want[p][i]))
				}
			}
			if maxDiff > 2e-4 {
				t.Errorf("max |logit - reference| = %g", maxDiff)
			}
		})
	}
	// Sanity: the window matters for these tokens (a reference with a
	// window of 4 differs), so the comparison above checks it.
	s4 := *s
	s4.window = 4
	alt := s4.naive(tokens)
	if math.Abs(alt[len(tokens)-1][0]-want[len(tokens)-1][0]) < 1e-3 {
		t.Fatal("window 3 and 4 give the same logits: the test does not exercise the window")
	}
}

func TestAttnFromWindow(t *testing.T) {
	r := &runner{window: 32}
	for _, tc := range []struct{ t, want int }{{0, 0}, {31, 0}, {32, 1}, {127, 96}} {
		if got := r.attnFrom(tc.t); got != tc.want {
			t.Errorf("window 32: first key of query %d = %d, want %d", tc.t, got, tc.want)
		}
	}
	r.window = 0
	if got := r.attnFrom(127); got != 0 {
		t.Errorf("no window: first key %d", got)
	}
}

// geglu with the table is ggml's: the float16 table entry of the float16
// input, 0 at or below -10, x at or above 10; without the table it is the
// tanh formula.
func TestGeglu(t *testing.T) {
	xs := []float32{-12, -10, -3.3, -0.5, 0, 0.3337, 1, 2.71828, 9.99, 10, 15}
	g := append([]float32(nil), xs...)
	u := make([]float32, len(xs))
	for i := range u {
		u[i] = 2
	}
	geglu(g, u, true)
	for i, x := range xs {
		want := float32(0)
		switch {
		case x <= -10:
		case x >= 10:
			want = x * 2
		default:
			h := float64(quantize.FP16ToFP32(quantize.FP32ToFP16(x)))
			ref := 0.5 * h * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(h+0.044715*h*h*h)))
			want = quantize.FP16ToFP32(quantize.FP32ToFP16(float32(ref))) * 2
		}
		if g[i] != want {
			t.Errorf("table geglu(%v) = %v, want %v", x, g[i], want)
		}
	}
	g = append(g[:0], xs...)
	geglu(g, u, false)
	if d := math.Abs(float64(g[6]) - 2*0.8411919906082768); d > 1e-6 {
		t.Errorf("geglu(1) = %v", g[6])
	}
}
