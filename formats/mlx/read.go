package mlx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
	"github.com/quantbridge/quantbridge/quantize"
)

// ConfigName is the model configuration file of an mlx-lm directory.
const ConfigName = "config.json"

// maxConfigSize bounds config.json (real ones are a few KB; mixed-precision
// configs with an entry per layer a few hundred KB): hf's cap for it.
var maxConfigSize, _ = hf.SideFileLimit(ConfigName)

// AuxFiles are the auxiliary files ReadDir carries over in graph.Model.Files
// and WriteDir writes back: the tokenizer files (hf.TokenizerFiles) and
// generation_config.json (mlx-lm's save copies it from the source).
var AuxFiles = append(append([]string{}, hf.TokenizerFiles...), "generation_config.json")

// IsMLXDir reports whether dir looks like an mlx-lm model directory: its
// config.json has a non-null "quantization" entry, or its first
// model*.safetensors file carries __metadata__ {"format": "mlx"}.
func IsMLXDir(dir string) bool {
	if b, err := osfile.ReadLimited(filepath.Join(dir, ConfigName), maxConfigSize); err == nil {
		var cfg map[string]any
		if json.Unmarshal(b, &cfg) == nil && cfg["quantization"] != nil {
			return true
		}
	}
	files, _, err := safetensors.CheckpointFiles(dir)
	if err != nil || len(files) == 0 {
		return false
	}
	f, err := safetensors.Open(files[0])
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Metadata["format"] == "mlx"
}

// ReadOptions adjust ReadDirOptions.
type ReadOptions struct {
	// Tokenizer is passed to hf.ParseTokenizer.
	Tokenizer hf.TokenizerOptions
	// SkipTokenizer leaves Model.Tokenizer nil (the tokenizer files are
	// still carried in Model.Files).
	SkipTokenizer bool
}

// ReadDir reads an mlx-lm model directory; see ReadDirOptions.
func ReadDir(dir string) (*graph.Model, error) {
	return ReadDirOptions(dir, ReadOptions{})
}

// ReadDirOptions reads an mlx-lm model directory as mlx-lm's load_model
// does: config.json (architecture and hyperparameters through
// hf.ReadConfigFile, quantization through ParseQuantization), the weights of
// model*.safetensors (or the shards model.safetensors.index.json lists),
// the tokenizer (hf.ParseTokenizer) and the auxiliary files.
//
// Every quantized module X (X.weight U32 + X.scales + X.biases) becomes one
// graph.Tensor named canonically (Arch.CanonicalName of X.weight) of Type
// graph.MLXAffine with the logical shape, Data = the packed codes and
// Affine = {Bits, GroupSize, ScaleType, Scales, Biases}; other tensors are
// kept as stored. Like the model's sanitize, rotary_emb.inv_freq tensors
// are dropped, and lm_head when the embeddings are tied; note that mlx-lm's
// llama and qwen2 models default tie_word_embeddings to true when the
// config omits it. Tensors are ordered with graph.SortLlamaCpp.
func ReadDirOptions(dir string, opt ReadOptions) (*graph.Model, error) {
	cfgPath := filepath.Join(dir, ConfigName)
	archName, params, raw, err := hf.ReadConfigFile(cfgPath)
	if err != nil {
		if !strings.Contains(err.Error(), cfgPath) {
			err = fmt.Errorf("mlx: %s: %w", cfgPath, err)
		}
		return nil, err
	}
	q, err := ParseQuantization(raw)
	if err != nil {
		return nil, fmt.Errorf("mlx: %s: %w", cfgPath, err)
	}
	if _, ok := raw["tie_word_embeddings"]; !ok {
		// mlx-lm llama.py / qwen2.py ModelArgs default (phi3.py's is False)
		a, _ := arch.Lookup(archName)
		params.Tied = a == nil || !a.MLXUntiedDefault
	}
	c, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, fmt.Errorf("mlx: %w", err)
	}
	m := &graph.Model{
		Format: graph.FormatMLX,
		Path:   dir,
		Arch:   archName,
		Params: params,
		Config: raw,
	}
	for _, f := range c.Files {
		m.Closers = append(m.Closers, f)
	}
	fail := func(err error) (*graph.Model, error) {
		m.Close()
		return nil, err
	}
	if len(c.Files) > 0 {
		f := c.Files[0]
		for _, k := range f.MetadataKeys {
			m.Metadata = append(m.Metadata, graph.KV{Key: k, Value: f.Metadata[k]})
		}
	}
	where := func(name string) string { return checkpointFile(c, name) }
	a, _ := arch.Lookup(archName)
	ts, err := groupTensors(a, c.Tensors, q, where, cfgPath)
	if err != nil {
		return fail(err)
	}
	var kept []*graph.Tensor
	hasOutput := false
	for _, t := range ts {
		if strings.HasSuffix(t.Name, "rotary_emb.inv_freq") {
			continue
		}
		if t.Name == "output.weight" {
			if params.Tied {
				continue // sanitize drops lm_head for tied embeddings
			}
			hasOutput = true
		}
		kept = append(kept, t)
	}
	if !params.Tied && !hasOutput && m.Arch != "" {
		return fail(fmt.Errorf("mlx: %s: tie_word_embeddings is false but the checkpoint has no lm_head.weight", cfgPath))
	}
	graph.SortLlamaCpp(kept)
	m.Tensors = kept

	m.Files = map[string][]byte{}
	for _, name := range AuxFiles {
		limit, _ := hf.SideFileLimit(name)
		b, err := osfile.ReadLimited(filepath.Join(dir, name), limit)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("mlx: %w", err))
		}
		m.Files[name] = b
	}
	if !opt.SkipTokenizer {
		files := map[string][]byte{}
		for k, v := range m.Files {
			files[k] = v
		}
		if b, err := osfile.ReadLimited(cfgPath, maxConfigSize); err == nil {
			files[ConfigName] = b
		}
		topt := opt.Tokenizer
		if topt.Arch == "" {
			topt.Arch = archName
		}
		tok, err := hf.ParseTokenizer(files, params, topt)
		if err != nil {
			return fail(fmt.Errorf("mlx: %s: tokenizer: %w", dir, err))
		}
		m.Tokenizer = tok
	}
	return m, nil
}

