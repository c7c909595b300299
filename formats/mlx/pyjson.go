package mlx

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// A JSON writer that reproduces Python's json.dump(obj, f, indent=4) (the
// mlx-lm save_config layout): ", " / ": " separators with newlines,
// ensure_ascii escaping, Python's repr for floats, no trailing newline.

type pyPair struct {
	K string
	V any
}

// pyObject is a JSON object whose key order is kept.
type pyObject []pyPair

// floatKeys are config keys whose integral values Python wrote as floats
// ("attention_dropout": 0.0, "rope_theta": 10000.0). A float64 decoded by
// encoding/json no longer says whether the source spelled 10000 or
// 10000.0; for these keys the writer restores the float spelling, for every
// other key an integral number is written as an integer.
var floatKeys = map[string]bool{
	"attention_dropout": true, "hidden_dropout": true, "embd_pdrop": true, "resid_pdrop": true,
	"attn_pdrop": true, "dropout": true, "rope_theta": true, "rms_norm_eps": true,
	"layer_norm_eps": true, "layer_norm_epsilon": true, "initializer_range": true,
	"factor": true, "low_freq_factor": true, "high_freq_factor": true,
	"partial_rotary_factor": true, "attn_factor": true, "beta_fast": true, "beta_slow": true,
	"mscale": true, "mscale_all_dim": true, "extrapolation_factor": true,
	"router_aux_loss_coef": true, "temperature": true, "top_p": true,
	"repetition_penalty": true, "final_logit_softcapping": true,
	"attn_logit_softcapping": true, "rope_local_base_freq": true,
}

type pyEncoder struct {
	b []byte
}

func (e *pyEncoder) nl(depth int) {
	e.b = append(e.b, '\n')
	e.b = append(e.b, strings.Repeat("    ", depth)...)
}

// encode writes v; key is the object key v belongs to ("" for none), used
// for floatKeys. Plain maps are written with sorted keys.
func (e *pyEncoder) encode(v any, key string, depth int) error {
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case string:
		e.str(x)
	case int:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case float64:
		if x == math.Trunc(x) && !floatKeys[key] && math.Abs(x) < 1<<53 {
			e.b = strconv.AppendInt(e.b, int64(x), 10)
			return nil
		}
		return e.float(x)
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") && !floatKeys[key] {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				e.b = append(e.b, s...)
				return nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		return e.float(f)
	case []any:
		if len(x) == 0 {
			e.b = append(e.b, "[]"...)
			return nil
		}
		e.b = append(e.b, '[')
		for i, el := range x {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.nl(depth + 1)
			if err := e.encode(el, key, depth+1); err != nil {
				return err
			}
		}
		e.nl(depth)
		e.b = append(e.b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := make(pyObject, len(keys))
		for i, k := range keys {
			o[i] = pyPair{k, x[k]}
		}
		return e.encode(o, key, depth)
	case pyObject:
		if len(x) == 0 {
			e.b = append(e.b, "{}"...)
			return nil
		}
		e.b = append(e.b, '{')
		for i, p := range x {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.nl(depth + 1)
			e.str(p.K)
			e.b = append(e.b, ": "...)
			if err := e.encode(p.V, p.K, depth+1); err != nil {
				return err
			}
		}
		e.nl(depth)
		e.b = append(e.b, '}')
	default:
		return fmt.Errorf("config value of type %T cannot be written as JSON", v)
	}
	return nil
}

// float writes Python's repr of a float.
func (e *pyEncoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("config value %v is not valid JSON", f)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exps, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(exps)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		e.b = append(e.b, mant...)
		e.b = append(e.b, 'e')
		e.b = append(e.b, sign...)
		e.b = append(e.b, fmt.Sprintf("%02d", exp)...)
		return nil
	}
	s = strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	e.b = append(e.b, s...)
	return nil
}

// str writes s as Python's json does with ensure_ascii=True.
func (e *pyEncoder) str(s string) {
	const hex = "0123456789abcdef"
	u4 := func(r rune) {
		e.b = append(e.b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
	}
	e.b = append(e.b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			e.b = append(e.b, '\\', byte(r))
		case r == '\n':
			e.b = append(e.b, '\\', 'n')
		case r == '\r':
			e.b = append(e.b, '\\', 'r')
		case r == '\t':
			e.b = append(e.b, '\\', 't')
		case r == '\b':
			e.b = append(e.b, '\\', 'b')
		case r == '\f':
			e.b = append(e.b, '\\', 'f')
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			u4(r)
		case r >= 0x10000:
			r -= 0x10000
			u4(0xd800 + (r >> 10))
			u4(0xdc00 + (r & 0x3ff))
		default:
			e.b = append(e.b, byte(r))
		}
	}
	e.b = append(e.b, '"')
}

// pyDump returns v as json.dump(v, indent=4) writes it.
func pyDump(v any) ([]byte, error) {
	var e pyEncoder
	if err := e.encode(v, "", 0); err != nil {
		return nil, err
	}
	return e.b, nil
}
