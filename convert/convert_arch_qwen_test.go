package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// archQwenModels are the testdata/arch fixtures of Qwen3, Qwen3-MoE and
// Mixtral (README.md there) whose HF → GGUF conversion must equal
// convert_hf_to_gguf.py's bf16 file byte for byte.
var archQwenModels = []string{"qwen3-tiny", "qwen3moe-tiny"}

// TestArchQwenHFToGGUFBF16 converts each HF checkpoint and requires the
// bytes of convert_hf_to_gguf.py --outtype bf16 (metadata and tensors,
// stacked 3-D expert tensors included); on a difference it names the
// first differing KVs and tensors.
func TestArchQwenHFToGGUFBF16(t *testing.T) {
	dir := t.TempDir()
	for _, name := range archQwenModels {
		t.Run(name, func(t *testing.T) {
			ref := testref.Local(t, "arch", name+".bf16.gguf")
			out := filepath.Join(dir, name+".bf16.gguf")
			unseenConvert(t, testref.Local(t, "arch", name), out, "")
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, want) {
				return
			}
			gf, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer gf.Close()
			wf, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer wf.Close()
			for i := 0; i < len(gf.KV) || i < len(wf.KV); i++ {
				var gk, wk string
				var gv, wv any
				if i < len(gf.KV) {
					gk, gv = gf.KV[i].Key, gf.KV[i].Value
				}
				if i < len(wf.KV) {
					wk, wv = wf.KV[i].Key, wf.KV[i].Value
				}
				if gk != wk || !kvEqual(gv, wv) {
					t.Errorf("KV %d: %q = %s, converter %q = %s", i, gk, shortVal(gv), wk, shortVal(wv))
				}
			}
			sum, size := unseenSHA256(t, ref)
			compareUnseen(t, out, unseenFile{SHA256: sum, Size: size, Tensors: unseenTensors(t, ref)})
		})
	}
}
