package convert

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// openModel reads a checkpoint: a GGUF file, an mlx-lm directory or an HF
// directory. tokenizerPre overrides the BPE pre-tokenizer name of HF/MLX
// tokenizers whose split regexes are not recognised (--tokenizer-pre).
func openModel(path string, tokenizerPre ...string) (*graph.Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() && !isGGUF(path) {
		if isSafetensors(path) {
			return nil, fmt.Errorf("%s: a lone safetensors file has no architecture (no config.json) and cannot be converted: give the checkpoint directory that holds it with its config.json and tokenizer", path)
		}
		return nil, fmt.Errorf("%s: not a GGUF file (inputs are GGUF files and HF or MLX checkpoint directories)", path)
	}
	var opt formats.Options
	if len(tokenizerPre) > 0 {
		opt.TokenizerPre = tokenizerPre[0]
	}
	return formats.OpenOptions(path, opt)
}

// checkArch refuses architectures quantbridge cannot convert.
func checkArch(m *graph.Model) error {
	_, err := arch.ForModel(m)
	return err
}

// rotaryPerm returns the Q/K row permutation a llama tensor needs when it
// crosses between GGUF (interleaved rows) and HF/MLX (half-split rows), or
// nil. toGGUF selects the direction.
func rotaryPerm(m *graph.Model, name string, toGGUF bool) *perm {
	if a, ok := arch.Lookup(m.Arch); !ok || !a.PermuteQK {
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

// normOffset returns what a tensor of m gets added when it crosses into
// GGUF (toGGUF) or out of it: Gemma's converter writes RMSNorm weights as
// w+1 (Arch.NormOffsetOf), HF and MLX keep w. It returns 0 when the tensor
// does not cross formats. round is the dtype the converter's addition
// rounds to: it adds in the source dtype, which prepare_tensors has
// widened to float32 unless it was F16 already.
func normOffset(m *graph.Model, t *graph.Tensor, toGGUF bool) (add float32, round graph.Type) {
	a, ok := arch.Lookup(m.Arch)
	if !ok || toGGUF == (m.Format == graph.FormatGGUF) {
		return 0, 0
	}
	off := a.NormOffsetOf(t.Name)
	if off == 0 {
		return 0, 0
	}
	if !toGGUF {
		return -off, 0
	}
	if t.Type == graph.F16 {
		return off, graph.F16
	}
	return off, 0
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
// dirTensor is one tensor of a directory output and how it is produced.
type dirTensor struct {
	nt     *graph.Tensor // the output tensor (type, shape, affine settings)
	src    *graph.Tensor
	sp     *spec // computed from src; nil for an exact copy or repack
	copy   bool  // src's bytes unchanged (all parts)
	repack bool  // GGUF legacy block type → MLX affine group 32, exactly
	mxfp4  bool  // MXFP4 blocks (GGUF, or an MLX mxfp4 source) → MLX mxfp4, exactly
	perm   *perm
	from   string
	to     string
	// written is set by the writer for tensors that go into the output
	// (mlx-lm leaves out a tied output.weight).
	written bool
}

// convertToDir writes m as an MLX (default) or HF checkpoint directory.
func convertToDir(ctx context.Context, m *graph.Model, in, out string, opt Options) (*Summary, error) {
	start := time.Now()
	if err := checkArch(m); err != nil {
		return nil, err
	}
	to := "mlx"
	var mt MLXTarget
	var dtype *graph.Type // nil: each tensor's own float type
	switch t := opt.Target.(type) {
	case MLXTarget:
		mt, dtype = t, t.Dtype
	case HFTarget:
		to, dtype = "hf", t.Dtype
	default:
		return nil, fmt.Errorf("convertToDir: target %T", opt.Target)
	}
	if err := checkDirOutput(in, out, opt.Force); err != nil {
		return nil, err
	}
	bits, gs := mt.Bits, mt.groupSize()
	// A GGUF source's MXFP4 tensors are kept as MLX mxfp4 modules (the
	// same values) when neither --bits, --q-mode nor --dtype is given.
	keepMXFP4 := to == "mlx" && bits == 0 && dtype == nil && !mt.mxfp4() && m.Format == graph.FormatGGUF
	if to == "mlx" && bits == 0 && dtype == nil && !mt.mxfp4() && m.Format == graph.FormatGGUF {
		var note string
		bits, note = ggufMLXBits(m)
		if bits > 0 {
			gs = 32
		}
		if note != "" {
			opt.note("%s: %s", in, note)
		}
	}
	var ap *quantize.AffineParams
	var q *mlx.Quantization
	var err error
	if mt.mxfp4() {
		bits, gs = 4, 32
		ap = &quantize.AffineParams{Bits: 4, GroupSize: 32} // what the quant_predicate sees
		q = &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: mlx.ModeMXFP4}
	} else if bits > 0 {
		ap = &quantize.AffineParams{Bits: bits, GroupSize: gs, Rounding: mt.Rounding}
		if err := ap.Validate(); err != nil {
			return nil, err
		}
		q = &mlx.Quantization{GroupSize: gs, Bits: bits, Mode: mlx.ModeAffine}
	}
	// An MLX source converted with neither --bits nor --dtype keeps its
	// quantized tensors and their settings.
	keepQuant := to == "mlx" && bits == 0 && dtype == nil && m.Format == graph.FormatMLX
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
	lossy, dequantized := 0, 0
	var dts []*dirTensor
	for _, t := range m.Tensors {
		if arch.Derived(t.Name) {
			continue // GGUF-only, derived from the RoPE config
		}
		var p *perm
		if fromGGUF {
			p = rotaryPerm(m, t.Name, false)
		}
		srcQuant := t.Type.IsQuantized()
		dt := &dirTensor{src: t, perm: p, from: t.Type.String(), nt: &graph.Tensor{Name: t.Name, Shape: t.Shape}}
		if t.Type == graph.MLXAffine && t.Affine != nil {
			dt.from = affineName(t.Affine.Bits, t.Affine.GroupSize)
		}
		sp := &spec{name: t.Name, src: t, perm: p, check: true}
		sp.add, sp.addRound = normOffset(m, t, false)
		switch {
		case keepQuant && t.Type == graph.MLXAffine:
			*dt.nt = *t
			dt.copy = true
		case (keepQuant || keepMXFP4) && t.Type == graph.MXFP4 && len(t.Shape) >= 2:
			*dt.nt = *t
			dt.mxfp4 = true
			if keepMXFP4 {
				if q == nil {
					q = &mlx.Quantization{GroupSize: 32, Bits: 4, Mode: mlx.ModeMXFP4}
				}
				if g := q.Global(); g.Mode != mlx.ModeMXFP4 {
					a, _ := arch.Lookup(m.Arch)
					hfName := t.Name
					if a != nil {
						hfName, _ = a.HFName(t.Name, true)
					}
					q.Layers = append(q.Layers, mlx.LayerQuantization{Path: strings.TrimSuffix(hfName, ".weight"), Quantize: true,
						Params: &mlx.LayerParams{GroupSize: 32, Bits: 4, Mode: mlx.ModeMXFP4}})
				}
			}
		case mt.mxfp4() && mlx.Quantizable(t.Name, t.Shape, 32):
			st := floatTypeOf(t)
			if dtype != nil {
				st = *dtype
			}
			map_, mgs, quantized := mlxModuleQuant(m, t, ap, 32, q)
			if !quantized {
				*dt.nt = *t
				dt.copy = t.Type == st && p == nil
				if !dt.copy {
					sp.to, sp.check = st, false
					dt.sp = sp
					dt.nt.Type = st
				}
				break
			}
			if t.Type == graph.MXFP4 && sp.add == 0 && map_.Bits == 4 && mgs == 32 {
				// Already mxfp4 values: copied (MLX's quantizer is not
				// idempotent on them: a group whose largest code is 4
				// gets a smaller scale and clips).
				*dt.nt = *t
				dt.mxfp4 = true
				break
			}
			if srcQuant {
				lossy++
			}
			dt.sp = sp
			if map_.Bits != 4 || mgs != 32 {
				// the predicate's own parameters: affine, as
				// to_quantized(**params) defaults the mode
				sp.to, sp.affine, sp.scaleType = graph.MLXAffine, map_, st
				sp.toName = affineName(map_.Bits, mgs)
				dt.nt.Type = graph.MLXAffine
				dt.nt.Affine = &graph.Affine{Bits: map_.Bits, GroupSize: mgs, ScaleType: st}
				break
			}
			sp.to, sp.mlxFP4, sp.scaleType, sp.toName = graph.MXFP4, true, st, "MLX_MXFP4"
			dt.nt.Type = graph.MXFP4
		case ap != nil && mlx.Quantizable(t.Name, t.Shape, gs):
			st := floatTypeOf(t)
			if dtype != nil {
				st = *dtype
			}
			ap, gs, quantized := mlxModuleQuant(m, t, ap, gs, q)
			if !quantized {
				*dt.nt = *t
				dt.copy = t.Type == st && p == nil
				if !dt.copy {
					sp.to, sp.check = st, false
					dt.sp = sp
					dt.nt.Type = st
				}
				break
			}
			a := t.Affine
			if t.Type == graph.MLXAffine && p == nil && sp.add == 0 && a != nil && a.Bits == ap.Bits && a.GroupSize == gs && a.ScaleType == st {
				*dt.nt = *t // already quantized this way: copy exactly
				dt.copy = true
				break
			}
			if bits, ok := quantize.RepackableGGUF(t.Type); ok && bits == ap.Bits && gs == 32 && st == graph.F16 {
				// A GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 block is an MLX affine
				// group of 32 with F16 scale and bias: no float round trip.
				dt.repack = true
				dt.nt.Type = graph.MLXAffine
				dt.nt.Affine = &graph.Affine{Bits: bits, GroupSize: 32, ScaleType: graph.F16}
				break
			}
			if srcQuant {
				lossy++
			}
			sp.to, sp.affine, sp.scaleType = graph.MLXAffine, ap, st
			sp.toName = affineName(ap.Bits, gs)
			dt.sp = sp
			dt.nt.Type = graph.MLXAffine
			dt.nt.Affine = &graph.Affine{Bits: ap.Bits, GroupSize: gs, ScaleType: st}
		default:
			ft := floatTypeOf(t)
			if dtype != nil {
				ft = *dtype
			}
			if t.Type == ft && p == nil && sp.add == 0 {
				*dt.nt = *t
				dt.copy = true
				break
			}
			if srcQuant {
				dequantized++
			}
			sp.to = ft
			sp.check = false
			dt.sp = sp
			dt.nt.Type = ft
		}
		dt.to = dt.nt.Type.String()
		if dt.nt.Type == graph.MLXAffine {
			dt.to = affineName(dt.nt.Affine.Bits, dt.nt.Affine.GroupSize)
		}
		if dt.nt.Type == graph.MXFP4 {
			dt.to = "MLX_MXFP4"
		}
		dts = append(dts, dt)
		tm.Tensors = append(tm.Tensors, dt.nt)
	}
	if q != nil && !keepQuant {
		sortLayerEntries(q.Layers)
	}
	if lossy > 0 {
		what := "MLX affine"
		if mt.mxfp4() {
			what = "MLX mxfp4"
		}
		opt.warn("requantizing %d already-quantized tensors to %s: the source quantization's loss stays and the new one adds to it", lossy, what)
	}
	if fromGGUF && dequantized > 0 {
		opt.warn("%s: %d GGUF quantized tensors are dequantized (their values are kept as well as the output dtype allows, not the original weights)", in, dequantized)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sums []TensorSummary
	if to == "hf" {
		sums, err = writeHFDir(ctx, out, tm, dts, &opt)
	} else {
		sums, err = writeMLXDir(ctx, out, tm, dts, q, &opt)
	}
	if err != nil {
		return nil, err
	}
	s := &Summary{Input: in, Output: out, Type: strings.ToUpper(to), Tensors: sums, Seconds: time.Since(start).Seconds()}
	if q != nil {
		g := q.Global()
		s.Type = fmt.Sprintf("MLX %d-bit g%d", g.Bits, g.GroupSize)
		if g.Mode == mlx.ModeMXFP4 {
			s.Type = "MLX mxfp4"
		}
	}
	var elems int64
	for _, ts := range sums {
		s.TotalBytes += ts.Bytes
	}
	for _, dt := range dts {
		if dt.written {
			elems += dt.src.Elements()
		}
	}
	if elems > 0 {
		s.BitsPerWeight = float64(s.TotalBytes) * 8 / float64(elems)
	}
	return s, nil
}

func affineName(bits, gs int) string { return fmt.Sprintf("MLX_AFFINE_%dBIT_G%d", bits, gs) }

// ggufMLXBits chooses the MLX quantization of a GGUF model converted with
// neither bits nor dtype: when its quantized tensors are all of one legacy
// block type that MLX affine quantization with group size 32 holds exactly
// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), that type's bits; otherwise 0 (written
// unquantized). MXFP4 tensors are not counted: they become MLX mxfp4
// modules whatever the others become. note says what was chosen ("" for a model with no
// quantized tensors).
func ggufMLXBits(m *graph.Model) (bits int, note string) {
	n := map[graph.Type]int{}
	for _, t := range m.Tensors {
		if t.Type.IsQuantized() && t.Type != graph.MXFP4 { // MXFP4 stays mxfp4 (keepMXFP4)
			n[t.Type]++
		}
	}
	types := sortedTypes(n)
	if len(types) == 0 {
		return 0, ""
	}
	if b, ok := quantize.RepackableGGUF(types[0]); ok && len(types) == 1 {
		return b, fmt.Sprintf("no --bits: its %d quantized tensors are all %v, repacked exactly as MLX %d-bit affine quantization with group size 32 (--dtype f16, bf16 or f32 writes an unquantized model)",
			n[types[0]], types[0], b)
	}
	var list []string
	for _, t := range types {
		list = append(list, fmt.Sprintf("%d %v", n[t], t))
	}
	note = fmt.Sprintf("no --bits: its quantized tensors (%s) are not all of one type that MLX holds exactly (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0): written unquantized",
		strings.Join(list, ", "))
	for _, t := range types {
		if b, ok := quantize.RepackableGGUF(t); ok {
			note += fmt.Sprintf(" (--bits %d --group-size 32 repacks the %v tensors exactly and requantizes the others)", b, t)
			break
		}
	}
	return 0, note
}
