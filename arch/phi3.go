package arch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/jsonnum"
)

// Phi3 is Phi3ForCausalLM: Phi-3, Phi-3.5-mini, Phi-4-mini
// (convert_hf_to_gguf.py conversion/phi.py Phi3MiniModel; llama.cpp
// src/models/phi3.cpp; mlx-lm mlx_lm/models/phi3.py).
//
//   - One fused projection for Q, K and V (self_attn.qkv_proj, GGUF
//     attn_qkv: the rows of Q, then K, then V) and one for the FFN gate
//     and up projections (mlp.gate_up_proj, GGUF ffn_up: the FFN gate rows
//     first, then the up rows; llama.cpp's LLM_FFN_SWIGLU on the fused
//     tensor computes silu(first half) * second half). NEOX rope, no
//     permutation, no biases. mlx-lm keeps both fused under the HF names
//     and quantizes them like any nn.Linear (phi3.py declares no sanitize
//     and no quantization predicate).
//   - longrope scaling: rope_scaling (or rope_parameters) short_factor and
//     long_factor lists become the GGUF tensors rope_factors_short.weight
//     and rope_factors_long.weight (F32, rope dims / 2 values each), and
//     the attention factor sqrt(1 + ln(s)/ln(orig)), s = max_position /
//     original_max_position, the key rope.scaling.attn_factor
//     (Phi3MiniModel.generate_extra_tensors). llama.cpp uses the long
//     factors when the context per sequence (rounded up to 256) exceeds
//     rope.scaling.original_context_length; transformers when the
//     sequence is longer than original_max_position_embeddings.
//   - partial_rotary_factor (Phi-4-mini: 0.75): rope.dimension_count is
//     int(factor × hidden_size) // heads.
//   - sliding_window is written as attention.sliding_window (0 when null),
//     but llama.cpp's phi3 disables sliding-window attention at load
//     (llama_model_phi3::load_arch_hparams); transformers applies it.
//     Params.SlidingLayers is set for HF/MLX configs, not for GGUF files.
//   - The vocabulary: Phi3MiniModel.set_vocab (see SPMAddedTokens).
var Phi3 = &Arch{
	Name:            "phi3",
	HFClasses:       []string{"Phi3ForCausalLM"},
	ModelTypes:      []string{"phi3"},
	RopeType:        "neox",
	DefaultContext:  4096, // transformers Phi3Config defaults
	DefaultRMSEps:   1e-5,
	DefaultRopeBase: 10000,
	Globals:         commonGlobals,
	Layer:           phi3Layer,
	Features:        Features{FusedQKV: true, FusedUp: true, ScaleQ: true},
	Config:          phi3Config,
	WriteConfig:     phi3WriteConfig,
	OwnTextModelKV:  true,
	GGUFKV:          phi3KV,
	ExtraKV:         phi3ExtraKV,
	ExtraTensors:    phi3ExtraTensors,
	FromGGUF:        phi3FromGGUF,
	FromGGUFTensors: phi3FromGGUFTensors,
	SPMAddedTokens:  true,
	Verified:        "fused qkv_proj/gate_up_proj, longrope, GQA, padded vocabulary (testdata/arch/phi3-tiny): HF → GGUF byte-identical to convert_hf_to_gguf.py from both config forms; 8 llama-quantize types byte-identical, from the GGUF and from HF in one pass; GGUF → HF restores rope_scaling; ppl = transformers fp32 (5e-8) and llama-perplexity (every printed figure: bf16 and 8 quantized types at -b 128, bf16 at the default batch); ids = transformers and llama-tokenize",
	// mlx-lm phi3.py ModelArgs: tie_word_embeddings: bool = False.
	MLXUntiedDefault: true,
}

func init() { Register(Phi3) }

