package convert

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/jsonnum"
)

// ropeFreqsName is the tensor llama.cpp's converter adds for llama3 RoPE
// scaling (MODEL_TENSOR.ROPE_FREQS).
const ropeFreqsName = "rope_freqs.weight"

// Llama3Rope are the llama3 RoPE scaling parameters as convert_hf_to_gguf
// reads them (LlamaModel.generate_extra_tensors): the RoPE base, the
// rotary dimension (head_dim, else hidden_size // num_attention_heads)
// and the rope_scaling values, with the converter's defaults.
type Llama3Rope struct {
	Base           float64
	Dim            int
	Factor         float64
	LowFreqFactor  float64
	HighFreqFactor float64
	OriginalCtx    float64
}

// torchPowLanes is the float32 lanes of PyTorch's widest CPU vector
// (AVX-512: Vectorized<float>::size() == 16). Its binary kernels run
// blocks of 2*lanes elements through SLEEF and the remainder through
// std::pow (glibc powf).
const torchPowLanes = 16

// RopeFreqs returns rope_freqs.weight: one factor per rotary frequency,
// computed as the converter computes it in torch float32 on x86 CPUs.
// The steps and their roundings:
//
//	freqs    = 1 / (f32(base) ** (arange(0, dim, 2, f32) / dim))   SLEEF powf for whole 32-blocks, powf for the rest
//	wavelen  = f32(1/freq) * f32(2π)                                Python scalar / tensor is reciprocal() * scalar
//	wavelen < f32(orig/high) → 1; wavelen > f32(orig/low) → f32(factor)   comparisons in float32
//	smooth   = (f32(1/wavelen)*f32(orig) - f32(low)) / f32(high-low)
//	factor_i = 1 / ((1 - smooth)/f32(factor) + smooth)
func (r Llama3Rope) RopeFreqs() ([]float32, error) {
	if r.Dim <= 0 || r.Dim > 1<<20 {
		return nil, fmt.Errorf("llama3 rope scaling: rotary dimension %d", r.Dim)
	}
	if r.LowFreqFactor == 0 || r.HighFreqFactor == 0 {
		return nil, fmt.Errorf("llama3 rope scaling: low_freq_factor %v and high_freq_factor %v must be nonzero", r.LowFreqFactor, r.HighFreqFactor)
	}
	wave := r.wavelengths()
	lowWave := float32(r.OriginalCtx / r.LowFreqFactor)
	highWave := float32(r.OriginalCtx / r.HighFreqFactor)
	orig, low, factor := float32(r.OriginalCtx), float32(r.LowFreqFactor), float32(r.Factor)
	span := float32(r.HighFreqFactor - r.LowFreqFactor)
	out := make([]float32, len(wave))
	for i, wavelen := range wave {
		switch {
		case wavelen < highWave:
			out[i] = 1
		case wavelen > lowWave:
			out[i] = factor
		default:
			smooth := (mul32(1/wavelen, orig) - low) / span
			out[i] = 1 / ((1-smooth)/factor + smooth)
		}
	}
	return out, nil
}

// wavelengths returns 2π/freq for each rotary frequency, rounded as the
// converter's torch code rounds them.
func (r Llama3Rope) wavelengths() []float32 {
	n := (r.Dim + 1) / 2
	base := float32(r.Base)
	vec := n - n%(2*torchPowLanes)
	twoPi := float32(2 * math.Pi)
	out := make([]float32, n)
	for i := range out {
		x := float32(2*i) / float32(r.Dim)
		var p float32
		if i < vec {
			p = sleefPowf(base, x)
		} else {
			p = glibcPowf(base, x)
		}
		freq := 1 / p
		out[i] = mul32(1/freq, twoPi)
	}
	return out
}

