package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/osfile"
)

// ConfigName is the HF model configuration file.
const ConfigName = "config.json"

// ConfigError reports an invalid config.json (see arch.ConfigError).
type ConfigError = arch.ConfigError

// ReadConfigFile reads and parses a config.json file; errors name path.
func ReadConfigFile(path string) (arch string, p graph.Params, raw map[string]any, err error) {
	data, err := osfile.ReadLimited(path, maxSmallJSON)
	if err != nil {
		return "", p, nil, err
	}
	return parseConfig(path, data)
}

// ParseConfig parses the bytes of a config.json: the canonical
// architecture, the normalized hyperparameters and the raw JSON object
// (numbers as float64, as encoding/json decodes them). Unsupported
// architectures give an *arch.UnsupportedError; other problems a
// *ConfigError naming "config.json" and the key or byte offset.
//
// Rules (transformers configuration_llama.py / configuration_qwen2.py and
// llama.cpp's TextModel.set_gguf_parameters / LlamaModel):
//   - architectures[0] (else model_type) picks the architecture;
//     "text_config" entries are merged over the top level as the converter
//     does.
//   - num_hidden_layers, hidden_size, intermediate_size,
//     num_attention_heads and vocab_size are required, positive integers.
//   - num_key_value_heads defaults to num_attention_heads and must divide
//     it; head_dim, when present and not null, wins over
//     hidden_size/num_attention_heads (Mistral-Nemo); otherwise hidden_size
//     must be a multiple of num_attention_heads.
//   - rms_norm_eps defaults to 1e-6, max_position_embeddings to 2048
//     (llama) or 32768 (qwen2), tie_word_embeddings to false (both config
//     classes declare False), attention_bias to false for llama; qwen2
//     always has q/k/v biases.
//   - RoPE: rope_parameters (transformers 5; a "full_attention" entry is
//     used when present) else rope_scaling, with rope_theta read from it
//     or the top level (default 10000); rope_type or type; "default" means
//     no scaling. llama3 scaling gets the converter's defaults (factor 8,
//     low 1, high 4, original context 8192). RopeType is "norm" for llama,
//     "neox" for qwen2; RopeDims = head_dim × partial_rotary_factor.
func ParseConfig(data []byte) (arch string, p graph.Params, raw map[string]any, err error) {
	return parseConfig(ConfigName, data)
}

func parseConfig(path string, data []byte) (string, graph.Params, map[string]any, error) {
	var p graph.Params
	raw, err := decodeObject(path, data)
	if err != nil {
		return "", p, nil, err
	}
	c := &arch.Config{Path: path, M: raw}
	if tc, ok := raw["text_config"].(map[string]any); ok {
		merged := make(map[string]any, len(raw)+len(tc))
		for k, v := range raw {
			merged[k] = v
		}
		for k, v := range tc {
			merged[k] = v
		}
		c.M = merged
	}

	a, err := selectArch(c)
	if err != nil {
		return "", p, nil, err
	}
	if p.Layers, err = c.Size("num_hidden_layers", 0, true); err != nil {
		return "", p, nil, err
	}
	if p.Embedding, err = c.Size("hidden_size", 0, true); err != nil {
		return "", p, nil, err
	}
	if p.FFN, err = c.Size("intermediate_size", 0, true); err != nil {
		return "", p, nil, err
	}
	if p.Heads, err = c.Size("num_attention_heads", 0, true); err != nil {
		return "", p, nil, err
	}
	if p.VocabSize, err = c.Size("vocab_size", 0, true); err != nil {
		return "", p, nil, err
	}
	if p.KVHeads, err = c.Size("num_key_value_heads", p.Heads, false); err != nil {
		return "", p, nil, err
	}
	if p.Heads%p.KVHeads != 0 {
		return "", p, nil, c.Errf("num_key_value_heads", "%d does not divide num_attention_heads %d", p.KVHeads, p.Heads)
	}
	if p.HeadDim, err = c.Size("head_dim", 0, false); err != nil {
		return "", p, nil, err
	}
	if p.HeadDim == 0 {
		if p.Embedding%p.Heads != 0 {
			return "", p, nil, c.Errf("hidden_size", "%d is not a multiple of num_attention_heads %d and there is no head_dim", p.Embedding, p.Heads)
		}
		p.HeadDim = p.Embedding / p.Heads
	}
	if p.ContextLength, err = c.Size("max_position_embeddings", a.DefaultContext, false); err != nil {
		return "", p, nil, err
	}
	if p.RMSEps, err = c.Float("rms_norm_eps", a.DefaultRMSEps); err != nil {
		return "", p, nil, err
	}
	if !(p.RMSEps > 0) || math.IsInf(p.RMSEps, 0) {
		return "", p, nil, c.Errf("rms_norm_eps", "must be a positive number, got %v", p.RMSEps)
	}
	if p.Tied, err = c.Bool("tie_word_embeddings", a.DefaultTied); err != nil {
		return "", p, nil, err
	}
	p.RopeType = a.RopeType
	if err := rope(c, &p, a.DefaultRopeBase); err != nil {
		return "", p, nil, err
	}
	if a.Config != nil {
		if err := a.Config(c, &p); err != nil {
			return "", p, nil, err
		}
	}
	for _, k := range []string{"torch_dtype", "dtype"} {
		if s, ok := c.M[k].(string); ok && s != "" {
			p.TorchDType = s
			break
		}
	}
	return a.Name, p, raw, nil
}

