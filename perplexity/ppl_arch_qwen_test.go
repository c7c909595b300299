package perplexity

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// Tests against the Qwen3, Qwen3-MoE and Mixtral fixtures of testdata/arch
// (README.md there): transformers 5.17 float32 figures from
// hf_reference.json, the converter's bf16 GGUFs beside them.

// archQwenModels are the fixtures this file checks, with the forward-pass
// feature each one exercises.
var archQwenModels = []string{
	"qwen3-tiny",    // q/k norm, head_dim 48 != 128/4, tied
	"qwen3moe-tiny", // 8 experts, top-2, norm_topk_prob
	"mixtral-tiny",  // llama with 8 experts, top-2, SentencePiece, BOS
}

type archHFRef struct {
	NTokens int  `json:"n_tokens"`
	AddBOS  bool `json:"add_bos"`
	BOS     *int `json:"bos"`
	PPL128  struct {
		PPL     float64   `json:"ppl"`
		Running []float64 `json:"running"`
		Scored  int       `json:"scored_tokens"`
		Chunks  int       `json:"chunks"`
	} `json:"ppl_ctx128"`
}

func loadArchHFRef(t testing.TB, name string) *archHFRef {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "hf_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("testdata/arch/hf_reference.json: %v", err)
	}
	var m archHFRef
	if err := json.Unmarshal(r[name], &m); err != nil || m.NTokens == 0 || len(m.PPL128.Running) == 0 {
		t.Fatalf("testdata/arch/hf_reference.json: no usable entry for %s (%v)", name, err)
	}
	return &m
}

func archIDs(t testing.TB, name string) []int {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", name+".eval_token_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][]int
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m["kjv_eval.txt"]) == 0 {
		t.Fatalf("%s: no ids", name)
	}
	return m["kjv_eval.txt"]
}

