package convert

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/formats/imatrix"
	"github.com/quantbridge/quantbridge/graph"
)

// Importance-matrix quantization (llama-quantize --imatrix FILE).
//
// llama-quantize (tools/quantize/quantize.cpp) loads the file, divides each
// entry's sums by its counts (one count per expert), keeps or drops entries
// by --include-weights/--exclude-weights, and, when entries remain, records
// the file in four KVs and passes the vectors to llama_model_quantize. Each
// quantized tensor is then weighted by the entry of its own name (each
// expert of a 3-D tensor by its slice); a tensor without an entry is
// quantized unweighted, except that the types that need one
// (tensorRequiresImatrix) fail. Some mixtures choose differently when an
// importance matrix is given (PlanOptions.Imatrix).

// The KVs llama-quantize writes for an importance matrix, after
// general.file_type (LLM_KV_QUANTIZE_IMATRIX_*).
const (
	kvImatrixFile     = "quantize.imatrix.file"
	kvImatrixDataset  = "quantize.imatrix.dataset"
	kvImatrixEntries  = "quantize.imatrix.entries_count"
	kvImatrixChunks   = "quantize.imatrix.chunks_count"
	imatrixKVValueMax = 127 // llama_model_kv_override's val_str holds 127 bytes
)

// importance is an importance matrix as llama-quantize hands it to
// llama_model_quantize.
type importance struct {
	path     string               // as given: quantize.imatrix.file
	vectors  map[string][]float32 // GGUF tensor name → nMat × nPerRow values
	datasets []string
	chunks   int // the file's chunk count (0: none recorded)
}

// loadImportance loads t.Imatrix and applies t's include/exclude filters
// (prepare_imatrix). It returns nil for no --imatrix, and nil with a
// warning when the filters leave no entry (llama-quantize then quantizes
// as without an importance matrix).
func loadImportance(t GGUFTarget, opt *Options) (*importance, error) {
	if t.Imatrix == "" {
		return nil, nil
	}
	im, err := readImportance(t.Imatrix)
	if err != nil {
		return nil, err
	}
	if len(t.ImatrixExclude) > 0 {
		for name := range im.vectors {
			for _, s := range t.ImatrixExclude {
				if strings.Contains(name, s) {
					delete(im.vectors, name)
					break
				}
			}
		}
	}
	if len(t.ImatrixInclude) > 0 {
		keep := map[string][]float32{}
		for name, v := range im.vectors {
			for _, s := range t.ImatrixInclude {
				if strings.Contains(name, s) {
					keep[name] = v
					break
				}
			}
		}
		im.vectors = keep
	}
	if len(im.vectors) == 0 {
		opt.warn("%s: no importance matrix entry is left by --include-weights/--exclude-weights: quantizing without an importance matrix", t.Imatrix)
		return nil, nil
	}
	// llama_model_quantize_impl refuses non-finite values.
	names := make([]string, 0, len(im.vectors))
	for name := range im.vectors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for i, v := range im.vectors[name] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%s: imatrix contains non-finite value %v (entry %s, element %d)", t.Imatrix, v, name, i)
			}
		}
	}
	return im, nil
}

// kv appends llama-quantize's imatrix KVs to kv (gguf_set_val_*: a key
// already present is removed and the value appended).
func (im *importance) kv(kv []graph.KV) []graph.KV {
	if im == nil {
		return kv
	}
	set := func(key string, v any) {
		out := kv[:0:0]
		for _, e := range kv {
			if e.Key != key {
				out = append(out, e)
			}
		}
		kv = append(out, graph.KV{Key: key, Value: v})
	}
	trunc := func(s string) string {
		if len(s) > imatrixKVValueMax {
			return s[:imatrixKVValueMax]
		}
		return s
	}
	set(kvImatrixFile, trunc(im.path))
	if len(im.datasets) > 0 {
		set(kvImatrixDataset, trunc(im.datasets[0]))
	}
	set(kvImatrixEntries, uint32(len(im.vectors)))
	if im.chunks > 0 {
		set(kvImatrixChunks, uint32(im.chunks))
	}
	return kv
}

// isTokenEmbd is tensor_name_match_token_embd.
func isTokenEmbd(name string) bool {
	return name == "token_embd.weight" || name == "per_layer_token_embd.weight"
}

