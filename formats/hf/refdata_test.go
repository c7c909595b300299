//go:build refdata

package hf

import (
	"math"
	"reflect"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestKJVAgainstConverter compares what this package reads from the
// kjv-llama HF checkpoint with what llama.cpp's convert_hf_to_gguf.py
// (@34af94cd) wrote for it into kjv-llama.bf16.gguf: the whole vocabulary
// field by field, and the hyperparameters.
func TestKJVAgainstConverter(t *testing.T) {
	ref, err := gguf.ReadModel(testref.Shared(t, "llama.cpp", "kjv-llama.bf16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	m, err := ReadDir(testref.Shared(t, "kjv-llama"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	compareTokenizers(t, m.Tokenizer, ref.Tokenizer)

	if m.Arch != ref.Arch {
		t.Errorf("arch %q, GGUF %q", m.Arch, ref.Arch)
	}
	got, want := m.Params, ref.Params
	if math.Abs(got.RMSEps-want.RMSEps) > 1e-12 { // GGUF stores eps as float32
		t.Errorf("rms eps %v, GGUF %v", got.RMSEps, want.RMSEps)
	}
	got.RMSEps, want.RMSEps = 0, 0
	got.TorchDType = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("params:\n got %+v\nwant %+v", got, want)
	}
	t.Logf("%d tokens, params %+v", len(m.Tokenizer.Tokens), m.Params)
}
