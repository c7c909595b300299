package convert

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// synth describes a synthetic decoder-only model (no tensor data: the plan
// never reads any).
type synth struct {
	arch                   string
	layers, embd, ff       int64
	heads, kvHeads, vocab  int64
	tied, bias             bool
	experts                int
	weightType             graph.Type
	extra                  []*graph.Tensor
	headDimOverride        int64
	omitLayerCountMetadata bool
}

func (s synth) model() *graph.Model {
	wt := s.weightType
	if wt == 0 {
		wt = graph.BF16
	}
	hd := s.embd / s.heads
	if s.headDimOverride != 0 {
		hd = s.headDimOverride
	}
	kv := hd * s.kvHeads
	var ts []*graph.Tensor
	add := func(name string, typ graph.Type, shape ...int64) {
		ts = append(ts, &graph.Tensor{Name: name, Type: typ, Shape: shape})
	}
	add("token_embd.weight", wt, s.vocab, s.embd)
	if !s.tied {
		add("output.weight", wt, s.vocab, s.embd)
	}
	add("output_norm.weight", graph.F32, s.embd)
	for l := int64(0); l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", graph.F32, s.embd)
		add(p+"attn_q.weight", wt, hd*s.heads, s.embd)
		add(p+"attn_k.weight", wt, kv, s.embd)
		add(p+"attn_v.weight", wt, kv, s.embd)
		if s.bias {
			add(p+"attn_q.bias", graph.F32, hd*s.heads)
			add(p+"attn_k.bias", graph.F32, kv)
			add(p+"attn_v.bias", graph.F32, kv)
		}
		add(p+"attn_output.weight", wt, s.embd, hd*s.heads)
		add(p+"ffn_norm.weight", graph.F32, s.embd)
		add(p+"ffn_gate.weight", wt, s.ff, s.embd)
		add(p+"ffn_up.weight", wt, s.ff, s.embd)
		add(p+"ffn_down.weight", wt, s.embd, s.ff)
	}
	ts = append(ts, s.extra...)
	// Reverse so the plan has to sort.
	slices.Reverse(ts)
	m := &graph.Model{Format: graph.FormatGGUF, Path: "synthetic", Arch: s.arch, Tensors: ts}
	m.Params = graph.Params{Layers: int(s.layers), Embedding: int(s.embd), FFN: int(s.ff),
		Heads: int(s.heads), KVHeads: int(s.kvHeads), VocabSize: int(s.vocab), Tied: s.tied}
	if s.omitLayerCountMetadata {
		m.Params.Layers = 0
	}
	if s.experts != 0 {
		m.Metadata = append(m.Metadata, graph.KV{Key: s.arch + ".expert_count", Value: uint32(s.experts)})
	}
	return m
}