// ReadFile reads one MLX-written safetensors file without a config.json:
// names are mapped with the llama names (arch.Llama) and quantized modules are
// grouped as ReadDir does, with the parameters of q (a file holding .scales
// tensors needs q, since the bit width cannot be told from shapes alone).
// Format is mlx, Arch empty, Metadata the file's __metadata__.
func ReadFile(path string, q *Quantization) (*graph.Model, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mlx: %w", err)
	}
	m := &graph.Model{Format: graph.FormatMLX, Path: path}
	m.Closers = append(m.Closers, f)
	for _, k := range f.MetadataKeys {
		m.Metadata = append(m.Metadata, graph.KV{Key: k, Value: f.Metadata[k]})
	}
	raw := make([]*graph.Tensor, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		raw[i] = &graph.Tensor{Name: ti.Name, Shape: append([]int64{}, ti.Shape...), Type: ti.DType, Data: f.Section(i)}
	}
	ts, err := groupTensors(arch.Llama, raw, q, func(string) string { return path }, "the quantization parameters")
	if err != nil {
		m.Close()
		return nil, err
	}
	graph.SortLlamaCpp(ts)
	m.Tensors = ts
	return m, nil
}

// checkpointFile returns the path of the file holding the named tensor.
func checkpointFile(c *safetensors.Checkpoint, name string) string {
	for _, f := range c.Files {
		if f.Index(name) >= 0 {
			return f.Path
		}
	}
	return c.Path
}

