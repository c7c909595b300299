package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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
// mixture opt.Type, as llama-quantize does.
func ConvertGGUF(ctx context.Context, in, out string, opt Options) (*Summary, error) {
	if opt.Type.Name == "" {
		return nil, errors.New("GGUF output needs a file type (--type)")
	}
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
	return quantizeGGUF(ctx, m, in, out, opt)
}

// quantizeGGUF plans m with opt.Type and writes it to out (llama-quantize's
// output: KVs rewritten by QuantizeKV, tensors in llama.cpp's order).
func quantizeGGUF(ctx context.Context, m *graph.Model, in, out string, opt Options) (*Summary, error) {
	plans, err := PlanGGUF(m, opt.Type, opt.Plan)
	if err != nil {
		return nil, err
	}
	requant := 0
	for _, p := range plans {
		if p.From.IsQuantized() && p.From != p.To {
			if !opt.AllowRequantize {
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
	s, err := writeGGUFFile(ctx, out, QuantizeKV(m.Metadata, opt.Type.LlamaFType), infos, func(i int, w io.WriterAt, off int64) (*job, error) {
		p := plans[i]
		sp := spec{name: p.Name, src: p.Tensor, to: p.To, w: w, off: off, check: p.From != p.To}
		return sp.build()
	}, &opt)
	if err != nil {
		return nil, err
	}
	s.Input, s.Type = in, opt.Type.Name
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
	defer tmp.abort()
	jobs := make([]*job, len(infos))
	for i := range infos {
		if jobs[i], err = mk(i, tmp, layout.Offsets[i]); err != nil {
			return nil, err
		}
	}
	if err := tmp.Truncate(layout.Size); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if _, err := tmp.WriteAt(layout.Header, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	sums, err := writeJobs(ctx, jobs, opt)
	if err != nil {
		return nil, err
	}
	if err := tmp.commit(); err != nil {
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