// archOpen opens a fixture through formats.Open (GGUF files get their
// architecture's own keys applied, as the CLI does).
func archOpen(t testing.TB, elem ...string) *graph.Model {
	t.Helper()
	m, err := formats.Open(testref.Local(t, append([]string{"arch"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestArchQwenTokenizeKJV: the tokenizer built from the HF files gives
// transformers' ids for the whole kjv_eval.txt.
func TestArchQwenTokenizeKJV(t *testing.T) {
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range archQwenModels {
		t.Run(name, func(t *testing.T) {
			ref := loadArchHFRef(t, name)
			want := archIDs(t, name)
			v, err := tokenizer.New(archOpen(t, name).Tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			if v.AddBOS() != ref.AddBOS || (ref.AddBOS && (ref.BOS == nil || v.BOS() != *ref.BOS)) {
				t.Errorf("AddBOS %v BOS %d, transformers %v %v", v.AddBOS(), v.BOS(), ref.AddBOS, ref.BOS)
			}
			got := v.Encode(string(text), tokenizer.Options{AddSpecial: true})
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("%d ids, transformers %d; first difference at %d", len(got), len(want), i)
			}
		})
	}
}

// TestArchQwenLogits compares the logits of the first 64 positions of the
// first ctx-128 chunk with transformers' float32 forward pass, for the HF
// checkpoint and (float32 activations) the converter's bf16 GGUF.
func TestArchQwenLogits(t *testing.T) {
	for _, name := range archQwenModels {
		ref := testref.Local(t, "arch", name+".ref_logits.safetensors")
		toks, _ := readSTTensor(t, ref, "tokens")
		want, shape := readSTTensor(t, ref, "logits")
		if len(toks) != 128 || len(shape) != 2 || shape[0] != 64 {
			t.Fatalf("%s: unexpected reference shapes: %d tokens, logits %v", name, len(toks), shape)
		}
		ids := make([]int, 64)
		for i := range ids {
			ids[i] = int(toks[i])
		}
		srcs := []string{name}
		if _, err := os.Stat(testref.Local(t, "arch", name+".bf16.gguf")); err == nil || name != "mixtral-tiny" {
			srcs = append(srcs, name+".bf16.gguf")
		}
		for _, src := range srcs {
			t.Run(src, func(t *testing.T) {
				fm, err := LoadModel(archOpen(t, src))
				if err != nil {
					t.Fatal(err)
				}
				if fm.Vocab != int(shape[1]) {
					t.Fatalf("vocab %d, transformers %d", fm.Vocab, shape[1])
				}
				logits, err := newRunner(fm, 2).forward(ids, 0)
				if err != nil {
					t.Fatal(err)
				}
				var maxDiff float64
				for i, w := range want {
					maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i])-w))
				}
				t.Logf("max |logit - transformers| = %.3g", maxDiff)
				if !(maxDiff <= 1e-3) {
					t.Errorf("max logit difference %g > 1e-3", maxDiff)
				}
			})
		}
	}
}

// TestArchQwenPerplexityHF runs the llama-perplexity method on the HF
// checkpoint (ctx 128, first 8 chunks) and requires transformers' float32
// running figure within 0.01%.
func TestArchQwenPerplexityHF(t *testing.T) {
	const n, chunks = 128, 8
	for _, name := range archQwenModels {
		t.Run(name, func(t *testing.T) {
			ref := loadArchHFRef(t, name)
			bos := -1
			if ref.BOS != nil {
				bos = *ref.BOS
			}
			want := ref.PPL128.Running[chunks-1]
			res, err := EvaluateTokens(context.Background(), archOpen(t, name), archIDs(t, name), ref.AddBOS, bos,
				Options{Ctx: n, Batch: n, Chunks: chunks, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			rel := math.Abs(res.PPL-want) / want
			t.Logf("PPL %.6f, transformers %.6f (rel %.2e)", res.PPL, want, rel)
			if res.Chunks != chunks || res.TokensScored != chunks*(n-1-n/2) {
				t.Errorf("%d chunks / %d scored", res.Chunks, res.TokensScored)
			}
			if !(rel <= 1e-4) {
				t.Errorf("PPL %.6f, transformers %.6f: relative difference %.2e > 1e-4", res.PPL, want, rel)
			}
		})
	}
}

// TestArchMoELlamaPerplexity evaluates the converter's qwen3moe-tiny bf16
// GGUF with the llama.cpp emulation on all of kjv_eval.txt and requires
// llama-perplexity's figures as it printed them: the final PPL and every
// running value equal to 4 decimals, the ± to 5. Routing (a top-2 of 8
// experts per token and layer) turns any difference in the last bit of a
// router logit into a different expert, and such flips made this fixture
// differ by 3.6e-4 before the forward pass reproduced llama.cpp's CPU
// kernels bit for bit; see the package documentation.
func TestArchMoELlamaPerplexity(t *testing.T) {
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Models map[string]struct {
			GGUF map[string]struct {
				PPL printedPPL `json:"llama_perplexity_ctx128"`
			} `json:"gguf"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want := ref.Models["qwen3moe-tiny"].GGUF["bf16"].PPL
	if want.PPL == 0 || len(want.Running) == 0 {
		t.Fatal("reference.json: no llama-perplexity figure for qwen3moe-tiny bf16")
	}
	checkPrintedPPL(t, archOpen(t, "qwen3moe-tiny.bf16.gguf"), want, 5e-6)
}

// printedPPL is what llama-perplexity printed: the final estimate, its ±
// and the running values.
type printedPPL struct {
	PPL, Stderr float64
	Running     []float64
}

// checkPrintedPPL evaluates m on kjv_eval.txt (ctx 128, its tokenizer, the
// text as llama-perplexity -f reads it) and requires want's figures as
// printed: the PPL and every running value to 5e-5, the ± to stderrTol.
func checkPrintedPPL(t *testing.T, m *graph.Model, want printedPPL, stderrTol float64) {
	t.Helper()
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testref.Local(t, "kjv_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(text), "\n") // llama-perplexity -f drops one
	res, err := Evaluate(context.Background(), m, tok, s, Options{Ctx: 128, Batch: 128, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PPL %.6f ± %.6f, llama-perplexity %.4f ± %.5f", res.PPL, res.PPLStderr, want.PPL, want.Stderr)
	if math.Abs(res.PPL-want.PPL) > 5e-5 || math.Abs(res.PPLStderr-want.Stderr) > stderrTol {
		t.Errorf("PPL %.6f ± %.6f, llama-perplexity printed %.4f ± %.5f", res.PPL, res.PPLStderr, want.PPL, want.Stderr)
	}
	if len(res.Running) != len(want.Running) {
		t.Fatalf("%d running values, llama-perplexity printed %d", len(res.Running), len(want.Running))
	}
	for i, w := range want.Running {
		if math.Abs(res.Running[i]-w) > 5e-5 {
			t.Errorf("running value %d: %.6f, llama-perplexity printed %.4f", i+1, res.Running[i], w)
		}
	}
}
