// Package arch is the one place that knows model architectures. Each
// supported architecture is declared in a file of its own (llama.go,
// qwen2.go, ...) as an *Arch value registered at init; everything else in
// quantbridge asks the registry instead of switching on architecture names.
//
// An Arch declares, for one llama.cpp architecture (general.architecture):
//   - the Hugging Face class names and model_type values that select it,
//     and the ones written back to config.json;
//   - its hyperparameters: the architecture-specific keys of config.json,
//     parsed once into graph.Params (ParseConfig does the common ones);
//   - the HF ↔ GGUF ↔ MLX tensor names, including per-expert HF tensors
//     that GGUF and MLX stack into one 3-D tensor;
//   - the weight transforms convert_hf_to_gguf.py applies (Q/K row
//     permutation for the llama family, norm offsets);
//   - the GGUF metadata the converter writes for it (GGUFKV), and how
//     GGUF metadata reads back into graph.Params (FromGGUF);
//   - mlx-lm's quantization exceptions;
//   - the forward-pass features the evaluator needs (Features).
//
// Adding an architecture is one new file declaring an Arch and its tests.
package arch

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// Arch describes one architecture. Fields left nil or zero take the
// defaults documented on them.
type Arch struct {
	// Name is llama.cpp's architecture name (general.architecture).
	Name string
	// HFClasses are config.json "architectures" entries that select this
	// architecture; the first is written to config.json.
	HFClasses []string
	// ModelTypes are config.json "model_type" values that select it when
	// "architectures" is absent; the first is written to config.json.
	ModelTypes []string
	// ExpertsHFClass and ExpertsModelType, when set, are written to
	// config.json instead of the first HFClasses / ModelTypes entry for a
	// model with routed experts (Params.Experts > 0): llama.cpp's llama
	// architecture holds both LlamaForCausalLM and MixtralForCausalLM.
	ExpertsHFClass, ExpertsModelType string
	// RopeType is llama.cpp's rope type: "norm" (adjacent pairs) or "neox"
	// (halves).
	RopeType string
	// PermuteQK says convert_hf_to_gguf.py permutes the rows of the Q and K
	// projections (LlamaModel.permute) so that GGUF's NORM rope applies to
	// weights trained for rotate-half rope.
	PermuteQK bool
	// DefaultContext is max_position_embeddings when config.json lacks it
	// (the transformers config class default).
	DefaultContext int
	// DefaultRMSEps is rms_norm_eps when config.json lacks it.
	DefaultRMSEps float64
	// DefaultRopeBase is rope_theta when config.json lacks it.
	DefaultRopeBase float64
	// DefaultTied is tie_word_embeddings when config.json lacks it.
	DefaultTied bool

	// Globals and Layer map HF tensor names to GGUF names: Globals whole
	// names, Layer the part after "model.layers.N." / "blk.N.". MLX uses
	// the HF names except where MLXLayer says otherwise.
	Globals, Layer []NamePair
	// MLXLayer are mlx-lm layer tensor names that differ from HF's (the
	// stacked expert tensors of mlx-lm's SwitchGLU).
	MLXLayer []NamePair
	// Experts map per-expert HF layer tensors, with "{e}" standing for the
	// expert number ("mlp.experts.{e}.gate_proj.weight"), to the GGUF
	// 3-D tensor stacking them ("ffn_gate_exps.weight").
	Experts []NamePair

	// Config parses the architecture's own config.json keys into p after
	// the common ones (ParseConfig). May be nil.
	Config func(c *Config, p *graph.Params) error
	// WriteConfig sets the architecture's own config.json keys from p
	// (WriteConfig writes the common ones). May be nil.
	WriteConfig func(p *graph.Params, out map[string]any)
	// GGUFKV adds the architecture's own keys after TextModel's common
	// ones, as its Model class's set_gguf_parameters does. May be nil.
	GGUFKV func(b *KVBuilder, h HParams, m *graph.Model) error
	// FromGGUF reads the architecture's own GGUF keys into p, after the
	// common ones. get looks up "{arch}.KEY" values by KEY. May be nil.
	FromGGUF func(get KVGetter, p *graph.Params) error
	// Llama3RopeFreqs: llama3 rope scaling is written as the
	// rope_freqs.weight tensor (LlamaModel.generate_extra_tensors).
	Llama3RopeFreqs bool
	// LlamaVocab applies LlamaModel.set_vocab's rules when reading an HF
	// tokenizer: tokenizer_config's add_prefix_space, the llama-HF
	// tokenizer.json path, CodeLlama's and Granite's special ids.
	LlamaVocab bool
	// SPMSpacePrefixKV writes tokenizer.ggml.add_space_prefix before the
	// vocabulary when the SentencePiece model says (LlamaModel.set_vocab).
	SPMSpacePrefixKV bool
	// NormOffset is added to every RMSNorm weight when the model goes to
	// GGUF (Gemma's (1+w) norms: the converter writes w+1) and taken off
	// when it leaves GGUF; HF and MLX keep w. Zero for most. See
	// NormOffsetOf for which tensors.
	NormOffset float32
	// SPMNoSpacePrefix: with a SentencePiece vocabulary, set_vocab writes
	// tokenizer.ggml.add_space_prefix false after the vocabulary and its
	// special tokens (Gemma), and the tokenizer adds no dummy prefix.
	SPMNoSpacePrefix bool
	// MLXQuant returns mlx-lm's quantization for a module whose default
	// would be (bits, group): ok false leaves it unquantized. nil means
	// mlx-lm's default predicate (see formats/mlx.Quantizable).
	MLXQuant func(canonName string, shape []int64, bits, group int) (b, g int, ok bool)
	// Features are what the forward pass must implement.
	Features Features
	// Verified says what is checked against the reference tools for this
	// architecture (the docs' supported-architectures table).
	Verified string

	// OwnTextModelKV: the class's set_gguf_parameters does not call
	// TextModel's (Phi3MiniModel), so ModelKV writes none of the common
	// hyperparameter keys, general.file_type included (KVBuilder.FileType
	// holds it), and GGUFKV writes them all in the class's order.
	OwnTextModelKV bool
	// ExtraTensors are the tensors the class's generate_extra_tensors
	// derives from config.json (other than llama3's rope_freqs, see
	// Llama3RopeFreqs), yielded before the checkpoint's tensors. They are
	// GGUF-only (see Derived). May be nil.
	ExtraTensors func(m *graph.Model) ([]*graph.Tensor, error)
	// ExtraKV adds the keys generate_extra_tensors writes. The converter
	// prepares the tensors before the metadata, so they come right after
	// general.architecture. May be nil.
	ExtraKV func(b *KVBuilder, h HParams, m *graph.Model) error
	// FromGGUFTensors completes m.Params from the tensors ExtraTensors
	// wrote (longrope factor lists), after FromGGUF. May be nil.
	FromGGUFTensors func(m *graph.Model) error
	// SPMAddedTokens is Phi3MiniModel.set_vocab's SentencePiece
	// vocabulary: after tokenizer.model and added_tokens.json, every
	// tokenizer_config.json added_tokens_decoder entry and then every
	// tokenizer.json added_tokens entry replaces its id's token as
	// written, with score -1000 and type CONTROL when "special" is true,
	// USER_DEFINED otherwise (TextModel's rules look at the text and
	// replace U+2581; this does neither). A tokenizer_config.json
	// tokenizer_class of "GPT2Tokenizer" selects the BPE vocabulary
	// instead, even beside a tokenizer.model.
	SPMAddedTokens bool
	// MLXUntiedDefault: mlx-lm's ModelArgs for the architecture defaults
	// tie_word_embeddings to False (phi3.py) where llama.py and qwen2.py
	// default it to True; it applies to an MLX config.json without the key.
	MLXUntiedDefault bool
}

