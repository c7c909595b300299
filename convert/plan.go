package convert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// FileType is a llama.cpp model file type (llama_ftype): the name
// llama-quantize accepts, the general.file_type value it writes, and the
// default tensor type of the mixture.
type FileType struct {
	Name       string
	LlamaFType uint32
	Default    graph.Type
}

// fileTypes are the supported llama.cpp ftypes (include/llama.h
// llama_ftype; default types from llama-quant.cpp
// llama_ftype_get_default_type).
var fileTypes = []FileType{
	{"F32", 0, graph.F32},
	{"F16", 1, graph.F16},
	{"Q4_0", 2, graph.Q4_0},
	{"Q4_1", 3, graph.Q4_1},
	{"Q8_0", 7, graph.Q8_0},
	{"Q5_0", 8, graph.Q5_0},
	{"Q5_1", 9, graph.Q5_1},
	{"Q2_K", 10, graph.Q2_K},
	{"Q3_K_S", 11, graph.Q3_K},
	{"Q3_K_M", 12, graph.Q3_K},
	{"Q3_K_L", 13, graph.Q3_K},
	{"Q4_K_S", 14, graph.Q4_K},
	{"Q4_K_M", 15, graph.Q4_K},
	{"Q5_K_S", 16, graph.Q5_K},
	{"Q5_K_M", 17, graph.Q5_K},
	{"Q6_K", 18, graph.Q6_K},
	{"IQ2_XXS", 19, graph.IQ2_XXS},
	{"IQ2_XS", 20, graph.IQ2_XS},
	{"Q2_K_S", 21, graph.Q2_K},
	{"IQ3_XS", 22, graph.IQ3_S},
	{"IQ3_XXS", 23, graph.IQ3_XXS},
	{"IQ1_S", 24, graph.IQ1_S},
	{"IQ4_NL", 25, graph.IQ4_NL},
	{"IQ3_S", 26, graph.IQ3_S},
	{"IQ3_M", 27, graph.IQ3_S},
	{"IQ2_S", 28, graph.IQ2_XS},
	{"IQ2_M", 29, graph.IQ2_S},
	{"IQ4_XS", 30, graph.IQ4_XS},
	{"IQ1_M", 31, graph.IQ1_M},
	{"BF16", 32, graph.BF16},
	{"TQ1_0", 36, graph.TQ1_0},
	{"TQ2_0", 37, graph.TQ2_0},
	{"MXFP4_MOE", 38, graph.MXFP4},
}

// llama_ftype values used by the mixture rules.
const (
	ftypeF32      = 0
	ftypeF16      = 1
	ftypeQ4_0     = 2
	ftypeQ4_1     = 3
	ftypeQ8_0     = 7
	ftypeQ5_0     = 8
	ftypeQ5_1     = 9
	ftypeQ2_K     = 10
	ftypeQ3_KS    = 11
	ftypeQ3_KM    = 12
	ftypeQ3_KL    = 13
	ftypeQ4_KS    = 14
	ftypeQ4_KM    = 15
	ftypeQ5_KS    = 16
	ftypeQ5_KM    = 17
	ftypeQ6_K     = 18
	ftypeIQ2_XXS  = 19
	ftypeIQ2_XS   = 20
	ftypeQ2_KS    = 21
	ftypeIQ3_XS   = 22
	ftypeIQ3_XXS  = 23
	ftypeIQ1_S    = 24
	ftypeIQ4_NL   = 25
	ftypeIQ3_S    = 26
	ftypeIQ3_M    = 27
	ftypeIQ2_S    = 28
	ftypeIQ2_M    = 29
	ftypeIQ4_XS   = 30
	ftypeIQ1_M    = 31
	ftypeBF16     = 32
	ftypeTQ1_0    = 36
	ftypeTQ2_0    = 37
	ftypeMXFP4MoE = 38
)

// FileTypes lists the file types PlanGGUF supports, in llama_ftype order.
func FileTypes() []FileType {
	out := make([]FileType, len(fileTypes))
	copy(out, fileTypes)
	return out
}

