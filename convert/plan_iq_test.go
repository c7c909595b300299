package convert

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// The IQ, TQ and MXFP4 file types' mixtures (llama-quant.cpp
// llama_tensor_get_type_impl at 34af94cd), on synthetic shapes the kjv-llama
// references (imatrix_refdata_test.go) do not reach: n_gqa >= 4, 8
// experts, 3-D expert tensors, rows that are not multiples of 256.
func TestPlanGGUFImatrixTypes(t *testing.T) {
	llama32 := synth{arch: "llama", layers: 32, embd: 4096, ff: 14336, heads: 32, kvHeads: 8, vocab: 128256}
	kjv := synth{arch: "llama", layers: 6, embd: 256, ff: 768, heads: 8, kvHeads: 4, vocab: 4096}
	moe8 := synth{arch: "llama", layers: 8, embd: 512, ff: 1024, heads: 8, kvHeads: 2, vocab: 256, experts: 8}
	qwen05 := synth{arch: "qwen2", layers: 24, embd: 896, ff: 4864, heads: 14, kvHeads: 2, vocab: 151936, tied: true, bias: true}
	ffn1408 := synth{arch: "llama", layers: 6, embd: 512, ff: 1408, heads: 8, kvHeads: 8, vocab: 1024}
	var exps []*graph.Tensor
	for l := 0; l < 4; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		exps = append(exps,
			&graph.Tensor{Name: p + "ffn_gate_inp.weight", Type: graph.F32, Shape: []int64{8, 256}},
			&graph.Tensor{Name: p + "ffn_gate_exps.weight", Type: graph.BF16, Shape: []int64{8, 512, 256}},
			&graph.Tensor{Name: p + "ffn_up_exps.weight", Type: graph.BF16, Shape: []int64{8, 512, 256}},
			&graph.Tensor{Name: p + "ffn_down_exps.weight", Type: graph.BF16, Shape: []int64{8, 256, 512}})
	}
	moeExps := synth{arch: "qwen3moe", layers: 4, embd: 256, ff: 512, heads: 4, kvHeads: 2, vocab: 512, experts: 8, extra: exps}

	// layer-indexed expectation helpers
	norm := func(n string) bool { return strings.HasSuffix(n, "_norm.weight") }
	tests := []struct {
		name    string
		m       synth
		ft      string
		imatrix bool
		want    func(n, s string, l int) graph.Type
	}{
		{"llama32-IQ2_XXS", llama32, "IQ2_XXS", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight":
				return graph.Q2_K
			case s == "attn_v.weight":
				return graph.Q4_K // n_gqa 4
			case s == "ffn_down.weight" && l < 4:
				return graph.Q2_K // i_ffn_down < 32/8
			}
			return graph.IQ2_XXS
		}},
		{"kjv-IQ2_M", kjv, "IQ2_M", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_v.weight", s == "attn_output.weight":
				return graph.IQ3_S
			}
			return graph.IQ2_S // IQ2_M's default; ffn_down: 6/8 = 0 bumped
		}},
		{"kjv-IQ2_S", kjv, "IQ2_S", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_v.weight", s == "attn_output.weight":
				return graph.IQ3_S
			}
			return graph.IQ2_XS // IQ2_S's default
		}},
		{"moe8-IQ1_M", moe8, "IQ1_M", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight":
				return graph.Q2_K
			case s == "attn_v.weight", s == "attn_k.weight":
				return graph.Q4_K // n_expert >= 4; attn_k: n_expert == 8
			case s == "attn_output.weight":
				return graph.Q5_K
			case s == "ffn_down.weight" && l == 0:
				return graph.Q2_K // counter < 8/8
			}
			return graph.IQ1_M
		}},
		{"kjv-IQ1_S", kjv, "IQ1_S", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_v.weight":
				return graph.Q2_K
			case s == "attn_output.weight":
				return graph.IQ2_XXS
			}
			return graph.IQ1_S
		}},
		{"llama32-IQ3_XS", llama32, "IQ3_XS", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q4_K
			case s == "attn_k.weight", s == "attn_q.weight":
				return graph.IQ3_XXS
			case (s == "ffn_gate.weight" || s == "ffn_up.weight") && l >= 4 && l < 28:
				return graph.IQ3_XXS
			}
			return graph.IQ3_S
		}},
		{"kjv-IQ3_XXS-no-imatrix", kjv, "IQ3_XXS", false, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_v.weight", s == "attn_output.weight":
				return graph.IQ3_S
			case s == "attn_k.weight", s == "attn_q.weight":
				return graph.IQ2_S
			case s == "ffn_down.weight":
				return graph.Q3_K // 6/8 = 0 layers get Q4_K
			}
			return graph.IQ3_XXS
		}},
		{"kjv-IQ3_XXS-imatrix", kjv, "IQ3_XXS", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_output.weight":
				return graph.IQ3_S
			case s == "attn_k.weight", s == "attn_q.weight":
				return graph.IQ2_S
			}
			return graph.IQ3_XXS
		}},
		{"llama32-IQ3_XXS-no-imatrix", llama32, "IQ3_XXS", false, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q5_K
			case n == "token_embd.weight", s == "attn_output.weight":
				return graph.IQ3_S
			case s == "attn_v.weight":
				return graph.Q4_K
			case s == "attn_k.weight", s == "attn_q.weight":
				return graph.IQ2_S
			case s == "ffn_down.weight" && l < 4:
				return graph.Q4_K
			case s == "ffn_down.weight":
				return graph.Q3_K
			}
			return graph.IQ3_XXS
		}},
		{"llama32-IQ3_M", llama32, "IQ3_M", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight", s == "attn_output.weight":
				return graph.Q4_K
			case s == "ffn_down.weight" && l < 4:
				return graph.Q4_K
			}
			return graph.IQ3_S
		}},
		{"moe8-IQ3_M", moe8, "IQ3_M", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight", s == "attn_k.weight":
				return graph.Q8_0
			case s == "attn_output.weight":
				return graph.Q5_K
			case s == "ffn_down.weight" && (l < 1 || useMoreBits(l, 8)):
				return graph.Q4_K
			}
			return graph.IQ3_S
		}},
		{"llama32-IQ4_XS-no-imatrix", llama32, "IQ4_XS", false, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q5_K
			case s == "ffn_down.weight" && l < 4:
				return graph.Q5_K
			}
			return graph.IQ4_XS
		}},
		{"llama32-IQ4_NL-imatrix", llama32, "IQ4_NL", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q5_K
			}
			return graph.IQ4_NL
		}},
		{"llama32-Q4_0-imatrix", llama32, "Q4_0", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "ffn_down.weight" && l < 4:
				return graph.Q4_1
			}
			return graph.Q4_0
		}},
		{"llama32-Q5_0-imatrix", llama32, "Q5_0", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "ffn_down.weight" && l < 4:
				return graph.Q5_1
			}
			return graph.Q5_0
		}},
		{"llama32-Q5_0-no-imatrix", llama32, "Q5_0", false, func(n, s string, l int) graph.Type {
			if n == "output.weight" {
				return graph.Q6_K
			}
			return graph.Q5_0
		}},
		{"llama32-Q2_K_S", llama32, "Q2_K_S", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q4_K
			case s == "ffn_down.weight" && l < 4:
				return graph.Q4_K
			}
			return graph.Q2_K
		}},
		{"kjv-TQ1_0", kjv, "TQ1_0", false, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case n == "token_embd.weight":
				return graph.Q4_K
			}
			return graph.TQ1_0
		}},
		{"qwen05-IQ2_XXS", qwen05, "IQ2_XXS", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "token_embd.weight":
				return graph.Q8_0 // tied: output rule, 896 % 256 != 0
			case s == "attn_v.weight":
				return graph.Q5_0 // Q4_K (n_gqa 7), fallback
			case s == "ffn_down.weight" && l < 3:
				return graph.Q2_K // 24/8 = 3; row 4864 = 19*256 needs no fallback
			case s == "ffn_down.weight":
				return graph.IQ2_XXS
			}
			return graph.IQ4_NL // IQ2_XXS, fallback
		}},
		{"qwen05-TQ2_0", qwen05, "TQ2_0", false, func(n, s string, l int) graph.Type {
			switch {
			case n == "token_embd.weight":
				return graph.Q8_0
			case s == "ffn_down.weight":
				return graph.TQ2_0 // row 4864 = 19*256
			}
			return graph.Q4_0 // TQ2_0 fallback
		}},
		{"ffn1408-IQ4_XS", ffn1408, "IQ4_XS", true, func(n, s string, l int) graph.Type {
			switch {
			case n == "output.weight":
				return graph.Q6_K
			case s == "ffn_down.weight":
				return graph.IQ4_NL // 1408 % 256 != 0
			}
			return graph.IQ4_XS // n_gqa 1: attn_v not bumped
		}},
		{"moe-exps-MXFP4_MOE", moeExps, "MXFP4_MOE", false, func(n, s string, l int) graph.Type {
			switch {
			case s == "ffn_gate_inp.weight":
				return graph.F32
			case strings.HasSuffix(s, "_exps.weight"):
				return graph.MXFP4
			}
			return graph.Q8_0
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m.model()
			plans, err := PlanGGUF(m, mustFT(t, tc.ft), PlanOptions{Imatrix: tc.imatrix})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range plans {
				want := graph.F32
				if !norm(p.Name) && len(p.Shape) > 1 {
					s, l := suffix(p.Name)
					want = tc.want(p.Name, s, l)
				}
				if p.To != want {
					t.Errorf("%s %v: %v (%s), want %v", p.Name, p.Shape, p.To, p.Reason, want)
				}
			}
		})
	}
}

