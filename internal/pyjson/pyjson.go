// Package pyjson writes JSON byte-for-byte as Python's json.dumps(obj,
// indent=N) does with the default ensure_ascii=True: items separated by ","
// at line ends and ": " after keys, every non-ASCII character escaped as
// \uXXXX (UTF-16 surrogate pairs above U+FFFF), floats in Python's repr
// (1.0, 1e-05, 1e+16). It is what the safetensors index and the mlx-lm
// config.json writers share.
//
// It does not read JSON, does not write compact (indent=None) output and
// adds no trailing newline; Python's sort_keys is implied for Go maps (they
// have no order of their own), and Object keeps an explicit key order.
package pyjson

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Pair is one key and value of an Object.
type Pair struct {
	K string
	V any
}

// Object is a JSON object written in the order of its pairs.
type Object []Pair

// Encoder writes values of these types: nil, bool, string, int, int32,
// int64, uint32, uint64, float32, float64, json.Number, []any,
// map[string]any (keys sorted) and Object.
type Encoder struct {
	// Indent is the text of one indentation level ("    " for indent=4).
	Indent string
	// AsFloat, when not nil, says a float64 came from encoding/json and so
	// no longer tells whether the source spelled 10000 or 10000.0: an
	// integral float64 (below 2^53 in magnitude) is then written as an
	// integer, and so is a json.Number spelled as an integer, unless
	// AsFloat(key) is true (key: the innermost object key the value stands
	// under, "" for none), which writes both as floats. With AsFloat nil a
	// float64 is always a float and an integer-spelled json.Number an
	// integer.
	AsFloat func(key string) bool
}

// Marshal returns v as json.dumps writes it, without a final newline.
func (e Encoder) Marshal(v any) ([]byte, error) {
	w := writer{Encoder: e}
	if err := w.encode(v, "", 0); err != nil {
		return nil, err
	}
	return w.b, nil
}

type writer struct {
	Encoder
	b []byte
}

func (w *writer) nl(depth int) {
	w.b = append(w.b, '\n')
	w.b = append(w.b, strings.Repeat(w.Indent, depth)...)
}

// floatKey reports whether AsFloat marks key as holding floats.
func (w *writer) floatKey(key string) bool { return w.AsFloat != nil && w.AsFloat(key) }

func (w *writer) encode(v any, key string, depth int) error {
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case string:
		w.b = AppendString(w.b, x)
	case int:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int32:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case uint32:
		w.b = strconv.AppendUint(w.b, uint64(x), 10)
	case uint64:
		w.b = strconv.AppendUint(w.b, x, 10)
	case float32:
		return w.float(float64(x))
	case float64:
		if w.AsFloat != nil && !w.floatKey(key) && x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			w.b = strconv.AppendInt(w.b, int64(x), 10)
			return nil
		}
		return w.float(x)
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") && !w.floatKey(key) {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				w.b = append(w.b, s...)
				return nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		return w.float(f)
	case []any:
		if len(x) == 0 {
			w.b = append(w.b, "[]"...)
			return nil
		}
		w.b = append(w.b, '[')
		for i, el := range x {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.nl(depth + 1)
			if err := w.encode(el, key, depth+1); err != nil {
				return err
			}
		}
		w.nl(depth)
		w.b = append(w.b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := make(Object, len(keys))
		for i, k := range keys {
			o[i] = Pair{k, x[k]}
		}
		return w.encode(o, key, depth)
	case Object:
		if len(x) == 0 {
			w.b = append(w.b, "{}"...)
			return nil
		}
		w.b = append(w.b, '{')
		for i, p := range x {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.nl(depth + 1)
			w.b = AppendString(w.b, p.K)
			w.b = append(w.b, ": "...)
			if err := w.encode(p.V, p.K, depth+1); err != nil {
				return err
			}
		}
		w.nl(depth)
		w.b = append(w.b, '}')
	default:
		return fmt.Errorf("value of type %T cannot be written as JSON", v)
	}
	return nil
}

func (w *writer) float(f float64) error {
	b, err := AppendFloat(w.b, f)
	if err != nil {
		return err
	}
	w.b = b
	return nil
}

// AppendFloat appends Python's repr of f: the shortest digits that read
// back as f, in exponent form (1e-05, 1e+16) below 1e-4 or from 1e16 on,
// else with at least one decimal (10000.0). NaN and infinities are an error
// (not valid JSON).
func AppendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("value %v is not valid JSON", f)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX
	mant, exps, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(exps)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		b = append(b, mant...)
		b = append(b, 'e')
		b = append(b, sign...)
		return append(b, fmt.Sprintf("%02d", exp)...), nil
	}
	s = strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return append(b, s...), nil
}

// AppendString appends s quoted as Python's json does with
// ensure_ascii=True (invalid UTF-8 bytes become \ufffd).
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u4 := func(r rune) {
		b = append(b, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			u4(r)
		case r >= 0x10000:
			r -= 0x10000
			u4(0xd800 + (r >> 10))
			u4(0xdc00 + (r & 0x3ff))
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}
