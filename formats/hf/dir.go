package hf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/atomicfile"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// ReadOptions adjust ReadDirOptions.
type ReadOptions struct {
	// TokenizerPre overrides the BPE pre-tokenizer name (--tokenizer-pre).
	TokenizerPre string
}

// auxExt are the extensions of auxiliary files ReadDir carries over
// (tokenizer and generation configs, chat templates, model cards, custom
// code). Weights in other formats (*.bin, *.pt, *.gguf, ...) are not.
var auxExt = map[string]bool{".json": true, ".txt": true, ".md": true, ".jinja": true, ".model": true, ".py": true, ".tiktoken": true}

// ReadDir reads an HF checkpoint directory: config.json, the safetensors
// weights (single file, index.json shards or model*.safetensors) and the
// tokenizer. The model has Format hf; tensors carry canonical names
// (Arch.CanonicalName; unmapped names are kept; per-expert tensors
// are stacked into one 3-D tensor per layer and projection, as GGUF and
// mlx-lm store them) in checkpoint order, with
// the rotary_emb.inv_freq / attention.masked_bias buffers dropped as
// convert_hf_to_gguf.py drops them; Config is the raw config.json;
// Files holds the auxiliary files (tokenizer files, generation_config.json,
// chat_template.jinja, README.md, ...) by base name. Params.Tied is the
// effective value: true when the checkpoint has no lm_head.weight (the
// converter then writes no output tensor), whatever tie_word_embeddings
// says. Close the model to close the weight files.
func ReadDir(dir string) (*graph.Model, error) {
	return ReadDirOptions(dir, ReadOptions{})
}

// ReadDirOptions is ReadDir with options.
func ReadDirOptions(dir string, opt ReadOptions) (*graph.Model, error) {
	archName, p, raw, err := ReadConfigFile(filepath.Join(dir, ConfigName))
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	if len(ck.Files) == 0 {
		ck.Close()
		return nil, fmt.Errorf("%s: no safetensors weights (model.safetensors, %s or model*.safetensors)", dir, safetensors.IndexName)
	}
	m := &graph.Model{Format: graph.FormatHF, Path: dir, Arch: archName, Params: p, Config: raw, Files: map[string][]byte{}}
	for _, f := range ck.Files {
		m.Closers = append(m.Closers, f)
	}
	fail := func(err error) (*graph.Model, error) {
		m.Close()
		return nil, err
	}
	if f := ck.Files[0]; f != nil {
		for _, k := range f.MetadataKeys {
			m.Metadata = append(m.Metadata, graph.KV{Key: k, Value: f.Metadata[k]})
		}
	}
	a, ok := arch.Lookup(archName)
	if !ok {
		return fail(&arch.UnsupportedError{Arch: archName})
	}
	seen := map[string]string{}
	stacks := map[string]*expertStack{}
	hasOutput := false
	for _, t := range ck.Tensors {
		if strings.HasSuffix(t.Name, ".rotary_emb.inv_freq") || strings.HasSuffix(t.Name, ".attention.masked_bias") || strings.HasSuffix(t.Name, ".attention.bias") {
			continue
		}
		if arch.SkipHFTensor(t.Name) {
			continue // a multimodal checkpoint's vision/audio towers
		}
		name, expert, _ := a.CanonicalName(t.Name, false)
		if expert >= 0 {
			st := stacks[name]
			if st == nil {
				st = &expertStack{name: name}
				stacks[name] = st
				m.Tensors = append(m.Tensors, &graph.Tensor{Name: name}) // placeholder, keeps the order
			}
			st.parts = append(st.parts, expertPart{expert, t})
			continue
		}
		if prev, dup := seen[name]; dup {
			return fail(fmt.Errorf("%s: tensors %q and %q both map to %q", dir, prev, t.Name, name))
		}
		seen[name] = t.Name
		if name == "output.weight" {
			hasOutput = true
		}
		t.Name = name
		m.Tensors = append(m.Tensors, t)
	}
	for i, t := range m.Tensors {
		if st := stacks[t.Name]; st != nil && t.Data == nil {
			if m.Tensors[i], err = st.tensor(dir); err != nil {
				return fail(err)
			}
		}
	}
	m.Params.Tied = !hasOutput

	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || name == ConfigName || name == safetensors.IndexName || !auxExt[strings.ToLower(filepath.Ext(name))] {
			continue
		}
		limit, known := SideFileLimit(name)
		if info, err := e.Info(); err == nil && info.Size() > limit && !known {
			continue // a model card or custom code too large to carry over
		}
		b, err := osfile.ReadLimited(filepath.Join(dir, name), limit)
		if err != nil {
			return fail(err)
		}
		m.Files[name] = b
	}
	tok, err := ReadTokenizerOptions(dir, m.Params, TokenizerOptions{Arch: archName, Pre: opt.TokenizerPre})
	if err != nil {
		return fail(err)
	}
	m.Tokenizer = tok
	return m, nil
}

