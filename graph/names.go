package graph

import (
	"sort"
	"strconv"
	"strings"
)

// Architecture-specific names live in package arch.

// LayerIndex returns N for a "blk.N." canonical name, or -1.
func LayerIndex(canon string) int {
	rest, ok := strings.CutPrefix(canon, "blk.")
	if !ok {
		return -1
	}
	i := strings.IndexByte(rest, '.')
	if i <= 0 {
		return -1
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil {
		return -1
	}
	return n
}

// SortLlamaCpp sorts tensors the way llama.cpp's model loader orders its
// weights map (weight_name_comparer): non-block tensors first (layer -1),
// then by layer number, then by name.
func SortLlamaCpp(ts []*Tensor) {
	sort.SliceStable(ts, func(i, j int) bool {
		li, lj := LayerIndex(ts[i].Name), LayerIndex(ts[j].Name)
		if li != lj {
			return li < lj
		}
		return ts[i].Name < ts[j].Name
	})
}