// ParseFileType parses a file type name such as "q4_k_m" (case-insensitive).
func ParseFileType(s string) (FileType, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, ft := range fileTypes {
		if ft.Name == u {
			return ft, nil
		}
	}
	names := make([]string, len(fileTypes))
	for i, ft := range fileTypes {
		names[i] = ft.Name
	}
	return FileType{}, fmt.Errorf("unknown GGUF file type %q (supported: %s)", s, strings.Join(names, ", "))
}

// TensorTypeRule forces the type of every tensor whose name matches
// Pattern (llama-quantize --tensor-type PATTERN=TYPE). The first matching
// rule wins. Go's RE2 syntax is used where llama.cpp uses std::regex
// (ECMAScript); plain name fragments behave the same.
type TensorTypeRule struct {
	Pattern *regexp.Regexp
	Type    graph.Type
}

// PlanOptions are llama-quantize's mixture options.
type PlanOptions struct {
	// LeaveOutputTensor keeps output.weight as it is (--leave-output-tensor).
	LeaveOutputTensor bool
	// OutputTensorType and TokenEmbeddingType, when set, force the type of
	// output.weight and token_embd.weight (--output-tensor-type,
	// --token-embedding-type).
	OutputTensorType   *graph.Type
	TokenEmbeddingType *graph.Type
	// Pure disables the k-quant mixture rules: every quantizable tensor gets
	// the file type's default type (--pure). Shape fallbacks still apply.
	Pure bool
	// TensorTypes are per-tensor overrides (--tensor-type).
	TensorTypes []TensorTypeRule
	// Imatrix says an importance matrix is given (llama-quantize
	// --imatrix with at least one entry): some mixtures choose differently
	// with one (IQ3_XXS attn_v and ffn_down, IQ4_NL/IQ4_XS ffn_down, Q4_0
	// and Q5_0 ffn_down), and the types that need one (RequiresImatrix)
	// are refused without it. GGUFTarget.Imatrix sets it.
	Imatrix bool
}

// TensorPlan is the planned conversion of one tensor.
type TensorPlan struct {
	Name  string
	Shape []int64
	From  graph.Type
	To    graph.Type
	// Reason says why To was chosen (for --dry-run / inspect output).
	Reason string
	// Tensor is the source tensor.
	Tensor *graph.Tensor
}

// Bytes returns the encoded size of the planned output tensor.
func (p TensorPlan) Bytes() int64 {
	n := int64(1)
	for _, d := range p.Shape {
		n *= d
	}
	row := int64(1)
	if len(p.Shape) > 0 {
		row = p.Shape[len(p.Shape)-1]
	}
	if row == 0 {
		return 0
	}
	rs, err := graph.RowSize(p.To, row)
	if err != nil {
		return 0
	}
	return rs * (n / row)
}

// tensor categories (llama-quant.cpp tensor_category).
type category int

const (
	catOther category = iota
	catTokenEmbd
	catAttnQ
	catAttnV
	catAttnK
	catAttnQKV
	catAttnKVB
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
	catOutput
)

// categoryOf mirrors tensor_get_category: the first match wins.
func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"):
		return catAttnKVB
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

func (c category) isAttnV() bool { return c == catAttnV || c == catAttnQKV || c == catAttnKVB }

// ggmlNDims is ggml_n_dims: the number of dimensions after dropping
// trailing ne entries equal to 1 (leading ones in our outermost-first
// shape), at least 1.
func ggmlNDims(shape []int64) int {
	for i := 0; i < len(shape); i++ {
		if shape[i] > 1 {
			return len(shape) - i
		}
	}
	return 1
}

// neverQuantized are the name fragments tensor_allows_quantization rejects.
var neverQuantized = []string{
	"_norm.weight",
	"ffn_gate_inp.weight",
	"ffn_gate_tid2eid.weight",
	"altup", "laurel",
	"per_layer_model_proj",
	"ssm_conv1d", "shortconv.conv.weight",
	"indexer.k_proj.weight", "indexer.q_proj.weight",
	"time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
	"time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
	"time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
	"time_mix_g1.weight", "time_mix_g2.weight",
	"time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
	"attn_rel_b.weight",
	".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
	"a.rvq.codebook", "mm.a.code_embd",
}