// Derived reports whether a tensor name is one the converters compute
// from config.json rather than copy from the checkpoint (llama.cpp's
// ROPE_FREQS, ROPE_FACTORS_LONG and ROPE_FACTORS_SHORT): GGUF files hold
// them, HF and MLX checkpoints carry the config values instead.
func Derived(name string) bool {
	switch name {
	case "rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight":
		return true
	}
	return false
}

// NamePair is one HF (or MLX) name and its GGUF counterpart.
type NamePair struct{ HF, GGUF string }

// Features are the forward-pass features an architecture uses beyond the
// llama baseline (pre-norm RMSNorm, rope, GQA attention, SwiGLU FFN).
type Features struct {
	QKNorm     bool   // RMSNorm of each q and k head before rope
	Activation string // FFN gate activation: "silu" (default) or "gelu_tanh"
	PostNorms  bool   // norms after attention and after the FFN (Gemma)
	EmbedScale bool   // embeddings scaled by sqrt(hidden) (Gemma)
	FusedQKV   bool   // one attn_qkv projection (Phi-3)
	FusedUp    bool   // ffn_up holds gate and up stacked (Phi-3)
	MoE        bool   // routed experts
	// ScaleQ: llama.cpp's graph multiplies Q by 1/sqrtf(head_dim) before
	// attention, whose own scale is then 1 (Phi-3), where the other
	// architectures scale the scores.
	ScaleQ bool
}

