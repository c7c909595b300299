package perplexity

import (
	"fmt"
	"math"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
)

// Model is a decoder prepared for the forward pass: hyperparameters checked,
// weights read into memory in their stored encoding, RoPE tables built.
type Model struct {
	Arch                     string
	Vocab, Embd, FFN, Layers int
	Heads, KVHeads, HeadDim  int
	eps                      float32
	neox                     bool      // rotate halves (NEOX) instead of adjacent pairs (NORM)
	ropeDims                 int       // rotated dimensions per head
	invFreq                  []float64 // ropeDims/2 inverse frequencies, scaling applied
	ggmlRope                 *ggmlRope // llama.cpp's float32 rope tables (GGUF), nil: none
	ggmlRopeSWA              *ggmlRope // the same for the sliding-window layers' own base
	tokEmbd, output          *weight
	outNorm                  []float32
	layers                   []layerWeights
	source                   string // model path for errors
	activations              bool   // emulate llama.cpp activation rounding (see Options)
	tokenizer                *graph.Tokenizer
	longrope                 *longrope // longrope scaling (model_fused.go), nil without

	// Gemma 3 features (forward_gemma.go); zero for other architectures.
	embedScale         float32   // embeddings multiplied by it (0: none)
	gelu               bool      // GELU-tanh gate instead of SiLU
	qScale, scoreScale float32   // attention scale on Q (GGUF) or on the scores (0: 1/√HeadDim)
	softcap            float32   // final logit soft-cap (0: none)
	window             int       // sliding-window width of the sliding layers
	sliding            []bool    // per layer: sliding-window attention
	invFreqSWA         []float64 // rope frequencies of the sliding layers (nil: invFreq)
}

type layerWeights struct {
	attnNorm, ffnNorm         []float32
	wq, wk, wv, wo            *weight
	bq, bk, bv, bo            []float32
	gate, up, down            *weight
	qNorm, kNorm              []float32 // per-head q/k RMSNorm weights (Qwen3, Gemma 3)
	attnPostNorm, ffnPostNorm []float32 // norms of the attention and FFN outputs (Gemma 3)
	moe                       *moeLayer // routed experts instead of gate/up/down (forward_moe.go)
}

// LoadModel prepares m for the forward pass. It supports the llama family
// (llama, mistral) and qwen2. Every weight is read into memory in its stored
// encoding; quantized and 16-bit weights stay encoded and are expanded tile
// by tile inside the matrix products.
func LoadModel(m *graph.Model) (*Model, error) {
	return loadModel(m, false)
}

