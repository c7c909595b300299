package formats

import (
	"fmt"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
)

// Info is the stable summary `quantbridge inspect --json` prints.
type Info struct {
	Path          string          `json:"path"`
	Format        graph.Format    `json:"format"`
	Architecture  string          `json:"architecture"`
	Params        graph.Params    `json:"params"`
	Tokenizer     *TokenizerInfo  `json:"tokenizer"`
	Tensors       []TensorInfo    `json:"tensors"`
	Parameters    int64           `json:"total_parameters"`
	TotalBytes    int64           `json:"total_bytes"`
	BitsPerWeight float64         `json:"bits_per_weight"`
	TypeCounts    map[string]int  `json:"type_counts"`
	Metadata      []MetadataEntry `json:"metadata,omitempty"`
	// Warnings and Problem are arch.Validate's findings: ambiguities with
	// a defined answer, and the inconsistency that stops convert and ppl.
	Warnings []string `json:"warnings,omitempty"`
	Problem  string   `json:"problem,omitempty"`
}

// TensorInfo is one row of the tensor table. Shape is outermost first
// (torch order; a GGUF ne list is the reverse).
type TensorInfo struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
	Type  string  `json:"type"`
	Bytes int64   `json:"bytes"`
}

// TokenizerInfo summarizes a tokenizer.
type TokenizerInfo struct {
	Model        string `json:"model"` // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre          string `json:"pre,omitempty"`
	Tokens       int    `json:"tokens"`
	Merges       int    `json:"merges"`
	BOS          int    `json:"bos_token_id"`
	EOS          int    `json:"eos_token_id"`
	UNK          int    `json:"unknown_token_id"`
	PAD          int    `json:"padding_token_id"`
	AddBOS       bool   `json:"add_bos"`
	AddEOS       bool   `json:"add_eos"`
	ChatTemplate bool   `json:"has_chat_template"`
}

// MetadataEntry is a format-specific key/value, rendered as text when long.
type MetadataEntry struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// TypeName names a tensor's encoding for display: ggml/safetensors names,
// and "MLX_Q4_G64" style for MLX affine.
func TypeName(t *graph.Tensor) string {
	if t.Type == graph.MLXAffine && t.Affine != nil {
		return fmt.Sprintf("MLX_Q%d_G%d", t.Affine.Bits, t.Affine.GroupSize)
	}
	return t.Type.String()
}

// Inspect summarizes a model.
func Inspect(m *graph.Model) *Info {
	info := &Info{
		Path: m.Path, Format: m.Format, Architecture: m.Arch, Params: m.Params,
		Tensors: []TensorInfo{}, TypeCounts: map[string]int{},
	}
	if warns, err := arch.Validate(m); err != nil {
		info.Warnings, info.Problem = warns, err.Error()
	} else {
		info.Warnings = warns
	}
	if tk := m.Tokenizer; tk != nil {
		info.Tokenizer = &TokenizerInfo{
			Model: tk.Model, Pre: tk.Pre, Tokens: len(tk.Tokens), Merges: len(tk.Merges),
			BOS: tk.BOS, EOS: tk.EOS, UNK: tk.UNK, PAD: tk.PAD,
			AddBOS: tk.AddBOS, AddEOS: tk.AddEOS, ChatTemplate: tk.ChatTemplate != "",
		}
	}
	for _, t := range m.Tensors {
		ti := TensorInfo{Name: t.Name, Shape: append([]int64{}, t.Shape...), Type: TypeName(t), Bytes: t.Bytes()}
		if ti.Shape == nil {
			ti.Shape = []int64{}
		}
		info.Tensors = append(info.Tensors, ti)
		info.Parameters += t.Elements()
		info.TotalBytes += ti.Bytes
		info.TypeCounts[ti.Type]++
	}
	if info.Parameters > 0 {
		info.BitsPerWeight = float64(info.TotalBytes) * 8 / float64(info.Parameters)
	}
	for _, kv := range m.Metadata {
		info.Metadata = append(info.Metadata, MetadataEntry{Key: kv.Key, Type: fmt.Sprintf("%T", kv.Value), Value: summarize(kv.Value)})
	}
	return info
}

// summarize keeps scalars and short arrays; long arrays (vocabularies)
// become a "[N values]" string.
func summarize(v any) any {
	switch a := v.(type) {
	case []string:
		if len(a) > 16 {
			return fmt.Sprintf("[%d strings]", len(a))
		}
	case []float32:
		if len(a) > 16 {
			return fmt.Sprintf("[%d float32]", len(a))
		}
	case []int32:
		if len(a) > 16 {
			return fmt.Sprintf("[%d int32]", len(a))
		}
	case string:
		if len(a) > 200 {
			return a[:200] + fmt.Sprintf("... (%d bytes)", len(a))
		}
	}
	return v
}