// KVGetter looks up one "{arch}.KEY" GGUF value by KEY.
type KVGetter func(key string) (any, bool)

var registry = map[string]*Arch{}

// Register adds a to the registry. It panics on a duplicate name or HF
// class (a programming error).
func Register(a *Arch) {
	if _, dup := registry[a.Name]; dup {
		panic("arch: duplicate architecture " + a.Name)
	}
	for _, o := range registry {
		for _, c := range a.HFClasses {
			if slices.Contains(o.HFClasses, c) {
				panic("arch: HF class " + c + " registered twice")
			}
		}
	}
	registry[a.Name] = a
}

// Lookup returns the architecture with llama.cpp name name.
func Lookup(name string) (*Arch, bool) {
	a, ok := registry[name]
	return a, ok
}

// ForModel returns m's architecture or an *UnsupportedError naming m.
func ForModel(m *graph.Model) (*Arch, error) {
	a, ok := registry[m.Arch]
	if !ok {
		return nil, fmt.Errorf("%s: %w", m.Path, &UnsupportedError{Arch: m.Arch})
	}
	return a, nil
}

// Supported lists the supported llama.cpp architecture names, sorted.
func Supported() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// All returns every registered architecture sorted by name.
func All() []*Arch {
	out := make([]*Arch, 0, len(registry))
	for _, n := range Supported() {
		out = append(out, registry[n])
	}
	return out
}

// FromHF returns the architecture selected by a config.json
// "architectures" entry or "model_type" value.
func FromHF(name string) (*Arch, bool) {
	for _, a := range registry {
		if slices.Contains(a.HFClasses, name) {
			return a, true
		}
	}
	for _, a := range registry {
		if slices.Contains(a.ModelTypes, name) {
			return a, true
		}
	}
	return nil, false
}

// UnsupportedError is returned for an architecture quantbridge cannot
// handle; it lists the supported ones.
type UnsupportedError struct{ Arch string }

func (e *UnsupportedError) Error() string {
	var hf []string
	for _, a := range All() {
		hf = append(hf, a.HFClasses...)
	}
	return fmt.Sprintf("unsupported architecture %q (supported: %s; HF classes %s)", e.Arch, strings.Join(Supported(), ", "), strings.Join(hf, ", "))
}