// phi3Layer are Phi-3's layer tensors (gguf-py's PHI3 tensor map):
// separate q/k/v projections are mapped too (the GGUF format allows them),
// the unfused gate/up projections are not (ffn_up is the fused one).
var phi3Layer = []NamePair{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"self_attn.qkv_proj.weight", "attn_qkv.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"mlp.gate_up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

// GGUF names of the longrope factor tensors (MODEL_TENSOR.ROPE_FACTORS_*).
const (
	ropeFactorsLong  = "rope_factors_long.weight"
	ropeFactorsShort = "rope_factors_short.weight"
)

// ropeObject returns config.json's rope_parameters (or rope_scaling)
// object and its key, or nil.
func ropeObject(m map[string]any) (map[string]any, string) {
	for _, k := range []string{"rope_parameters", "rope_scaling"} {
		if o, ok := m[k].(map[string]any); ok {
			if fa, ok := o["full_attention"].(map[string]any); ok {
				return fa, k
			}
			return o, k
		}
	}
	return nil, ""
}

// phi3Config reads the longrope factor lists and the sliding window.
// ParseConfig has already read the rope type, base, original context and
// partial rotary factor.
func phi3Config(c *Config, p *graph.Params) error {
	sw, err := c.Size("sliding_window", 0, false)
	if err != nil {
		return err
	}
	p.SlidingWindow = sw
	if sw > 0 {
		p.SlidingLayers = make([]bool, p.Layers)
		for i := range p.SlidingLayers {
			p.SlidingLayers[i] = true
		}
	}
	rs := p.RopeScaling
	if rs == nil || rs.Type != "longrope" {
		return nil
	}
	rp, key := ropeObject(c.M)
	if rs.ShortFactor, err = c.Floats(rp, "short_factor"); err != nil {
		return err
	}
	if rs.LongFactor, err = c.Floats(rp, "long_factor"); err != nil {
		return err
	}
	// Phi3MiniModel.generate_extra_tensors' checks.
	if len(rs.LongFactor) == 0 || len(rs.ShortFactor) == 0 {
		return c.Errf(key, "longrope scaling needs short_factor and long_factor lists")
	}
	if n := p.RopeDims / 2; len(rs.LongFactor) != n || len(rs.ShortFactor) != n {
		return c.Errf(key, "short_factor has %d and long_factor %d values; rotary dimension %d needs %d each", len(rs.ShortFactor), len(rs.LongFactor), p.RopeDims, n)
	}
	for i := range rs.LongFactor {
		if !(rs.LongFactor[i] > 0) || !(rs.ShortFactor[i] > 0) || math.IsInf(rs.LongFactor[i], 0) || math.IsInf(rs.ShortFactor[i], 0) {
			return c.Errf(key, "factor %d (short %v, long %v) is not a positive number", i, rs.ShortFactor[i], rs.LongFactor[i])
		}
	}
	if rs.OriginalContext <= 0 {
		return c.Errf("original_max_position_embeddings", "missing (longrope scaling needs it)")
	}
	if rs.AttnFactor, err = c.FloatIn(rp, "attention_factor", 0); err != nil {
		return err
	}
	return nil
}

// LongropeAttnFactor is the attention factor of longrope scaling for a
// model trained at context ctx from original context orig, as transformers'
// _compute_longrope_parameters and Phi3MiniModel.generate_extra_tensors
// compute it: sqrt(1 + ln(ctx/orig)/ln(orig)), 1 when ctx <= orig.
func LongropeAttnFactor(ctx, orig int) float64 {
	if orig <= 1 || ctx <= orig {
		return 1
	}
	return math.Sqrt(1 + math.Log(float64(ctx)/float64(orig))/math.Log(float64(orig)))
}

// phi3WriteConfig writes what Phi3Config and mlx-lm's phi3 ModelArgs read:
// original_max_position_embeddings at the top level, the longrope lists,
// sliding_window. Published Phi-3 configs write rope_scaling as exactly
// {long_factor, short_factor, type} (transformers 4.4x's Phi3Config
// validation wants those three keys; mlx-lm wants "type").
func phi3WriteConfig(p *graph.Params, out map[string]any) {
	rs := p.RopeScaling
	orig := p.ContextLength
	if rs != nil && rs.OriginalContext > 0 {
		orig = rs.OriginalContext
		out["original_max_position_embeddings"] = orig
	} else if _, ok := out["original_max_position_embeddings"]; !ok && orig > 0 {
		// Without scaling Params holds no original context (a GGUF's
		// rope.scaling.original_context_length is not kept); every
		// published Phi-3 without longrope has original =
		// max_position_embeddings.
		out["original_max_position_embeddings"] = orig
	}
	if p.SlidingWindow > 0 {
		out["sliding_window"] = p.SlidingWindow
	} else {
		out["sliding_window"] = nil
	}
	delete(out, "attention_bias")
	if rs == nil || rs.Type != "longrope" {
		return
	}
	lists := func(o map[string]any) {
		o["short_factor"] = jsonFloats(rs.ShortFactor)
		o["long_factor"] = jsonFloats(rs.LongFactor)
		delete(o, "attention_factor")
		if rs.AttnFactor != 0 && float32(rs.AttnFactor) != float32(LongropeAttnFactor(p.ContextLength, orig)) {
			o["attention_factor"] = jsonFloat(rs.AttnFactor)
		}
	}
	if rp, ok := out["rope_parameters"].(map[string]any); ok {
		lists(rp)
		return
	}
	o := map[string]any{"type": "longrope"}
	lists(o)
	out["rope_scaling"] = o
}

// jsonFloat writes v in its shortest form; a value that is exactly a
// float32 (GGUF stores the factors as F32) with the float32's digits.
func jsonFloat(v float64) json.Number {
	if f := float32(v); float64(f) == v {
		return json.Number(strconv.FormatFloat(v, 'g', -1, 32))
	}
	return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
}

func jsonFloats(v []float64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = jsonFloat(x)
	}
	return out
}