// allowsQuantization mirrors tensor_allows_quantization. It returns "" when
// the tensor may be quantized, else why not.
func allowsQuantization(name string, shape []int64, opt *PlanOptions) string {
	if ggmlNDims(shape) < 2 {
		return "1-D tensor, kept"
	}
	// llama.cpp: name.rfind("weight") == name.size() - 6 (a 5-byte name
	// passes too, through size_t wrap-around; reproduced).
	if !strings.HasSuffix(name, "weight") && len(name) != 5 {
		return "not a weight, kept"
	}
	if opt.LeaveOutputTensor && name == "output.weight" {
		return "--leave-output-tensor"
	}
	for _, s := range neverQuantized {
		if strings.Contains(name, s) {
			return "never quantized (" + s + "), kept"
		}
	}
	if name == "position_embd.weight" || name == "token_types.weight" {
		return "never quantized, kept"
	}
	return ""
}

// fallbackType mirrors tensor_type_fallback for a row of ncols elements.
func fallbackType(t graph.Type, ncols int64) (graph.Type, string, error) {
	bs := t.BlockSize()
	if bs == 0 || ncols%bs == 0 {
		return t, "", nil
	}
	var r graph.Type
	switch t {
	case graph.IQ1_S, graph.IQ1_M, graph.IQ2_XXS, graph.IQ2_XS, graph.IQ2_S, graph.IQ3_XXS, graph.IQ3_S, graph.IQ4_XS:
		r = graph.IQ4_NL
	case graph.Q2_0, graph.Q2_K, graph.Q3_K, graph.TQ1_0, graph.TQ2_0:
		r = graph.Q4_0
	case graph.Q4_K:
		r = graph.Q5_0
	case graph.Q5_K:
		r = graph.Q5_1
	case graph.Q6_K:
		r = graph.Q8_0
	default:
		return 0, "", fmt.Errorf("row length %d is not a multiple of %v's block size %d and no fallback type is defined for %v", ncols, t, bs, t)
	}
	why := fmt.Sprintf("fallback %v->%v (ncols %d not divisible by %d)", t, r, ncols, bs)
	if ncols%r.BlockSize() != 0 {
		r = graph.F16
		why = fmt.Sprintf("fallback %v->F16 (ncols %d not divisible by %d; unusual shape)", t, ncols, bs)
	}
	return r, why, nil
}

// useMoreBits is llama.cpp's use_more_bits (C integer semantics).
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// modelInfo holds the hyperparameters the mixture rules look at.
type modelInfo struct {
	arch     string
	nLayer   int
	nHead    int
	nHeadKV  int
	nExpert  int
	is70B    bool
	tiedEmbd bool
}

func (mi *modelInfo) nGQA() int {
	if mi.nHeadKV == 0 {
		return 0
	}
	return mi.nHead / mi.nHeadKV
}

// metaInt returns an integer metadata value (first element of an array).
func metaInt(m *graph.Model, key string) (int, bool) {
	v, ok := m.Meta(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint8:
		return int(x), true
	case int8:
		return int(x), true
	case uint16:
		return int(x), true
	case int16:
		return int(x), true
	case uint32:
		return int(x), true
	case int32:
		return int(x), true
	case uint64:
		return int(x), true
	case int64:
		return int(x), true
	case []uint32:
		if len(x) > 0 {
			return int(x[0]), true
		}
	case []int32:
		if len(x) > 0 {
			return int(x[0]), true
		}
	}
	return 0, false
}

func configInt(m *graph.Model, key string) (int, bool) {
	if m.Config == nil {
		return 0, false
	}
	if f, ok := m.Config[key].(float64); ok {
		return int(f), true
	}
	return 0, false
}

