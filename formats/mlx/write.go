package mlx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/atomicfile"
	"github.com/quantbridge/quantbridge/quantize"
)

// DefaultMaxShardBytes is mlx-lm's MAX_FILE_SIZE_GB (5) << 30.
const DefaultMaxShardBytes = 5 << 30

// IndexName is the index mlx-lm's save_model always writes.
const IndexName = safetensors.IndexName

// quantizableModules are the canonical module names (the part after
// "blk.N." or the whole name) of the nn.Linear and nn.Embedding layers of
// mlx-lm's llama and qwen2 models.
var quantizableModules = map[string]bool{
	"token_embd": true, "output": true,
	"attn_q": true, "attn_k": true, "attn_v": true, "attn_output": true,
	"attn_qkv": true, // phi3.py's fused qkv_proj (gate_up_proj is ffn_up)
	"ffn_gate": true, "ffn_up": true, "ffn_down": true,
	// MoE: the router (nn.Linear "gate") and SwitchGLU's SwitchLinear
	// projections (mlx_lm/models/switch_layers.py), stacked per expert
	"ffn_gate_inp": true, "ffn_gate_exps": true, "ffn_up_exps": true, "ffn_down_exps": true,
}

// Quantizable reports whether mlx-lm's quantize_model (with no recipe)
// quantizes the tensor with canonical name canonName and shape at
// groupSize: the ".weight" of an nn.Linear or nn.Embedding (token_embd,
// output, blk.N.attn_{q,k,v,output}, blk.N.ffn_{gate,up,down}) with at
// least two dimensions and a last dimension divisible by groupSize
// (nn.quantize's default predicate plus quantize_model's divisibility
// check). Norms and biases are never quantized.
func Quantizable(canonName string, shape []int64, groupSize int) bool {
	if len(shape) < 2 || groupSize <= 0 || shape[len(shape)-1]%int64(groupSize) != 0 || shape[len(shape)-1] == 0 {
		return false
	}
	mod, ok := strings.CutSuffix(canonName, ".weight")
	if !ok {
		return false
	}
	if graph.LayerIndex(canonName) >= 0 {
		mod = mod[strings.IndexByte(mod[len("blk."):], '.')+len("blk.")+1:]
	}
	return quantizableModules[mod]
}

// WriteOptions control Plan and WriteDir.
type WriteOptions struct {
	// MaxShardBytes is the greatest number of tensor bytes per file; 0
	// means DefaultMaxShardBytes, a negative value one file.
	MaxShardBytes int64
	// Workers is the number of tensors WriteDir copies at once (0: 1).
	Workers int
	// Overwrite lets WriteDir replace existing files in the directory and
	// delete stale model*.safetensors shards (mlx-lm's loader globs them
	// all). Without it an existing output file is an error.
	Overwrite bool
}

// Part says which array of a graph tensor a planned safetensors tensor is.
type Part int

const (
	PartData   Part = iota // the tensor's data (packed codes for MLXAffine)
	PartScales             // Affine.Scales
	PartBiases             // Affine.Biases
)

// TensorPlan is one safetensors tensor of a planned directory.
type TensorPlan struct {
	Name   string // HF/MLX name, e.g. "model.layers.0.mlp.down_proj.scales"
	DType  graph.Type
	Shape  []int64
	Tensor int  // index into the Model's Tensors
	Part   Part // which array of that tensor
	Shard  int  // index into DirPlan.Shards
	Offset int64
	Size   int64
}

// Shard is one planned safetensors file.
type Shard struct {
	Name   string // "model.safetensors" or "model-0000K-of-0000N.safetensors"
	Layout *safetensors.Layout
	// Tensors are indexes into DirPlan.Tensors, in the order given to the
	// safetensors planner (Layout's indexes refer to this list).
	Tensors []int
}

// DirPlan is a planned mlx-lm directory: every byte except the tensor data.
type DirPlan struct {
	Tensors []TensorPlan
	Shards  []Shard
	// Config, Index and Files are the bytes of config.json,
	// model.safetensors.index.json and the auxiliary files by base name.
	Config []byte
	Index  []byte
	Files  map[string][]byte
	// TotalSize is the index's total_size (all tensor bytes) and
	// TotalParameters its total_parameters (logical elements; scales and
	// biases not counted), as save_model computes them.
	TotalSize, TotalParameters int64
}

