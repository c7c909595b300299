// Package graph is quantbridge's intermediate representation of a model
// checkpoint: the architecture and its normalized hyperparameters, the
// tokenizer, and the tensors with lazy data sources. Every format package
// (formats/gguf, formats/safetensors, formats/mlx) reads into a *Model and
// writes from one; no format package knows another format.
//
// Conventions:
//   - Tensor names are canonical, in llama.cpp's GGUF scheme
//     ("token_embd.weight", "blk.0.attn_q.weight"); names.go maps HF/MLX
//     names to and from it. Names with no mapping pass through unchanged.
//   - Shapes are row-major, outermost dimension first (torch/numpy order).
//     A GGUF ne list is the reverse. The last dimension is the row length.
//   - Tensor bytes are stored as the origin format stores them. In
//     particular llama-family Q/K projection rows are permuted in GGUF files
//     (interleaved RoPE) and not in HF/MLX files; Model.Format says which,
//     and the convert package permutes when it crosses formats.
package graph

import (
	"fmt"
	"io"
)

// Format names the on-disk family a Model was read from.
type Format string

const (
	FormatGGUF        Format = "gguf"
	FormatHF          Format = "hf"          // HF checkpoint directory (safetensors + config.json)
	FormatSafetensors Format = "safetensors" // a bare .safetensors file
	FormatMLX         Format = "mlx"         // mlx-lm model directory
)

// Model is the intermediate graph.
type Model struct {
	Format Format
	// Path is the file or directory the model was read from (for errors).
	Path string
	// Arch is the canonical (llama.cpp) architecture name: "llama", "qwen2", ...
	// Empty when unknown (e.g. a bare safetensors file).
	Arch      string
	Params    Params
	Tokenizer *Tokenizer // nil when the checkpoint carries none
	Tensors   []*Tensor
	// Metadata holds format-specific key/values kept for same-format round
	// trips, in file order: GGUF KVs (values typed as in KV), safetensors
	// __metadata__ strings (as string values).
	Metadata []KV
	// Config is the raw HF/MLX config.json object, when there was one.
	Config map[string]any
	// Files are auxiliary files of a checkpoint directory (tokenizer files,
	// generation_config.json, ...) by base name, to be carried over.
	Files map[string][]byte
	// Closers release what the tensor sources read from (open files).
	Closers []io.Closer
}

// Close releases the files the model's tensor sources read from.
func (m *Model) Close() error {
	var first error
	for _, c := range m.Closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.Closers = nil
	return first
}