// phi3Need is find_hparam without optional: the value of the first key
// present, or an error naming config.json and the keys.
func phi3Need(h HParams, m *graph.Model, keys ...string) (float64, error) {
	v, ok := h.Find(keys...)
	if !ok {
		return 0, fmt.Errorf("gguf: %s: config.json has none of %s", m.Path, strings.Join(keys, ", "))
	}
	f, ok := jsonnum.Float(v)
	if !ok {
		return 0, fmt.Errorf("gguf: %s: config.json key %s is %s, not a number", m.Path, keys[0], JSONKind(v))
	}
	return f, nil
}

// phi3Hyper are the values Phi3MiniModel.set_gguf_parameters and
// generate_extra_tensors read, from config.json (find_hparam and
// rope_parameters, with the top-level keys mirrored in as TextModel
// does), or from Params for a model read without one.
type phi3Hyper struct {
	embd, heads, headsKV, ffn, layers, ctx, orig, ropeDims, swa int
	eps, theta                                                  float64
	ropeType                                                    string
	long                                                        []float64
}

func phi3Hyperparams(h HParams, m *graph.Model) (*phi3Hyper, error) {
	p := m.Params
	if h.Raw == nil {
		x := &phi3Hyper{embd: p.Embedding, heads: p.Heads, headsKV: p.KVHeads, ffn: p.FFN, layers: p.Layers,
			ctx: p.ContextLength, orig: p.ContextLength, ropeDims: p.RopeDims, swa: p.SlidingWindow,
			eps: p.RMSEps, theta: p.RopeBase}
		if rs := p.RopeScaling; rs != nil {
			if rs.OriginalContext > 0 {
				x.orig = rs.OriginalContext
			}
			x.ropeType, x.long = rs.Type, rs.LongFactor
		}
		if x.headsKV == 0 {
			x.headsKV = x.heads
		}
		if x.embd <= 0 || x.heads <= 0 || x.layers <= 0 || x.ctx <= 0 {
			return nil, fmt.Errorf("gguf: %s: model lacks the hyperparameters Phi-3's GGUF metadata needs", m.Path)
		}
		if x.ropeDims == 0 {
			x.ropeDims = x.embd / x.heads
		}
		return x, nil
	}
	x := &phi3Hyper{}
	var err error
	get := func(keys ...string) int {
		if err != nil {
			return 0
		}
		var f float64
		f, err = phi3Need(h, m, keys...)
		if err == nil && (f != math.Trunc(f) || f < 0 || f > MaxDim) {
			err = fmt.Errorf("gguf: %s: config.json key %s is %v, not a size", m.Path, keys[0], f)
		}
		return int(f)
	}
	x.embd = get("hidden_size", "n_embd")
	x.heads = get("num_attention_heads", "n_head")
	x.headsKV = get("num_key_value_heads", "n_head_kv")
	x.ctx = get("n_positions", "max_position_embeddings")
	x.ffn = get("intermediate_size")
	x.layers = get("n_layers", "num_hidden_layers", "n_layer", "num_layers")
	if err != nil {
		return nil, err
	}
	if x.eps, err = phi3Need(h, m, "rms_norm_eps"); err != nil {
		return nil, err
	}
	if x.heads == 0 {
		return nil, fmt.Errorf("gguf: %s: config.json num_attention_heads is 0", m.Path)
	}
	rope := h.Rope()
	// TextModel mirrors these top-level keys into rope_parameters.
	lookup := func(key string, top ...string) (any, bool) {
		if v, ok := rope[key]; ok && v != nil {
			return v, true
		}
		return h.Find(top...)
	}
	v, ok := lookup("original_max_position_embeddings", "original_max_position_embeddings")
	if !ok {
		return nil, fmt.Errorf("gguf: %s: config.json has no original_max_position_embeddings (Phi-3 needs it)", m.Path)
	}
	if f, ok := jsonnum.Float(v); !ok || f != math.Trunc(f) || f <= 0 || f > MaxDim {
		return nil, fmt.Errorf("gguf: %s: config.json original_max_position_embeddings %v is not a context length", m.Path, v)
	} else {
		x.orig = int(f)
	}
	rot := 1.0
	if v, ok := lookup("partial_rotary_factor", "partial_rotary_factor", "rope_pct", "rope_percent"); ok {
		if rot, ok = jsonnum.Float(v); !ok {
			return nil, fmt.Errorf("gguf: %s: config.json partial_rotary_factor is %s, not a number", m.Path, JSONKind(v))
		}
	}
	x.ropeDims = int(rot*float64(x.embd)) / x.heads
	v, ok = rope["rope_theta"]
	if !ok || v == nil {
		return nil, fmt.Errorf("gguf: %s: config.json has no rope_theta", m.Path)
	}
	if x.theta, ok = jsonnum.Float(v); !ok {
		return nil, fmt.Errorf("gguf: %s: config.json rope_theta is %s, not a number", m.Path, JSONKind(v))
	}
	if v, ok := h.Raw["sliding_window"]; ok && v != nil {
		f, ok := jsonnum.Float(v)
		if !ok || f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
			return nil, fmt.Errorf("gguf: %s: config.json sliding_window %v is not a window size", m.Path, v)
		}
		x.swa = int(f)
	}
	x.ropeType, _ = rope["rope_type"].(string)
	x.ropeType = strings.ToLower(x.ropeType)
	if l, ok := rope["long_factor"].([]any); ok {
		x.long = make([]float64, len(l))
		for i, e := range l {
			if x.long[i], ok = jsonnum.Float(e); !ok {
				return nil, fmt.Errorf("gguf: %s: config.json long_factor[%d] is %s, not a number", m.Path, i, JSONKind(e))
			}
		}
	}
	return x, nil
}