// Plan lays out an mlx-lm directory for m with quantization settings q (nil:
// not quantized). m's tensors are written as they are: an MLXAffine tensor
// becomes X.weight (U32 codes), X.scales and X.biases; every other tensor
// keeps its type. Names are mlx-lm names (Arch.HFName; unmapped names pass
// through). An MXFP4 tensor (GGUF MXFP4 blocks) becomes an mlx mxfp4
// module: X.weight (U32 codes) and X.scales (U8), which q must quantize
// with mode "mxfp4". As mlx-lm's sanitize does, output.weight is left out when
// m.Params.Tied. Each MLXAffine tensor must be quantized the way q says
// (q.Lookup of its module path); a per-module entry that quantizes a
// module must match an MLXAffine tensor.
//
// Tensors are ordered as mlx-lm's save_model iterates model.parameters()
// (embed_tokens, each layer's q/k/v/o, gate/down/up, norms, then norm and
// lm_head; weight, scales, biases, bias within a module) and split into
// shards greedily in that order (safetensors.SplitShards). Each shard's
// header is sorted by name with __metadata__ {"format": "mlx"} and no
// padding, as mx.save_safetensors writes it; its data is in name order.
func Plan(m *graph.Model, q *Quantization, opt WriteOptions) (*DirPlan, error) {
	if q != nil {
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("mlx: quantization: %w", err)
		}
	}
	a := archOf(m)
	p := &DirPlan{}
	affinePaths := map[string]bool{}
	for ti, t := range m.Tensors {
		if t.Name == "output.weight" && m.Params.Tied {
			continue
		}
		hfName, _ := a.HFName(t.Name, true)
		if t.Type == graph.MXFP4 {
			tps, err := planMXFP4(t, ti, hfName, q)
			if err != nil {
				return nil, err
			}
			affinePaths[strings.TrimSuffix(hfName, ".weight")] = true
			p.Tensors = append(p.Tensors, tps...)
			p.TotalParameters += t.Elements()
			continue
		}
		if t.Type != graph.MLXAffine {
			if t.Affine != nil {
				return nil, fmt.Errorf("mlx: tensor %s: type %v with affine parameters", t.Name, t.Type)
			}
			if _, ok := safetensors.DTypeName(t.Type); !ok {
				return nil, fmt.Errorf("mlx: tensor %s: type %v cannot be stored in safetensors", t.Name, t.Type)
			}
			if _, err := graph.RowSize(t.Type, t.RowLen()); err != nil {
				return nil, fmt.Errorf("mlx: tensor %s: %w", t.Name, err)
			}
			p.Tensors = append(p.Tensors, TensorPlan{Name: hfName, DType: t.Type, Shape: append([]int64{}, t.Shape...), Tensor: ti, Part: PartData})
			p.TotalParameters += t.Elements()
			continue
		}
		a := t.Affine
		if a == nil {
			return nil, fmt.Errorf("mlx: tensor %s: MLX_AFFINE without affine parameters", t.Name)
		}
		ap := quantize.AffineParams{Bits: a.Bits, GroupSize: a.GroupSize}
		if err := ap.Validate(); err != nil {
			return nil, fmt.Errorf("mlx: tensor %s: %w", t.Name, err)
		}
		if quantize.AffineScaleSize(a.ScaleType) == 0 {
			return nil, fmt.Errorf("mlx: tensor %s: scale type %v (want BF16, F16 or F32)", t.Name, a.ScaleType)
		}
		n := len(t.Shape)
		if n < 2 || t.Shape[n-1] <= 0 || t.Shape[n-1]%int64(a.GroupSize) != 0 {
			return nil, fmt.Errorf("mlx: tensor %s: shape %v cannot be quantized with group size %d", t.Name, t.Shape, a.GroupSize)
		}
		base, ok := strings.CutSuffix(hfName, ".weight")
		if !ok {
			return nil, fmt.Errorf("mlx: tensor %s: only .weight tensors can be quantized", t.Name)
		}
		if q == nil {
			return nil, fmt.Errorf("mlx: tensor %s is quantized but no quantization settings were given", t.Name)
		}
		want, quantized := q.Lookup(base, true)
		if !quantized || want.Mode != ModeAffine || want.Bits != a.Bits || want.GroupSize != a.GroupSize {
			return nil, fmt.Errorf("mlx: tensor %s is affine %d-bit group %d but the quantization config gives %q %+v (quantized %v)",
				t.Name, a.Bits, a.GroupSize, base, want, quantized)
		}
		affinePaths[base] = true
		lead := t.Shape[:n-1]
		cols := t.Shape[n-1]
		packed := append(append([]int64{}, lead...), cols*int64(a.Bits)/32)
		groups := append(append([]int64{}, lead...), cols/int64(a.GroupSize))
		p.Tensors = append(p.Tensors,
			TensorPlan{Name: base + ".weight", DType: graph.U32, Shape: packed, Tensor: ti, Part: PartData},
			TensorPlan{Name: base + ".scales", DType: a.ScaleType, Shape: groups, Tensor: ti, Part: PartScales},
			TensorPlan{Name: base + ".biases", DType: a.ScaleType, Shape: append([]int64{}, groups...), Tensor: ti, Part: PartBiases})
		p.TotalParameters += t.Elements()
	}
	if q != nil {
		for _, l := range q.Layers {
			if l.Quantize && !affinePaths[l.Path] {
				for _, tp := range p.Tensors {
					if tp.Name == l.Path+".weight" {
						return nil, fmt.Errorf("mlx: the quantization config quantizes %q but tensor %s is %v", l.Path, tp.Name, tp.DType)
					}
				}
			}
		}
	}
	sort.SliceStable(p.Tensors, func(i, j int) bool { return paramLess(p.Tensors[i].Name, p.Tensors[j].Name) })

	sizes := make([]int64, len(p.Tensors))
	for i := range p.Tensors {
		tp := &p.Tensors[i]
		bytes, err := arrayBytes(tp.DType, tp.Shape)
		if err != nil {
			return nil, fmt.Errorf("mlx: tensor %s: %w", tp.Name, err)
		}
		tp.Size = bytes
		sizes[i] = bytes
		p.TotalSize += bytes
	}
	max := opt.MaxShardBytes
	if max == 0 {
		max = DefaultMaxShardBytes
	}
	groups := safetensors.SplitShards(sizes, max)
	names := safetensors.ShardNames(len(groups))
	weightMap := map[string]string{}
	for si, g := range groups {
		sh := Shard{Name: names[si], Tensors: g}
		pts := make([]safetensors.PlanTensor, len(g))
		for k, i := range g {
			tp := &p.Tensors[i]
			tp.Shard = si
			pts[k] = safetensors.PlanTensor{Name: tp.Name, DType: tp.DType, Shape: tp.Shape}
			weightMap[tp.Name] = sh.Name
		}
		l, err := safetensors.Plan(pts, safetensors.PlanOptions{Metadata: map[string]string{"format": "mlx"}, SortByName: true})
		if err != nil {
			return nil, fmt.Errorf("mlx: %s: %w", sh.Name, err)
		}
		for k, i := range g {
			p.Tensors[i].Offset = l.Offsets[k]
		}
		sh.Layout = l
		p.Shards = append(p.Shards, sh)
	}
	p.Index = safetensors.IndexJSONMLX(weightMap, p.TotalSize, p.TotalParameters)
	var err error
	if p.Config, err = ConfigJSON(m, q); err != nil {
		return nil, err
	}
	if p.Files, err = auxFiles(m); err != nil {
		return nil, err
	}
	return p, nil
}

