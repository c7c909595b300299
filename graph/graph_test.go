package graph

import (
	"testing"
)

func TestSortLlamaCpp(t *testing.T) {
	names := []string{"blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight", "blk.2.attn_k.weight", "output.weight", "output_norm.weight"}
	ts := make([]*Tensor, len(names))
	for i, n := range names {
		ts[i] = &Tensor{Name: n}
	}
	SortLlamaCpp(ts)
	want := []string{"output.weight", "output_norm.weight", "token_embd.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}
	for i, w := range want {
		if ts[i].Name != w {
			t.Fatalf("order[%d] = %s, want %s", i, ts[i].Name, w)
		}
	}
}

func TestTensorGeometry(t *testing.T) {
	tt := &Tensor{Shape: []int64{3, 4, 256}, Type: Q4_K}
	if tt.Rows() != 12 || tt.RowLen() != 256 || tt.Elements() != 3072 || tt.Bytes() != 12*144 {
		t.Errorf("tensor geometry: rows %d len %d elems %d bytes %d", tt.Rows(), tt.RowLen(), tt.Elements(), tt.Bytes())
	}
}