func newModelInfo(m *graph.Model) *modelInfo {
	mi := &modelInfo{arch: m.Arch}
	p := m.Params
	pick := func(param int, keys ...string) int {
		if param != 0 {
			return param
		}
		for _, k := range keys {
			if v, ok := metaInt(m, k); ok {
				return v
			}
		}
		return 0
	}
	a := m.Arch
	mi.nLayer = pick(p.Layers, a+".block_count")
	mi.nHead = pick(p.Heads, a+".attention.head_count")
	mi.nHeadKV = pick(p.KVHeads, a+".attention.head_count_kv")
	if mi.nHeadKV == 0 {
		mi.nHeadKV = mi.nHead // llama.cpp defaults n_head_kv to n_head
	}
	mi.nExpert = pick(0, a+".expert_count")
	if mi.nExpert == 0 {
		for _, k := range []string{"num_local_experts", "num_experts"} {
			if v, ok := configInt(m, k); ok {
				mi.nExpert = v
				break
			}
		}
	}
	if mi.nLayer == 0 { // derive from the tensor names
		for _, t := range m.Tensors {
			if l := graph.LayerIndex(t.Name); l+1 > mi.nLayer {
				mi.nLayer = l + 1
			}
		}
	}
	// llm_type 70B (the only model type the mixture looks at): llama with
	// 80 layers and GQA (not the 8-expert variants), qwen2/olmo/deci with 80
	// layers, jais2 with 68.
	switch a {
	case "llama":
		mi.is70B = mi.nExpert != 8 && mi.nLayer == 80 && mi.nHead != mi.nHeadKV
	case "qwen2", "olmo", "deci":
		mi.is70B = mi.nLayer == 80
	case "jais2":
		mi.is70B = mi.nLayer == 68
	}
	mi.tiedEmbd = m.Tensor("output.weight") == nil
	return mi
}

// planState carries llama.cpp's quantize_state_impl counters.
type planState struct {
	mi                       *modelInfo
	ftype                    uint32
	nAttnWV, iAttnWV         int
	nFFNDown, iFFNDown       int
	nFFNGate, iFFNGate       int
	nFFNUp, iFFNUp           int
	opt                      *PlanOptions
	outputType, tokEmbedType *graph.Type
}

// layerInfo mirrors the layer_info lambda: the counter for dense models,
// the parsed block number for MoE models.
func (s *planState) layerInfo(counter, n int, name string) (int, int, error) {
	if s.mi.nExpert > 1 {
		l := graph.LayerIndex(name)
		if l < 0 {
			return 0, 0, fmt.Errorf("tensor %s: cannot determine its layer", name)
		}
		if l >= n {
			return 0, 0, fmt.Errorf("tensor %s: bad layer %d, must be in [0, %d)", name, l, n)
		}
		return l, n, nil
	}
	return counter, n, nil
}

// isFT reports whether ft is one of fts.
func isFT(ft uint32, fts ...uint32) bool {
	for _, f := range fts {
		if ft == f {
			return true
		}
	}
	return false
}