func arrayBytes(t graph.Type, shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > (1<<62)/d) {
			return 0, fmt.Errorf("shape %v is out of range", shape)
		}
		n *= d
	}
	if len(shape) == 0 {
		return graph.RowSize(t, 1)
	}
	rs, err := graph.RowSize(t, shape[len(shape)-1])
	if err != nil {
		return 0, err
	}
	if shape[len(shape)-1] == 0 {
		return 0, nil
	}
	return rs * (n / shape[len(shape)-1]), nil
}

// paramRank orders a module's arrays as mlx's QuantizedLinear holds them.
func paramRank(name string) (string, int) {
	for i, s := range []string{".weight", ".scales", ".biases", ".bias"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b, i
		}
	}
	return name, 4
}

func paramLess(a, b string) bool {
	ma, ra := paramRank(a)
	mb, rb := paramRank(b)
	ka, kb := orderKey(ma), orderKey(mb)
	ka.name, kb.name = ma, mb
	if ka != kb {
		return ka.less(kb)
	}
	if ra != rb {
		return ra < rb
	}
	return a < b
}

// ConfigJSON returns the config.json mlx-lm's save_config writes for m:
// m.Config (the source config; when nil, hf.WriteConfig's config for
// m.Arch and m.Params) without "_name_or_path" and "vision_config", with
// "tie_word_embeddings" set from m.Params.Tied and, when q is not nil,
// "quantization" and an identical "quantization_config" (both removed
// otherwise). A multimodal source config (with "text_config": the
// tensors are the language model's only) is replaced by hf.WriteConfig's
// text-model config. Top-level keys are sorted, nested objects keep their keys
// sorted too (Go maps have no order; mlx-lm keeps the source's order there),
// and "quantization" lists group_size, bits, mode and then the per-module
// entries. Layout: json.dump(indent=4), ensure_ascii, no final newline.
func ConfigJSON(m *graph.Model, q *Quantization) ([]byte, error) {
	cfg := map[string]any{}
	_, nested := m.Config["text_config"]
	if m.Config != nil && !nested {
		for k, v := range m.Config {
			cfg[k] = v
		}
	} else {
		b, err := hf.WriteConfig(m)
		if err != nil {
			return nil, fmt.Errorf("mlx: config.json: %w", err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("mlx: config.json: %w", err)
		}
	}
	delete(cfg, "_name_or_path")
	delete(cfg, "vision_config")
	delete(cfg, "quantization")
	delete(cfg, "quantization_config")
	cfg["tie_word_embeddings"] = m.Params.Tied
	if q != nil {
		o := q.object()
		cfg["quantization"] = o
		cfg["quantization_config"] = o
	}
	b, err := configEncoder.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("mlx: config.json: %w", err)
	}
	return b, nil
}

