package perplexity

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// loadDir reads an HF or MLX checkpoint directory.
func loadDir(tb testing.TB, dir string, format graph.Format) *graph.Model {
	tb.Helper()
	var m *graph.Model
	var err error
	if format == graph.FormatMLX {
		m, err = mlx.ReadDir(dir)
	} else {
		m, err = hf.ReadDir(dir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func loadKJV(tb testing.TB) *graph.Model {
	return loadDir(tb, testref.Local(tb, "kjv-llama"), graph.FormatHF)
}

func loadGGUF(tb testing.TB, path string) *graph.Model {
	tb.Helper()
	m, err := gguf.ReadModel(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// kjvTokens returns the reference token ids of kjv_eval.txt (BOS first).
func kjvTokens(tb testing.TB) []int {
	tb.Helper()
	b, err := os.ReadFile(testref.Local(tb, "kjv-llama.eval_token_ids.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string][]int
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	ids := m["kjv_eval.txt"]
	if len(ids) != 6049 {
		tb.Fatalf("kjv_eval.txt: %d reference tokens, want 6049", len(ids))
	}
	return ids
}

type transformersFigure struct {
	PPL    float64 `json:"ppl"`
	Chunks int     `json:"chunks"`
	Scored int     `json:"scored"`
}

type reference struct {
	TransformersFP32 struct {
		Ctx128 transformersFigure `json:"ctx128"`
		Ctx256 transformersFigure `json:"ctx256"`
	} `json:"transformers_fp32"`
	LlamaPerplexity map[string]struct {
		PPL     float64   `json:"ppl"`
		Stderr  float64   `json:"stderr"`
		Running []float64 `json:"running"`
	} `json:"llama_perplexity_ctx128"`
	MLXOracle map[string]any `json:"mlx_oracle_transformers_fp32_ctx128"`
}

func loadReference(tb testing.TB, path string) *reference {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	return &r
}

// readF32Tensor reads an F32 or I32 tensor of a safetensors file as float64.
func readSTTensor(tb testing.TB, path, name string) ([]float64, []int64) {
	tb.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	i := f.Index(name)
	if i < 0 {
		tb.Fatalf("%s: no tensor %s", path, name)
	}
	ti := f.Tensors[i]
	b, err := graph.ReadAll(f.Section(i))
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]float64, ti.Elements())
	for k := range out {
		u := binary.LittleEndian.Uint32(b[4*k:])
		switch ti.DType {
		case graph.F32:
			out[k] = float64(math.Float32frombits(u))
		case graph.I32:
			out[k] = float64(int32(u))
		default:
			tb.Fatalf("%s: %s has dtype %v", path, name, ti.DType)
		}
	}
	return out, ti.Shape
}
