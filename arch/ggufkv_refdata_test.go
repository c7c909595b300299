//go:build refdata

package arch_test

import (
	"testing"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// ModelKV of the kjv-llama HF checkpoint equals, key for key, type for
// type and value for value, the metadata llama.cpp's converter wrote into
// kjv-llama.bf16.gguf.
func TestModelKVMatchesConverter(t *testing.T) {
	ref, err := gguf.Open(testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	m, err := hf.ReadDir(testref.Shared(t, "kjv-llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	kv, err := arch.ModelKV(m, 32) // MOSTLY_BF16
	if err != nil {
		t.Fatal(err)
	}
	compareKV(t, kv, ref.KV)
}