// phi3KV is Phi3MiniModel.set_gguf_parameters (which does not call
// TextModel's), in its order.
func phi3KV(b *KVBuilder, h HParams, m *graph.Model) error {
	x, err := phi3Hyperparams(h, m)
	if err != nil {
		return err
	}
	b.AddArch("context_length", uint32(x.ctx))
	b.AddArch("rope.scaling.original_context_length", uint32(x.orig))
	b.AddArch("embedding_length", uint32(x.embd))
	b.AddArch("feed_forward_length", uint32(x.ffn))
	b.AddArch("block_count", uint32(x.layers))
	b.AddArch("attention.head_count", uint32(x.heads))
	b.AddArch("attention.head_count_kv", uint32(x.headsKV))
	b.AddArch("attention.layer_norm_rms_epsilon", float32(x.eps))
	b.AddArch("rope.dimension_count", uint32(x.ropeDims))
	b.AddArch("rope.freq_base", float32(x.theta))
	b.Add("general.file_type", b.FileType)
	b.AddArch("attention.sliding_window", uint32(x.swa))
	return nil
}

// phi3ExtraKV is the key generate_extra_tensors writes when the config has
// long factors: rope.scaling.attn_factor.
func phi3ExtraKV(b *KVBuilder, h HParams, m *graph.Model) error {
	x, err := phi3Hyperparams(h, m)
	if err != nil {
		return err
	}
	if len(x.long) == 0 {
		return nil
	}
	scale := float64(x.ctx) / float64(x.orig)
	var f float64
	switch x.ropeType {
	case "su", "longrope":
		f = LongropeAttnFactor(x.ctx, x.orig)
	case "yarn":
		f = 1
		if scale > 1 {
			f = 0.1*math.Log(scale) + 1
		}
	case "":
		return fmt.Errorf("gguf: %s: config.json rope scaling has long_factor but no type", m.Path)
	default:
		return fmt.Errorf("gguf: %s: rope scaling type %q with long_factor is not supported (the converter supports longrope, su and yarn)", m.Path, x.ropeType)
	}
	b.AddArch("rope.scaling.attn_factor", float32(f))
	return nil
}