func set(xs ...int) map[int]bool {
	m := map[int]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

var (
	moreBits32 = set(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31)
	moreBits24 = set(0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23)
	moreBits6  = set(2, 5)
)

// suffix returns the name after "blk.N." and the layer (or -1).
func suffix(name string) (string, int) {
	l := graph.LayerIndex(name)
	if l < 0 {
		return name, -1
	}
	return name[strings.IndexByte(name[4:], '.')+5:], l
}

func TestPlanGGUF(t *testing.T) {
	llama32 := synth{arch: "llama", layers: 32, embd: 4096, ff: 14336, heads: 32, kvHeads: 8, vocab: 128256}
	llama6 := synth{arch: "llama", layers: 6, embd: 256, ff: 768, heads: 8, kvHeads: 4, vocab: 4096}
	qwen05 := synth{arch: "qwen2", layers: 24, embd: 896, ff: 4864, heads: 14, kvHeads: 2, vocab: 151936, tied: true, bias: true}
	tests := []struct {
		name string
		m    synth
		ft   string
		opt  PlanOptions
		want func(name string) graph.Type
	}{
		{"llama32-Q4_K_M", llama32, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits32[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"llama32-tied-Q4_K_M", synth{arch: "llama", layers: 32, embd: 4096, ff: 14336, heads: 32, kvHeads: 8, vocab: 128256, tied: true}, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "token_embd.weight":
				return graph.Q6_K
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits32[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"qwen2.5-0.5B-Q4_K_M", qwen05, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"), strings.HasSuffix(n, ".bias"):
				return graph.F32
			case n == "token_embd.weight":
				return graph.Q8_0 // tied, 896 % 256 != 0
			case s == "attn_v.weight" && moreBits24[l]:
				return graph.Q8_0 // Q6_K fallback
			case s == "ffn_down.weight" && moreBits24[l]:
				return graph.Q6_K // row 4864 = 19*256
			case s == "ffn_down.weight":
				return graph.Q4_K
			}
			return graph.Q5_0 // Q4_K fallback
		}},
		{"ffn1408-Q4_K_M", synth{arch: "llama", layers: 6, embd: 512, ff: 1408, heads: 8, kvHeads: 8, vocab: 1024}, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "ffn_down.weight" && moreBits6[l]:
				return graph.Q8_0 // Q6_K, 1408 % 256 != 0
			case s == "ffn_down.weight":
				return graph.Q5_0 // Q4_K fallback
			case s == "attn_v.weight" && moreBits6[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"kjv-Q4_K_M", llama6, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits6[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"llama32-Q5_K_M", llama32, "q5_k_m", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits32[l]:
				return graph.Q6_K
			}
			return graph.Q5_K
		}},
		{"llama32-Q3_K_M", llama32, "Q3_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight" && l < 2:
				return graph.Q5_K
			case s == "attn_v.weight":
				return graph.Q4_K
			case s == "ffn_down.weight" && l < 32/16:
				return graph.Q5_K
			case s == "ffn_down.weight", s == "attn_output.weight":
				return graph.Q4_K
			}
			return graph.Q3_K
		}},
		{"llama32-Q3_K_L", llama32, "Q3_K_L", PlanOptions{}, func(n string) graph.Type {
			s, _ := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight", s == "ffn_down.weight", s == "attn_output.weight":
				return graph.Q5_K
			}
			return graph.Q3_K
		}},
		{"llama32-Q3_K_S", llama32, "Q3_K_S", PlanOptions{}, func(n string) graph.Type {
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			}
			return graph.Q3_K
		}},
		{"llama32-Q4_K_S", llama32, "Q4_K_S", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight" && l < 4, s == "ffn_down.weight" && l < 32/8:
				return graph.Q5_K
			}
			return graph.Q4_K
		}},
		{"llama32-Q2_K-gqa4", llama32, "Q2_K", PlanOptions{}, func(n string) graph.Type {
			s, _ := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q4_K // n_gqa = 4
			case s == "ffn_down.weight", s == "attn_output.weight":
				return graph.Q3_K
			}
			return graph.Q2_K
		}},
		{"kjv-Q2_K-gqa2", llama6, "Q2_K", PlanOptions{}, func(n string) graph.Type {
			s, _ := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight", s == "ffn_down.weight", s == "attn_output.weight":
				return graph.Q3_K
			}
			return graph.Q2_K
		}},
		{"kjv-Q4_0", llama6, "Q4_0", PlanOptions{}, func(n string) graph.Type {
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			}
			return graph.Q4_0
		}},
		{"kjv-Q8_0", llama6, "Q8_0", PlanOptions{}, func(n string) graph.Type {
			if strings.HasSuffix(n, "_norm.weight") {
				return graph.F32
			}
			return graph.Q8_0
		}},
		{"kjv-Q6_K", llama6, "Q6_K", PlanOptions{}, func(n string) graph.Type {
			if strings.HasSuffix(n, "_norm.weight") {
				return graph.F32
			}
			return graph.Q6_K
		}},
		{"kjv-F16", llama6, "F16", PlanOptions{}, func(n string) graph.Type {
			if strings.HasSuffix(n, "_norm.weight") {
				return graph.F32
			}
			return graph.F16
		}},
		{"qwen-BF16-bias-kept", qwen05, "bf16", PlanOptions{}, func(n string) graph.Type {
			if strings.HasSuffix(n, "_norm.weight") || strings.HasSuffix(n, ".bias") {
				return graph.F32
			}
			return graph.BF16
		}},
		{"llama80-70B-Q4_K_M", synth{arch: "llama", layers: 80, embd: 512, ff: 1024, heads: 8, kvHeads: 1, vocab: 256}, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight" && useMoreBits(l, 80):
				return graph.Q6_K
			case s == "attn_v.weight":
				return graph.Q5_K // 70B bump
			case s == "ffn_down.weight" && useMoreBits(l, 80):
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"moe8-Q4_K_M", synth{arch: "llama", layers: 8, embd: 512, ff: 1024, heads: 8, kvHeads: 2, vocab: 256, experts: 8}, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_v.weight", s == "attn_k.weight":
				return graph.Q8_0
			case s == "attn_output.weight":
				return graph.Q5_K
			case s == "ffn_down.weight" && useMoreBits(l, 8):
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"kjv-Q4_K_M-leave-output", llama6, "Q4_K_M", PlanOptions{LeaveOutputTensor: true}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.BF16
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits6[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"kjv-Q4_K_M-pure-overrides", llama6, "Q4_K_M", PlanOptions{Pure: true, OutputTensorType: ptr(graph.Q8_0), TokenEmbeddingType: ptr(graph.F16)}, func(n string) graph.Type {
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q8_0
			case n == "token_embd.weight":
				return graph.F16
			}
			return graph.Q4_K
		}},
		{"kjv-Q4_K_M-tensor-type", llama6, "Q4_K_M", PlanOptions{TensorTypes: []TensorTypeRule{{regexp.MustCompile(`attn_q`), graph.Q8_0}}}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"):
				return graph.F32
			case n == "output.weight":
				return graph.Q6_K
			case s == "attn_q.weight":
				return graph.Q8_0
			case (s == "attn_v.weight" || s == "ffn_down.weight") && moreBits6[l]:
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
		{"odd-shapes", synth{arch: "llama", layers: 1, embd: 256, ff: 768, heads: 8, kvHeads: 8, vocab: 64,
			extra: []*graph.Tensor{
				{Name: "rope_freqs.weight", Type: graph.F32, Shape: []int64{16}},
				{Name: "blk.0.col.weight", Type: graph.F32, Shape: []int64{4096, 1}}, // ggml 2-D
				{Name: "blk.0.row.weight", Type: graph.F32, Shape: []int64{1, 4096}}, // ggml 1-D
				{Name: "blk.0.odd.weight", Type: graph.F32, Shape: []int64{4, 48}},   // 48 % 32 != 0 -> F16
				{Name: "blk.0.ffn_gate_inp.weight", Type: graph.F32, Shape: []int64{8, 256}},
				{Name: "blk.0.misc.scale", Type: graph.F32, Shape: []int64{8, 256}},
			}}, "Q4_K_M", PlanOptions{}, func(n string) graph.Type {
			s, l := suffix(n)
			switch {
			case strings.HasSuffix(n, "_norm.weight"), n == "rope_freqs.weight", s == "row.weight", s == "misc.scale", s == "ffn_gate_inp.weight":
				return graph.F32 // kept
			case s == "col.weight", s == "odd.weight":
				return graph.F16 // Q4_K -> Q5_0 -> ncols % 32 != 0 -> F16
			case n == "output.weight":
				return graph.Q6_K
			case (s == "attn_v.weight" || s == "ffn_down.weight") && useMoreBits(l, 1):
				return graph.Q6_K
			}
			return graph.Q4_K
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m.model()
			ft, err := ParseFileType(tc.ft)
			if err != nil {
				t.Fatal(err)
			}
			plans, err := PlanGGUF(m, ft, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(plans) != len(m.Tensors) {
				t.Fatalf("%d plans for %d tensors", len(plans), len(m.Tensors))
			}
			bad := 0
			for _, p := range plans {
				want := tc.want(p.Name)
				if p.To != want {
					bad++
					if bad <= 10 {
						t.Errorf("%s %v %v: got %v (%s), want %v", p.Name, p.Shape, p.From, p.To, p.Reason, want)
					}
				}
			}
			// Output order: llama.cpp's weight_name_comparer.
			for i := 1; i < len(plans); i++ {
				a, b := plans[i-1].Name, plans[i].Name
				la, lb := graph.LayerIndex(a), graph.LayerIndex(b)
				if la > lb || (la == lb && a >= b) {
					t.Fatalf("order: %s before %s", a, b)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPlanGGUFOrder(t *testing.T) {
	m := synth{arch: "llama", layers: 11, embd: 256, ff: 256, heads: 1, kvHeads: 1, vocab: 32}.model()
	plans, err := PlanGGUF(m, FileType{Name: "Q8_0", LlamaFType: 7, Default: graph.Q8_0}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plans[:5] {
		got = append(got, p.Name)
	}
	want := []string{"output.weight", "output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight"}
	if !slices.Equal(got, want) {
		t.Errorf("first names %v, want %v", got, want)
	}
	// blk.2 sorts before blk.10 (numeric layer order).
	i2 := slices.IndexFunc(plans, func(p TensorPlan) bool { return p.Name == "blk.2.ffn_up.weight" })
	i10 := slices.IndexFunc(plans, func(p TensorPlan) bool { return p.Name == "blk.10.attn_k.weight" })
	if i2 < 0 || i10 < 0 || i2 > i10 {
		t.Errorf("blk.2 at %d, blk.10 at %d", i2, i10)
	}
}

func TestPlanGGUFErrors(t *testing.T) {
	q80 := FileType{Name: "Q8_0", LlamaFType: 7, Default: graph.Q8_0}
	tests := []struct {
		name string
		ts   []*graph.Tensor
		ft   FileType
		want string
	}{
		{"no-fallback-for-q8_0", []*graph.Tensor{{Name: "blk.0.x.weight", Type: graph.F32, Shape: []int64{4, 48}}}, q80, "no fallback"},
		{"duplicate", []*graph.Tensor{{Name: "a.weight", Type: graph.F32, Shape: []int64{4}}, {Name: "a.weight", Type: graph.F32, Shape: []int64{4}}}, q80, "duplicate"},
		{"negative", []*graph.Tensor{{Name: "a.weight", Type: graph.F32, Shape: []int64{-4, 32}}}, q80, "negative"},
		{"bad-filetype", nil, FileType{Name: "IQ5_XXS"}, "unknown GGUF file type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &graph.Model{Path: "x.gguf", Arch: "llama", Tensors: tc.ts}
			_, err := PlanGGUF(m, tc.ft, PlanOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseFileType(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ftype uint32
		def   graph.Type
	}{
		{"q4_k_m", 15, graph.Q4_K}, {"Q8_0", 7, graph.Q8_0}, {"bf16", 32, graph.BF16}, {"F32", 0, graph.F32},
		{"Q3_K_S", 11, graph.Q3_K}, {"Q5_K_S", 16, graph.Q5_K}, {"Q6_K", 18, graph.Q6_K}, {"q5_1", 9, graph.Q5_1},
	} {
		ft, err := ParseFileType(tc.in)
		if err != nil || ft.LlamaFType != tc.ftype || ft.Default != tc.def {
			t.Errorf("ParseFileType(%q) = %+v, %v", tc.in, ft, err)
		}
	}
	if _, err := ParseFileType("q4_k_x"); err == nil {
		t.Error("q4_k_x accepted")
	}
}

func TestUseMoreBits(t *testing.T) {
	for n, want := range map[int]map[int]bool{32: moreBits32, 24: moreBits24, 6: moreBits6} {
		for i := 0; i < n; i++ {
			if useMoreBits(i, n) != want[i] {
				t.Errorf("useMoreBits(%d, %d) = %v", i, n, !want[i])
			}
		}
	}
}