// tensorRequiresImatrix mirrors tensor_requires_imatrix: the types whose
// quantization llama-quantize refuses without an importance vector (the
// token embedding and output excepted), and Q2_K in a Q2_K_S file.
func tensorRequiresImatrix(name string, to graph.Type, ftype uint32) bool {
	if isTokenEmbd(name) || name == "output.weight" {
		return false
	}
	switch to {
	case graph.IQ3_XXS, graph.IQ2_XXS, graph.IQ2_XS, graph.IQ2_S, graph.IQ1_M, graph.IQ1_S:
		return true
	case graph.Q2_K:
		return ftype == ftypeQ2_KS
	}
	return false
}

// ErrImatrixRequired is returned (wrapped, naming the first tensor) when a
// file type needs an importance matrix and none was given.
var ErrImatrixRequired = fmt.Errorf("this quantization requires an importance matrix (--imatrix)")

// checkImatrixRequired refuses, as llama-quantize's preliminary pass does,
// a plan with a quantizable tensor whose type needs an importance matrix
// when none is given (nil im).
func checkImatrixRequired(plans []TensorPlan, ft FileType, opt *PlanOptions, im *importance) error {
	if im != nil {
		return nil
	}
	for _, p := range plans {
		if allowsQuantization(p.Name, p.Shape, opt) == "" && tensorRequiresImatrix(p.Name, p.To, ft.LlamaFType) {
			return fmt.Errorf("%w: tensor %s, target type %v (file type %s)", ErrImatrixRequired, p.Name, p.To, ft.Name)
		}
	}
	return nil
}

// weightsFor returns the importance vector of the planned tensor p (nil
// for none) and the rows per matrix it is sliced by, as
// llama_model_quantize_impl picks it: the entry of the tensor's name, of
// ne0 × ne2 values; a tensor without one is quantized unweighted, which is
// an error for the types that need one; an entry of another size is an
// error, except for the token embedding (quantized unweighted), even for a
// float output type, which ignores the vector.
func (im *importance) weightsFor(p TensorPlan, ft FileType) ([]float32, int64, error) {
	if im == nil || p.To == p.From {
		return nil, 0, nil
	}
	ne0, ne1, ne2 := ne(p.Shape, 0), ne(p.Shape, 1), ne(p.Shape, 2)
	v, ok := im.vectors[p.Name]
	if ok && int64(len(v)) != ne0*ne2 {
		if !isTokenEmbd(p.Name) {
			return nil, 0, fmt.Errorf("%s: imatrix size %d is different from tensor size %d for %s", im.path, len(v), ne0*ne2, p.Name)
		}
		v = nil
	}
	if v == nil && tensorRequiresImatrix(p.Name, p.To, ft.LlamaFType) {
		return nil, 0, fmt.Errorf("%s: missing importance matrix for tensor %s in a very low-bit quantization (%v): the result would be garbage", im.path, p.Name, p.To)
	}
	if v != nil && len(p.Shape) > 3 && elementsOf(p.Shape[:len(p.Shape)-3]) > 1 {
		return nil, 0, fmt.Errorf("tensor %s %v: importance-weighted quantization of a tensor of more than 3 dimensions", p.Name, p.Shape)
	}
	if v == nil || !p.To.IsQuantized() {
		return nil, 0, nil // F16, BF16 and F32 ignore it, as ggml_quantize_chunk does
	}
	return v, ne1, nil
}

// readImportance reads an importance matrix file (llama-imatrix's GGUF or
// legacy .dat) and derives each entry's vector as llama-quantize's
// load_imatrix does.
func readImportance(path string) (*importance, error) {
	m, err := imatrix.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	if !m.Legacy && !m.HasMetadata {
		return nil, fmt.Errorf("%s: missing imatrix metadata (%s, %s, %s)", path, imatrix.KeyDatasets, imatrix.KeyChunkCount, imatrix.KeyChunkSize)
	}
	im := &importance{path: path, vectors: make(map[string][]float32, len(m.Entries)), datasets: m.Datasets, chunks: m.ChunkCount}
	for _, e := range m.Entries {
		v, _ := m.Importance(e.Name)
		im.vectors[e.Name] = v
	}
	return im, nil
}
