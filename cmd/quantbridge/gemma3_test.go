package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// Gemma 3 through the commands on all three forms: the HF checkpoint,
// the converter's GGUF and an MLX conversion made here. inspect shows
// the sliding-window layers; tokenize gives transformers' ids of
// kjv_eval.txt (llama-tokenize's too: see testdata/arch/README.md) on each.
func TestGemma3Commands(t *testing.T) {
	hfDir := testref.Local(t, "arch", "gemma3-tiny")
	gguf := testref.Local(t, "arch", "gemma3-tiny.bf16.gguf")
	mlxDir := filepath.Join(t.TempDir(), "mlx")
	if out, err := runApp(t, "convert", "-t", "INT8", hfDir, mlxDir); err != nil {
		t.Fatalf("convert: %v\n%s", err, out)
	}
	b, err := os.ReadFile(testref.Local(t, "arch", "gemma3-tiny.eval_token_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string][]int
	if err := json.Unmarshal(b, &ref); err != nil || len(ref["kjv_eval.txt"]) == 0 {
		t.Fatalf("eval ids: %v", err)
	}
	want, _ := json.Marshal(ref["kjv_eval.txt"])
	for _, m := range []string{hfDir, gguf, mlxDir} {
		out, err := runApp(t, "inspect", m)
		if err != nil {
			t.Fatalf("inspect %s: %v\n%s", m, err, out)
		}
		if !strings.Contains(out, "architecture  gemma3") || !strings.Contains(out, "sliding window 32 on 5 of 6 layers (rope base 10000)") {
			t.Errorf("inspect %s:\n%s", m, out)
		}
		out, err = runApp(t, "tokenize", "--json", "--no-escape", m, testref.Local(t, "kjv_eval.txt"))
		if err != nil {
			t.Fatalf("tokenize %s: %v", m, err)
		}
		if strings.TrimSpace(out) != string(want) {
			t.Errorf("tokenize %s: ids differ from transformers' (%d bytes vs %d)", m, len(out), len(want))
		}
	}
}
