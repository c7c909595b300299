package perplexity

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
)

// Fused projections (Phi-3) and longrope scaling.
//
// A fused attn_qkv weight holds the Q rows, then the K rows, then the V
// rows; a fused ffn_up holds the FFN gate rows and then the up rows
// (llama.cpp build_qkv and LLM_FFN_SWIGLU on one tensor; transformers
// Phi3Attention and Phi3MLP split them the same way). Every output row
// of a matrix product depends only on its weight row and the activations,
// so the fused products are evaluated as separate products over row
// ranges of the one tensor: splitFused gives the model views
// blk.N.attn_{q,k,v}.weight and blk.N.ffn_{gate,up}.weight over the
// fused tensors' bytes, and the forward pass is the llama one. The
// activations are rounded once per weight type, as llama.cpp rounds them
// once for the fused product.

// splitFused returns m with every fused projection of architecture a
// replaced by row views, or m itself when there is none. m is not
// modified.
func splitFused(m *graph.Model, a *arch.Arch) (*graph.Model, error) {
	if !a.Features.FusedQKV && !a.Features.FusedUp {
		return m, nil
	}
	p := m.Params
	var out []*graph.Tensor
	changed := false
	headDim := p.HeadDim
	if headDim == 0 && p.Heads > 0 {
		headDim = p.Embedding / p.Heads
	}
	kvHeads := p.KVHeads
	if kvHeads == 0 {
		kvHeads = p.Heads
	}
	for _, t := range m.Tensors {
		l := graph.LayerIndex(t.Name)
		if l < 0 {
			out = append(out, t)
			continue
		}
		pre := "blk." + strconv.Itoa(l) + "."
		switch {
		case a.Features.FusedQKV && t.Name == pre+"attn_qkv.weight" && m.Tensor(pre+"attn_q.weight") == nil:
			q, kv := int64(p.Heads*headDim), int64(kvHeads*headDim)
			if len(t.Shape) != 2 || q <= 0 || t.Shape[0] != q+2*kv {
				return nil, fmt.Errorf("%s: %s: shape %v, want [%d %d] (Q, K and V rows)", m.Path, t.Name, t.Shape, q+2*kv, p.Embedding)
			}
			for i, r := range [][3]int64{{0, q}, {q, kv}, {q + kv, kv}} {
				v, err := rowView(t, pre+[]string{"attn_q", "attn_k", "attn_v"}[i]+".weight", r[0], r[1])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", m.Path, err)
				}
				out = append(out, v)
			}
			changed = true
		case a.Features.FusedUp && t.Name == pre+"ffn_up.weight" && m.Tensor(pre+"ffn_gate.weight") == nil:
			ff := int64(p.FFN)
			if ff == 0 && len(t.Shape) == 2 {
				ff = t.Shape[0] / 2
			}
			if len(t.Shape) != 2 || ff <= 0 || t.Shape[0] != 2*ff {
				return nil, fmt.Errorf("%s: %s: shape %v, want [%d %d] (gate and up rows)", m.Path, t.Name, t.Shape, 2*ff, p.Embedding)
			}
			for i, name := range []string{"ffn_gate", "ffn_up"} {
				v, err := rowView(t, pre+name+".weight", int64(i)*ff, ff)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", m.Path, err)
				}
				out = append(out, v)
			}
			changed = true
		default:
			out = append(out, t)
		}
	}
	if !changed {
		return m, nil
	}
	c := *m
	c.Tensors = out
	if c.Params.FFN == 0 {
		if t := c.Tensor("blk.0.ffn_up.weight"); t != nil {
			c.Params.FFN = int(t.Shape[0])
		}
	}
	return &c, nil
}