// mixture mirrors llama_tensor_get_type_impl: the branches in llama.cpp's
// order, the first whose category (and file type) matches decides.
func (s *planState) mixture(t graph.Type, name string, shape []int64, cat category) (graph.Type, string, error) {
	mi, ft := s.mi, s.ftype
	falcon := mi.arch == "falcon"
	why := ""
	// The very-low-bit file types whose own branch comes before the
	// per-category rules.
	iq2Family := isFT(ft, ftypeIQ2_XXS, ftypeIQ2_XS, ftypeIQ1_S, ftypeIQ2_S, ftypeIQ2_M, ftypeIQ1_M)
	iq2SorM := ft == ftypeIQ2_S || ft == ftypeIQ2_M
	switch {
	case cat == catOutput || (mi.tiedEmbd && cat == catTokenEmbd):
		what := "output"
		if cat == catTokenEmbd {
			what = "tied token_embd (as output)"
		}
		if s.outputType != nil {
			return *s.outputType, what + ": --output-tensor-type", nil
		}
		nx := shape[len(shape)-1]
		switch {
		case ft == ftypeMXFP4MoE:
			return graph.Q8_0, what + ", MXFP4_MOE -> Q8_0", nil
		case falcon || nx%t.BlockSize() != 0:
			return graph.Q8_0, fmt.Sprintf("%s: ncols %d not divisible by %d -> Q8_0", what, nx, t.BlockSize()), nil
		case isFT(ft, ftypeIQ2_XXS, ftypeIQ2_XS, ftypeIQ3_XXS, ftypeIQ1_S, ftypeIQ2_S, ftypeIQ2_M, ftypeIQ1_M):
			return graph.Q5_K, what + ", very low-bit IQ file type -> Q5_K", nil
		case t != graph.Q8_0:
			return graph.Q6_K, what + " -> Q6_K", nil
		}
		return t, what, nil
	case ft == ftypeMXFP4MoE:
		// Expert tensors (3-D, more than one expert) MXFP4, the rest Q8_0.
		expertRole := cat == catFFNUp || cat == catFFNGate || cat == catFFNDown
		if ne2 := ne(shape, 2); ne2 > 1 && (mi.arch != "bailingmoe3" || expertRole) {
			return graph.MXFP4, "MXFP4_MOE: expert tensor -> MXFP4", nil
		}
		return graph.Q8_0, "MXFP4_MOE: not an expert tensor -> Q8_0", nil
	case cat == catTokenEmbd:
		if s.tokEmbedType != nil {
			return *s.tokEmbedType, "token_embd: --token-embedding-type", nil
		}
		switch {
		case isFT(ft, ftypeIQ2_XXS, ftypeIQ2_XS, ftypeIQ1_S, ftypeIQ1_M):
			t, why = graph.Q2_K, "token_embd, very low-bit IQ file type -> Q2_K"
		case iq2SorM || ft == ftypeIQ3_XXS:
			t, why = graph.IQ3_S, "token_embd -> IQ3_S"
		case isFT(ft, ftypeTQ1_0, ftypeTQ2_0):
			t, why = graph.Q4_K, "token_embd, ternary file type -> Q4_K"
		}
	case iq2Family:
		switch {
		case cat.isAttnV():
			switch {
			case mi.nGQA() >= 4 || mi.nExpert >= 4:
				t, why = graph.Q4_K, "attn_v, n_gqa >= 4 or n_expert >= 4"
			case iq2SorM:
				t, why = graph.IQ3_S, "attn_v"
			default:
				t, why = graph.Q2_K, "attn_v"
			}
			s.iAttnWV++
		case mi.nExpert == 8 && cat == catAttnK:
			t, why = graph.Q4_K, "attn_k, 8 experts"
		case cat == catFFNDown:
			// llama.cpp counts ffn_down tensors here, even for MoE models.
			if s.iFFNDown < s.nFFNDown/8 {
				if iq2SorM {
					t = graph.IQ3_S
				} else {
					t = graph.Q2_K
				}
				why = fmt.Sprintf("ffn_down #%d < %d/8", s.iFFNDown, s.nFFNDown)
			}
			s.iFFNDown++
		case cat == catAttnOutput:
			switch {
			case mi.nExpert == 8:
				t, why = graph.Q5_K, "attn_output, 8 experts"
			case ft == ftypeIQ1_S || ft == ftypeIQ1_M:
				t, why = graph.IQ2_XXS, "attn_output, IQ1 file type"
			case iq2SorM:
				t, why = graph.IQ3_S, "attn_output"
			}
		}
	case cat.isAttnV():
		i, n := s.iAttnWV, s.nAttnWV
		switch {
		case ft == ftypeQ2_K:
			if mi.nGQA() >= 4 {
				t, why = graph.Q4_K, "attn_v, Q2_K, n_gqa >= 4"
			} else {
				t, why = graph.Q3_K, "attn_v, Q2_K"
			}
		case ft == ftypeQ2_KS && mi.nGQA() >= 4:
			t, why = graph.Q4_K, "attn_v, Q2_K_S, n_gqa >= 4"
		case ft == ftypeIQ3_XXS:
			switch {
			case mi.nGQA() >= 4:
				t, why = graph.Q4_K, "attn_v, IQ3_XXS, n_gqa >= 4"
			case !s.opt.Imatrix:
				t, why = graph.IQ3_S, "attn_v, IQ3_XXS without an imatrix"
			default:
				t, why = graph.IQ3_XXS, "attn_v, IQ3_XXS with an imatrix"
			}
		case (ft == ftypeIQ3_XS || ft == ftypeIQ3_S) && mi.nGQA() >= 4:
			t, why = graph.Q4_K, "attn_v, n_gqa >= 4"
		case ft == ftypeIQ3_M:
			t, why = graph.Q4_K, "attn_v, IQ3_M"
		case ft == ftypeQ3_KM:
			if i < 2 {
				t, why = graph.Q5_K, fmt.Sprintf("attn_v #%d < 2, Q3_K_M", i)
			} else {
				t, why = graph.Q4_K, "attn_v, Q3_K_M"
			}
		case ft == ftypeQ3_KL:
			t, why = graph.Q5_K, "attn_v, Q3_K_L"
		case (ft == ftypeIQ4_NL || ft == ftypeIQ4_XS) && mi.nGQA() >= 4:
			t, why = graph.Q5_K, "attn_v, IQ4, n_gqa >= 4"
		case (ft == ftypeQ4_KM || ft == ftypeQ5_KM) && useMoreBits(i, n):
			t, why = graph.Q6_K, fmt.Sprintf("attn_v #%d of %d, use_more_bits", i, n)
		case ft == ftypeQ4_KS && i < 4:
			t, why = graph.Q5_K, fmt.Sprintf("attn_v #%d < 4, Q4_K_S", i)
		}
		if mi.is70B && (t == graph.Q3_K || t == graph.Q4_K) {
			t, why = graph.Q5_K, "attn_v, 70B model"
		}
		if mi.nExpert == 8 {
			t, why = graph.Q8_0, "attn_v, 8 experts"
		}
		s.iAttnWV++
	case cat == catAttnK:
		switch {
		case mi.nExpert == 8:
			t, why = graph.Q8_0, "attn_k, 8 experts"
		case ft == ftypeIQ3_XS:
			t, why = graph.IQ3_XXS, "attn_k, IQ3_XS"
		case ft == ftypeIQ3_XXS:
			t, why = graph.IQ2_S, "attn_k, IQ3_XXS"
		}
	case cat == catAttnQ:
		switch ft {
		case ftypeIQ3_XS:
			t, why = graph.IQ3_XXS, "attn_q, IQ3_XS"
		case ftypeIQ3_XXS:
			t, why = graph.IQ2_S, "attn_q, IQ3_XXS"
		}
	case cat == catFFNDown:
		i, n, err := s.layerInfo(s.iFFNDown, s.nFFNDown, name)
		if err != nil {
			return 0, "", err
		}
		switch {
		case ft == ftypeQ2_K:
			t, why = graph.Q3_K, "ffn_down, Q2_K"
		case ft == ftypeQ2_KS:
			if i < n/8 {
				t, why = graph.Q4_K, fmt.Sprintf("ffn_down layer %d < %d/8, Q2_K_S", i, n)
			}
		case ft == ftypeIQ3_XXS && !s.opt.Imatrix:
			if i < n/8 {
				t = graph.Q4_K
			} else {
				t = graph.Q3_K
			}
			why = "ffn_down, IQ3_XXS without an imatrix"
		case ft == ftypeQ3_KM:
			switch {
			case i < n/16:
				t, why = graph.Q5_K, fmt.Sprintf("ffn_down layer %d < %d/16, Q3_K_M", i, n)
			case !falcon || useMoreBits(i, n):
				t, why = graph.Q4_K, "ffn_down, Q3_K_M"
			default:
				t = graph.Q3_K
			}
		case ft == ftypeIQ3_M && (i < n/8 || (mi.nExpert == 8 && useMoreBits(i, n))):
			t, why = graph.Q4_K, fmt.Sprintf("ffn_down layer %d of %d, IQ3_M", i, n)
		case ft == ftypeQ3_KL:
			if falcon {
				t = graph.Q4_K
			} else {
				t = graph.Q5_K
			}
			why = "ffn_down, Q3_K_L"
		case ft == ftypeQ4_KM:
			if falcon {
				switch {
				case i < n/16:
					t = graph.Q6_K
				case useMoreBits(i, n):
					t = graph.Q5_K
				default:
					t = graph.Q4_K
				}
				why = "ffn_down, falcon"
			} else if useMoreBits(i, n) {
				t, why = graph.Q6_K, fmt.Sprintf("ffn_down layer %d of %d, use_more_bits", i, n)
			}
		case i < n/8 && (ft == ftypeIQ4_NL || ft == ftypeIQ4_XS) && !s.opt.Imatrix:
			t, why = graph.Q5_K, fmt.Sprintf("ffn_down layer %d < %d/8, IQ4 without an imatrix", i, n)
		case ft == ftypeQ5_KM && useMoreBits(i, n):
			t, why = graph.Q6_K, fmt.Sprintf("ffn_down layer %d of %d, use_more_bits", i, n)
		case ft == ftypeQ4_KS && !falcon && i < n/8:
			t, why = graph.Q5_K, fmt.Sprintf("ffn_down layer %d < %d/8, Q4_K_S", i, n)
		case (ft == ftypeQ4_0 || ft == ftypeQ5_0) && s.opt.Imatrix && i < n/8:
			if ft == ftypeQ4_0 {
				t = graph.Q4_1
			} else {
				t = graph.Q5_1
			}
			why = fmt.Sprintf("ffn_down layer %d < %d/8 with an imatrix", i, n)
		}
		s.iFFNDown++
	case cat == catAttnOutput:
		if !falcon {
			if mi.nExpert == 8 {
				if isFT(ft, ftypeQ2_K, ftypeIQ3_XS, ftypeIQ3_XXS, ftypeQ3_KS, ftypeQ3_KM, ftypeIQ4_NL,
					ftypeQ4_KS, ftypeQ4_KM, ftypeIQ3_S, ftypeIQ3_M, ftypeIQ4_XS) {
					t, why = graph.Q5_K, "attn_output, 8 experts"
				}
			} else {
				switch ft {
				case ftypeQ2_K:
					t, why = graph.Q3_K, "attn_output, Q2_K"
				case ftypeIQ3_XXS:
					t, why = graph.IQ3_S, "attn_output, IQ3_XXS"
				case ftypeQ3_KM:
					t, why = graph.Q4_K, "attn_output, Q3_K_M"
				case ftypeQ3_KL:
					t, why = graph.Q5_K, "attn_output, Q3_K_L"
				case ftypeIQ3_M:
					t, why = graph.Q4_K, "attn_output, IQ3_M"
				}
			}
		} else if ft == ftypeQ3_KL {
			t, why = graph.Q4_K, "attn_output, falcon Q3_K_L"
		}
	case cat == catAttnQKV:
		// Unreachable: attn_qkv is attn_v-like above (kept for parity
		// with llama.cpp's branch order).
	case cat == catFFNGate || cat == catFFNUp:
		counter := &s.iFFNGate
		n := s.nFFNGate
		if cat == catFFNUp {
			counter, n = &s.iFFNUp, s.nFFNUp
		}
		i, n, err := s.layerInfo(*counter, n, name)
		if err != nil {
			return 0, "", err
		}
		if ft == ftypeIQ3_XS && i >= n/8 && i < 7*n/8 {
			t, why = graph.IQ3_XXS, fmt.Sprintf("ffn_gate/up layer %d in [%d/8, 7*%d/8), IQ3_XS", i, n, n)
		}
		*counter++
	}
	return t, why, nil
}