// decodeObject decodes a JSON object; errors carry the byte offset.
func decodeObject(path string, data []byte) (map[string]any, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonError(path, err)
	}
	if raw == nil {
		return nil, &ConfigError{Path: path, Offset: -1, Msg: "not a JSON object"}
	}
	return raw, nil
}

func jsonError(path string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &ConfigError{Path: path, Offset: se.Offset, Msg: "invalid JSON: " + se.Error()}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &ConfigError{Path: path, Offset: te.Offset, Msg: "not a JSON object: " + te.Error()}
	}
	return &ConfigError{Path: path, Offset: -1, Msg: "invalid JSON: " + err.Error()}
}

// selectArch picks the architecture: architectures[0], else model_type.
func selectArch(c *arch.Config) (*arch.Arch, error) {
	var name string
	switch a := c.M["architectures"].(type) {
	case []any:
		if len(a) > 0 {
			s, ok := a[0].(string)
			if !ok {
				return nil, c.Errf("architectures", "first entry is %s, not a string", arch.JSONKind(a[0]))
			}
			name = s
		}
	case nil:
	default:
		return nil, c.Errf("architectures", "is %s, not a list", arch.JSONKind(a))
	}
	if name == "" {
		s, _ := c.M["model_type"].(string)
		name = s
	}
	if name == "" {
		return nil, c.Errf("architectures", "neither architectures nor model_type is set")
	}
	a, ok := arch.FromHF(name)
	if !ok {
		return nil, &arch.UnsupportedError{Arch: name}
	}
	return a, nil
}