// Tensor returns the tensor with the given canonical name, or nil.
func (m *Model) Tensor(name string) *Tensor {
	for _, t := range m.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Meta returns the metadata value for key and whether it was present.
func (m *Model) Meta(key string) (any, bool) {
	for _, kv := range m.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// KV is one metadata key/value. For GGUF the Go type of Value encodes the
// GGUF value type exactly: uint8, int8, uint16, int16, uint32, int32,
// float32, bool, string, uint64, int64, float64, or a slice of one of those
// ([]string, []float32, []int32, ...).
type KV struct {
	Key   string
	Value any
}

// Params are the normalized hyperparameters of a decoder-only transformer.
// Zero means unknown/not applicable.
type Params struct {
	Layers        int          `json:"layers"`
	Embedding     int          `json:"embedding"` // hidden size
	FFN           int          `json:"ffn"`       // intermediate size
	Heads         int          `json:"heads"`     // attention heads
	KVHeads       int          `json:"kv_heads"`  // key/value heads (GQA)
	HeadDim       int          `json:"head_dim"`  // per-head width (may differ from Embedding/Heads)
	RopeBase      float64      `json:"rope_base"` // theta
	RopeType      string       `json:"rope_type"` // "norm" (llama, interleaved in GGUF) or "neox" (qwen2)
	RopeDims      int          `json:"rope_dims"` // rotary dimensions (usually HeadDim)
	RopeScaling   *RopeScaling `json:"rope_scaling,omitempty"`
	RMSEps        float64      `json:"rms_eps"`
	ContextLength int          `json:"context_length"`
	VocabSize     int          `json:"vocab_size"`
	Tied          bool         `json:"tied_embeddings"`
	AttnBias      bool         `json:"attention_bias"` // q/k/v projections have biases
	// TorchDType is the dtype named by the HF config (torch_dtype/dtype), if any.
	TorchDType string `json:"torch_dtype,omitempty"`

	// Features beyond the llama baseline (package arch says which
	// architecture has which).

	// QKNorm: each q and k head is RMS-normalized before rope (Qwen3, Gemma 3).
	QKNorm bool `json:"qk_norm,omitempty"`
	// Mixture of experts: Experts routed experts per sparse layer,
	// ExpertsUsed chosen per token, ExpertFFN the width of one expert;
	// NormTopK renormalizes the chosen routing weights (norm_topk_prob);
	// DenseLayers are layers with a dense FFN of width FFN instead
	// (Qwen3-MoE mlp_only_layers and decoder_sparse_step).
	Experts     int   `json:"experts,omitempty"`
	ExpertsUsed int   `json:"experts_used,omitempty"`
	ExpertFFN   int   `json:"expert_ffn,omitempty"`
	NormTopK    bool  `json:"norm_topk_prob,omitempty"`
	DenseLayers []int `json:"dense_layers,omitempty"`
	// Sliding-window attention: the window in tokens and, per layer,
	// whether the layer uses it (nil: none does); RopeBaseSWA is the rope
	// base of sliding layers when it differs (Gemma 3's
	// rope_local_base_freq).
	SlidingWindow int     `json:"sliding_window,omitempty"`
	SlidingLayers []bool  `json:"sliding_layers,omitempty"`
	RopeBaseSWA   float64 `json:"rope_base_swa,omitempty"`
	// AttnScale multiplies attention scores instead of 1/sqrt(HeadDim)
	// when nonzero (Gemma's query_pre_attn_scalar^-1/2).
	AttnScale float64 `json:"attn_scale,omitempty"`
	// Activation is the FFN gate activation: "" or "silu", "gelu_tanh".
	Activation string `json:"activation,omitempty"`
	// FinalLogitSoftcap, when nonzero, caps the output logits at
	// ±FinalLogitSoftcap with cap·tanh(logit/cap) (Gemma's
	// final_logit_softcapping).
	FinalLogitSoftcap float64 `json:"final_logit_softcap,omitempty"`
}

// RopeScaling describes a RoPE scaling scheme.
type RopeScaling struct {
	Type            string  `json:"type"` // "linear", "yarn", "llama3", "longrope", ...
	Factor          float64 `json:"factor"`
	OriginalContext int     `json:"original_context_length,omitempty"`
	LowFreqFactor   float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor  float64 `json:"high_freq_factor,omitempty"`
	// longrope (Phi-3): per-frequency factors for contexts up to and
	// beyond OriginalContext, and the attention factor (0: derived).
	ShortFactor []float64 `json:"short_factor,omitempty"`
	LongFactor  []float64 `json:"long_factor,omitempty"`
	AttnFactor  float64   `json:"attention_factor,omitempty"`
}

// TokenizerKind names a tokenizer family as GGUF's tokenizer.ggml.model does.
const (
	TokenizerSPM = "llama" // SentencePiece (BPE with scores, byte fallback)
	TokenizerBPE = "gpt2"  // byte-level BPE with merges
)

// Token types (tokenizer.ggml.token_type values, llama.cpp's llama_token_type).
const (
	TokenUndefined   int32 = 0
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// Tokenizer is a vocabulary in GGUF's normalized form.
type Tokenizer struct {
	Model  string    // TokenizerSPM, TokenizerBPE, or another tokenizer.ggml.model value
	Pre    string    // tokenizer.ggml.pre (BPE pre-tokenizer name), "" if none
	Tokens []string  // id -> piece
	Scores []float32 // SPM scores (nil for BPE)
	Types  []int32   // token types
	Merges []string  // BPE merges "a b", in priority order
	// PreRegex are the pre-tokenizer split regexes in order (from
	// tokenizer.json), when known.
	PreRegex []string
	// Special ids; -1 when absent.
	BOS, EOS, UNK, PAD, EOT, EOM, SEP, CLS, MASK int
	AddBOS, AddEOS                               bool
	// AddSpacePrefix is SentencePiece's add_dummy_prefix; nil when unspecified.
	AddSpacePrefix *bool
	IgnoreMerges   bool
	ChatTemplate   string
}

// NewTokenizer returns an empty tokenizer with all special ids unset.
func NewTokenizer(model string) *Tokenizer {
	return &Tokenizer{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1, EOM: -1, SEP: -1, CLS: -1, MASK: -1}
}

// Source gives random access to a tensor's encoded bytes, offset 0 being
// the tensor's first byte. *io.SectionReader and *bytes.Reader satisfy it.
type Source interface {
	io.ReaderAt
	Size() int64
}

// Affine describes MLX affine quantization of a tensor.
type Affine struct {
	Bits      int
	GroupSize int
	// ScaleType is the dtype of Scales and Biases (BF16, F16 or F32).
	ScaleType Type
	// Scales and Biases hold [rows, cols/GroupSize] values of ScaleType.
	Scales, Biases Source
}

// Tensor is one named tensor with a lazy data source.
type Tensor struct {
	Name  string  // canonical name
	Shape []int64 // outermost first; last dimension is the row length
	Type  Type
	// Affine is set iff Type == MLXAffine. Then Data holds the packed uint32
	// codes ([rows, cols*Bits/32] words) and Shape is the logical
	// (unpacked) shape.
	Affine *Affine
	Data   Source
}

// Elements returns the number of elements (product of Shape).
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// RowLen returns the length of the last dimension (1 for a scalar).
func (t *Tensor) RowLen() int64 {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// Rows returns the number of rows (Elements / RowLen).
func (t *Tensor) Rows() int64 {
	r := t.RowLen()
	if r == 0 {
		return 0
	}
	return t.Elements() / r
}

// Bytes returns the encoded size of the tensor's data, including MLX
// scales and biases.
func (t *Tensor) Bytes() int64 {
	if t.Type == MLXAffine && t.Affine != nil {
		n := int64(0)
		if t.Data != nil {
			n += t.Data.Size()
		}
		if t.Affine.Scales != nil {
			n += t.Affine.Scales.Size()
		}
		if t.Affine.Biases != nil {
			n += t.Affine.Biases.Size()
		}
		return n
	}
	rs, err := RowSize(t.Type, t.RowLen())
	if err != nil {
		if t.Data != nil {
			return t.Data.Size()
		}
		return 0
	}
	return rs * t.Rows()
}

// ReadAll reads a whole Source into memory.
func ReadAll(s Source) ([]byte, error) {
	n := s.Size()
	if n < 0 {
		return nil, fmt.Errorf("negative source size %d", n)
	}
	b := make([]byte, n)
	k, err := s.ReadAt(b, 0)
	if int64(k) == n {
		return b, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}
