//go:build refdata

package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// Every model in ../shared/testdata opens and inspects consistently: the
// tensor table adds up, parameters match the architecture's shapes, and
// quantized files are smaller than their bf16 source.
func TestInspectSharedTestdata(t *testing.T) {
	root := testref.Shared(t)
	var paths []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		name := fi.Name()
		switch {
		case !fi.IsDir() && strings.HasSuffix(name, ".gguf"):
			paths = append(paths, p)
		case !fi.IsDir() && strings.HasSuffix(name, ".safetensors") && !strings.HasPrefix(name, "model"):
			paths = append(paths, p) // bare files; model*.safetensors are read with their directory
		case fi.IsDir():
			if _, err := os.Stat(filepath.Join(p, "config.json")); err == nil {
				paths = append(paths, p)
			}
		}
		return nil
	})
	if len(paths) < 30 {
		t.Fatalf("found only %d models under %s", len(paths), root)
	}
	kjvParams := int64(6819072)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		m, err := Open(p)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		info := Inspect(m)
		m.Close()
		var sum int64
		for _, ti := range info.Tensors {
			if ti.Bytes <= 0 && len(ti.Shape) > 0 && ti.Shape[0] != 0 {
				t.Errorf("%s: tensor %s has %d bytes", rel, ti.Name, ti.Bytes)
			}
			sum += ti.Bytes
		}
		if sum != info.TotalBytes {
			t.Errorf("%s: total %d != sum %d", rel, info.TotalBytes, sum)
		}
		if strings.Contains(rel, "kjv-llama") && !strings.Contains(rel, "dequant_check") && !strings.Contains(rel, "ref_logits") {
			if info.Architecture != "llama" || info.Parameters != kjvParams || info.Params.Layers != 6 || info.Params.HeadDim != 32 ||
				info.Params.KVHeads != 4 || info.Params.VocabSize != 4096 || info.Tokenizer == nil || info.Tokenizer.Tokens != 4096 {
				t.Errorf("%s: %s %d params %+v tokenizer %+v", rel, info.Architecture, info.Parameters, info.Params, info.Tokenizer)
			}
			// quantized kjv files are smaller than bf16 and in the expected bpw range
			if strings.HasSuffix(rel, ".gguf") && !strings.Contains(rel, "bf16") && (info.BitsPerWeight < 2.5 || info.BitsPerWeight > 9) {
				t.Errorf("%s: %.3f bits per weight", rel, info.BitsPerWeight)
			}
		}
		t.Logf("%-60s %-11s %-6s %9d params %6.3f bpw", rel, info.Format, info.Architecture, info.Parameters, info.BitsPerWeight)
	}
}
