package arch

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/jsonnum"
)

// ggmlQuantVersion is GGML_QUANT_VERSION (general.quantization_version).
const ggmlQuantVersion = 2

// ModelKV returns the GGUF metadata that llama.cpp's convert_hf_to_gguf.py
// (llama.cpp 34af94cd: conversion/base.py TextModel, conversion/llama.py
// LlamaModel, conversion/qwen.py Qwen2Model, gguf-py Metadata and
// SpecialVocab) writes for m, a llama or qwen2 model read from another
// format, in the converter's key order and with its value types.
// fileType is general.file_type (a LLAMA_FTYPE: 0 F32, 1 F16, 32 BF16,
// ...), which only the caller knows.
//
// Hyperparameters come from m.Config (the raw config.json, looked up with
// the converter's find_hparam key lists) and fall back to m.Params;
// general.* authorship keys from README.md front matter, config.json's
// _name_or_path and the directory name (gguf-py Metadata heuristics),
// sampling defaults from generation_config.json, the size label from the
// tensor element count; the vocabulary from m.Tokenizer, with the
// add_*_token flags derived from tokenizer.json's post-processor and
// tokenizer_config.json as SpecialVocab does (see specialAdds).
//
// Not reproduced: llama3 rope scaling's rope_freqs.weight tensor (a
// tensor, not a KV: the convert package adds it), pooling keys,
// the BPE pre-tokenizer hash (m.Tokenizer.Pre must name it), and the
// model card's base_model/dataset URL forms other than plain HF ids and
// https://huggingface.co/org/name links.
func ModelKV(m *graph.Model, fileType uint32) ([]graph.KV, error) {
	a, err := ForModel(m)
	if err != nil {
		return nil, err
	}
	b := &KVBuilder{arch: m.Arch}
	hp := newHParams(m)

	b.Add("general.architecture", m.Arch)
	b.Add("general.type", "model")
	if err := addMetadata(b, m); err != nil {
		return nil, err
	}

	// TextModel.set_gguf_parameters
	layers, ok := hp.Int("n_layers", "num_hidden_layers", "n_layer", "num_layers")
	if !ok {
		layers, ok = m.Params.Layers, m.Params.Layers > 0
	}
	if !ok {
		return nil, fmt.Errorf("gguf: %s: model has no layer count", m.Path)
	}
	b.AddArch("block_count", uint32(layers))
	if v, ok := hp.IntOr(m.Params.ContextLength, "max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"); ok {
		b.AddArch("context_length", uint32(v))
	}
	nEmbd, hasEmbd := hp.IntOr(m.Params.Embedding, "hidden_size", "n_embd", "dim")
	if hasEmbd {
		b.AddArch("embedding_length", uint32(nEmbd))
	}
	if v, ok := hp.IntOr(m.Params.FFN, "prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"); ok {
		b.AddArch("feed_forward_length", uint32(v))
	}
	nHead, hasHead := hp.IntOr(m.Params.Heads, "num_attention_heads", "n_head", "n_heads")
	if hasHead {
		b.AddArch("attention.head_count", uint32(nHead))
	}
	if v, ok := hp.IntOr(m.Params.KVHeads, "num_key_value_heads", "n_kv_heads"); ok {
		b.AddArch("attention.head_count_kv", uint32(v))
	}
	if c, ok := hp.Raw["is_causal"].(bool); ok && !c {
		b.AddArch("attention.causal", false)
	}
	rope := hp.Rope()
	if rt, ok := rope["rope_type"].(string); ok {
		factor, hasFactor := jsonnum.Float(rope["factor"])
		switch {
		case rt == "linear" && hasFactor:
			b.AddArch("rope.scaling.type", "linear")
			b.AddArch("rope.scaling.factor", float32(factor))
		case rt == "yarn" && hasFactor:
			b.AddArch("rope.scaling.type", "yarn")
			b.AddArch("rope.scaling.factor", float32(factor))
			orig, ok := jsonnum.Float(rope["original_max_position_embeddings"])
			if !ok {
				return nil, fmt.Errorf("gguf: %s: yarn rope scaling without original_max_position_embeddings", m.Path)
			}
			b.AddArch("rope.scaling.original_context_length", uint32(orig))
			for _, kv := range [][2]string{{"extrapolation_factor", "yarn_ext_factor"}, {"attention_factor", "yarn_attn_factor"}, {"beta_fast", "yarn_beta_fast"}, {"beta_slow", "yarn_beta_slow"}} {
				v, ok := jsonnum.Float(rope[kv[0]])
				if !ok && kv[0] == "attention_factor" {
					v, ok = jsonnum.Float(rope["attn_factor"])
				}
				if ok {
					b.AddArch("rope.scaling."+kv[1], float32(v))
				}
			}
		case rt == "su" || rt == "longrope":
			b.AddArch("rope.scaling.type", "longrope")
		}
	} else if hp.Raw == nil && m.Params.RopeScaling != nil {
		rs := m.Params.RopeScaling
		switch rs.Type {
		case "linear", "yarn":
			b.AddArch("rope.scaling.type", rs.Type)
			b.AddArch("rope.scaling.factor", float32(rs.Factor))
			if rs.Type == "yarn" {
				b.AddArch("rope.scaling.original_context_length", uint32(rs.OriginalContext))
			}
		case "longrope", "su":
			b.AddArch("rope.scaling.type", "longrope")
		}
	}
	if theta, ok := jsonnum.Float(rope["rope_theta"]); ok {
		b.AddArch("rope.freq_base", float32(theta))
	} else if hp.Raw == nil && m.Params.RopeBase != 0 {
		b.AddArch("rope.freq_base", float32(m.Params.RopeBase))
	}
	if theta, ok := hp.RopeSWATheta(); ok {
		b.AddArch("rope.freq_base_swa", float32(theta))
	} else if hp.Raw == nil && m.Params.RopeBaseSWA != 0 {
		b.AddArch("rope.freq_base_swa", float32(m.Params.RopeBaseSWA))
	}
	if v, ok := hp.Float("rms_norm_eps", "norm_eps"); ok {
		b.AddArch("attention.layer_norm_rms_epsilon", float32(v))
	} else if hp.Raw == nil && m.Params.RMSEps != 0 {
		b.AddArch("attention.layer_norm_rms_epsilon", float32(m.Params.RMSEps))
	}
	if v, ok := hp.Float("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"); ok {
		b.AddArch("attention.layer_norm_epsilon", float32(v))
	}
	if err := expertKV(b, hp, m); err != nil {
		return nil, err
	}
	headDim, hasHeadDim := hp.Int("head_dim")
	if hp.Raw == nil && m.Params.HeadDim != 0 && hasHead && m.Params.HeadDim*nHead != nEmbd {
		headDim, hasHeadDim = m.Params.HeadDim, true
	}
	if hasHeadDim {
		b.AddArch("attention.key_length", uint32(headDim))
		b.AddArch("attention.value_length", uint32(headDim))
	}
	b.Add("general.file_type", fileType)

	b.HeadDim, b.HasHeadDim, b.NHead, b.HasHead, b.NEmbd = headDim, hasHeadDim, nHead, hasHead, nEmbd
	if a.GGUFKV != nil {
		if err := a.GGUFKV(b, hp, m); err != nil {
			return nil, err
		}
	}
	b.Add("general.quantization_version", uint32(ggmlQuantVersion))

	if err := addVocab(b, m); err != nil {
		return nil, err
	}
	return b.kv, b.err
}