// rowView is rows [r0, r0+n) of the 2-D tensor t as a tensor named name,
// reading t's bytes (and MLX scales and biases) in place.
func rowView(t *graph.Tensor, name string, r0, n int64) (*graph.Tensor, error) {
	if t.Data == nil {
		return nil, fmt.Errorf("tensor %s has no data", t.Name)
	}
	cols := t.Shape[1]
	v := &graph.Tensor{Name: name, Shape: []int64{n, cols}, Type: t.Type}
	section := func(s graph.Source, rowBytes int64) (graph.Source, error) {
		if s == nil || rowBytes <= 0 || s.Size() != rowBytes*t.Shape[0] {
			return nil, fmt.Errorf("tensor %s: data size does not match its shape %v", t.Name, t.Shape)
		}
		return io.NewSectionReader(s, r0*rowBytes, n*rowBytes), nil
	}
	var err error
	if t.Type == graph.MLXAffine {
		af := t.Affine
		if af == nil || af.Bits <= 0 || af.GroupSize <= 0 || cols%int64(af.GroupSize) != 0 || (cols*int64(af.Bits))%32 != 0 {
			return nil, fmt.Errorf("tensor %s: bad MLX affine parameters", t.Name)
		}
		st, err := graph.RowSize(af.ScaleType, cols/int64(af.GroupSize))
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		na := *af
		if na.Scales, err = section(af.Scales, st); err != nil {
			return nil, err
		}
		if na.Biases, err = section(af.Biases, st); err != nil {
			return nil, err
		}
		v.Affine = &na
		v.Data, err = section(t.Data, cols*int64(af.Bits)/32*4)
		return v, err
	}
	rb, err := graph.RowSize(t.Type, cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	v.Data, err = section(t.Data, rb)
	return v, err
}

// longrope holds the two frequency tables of longrope scaling and the
// rule choosing between them.
type longrope struct {
	short, long []float64 // inverse frequencies, factors applied
	// ggmlShort and ggmlLong build llama.cpp's float32 tables of a GGUF
	// file (the factors as rope_freqs, mscale as attn_factor).
	ggmlShort, ggmlLong *ggmlRope
	mscale              float32 // multiplies cos and sin (the attention factor)
	orig                int     // original context
	// padded: choose as llama.cpp does, by the context per sequence
	// rounded up to 256 (llama_context pads n_ctx_seq to 256); otherwise
	// as transformers does, by the sequence length.
	padded bool
}

// longropeOf returns m's longrope scaling: the factor lists from the
// GGUF tensors rope_factors_{long,short}.weight when present (what
// llama.cpp uses), else from Params; nil when the model has none.
func longropeOf(m *graph.Model, base float64, dims int) (*longrope, error) {
	rs := m.Params.RopeScaling
	lt, st := m.Tensor("rope_factors_long.weight"), m.Tensor("rope_factors_short.weight")
	if (rs == nil || rs.Type != "longrope") && lt == nil {
		return nil, nil
	}
	var short, long []float64
	if lt != nil && st != nil {
		for _, x := range []struct {
			t   *graph.Tensor
			dst *[]float64
		}{{lt, &long}, {st, &short}} {
			v, err := readVector(x.t, dims/2)
			if err != nil {
				return nil, err
			}
			*x.dst = make([]float64, len(v))
			for i, f := range v {
				(*x.dst)[i] = float64(f)
			}
		}
	} else if rs != nil {
		short, long = rs.ShortFactor, rs.LongFactor
	}
	if len(short) != dims/2 || len(long) != dims/2 {
		return nil, fmt.Errorf("longrope scaling has %d short and %d long factors, the rotary dimension %d needs %d", len(short), len(long), dims, dims/2)
	}
	lr := &longrope{mscale: 1, padded: m.Format == graph.FormatGGUF}
	if rs != nil {
		lr.orig = rs.OriginalContext
	}
	if lr.padded {
		// llama.cpp: n_ctx_orig_yarn and rope_attn_factor from the keys
		// (the attention factor is 1 without the key).
		if v, ok := m.Meta(m.Arch + ".rope.scaling.original_context_length"); ok {
			if n, ok := v.(uint32); ok {
				lr.orig = int(n)
			}
		}
		if v, ok := m.Meta(m.Arch + ".rope.scaling.attn_factor"); ok {
			if f, ok := v.(float32); ok {
				lr.mscale = f
			}
		} else if rs != nil && rs.AttnFactor != 0 {
			lr.mscale = float32(rs.AttnFactor)
		}
		if lr.orig == 0 {
			lr.orig = m.Params.ContextLength // llama.cpp: n_ctx_orig_yarn defaults to n_ctx_train
		}
	} else {
		// transformers _compute_longrope_parameters: attention_factor, else
		// derived from max_position_embeddings / original.
		if rs != nil && rs.AttnFactor != 0 {
			lr.mscale = float32(rs.AttnFactor)
		} else {
			lr.mscale = float32(arch.LongropeAttnFactor(m.Params.ContextLength, lr.orig))
		}
	}
	if lr.orig <= 0 {
		return nil, fmt.Errorf("longrope scaling without an original context length")
	}
	table := func(f []float64) ([]float64, error) {
		inv := make([]float64, dims/2)
		for i := range inv {
			if !(f[i] > 0) || math.IsInf(f[i], 0) {
				return nil, fmt.Errorf("longrope factor %d is %v", i, f[i])
			}
			inv[i] = math.Pow(base, -float64(2*i)/float64(dims)) / f[i]
		}
		return inv, nil
	}
	var err error
	if lr.short, err = table(short); err != nil {
		return nil, err
	}
	if lr.long, err = table(long); err != nil {
		return nil, err
	}
	if lr.padded {
		f32 := func(f []float64) []float32 {
			v := make([]float32, len(f))
			for i, x := range f {
				v[i] = float32(x) // the tensor's float32 values
			}
			return v
		}
		lr.ggmlShort = newGGMLRope(base, dims, nil, f32(short))
		lr.ggmlLong = newGGMLRope(base, dims, nil, f32(long))
		lr.ggmlShort.mscale, lr.ggmlLong.mscale = lr.mscale, lr.mscale
	}
	return lr, nil
}

// ropeFor returns the inverse frequencies and the cos/sin multiplier for
// a sequence of T tokens, and the builder of llama.cpp's float32 tables
// for them (nil: none).
func (m *Model) ropeFor(T int) ([]float64, float32, *ggmlRope) {
	lr := m.longrope
	if lr == nil {
		return m.invFreq, 1, m.ggmlRope
	}
	n := T
	if lr.padded {
		n = (T + 255) / 256 * 256
	}
	if n > lr.orig {
		return lr.long, lr.mscale, lr.ggmlLong
	}
	return lr.short, lr.mscale, lr.ggmlShort
}