// loadModel is LoadModel for a forward pass that rounds the activations as
// llama.cpp does (activations) or not; the expansion at load depends on it
// (expandAtLoad).
func loadModel(m *graph.Model, activations bool) (*Model, error) {
	if m == nil {
		return nil, fmt.Errorf("perplexity: nil model")
	}
	archName := m.Arch
	if archName == "" {
		archName = "llama"
	}
	a, ok := arch.Lookup(archName)
	if !ok {
		return nil, fmt.Errorf("%s: %w", m.Path, &arch.UnsupportedError{Arch: archName})
	}
	if _, err := arch.Validate(m); err != nil {
		return nil, err
	}
	// Fused projections become row views (model_fused.go).
	sm, err := splitFused(m, a)
	if err != nil {
		return nil, err
	}
	m = sm
	p := m.Params
	if m.Format == graph.FormatGGUF && a.FromGGUF != nil {
		// The architecture's own GGUF keys (formats.Open applies them
		// already; gguf.ReadModel alone does not). Idempotent.
		c := *m
		if err := arch.ApplyGGUF(&c); err != nil {
			return nil, err
		}
		p = c.Params
	}
	fm := &Model{Arch: archName, source: m.Path, tokenizer: m.Tokenizer}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{m.Path}, a...)...)
	}
	get := func(name string) (*graph.Tensor, error) {
		t := m.Tensor(name)
		if t == nil {
			return nil, errf("missing tensor %s", name)
		}
		return t, nil
	}

	te, err := get("token_embd.weight")
	if err != nil {
		return nil, err
	}
	if len(te.Shape) != 2 {
		return nil, errf("token_embd.weight: shape %v, want [vocab, embedding]", te.Shape)
	}
	fm.Vocab, fm.Embd = int(te.Shape[0]), int(te.Shape[1])
	if p.Embedding != 0 && p.Embedding != fm.Embd {
		return nil, errf("embedding length %d in metadata, token_embd.weight has %d", p.Embedding, fm.Embd)
	}
	fm.Layers = p.Layers
	if fm.Layers == 0 {
		for _, t := range m.Tensors {
			if l := graph.LayerIndex(t.Name); l+1 > fm.Layers {
				fm.Layers = l + 1
			}
		}
	}
	if fm.Layers <= 0 || fm.Layers > 1<<16 {
		return nil, errf("bad layer count %d", fm.Layers)
	}
	fm.Heads = p.Heads
	if fm.Heads <= 0 {
		return nil, errf("attention head count missing from the model's metadata")
	}
	fm.KVHeads = p.KVHeads
	if fm.KVHeads == 0 {
		fm.KVHeads = fm.Heads
	}
	if fm.KVHeads < 0 || fm.Heads%fm.KVHeads != 0 {
		return nil, errf("%d attention heads are not a multiple of %d key/value heads", fm.Heads, fm.KVHeads)
	}
	fm.HeadDim = p.HeadDim
	if fm.HeadDim == 0 {
		if fm.Embd%fm.Heads != 0 {
			return nil, errf("embedding %d not divisible by %d heads and no head_dim given", fm.Embd, fm.Heads)
		}
		fm.HeadDim = fm.Embd / fm.Heads
	}
	if fm.HeadDim <= 0 || fm.HeadDim%2 != 0 {
		return nil, errf("bad head dimension %d", fm.HeadDim)
	}
	// config.json readers fill in the architecture's default; llama.cpp
	// refuses a GGUF without {arch}.attention.layer_norm_rms_epsilon.
	if !(p.RMSEps > 0) {
		return nil, errf("the model's metadata gives no RMS norm epsilon (attention.layer_norm_rms_epsilon)")
	}
	fm.eps = float32(p.RMSEps)

	// RoPE. llama.cpp's llama arch rotates adjacent pairs (NORM) because
	// convert_hf_to_gguf permutes Q/K rows; HF/MLX llama weights are
	// unpermuted, and rotating halves (NEOX) on them is the same function.
	fm.neox = a.RopeType == "neox" || m.Format != graph.FormatGGUF
	fm.ropeDims = p.RopeDims
	if fm.ropeDims == 0 {
		fm.ropeDims = fm.HeadDim
	}
	if fm.ropeDims <= 0 || fm.ropeDims > fm.HeadDim || fm.ropeDims%2 != 0 {
		return nil, errf("bad rotary dimension count %d (head dimension %d)", fm.ropeDims, fm.HeadDim)
	}
	base := p.RopeBase
	if base == 0 {
		base = a.DefaultRopeBase
	}
	var freqFactors []float32
	if t := m.Tensor("rope_freqs.weight"); t != nil {
		if freqFactors, err = readVector(t, fm.ropeDims/2); err != nil {
			return nil, errf("%v", err)
		}
	}
	if fm.longrope, err = longropeOf(m, base, fm.ropeDims); err != nil {
		return nil, errf("%v", err)
	}
	if fm.longrope != nil {
		fm.invFreq = fm.longrope.short
	} else if fm.invFreq, err = ropeFrequencies(base, fm.ropeDims, p.RopeScaling, freqFactors); err != nil {
		return nil, errf("%v", err)
	}
	if m.Format == graph.FormatGGUF {
		fm.ggmlRope = newGGMLRope(base, fm.ropeDims, p.RopeScaling, freqFactors)
	}

	loadW := func(name string, rows, cols int) (*weight, error) {
		t, err := get(name)
		if err != nil {
			return nil, err
		}
		if len(t.Shape) != 2 || t.Shape[0] != int64(rows) || t.Shape[1] != int64(cols) {
			return nil, errf("%s: shape %v, want [%d %d]", name, t.Shape, rows, cols)
		}
		w, err := newWeight(t)
		if err != nil {
			return nil, errf("%v", err)
		}
		return w, nil
	}
	loadV := func(name string, n int, optional bool) ([]float32, error) {
		t := m.Tensor(name)
		if t == nil {
			if optional {
				return nil, nil
			}
			return nil, errf("missing tensor %s", name)
		}
		v, err := readVector(t, n)
		if err != nil {
			return nil, errf("%v", err)
		}
		return v, nil
	}

	if fm.tokEmbd, err = loadW("token_embd.weight", fm.Vocab, fm.Embd); err != nil {
		return nil, err
	}
	if m.Tensor("output.weight") != nil {
		if fm.output, err = loadW("output.weight", fm.Vocab, fm.Embd); err != nil {
			return nil, err
		}
	} else {
		fm.output = fm.tokEmbd // tied embeddings
	}
	if fm.outNorm, err = loadV("output_norm.weight", fm.Embd, false); err != nil {
		return nil, err
	}
	qDim, kvDim := fm.Heads*fm.HeadDim, fm.KVHeads*fm.HeadDim
	ffn := p.FFN
	if ffn == 0 {
		if t := m.Tensor("blk.0.ffn_up.weight"); t != nil && len(t.Shape) == 2 {
			ffn = int(t.Shape[0])
		}
	}
	if ffn <= 0 {
		return nil, errf("feed-forward length unknown")
	}
	fm.FFN = ffn
	fm.layers = make([]layerWeights, fm.Layers)
	for i := range fm.layers {
		l := &fm.layers[i]
		pre := fmt.Sprintf("blk.%d.", i)
		if l.attnNorm, err = loadV(pre+"attn_norm.weight", fm.Embd, false); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = loadV(pre+"ffn_norm.weight", fm.Embd, false); err != nil {
			return nil, err
		}
		if p.QKNorm || a.Features.QKNorm {
			if l.qNorm, err = loadV(pre+"attn_q_norm.weight", fm.HeadDim, false); err != nil {
				return nil, err
			}
			if l.kNorm, err = loadV(pre+"attn_k_norm.weight", fm.HeadDim, false); err != nil {
				return nil, err
			}
		}
		sparse := m.Tensor(pre+"ffn_gate_inp.weight") != nil
		if sparse {
			if l.moe, err = fm.loadMoE(m, pre, p); err != nil {
				return nil, err
			}
		}
		for _, x := range []struct {
			w          **weight
			b          *[]float32
			name       string
			rows, cols int
		}{
			{&l.wq, &l.bq, "attn_q", qDim, fm.Embd},
			{&l.wk, &l.bk, "attn_k", kvDim, fm.Embd},
			{&l.wv, &l.bv, "attn_v", kvDim, fm.Embd},
			{&l.wo, &l.bo, "attn_output", fm.Embd, qDim},
			{&l.gate, nil, "ffn_gate", ffn, fm.Embd},
			{&l.up, nil, "ffn_up", ffn, fm.Embd},
			{&l.down, nil, "ffn_down", fm.Embd, ffn},
		} {
			if sparse && x.b == nil {
				continue // ffn_gate/up/down: the experts replace them
			}
			if *x.w, err = loadW(pre+x.name+".weight", x.rows, x.cols); err != nil {
				return nil, err
			}
			if x.b != nil {
				if *x.b, err = loadV(pre+x.name+".bias", x.rows, true); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := fm.loadGemmaFeatures(m, p, a, loadV); err != nil {
		return nil, err
	}
	fm.activations = activations
	fm.expandAtLoad(expandBudget)
	return fm, nil
}

// expandBudget is the most float32 bytes LoadModel spends on expanding
// encoded weights once at load (see the package documentation); beyond it
// they stay encoded and are expanded a tile at a time in every product.
// Tests lower it to exercise the tile path.
var expandBudget int64 = 1 << 30

// expandAtLoad decodes every encoded weight to float32 once when all of
// them together fit budget bytes. The encoded bytes are then dropped (the
// Q4_1/Q5_1 block minimums stay for the activation emulation). With
// llama.cpp's activations, F16 and BF16 weights the 16-bit kernels read in
// place (halfRows) and the block types whose integer codes the emulation
// multiplies (keepCodes) are not expanded: their kernels read the stored
// rows, and the copy would only cost memory and load time.
// keepCodes reports whether expanded weights of type t keep their stored
// bytes: the llama.cpp emulation multiplies their integer codes (orderQ0).
func keepCodes(t graph.Type) bool {
	switch t {
	case graph.Q4_0, graph.Q4_1, graph.Q5_0, graph.Q5_1, graph.Q8_0, graph.Q2_K, graph.Q3_K, graph.Q4_K, graph.Q5_K, graph.Q6_K:
		return true
	}
	return false
}

func (fm *Model) expandAtLoad(budget int64) {
	var ws []*weight
	seen := map[*weight]bool{}
	add := func(w *weight) {
		if w != nil && w.f32 == nil && !seen[w] && !(fm.activations && (halfRows(w) || keepCodes(w.typ))) {
			seen[w] = true
			ws = append(ws, w)
		}
	}
	add(fm.tokEmbd)
	add(fm.output)
	for i := range fm.layers {
		l := &fm.layers[i]
		for _, w := range []*weight{l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down} {
			add(w)
		}
		if l.moe != nil {
			for _, w := range l.moe.weights() {
				add(w)
			}
		}
	}
	var total int64
	for _, w := range ws {
		total += 4 * int64(w.rows) * int64(w.cols)
	}
	if len(ws) == 0 || total > budget {
		return
	}
	parallelFor(defaultThreads(0), len(ws), func(_, i int) {
		w := ws[i]
		f := make([]float32, w.rows*w.cols)
		w.dequantRows(f, 0, w.rows)
		w.f32 = f
		if !keepCodes(w.typ) {
			w.raw = nil
		}
	})
}

// ropeFrequencies returns the per-pair inverse frequencies θ_i =
// base^(-2i/dims), divided by llama3-style frequency factors (from a
// rope_freqs tensor or computed from the scaling parameters) or by a linear
// scaling factor.
func ropeFrequencies(base float64, dims int, sc *graph.RopeScaling, factors []float32) ([]float64, error) {
	inv := make([]float64, dims/2)
	for i := range inv {
		inv[i] = math.Pow(base, -float64(2*i)/float64(dims))
	}
	if factors != nil {
		for i := range inv {
			if factors[i] == 0 {
				return nil, fmt.Errorf("rope_freqs.weight[%d] is zero", i)
			}
			inv[i] /= float64(factors[i])
		}
		return inv, nil
	}
	if sc == nil || sc.Type == "" || sc.Type == "none" || sc.Type == "default" {
		return inv, nil
	}
	switch sc.Type {
	case "linear":
		if sc.Factor <= 0 {
			return nil, fmt.Errorf("linear RoPE scaling with factor %v", sc.Factor)
		}
		for i := range inv {
			inv[i] /= sc.Factor
		}
	case "llama3":
		factor, low, high, old := sc.Factor, sc.LowFreqFactor, sc.HighFreqFactor, float64(sc.OriginalContext)
		if factor == 0 {
			factor = 8
		}
		if low == 0 {
			low = 1
		}
		if high == 0 {
			high = 4
		}
		if old == 0 {
			old = 8192
		}
		if high <= low {
			return nil, fmt.Errorf("llama3 RoPE scaling: high_freq_factor %v <= low_freq_factor %v", high, low)
		}
		for i := range inv {
			wavelen := 2 * math.Pi / inv[i]
			switch {
			case wavelen < old/high:
			case wavelen > old/low:
				inv[i] /= factor
			default:
				smooth := (old/wavelen - low) / (high - low)
				inv[i] *= (1-smooth)/factor + smooth
			}
		}
	default:
		return nil, fmt.Errorf("RoPE scaling type %q is not supported by the forward pass", sc.Type)
	}
	return inv, nil
}
