package mlx

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/quantbridge/quantbridge/internal/jsonnum"
	"github.com/quantbridge/quantbridge/internal/pyjson"
)

// Quantization modes (mlx.core.quantize "mode").
const (
	ModeAffine = "affine"
	ModeMXFP4  = "mxfp4"
	ModeNVFP4  = "nvfp4"
	ModeMXFP8  = "mxfp8"
)

// modeDefaults are (group_size, bits) per mode, as mlx.nn's
// _defaults_for_mode and mlx-lm's quantize_model define them.
var modeDefaults = map[string][2]int{
	ModeAffine: {64, 4},
	ModeMXFP4:  {32, 4},
	ModeNVFP4:  {16, 4},
	ModeMXFP8:  {32, 8},
}

// Params are resolved quantization parameters of one module.
type Params struct {
	GroupSize int
	Bits      int
	Mode      string
}

// Validate reports whether mlx.core.quantize accepts p (mlx/ops.cpp
// affine_quantize / fp_quantize).
func (p Params) Validate() error {
	switch p.Mode {
	case ModeAffine:
		switch p.Bits {
		case 2, 3, 4, 5, 6, 8:
		default:
			return fmt.Errorf("bits %d is not supported by affine quantization (2, 3, 4, 5, 6, 8)", p.Bits)
		}
		switch p.GroupSize {
		case 32, 64, 128:
		default:
			return fmt.Errorf("group_size %d is not supported by affine quantization (32, 64, 128)", p.GroupSize)
		}
	case ModeMXFP4, ModeNVFP4, ModeMXFP8:
		d := modeDefaults[p.Mode]
		if p.GroupSize != d[0] || p.Bits != d[1] {
			return fmt.Errorf("%s quantization needs group_size %d and bits %d, not %d and %d", p.Mode, d[0], d[1], p.GroupSize, p.Bits)
		}
	default:
		return fmt.Errorf("unknown quantization mode %q (affine, mxfp4, nvfp4, mxfp8)", p.Mode)
	}
	return nil
}

// LayerParams is a per-module dict entry. Zero GroupSize or Bits (JSON null
// or absent) mean the mode's default, not the global value: mlx-lm passes
// the dict to to_quantized as keyword arguments.
type LayerParams struct {
	GroupSize int
	Bits      int
	Mode      string // "" means "affine"
	// QuantizeInput is the optional "quantize_input" flag (nvfp4/mxfp8
	// activation quantization); it is kept for round trips.
	QuantizeInput *bool
}

// LayerQuantization is one per-module entry of the "quantization" object:
// a module path (an HF/MLX name without ".weight", e.g.
// "model.layers.0.mlp.down_proj") mapped to true, false or a dict.
type LayerQuantization struct {
	Path string
	// Quantize is the entry's truth: false for `false`, true for `true` or
	// a dict.
	Quantize bool
	// Params is set for a dict entry.
	Params *LayerParams
}

// Quantization is mlx-lm's "quantization" config object.
type Quantization struct {
	// GroupSize and Bits are the global values; 0 means JSON null (the
	// mode's default).
	GroupSize int
	Bits      int
	// Mode is "affine" when the config omits it (configs before mlx 0.29).
	Mode string
	// Layers are the per-module entries in file order.
	Layers []LayerQuantization
}

// Global returns the resolved global parameters.
func (q *Quantization) Global() Params {
	return resolve(q.Mode, q.GroupSize, q.Bits)
}

func resolve(mode string, gs, bits int) Params {
	if mode == "" {
		mode = ModeAffine
	}
	d := modeDefaults[mode]
	if gs == 0 {
		gs = d[0]
	}
	if bits == 0 {
		bits = d[1]
	}
	return Params{GroupSize: gs, Bits: bits, Mode: mode}
}

// Layer returns the per-module entry for path, or nil.
func (q *Quantization) Layer(path string) *LayerQuantization {
	for i := range q.Layers {
		if q.Layers[i].Path == path {
			return &q.Layers[i]
		}
	}
	return nil
}

// Lookup returns the parameters a module at path is quantized with, as
// mlx-lm's load_model decides: a per-module entry wins (false: not
// quantized; true: the global parameters; a dict: its parameters with mode
// defaults); otherwise the module is quantized with the global parameters
// iff hasScales (the checkpoint holds path+".scales").
func (q *Quantization) Lookup(path string, hasScales bool) (Params, bool) {
	if l := q.Layer(path); l != nil {
		if !l.Quantize {
			return Params{}, false
		}
		if l.Params != nil {
			return resolve(l.Params.Mode, l.Params.GroupSize, l.Params.Bits), true
		}
		return q.Global(), true
	}
	if hasScales {
		return q.Global(), true
	}
	return Params{}, false
}

