package convert

import (
	"slices"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// refPermute is convert_hf_to_gguf's LlamaModel.permute written the numpy
// way: view the rows as [heads, 2, rows/heads/2, ...], swap axes 1 and 2,
// flatten. It returns the source row of each destination row.
func refPermute(rows, heads int) []int {
	half := rows / heads / 2
	out := make([]int, 0, rows)
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ { // axis 2 first after the swap
			for j := 0; j < 2; j++ {
				out = append(out, h*2*half+j*half+i)
			}
		}
	}
	return out
}

func TestPermute(t *testing.T) {
	for _, c := range []struct{ rows, heads, unit int }{{8, 1, 3}, {32, 4, 2}, {64, 8, 1}, {12, 3, 5}} {
		f := make([]float32, c.rows*c.unit)
		for i := range f {
			f[i] = float32(i)
		}
		orig := slices.Clone(f)
		if err := (perm{heads: c.heads}).apply(f, int64(c.unit), int64(c.rows)); err != nil {
			t.Fatal(err)
		}
		for dst, src := range refPermute(c.rows, c.heads) {
			for k := 0; k < c.unit; k++ {
				if f[dst*c.unit+k] != orig[src*c.unit+k] {
					t.Fatalf("%+v: row %d holds %v, want source row %d", c, dst, f[dst*c.unit:dst*c.unit+c.unit], src)
				}
			}
		}
		if err := (perm{heads: c.heads, inverse: true}).apply(f, int64(c.unit), int64(c.rows)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f, orig) {
			t.Fatalf("%+v: inverse does not undo the permutation", c)
		}
	}
	if err := (perm{heads: 3}).apply(make([]float32, 8), 1, 8); err == nil {
		t.Error("8 rows for 3 heads accepted")
	}
}

func TestRotaryPerm(t *testing.T) {
	llama := &graph.Model{Arch: "llama", Params: graph.Params{Heads: 8, KVHeads: 2}}
	qwen := &graph.Model{Arch: "qwen2", Params: graph.Params{Heads: 8, KVHeads: 2}}
	for _, c := range []struct {
		m     *graph.Model
		name  string
		heads int // 0: no permutation
	}{
		{llama, "blk.3.attn_q.weight", 8}, {llama, "blk.3.attn_k.weight", 2}, {llama, "blk.0.attn_q.bias", 8},
		{llama, "blk.0.attn_k.bias", 2}, {llama, "blk.0.attn_v.weight", 0}, {llama, "token_embd.weight", 0},
		{qwen, "blk.0.attn_q.weight", 0}, {qwen, "blk.0.attn_k.bias", 0},
	} {
		p := rotaryPerm(c.m, c.name, true)
		if (p == nil) != (c.heads == 0) || (p != nil && (p.heads != c.heads || p.inverse)) {
			t.Errorf("%s %s: %+v, want heads %d", c.m.Arch, c.name, p, c.heads)
		}
	}
}
