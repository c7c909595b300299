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

func TestTypes(t *testing.T) {
	tests := []struct {
		typ        Type
		n, rowSize int64
		quantized  bool
	}{
		{F32, 256, 1024, false}, {BF16, 256, 512, false}, {Q8_0, 256, 272, true},
		{Q4_K, 256, 144, true}, {Q6_K, 512, 420, true}, {Q4_0, 64, 36, true}, {MXFP4, 32, 17, true},
	}
	for _, tc := range tests {
		rs, err := RowSize(tc.typ, tc.n)
		if err != nil || rs != tc.rowSize || tc.typ.IsQuantized() != tc.quantized {
			t.Errorf("%v: RowSize(%d) = %d, %v; quantized %v", tc.typ, tc.n, rs, err, tc.typ.IsQuantized())
		}
		if p, ok := ParseType(tc.typ.String()); !ok || p != tc.typ {
			t.Errorf("ParseType(%q) = %v, %v", tc.typ.String(), p, ok)
		}
	}
	if _, err := RowSize(Q4_K, 352); err == nil {
		t.Error("Q4_K row of 352: no error")
	}
	if _, err := RowSize(Type(999), 32); err == nil {
		t.Error("unknown type: no error")
	}
	tt := &Tensor{Shape: []int64{3, 4, 256}, Type: Q4_K}
	if tt.Rows() != 12 || tt.RowLen() != 256 || tt.Elements() != 3072 || tt.Bytes() != 12*144 {
		t.Errorf("tensor geometry: rows %d len %d elems %d bytes %d", tt.Rows(), tt.RowLen(), tt.Elements(), tt.Bytes())
	}
}