// DefaultMaxShardSize is save_pretrained's default max_shard_size ("5GB").
const DefaultMaxShardSize = 5_000_000_000

// WriteOptions adjust WriteDir.
type WriteOptions struct {
	// MaxShardSize is the largest shard in bytes; 0 means
	// DefaultMaxShardSize, negative means a single file.
	MaxShardSize int64
	// Overwrite replaces an existing non-empty directory.
	Overwrite bool
}

// WriteDir writes m as an HF checkpoint directory the way save_pretrained
// lays one out: config.json (WriteConfig), the weights in
// model.safetensors or model-0000i-of-0000N.safetensors shards of at most
// MaxShardSize bytes plus model.safetensors.index.json, metadata
// {"format":"pt"}, tensor data ordered like the reference writer (dtype,
// then name) with the header padded to 8; auxiliary files from m.Files;
// tokenizer files from m.Files when they hold a tokenizer.json or
// tokenizer.model, else from WriteTokenizerFiles(m.Tokenizer).
//
// Tensors keep their type and bytes: only F32, F16, BF16 (and other plain
// safetensors dtypes) can be written, and a model read from GGUF must have
// its llama Q/K rows un-permuted first (package convert). Names are mapped
// with Arch.HFName; rope_freqs.weight (GGUF-only, derived from the RoPE
// config) is left out. Without an output.weight tensor the config says
// tie_word_embeddings: true. Everything is written into a temporary
// directory beside dir and renamed into place at the end.
func WriteDir(dir string, m *graph.Model, opt WriteOptions) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(ents) > 0 && !opt.Overwrite {
			return fmt.Errorf("%s exists and is not empty", dir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	type item struct {
		hf string
		t  *graph.Tensor
	}
	a, ok := arch.Lookup(m.Arch)
	if !ok {
		return &arch.UnsupportedError{Arch: m.Arch}
	}
	var items []item
	hasOutput := false
	for _, t := range m.Tensors {
		if arch.Derived(t.Name) {
			continue
		}
		if _, ok := safetensors.DTypeName(t.Type); !ok || t.Type.IsQuantized() {
			return fmt.Errorf("hf: tensor %s is %v; an HF checkpoint holds plain F32/F16/BF16 tensors (dequantize first)", t.Name, t.Type)
		}
		if t.Data == nil {
			return fmt.Errorf("hf: tensor %s has no data", t.Name)
		}
		if want := t.Bytes(); t.Data.Size() != want {
			return fmt.Errorf("hf: tensor %s has %d bytes of data, its shape %v of %v needs %d", t.Name, t.Data.Size(), t.Shape, t.Type, want)
		}
		if t.Name == "output.weight" {
			hasOutput = true
		}
		if a.IsExpertTensor(t.Name) && len(t.Shape) == 3 && t.Shape[0] > 0 {
			per := t.Bytes() / t.Shape[0]
			for e := 0; e < int(t.Shape[0]); e++ {
				name, _ := a.HFExpertName(t.Name, e)
				part := &graph.Tensor{Name: t.Name, Shape: t.Shape[1:], Type: t.Type, Data: io.NewSectionReader(t.Data, int64(e)*per, per)}
				items = append(items, item{name, part})
			}
			continue
		}
		name, _ := a.HFName(t.Name, false)
		items = append(items, item{name, t})
	}
	// state-dict order: embeddings, layers in order, then the rest.
	group := func(canon string) int {
		switch {
		case canon == "token_embd.weight":
			return 0
		case graph.LayerIndex(canon) >= 0:
			return 1
		}
		return 2
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].t.Name, items[j].t.Name
		if ga, gb := group(a), group(b); ga != gb {
			return ga < gb
		}
		return graph.LayerIndex(a) < graph.LayerIndex(b)
	})
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.hf] {
			return fmt.Errorf("hf: two tensors map to HF name %q", it.hf)
		}
		seen[it.hf] = true
	}

	cm := *m
	cm.Params.Tied = !hasOutput
	if cm.Params.TorchDType == "" {
		// the dtype of the weight matrices, as save_pretrained records it
		for _, it := range items {
			if len(it.t.Shape) >= 2 {
				cm.Params.TorchDType = map[graph.Type]string{graph.F32: "float32", graph.F16: "float16", graph.BF16: "bfloat16"}[it.t.Type]
				break
			}
		}
	}
	cfg, err := WriteConfig(&cm)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for name, b := range m.Files {
		if name == ConfigName || name == safetensors.IndexName || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || name == "" {
			continue
		}
		files[name] = b
	}
	_, hasJSON := m.Files["tokenizer.json"]
	_, hasModel := m.Files["tokenizer.model"]
	if m.Tokenizer != nil && !hasJSON && !hasModel {
		tf, err := WriteTokenizerFiles(m.Tokenizer)
		if err != nil {
			return err
		}
		for name, b := range tf {
			files[name] = b
		}
	}
	files[ConfigName] = cfg
	if _, ok := files["generation_config.json"]; !ok && m.Tokenizer != nil {
		gc := map[string]any{"_from_model_config": true}
		if m.Tokenizer.BOS >= 0 {
			gc["bos_token_id"] = m.Tokenizer.BOS
		}
		if m.Tokenizer.EOS >= 0 {
			gc["eos_token_id"] = m.Tokenizer.EOS
		}
		if b, err := marshalIndented(gc); err == nil {
			files["generation_config.json"] = b
		}
	}

	td, err := atomicfile.CreateDir(dir)
	if err != nil {
		return err
	}
	defer td.Abort()
	tmp := td.Path

	sizes := make([]int64, len(items))
	var total int64
	for i, it := range items {
		sizes[i] = it.t.Data.Size()
		total += sizes[i]
	}
	maxShard := opt.MaxShardSize
	if maxShard == 0 {
		maxShard = DefaultMaxShardSize
	}
	shards := safetensors.SplitShards(sizes, maxShard)
	names := safetensors.ShardNames(len(shards))
	weightMap := map[string]string{}
	for si, shard := range shards {
		pts := make([]safetensors.PlanTensor, len(shard))
		for k, i := range shard {
			it := items[i]
			pts[k] = safetensors.PlanTensor{Name: it.hf, DType: it.t.Type, Shape: it.t.Shape}
			weightMap[it.hf] = names[si]
		}
		data := func(k int) (graph.Source, error) { return items[shard[k]].t.Data, nil }
		popt := safetensors.PlanOptions{Metadata: map[string]string{"format": "pt"}, Pad8: true, SortByDType: true}
		if err := safetensors.WriteFile(filepath.Join(tmp, names[si]), pts, data, popt); err != nil {
			return err
		}
	}
	if len(shards) > 1 {
		idx, err := safetensors.IndexJSON(weightMap, total, nil)
		if err != nil {
			return err
		}
		files[safetensors.IndexName] = idx
	}
	for _, name := range sortedKeys(files) {
		if err := os.WriteFile(filepath.Join(tmp, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return td.Commit()
}

// expertPart is one per-expert HF tensor of a stacked expert tensor.
type expertPart struct {
	e int
	t *graph.Tensor
}

// expertStack collects the per-expert HF tensors of one GGUF 3-D tensor.
type expertStack struct {
	name  string
	parts []expertPart
}

// tensor checks that the parts are experts 0..n-1 of one shape and type
// and returns the stacked tensor [n, rows, cols] reading them in order.
func (st *expertStack) tensor(dir string) (*graph.Tensor, error) {
	sort.Slice(st.parts, func(i, j int) bool { return st.parts[i].e < st.parts[j].e })
	first := st.parts[0].t
	srcs := make([]graph.Source, len(st.parts))
	for i, p := range st.parts {
		if p.e != i {
			return nil, fmt.Errorf("%s: %s: expert %d is missing (found %d experts, up to number %d)", dir, st.name, i, len(st.parts), st.parts[len(st.parts)-1].e)
		}
		if p.t.Type != first.Type || !slices.Equal(p.t.Shape, first.Shape) || len(p.t.Shape) != 2 {
			return nil, fmt.Errorf("%s: %s: expert %d is %v %v, expert 0 is %v %v (want equal 2-D tensors)", dir, p.t.Name, p.e, p.t.Type, p.t.Shape, first.Type, first.Shape)
		}
		srcs[i] = p.t.Data
	}
	shape := append([]int64{int64(len(st.parts))}, first.Shape...)
	return &graph.Tensor{Name: st.name, Shape: shape, Type: first.Type, Data: graph.Concat(srcs...)}, nil
}
