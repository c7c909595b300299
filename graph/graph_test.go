package graph

import (
	"testing"
)

func TestNameMapping(t *testing.T) {
	tests := []struct{ hf, canon string }{
		{"model.embed_tokens.weight", "token_embd.weight"},
		{"model.norm.weight", "output_norm.weight"},
		{"lm_head.weight", "output.weight"},
		{"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
		{"model.layers.11.self_attn.k_proj.bias", "blk.11.attn_k.bias"},
		{"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
		{"model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"},
		{"model.layers.7.self_attn.o_proj.weight", "blk.7.attn_output.weight"},
	}
	for _, tc := range tests {
		got, ok := CanonicalName(tc.hf)
		if !ok || got != tc.canon {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", tc.hf, got, ok, tc.canon)
		}
		back, ok := HFName(tc.canon)
		if !ok || back != tc.hf {
			t.Errorf("HFName(%q) = %q, %v; want %q", tc.canon, back, ok, tc.hf)
		}
	}
	// MLX quantization companions keep their suffix.
	if got, _ := CanonicalName("model.layers.2.mlp.up_proj.scales"); got != "blk.2.ffn_up.scales" {
		t.Errorf("scales: %q", got)
	}
	if got, _ := CanonicalName("model.embed_tokens.biases"); got != "token_embd.biases" {
		t.Errorf("biases: %q", got)
	}
	// Unmapped names pass through unchanged.
	for _, n := range []string{"model.layers.x.self_attn.q_proj.weight", "model.layers.0.self_attn.rotary_emb.inv_freq", "foo"} {
		if got, ok := CanonicalName(n); ok || got != n {
			t.Errorf("CanonicalName(%q) = %q, %v; want unchanged", n, got, ok)
		}
	}
}

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