type KVBuilder struct {
	// What TextModel.set_gguf_parameters found, for the architecture's
	// own keys: the head dimension (and whether config.json named one),
	// the attention head count and the embedding width.
	HeadDim, NHead, NEmbd int
	HasHeadDim, HasHead   bool

	arch string
	kv   []graph.KV
	err  error
}

// add sets key, keeping the position of an existing key (a Python dict
// assignment, as GGUFWriter.add_key_value does).
func (b *KVBuilder) Add(key string, v any) {
	for i := range b.kv {
		if b.kv[i].Key == key {
			b.kv[i].Value = v
			return
		}
	}
	b.kv = append(b.kv, graph.KV{Key: key, Value: v})
}

func (b *KVBuilder) AddArch(key string, v any) { b.Add(b.arch+"."+key, v) }

func (b *KVBuilder) Remove(key string) {
	for i := range b.kv {
		if b.kv[i].Key == key {
			b.kv = append(b.kv[:i], b.kv[i+1:]...)
			return
		}
	}
}

// HParams is the converter's view of config.json: the root merged with
// text_config, searched with find_hparam key lists.
type HParams struct {
	Raw map[string]any
}

func newHParams(m *graph.Model) HParams {
	if m.Config == nil {
		return HParams{}
	}
	raw := make(map[string]any, len(m.Config))
	for k, v := range m.Config {
		raw[k] = v
	}
	if tc, ok := m.Config["text_config"].(map[string]any); ok {
		for k, v := range tc {
			raw[k] = v
		}
	}
	return HParams{Raw: raw}
}

