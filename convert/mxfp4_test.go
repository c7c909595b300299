package convert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// mxfp4Ref reads testdata/arch/mxfp4-reference.json
// (scripts/mxfp4-reference.sh): the sha256 of llama-quantize's MXFP4_MOE
// output for the MoE fixtures.
func mxfp4Ref(t testing.TB) map[string]struct{ SHA256 string } {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "mxfp4-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	out := map[string]struct{ SHA256 string }{}
	for _, k := range []string{"qwen3moe-tiny", "mixtral-tiny"} {
		var v struct{ SHA256 string }
		if err := json.Unmarshal(ref[k], &v); err != nil || len(v.SHA256) != 64 {
			t.Fatalf("mxfp4-reference.json: %s: no sha256 (%v)", k, err)
		}
		out[k] = v
	}
	return out
}

// TestMXFP4MoEMatchesLlamaQuantize: convert --type MXFP4_MOE writes
// llama-quantize's bytes (expert tensors MXFP4, the rest Q8_0), from the
// BF16 GGUF and from the HF checkpoint in one pass. qwen3moe-tiny's
// reference was quantized from llama.cpp's own BF16 conversion; mixtral-tiny's
// from quantbridge's (equal to the HF path, checked here too).
func TestMXFP4MoEMatchesLlamaQuantize(t *testing.T) {
	ref := mxfp4Ref(t)
	dir := t.TempDir()
	for _, tc := range []struct{ name, in string }{
		{"qwen3moe-tiny", testref.Local(t, "arch", "qwen3moe-tiny.bf16.gguf")},
		{"qwen3moe-tiny", testref.Local(t, "arch", "qwen3moe-tiny")},
		{"mixtral-tiny", testref.Local(t, "arch", "mixtral-tiny")},
	} {
		t.Run(tc.name+"/"+filepath.Base(tc.in), func(t *testing.T) {
			out := filepath.Join(dir, "out.gguf")
			os.Remove(out)
			unseenConvert(t, tc.in, out, "MXFP4_MOE")
			sum, _ := unseenSHA256(t, out)
			if sum != ref[tc.name].SHA256 {
				t.Errorf("sha256 %s, llama-quantize MXFP4_MOE %s", sum, ref[tc.name].SHA256)
			}
		})
	}
}

// TestPlanMXFP4MoE: the MXFP4_MOE mixture on names and shapes alone.
func TestPlanMXFP4MoE(t *testing.T) {
	ft, err := ParseFileType("MXFP4_MOE")
	if err != nil {
		t.Fatal(err)
	}
	if ft.LlamaFType != 38 || ft.Default != graph.MXFP4 {
		t.Fatalf("MXFP4_MOE = %+v", ft)
	}
	m := &graph.Model{Path: "m", Arch: "qwen3moe", Tensors: []*graph.Tensor{
		{Name: "token_embd.weight", Type: graph.BF16, Shape: []int64{64, 128}},
		{Name: "output.weight", Type: graph.BF16, Shape: []int64{64, 128}},
		{Name: "blk.0.attn_q.weight", Type: graph.BF16, Shape: []int64{128, 128}},
		{Name: "blk.0.ffn_gate_inp.weight", Type: graph.F32, Shape: []int64{8, 128}},
		{Name: "blk.0.ffn_down_exps.weight", Type: graph.BF16, Shape: []int64{8, 128, 96}},
		{Name: "blk.0.ffn_up_exps.weight", Type: graph.BF16, Shape: []int64{1, 96, 128}},
	}}
	plans, err := PlanGGUF(m, ft, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]graph.Type{
		"token_embd.weight": graph.Q8_0, "output.weight": graph.Q8_0, "blk.0.attn_q.weight": graph.Q8_0,
		"blk.0.ffn_gate_inp.weight": graph.F32, "blk.0.ffn_down_exps.weight": graph.MXFP4,
		"blk.0.ffn_up_exps.weight": graph.Q8_0, // one expert: ne[2] == 1
	}
	for _, p := range plans {
		if p.To != want[p.Name] {
			t.Errorf("%s: %v (%s), want %v", p.Name, p.To, p.Reason, want[p.Name])
		}
	}
}