// ne returns ggml's ne[i] of an outermost-first shape (1 past its end).
func ne(shape []int64, i int) int64 {
	if i >= len(shape) {
		return 1
	}
	return shape[len(shape)-1-i]
}

// PlanGGUF decides the output type of every tensor the way llama-quantize
// (llama.cpp src/llama-quant.cpp) does for file type ft, and returns the
// plans in llama.cpp's output order (graph.SortLlamaCpp). The plan depends
// only on names, shapes, types and hyperparameters; no tensor data is read.
func PlanGGUF(m *graph.Model, ft FileType, opt PlanOptions) ([]TensorPlan, error) {
	if _, err := ParseFileType(ft.Name); err != nil {
		return nil, err
	}
	ts := make([]*graph.Tensor, len(m.Tensors))
	copy(ts, m.Tensors)
	graph.SortLlamaCpp(ts)
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: duplicate tensor %s", m.Path, t.Name)
		}
		seen[t.Name] = true
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("%s: tensor %s has no dimensions", m.Path, t.Name)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%s: tensor %s has a negative dimension %v", m.Path, t.Name, t.Shape)
			}
		}
	}
	mi := newModelInfo(m)
	s := &planState{mi: mi, ftype: ft.LlamaFType, opt: &opt,
		outputType: opt.OutputTensorType, tokEmbedType: opt.TokenEmbeddingType}
	for _, t := range ts {
		if categoryOf(t.Name).isAttnV() {
			s.nAttnWV++
		}
	}
	s.nFFNDown, s.nFFNGate, s.nFFNUp = mi.nLayer, mi.nLayer, mi.nLayer

	plans := make([]TensorPlan, 0, len(ts))
	for _, t := range ts {
		p := TensorPlan{Name: t.Name, Shape: t.Shape, From: t.Type, To: t.Type, Tensor: t}
		to, why, err := s.tensorType(t, ft)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		p.To, p.Reason = to, why
		if p.To != p.From && !p.To.IsGGML() {
			return nil, fmt.Errorf("%s: tensor %s: target type %v is not a GGUF type", m.Path, t.Name, p.To)
		}
		if p.To != p.From {
			if _, err := graph.RowSize(p.To, t.RowLen()); err != nil {
				return nil, fmt.Errorf("%s: tensor %s %v: %w", m.Path, t.Name, t.Shape, err)
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// tensorType mirrors llama_tensor_get_type.
func (s *planState) tensorType(t *graph.Tensor, ft FileType) (graph.Type, string, error) {
	if why := allowsQuantization(t.Name, t.Shape, s.opt); why != "" {
		return t.Type, why, nil
	}
	cat := categoryOf(t.Name)
	if s.tokEmbedType != nil && cat == catTokenEmbd {
		return *s.tokEmbedType, "--token-embedding-type", nil
	}
	if s.outputType != nil && cat == catOutput {
		return *s.outputType, "--output-tensor-type", nil
	}
	typ, why := ft.Default, ft.Name+" default"
	if !typ.IsQuantized() {
		return typ, why, nil
	}
	manual := false
	for _, r := range s.opt.TensorTypes {
		if r.Pattern.MatchString(t.Name) {
			typ, why, manual = r.Type, "--tensor-type "+r.Pattern.String(), true
			break
		}
	}
	if !manual && !s.opt.Pure {
		mt, mwhy, err := s.mixture(typ, t.Name, t.Shape, cat)
		if err != nil {
			return 0, "", err
		}
		if mwhy != "" {
			why = mwhy
		}
		typ = mt
	}
	nt, fwhy, err := fallbackType(typ, t.RowLen())
	if err != nil {
		return 0, "", fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if fwhy != "" {
		why += "; " + fwhy
	}
	return nt, why, nil
}

// parseTypeName parses a ggml tensor type name for CLI flags.
func parseTypeName(s string) (graph.Type, error) {
	t, ok := graph.ParseType(s)
	if !ok || !t.IsGGML() {
		if n, err := strconv.Atoi(s); err == nil && graph.Type(n).IsGGML() {
			return graph.Type(n), nil
		}
		return 0, fmt.Errorf("unknown GGUF tensor type %q", s)
	}
	return t, nil
}

// ParseTensorType parses a ggml tensor type name ("q6_k", "F16") or id.
func ParseTensorType(s string) (graph.Type, error) { return parseTypeName(s) }