// groupTensors turns the stored tensors (original names) into graph
// tensors: quantized triples become one MLXAffine tensor, names become
// canonical. where names the file holding a tensor, cfg the config for
// messages.
func groupTensors(a *arch.Arch, stored []*graph.Tensor, q *Quantization, where func(string) string, cfg string) ([]*graph.Tensor, error) {
	byName := make(map[string]*graph.Tensor, len(stored))
	for _, t := range stored {
		byName[t.Name] = t
	}
	used := map[string]bool{}
	var out []*graph.Tensor
	for _, t := range stored {
		base, ok := strings.CutSuffix(t.Name, ".scales")
		if !ok {
			continue
		}
		file := where(t.Name)
		if q == nil {
			return nil, fmt.Errorf("mlx: %s: tensor %q is a quantization scale but %s has no \"quantization\" entry", file, t.Name, cfg)
		}
		p, quantized := q.Lookup(base, true)
		if !quantized {
			return nil, fmt.Errorf("mlx: %s: %s marks %q as not quantized but %q exists", file, cfg, base, t.Name)
		}
		if p.Mode == ModeMXFP4 {
			w := byName[base+".weight"]
			if w == nil {
				return nil, fmt.Errorf("mlx: %s: %q has no %q", file, t.Name, base+".weight")
			}
			if b := byName[base+".biases"]; b != nil {
				return nil, fmt.Errorf("mlx: %s: mxfp4 module %q has biases %q", file, base, b.Name)
			}
			name, _, _ := a.CanonicalName(base+".weight", true)
			mt, err := mxfp4Tensor(name, w, t)
			if err != nil {
				return nil, fmt.Errorf("mlx: %s: %w", file, err)
			}
			used[w.Name], used[t.Name] = true, true
			out = append(out, mt)
			continue
		}
		if p.Mode != ModeAffine {
			return nil, fmt.Errorf("mlx: %s: module %q uses %s quantization; only affine and mxfp4 are supported", file, base, p.Mode)
		}
		w, b := byName[base+".weight"], byName[base+".biases"]
		if w == nil {
			return nil, fmt.Errorf("mlx: %s: %q has no %q", file, t.Name, base+".weight")
		}
		if b == nil {
			return nil, fmt.Errorf("mlx: %s: %q has no %q (affine quantization needs biases)", file, t.Name, base+".biases")
		}
		at, err := affineTensor(a, base, w, t, b, p)
		if err != nil {
			return nil, fmt.Errorf("mlx: %s: %w", file, err)
		}
		used[w.Name], used[t.Name], used[b.Name] = true, true, true
		out = append(out, at)
	}
	for _, t := range stored {
		if used[t.Name] {
			continue
		}
		file := where(t.Name)
		if base, ok := strings.CutSuffix(t.Name, ".biases"); ok {
			return nil, fmt.Errorf("mlx: %s: %q has no matching %q", file, t.Name, base+".scales")
		}
		if base, ok := strings.CutSuffix(t.Name, ".weight"); ok && q != nil {
			if _, quantized := q.Lookup(base, false); quantized {
				return nil, fmt.Errorf("mlx: %s: %s quantizes %q but %q is missing", file, cfg, base, base+".scales")
			}
			if t.Type == graph.U32 {
				return nil, fmt.Errorf("mlx: %s: %q is packed U32 but %q is missing", file, t.Name, base+".scales")
			}
		}
		name, _, _ := a.CanonicalName(t.Name, true)
		out = append(out, &graph.Tensor{Name: name, Shape: t.Shape, Type: t.Type, Data: t.Data})
	}
	return out, nil
}

// affineTensor checks one quantized triple and returns its graph tensor.
func affineTensor(a *arch.Arch, base string, w, s, b *graph.Tensor, p Params) (*graph.Tensor, error) {
	if w.Type != graph.U32 {
		return nil, fmt.Errorf("%q has dtype %v, want U32 packed codes", w.Name, w.Type)
	}
	if quantize.AffineScaleSize(s.Type) == 0 {
		return nil, fmt.Errorf("%q has dtype %v, want BF16, F16 or F32", s.Name, s.Type)
	}
	if b.Type != s.Type || !slices.Equal(b.Shape, s.Shape) {
		return nil, fmt.Errorf("%q is %v %v but %q is %v %v", b.Name, b.Type, b.Shape, s.Name, s.Type, s.Shape)
	}
	n := len(w.Shape)
	if n < 2 || len(s.Shape) != n || !slices.Equal(w.Shape[:n-1], s.Shape[:n-1]) {
		return nil, fmt.Errorf("%q shape %v does not match %q shape %v", s.Name, s.Shape, w.Name, w.Shape)
	}
	words, groups := w.Shape[n-1], s.Shape[n-1]
	cols := groups * int64(p.GroupSize)
	if groups <= 0 || cols*int64(p.Bits) != words*32 {
		return nil, fmt.Errorf("%q shape %v does not match %q shape %v at bits %d, group_size %d (want %d words for %d groups)",
			s.Name, s.Shape, w.Name, w.Shape, p.Bits, p.GroupSize, groups*int64(p.GroupSize*p.Bits/32), groups)
	}
	shape := append(append([]int64{}, w.Shape[:n-1]...), cols)
	name, _, _ := a.CanonicalName(base+".weight", true)
	return &graph.Tensor{
		Name:  name,
		Shape: shape,
		Type:  graph.MLXAffine,
		Data:  w.Data,
		Affine: &graph.Affine{
			Bits:      p.Bits,
			GroupSize: p.GroupSize,
			ScaleType: s.Type,
			Scales:    s.Data,
			Biases:    b.Data,
		},
	}, nil
}