// reservedFile reports names WriteDir writes itself.
func reservedFile(name string) bool {
	return name == ConfigName || name == IndexName || (strings.HasPrefix(name, "model") && strings.HasSuffix(name, ".safetensors"))
}

// auxFiles returns the files to carry over: m.Files (all but the ones the
// writer produces), plus tokenizer files generated from m.Tokenizer when
// m.Files has no tokenizer.json or tokenizer.model.
func auxFiles(m *graph.Model) (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, b := range m.Files {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("mlx: auxiliary file name %q is not a plain file name", name)
		}
		if reservedFile(name) {
			continue
		}
		out[name] = b
	}
	_, hasJSON := out["tokenizer.json"]
	_, hasSPM := out["tokenizer.model"]
	if m.Tokenizer != nil && !hasJSON && !hasSPM {
		tf, err := hf.WriteTokenizerFiles(m.Tokenizer)
		if err != nil {
			return nil, fmt.Errorf("mlx: tokenizer files: %w", err)
		}
		for name, b := range tf {
			if _, ok := out[name]; !ok && !reservedFile(name) {
				out[name] = b
			}
		}
	}
	return out, nil
}

// Source returns the data of planned tensor i from m (the model given to
// Plan): the tensor's Data, Affine.Scales or Affine.Biases, or for an
// MXFP4 tensor its blocks repacked as MLX mxfp4 codes or scales.
func (p *DirPlan) Source(m *graph.Model, i int) (graph.Source, error) {
	tp := &p.Tensors[i]
	t := m.Tensors[tp.Tensor]
	var src graph.Source
	if t.Type == graph.MXFP4 {
		n := t.Elements() / 32
		if tp.Part == PartScales {
			return MXFP4Scales(t.Data, n), nil
		}
		return MXFP4Codes(t.Data, n), nil
	}
	switch tp.Part {
	case PartData:
		src = t.Data
	case PartScales:
		src = t.Affine.Scales
	case PartBiases:
		src = t.Affine.Biases
	}
	if src == nil {
		return nil, fmt.Errorf("mlx: tensor %s: no data for %s", t.Name, tp.Name)
	}
	return src, nil
}

// WriteDir writes m to the mlx-lm directory dir (created if needed); see
// Plan for the layout.
func WriteDir(dir string, m *graph.Model, q *Quantization, opt WriteOptions) error {
	p, err := Plan(m, q, opt)
	if err != nil {
		return err
	}
	return p.Write(dir, func(i int) (graph.Source, error) { return p.Source(m, i) }, opt)
}