// phi3ExtraTensors are rope_factors_long.weight and
// rope_factors_short.weight (F32) from the longrope lists.
func phi3ExtraTensors(m *graph.Model) ([]*graph.Tensor, error) {
	rs := m.Params.RopeScaling
	if rs == nil || len(rs.LongFactor) == 0 {
		return nil, nil
	}
	if len(rs.ShortFactor) != len(rs.LongFactor) {
		return nil, fmt.Errorf("%s: longrope scaling has %d short and %d long factors", m.Path, len(rs.ShortFactor), len(rs.LongFactor))
	}
	vec := func(name string, v []float64) *graph.Tensor {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
		}
		return &graph.Tensor{Name: name, Shape: []int64{int64(len(v))}, Type: graph.F32, Data: bytes.NewReader(b)}
	}
	return []*graph.Tensor{vec(ropeFactorsLong, rs.LongFactor), vec(ropeFactorsShort, rs.ShortFactor)}, nil
}

// phi3FromGGUF reads attention.sliding_window (llama.cpp does not apply
// it to phi3, so no layer is marked sliding).
func phi3FromGGUF(get KVGetter, p *graph.Params) error {
	if v, ok := get("attention.sliding_window"); ok {
		n, ok := v.(uint32)
		if !ok {
			return fmt.Errorf("key phi3.attention.sliding_window is %T, not uint32", v)
		}
		p.SlidingWindow = int(n)
		p.SlidingLayers = nil
	}
	return nil
}

// phi3FromGGUFTensors rebuilds longrope scaling from the factor tensors
// and the rope.scaling.* keys the converter wrote. Without the tensors
// the model has no scaling (the converter writes no rope.scaling.type).
func phi3FromGGUFTensors(m *graph.Model) error {
	lt, st := m.Tensor(ropeFactorsLong), m.Tensor(ropeFactorsShort)
	if lt == nil && st == nil {
		m.Params.RopeScaling = nil
		return nil
	}
	if lt == nil || st == nil {
		return fmt.Errorf("phi3: only one of %s and %s is present", ropeFactorsLong, ropeFactorsShort)
	}
	long, err := readF32Vector(lt)
	if err != nil {
		return err
	}
	short, err := readF32Vector(st)
	if err != nil {
		return err
	}
	if len(long) != len(short) {
		return fmt.Errorf("phi3: %s has %d values, %s %d", ropeFactorsLong, len(long), ropeFactorsShort, len(short))
	}
	rs := &graph.RopeScaling{Type: "longrope", LongFactor: long, ShortFactor: short}
	if v, ok := m.Meta("phi3.rope.scaling.original_context_length"); ok {
		n, ok := v.(uint32)
		if !ok {
			return fmt.Errorf("key phi3.rope.scaling.original_context_length is %T, not uint32", v)
		}
		rs.OriginalContext = int(n)
	}
	if rs.OriginalContext == 0 {
		return fmt.Errorf("phi3: longrope factor tensors without phi3.rope.scaling.original_context_length")
	}
	if v, ok := m.Meta("phi3.rope.scaling.attn_factor"); ok {
		f, ok := v.(float32)
		if !ok {
			return fmt.Errorf("key phi3.rope.scaling.attn_factor is %T, not float32", v)
		}
		rs.AttnFactor = float32Decimal(f)
	}
	m.Params.RopeScaling = rs
	return nil
}

// float32Decimal is f as the float64 of its shortest decimal form (1e-5
// stored as F32 reads as 1e-5 and converts back to the same bits).
func float32Decimal(f float32) float64 {
	x, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return x
}

// maxFactors bounds a rope factor vector read from a file.
const maxFactors = 1 << 16

// readF32Vector reads a 1-D F32 tensor as float64 values (each the
// shortest decimal of its float32).
func readF32Vector(t *graph.Tensor) ([]float64, error) {
	if t.Type != graph.F32 || len(t.Shape) != 1 || t.Shape[0] <= 0 || t.Shape[0] > maxFactors || t.Data == nil {
		return nil, fmt.Errorf("tensor %s: want a 1-D F32 vector of at most %d values, have %v %v", t.Name, maxFactors, t.Type, t.Shape)
	}
	n := int(t.Shape[0])
	if t.Data.Size() != int64(4*n) {
		return nil, fmt.Errorf("tensor %s: %d bytes of data for %d F32 values", t.Name, t.Data.Size(), n)
	}
	b := make([]byte, 4*n)
	if _, err := t.Data.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = float32Decimal(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out, nil
}
