package convert

import (
	"sort"
	"strconv"
	"strings"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// mlxModuleQuant applies the architecture's mlx-lm quant_predicate
// (arch.Arch.MLXQuant) to tensor t, which mlx-lm's default predicate
// quantizes with (ap, gs): it returns the parameters to use, or
// quantized false. Parameters other than the requested ones are recorded
// in q as a per-module entry ("model.layers.0.mlp.gate": {"group_size":
// 64, "bits": 8}), as mlx_lm.utils.quantize_model's wrapped_predicate
// writes a dict the predicate returns.
func mlxModuleQuant(m *graph.Model, t *graph.Tensor, ap *quantize.AffineParams, gs int, q *mlx.Quantization) (*quantize.AffineParams, int, bool) {
	a, ok := arch.Lookup(m.Arch)
	if !ok || a.MLXQuant == nil {
		return ap, gs, true
	}
	bits, group, ok := a.MLXQuant(t.Name, t.Shape, ap.Bits, gs)
	if !ok {
		return ap, gs, false // (mlx-lm writes no entry for a False predicate on a fresh model)
	}
	if bits == ap.Bits && group == gs {
		return ap, gs, true
	}
	hfName, _ := a.HFName(t.Name, true)
	path := strings.TrimSuffix(hfName, ".weight")
	if q != nil && q.Layer(path) == nil {
		q.Layers = append(q.Layers, mlx.LayerQuantization{Path: path, Quantize: true, Params: &mlx.LayerParams{GroupSize: group, Bits: bits}})
	}
	p := *ap
	p.Bits, p.GroupSize = bits, group
	return &p, group, true
}

// sortLayerEntries orders per-module entries as nn.quantize visits the
// modules (tree order: layer lists by index, so layer 2 before layer 10).
func sortLayerEntries(l []mlx.LayerQuantization) {
	key := func(p string) (string, int, string) {
		rest, ok := strings.CutPrefix(p, "model.layers.")
		if !ok {
			return p, -1, ""
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return p, -1, ""
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return p, -1, ""
		}
		return "model.layers.", n, rest[i:]
	}
	sort.SliceStable(l, func(i, j int) bool {
		ap, an, as := key(l[i].Path)
		bp, bn, bs := key(l[j].Path)
		if ap != bp {
			return ap < bp
		}
		if an != bn {
			return an < bn
		}
		return as < bs
	})
}