// Prepare creates dir and checks that the planned files may be written:
// without opt.Overwrite no planned file may exist yet; with it, stale
// model*.safetensors shards that the plan does not write are removed.
func (p *DirPlan) Prepare(dir string, opt WriteOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mlx: %w", err)
	}
	planned := map[string]bool{ConfigName: true, IndexName: true}
	for _, s := range p.Shards {
		planned[s.Name] = true
	}
	for name := range p.Files {
		planned[name] = true
	}
	if !opt.Overwrite {
		for name := range planned {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				return fmt.Errorf("mlx: %s already exists (overwrite not allowed)", filepath.Join(dir, name))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("mlx: %w", err)
			}
		}
	}
	stale, err := filepath.Glob(filepath.Join(dir, "model*.safetensors"))
	if err != nil {
		return err
	}
	for _, s := range stale {
		if planned[filepath.Base(s)] {
			continue
		}
		if !opt.Overwrite {
			return fmt.Errorf("mlx: %s exists and mlx-lm's loader would read it with the new shards (overwrite not allowed)", s)
		}
		if err := os.Remove(s); err != nil {
			return fmt.Errorf("mlx: removing stale shard: %w", err)
		}
	}
	return nil
}

// Write writes the planned directory: Prepare, every shard (header and
// data(i) for each planned tensor i, opt.Workers at a time, each shard
// through a temporary file renamed into place), then WriteMeta.
func (p *DirPlan) Write(dir string, data func(i int) (graph.Source, error), opt WriteOptions) error {
	if err := p.Prepare(dir, opt); err != nil {
		return err
	}
	for _, s := range p.Shards {
		if err := writeAtomic(filepath.Join(dir, s.Name), func(f *os.File) error {
			return s.Layout.WriteAt(f, func(k int) (graph.Source, error) { return data(s.Tensors[k]) }, opt.Workers)
		}); err != nil {
			return err
		}
	}
	return p.WriteMeta(dir)
}

// WriteMeta writes config.json, the index and the auxiliary files.
func (p *DirPlan) WriteMeta(dir string) error {
	files := map[string][]byte{ConfigName: p.Config, IndexName: p.Index}
	for k, v := range p.Files {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		b := files[name]
		if err := writeAtomic(filepath.Join(dir, name), func(f *os.File) error {
			_, err := f.Write(b)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes path (mode 0644) through a temporary file in the
// same directory, synced and renamed into place.
func writeAtomic(path string, fill func(*os.File) error) error {
	if err := atomicfile.Write(path, 0o644, fill); err != nil {
		return fmt.Errorf("mlx: writing %s: %w", path, err)
	}
	return nil
}

// archOf returns m's architecture, or llama's names for a model without a
// known one (a bare safetensors file).
func archOf(m *graph.Model) *arch.Arch {
	if a, ok := arch.Lookup(m.Arch); ok {
		return a
	}
	return arch.Llama
}

// planMXFP4 plans the two arrays of an MXFP4 tensor written as an MLX
// mxfp4 module.
func planMXFP4(t *graph.Tensor, ti int, hfName string, q *Quantization) ([]TensorPlan, error) {
	n := len(t.Shape)
	if n < 2 || t.Shape[n-1] <= 0 || t.Shape[n-1]%32 != 0 {
		return nil, fmt.Errorf("mlx: tensor %s: MXFP4 shape %v (want at least 2 dimensions, rows a multiple of 32)", t.Name, t.Shape)
	}
	base, ok := strings.CutSuffix(hfName, ".weight")
	if !ok {
		return nil, fmt.Errorf("mlx: tensor %s: only .weight tensors can be quantized", t.Name)
	}
	if q == nil {
		return nil, fmt.Errorf("mlx: tensor %s is MXFP4 but no quantization settings were given", t.Name)
	}
	want, quantized := q.Lookup(base, true)
	if !quantized || want.Mode != ModeMXFP4 {
		return nil, fmt.Errorf("mlx: tensor %s is mxfp4 but the quantization config gives %q %+v (quantized %v)", t.Name, base, want, quantized)
	}
	lead := t.Shape[:n-1]
	cols := t.Shape[n-1]
	return []TensorPlan{
		{Name: base + ".weight", DType: graph.U32, Shape: append(append([]int64{}, lead...), cols/8), Tensor: ti, Part: PartData},
		{Name: base + ".scales", DType: graph.U8, Shape: append(append([]int64{}, lead...), cols/32), Tensor: ti, Part: PartScales},
	}, nil
}
