package convert

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
)

// GGML_QNT_VERSION, written as general.quantization_version.
const quantizationVersion = 2

// QuantizeKV rewrites a GGUF KV list the way llama_model_quantize_impl
// does: every input KV in order, then general.quantization_version and
// general.file_type set (an existing key is removed and the new value
// appended at the end, as gguf_set_val_u32 does), and the split.* keys
// removed.
//
// general.alignment is kept, as llama-quantize keeps it, and the output is
// laid out at that alignment (gguf.Plan reads it from the KVs).
// llama-quantize itself always pads to 32 bytes (its output context's
// alignment is never set from the copied KV), so for an input whose
// alignment is not 32 it writes a file whose KV contradicts its layout and
// that gguf.cpp, which places the data section and checks every offset by
// the KV, rejects or misreads. quantbridge writes the consistent file
// instead: the same KVs, tensors and bytes, with the padding the KV
// promises; for alignment 32 (or no key) that is llama-quantize's file.
func QuantizeKV(in []graph.KV, ftype uint32) []graph.KV {
	out := make([]graph.KV, 0, len(in)+2)
	for _, kv := range in {
		switch kv.Key {
		case "general.quantization_version", "general.file_type",
			"split.no", "split.count", "split.tensors.count":
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		graph.KV{Key: "general.quantization_version", Value: uint32(quantizationVersion)},
		graph.KV{Key: "general.file_type", Value: ftype})
}

// ConvertGGUF converts the GGUF file in to the GGUF file out with the
// mixture of opt.Target, a GGUFTarget with a FileType, as llama-quantize
// does.
func ConvertGGUF(ctx context.Context, in, out string, opt Options) (*Summary, error) {
	t, err := opt.target(out)
	if err != nil {
		return nil, err
	}
	gt, ok := t.(GGUFTarget)
	switch {
	case !ok:
		return nil, usagef("ConvertGGUF writes GGUF files, not %T", t)
	case gt.FileType.Name == "":
		return nil, usagef("%s: GGUF → GGUF needs a file type (--type)", in)
	}
	if err := checkGGUFInput(in, &opt); err != nil {
		return nil, err
	}
	opt.Target = gt
	if err := checkPaths(in, out, opt.Force); err != nil {
		return nil, err
	}
	m, err := gguf.ReadModel(in)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.Format == "" {
		m.Format = graph.FormatGGUF
	}
	if err := validate(m, &opt); err != nil {
		return nil, err
	}
	return quantizeGGUF(ctx, m, in, out, gt, opt)
}

// quantizeGGUF plans m with t and writes it to out (llama-quantize's
// output: KVs rewritten by QuantizeKV, tensors in llama.cpp's order).
func quantizeGGUF(ctx context.Context, m *graph.Model, in, out string, t GGUFTarget, opt Options) (*Summary, error) {
	imp, err := loadImportance(t, &opt)
	if err != nil {
		return nil, err
	}
	popt := t.Plan
	popt.Imatrix = imp != nil
	plans, err := PlanGGUF(m, t.FileType, popt)
	if err != nil {
		return nil, err
	}
	if err := checkImatrixRequired(plans, t.FileType, &popt, imp); err != nil || opt.DryRun {
		if opt.DryRun {
			return dryRun(in, t.FileType, plans, err, &opt), nil
		}
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	requant := 0
	for _, p := range plans {
		if p.From.IsQuantized() && p.From != p.To {
			if !t.AllowRequantize {
				return nil, fmt.Errorf("tensor %s: requantizing from type %v is disabled (use --allow-requantize)", p.Name, p.From)
			}
			requant++
		}
	}
	if requant > 0 {
		opt.warn("dequantizing %d already-quantized tensors to convert them: the first quantization's loss stays and the new one adds to it", requant)
	}
	infos := make([]gguf.TensorInfo, len(plans))
	for i, p := range plans {
		infos[i] = gguf.TensorInfo{Name: p.Name, Shape: p.Shape, Type: p.To}
	}
	s, err := writeGGUFFile(ctx, out, imp.kv(QuantizeKV(m.Metadata, t.FileType.LlamaFType)), infos, func(i int, w io.WriterAt, off int64) (*job, error) {
		p := plans[i]
		sp := spec{name: p.Name, src: p.Tensor, to: p.To, w: w, off: off, check: p.From != p.To}
		var err error
		if sp.imp, sp.matRows, err = imp.weightsFor(p, t.FileType); err != nil {
			return nil, err
		}
		return sp.build()
	}, &opt)
	if err != nil {
		return nil, err
	}
	s.Input, s.Type = in, t.FileType.Name
	return s, nil
}

// writeGGUFFile lays out a GGUF file with kv and tensors (in order),
// builds the job producing each tensor i at offset off of w, runs them, and
// renames the temporary file to out. On any error the temporary file is
// removed.
func writeGGUFFile(ctx context.Context, out string, kv []graph.KV, infos []gguf.TensorInfo,
	mk func(i int, w io.WriterAt, off int64) (*job, error), opt *Options) (*Summary, error) {
	start := time.Now()
	layout, err := gguf.Plan(kv, infos, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	tmp, err := createTemp(out)
	if err != nil {
		return nil, err
	}
	defer tmp.Abort()
	jobs := make([]*job, len(infos))
	for i := range infos {
		if jobs[i], err = mk(i, tmp, layout.Offsets[i]); err != nil {
			return nil, err
		}
	}
	if err := tmp.Truncate(layout.Size); err != nil {
		return nil, err // *PathError: names the file
	}
	if _, err := tmp.WriteAt(layout.Header, 0); err != nil {
		return nil, err
	}
	sums, err := writeJobs(ctx, jobs, opt)
	if err != nil {
		return nil, err
	}
	if err := tmp.Commit(); err != nil {
		return nil, err
	}
	s := &Summary{Output: out, Tensors: sums, TotalBytes: layout.Size, Seconds: time.Since(start).Seconds()}
	s.BitsPerWeight = bitsPerWeight(jobs, sums)
	return s, nil
}

func bitsPerWeight(jobs []*job, sums []TensorSummary) float64 {
	var bytes, elems int64
	for i, j := range jobs {
		bytes += sums[i].Bytes
		elems += j.Elements
	}
	if elems == 0 {
		return 0
	}
	return float64(bytes) * 8 / float64(elems)
}

// isGGUF reports whether path is a file starting with the GGUF magic.
func isGGUF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	_, err = f.ReadAt(b[:], 0)
	return err == nil && string(b[:]) == "GGUF"
}

// isSafetensors reports whether path is named *.safetensors or starts like
// one: an 8-byte little-endian header length that fits the file, then '{'.
func isSafetensors(path string) bool {
	if strings.HasSuffix(strings.ToLower(path), ".safetensors") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	var b [9]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	n := binary.LittleEndian.Uint64(b[:8])
	return b[8] == '{' && n >= 2 && n <= uint64(st.Size()-8)
}

// ftypeOfFloat is general.file_type for a converter outtype.
func ftypeOfFloat(t graph.Type) FileType {
	for _, ft := range fileTypes {
		if (ft.Name == "F32" || ft.Name == "F16" || ft.Name == "BF16") && ft.Default == t {
			return ft
		}
	}
	return FileType{Name: "F16", LlamaFType: ftypeF16, Default: graph.F16}
}

// autoOutType is convert_hf_to_gguf's --outtype auto: BF16 when the first
// tensor of two or more dimensions is BF16, F16 when it is F16 and F16
// otherwise. An MLX affine tensor counts as its scale type (what it
// dequantizes to).
func autoOutType(m *graph.Model) graph.Type {
	for _, t := range m.Tensors {
		if len(t.Shape) < 2 {
			continue
		}
		if ft := floatTypeOf(t); ft == graph.BF16 {
			return graph.BF16
		}
		return graph.F16
	}
	return graph.F16
}

// converterType is the type convert_hf_to_gguf.py gives a tensor for
// outtype (conversion/base.py prepare_tensors): F32 for 1-D tensors,
// norms, biases (names not ending in .weight) and the few tensors it always
// keeps in float32; outtype otherwise.
func converterType(name string, shape []int64, outtype graph.Type) graph.Type {
	if len(shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") {
		return graph.F32
	}
	for _, s := range []string{"ffn_gate_inp.weight", "ffn_gate_inp_shexp.weight", "position_embd.weight", "token_types.weight", "ssm_conv1d.weight"} {
		if strings.HasSuffix(name, s) {
			return graph.F32
		}
	}
	return outtype
}

// convertToGGUF writes an HF or MLX model as GGUF. For --type F32, F16 or
// BF16 (or no --type: the converter's "auto" type) the file is what
// llama.cpp's convert_hf_to_gguf.py --outtype writes: its metadata
// (gguf.ModelKV), its tensor order and types, llama Q/K rows permuted. For
// any other type it is what llama-quantize makes of that file: the
// converter's output in its auto type, then PlanGGUF's mixture, the KVs
// rewritten by QuantizeKV and llama.cpp's tensor order. The intermediate
// file is never written: each tensor goes from the source to its final
// type in one step, rounded through the intermediate type on the way so
// the result is the same.
func convertToGGUF(ctx context.Context, m *graph.Model, in, out string, opt Options) (*Summary, error) {
	if err := checkArch(m); err != nil {
		return nil, err
	}
	gt, _ := opt.Target.(GGUFTarget)
	auto := autoOutType(m)
	ft := gt.FileType
	direct := ft.Name == "" || !ft.Default.IsQuantized()
	outtype := auto
	if ft.Name != "" && direct {
		outtype = ft.Default
	}
	conv := ftypeOfFloat(outtype)
	if direct {
		ft = conv
	}
	// With no --type, MLX affine tensors that have an exact GGUF form
	// (4-bit → Q4_0 when every bias is -8 × scale, else Q4_1; 5-bit → Q5_0
	// or Q5_1 likewise; 8-bit → Q8_0 when biases are -128 × scale) are
	// repacked instead of dequantized; general.file_type names the type
	// most tensors got.
	repack := map[string]*repacker{}
	// With no --type, MXFP4 tensors (an MLX input's mxfp4 modules) are
	// copied: GGUF MXFP4 holds the same values.
	keepMXFP4 := map[string]bool{}
	if gt.FileType.Name == "" {
		counts := map[graph.Type]int{}
		for _, t := range m.Tensors {
			if t.Type == graph.MXFP4 {
				keepMXFP4[t.Name] = true
				counts[graph.MXFP4]++
				continue
			}
			if t.Type != graph.MLXAffine {
				continue
			}
			for _, to := range repackTargets(t.Affine) {
				r, err := newRepacker(t, to)
				if err != nil {
					return nil, err
				}
				ok, err := r.exact(4096)
				if err != nil {
					return nil, err
				}
				if ok {
					repack[t.Name] = r
					counts[to]++
					break
				}
			}
		}
		best := 0
		for _, f := range fileTypes {
			if n := counts[f.Default]; n > best && !strings.Contains(f.Name, "_K") {
				best, ft = n, f
			}
		}
	}
	kv, err := arch.ModelKV(m, ft.LlamaFType)
	if err != nil {
		return nil, err
	}
	// The converter's tensors, in its (the checkpoint's) order.
	im := &graph.Model{Format: graph.FormatGGUF, Path: m.Path, Arch: m.Arch, Params: m.Params, Metadata: kv}
	src := map[string]*graph.Tensor{}
	lossy := 0
	tensors := m.Tensors
	// LlamaModel.generate_extra_tensors: llama3 RoPE scaling becomes a
	// rope_freqs.weight tensor, yielded before the checkpoint's tensors.
	if m.Tensor(ropeFreqsName) == nil {
		rf, err := ropeFreqsTensor(m)
		if err != nil {
			return nil, err
		}
		if rf != nil {
			tensors = append([]*graph.Tensor{rf}, tensors...)
		}
	}
	// The architecture's generate_extra_tensors (longrope factors), also
	// before the checkpoint's tensors.
	if a, _ := arch.Lookup(m.Arch); a != nil && a.ExtraTensors != nil {
		extra, err := a.ExtraTensors(m)
		if err != nil {
			return nil, err
		}
		var add []*graph.Tensor
		for _, t := range extra {
			if m.Tensor(t.Name) == nil {
				add = append(add, t)
			}
		}
		tensors = append(add, tensors...)
	}
	for _, t := range tensors {
		if t.Type.IsQuantized() {
			lossy++
		}
		src[t.Name] = t
		im.Tensors = append(im.Tensors, &graph.Tensor{Name: t.Name, Shape: t.Shape, Type: converterType(t.Name, t.Shape, outtype)})
	}
	mk := func(name string, to graph.Type, w io.WriterAt, off int64, imp []float32, matRows int64) (*job, error) {
		t := src[name]
		ct := im.Tensor(name).Type
		sp := spec{name: name, src: t, perm: rotaryPerm(m, name, true), to: to, w: w, off: off, check: to.IsQuantized(),
			imp: imp, matRows: matRows}
		sp.add, sp.addRound = normOffset(m, t, true)
		if to != ct {
			sp.via = ct
		}
		return sp.build()
	}
	var s *Summary
	if direct {
		infos := make([]gguf.TensorInfo, len(im.Tensors))
		for i, t := range im.Tensors {
			infos[i] = gguf.TensorInfo{Name: t.Name, Shape: t.Shape, Type: t.Type}
			if r := repack[t.Name]; r != nil {
				infos[i].Type = r.to
			}
			if keepMXFP4[t.Name] {
				infos[i].Type = graph.MXFP4
			}
		}
		if gt.FileType.Name == "" {
			if len(repack) > 0 {
				opt.note("%s", repackNote(infos, repack, ft))
			}
			if len(keepMXFP4) > 0 {
				opt.note("no --type: %d MLX mxfp4 tensors copied as GGUF MXFP4 (the same values)", len(keepMXFP4))
			}
			affine := 0
			for _, t := range m.Tensors {
				if t.Type == graph.MLXAffine && repack[t.Name] == nil {
					affine++
				}
			}
			if affine > 0 {
				opt.warn("%d MLX affine tensors have no exact GGUF form and are dequantized to %v (convert_hf_to_gguf.py's auto type for this model)", affine, outtype)
			}
		}
		s, err = writeGGUFFile(ctx, out, kv, infos, func(i int, w io.WriterAt, off int64) (*job, error) {
			if p := rotaryPerm(m, infos[i].Name, true); keepMXFP4[infos[i].Name] && p != nil {
				return mxfp4PermJob(src[infos[i].Name], p, w, off)
			}
			if r := repack[infos[i].Name]; r != nil {
				return r.job(infos[i].Name, rotaryPerm(m, infos[i].Name, true), w, off), nil
			}
			return mk(infos[i].Name, infos[i].Type, w, off, nil, 0)
		}, &opt)
	} else {
		imp, ierr := loadImportance(gt, &opt)
		if ierr != nil {
			return nil, ierr
		}
		popt := gt.Plan
		popt.Imatrix = imp != nil
		plans, perr := PlanGGUF(im, ft, popt)
		if perr != nil {
			return nil, perr
		}
		if err := checkImatrixRequired(plans, ft, &popt, imp); err != nil || opt.DryRun {
			if opt.DryRun {
				return dryRun(in, ft, plans, err, &opt), nil
			}
			return nil, fmt.Errorf("%s: %w", in, err)
		}
		if lossy > 0 {
			opt.warn("%d tensors of %s are already quantized: they are dequantized and quantized again (the first quantization's loss stays)", lossy, in)
		}
		infos := make([]gguf.TensorInfo, len(plans))
		for i, p := range plans {
			infos[i] = gguf.TensorInfo{Name: p.Name, Shape: p.Shape, Type: p.To}
		}
		s, err = writeGGUFFile(ctx, out, imp.kv(QuantizeKV(kv, ft.LlamaFType)), infos, func(i int, w io.WriterAt, off int64) (*job, error) {
			wts, matRows, err := imp.weightsFor(plans[i], ft)
			if err != nil {
				return nil, err
			}
			return mk(plans[i].Name, plans[i].To, w, off, wts, matRows)
		}, &opt)
	}
	if err != nil {
		return nil, err
	}
	s.Input, s.Type = in, ft.Name
	return s, nil
}

// repackNote says what an MLX input without --type became: the GGUF
// types of the affine tensors repacked exactly and of the other tensors
// (convert_hf_to_gguf.py's: F32 for norms and vectors, the auto type for
// matrices).
func repackNote(infos []gguf.TensorInfo, repack map[string]*repacker, ft FileType) string {
	packed, other := map[graph.Type]int{}, map[graph.Type]int{}
	for _, in := range infos {
		if repack[in.Name] != nil {
			packed[in.Type]++
		} else {
			other[in.Type]++
		}
	}
	list := func(n map[graph.Type]int) string {
		var s []string
		for _, t := range sortedTypes(n) {
			s = append(s, fmt.Sprintf("%d %v", n[t], t))
		}
		return strings.Join(s, ", ")
	}
	msg := fmt.Sprintf("no --type: %d MLX affine tensors repacked exactly (%s)", len(repack), list(packed))
	if len(other) > 0 {
		msg += fmt.Sprintf(", %d other tensors written as convert_hf_to_gguf.py writes them (%s)", len(infos)-len(repack), list(other))
	}
	return msg + "; general.file_type " + ft.Name
}

// sortedTypes returns the keys of n, most frequent first (ties by type).
func sortedTypes(n map[graph.Type]int) []graph.Type {
	ts := make([]graph.Type, 0, len(n))
	for t := range n {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if n[ts[i]] != n[ts[j]] {
			return n[ts[i]] > n[ts[j]]
		}
		return ts[i] < ts[j]
	})
	return ts
}
