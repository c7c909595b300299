//go:build refdata

package perplexity

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestMXFP4MoELlamaPerplexity evaluates llama-quantize's MXFP4_MOE
// quantization of qwen3moe-tiny (expert tensors MXFP4, the rest Q8_0;
// ../shared/testdata/imatrix/, made by scripts/mxfp4-reference.sh) on all
// of kjv_eval.txt and requires llama-perplexity's figures as it printed
// them (testdata/arch/mxfp4-reference.json): the final PPL and every
// running value to 4 decimals, the ± to 1e-5 (it is 1.157075, on the
// rounding boundary of the printed 1.15708); the issue asks for 0.1%.
func TestMXFP4MoELlamaPerplexity(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "mxfp4-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Model struct {
			PPL printedPPL `json:"llama_perplexity_ctx128"`
		} `json:"qwen3moe-tiny"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want := ref.Model.PPL
	if want.PPL == 0 || len(want.Running) == 0 {
		t.Fatal("mxfp4-reference.json: no llama-perplexity figure for qwen3moe-tiny")
	}
	m, err := formats.Open(testref.Imatrix(t, "qwen3moe-tiny.MXFP4_MOE.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkPrintedPPL(t, m, want, 1e-5)
}