// InferLlama3Rope recovers llama3 RoPE scaling parameters from a GGUF's
// rope_freqs.weight values, the RoPE base and the rotary dimension (the
// inverse of RopeFreqs, for writing config.json's rope_scaling). The
// factor is the largest value; low_freq_factor is taken as 1 (every
// published llama3 config) and high_freq_factor and the original context
// are solved from the smoothed entries (4 and the usual 8192 when there
// are too few). exact reports whether RopeFreqs of the result reproduces
// every value bit for bit; when no candidate does, the closest one is
// returned with exact false.
func InferLlama3Rope(freqs []float32, base float64, dim int) (r Llama3Rope, exact bool, err error) {
	if dim <= 0 || (dim+1)/2 != len(freqs) {
		return r, false, fmt.Errorf("rope_freqs.weight has %d values, the rotary dimension %d needs %d", len(freqs), dim, (dim+1)/2)
	}
	if base == 0 {
		base = 10000
	}
	factor := float32(1)
	for _, v := range freqs {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return r, false, fmt.Errorf("rope_freqs.weight holds %v, not a llama3 scaling factor", v)
		}
		factor = max(factor, v)
	}
	proto := Llama3Rope{Base: base, Dim: dim, Factor: float64(factor), LowFreqFactor: 1, HighFreqFactor: 4, OriginalCtx: 8192}
	if factor == 1 {
		proto.Factor = 8 // no entry shows it; the converter's default
	}
	wave := proto.wavelengths()
	// Smoothed entries: s = (1/v - 1/f) / (1 - 1/f) = (orig/λ - low)/(high - low).
	type pt struct{ invWave, s float64 }
	var pts []pt
	maxOne, minFactor := 0.0, math.Inf(1)
	for i, v := range freqs {
		switch {
		case v == 1:
			maxOne = max(maxOne, float64(wave[i]))
		case v == factor:
			minFactor = min(minFactor, float64(wave[i]))
		default:
			f := float64(factor)
			pts = append(pts, pt{1 / float64(wave[i]), (1/float64(v) - 1/f) / (1 - 1/f)})
		}
	}
	var cands []Llama3Rope
	add := func(high, orig float64) {
		if high > 1 && orig > 0 && !math.IsInf(orig, 0) && !math.IsNaN(orig) {
			c := proto
			c.HighFreqFactor, c.OriginalCtx = high, orig
			cands = append(cands, c)
		}
	}
	if len(pts) >= 2 {
		// s_j (high-1) = orig/λ_j - 1 for the first and last smoothed entries.
		a, b := pts[0], pts[len(pts)-1]
		if a.invWave != b.invWave {
			orig := (b.s - a.s) / (b.s*a.invWave - a.s*b.invWave)
			high := (orig*a.invWave-1)/a.s + 1
			add(math.Round(high*1000)/1000, math.Round(orig))
		}
	}
	for _, high := range []float64{4, 2, 3, 8} {
		if len(pts) > 0 {
			p := pts[len(pts)/2]
			add(high, math.Round((1+p.s*(high-1))/p.invWave))
			continue
		}
		// No smoothed entry: orig/high > every wavelength of a 1 and orig
		// < every wavelength of the factor (low = 1).
		lo, hi := maxOne*high, minFactor
		orig := 8192.0
		if !(orig > lo && orig < hi) {
			orig = math.Exp2(math.Ceil(math.Log2(max(lo, 1) + 1)))
			if !(orig < hi) {
				orig = math.Floor(lo) + 1
			}
		}
		add(high, orig)
	}
	best, bestErr := -1, math.Inf(1)
	for i, c := range cands {
		got, err := c.RopeFreqs()
		if err != nil {
			continue
		}
		worst := 0.0
		for j := range got {
			worst = max(worst, math.Abs(float64(got[j])-float64(freqs[j]))/float64(freqs[j]))
		}
		if worst == 0 {
			return c, true, nil
		}
		if worst < bestErr {
			best, bestErr = i, worst
		}
	}
	if best < 0 {
		return proto, false, nil
	}
	return cands[best], false, nil
}