func (h HParams) Find(keys ...string) (any, bool) {
	for _, k := range keys {
		if v, ok := h.Raw[k]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

func (h HParams) Int(keys ...string) (int, bool) {
	v, ok := h.Find(keys...)
	if !ok {
		return 0, false
	}
	x, ok := jsonnum.Float(v)
	return int(x), ok && x == math.Trunc(x)
}

// intOr is int with a fallback to a Params value when there is no
// config.json at all.
func (h HParams) IntOr(fallback int, keys ...string) (int, bool) {
	if h.Raw == nil {
		return fallback, fallback != 0
	}
	return h.Int(keys...)
}

func (h HParams) Float(keys ...string) (float64, bool) {
	v, ok := h.Find(keys...)
	if !ok {
		return 0, false
	}
	return jsonnum.Float(v)
}

// rope is TextModel.rope_parameters (rope_parameters or rope_scaling, with
// the top-level rope_theta mirrored in), narrowed to full_attention.
func (h HParams) Rope() map[string]any {
	rp := map[string]any{}
	src, _ := h.Raw["rope_parameters"].(map[string]any)
	if src == nil {
		src, _ = h.Raw["rope_scaling"].(map[string]any)
	}
	for k, v := range src {
		rp[k] = v
	}
	_, full := rp["full_attention"]
	_, sliding := rp["sliding_attention"]
	if !full && !sliding {
		if _, ok := rp["rope_theta"]; !ok {
			if v, ok := h.Find("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"); ok {
				rp["rope_theta"] = v
			}
		}
		if _, ok := rp["rope_type"]; !ok {
			if v, ok := rp["type"]; ok && v != nil {
				rp["rope_type"] = v
			}
		}
	}
	if fa, ok := rp["full_attention"].(map[string]any); ok {
		return fa
	}
	return rp
}

// RopeSWATheta is TextModel's rope.freq_base_swa: rope_parameters'
// (or rope_scaling's) "sliding_attention" rope_theta, where a config
// without per-attention-type entries has one mirrored from
// local_rope_theta, rope_local_base_freq and their aliases.
func (h HParams) RopeSWATheta() (float64, bool) {
	src, _ := h.Raw["rope_parameters"].(map[string]any)
	if src == nil {
		src, _ = h.Raw["rope_scaling"].(map[string]any)
	}
	_, full := src["full_attention"]
	sa, sliding := src["sliding_attention"]
	if !full && !sliding {
		v, ok := h.Find("local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq")
		if !ok {
			return 0, false
		}
		return jsonnum.Float(v)
	}
	m, _ := sa.(map[string]any)
	return jsonnum.Float(m["rope_theta"])
}

// --- general.* (gguf-py Metadata) ------------------------------------------

type metadata struct {
	name, author, version, organization, finetune, basename, description string
	sizeLabel, licenseName, licenseLink                                  string
	license                                                              string
	sourceURL, sourceDOI, sourceUUID, sourceRepoURL                      string
	baseModels, datasets                                                 []map[string]string
	tags, languages                                                      []string
	hasTags, hasLanguages, hasBaseModels, hasDatasets                    bool
}

func addMetadata(b *KVBuilder, m *graph.Model) error {
	total := int64(0)
	for _, t := range m.Tensors {
		total += t.Elements()
	}
	var md metadata
	card, err := modelCard(m.Files["README.md"])
	if err != nil {
		return fmt.Errorf("gguf: %s: README.md front matter: %w", m.Path, err)
	}
	md.fromCard(card, total)
	if v, ok := m.Config["_name_or_path"].(string); ok && strings.Count(v, "/") <= 1 {
		md.fromID(v, total)
	}
	dirName := ""
	if m.Path != "" {
		dirName = filepath.Base(filepath.Clean(m.Path))
		md.fromID(dirName, total)
	}
	if md.name == "" {
		md.name = dirName
	}
	if md.sizeLabel == "" && total > 0 {
		md.sizeLabel = sizeLabel(total)
		if shared, expert, n := expertParams(m); n > 0 {
			md.sizeLabel = strconv.Itoa(n) + "x" + sizeLabel(shared+expert)
		}
	}

	// sampling defaults from generation_config.json
	if gc := m.Files["generation_config.json"]; gc != nil {
		var g map[string]any
		dec := json.NewDecoder(strings.NewReader(string(gc)))
		dec.UseNumber()
		if dec.Decode(&g) == nil {
			for _, s := range []struct {
				json, key string
				int       bool
			}{
				{"sequence", "sequence", false}, {"top_k", "top_k", true}, {"top_p", "top_p", false},
				{"min_p", "min_p", false}, {"xtc_probability", "xtc_probability", false},
				{"xtc_threshold", "xtc_threshold", false}, {"temperature", "temp", false},
				{"penalty_last_n", "penalty_last_n", true}, {"penalty_repeat", "penalty_repeat", false},
				{"mirostat", "mirostat", true}, {"mirostat_tau", "mirostat_tau", false}, {"mirostat_eta", "mirostat_eta", false},
			} {
				v, ok := g[s.json]
				if !ok || v == nil {
					continue
				}
				key := "general.sampling." + s.key
				if str, ok := v.(string); ok && s.key == "sequence" {
					b.Add(key, str)
					continue
				}
				x, ok := jsonnum.Float(v)
				if !ok {
					continue
				}
				if s.int {
					b.Add(key, int32(x))
				} else {
					b.Add(key, float32(x))
				}
			}
		}
	}

	b.Add("general.name", md.name)
	for _, kv := range [][2]string{
		{"general.author", md.author}, {"general.version", md.version}, {"general.organization", md.organization},
		{"general.finetune", md.finetune}, {"general.basename", md.basename}, {"general.description", md.description},
		{"general.size_label", md.sizeLabel}, {"general.license", md.license},
		{"general.license.name", md.licenseName}, {"general.license.link", md.licenseLink},
		{"general.source.url", md.sourceURL}, {"general.source.doi", md.sourceDOI},
		{"general.source.uuid", md.sourceUUID}, {"general.source.repo_url", md.sourceRepoURL},
	} {
		if kv[1] != "" {
			b.Add(kv[0], kv[1])
		}
	}
	entries := func(prefix string, list []map[string]string, has bool) {
		if !has {
			return
		}
		b.Add(prefix+".count", uint32(len(list)))
		for i, e := range list {
			for _, f := range []string{"name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"} {
				if v, ok := e[f]; ok {
					b.Add(fmt.Sprintf("%s.%d.%s", prefix, i, f), v)
				}
			}
		}
	}
	entries("general.base_model", md.baseModels, md.hasBaseModels)
	entries("general.dataset", md.datasets, md.hasDatasets)
	if md.hasTags {
		b.Add("general.tags", md.tags)
	}
	if md.hasLanguages {
		b.Add("general.languages", md.languages)
	}
	return nil
}

// modelCard parses README.md YAML front matter (Metadata.load_model_card).
func modelCard(readme []byte) (map[string]any, error) {
	if len(readme) == 0 {
		return nil, nil
	}
	lines := strings.Split(strings.ReplaceAll(string(readme), "\r\n", "\n"), "\n")
	if lines[0] != "---" {
		return nil, nil
	}
	var y []string
	for _, l := range lines[1:] {
		if l == "---" {
			break
		}
		y = append(y, l)
	}
	text := strings.Join(y, "\n") + "\n"
	text = strings.ReplaceAll(text, "- no\n", "- \"no\"\n")
	text = strings.ReplaceAll(text, "\t", "  ")
	var out map[string]any
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (md *metadata) fromCard(card map[string]any, total int64) {
	if card == nil {
		return
	}
	use := func(dst *string, key string) {
		if *dst != "" {
			return
		}
		if v, ok := card[key]; ok && v != nil {
			*dst = fmt.Sprint(v)
		}
	}
	for _, p := range []struct {
		dst  *string
		keys []string
	}{
		{&md.name, []string{"name", "model_name"}},
		{&md.author, []string{"author", "model_author", "model_creator"}},
		{&md.version, []string{"version", "model_version"}},
		{&md.organization, []string{"organization", "model_organization"}},
		{&md.description, []string{"description", "model_description"}},
		{&md.finetune, []string{"finetune", "model_finetune"}},
		{&md.basename, []string{"basename", "model_basename", "model_type"}},
		{&md.sizeLabel, []string{"size_label", "model_size_label"}},
		{&md.sourceURL, []string{"url", "model_url"}},
		{&md.sourceDOI, []string{"doi", "model_doi"}},
		{&md.sourceUUID, []string{"uuid", "model_uuid"}},
		{&md.sourceRepoURL, []string{"repo_url", "model_repo_url"}},
		{&md.licenseName, []string{"license_name"}},
		{&md.licenseLink, []string{"license_link"}},
	} {
		for _, k := range p.keys {
			use(p.dst, k)
		}
	}
	switch l := card["license"].(type) {
	case string:
		md.license = l
	case []any:
		parts := make([]string, len(l))
		for i, x := range l {
			parts[i] = fmt.Sprint(x)
		}
		md.license = strings.Join(parts, ",")
	}
	ids := func(keys ...string) ([]map[string]string, bool) {
		for _, k := range keys {
			v, ok := card[k]
			if !ok {
				continue
			}
			var list []any
			switch x := v.(type) {
			case string:
				list = []any{x}
			case []any:
				list = x
			}
			out := []map[string]string{}
			for _, e := range list {
				switch x := e.(type) {
				case string:
					out = append(out, refEntry(x, total))
				case map[string]any:
					m := map[string]string{}
					for k, v := range x {
						m[k] = fmt.Sprint(v)
					}
					out = append(out, m)
				}
			}
			return out, true
		}
		return nil, false
	}
	md.baseModels, md.hasBaseModels = ids("base_model", "base_models", "base_model_sources")
	md.datasets, md.hasDatasets = ids("datasets", "dataset", "dataset_sources")
	strs := func(dst *[]string, has *bool, keys ...string) {
		for _, k := range keys {
			switch x := card[k].(type) {
			case string:
				*dst, *has = append(*dst, x), true
			case []any:
				for _, e := range x {
					*dst = append(*dst, fmt.Sprint(e))
				}
				*has = true
			}
		}
	}
	strs(&md.tags, &md.hasTags, "tags", "pipeline_tag")
	strs(&md.languages, &md.hasLanguages, "languages", "language")
}

var hfURL = regexp.MustCompile(`^https?://huggingface.co/([^/]+/[^/]+)$`)

// refEntry describes a base model or dataset named by an HF id or URL.
func refEntry(id string, total int64) map[string]string {
	e := map[string]string{}
	fill := func(id string, withRepo bool) {
		full, org, _, _, version, _ := modelIDComponents(id, total)
		if full != "" {
			e["name"] = idToTitle(full)
		}
		if org != "" {
			e["organization"] = idToTitle(org)
		}
		if version != "" {
			e["version"] = version
		}
		if withRepo && org != "" && full != "" {
			e["repo_url"] = "https://huggingface.co/" + org + "/" + full
		}
	}
	if strings.HasPrefix(id, "http://") || strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "ssh://") {
		e["repo_url"] = id
		if m := hfURL.FindStringSubmatch(id); m != nil {
			fill(m[1], false)
		}
		return e
	}
	fill(id, true)
	return e
}

// fromID applies the heuristics of a model id (HF "org/name" or a
// directory name) to fields still unset.
func (md *metadata) fromID(id string, total int64) {
	full, org, basename, finetune, version, size := modelIDComponents(id, total)
	set := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst = v
		}
	}
	if full != "" {
		set(&md.name, idToTitle(full))
	}
	if org != "" {
		set(&md.organization, idToTitle(org))
	}
	set(&md.basename, basename)
	set(&md.finetune, finetune)
	set(&md.version, version)
	set(&md.sizeLabel, size)
}