// TestImatrixRequired: llama-quantize's preliminary pass refuses the file
// types whose tensors need an importance matrix, naming the first one.
func TestImatrixRequired(t *testing.T) {
	kjv := synth{arch: "llama", layers: 6, embd: 256, ff: 768, heads: 8, kvHeads: 4, vocab: 4096}.model()
	for _, tc := range []struct {
		ft, tensor string // tensor: the one named, "" for no error
	}{
		{"IQ2_XXS", "blk.0.attn_k.weight"}, {"IQ2_XS", "blk.0.attn_k.weight"}, {"IQ2_S", "blk.0.attn_k.weight"},
		{"IQ2_M", "blk.0.attn_k.weight"}, {"IQ1_S", "blk.0.attn_k.weight"}, {"IQ1_M", "blk.0.attn_k.weight"},
		{"IQ3_XXS", "blk.0.attn_k.weight"}, // IQ2_S
		{"Q2_K_S", "blk.0.attn_k.weight"},  // Q2_K in a Q2_K_S file
		{"IQ3_XS", "blk.0.attn_k.weight"},  // IQ3_XXS
		{"Q2_K", ""}, {"IQ3_S", ""}, {"IQ3_M", ""}, {"IQ4_NL", ""}, {"IQ4_XS", ""}, {"TQ1_0", ""}, {"TQ2_0", ""}, {"MXFP4_MOE", ""},
	} {
		t.Run(tc.ft, func(t *testing.T) {
			ft := mustFT(t, tc.ft)
			opt := PlanOptions{}
			plans, err := PlanGGUF(kjv, ft, opt)
			if err != nil {
				t.Fatal(err)
			}
			err = checkImatrixRequired(plans, ft, &opt, nil)
			switch {
			case tc.tensor == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.tensor != "" && (!errors.Is(err, ErrImatrixRequired) || !strings.Contains(err.Error(), "tensor "+tc.tensor+",")):
				t.Fatalf("err = %v, want ErrImatrixRequired for %s", err, tc.tensor)
			}
			if err := checkImatrixRequired(plans, ft, &opt, &importance{}); err != nil {
				t.Errorf("with an importance matrix: %v", err)
			}
		})
	}
	// --leave-output-tensor etc. do not matter, but a tensor that is never
	// quantized is not checked: an IQ2_XXS norm (not quantizable) passes.
	m := &graph.Model{Path: "x", Arch: "llama", Tensors: []*graph.Tensor{{Name: "blk.0.attn_norm.weight", Type: graph.IQ2_XXS, Shape: []int64{1, 256}}}}
	ft := mustFT(t, "IQ2_XXS")
	plans, err := PlanGGUF(m, ft, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkImatrixRequired(plans, ft, &PlanOptions{}, nil); err != nil {
		t.Errorf("non-quantizable tensor: %v", err)
	}
}