func rope(c *arch.Config, p *graph.Params, defBase float64) error {
	var rp map[string]any
	for _, k := range []string{"rope_parameters", "rope_scaling"} {
		switch v := c.M[k].(type) {
		case map[string]any:
			rp = v
		case nil:
			continue
		default:
			return c.Errf(k, "is %s, not an object", arch.JSONKind(v))
		}
		if fa, ok := rp["full_attention"].(map[string]any); ok {
			rp = fa
		}
		break
	}
	if rp == nil {
		rp = map[string]any{}
	}
	theta, err := c.FloatIn(rp, "rope_theta", math.NaN())
	if err != nil {
		return err
	}
	if math.IsNaN(theta) {
		if theta, err = c.Float("rope_theta", defBase); err != nil {
			return err
		}
	}
	if !(theta > 0) || math.IsInf(theta, 0) {
		return c.Errf("rope_theta", "must be a positive number, got %v", theta)
	}
	p.RopeBase = theta

	prf, err := c.FloatIn(rp, "partial_rotary_factor", math.NaN())
	if err != nil {
		return err
	}
	if math.IsNaN(prf) {
		if prf, err = c.Float("partial_rotary_factor", 1); err != nil {
			return err
		}
	}
	if !(prf > 0 && prf <= 1) {
		return c.Errf("partial_rotary_factor", "must be in (0, 1], got %v", prf)
	}
	p.RopeDims = int(float64(p.HeadDim) * prf)

	typ, _ := rp["rope_type"].(string)
	if typ == "" {
		typ, _ = rp["type"].(string)
	}
	typ = strings.ToLower(typ) // as the types below are compared
	if typ == "" || typ == "default" {
		return nil
	}
	rs := &graph.RopeScaling{Type: typ}
	if rs.Type == "su" {
		rs.Type = "longrope"
	}
	def := math.NaN()
	lowDef, highDef, origDef := 0.0, 0.0, 0
	if rs.Type == "llama3" {
		def, lowDef, highDef, origDef = 8, 1, 4, 8192
	}
	if rs.Factor, err = c.FloatIn(rp, "factor", math.NaN()); err != nil {
		return err
	}
	switch {
	case math.IsNaN(rs.Factor) && !math.IsNaN(def):
		rs.Factor = def
	case math.IsNaN(rs.Factor):
		rs.Factor = 0 // not given
	case !(rs.Factor > 0) || math.IsInf(rs.Factor, 0):
		// transformers and the converter divide by it
		return c.Errf("rope_scaling", "factor %v is not valid", rs.Factor)
	}
	if rs.LowFreqFactor, err = c.FloatIn(rp, "low_freq_factor", lowDef); err != nil {
		return err
	}
	if rs.HighFreqFactor, err = c.FloatIn(rp, "high_freq_factor", highDef); err != nil {
		return err
	}
	if rs.Type == "llama3" && (!(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > 0)) {
		// the converter divides the original context by both
		return c.Errf("rope_scaling", "low_freq_factor %v and high_freq_factor %v must be positive", rs.LowFreqFactor, rs.HighFreqFactor)
	}
	orig, err := c.FloatIn(rp, "original_max_position_embeddings", math.NaN())
	if err != nil {
		return err
	}
	if math.IsNaN(orig) {
		if orig, err = c.Float("original_max_position_embeddings", float64(origDef)); err != nil {
			return err
		}
	}
	if orig < 0 || orig > arch.MaxDim || orig != math.Trunc(orig) {
		return c.Errf("original_max_position_embeddings", "%v is not a valid context length", orig)
	}
	rs.OriginalContext = int(orig)
	if rs.Factor < 0 || math.IsInf(rs.Factor, 0) {
		return c.Errf("rope_scaling", "factor %v is not valid", rs.Factor)
	}
	p.RopeScaling = rs
	return nil
}