var (
	reVersion   = regexp.MustCompile(`(?i)^(v|iter)?\d+([.]\d+)*$`)
	reQuantType = regexp.MustCompile(`(?i)^(i?q\d(_\w)*|b?fp?(16|32))$`)
	reSize      = regexp.MustCompile(`(?i)^(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)$`)
	reFinetune  = regexp.MustCompile(`(?i)^(chat|instruct|vision|lora)$`)
	reTitleSkip = regexp.MustCompile(`^(v\d+(?:\.\d+)*|\d.*)$`)
)

// modelIDComponents ports Metadata.get_model_id_components: the full
// name, organization, basename, finetune, version and size label of a
// model id ("" for None).
func modelIDComponents(id string, total int64) (full, org, basename, finetune, version, size string) {
	if id == "" {
		return
	}
	if strings.Contains(id, " ") {
		return id, "", "", "", "", ""
	}
	full = id
	if i := strings.IndexByte(id, '/'); i >= 0 {
		org, full = id[:i], id[i+1:]
	}
	if strings.HasPrefix(org, ".") {
		org = ""
	}
	var parts []string
	for _, p := range strings.Split(full, "-") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	types := make([]map[string]bool, len(parts))
	for i, part := range parts {
		types[i] = map[string]bool{}
		switch {
		case reVersion.MatchString(part):
			types[i]["version"] = true
		case reQuantType.MatchString(part):
			types[i]["type"] = true
			parts[i] = strings.ToUpper(part)
		case i > 0 && reSize.MatchString(part):
			part = strings.ReplaceAll(part, "_", ".")
			if n := len(part); unicode.IsDigit(rune(part[n-1])) && n >= 2 {
				part = part[:n-2] + "." + part[n-1:] + part[n-2:n-1]
			}
			if n := len(part); n > 1 && unicode.IsDigit(rune(part[n-2])) && strings.ContainsRune("kmbt", rune(part[n-1])) {
				part = part[:n-1] + strings.ToUpper(part[n-1:])
			}
			if total != 0 {
				if f, err := strconv.ParseFloat(part[:len(part)-1], 64); err == nil {
					label := f * math.Pow(1000, float64(strings.IndexByte(" KMBT", part[len(part)-1])))
					if (total < 0 && label < float64(-total/8)) || (total > 0 && math.Abs(label-float64(total)) > float64(7*total/8)) {
						types[i]["finetune"] = true
						part = part[:len(part)-1] + strings.ToLower(part[len(part)-1:])
					}
				}
			}
			if len(types[i]) == 0 {
				types[i]["size_label"] = true
			}
			parts[i] = part
		case i > 0 && reFinetune.MatchString(part):
			if total < 0 && strings.EqualFold(part, "lora") {
				types[i]["type"] = true
			} else {
				types[i]["finetune"] = true
			}
		}
	}
	hasDigit := false
	for i, p := range parts {
		if types[i]["size_label"] && strings.ContainsFunc(p, unicode.IsDigit) {
			hasDigit = true
		}
	}
	if hasDigit {
		for i, p := range parts {
			if types[i]["size_label"] && !strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsLetter(r) }) {
				delete(types[i], "size_label")
			}
		}
	}
	atStart := true
	for i, p := range parts {
		if atStart && ((len(types[i]) == 0 && unicode.IsLetter([]rune(p)[0])) || types[i]["version"]) {
			types[i]["basename"] = true
		} else {
			atStart = false
			if len(types[i]) == 0 {
				types[i]["finetune"] = true
			}
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if types[i]["basename"] && len(types[i]) > 1 {
			delete(types[i], "basename")
		} else {
			break
		}
	}
	join := func(pred func(t map[string]bool) bool, dedup bool) string {
		var out []string
		seen := map[string]bool{}
		for i, p := range parts {
			if pred(types[i]) && !(dedup && seen[p]) {
				out = append(out, p)
				seen[p] = true
			}
		}
		return strings.Join(out, "-")
	}
	basename = join(func(t map[string]bool) bool { return t["basename"] }, false)
	size = join(func(t map[string]bool) bool { return t["size_label"] }, true)
	finetune = join(func(t map[string]bool) bool { return t["finetune"] }, false)
	version = join(func(t map[string]bool) bool { return t["version"] && !t["basename"] }, false)
	if size == "" && finetune == "" && version == "" {
		basename = ""
	}
	return
}