// HFClass returns the architectures entry and model_type written to
// config.json.
func (a *Arch) HFClass() (architecture, modelType string) {
	if len(a.HFClasses) > 0 {
		architecture = a.HFClasses[0]
	}
	if len(a.ModelTypes) > 0 {
		modelType = a.ModelTypes[0]
	}
	return architecture, modelType
}

// HFClassFor is HFClass for a model with hyperparameters p: a model with
// experts gets ExpertsHFClass / ExpertsModelType where the architecture
// declares them.
func (a *Arch) HFClassFor(p *graph.Params) (architecture, modelType string) {
	architecture, modelType = a.HFClass()
	if p != nil && p.Experts > 0 && a.ExpertsHFClass != "" {
		architecture, modelType = a.ExpertsHFClass, a.ExpertsModelType
	}
	return architecture, modelType
}

const hfLayerPrefix = "model.layers."

// NormOffsetOf returns the offset a tensor's values get on the way to GGUF
// (and lose on the way back): NormOffset for the RMSNorm weights, whose
// GGUF names end in "_norm.weight" (the converter's HF-side test is
// name.endswith("norm.weight")), 0 for everything else.
func (a *Arch) NormOffsetOf(canon string) float32 {
	if a.NormOffset != 0 && strings.HasSuffix(canon, "_norm.weight") {
		return a.NormOffset
	}
	return 0
}

