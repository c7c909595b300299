package safetensors

import "github.com/quantbridge/quantbridge/graph"

// dtypeInfo describes one safetensors dtype: its graph type, element size
// and its rank in the Rust crate's Dtype enum (declared in increasing
// alignment order; the reference writer sorts by descending rank).
type dtypeInfo struct {
	name string
	typ  graph.Type
	size int64
	rank int
}

// dtypes lists the dtypes this package supports, in the Rust enum's order.
var dtypes = []dtypeInfo{
	{"BOOL", graph.Bool, 1, 0},
	{"U8", graph.U8, 1, 4},
	{"I8", graph.I8, 1, 5},
	{"F8_E5M2", graph.F8_E5M2, 1, 6},
	{"F8_E4M3", graph.F8_E4M3, 1, 7},
	{"I16", graph.I16, 2, 11},
	{"U16", graph.U16, 2, 12},
	{"F16", graph.F16, 2, 13},
	{"BF16", graph.BF16, 2, 14},
	{"I32", graph.I32, 4, 15},
	{"U32", graph.U32, 4, 16},
	{"F32", graph.F32, 4, 17},
	{"F64", graph.F64, 8, 19},
	{"I64", graph.I64, 8, 20},
	{"U64", graph.U64, 8, 21},
}

// unsupportedDtypes are valid in newer safetensors files but have no
// graph.Type.
var unsupportedDtypes = map[string]bool{
	"F4": true, "F6_E2M3": true, "F6_E3M2": true, "F8_E8M0": true,
	"F8_E4M3FNUZ": true, "F8_E5M2FNUZ": true, "C64": true,
}

func dtypeByName(name string) (dtypeInfo, bool) {
	for _, d := range dtypes {
		if d.name == name {
			return d, true
		}
	}
	return dtypeInfo{}, false
}

func dtypeByType(t graph.Type) (dtypeInfo, bool) {
	for _, d := range dtypes {
		if d.typ == t {
			return d, true
		}
	}
	return dtypeInfo{}, false
}

// DTypeName returns the safetensors spelling of t ("BF16", "BOOL", ...) and
// whether t can be stored in a safetensors file.
func DTypeName(t graph.Type) (string, bool) {
	d, ok := dtypeByType(t)
	return d.name, ok
}

// ParseDType returns the graph type of a safetensors dtype name (exact,
// case-sensitive as in the format).
func ParseDType(name string) (graph.Type, bool) {
	d, ok := dtypeByName(name)
	return d.typ, ok
}