// idToTitle ports Metadata.id_to_title: words (split on '-' and spaces)
// that are all lower case and not version-like get Python's str.title().
func idToTitle(s string) string {
	words := strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "-", " "))
	for i, w := range words {
		if isLower(w) && !reTitleSkip.MatchString(w) {
			words[i] = pyTitle(w)
		}
	}
	return strings.Join(words, " ")
}

func isLower(s string) bool {
	cased := false
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			return false
		}
		if unicode.IsLower(r) {
			cased = true
		}
	}
	return cased
}

// pyTitle is Python's str.title: a letter after a non-letter is upper
// cased, other letters lower cased.
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		cased := unicode.IsLetter(r) && (unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r))
		switch {
		case cased && !prevCased:
			b.WriteRune(unicode.ToTitle(r))
		case cased:
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
		prevCased = cased
	}
	return b.String()
}

// sizeLabel ports gguf.utility.size_label for dense models
// (model_weight_count_rounded_notation with min_digits 2).
func sizeLabel(n int64) string {
	x := float64(n)
	var scaled float64
	var suffix string
	switch {
	case x > 1e12:
		scaled, suffix = x*1e-12, "T"
	case x > 1e9:
		scaled, suffix = x*1e-9, "B"
	case x > 1e6:
		scaled, suffix = x*1e-6, "M"
	default:
		scaled, suffix = x*1e-3, "K"
	}
	digits := strings.TrimLeft(strconv.FormatFloat(math.RoundToEven(scaled), 'f', 0, 64), "0")
	fix := max(2-len(digits), 0)
	return strconv.FormatFloat(scaled, 'f', fix, 64) + suffix
}