// SkipHFTensor reports whether convert_hf_to_gguf.py leaves an HF tensor
// out of a text model (TextModel.filter_tensors at llama.cpp 34af94cd):
// the vision, audio and projector towers of multimodal checkpoints.
func SkipHFTensor(name string) bool {
	for _, p := range []string{"mlp", "vit.", "vpm.", "siglip2.", "conformer.", "merger.", "resampler.", "sound_encoder.", "sound_projection.", "speech_embeddings."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range []string{"visual.", "vision.", "audio.", "talker.", "vision_", "audio_", "token2wav.", "code2wav.",
		"projector.", "pre_mm_projector_norm", "image_newline", "view_seperator", "patch_embed", "patch_embedding",
		"patch_merger.", "patch_merge_mlp.", "model.connector."} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// CanonicalName maps an HF tensor name (or an MLX one when mlx is set) to
// its GGUF name. MLX quantization companions (".scales", ".biases") map
// like ".weight" with the suffix kept. For a per-expert HF tensor expert
// is its expert number and name the stacked GGUF tensor's; otherwise
// expert is -1. ok is false when the name has no mapping; it is then
// returned unchanged.
func (a *Arch) CanonicalName(hf string, mlx bool) (name string, expert int, ok bool) {
	base, suffix := hf, ""
	for _, s := range []string{".scales", ".biases"} {
		if strings.HasSuffix(hf, s) {
			base, suffix = strings.TrimSuffix(hf, s)+".weight", s
		}
	}
	out, expert, ok := a.canonical(base, mlx)
	if !ok {
		return hf, -1, false
	}
	if suffix != "" {
		out = strings.TrimSuffix(out, ".weight") + suffix
	}
	return out, expert, true
}

func (a *Arch) canonical(hf string, mlx bool) (string, int, bool) {
	// ModelBase.filter_tensors: the language model of a multimodal
	// checkpoint ("language_model.model.layers.0…" in transformers 4,
	// "model.language_model.layers.0…" in 5) is named as a text model's.
	hf = strings.Replace(hf, "language_model.", "", 1)
	for _, p := range a.Globals {
		if hf == p.HF {
			return p.GGUF, -1, true
		}
	}
	rest, ok := strings.CutPrefix(hf, hfLayerPrefix)
	if !ok {
		return hf, -1, false
	}
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return hf, -1, false
	}
	if n, err := strconv.Atoi(rest[:i]); err != nil || n < 0 {
		return hf, -1, false
	}
	blk, local := "blk."+rest[:i]+".", rest[i+1:]
	if mlx {
		for _, p := range a.MLXLayer {
			if local == p.HF {
				return blk + p.GGUF, -1, true
			}
		}
	}
	for _, p := range a.Layer {
		if local == p.HF {
			return blk + p.GGUF, -1, true
		}
	}
	for _, p := range a.Experts {
		pre, post, _ := strings.Cut(p.HF, "{e}")
		if !strings.HasPrefix(local, pre) || !strings.HasSuffix(local, post) || len(local) <= len(pre)+len(post) {
			continue
		}
		e, err := strconv.Atoi(local[len(pre) : len(local)-len(post)])
		if err != nil || e < 0 || strconv.Itoa(e) != local[len(pre):len(local)-len(post)] {
			continue
		}
		return blk + p.GGUF, e, true
	}
	return hf, -1, false
}

// HFName maps a GGUF name back to the HF name (the MLX name when mlx is
// set). A stacked expert tensor has no single HF name: HFExpertName names
// its parts. ok is false when there is no mapping; the name is then
// returned unchanged.
func (a *Arch) HFName(canon string, mlx bool) (string, bool) {
	for _, p := range a.Globals {
		if canon == p.GGUF {
			return p.HF, true
		}
	}
	l := graph.LayerIndex(canon)
	if l < 0 {
		return canon, false
	}
	n := strconv.Itoa(l)
	local := canon[len("blk.")+len(n)+1:]
	if mlx {
		for _, p := range a.MLXLayer {
			if local == p.GGUF {
				return hfLayerPrefix + n + "." + p.HF, true
			}
		}
	}
	for _, p := range a.Layer {
		if local == p.GGUF {
			return hfLayerPrefix + n + "." + p.HF, true
		}
	}
	return canon, false
}

// HFExpertName returns the HF name of expert e of a stacked GGUF expert
// tensor, and whether canon is one.
func (a *Arch) HFExpertName(canon string, e int) (string, bool) {
	l := graph.LayerIndex(canon)
	if l < 0 {
		return canon, false
	}
	n := strconv.Itoa(l)
	local := canon[len("blk.")+len(n)+1:]
	for _, p := range a.Experts {
		if local == p.GGUF {
			return hfLayerPrefix + n + "." + strings.Replace(p.HF, "{e}", strconv.Itoa(e), 1), true
		}
	}
	return canon, false
}

// IsExpertTensor reports whether canon is a stacked expert tensor.
func (a *Arch) IsExpertTensor(canon string) bool {
	_, ok := a.HFExpertName(canon, 0)
	return ok
}

// commonLayer are the layer tensors shared by the llama-like
// architectures: HF suffix after "model.layers.N.", GGUF suffix after
// "blk.N.".
var commonLayer = []NamePair{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.q_proj.bias", "attn_q.bias"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.k_proj.bias", "attn_k.bias"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.v_proj.bias", "attn_v.bias"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"self_attn.o_proj.bias", "attn_output.bias"},
	{"mlp.gate_proj.weight", "ffn_gate.weight"},
	{"mlp.up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

// commonGlobals are the non-layer tensors of the llama-like architectures.
var commonGlobals = []NamePair{
	{"model.embed_tokens.weight", "token_embd.weight"},
	{"model.norm.weight", "output_norm.weight"},
	{"lm_head.weight", "output.weight"},
}

// with returns base followed by more (a fresh slice).
func with(base []NamePair, more ...NamePair) []NamePair {
	return append(append([]NamePair(nil), base...), more...)
}

// Table returns the supported architectures as a Markdown table (the
// README's and docs/cli.md's, and `quantbridge inspect --architectures`).
func Table() string {
	var b strings.Builder
	b.WriteString("| architecture | HF classes (`architectures`) | verified against the reference tools |\n|---|---|---|\n")
	for _, a := range All() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", a.Name, strings.Join(a.HFClasses, ", "), a.Verified)
	}
	return b.String()
}