// WriteConfig returns a config.json for m: the keys of m.Config when
// present (so a same-format round trip keeps everything), with the
// architecture, hyperparameters and special token ids set from m.Arch,
// m.Params and m.Tokenizer. RoPE goes to rope_parameters when m.Config
// used that spelling, else to rope_theta + rope_scaling, which both
// transformers 4 and 5 and mlx-lm read. Keys are sorted and indented like
// transformers' to_json_string.
func WriteConfig(m *graph.Model) ([]byte, error) {
	a, ok := arch.Lookup(m.Arch)
	if !ok {
		return nil, &arch.UnsupportedError{Arch: m.Arch}
	}
	p := m.Params
	archName, modelType := a.HFClassFor(&p)
	for _, c := range []struct {
		name string
		v    int
	}{{"layers", p.Layers}, {"embedding", p.Embedding}, {"ffn", p.FFN}, {"heads", p.Heads}, {"vocab size", p.VocabSize}} {
		if c.v <= 0 {
			return nil, fmt.Errorf("hf: cannot write config.json: %s is %d", c.name, c.v)
		}
	}
	out := make(map[string]any, len(m.Config)+24)
	for k, v := range m.Config {
		out[k] = v
	}
	kv := p.KVHeads
	if kv == 0 {
		kv = p.Heads
	}
	headDim := p.HeadDim
	if headDim == 0 {
		headDim = p.Embedding / p.Heads
	}
	out["architectures"] = []any{archName}
	out["model_type"] = modelType
	out["num_hidden_layers"] = p.Layers
	out["hidden_size"] = p.Embedding
	out["intermediate_size"] = p.FFN
	out["num_attention_heads"] = p.Heads
	out["num_key_value_heads"] = kv
	out["vocab_size"] = p.VocabSize
	if headDim*p.Heads != p.Embedding || m.Config["head_dim"] != nil {
		out["head_dim"] = headDim
	}
	if p.RMSEps > 0 {
		out["rms_norm_eps"] = shortFloat(p.RMSEps)
	} else if _, ok := out["rms_norm_eps"]; !ok {
		out["rms_norm_eps"] = 1e-6
	}
	if p.ContextLength > 0 {
		out["max_position_embeddings"] = p.ContextLength
	}
	out["tie_word_embeddings"] = p.Tied
	if _, ok := out["hidden_act"]; !ok {
		out["hidden_act"] = "silu"
	}
	if p.TorchDType != "" {
		if _, ok := out["dtype"]; ok {
			out["dtype"] = p.TorchDType
		} else {
			out["torch_dtype"] = p.TorchDType
		}
	}
	theta := p.RopeBase
	if theta == 0 {
		theta = 10000
	}
	var scaling map[string]any
	if rs := p.RopeScaling; rs != nil && rs.Type != "" && rs.Type != "none" {
		scaling = map[string]any{"rope_type": rs.Type}
		if rs.Factor != 0 {
			scaling["factor"] = shortFloat(rs.Factor)
		}
		if rs.OriginalContext != 0 {
			scaling["original_max_position_embeddings"] = rs.OriginalContext
		}
		if rs.LowFreqFactor != 0 {
			scaling["low_freq_factor"] = shortFloat(rs.LowFreqFactor)
		}
		if rs.HighFreqFactor != 0 {
			scaling["high_freq_factor"] = shortFloat(rs.HighFreqFactor)
		}
	}
	if old, ok := out["rope_parameters"].(map[string]any); ok {
		rp := map[string]any{}
		if scaling != nil {
			for k, v := range scaling {
				rp[k] = v
			}
		} else {
			rp["rope_type"] = "default"
		}
		for k, v := range old { // keep unknown extras
			if _, set := rp[k]; !set && k != "factor" && k != "original_max_position_embeddings" && k != "low_freq_factor" && k != "high_freq_factor" {
				rp[k] = v
			}
		}
		rp["rope_theta"] = shortFloat(theta)
		out["rope_parameters"] = rp
	} else {
		out["rope_theta"] = shortFloat(theta)
		if scaling != nil {
			scaling["type"] = scaling["rope_type"]
			out["rope_scaling"] = scaling
		} else {
			out["rope_scaling"] = nil
		}
	}
	if a.WriteConfig != nil {
		a.WriteConfig(&p, out)
	}
	if p.RopeDims > 0 && headDim > 0 && p.RopeDims != headDim {
		out["partial_rotary_factor"] = shortFloat(float64(p.RopeDims) / float64(headDim))
	}
	if t := m.Tokenizer; t != nil {
		for _, s := range []struct {
			key string
			id  int
		}{{"bos_token_id", t.BOS}, {"eos_token_id", t.EOS}, {"pad_token_id", t.PAD}} {
			if s.id >= 0 {
				if _, isList := out[s.key].([]any); !isList {
					out[s.key] = s.id
				}
			}
		}
	}
	return marshalIndented(out)
}

// shortFloat returns v as a JSON number in its shortest form; a value that
// is exactly a float32 (as GGUF stores rms_norm_eps) is written with the
// float32's shortest digits, so 9.999999747378752e-06 becomes 1e-05.
func shortFloat(v float64) json.Number {
	if f := float32(v); float64(f) == v && !math.IsInf(v, 0) {
		return json.Number(strconv.FormatFloat(float64(f), 'g', -1, 32))
	}
	return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
}

// marshalIndented writes v with encoding/json: two-space indentation, HTML
// characters unescaped, a final newline (transformers' to_json_string
// layout; map keys come out sorted).
func marshalIndented(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