// --- tokenizer.* ---------------------------------------------------------------

func addVocab(b *KVBuilder, m *graph.Model) error {
	t := m.Tokenizer
	if t == nil {
		return fmt.Errorf("gguf: %s: model has no tokenizer", m.Path)
	}
	n := len(t.Tokens)
	if t.Types != nil && len(t.Types) != n {
		return fmt.Errorf("gguf: %s: tokenizer has %d token types for %d tokens", m.Path, len(t.Types), n)
	}
	types := t.Types
	if types == nil {
		types = make([]int32, n)
		for i := range types {
			types[i] = graph.TokenNormal
		}
	}
	// LlamaModel.set_vocab writes add_space_prefix (tokenizer_config
	// add_prefix_space) before the vocabulary.
	if a, ok := Lookup(m.Arch); ok && a.SPMSpacePrefixKV && t.AddSpacePrefix != nil {
		b.Add("tokenizer.ggml.add_space_prefix", *t.AddSpacePrefix)
	}
	switch t.Model {
	case graph.TokenizerSPM:
		if len(t.Scores) != n {
			return fmt.Errorf("gguf: %s: SentencePiece tokenizer has %d scores for %d tokens", m.Path, len(t.Scores), n)
		}
		b.Add("tokenizer.ggml.model", "llama")
		b.Add("tokenizer.ggml.pre", "default")
		b.Add("tokenizer.ggml.tokens", t.Tokens)
		b.Add("tokenizer.ggml.scores", t.Scores)
		b.Add("tokenizer.ggml.token_type", types)
	case graph.TokenizerBPE:
		if t.Pre == "" {
			return fmt.Errorf("gguf: %s: BPE tokenizer has no pre-tokenizer name (tokenizer.ggml.pre)", m.Path)
		}
		b.Add("tokenizer.ggml.model", "gpt2")
		b.Add("tokenizer.ggml.pre", t.Pre)
		b.Add("tokenizer.ggml.tokens", t.Tokens)
		b.Add("tokenizer.ggml.token_type", types)
		if len(t.Merges) > 0 {
			b.Add("tokenizer.ggml.merges", t.Merges)
		}
	default:
		return fmt.Errorf("gguf: %s: tokenizer model %q is not supported for HF->GGUF (llama or gpt2)", m.Path, t.Model)
	}
	// SpecialVocab.add_to_gguf: ids (types with a GGUFWriter handler, in
	// the order SpecialVocab found them, see specialIDOrder; types it did
	// not find in the files in special_token_types order), add_*_token
	// flags, chat template.
	type special struct {
		typ string
		id  int
		key string
	}
	specials := []special{
		{"bos", t.BOS, "bos_token_id"}, {"eos", t.EOS, "eos_token_id"}, {"unk", t.UNK, "unknown_token_id"},
		{"sep", t.SEP, "seperator_token_id"}, {"pad", t.PAD, "padding_token_id"}, {"mask", t.MASK, "mask_token_id"},
		{"eot", t.EOT, "eot_token_id"}, {"eom", t.EOM, "eom_token_id"},
	}
	var ordered []special
	for _, typ := range specialIDOrder(m) {
		for i, s := range specials {
			if s.typ == typ {
				ordered = append(ordered, s)
				specials = append(specials[:i:i], specials[i+1:]...)
				break
			}
		}
	}
	for _, s := range append(ordered, specials...) {
		if s.id >= 0 && s.id < n {
			b.Add("tokenizer.ggml."+s.key, uint32(s.id))
		}
	}
	adds, err := specialAdds(m)
	if err != nil {
		return err
	}
	for _, a := range adds {
		switch a.typ {
		case "bos", "eos", "sep": // GGUFWriter has add_add_{bos,eos,sep}_token only
			b.Add("tokenizer.ggml.add_"+a.typ+"_token", a.val)
		}
	}
	if t.ChatTemplate != "" {
		b.Add("tokenizer.chat_template", t.ChatTemplate)
	}
	// Gemma's set_vocab: add_space_prefix false after the SentencePiece
	// vocabulary.
	if a, ok := Lookup(m.Arch); ok && a.SPMNoSpacePrefix && t.Model == graph.TokenizerSPM {
		b.Add("tokenizer.ggml.add_space_prefix", false)
	}
	return nil
}

