package safetensors

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/quantbridge/quantbridge/internal/pyjson"
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
	b, err := pyjson.Encoder{Indent: "  "}.Marshal(map[string]any{"metadata": meta, "weight_map": wm})
	if err != nil {
		return nil, fmt.Errorf("safetensors: index metadata: %w", err)
	}
	return append(b, '\n'), nil
}

// IndexJSONMLX returns a model.safetensors.index.json exactly as mlx-lm's
// save_model writes it (json.dump(index, indent=4), no trailing newline):
// metadata {"total_size", "total_parameters"} in that order, weight_map
// sorted by tensor name.
func IndexJSONMLX(weightMap map[string]string, totalSize, totalParameters int64) []byte {
	names := make([]string, 0, len(weightMap))
	for k := range weightMap {
		names = append(names, k)
	}
	sort.Strings(names)
	b := []byte("{\n    \"metadata\": {\n        \"total_size\": ")
	b = strconv.AppendInt(b, totalSize, 10)
	b = append(b, ",\n        \"total_parameters\": "...)
	b = strconv.AppendInt(b, totalParameters, 10)
	b = append(b, "\n    },\n    \"weight_map\": {"...)
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n        "...)
		b = pyjson.AppendString(b, k)
		b = append(b, ": "...)
		b = pyjson.AppendString(b, weightMap[k])
	}
	if len(names) > 0 {
		b = append(b, "\n    "...)
	}
	b = append(b, "}\n}"...)
	return b
}