// Validate checks the global and every per-module entry's parameters.
func (q *Quantization) Validate() error {
	if err := q.Global().Validate(); err != nil {
		return err
	}
	for _, l := range q.Layers {
		if l.Path == "" {
			return fmt.Errorf("per-module entry with an empty path")
		}
		if l.Params != nil {
			if err := resolve(l.Params.Mode, l.Params.GroupSize, l.Params.Bits).Validate(); err != nil {
				return fmt.Errorf("%q: %v", l.Path, err)
			}
		}
	}
	return nil
}

// QuantizationError reports an invalid "quantization" config entry.
type QuantizationError struct {
	Key string // "quantization" or "quantization_config", plus a sub-key
	Msg string
}

func (e *QuantizationError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

// ParseQuantization reads mlx-lm's quantization settings from a decoded
// config.json object: "quantization", else "quantization_config" (which
// mlx-lm writes as a copy). It returns nil, nil when neither is present or
// the value is null. Numbers may be float64 (encoding/json's default) or
// json.Number and must be integers; "group_size" and "bits" must be present
// (mlx-lm's loader indexes them) but may be null; "mode" defaults to
// "affine". Every other key is a module path whose value must be true,
// false or an object of group_size/bits/mode (each possibly null) and
// optionally quantize_input. A quantization_config with "quant_method"
// (AWQ, GPTQ, bitnet, compressed-tensors, mxfp4 from transformers) is not an
// mlx-lm config and is reported as unsupported. Parameters are validated
// with Params.Validate.
func ParseQuantization(config map[string]any) (*Quantization, error) {
	key := "quantization"
	v, ok := config[key]
	if !ok || v == nil {
		key = "quantization_config"
		if v, ok = config[key]; !ok || v == nil {
			return nil, nil
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &QuantizationError{key, fmt.Sprintf("is %s, want an object", jsonKind(v))}
	}
	if key == "quantization_config" {
		if m, ok := obj["quant_method"]; ok {
			return nil, &QuantizationError{key + ".quant_method", fmt.Sprintf("%v checkpoints are not mlx-lm affine checkpoints and are not supported", m)}
		}
	}
	q := &Quantization{Mode: ModeAffine}
	var err error
	for _, k := range []string{"group_size", "bits"} {
		if _, ok := obj[k]; !ok {
			return nil, &QuantizationError{key, fmt.Sprintf("missing %q", k)}
		}
	}
	if q.GroupSize, err = intOrNull(obj["group_size"]); err != nil {
		return nil, &QuantizationError{key + ".group_size", err.Error()}
	}
	if q.Bits, err = intOrNull(obj["bits"]); err != nil {
		return nil, &QuantizationError{key + ".bits", err.Error()}
	}
	if m, ok := obj["mode"]; ok && m != nil {
		s, ok := m.(string)
		if !ok {
			return nil, &QuantizationError{key + ".mode", fmt.Sprintf("is %s, want a string", jsonKind(m))}
		}
		if s == "" {
			// mlx-lm passes it on to mx.quantize, which refuses it.
			return nil, &QuantizationError{key + ".mode", `is empty, want a mode such as "affine"`}
		}
		q.Mode = s
	}
	if err := q.Global().Validate(); err != nil {
		return nil, &QuantizationError{key, err.Error()}
	}
	// Per-module entries. A Go map has no order; sort the paths so that the
	// result is deterministic (mlx-lm writes them in module order, which
	// sorting by path does not reproduce for layers >= 10; see orderKey).
	var paths []string
	for k := range obj {
		switch k {
		case "group_size", "bits", "mode":
			continue
		}
		paths = append(paths, k)
	}
	sort.Slice(paths, func(i, j int) bool { return orderKey(paths[i]).less(orderKey(paths[j])) })
	for _, p := range paths {
		sub := key + "." + p
		if p == "" {
			return nil, &QuantizationError{sub, "empty module path"}
		}
		l := LayerQuantization{Path: p}
		switch x := obj[p].(type) {
		case bool:
			l.Quantize = x
		case map[string]any:
			l.Quantize = true
			lp := &LayerParams{}
			for k, v := range x {
				switch k {
				case "group_size":
					lp.GroupSize, err = intOrNull(v)
				case "bits":
					lp.Bits, err = intOrNull(v)
				case "mode":
					if v != nil {
						s, ok := v.(string)
						if !ok {
							err = fmt.Errorf("is %s, want a string", jsonKind(v))
						}
						lp.Mode = s
					}
				case "quantize_input":
					b, ok := v.(bool)
					if !ok {
						err = fmt.Errorf("is %s, want a boolean", jsonKind(v))
					}
					lp.QuantizeInput = &b
				default:
					err = fmt.Errorf("unknown key (want group_size, bits, mode, quantize_input)")
				}
				if err != nil {
					return nil, &QuantizationError{sub + "." + k, err.Error()}
				}
			}
			if err := resolve(lp.Mode, lp.GroupSize, lp.Bits).Validate(); err != nil {
				return nil, &QuantizationError{sub, err.Error()}
			}
			l.Params = lp
		default:
			return nil, &QuantizationError{sub, fmt.Sprintf("is %s, want true, false or an object", jsonKind(obj[p]))}
		}
		q.Layers = append(q.Layers, l)
	}
	return q, nil
}

// maxConfigInt bounds integers read from the quantization config.
const maxConfigInt = 1 << 20

func intOrNull(v any) (int, error) {
	if v == nil {
		return 0, nil
	}
	f, ok := jsonnum.Float(v)
	if !ok {
		if n, isNumber := v.(json.Number); isNumber {
			return 0, fmt.Errorf("%q is not a number", string(n))
		}
		return 0, fmt.Errorf("is %s, want an integer or null", jsonKind(v))
	}
	if f != math.Trunc(f) || f <= 0 || f > maxConfigInt {
		return 0, fmt.Errorf("%v is not a positive integer up to %d", f, maxConfigInt)
	}
	return int(f), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number, int, int64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// object returns q as an ordered JSON object for config.json: group_size,
// bits, mode, then the per-module entries, as mlx-lm's quantize_model
// builds it.
func (q *Quantization) object() pyjson.Object {
	o := pyjson.Object{
		{K: "group_size", V: nullableInt(q.GroupSize)},
		{K: "bits", V: nullableInt(q.Bits)},
		{K: "mode", V: modeOr(q.Mode)},
	}
	for _, l := range q.Layers {
		if l.Params == nil {
			o = append(o, pyjson.Pair{K: l.Path, V: l.Quantize})
			continue
		}
		lo := pyjson.Object{
			{K: "group_size", V: nullableInt(l.Params.GroupSize)},
			{K: "bits", V: nullableInt(l.Params.Bits)},
		}
		if l.Params.Mode != "" {
			// absent stays absent: a model's quant_predicate dict
			// (e.g. qwen3_moe's router {"group_size": 64, "bits": 8})
			// is written as returned
			lo = append(lo, pyjson.Pair{K: "mode", V: l.Params.Mode})
		}
		if l.Params.QuantizeInput != nil {
			lo = append(lo, pyjson.Pair{K: "quantize_input", V: *l.Params.QuantizeInput})
		}
		o = append(o, pyjson.Pair{K: l.Path, V: lo})
	}
	return o
}

func nullableInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

func modeOr(m string) string {
	if m == "" {
		return ModeAffine
	}
	return m
}

// key orders module paths the way mlx-lm's module tree lists them.
type pathKey struct {
	top   int    // 0 embed, 1 layers, 2 norm, 3 lm_head, 4 other
	layer int    // layer index
	sub   int    // position of the module inside a layer
	name  string // tie-break
}

func (a pathKey) less(b pathKey) bool {
	if a.top != b.top {
		return a.top < b.top
	}
	if a.layer != b.layer {
		return a.layer < b.layer
	}
	if a.sub != b.sub {
		return a.sub < b.sub
	}
	return a.name < b.name
}

// layerModules are the modules of a llama/qwen2 decoder layer in the order
// mlx-lm's TransformerBlock/Attention/MLP create them.
var layerModules = []string{
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"self_attn.q_norm", "self_attn.k_norm",
	"mlp.gate_proj", "mlp.down_proj", "mlp.up_proj",
	"input_layernorm", "post_attention_layernorm",
}

// orderKey returns the module-order key of a module path or tensor name.
func orderKey(path string) pathKey {
	switch {
	case path == "model.embed_tokens" || strings.HasPrefix(path, "model.embed_tokens."):
		return pathKey{top: 0, name: path}
	case path == "model.norm" || strings.HasPrefix(path, "model.norm."):
		return pathKey{top: 2, name: path}
	case path == "lm_head" || strings.HasPrefix(path, "lm_head."):
		return pathKey{top: 3, name: path}
	}
	if rest, ok := strings.CutPrefix(path, "model.layers."); ok {
		i := strings.IndexByte(rest, '.')
		n := 0
		if i > 0 {
			for _, c := range rest[:i] {
				if c < '0' || c > '9' || n > 1<<24 {
					return pathKey{top: 4, name: path}
				}
				n = n*10 + int(c-'0')
			}
			mod := rest[i+1:]
			for j, m := range layerModules {
				if mod == m || strings.HasPrefix(mod, m+".") {
					return pathKey{top: 1, layer: n, sub: j, name: path}
				}
			}
			return pathKey{top: 1, layer: n, sub: len(layerModules), name: path}
		}
	}
	return pathKey{top: 4, name: path}
}