type addFlag struct {
	typ string
	val bool
}

// specialAdds ports the add_special_token part of gguf-py's SpecialVocab:
// the flags implied by tokenizer.json's post_processor (RobertaProcessing,
// or a TemplateProcessing read crudely as SpecialVocab does), then
// tokenizer_config.json's add_<type>_token booleans, in dict insertion
// order. A SentencePiece checkpoint without tokenizer.json is read as the
// tokenizer.json transformers writes for it would be: its template is
// "[bos] $A [eos]" / "[bos] $A [eos] [bos] $B [eos]" with bos/eos present
// per the tokenizer's AddBOS/AddEOS (what kjv-llama.bf16.gguf, converted
// from such a directory by llama.cpp, shows).
func specialAdds(m *graph.Model) ([]addFlag, error) {
	var flags []addFlag
	set := func(typ string, v bool) {
		for i := range flags {
			if flags[i].typ == typ {
				flags[i].val = v
				return
			}
		}
		flags = append(flags, addFlag{typ, v})
	}
	var tc map[string]any
	if b := m.Files["tokenizer_config.json"]; b != nil {
		if err := json.Unmarshal(b, &tc); err != nil {
			return nil, fmt.Errorf("gguf: %s: tokenizer_config.json: %w", m.Path, err)
		}
	}
	tokStr := func(key string) string { // a *_token entry as SpecialVocab compares it
		switch v := tc[key].(type) {
		case string:
			return v
		case map[string]any:
			return "\x00<AddedToken object>" // truthy, equal to no template id
		}
		return ""
	}
	bos, cls, eos, sep := tokStr("bos_token"), tokStr("cls_token"), tokStr("eos_token"), tokStr("sep_token")
	if bos == "" && cls != "" {
		bos = cls
	}
	if eos == "" && sep != "" {
		eos = sep
	}

	var processors []map[string]any
	if b := m.Files["tokenizer.json"]; b != nil {
		var tj struct {
			PostProcessor map[string]any `json:"post_processor"`
		}
		if err := json.Unmarshal(b, &tj); err != nil {
			return nil, fmt.Errorf("gguf: %s: tokenizer.json: %w", m.Path, err)
		}
		if pp := tj.PostProcessor; pp != nil {
			if list, ok := pp["processors"].([]any); ok {
				for _, p := range list {
					if pm, ok := p.(map[string]any); ok {
						processors = append(processors, pm)
					}
				}
			} else {
				processors = []map[string]any{pp}
			}
		}
	} else if t := m.Tokenizer; t != nil && t.Model == graph.TokenizerSPM {
		bosTok, eosTok := bos, eos
		if bosTok == "" && t.BOS >= 0 && t.BOS < len(t.Tokens) {
			bosTok = t.Tokens[t.BOS]
		}
		if eosTok == "" && t.EOS >= 0 && t.EOS < len(t.Tokens) {
			eosTok = t.Tokens[t.EOS]
		}
		special := func(s string) any { return map[string]any{"SpecialToken": map[string]any{"id": s}} }
		seq := func(s string) any { return map[string]any{"Sequence": map[string]any{"id": s}} }
		var single, pair []any
		for _, part := range []string{"A", "B"} {
			var p []any
			if t.AddBOS {
				p = append(p, special(bosTok))
			}
			p = append(p, seq(part))
			if t.AddEOS {
				p = append(p, special(eosTok))
			}
			if part == "A" {
				single = p
			}
			pair = append(pair, p...)
		}
		processors = []map[string]any{{"type": "TemplateProcessing", "single": single, "pair": pair}}
	}

	for _, p := range processors {
		switch p["type"] {
		case "RobertaProcessing":
			set("bos", true)
			set("eos", true)
			set("sep", true)
		case "TemplateProcessing":
			templateFlags(p, &bos, &eos, &cls, &sep, len(tc) > 0, set)
		}
	}
	if len(tc) == 0 {
		return flags, nil
	}
	for _, typ := range []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"} {
		if v, ok := tc["add_"+typ+"_token"].(bool); ok {
			set(typ, v)
		}
	}
	return flags, nil
}

