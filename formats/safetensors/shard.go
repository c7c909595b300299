package safetensors

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ShardNames returns the file names of an n-file checkpoint, as
// transformers' save_pretrained and mlx-lm's save_model name them:
// "model.safetensors" for one file, else "model-00001-of-0000N.safetensors".
func ShardNames(n int) []string {
	if n <= 1 {
		return []string{"model.safetensors"}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
	}
	return names
}

// SplitShards groups tensors (given by their byte sizes, in write order)
// into shards of at most maxBytes each, greedily in order: a tensor that
// would push the current shard over maxBytes starts a new one. This is
// mlx-lm's make_shards and transformers' classic shard_checkpoint rule; a
// tensor larger than maxBytes gets a shard of its own, and unlike
// make_shards no shard is ever empty. It returns tensor indexes per shard,
// and one (possibly empty) shard when maxBytes <= 0 or sizes is empty.
func SplitShards(sizes []int64, maxBytes int64) [][]int {
	if maxBytes <= 0 || len(sizes) == 0 {
		all := make([]int, len(sizes))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	var shards [][]int
	var cur []int
	var curSize int64
	for i, s := range sizes {
		if len(cur) > 0 && curSize > maxBytes-s { // curSize+s > maxBytes, overflow-safe
			shards = append(shards, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, i)
		curSize += s
	}
	return append(shards, cur)
}

// IndexJSON returns a model.safetensors.index.json as transformers'
// save_pretrained writes it (json.dumps(index, indent=2, sort_keys=True)
// plus a newline): {"metadata": {"total_size": totalSize, ...extra},
// "weight_map": {tensor: file}}, every object's keys sorted. extra values
// may be strings, bools, nil, integers, floats, []any and map[string]any;
// an extra "total_size" is overridden by totalSize.
func IndexJSON(weightMap map[string]string, totalSize int64, extra map[string]any) ([]byte, error) {
	meta := map[string]any{}
	for k, v := range extra {
		meta[k] = v
	}
	meta["total_size"] = totalSize
	wm := make(map[string]any, len(weightMap))
	for k, v := range weightMap {
		wm[k] = v
	}
	e := pyEncoder{indent: "  ", sortKeys: true}
	if err := e.encode(map[string]any{"metadata": meta, "weight_map": wm}, 0); err != nil {
		return nil, err
	}
	return append(e.b, '\n'), nil
}

// IndexJSONMLX returns a model.safetensors.index.json exactly as mlx-lm's
// save_model writes it (json.dump(index, indent=4), no trailing newline):
// metadata {"total_size", "total_parameters"} in that order, weight_map
// sorted by tensor name.
func IndexJSONMLX(weightMap map[string]string, totalSize, totalParameters int64) []byte {
	e := pyEncoder{indent: "    "}
	names := make([]string, 0, len(weightMap))
	for k := range weightMap {
		names = append(names, k)
	}
	sort.Strings(names)
	e.b = append(e.b, "{\n    \"metadata\": {\n        \"total_size\": "...)
	e.b = strconv.AppendInt(e.b, totalSize, 10)
	e.b = append(e.b, ",\n        \"total_parameters\": "...)
	e.b = strconv.AppendInt(e.b, totalParameters, 10)
	e.b = append(e.b, "\n    },\n    \"weight_map\": {"...)
	for i, k := range names {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, "\n        "...)
		e.str(k)
		e.b = append(e.b, ": "...)
		e.str(weightMap[k])
	}
	if len(names) > 0 {
		e.b = append(e.b, "\n    "...)
	}
	e.b = append(e.b, "}\n}"...)
	return e.b
}

// pyEncoder writes JSON the way Python's json module does with an indent
// (separators ", " / ": " collapse to "," at line ends) and the default
// ensure_ascii=True.
type pyEncoder struct {
	b        []byte
	indent   string
	sortKeys bool
}

func (e *pyEncoder) nl(depth int) {
	e.b = append(e.b, '\n')
	e.b = append(e.b, strings.Repeat(e.indent, depth)...)
}

func (e *pyEncoder) encode(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case string:
		e.str(x)
	case int:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int32:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case uint32:
		e.b = strconv.AppendUint(e.b, uint64(x), 10)
	case uint64:
		e.b = strconv.AppendUint(e.b, x, 10)
	case float32:
		return e.float(float64(x))
	case float64:
		return e.float(x)
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
			if err := e.encode(el, depth+1); err != nil {
				return err
			}
		}
		e.nl(depth)
		e.b = append(e.b, ']')
	case map[string]any:
		if len(x) == 0 {
			e.b = append(e.b, "{}"...)
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Go maps have no order; sorted is the only stable choice
		e.b = append(e.b, '{')
		for i, k := range keys {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.nl(depth + 1)
			e.str(k)
			e.b = append(e.b, ": "...)
			if err := e.encode(x[k], depth+1); err != nil {
				return err
			}
		}
		e.nl(depth)
		e.b = append(e.b, '}')
	default:
		return fmt.Errorf("safetensors: index metadata value of type %T is not supported", v)
	}
	return nil
}

// float writes Python's repr of a float.
func (e *pyEncoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("safetensors: index metadata value %v is not valid JSON", f)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX
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
	if !strings.ContainsAny(s, ".") {
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
