package convert

import (
	"context"
	"errors"
	"fmt"
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
	ts := make([]*outTensor, len(plans))
	for i, p := range plans {
		ts[i] = &outTensor{Name: p.Name, Shape: p.Shape, From: p.From, To: p.To, Src: p.Tensor.Data}
	}
	s, err := writeGGUFFile(ctx, out, QuantizeKV(m.Metadata, opt.Type.LlamaFType), ts, &opt)
	if err != nil {
		return nil, err
	}
	s.Input, s.Type = in, opt.Type.Name
	return s, nil
}

// writeGGUFFile lays out a GGUF file with kv and the tensors ts (in
// order), converts and writes it under a temporary name and renames it to
// out. On any error the temporary file is removed.
func writeGGUFFile(ctx context.Context, out string, kv []graph.KV, ts []*outTensor, opt *Options) (*Summary, error) {
	start := time.Now()
	infos := make([]gguf.TensorInfo, len(ts))
	for i, t := range ts {
		infos[i] = gguf.TensorInfo{Name: t.Name, Shape: t.Shape, Type: t.To}
	}
	layout, err := gguf.Plan(kv, infos, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	for i, t := range ts {
		t.Offset = layout.Offsets[i]
	}
	tmp, err := createTemp(out)
	if err != nil {
		return nil, err
	}
	defer tmp.abort()
	if err := tmp.Truncate(layout.Size); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	if _, err := tmp.WriteAt(layout.Header, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	sums, err := writeTensors(ctx, tmp, ts, opt)
	if err != nil {
		return nil, err
	}
	if err := tmp.commit(); err != nil {
		return nil, err
	}
	s := &Summary{Output: out, Tensors: sums, TotalBytes: layout.Size, Seconds: time.Since(start).Seconds()}
	var bytes, elems int64
	for i, t := range ts {
		bytes += sums[i].Bytes
		elems += t.elems()
	}
	if elems > 0 {
		s.BitsPerWeight = float64(bytes) * 8 / float64(elems)
	}
	return s, nil
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
