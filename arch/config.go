package arch

import (
	"encoding/json"
	"fmt"
	"math"
)

// MaxDim bounds every size read from a config (layers, widths, heads,
// vocabulary, context, experts). It keeps derived products within int64
// and rejects nonsense before anything is allocated from it.
const MaxDim = 1 << 31

// ConfigError reports an invalid config.json.
type ConfigError struct {
	Path string // the file, "config.json" when parsed from bytes
	Key  string // the offending key, "" for a syntax error
	// Offset is the byte offset of a JSON syntax error, -1 otherwise.
	Offset int64
	Msg    string
}

func (e *ConfigError) Error() string {
	switch {
	case e.Offset >= 0:
		return fmt.Sprintf("%s: byte offset %d: %s", e.Path, e.Offset, e.Msg)
	case e.Key != "":
		return fmt.Sprintf("%s: key %q: %s", e.Path, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Config is a decoded config.json (the top level merged with text_config,
// as the converter merges them) with typed, checked accessors whose errors
// name the file and key.
type Config struct {
	Path string         // the file, for errors
	M    map[string]any // merged keys; numbers as float64
}

// Errf returns a *ConfigError about key.
func (c *Config) Errf(key, format string, args ...any) error {
	return &ConfigError{Path: c.Path, Key: key, Offset: -1, Msg: fmt.Sprintf(format, args...)}
}

// Has reports whether key is present and not null.
func (c *Config) Has(key string) bool { return c.M[key] != nil }

// Size reads a positive integer key. Absent or null gives def, or an
// error when required.
func (c *Config) Size(key string, def int, required bool) (int, error) {
	v, ok := c.M[key]
	if !ok || v == nil {
		if required {
			return 0, c.Errf(key, "missing")
		}
		return def, nil
	}
	f, ok := v.(float64)
	if !ok {
		return 0, c.Errf(key, "is %s, not a number", JSONKind(v))
	}
	if f != math.Trunc(f) {
		return 0, c.Errf(key, "%v is not an integer", f)
	}
	if f <= 0 || f > MaxDim {
		return 0, c.Errf(key, "%v is out of range (1..%d)", f, int64(MaxDim))
	}
	return int(f), nil
}

// Float reads a number key; absent or null gives def.
func (c *Config) Float(key string, def float64) (float64, error) {
	return c.FloatIn(c.M, key, def)
}

// FloatIn reads a number key of the object m (a nested object of the
// config); errors name key.
func (c *Config) FloatIn(m map[string]any, key string, def float64) (float64, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	f, ok := v.(float64)
	if !ok {
		return 0, c.Errf(key, "is %s, not a number", JSONKind(v))
	}
	return f, nil
}

// Bool reads a boolean key; absent or null gives def.
func (c *Config) Bool(key string, def bool) (bool, error) {
	v, ok := c.M[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, c.Errf(key, "is %s, not a boolean", JSONKind(v))
	}
	return b, nil
}

// String reads a string key; absent or null gives def.
func (c *Config) String(key, def string) (string, error) {
	v, ok := c.M[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", c.Errf(key, "is %s, not a string", JSONKind(v))
	}
	return s, nil
}

// Ints reads a list of non-negative integers; absent or null gives nil.
func (c *Config) Ints(key string) ([]int, error) {
	v, ok := c.M[key]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, c.Errf(key, "is %s, not a list", JSONKind(v))
	}
	out := make([]int, len(l))
	for i, x := range l {
		f, ok := x.(float64)
		if !ok || f != math.Trunc(f) || f < 0 || f > MaxDim {
			return nil, c.Errf(key, "entry %d is %v, not a non-negative integer", i, x)
		}
		out[i] = int(f)
	}
	return out, nil
}

// Floats reads a list of numbers from the object m; absent or null gives
// nil.
func (c *Config) Floats(m map[string]any, key string) ([]float64, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, c.Errf(key, "is %s, not a list", JSONKind(v))
	}
	out := make([]float64, len(l))
	for i, x := range l {
		f, ok := x.(float64)
		if !ok {
			return nil, c.Errf(key, "entry %d is %s, not a number", i, JSONKind(x))
		}
		out[i] = f
	}
	return out, nil
}

// Strings reads a list of strings; absent or null gives nil.
func (c *Config) Strings(key string) ([]string, error) {
	v, ok := c.M[key]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, c.Errf(key, "is %s, not a list", JSONKind(v))
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, c.Errf(key, "entry %d is %s, not a string", i, JSONKind(x))
		}
		out[i] = s
	}
	return out, nil
}

// JSONKind names the JSON kind of a decoded value for messages.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
