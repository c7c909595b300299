package convert

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// openModel reads a checkpoint: a GGUF file, an mlx-lm directory or an HF
// directory.
func openModel(path string) (*graph.Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() {
		if isGGUF(path) {
			return gguf.ReadModel(path)
		}
		return nil, fmt.Errorf("%s: not a GGUF file (inputs are GGUF files and HF or MLX checkpoint directories)", path)
	}
	if mlx.IsMLXDir(path) {
		return mlx.ReadDir(path)
	}
	return hf.ReadDir(path)
}

// checkArch refuses architectures quantbridge cannot convert.
func checkArch(m *graph.Model) error {
	for _, a := range graph.SupportedArchs() {
		if m.Arch == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", m.Path, &graph.UnsupportedArchError{Arch: m.Arch})
}

// rotaryPerm returns the Q/K row permutation a llama tensor needs when it
// crosses between GGUF (interleaved rows) and HF/MLX (half-split rows), or
// nil. toGGUF selects the direction.
func rotaryPerm(m *graph.Model, name string, toGGUF bool) *perm {
	if m.Arch != "llama" {
		return nil
	}
	_, l := suffixOf(name)
	var heads int
	switch l {
	case "attn_q.weight", "attn_q.bias":
		heads = m.Params.Heads
	case "attn_k.weight", "attn_k.bias":
		heads = m.Params.KVHeads
		if heads == 0 {
			heads = m.Params.Heads
		}
	default:
		return nil
	}
	return &perm{heads: heads, inverse: !toGGUF}
}

// suffixOf splits "blk.N.rest" into N's prefix and rest ("" and the name
// for non-block tensors).
func suffixOf(name string) (string, string) {
	if graph.LayerIndex(name) < 0 {
		return "", name
	}
	i := strings.IndexByte(name[len("blk."):], '.') + len("blk.")
	return name[:i+1], name[i+1:]
}

// floatTypeOf is the plain float type a tensor is written as when it is
// not quantized and no --dtype was given: its own type if that is F32,
// F16 or BF16, the scale type of an MLX affine tensor, else F16.
func floatTypeOf(t *graph.Tensor) graph.Type {
	switch {
	case plainFloat(t.Type):
		return t.Type
	case t.Type == graph.MLXAffine && t.Affine != nil && plainFloat(t.Affine.ScaleType):
		return t.Affine.ScaleType
	}
	return graph.F16
}

func parseRounding(s string) (quantize.Rounding, error) {
	switch strings.ToLower(s) {
	case "", "cpu":
		return quantize.RoundCPU, nil
	case "gpu", "metal":
		return quantize.RoundGPU, nil
	}
	return 0, fmt.Errorf("unknown MLX rounding %q (cpu or gpu)", s)
}

// convertToDir writes m as an MLX (default) or HF checkpoint directory.
func convertToDir(ctx context.Context, m *graph.Model, in, out string, opt Options) (*Summary, error) {
	start := time.Now()
	if err := checkArch(m); err != nil {
		return nil, err
	}
	to := strings.ToLower(opt.To)
	switch to {
	case "":
		to = "mlx"
	case "mlx", "hf":
	default:
		return nil, fmt.Errorf("--to %q: want mlx or hf", opt.To)
	}
	if to == "hf" && opt.Bits > 0 {
		return nil, fmt.Errorf("an HF checkpoint holds no quantized tensors: use --to mlx for --bits/INT types")
	}
	if opt.Dtype != 0 && !plainFloat(opt.Dtype) {
		return nil, fmt.Errorf("--dtype %v: want F16, BF16 or F32", opt.Dtype)
	}
	gs := opt.GroupSize
	if gs == 0 {
		gs = 64
	}
	rounding, err := parseRounding(opt.Rounding)
	if err != nil {
		return nil, err
	}
	var ap *quantize.AffineParams
	var q *mlx.Quantization
	if opt.Bits > 0 {
		ap = &quantize.AffineParams{Bits: opt.Bits, GroupSize: gs, Rounding: rounding}
		if err := ap.Validate(); err != nil {
			return nil, err
		}
		q = &mlx.Quantization{GroupSize: gs, Bits: opt.Bits, Mode: mlx.ModeAffine}
	}
	// An MLX source converted with neither --bits nor --dtype keeps its
	// quantized tensors and their settings.
	keepQuant := to == "mlx" && opt.Bits == 0 && opt.Dtype == 0 && m.Format == graph.FormatMLX
	if keepQuant && m.Config != nil {
		if q, err = mlx.ParseQuantization(m.Config); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
	}

	tm := &graph.Model{Format: graph.FormatMLX, Path: out, Arch: m.Arch, Params: m.Params, Tokenizer: m.Tokenizer, Files: m.Files}
	if to == "hf" {
		tm.Format = graph.FormatHF
	}
	if m.Config != nil {
		tm.Config = make(map[string]any, len(m.Config))
		for k, v := range m.Config {
			tm.Config[k] = v
		}
		if q == nil {
			delete(tm.Config, "quantization")
			delete(tm.Config, "quantization_config")
		}
	}
	fromGGUF := m.Format == graph.FormatGGUF
	if fromGGUF && tm.Params.RopeScaling == nil {
		// llama3 RoPE scaling lives in GGUF only as rope_freqs.weight.
		rs, exact, err := ropeScalingFromFreqs(m)
		if err != nil {
			return nil, err
		}
		if rs != nil && !exact {
			opt.warn("%s: rope_freqs.weight is not exactly llama3 RoPE scaling with any parameters tried; config.json gets the closest (factor %v, original context %d, low %v, high %v)",
				in, rs.Factor, rs.OriginalContext, rs.LowFreqFactor, rs.HighFreqFactor)
		}
		tm.Params.RopeScaling = rs
	}
	lossy := 0
	var sums []TensorSummary
	var elems, bytes int64
	for _, t := range m.Tensors {
		if t.Name == "rope_freqs.weight" {
			continue // GGUF-only, derived from the RoPE config
		}
		var p *perm
		if fromGGUF {
			p = rotaryPerm(m, t.Name, false)
		}
		srcQuant := t.Type.IsQuantized()
		nt := &graph.Tensor{Name: t.Name, Shape: t.Shape}
		sp := spec{name: t.Name, src: t, perm: p, check: true}
		switch {
		case keepQuant && t.Type == graph.MLXAffine:
			*nt = *t
		case ap != nil && mlx.Quantizable(t.Name, t.Shape, gs):
			st := opt.Dtype
			if st == 0 {
				st = floatTypeOf(t)
			}
			a := t.Affine
			if t.Type == graph.MLXAffine && p == nil && a != nil && a.Bits == ap.Bits && a.GroupSize == gs && a.ScaleType == st {
				*nt = *t // already quantized this way: copy exactly
				break
			}
			if srcQuant {
				lossy++
			}
			sp.to, sp.affine, sp.scaleType = graph.MLXAffine, ap, st
			sp.toName = fmt.Sprintf("MLX_AFFINE_%dBIT_G%d", ap.Bits, gs)
			j, err := sp.build()
			if err != nil {
				return nil, err
			}
			lj := newLazyJob(ctx, j, opt.SlabBytes)
			nt.Type = graph.MLXAffine
			nt.Affine = &graph.Affine{Bits: ap.Bits, GroupSize: gs, ScaleType: st, Scales: lj.part(1), Biases: lj.part(2)}
			nt.Data = lj.part(0)
		default:
			dt := opt.Dtype
			if dt == 0 {
				dt = floatTypeOf(t)
			}
			if t.Type == dt && p == nil {
				*nt = *t
				break
			}
			sp.to = dt
			sp.check = false
			j, err := sp.build()
			if err != nil {
				return nil, err
			}
			nt.Type = dt
			nt.Data = newLazyJob(ctx, j, opt.SlabBytes).part(0)
		}
		tm.Tensors = append(tm.Tensors, nt)
		to := nt.Type.String()
		if nt.Type == graph.MLXAffine {
			to = fmt.Sprintf("MLX_AFFINE_%dBIT_G%d", nt.Affine.Bits, nt.Affine.GroupSize)
		}
		b := nt.Bytes()
		sums = append(sums, TensorSummary{Name: t.Name, From: t.Type.String(), To: to, Bytes: b})
		elems += t.Elements()
		bytes += b
	}
	if lossy > 0 {
		opt.warn("requantizing %d already-quantized tensors to MLX affine: the source quantization's loss stays and the new one adds to it", lossy)
	}
	if fromGGUF {
		for _, t := range m.Tensors {
			if t.Type.IsQuantized() {
				opt.warn("%s: GGUF quantized tensors are dequantized (their values are kept as well as %s allows, not the original weights)", in, "the output dtype")
				break
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if to == "hf" {
		err = hf.WriteDir(out, tm, hf.WriteOptions{Overwrite: opt.Force})
	} else {
		err = mlx.WriteDir(out, tm, q, mlx.WriteOptions{Workers: opt.jobs(), Overwrite: opt.Force})
	}
	if err != nil {
		return nil, err
	}
	s := &Summary{Input: in, Output: out, Type: strings.ToUpper(to), Tensors: sums, TotalBytes: bytes,
		Seconds: time.Since(start).Seconds()}
	if q != nil {
		g := q.Global()
		s.Type = fmt.Sprintf("MLX %d-bit g%d", g.Bits, g.GroupSize)
	}
	if elems > 0 {
		s.BitsPerWeight = float64(bytes) * 8 / float64(elems)
	}
	return s, nil
}
