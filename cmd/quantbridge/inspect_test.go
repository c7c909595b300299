package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// The documented --json shape: format, architecture, params, tokenizer,
// tensors [{name, shape, type, bytes}], total_bytes, bits_per_weight.
func TestInspectJSON(t *testing.T) {
	out, err := runApp(t, "inspect", "--json", testref.Local(t, "real", "gguf", "stories260K-q8_0-ggufv2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"format", "architecture", "params", "tokenizer", "tensors", "total_bytes", "bits_per_weight", "total_parameters"} {
		if _, ok := v[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	var info struct {
		Format, Architecture string
		Tensors              []struct {
			Name  string
			Shape []int64
			Type  string
			Bytes int64
		}
		TotalBytes int64 `json:"total_bytes"`
	}
	json.Unmarshal([]byte(out), &info)
	if info.Format != "gguf" || info.Architecture != "llama" || len(info.Tensors) != 48 {
		t.Fatalf("%s %s %d tensors", info.Format, info.Architecture, len(info.Tensors))
	}
	first := info.Tensors[0]
	if first.Name == "" || len(first.Shape) == 0 || first.Type == "" || first.Bytes <= 0 {
		t.Errorf("tensor row %+v", first)
	}
	out, err = runApp(t, "inspect", testref.Local(t, "kjv-llama"))
	if err != nil || !strings.Contains(out, "57 tensors, 6819072 parameters") || !strings.Contains(out, "SentencePiece, 4096 tokens") {
		t.Errorf("text output: %v\n%s", err, out)
	}
	if _, err := runApp(t, "inspect", testref.Local(t, "kjv_eval.txt")); err == nil || !strings.Contains(err.Error(), "kjv_eval.txt") {
		t.Errorf("inspecting a text file: %v", err)
	}
}