// llama3Rope returns the llama3 scaling parameters of an HF/MLX config the
// way the converter finds them, or ok false when the config asks for no
// llama3 scaling. With no raw config it uses m.Params.
func llama3Rope(m *graph.Model) (r Llama3Rope, ok bool, err error) {
	if m.Config == nil {
		rs := m.Params.RopeScaling
		if rs == nil || rs.Type != "llama3" {
			return r, false, nil
		}
		dim := m.Params.HeadDim
		if dim == 0 && m.Params.Heads > 0 {
			dim = m.Params.Embedding / m.Params.Heads
		}
		r = Llama3Rope{Base: m.Params.RopeBase, Dim: dim, Factor: rs.Factor, LowFreqFactor: rs.LowFreqFactor,
			HighFreqFactor: rs.HighFreqFactor, OriginalCtx: float64(rs.OriginalContext)}
		if r.Base == 0 {
			r.Base = 10000
		}
		return r, true, nil
	}
	hp := map[string]any{}
	for k, v := range m.Config {
		hp[k] = v
	}
	if tc, ok := m.Config["text_config"].(map[string]any); ok {
		for k, v := range tc {
			hp[k] = v
		}
	}
	// TextModel.__init__: rope_parameters (or rope_scaling) with the
	// global theta, "type" and original context mirrored into it.
	rp := map[string]any{}
	src, _ := hp["rope_parameters"].(map[string]any)
	if src == nil {
		src, _ = hp["rope_scaling"].(map[string]any)
	}
	for k, v := range src {
		rp[k] = v
	}
	_, full := rp["full_attention"]
	_, sliding := rp["sliding_attention"]
	if !full && !sliding {
		if _, ok := rp["rope_theta"]; !ok {
			for _, k := range []string{"global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"} {
				if v, ok := hp[k]; ok && v != nil {
					rp["rope_theta"] = v
					break
				}
			}
		}
		if _, ok := rp["rope_type"]; !ok {
			if v, ok := rp["type"]; ok && v != nil {
				rp["rope_type"] = v
			}
		}
		if _, ok := rp["original_max_position_embeddings"]; !ok {
			if v, ok := hp["original_max_position_embeddings"]; ok && v != nil {
				rp["original_max_position_embeddings"] = v
			}
		}
	}
	if fa, ok := rp["full_attention"].(map[string]any); ok {
		rp = fa
	}
	if len(rp) == 0 {
		return r, false, nil
	}
	if rt, _ := rp["rope_type"].(string); strings.ToLower(rt) != "llama3" {
		return r, false, nil
	}
	num := func(key string, def float64) (float64, error) {
		v, ok := rp[key]
		if !ok {
			return def, nil
		}
		f, ok := jsonnum.Float(v)
		if !ok {
			return 0, fmt.Errorf("%s: config.json: rope scaling %q is %v, not a number", m.Path, key, v)
		}
		return f, nil
	}
	if r.Base, err = num("rope_theta", 10000); err != nil {
		return r, false, err
	}
	if r.Factor, err = num("factor", 8); err != nil {
		return r, false, err
	}
	if r.LowFreqFactor, err = num("low_freq_factor", 1); err != nil {
		return r, false, err
	}
	if r.HighFreqFactor, err = num("high_freq_factor", 4); err != nil {
		return r, false, err
	}
	if r.OriginalCtx, err = num("original_max_position_embeddings", 8192); err != nil {
		return r, false, err
	}
	if v, ok := jsonnum.Float(hp["head_dim"]); ok {
		r.Dim = int(v)
	} else {
		h, ok1 := jsonnum.Float(hp["hidden_size"])
		n, ok2 := jsonnum.Float(hp["num_attention_heads"])
		if !ok1 || !ok2 || n == 0 {
			return r, false, fmt.Errorf("%s: config.json: llama3 rope scaling needs head_dim or hidden_size and num_attention_heads", m.Path)
		}
		r.Dim = int(math.Floor(h / n))
	}
	return r, true, nil
}

// ropeFreqsTensor returns the rope_freqs.weight tensor the converter adds
// for m, or nil.
func ropeFreqsTensor(m *graph.Model) (*graph.Tensor, error) {
	if a, ok := arch.Lookup(m.Arch); !ok || !a.Llama3RopeFreqs {
		return nil, nil
	}
	r, ok, err := llama3Rope(m)
	if err != nil || !ok {
		return nil, err
	}
	f, err := r.RopeFreqs()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Path, err)
	}
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &graph.Tensor{Name: ropeFreqsName, Type: graph.F32, Shape: []int64{int64(len(f))}, Data: bytesSource(b)}, nil
}

// bytesSource is an in-memory graph.Source.
type bytesSource []byte

func (b bytesSource) Size() int64 { return int64(len(b)) }

func (b bytesSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, fmt.Errorf("offset %d out of range", off)
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ropeScalingFromFreqs returns the llama3 RoPE scaling that m's
// rope_freqs.weight encodes (nil when m has none), for writing it back to
// config.json; exact is false when no parameters reproduce the tensor.
func ropeScalingFromFreqs(m *graph.Model) (rs *graph.RopeScaling, exact bool, err error) {
	t := m.Tensor(ropeFreqsName)
	if a, ok := arch.Lookup(m.Arch); t == nil || !ok || !a.Llama3RopeFreqs {
		return nil, true, nil
	}
	rd, err := newReader(t)
	if err != nil {
		return nil, false, err
	}
	f, err := rd.load(0, rd.rows)
	if err != nil {
		return nil, false, err
	}
	dim := m.Params.RopeDims
	if dim == 0 {
		dim = m.Params.HeadDim
	}
	if dim == 0 && m.Params.Heads > 0 {
		dim = m.Params.Embedding / m.Params.Heads
	}
	r, exact, err := InferLlama3Rope(f, m.Params.RopeBase, dim)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", m.Path, err)
	}
	return &graph.RopeScaling{Type: "llama3", Factor: r.Factor, OriginalContext: int(r.OriginalCtx),
		LowFreqFactor: r.LowFreqFactor, HighFreqFactor: r.HighFreqFactor}, exact, nil
}
