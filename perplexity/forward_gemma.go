package perplexity

import (
	"fmt"
	"math"
	"sync"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// Gemma 3 (arch.Gemma3) forward-pass features, hooked into LoadModel and
// runner.forward:
//
//   - embeddings scaled by √hidden: float32(√E) for GGUF (llama.cpp's
//     ggml_scale by sqrtf(n_embd)) and HF (transformers'
//     Gemma3TextScaledWordEmbedding: the float32 buffer hidden_size**0.5),
//     the bfloat16 rounding of √E for MLX (mlx-lm gemma3_text.py
//     Gemma3Model: mx.array(hidden_size**0.5, mx.bfloat16));
//   - RMSNorm with (1+w): GGUF files hold w+1 already, HF/MLX weights get
//     the architecture's NormOffset added in float32 at load (transformers
//     computes 1.0 + weight.float());
//   - q/k RMSNorm per head before rope;
//   - post-attention and post-FFN RMSNorms applied to the sublayer output
//     before its residual add;
//   - GELU (tanh approximation) gate: llama.cpp's CPU geglu looks the
//     value up in a table of float16 inputs (ggml_vec_geglu_f32 with
//     GGML_GELU_FP16) for -10 < x < 10, which the llama.cpp activation
//     emulation reproduces; float32 runs evaluate the formula;
//   - per-layer sliding-window attention: on a sliding layer query
//     position p attends to key positions p' with p - p' < window
//     (llama.cpp is_masked_swa masks p - p' >= n_swa; transformers'
//     sliding_window_overlay keeps kv_idx > q_idx - sliding_window: the
//     same set), with its own rope base;
//   - the attention scale: GGUF scales Q by llama.cpp's f_attention_scale
//     before the scores (kq_scale 1); HF/MLX multiply the scores by
//     query_pre_attn_scalar^-½ as transformers' eager attention does;
//   - an optional final logit soft-cap, cap·tanh(x/cap).

// loadGemmaFeatures reads the tensors and settings of the features above
// that a's Features and m.Params ask for. It runs at the end of LoadModel.
func (fm *Model) loadGemmaFeatures(m *graph.Model, p graph.Params, a *arch.Arch, loadV func(string, int, bool) ([]float32, error)) error {
	f := a.Features
	if f.EmbedScale {
		s := float32(math.Sqrt(float64(fm.Embd)))
		if m.Format == graph.FormatMLX {
			s = roundBF16(s)
		}
		fm.embedScale = s
	}
	fm.gelu = f.Activation == "gelu_tanh" || p.Activation == "gelu_tanh"
	if f.ScaleQ && m.Format == graph.FormatGGUF {
		// llama.cpp: Qcur = ggml_scale(Qcur, 1.0f/sqrtf(n_embd_head)),
		// then attention with kq_scale 1.
		fm.qScale, fm.scoreScale = 1/float32(math.Sqrt(float64(fm.HeadDim))), 1
	}
	if p.AttnScale != 0 {
		if m.Format == graph.FormatGGUF {
			fm.qScale, fm.scoreScale = float32(p.AttnScale), 1
		} else {
			fm.scoreScale = float32(p.AttnScale)
		}
	}
	fm.softcap = float32(p.FinalLogitSoftcap)
	if p.SlidingWindow > 0 && len(p.SlidingLayers) > 0 {
		if len(p.SlidingLayers) != fm.Layers {
			return fmt.Errorf("%s: %d sliding-layer flags for %d layers", m.Path, len(p.SlidingLayers), fm.Layers)
		}
		fm.window, fm.sliding = p.SlidingWindow, p.SlidingLayers
		if base := p.RopeBaseSWA; base != 0 {
			inv, err := ropeFrequencies(base, fm.ropeDims, nil, nil)
			if err != nil {
				return fmt.Errorf("%s: %v", m.Path, err)
			}
			fm.invFreqSWA = inv
			if m.Format == graph.FormatGGUF {
				// llama.cpp: rope_freq_base_swa, rope_freq_scale_swa (1)
				fm.ggmlRopeSWA = newGGMLRope(base, fm.ropeDims, nil, nil)
			}
		}
	}
	var err error
	for i := range fm.layers {
		l := &fm.layers[i]
		pre := fmt.Sprintf("blk.%d.", i)
		// q/k norms are loaded by LoadModel (Features.QKNorm).
		if f.PostNorms {
			if l.attnPostNorm, err = loadV(pre+"post_attention_norm.weight", fm.Embd, false); err != nil {
				return err
			}
			if l.ffnPostNorm, err = loadV(pre+"post_ffw_norm.weight", fm.Embd, false); err != nil {
				return err
			}
		}
	}
	if m.Format != graph.FormatGGUF {
		// HF and MLX store w of the (1+w) norms; GGUF stores w+1.
		off := func(name string, v []float32) {
			if d := a.NormOffsetOf(name); d != 0 {
				for i := range v {
					v[i] += d
				}
			}
		}
		off("output_norm.weight", fm.outNorm)
		for i := range fm.layers {
			l := &fm.layers[i]
			for _, x := range []struct {
				name string
				v    []float32
			}{{"attn_norm", l.attnNorm}, {"ffn_norm", l.ffnNorm}, {"attn_q_norm", l.qNorm}, {"attn_k_norm", l.kNorm},
				{"post_attention_norm", l.attnPostNorm}, {"post_ffw_norm", l.ffnPostNorm}} {
				off(fmt.Sprintf("blk.%d.%s.weight", i, x.name), x.v)
			}
		}
	}
	return nil
}

// scaleEmbeddings multiplies the T embedding rows by the embedding scale.
func (r *runner) scaleEmbeddings(T int) {
	if s := r.m.embedScale; s != 0 {
		for i, v := range r.x[:T*r.m.Embd] {
			r.x[i] = v * s
		}
	}
}

// qkNorm normalizes every head of q and k with the layer's q/k norms.
func (r *runner) qkNorm(l *layerWeights, T int) {
	m := r.m
	if l.qNorm == nil {
		return
	}
	D := m.HeadDim
	r.rows(T, func(t0, t1 int) {
		q := r.q[t0*m.Heads*D : t1*m.Heads*D]
		k := r.k[t0*m.KVHeads*D : t1*m.KVHeads*D]
		rmsNorm(q, q, l.qNorm, (t1-t0)*m.Heads, D, m.eps, m.activations)
		rmsNorm(k, k, l.kNorm, (t1-t0)*m.KVHeads, D, m.eps, m.activations)
	})
}

// scaleQ multiplies q by llama.cpp's attention scale (GGUF models).
func (r *runner) scaleQ(T int) {
	if s := r.m.qScale; s != 0 {
		q := r.q[:T*r.m.Heads*r.m.HeadDim]
		r.rows(T, func(t0, t1 int) {
			D := r.m.Heads * r.m.HeadDim
			for i := t0 * D; i < t1*D; i++ {
				q[i] *= s
			}
		})
	}
}

// postNorm normalizes the T rows of a sublayer output o with w (nil: no
// norm).
func (r *runner) postNorm(o, w []float32, T int) {
	if w == nil {
		return
	}
	E := r.m.Embd
	r.rows(T, func(t0, t1 int) { rmsNorm(o[t0*E:], o[t0*E:], w, t1-t0, E, r.m.eps, r.m.activations) })
}

// setLayer selects layer li's attention window and rope tables.
func (r *runner) setLayer(li, T int) {
	m := r.m
	r.window = 0
	r.ropeCos, r.ropeSin = r.cos, r.sin
	if m.sliding == nil || !m.sliding[li] {
		return
	}
	r.window = m.window
	if m.invFreqSWA == nil {
		return
	}
	half := m.ropeDims / 2
	if r.ropeLenSWA < T {
		r.cosSWA = grow(r.cosSWA, T*half)
		r.sinSWA = grow(r.sinSWA, T*half)
		if m.activations && m.ggmlRopeSWA != nil {
			m.ggmlRopeSWA.table(r.cosSWA, r.sinSWA, T, half)
			r.ropeLenSWA = T
			r.ropeCos, r.ropeSin = r.cosSWA, r.sinSWA
			return
		}
		for p := 0; p < T; p++ {
			for i := 0; i < half; i++ {
				th := float64(p) * m.invFreqSWA[i]
				r.cosSWA[p*half+i] = float32(math.Cos(th))
				r.sinSWA[p*half+i] = float32(math.Sin(th))
			}
		}
		r.ropeLenSWA = T
	}
	r.ropeCos, r.ropeSin = r.cosSWA, r.sinSWA
}

// attnFrom is the first key position query position t attends to.
func (r *runner) attnFrom(t int) int {
	if r.window > 0 && t >= r.window {
		return t - r.window + 1
	}
	return 0
}

// gateAct applies the FFN gate activation: g = act(g) * u.
func (r *runner) gateAct(T int) {
	m := r.m
	if !m.gelu {
		r.rows(T, func(t0, t1 int) { r.swiglu(r.g[t0*m.FFN:t1*m.FFN], r.u[t0*m.FFN:t1*m.FFN], m.FFN) })
		return
	}
	table := m.activations
	r.rows(T, func(t0, t1 int) { geglu(r.g[t0*m.FFN:t1*m.FFN], r.u[t0*m.FFN:t1*m.FFN], table) })
}

// geglu writes gelu_tanh(g)*u into g. With table it is ggml's CPU
// ggml_vec_geglu_f32: 0 for x <= -10, x for x >= 10, else the float16
// table entry of x rounded to float16.
func geglu(g, u []float32, table bool) {
	u = u[:len(g)]
	if table {
		t := geluTable()
		for i, x := range g {
			switch {
			case x <= -10:
				g[i] = 0
			case x >= 10:
				g[i] = x * u[i]
			default:
				g[i] = quantize.FP16ToFP32(t[quantize.FP32ToFP16(x)]) * u[i]
			}
		}
		return
	}
	for i, x := range g {
		v := float64(x)
		g[i] = float32(0.5*v*(1+math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))) * u[i]
	}
}

var (
	geluOnce sync.Once
	geluTab  []uint16
)

// geluTable is ggml_table_gelu_f16: for every float16 input, the float16
// of ggml_gelu_f32 evaluated in float32.
func geluTable() []uint16 {
	geluOnce.Do(func() {
		const coefA, sqrt2OverPi = float32(0.044715), float32(0.79788456080286535587989211986876)
		geluTab = make([]uint16, 1<<16)
		for i := range geluTab {
			x := quantize.FP16ToFP32(uint16(i))
			th := float32(math.Tanh(float64(sqrt2OverPi * x * (1 + coefA*x*x))))
			geluTab[i] = quantize.FP32ToFP16(0.5 * x * (1 + th))
		}
	})
	return geluTab
}

// softcapLogits applies the final logit soft-cap to n rows.
func (r *runner) softcapLogits(n int) {
	c := r.m.softcap
	if c == 0 {
		return
	}
	lg := r.logits[:n*r.m.Vocab]
	for i, x := range lg {
		lg[i] = float32(math.Tanh(float64(x/c))) * c
	}
}