// templateFlags is SpecialVocab's crude TemplateProcessing reading.
func templateFlags(p map[string]any, bos, eos, cls, sep *string, haveTC bool, set func(string, bool)) {
	items := func(key string) []any { l, _ := p[key].([]any); return l }
	specialID := func(e any) string {
		m, _ := e.(map[string]any)
		st, _ := m["SpecialToken"].(map[string]any)
		s, _ := st["id"].(string)
		return s
	}
	seqID := func(e any) string {
		m, _ := e.(map[string]any)
		st, _ := m["Sequence"].(map[string]any)
		s, _ := st["id"].(string)
		return s
	}
	single, pair := items("single"), items("pair")
	first, last := "", ""
	if len(single) > 1 {
		if first = specialID(single[0]); first != "" {
			if !haveTC {
				*bos = first
			} else if first != *bos && first != *cls {
				if *bos == "" {
					*bos = first
				}
				if *cls == "" {
					*cls = first
				}
			}
			set("bos", first == *bos || first == *cls)
		}
		if last = specialID(single[len(single)-1]); last != "" {
			if !haveTC || last != *eos {
				*eos = last
			}
			set("eos", last == *eos)
		}
	}
	if len(pair) == 0 {
		return
	}
	start, stop := 0, len(pair)
	if first != "" && specialID(pair[0]) == first {
		start = 1
	}
	if last != "" && specialID(pair[len(pair)-1]) == last {
		stop = len(pair) - 1
	}
	if start >= stop {
		return
	}
	mid := pair[start:stop]
	if seqID(mid[0]) != "A" || seqID(mid[len(mid)-1]) != "B" || len(mid) < 3 {
		return
	}
	mid = mid[1 : len(mid)-1]
	addSep := false
	if e := specialID(mid[0]); e != "" && (e == *sep || e == *eos) && last == "" {
		addSep = true
	}
	if len(mid) == 2 {
		if e := specialID(mid[1]); e != "" && (e == *sep || e == *eos) {
			addSep = true
		}
	}
	set("sep", addSep)
	if addSep && *sep == "" && haveTC {
		*sep = *eos
	}
}
