package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// archFixtures are testdata/arch's checkpoints (see its README): one per
// architecture added by the architectures issue.
var archFixtures = []struct{ name, arch string }{
	{"qwen3-tiny", "qwen3"},
	{"qwen3moe-tiny", "qwen3moe"},
	{"mixtral-tiny", "llama"},
	{"gemma3-tiny", "gemma3"},
	{"phi3-tiny", "phi3"},
}

// archPPLTolerance is the relative difference allowed between quantbridge's
// perplexity of a GGUF and llama-perplexity's. For the llama-family,
// Qwen3, Gemma 3, Phi-3 and routed-experts fixtures the forward pass reproduces
// llama.cpp's CPU kernels bit for bit for every type of the matrix (see
// package perplexity), so the figures agree to the 4 decimals
// llama-perplexity prints; without that, routed experts amplified float
// summation order into differences of up to 1e-3 (a last-bit change of a
// router logit picks another expert).
func archPPLTolerance(fixture string) float64 {
	switch fixture {
	case "qwen3-tiny", "qwen3moe-tiny", "mixtral-tiny", "gemma3-tiny", "phi3-tiny":
		return 1e-5
	}
	return 1e-3
}

// archRef is the part of testdata/arch/reference.json the matrix uses.
type archRef struct {
	NTokens     int  `json:"n_tokens"`
	AddBOS      bool `json:"add_bos"`
	Transformer struct {
		Ctx128 struct {
			PPL     float64   `json:"ppl"`
			Running []float64 `json:"running"`
		} `json:"ctx128"`
	} `json:"transformers_fp32"`
	GGUF map[string]struct {
		SHA256  string `json:"sha256"`
		Size    int64  `json:"size"`
		Tensors []struct {
			Name   string  `json:"name"`
			Type   string  `json:"type"`
			Shape  []int64 `json:"shape"`
			SHA256 string  `json:"sha256"`
		} `json:"tensors"`
		PPL struct {
			PPL     float64   `json:"ppl"`
			Running []float64 `json:"running"`
		} `json:"llama_perplexity_ctx128"`
	} `json:"gguf"`
}

func loadArchRef(t *testing.T, name string) archRef {
	t.Helper()
	b, err := os.ReadFile(testref.Local(t, "arch", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all struct {
		Models map[string]json.RawMessage `json:"models"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	raw, ok := all.Models[name]
	if !ok {
		t.Fatalf("reference.json has no %s", name)
	}
	var r archRef
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tensorDigests returns "name type shape sha256" for every tensor of a
// GGUF file, in file order.
func tensorDigests(t *testing.T, path string) []string {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	for i, ti := range f.Tensors {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f.TensorReader(i), 0, ti.Size)); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %v %v %x", ti.Name, ti.Type, ti.Shape, h.Sum(nil)))
	}
	return out
}

// digestDiff compares two tensor digest lists as sets (a round trip keeps
// every tensor's bytes; the order follows the input file) and describes
// the first difference.
func digestDiff(a, b []string) string {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return "missing " + b[i]
		case i >= len(b):
			return "extra " + a[i]
		case a[i] != b[i]:
			return a[i] + " vs " + b[i]
		}
	}
	return ""
}

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

// TestArchitectureMatrix runs every new architecture's checkpoint through
// the commands as a user would and compares with what the reference tools
// made of it (testdata/arch/reference.json):
//   - convert HF → GGUF BF16: every tensor's name, type, shape and bytes
//     equal convert_hf_to_gguf.py's, and the whole file is identical;
//   - convert that GGUF → Q4_K_M (and, with -tags refdata, every
//     llama-quantize type recorded): the whole file identical to
//     llama-quantize's;
//   - HF → MLX (bf16) → GGUF BF16 and GGUF → HF → GGUF BF16 give the
//     same tensors again, byte for byte (names, layouts and transforms
//     invert exactly; the tensor order follows the input's);
//   - ppl on the HF checkpoint = transformers fp32 (0.01%); on the BF16
//     and quantized GGUFs = llama-perplexity (0.1%), whole text;
//   - ppl on the MLX forms: bf16 = transformers (0.1%), 4-bit g64 within
//     5% of it;
//   - tokenize on the HF, GGUF and MLX forms: the ids of kjv_eval.txt
//     equal HF's tokenizer's.
func TestArchitectureMatrix(t *testing.T) {
	text := testref.Local(t, "kjv_eval.txt")
	for _, fx := range archFixtures {
		t.Run(fx.name, func(t *testing.T) {
			ref := loadArchRef(t, fx.name)
			hfDir := testref.Local(t, "arch", fx.name)
			dir := t.TempDir()
			bf16 := filepath.Join(dir, fx.name+".bf16.gguf")
			if _, err := runApp(t, "convert", "--type", "BF16", "-j", "2", hfDir, bf16); err != nil {
				t.Fatalf("HF → GGUF: %v", err)
			}
			want := ref.GGUF["bf16"]
			got := tensorDigests(t, bf16)
			if len(got) != len(want.Tensors) {
				t.Errorf("HF → GGUF: %d tensors, converter wrote %d", len(got), len(want.Tensors))
			}
			for i := range min(len(got), len(want.Tensors)) {
				w := want.Tensors[i]
				if ws := fmt.Sprintf("%s %s %v %s", w.Name, w.Type, w.Shape, w.SHA256); got[i] != ws {
					t.Errorf("HF → GGUF tensor %d: %s, converter %s", i, got[i], ws)
				}
			}
			if s := fileSHA256(t, bf16); s != want.SHA256 {
				t.Errorf("HF → GGUF BF16 file sha256 %s, converter %s", s, want.SHA256)
			}

			types := []string{"Q4_K_M"}
			if refdataMatrix {
				types = []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K", "Q4_0"}
			}
			quant := map[string]string{}
			for _, typ := range types {
				out := filepath.Join(dir, fx.name+"."+typ+".gguf")
				if _, err := runApp(t, "convert", "--type", typ, "-j", "2", bf16, out); err != nil {
					t.Errorf("GGUF → %s: %v", typ, err)
					continue
				}
				quant[typ] = out
				if s := fileSHA256(t, out); s != ref.GGUF[typ].SHA256 {
					t.Errorf("GGUF → %s: file sha256 %s, llama-quantize %s", typ, s, ref.GGUF[typ].SHA256)
				}
			}

			// Round trips through MLX and HF come back to the same GGUF.
			mlxDir := filepath.Join(dir, "mlx")
			if _, err := runApp(t, "convert", "--dtype", "bf16", "-j", "2", hfDir, mlxDir); err != nil {
				t.Errorf("HF → MLX: %v", err)
			} else {
				back := filepath.Join(dir, "from-mlx.gguf")
				if _, err := runApp(t, "convert", "--type", "BF16", "-j", "2", mlxDir, back); err != nil {
					t.Errorf("MLX → GGUF: %v", err)
				} else if d := digestDiff(tensorDigests(t, back), tensorDigests(t, bf16)); d != "" {
					t.Errorf("HF → MLX → GGUF tensors differ from HF → GGUF: %s", d)
				}
			}
			hfBack := filepath.Join(dir, "hf")
			if _, err := runApp(t, "convert", "--to", "hf", "-j", "2", bf16, hfBack); err != nil {
				t.Errorf("GGUF → HF: %v", err)
			} else {
				back := filepath.Join(dir, "from-hf.gguf")
				if _, err := runApp(t, "convert", "--type", "BF16", "-j", "2", hfBack, back); err != nil {
					t.Errorf("GGUF → HF → GGUF: %v", err)
				} else if d := digestDiff(tensorDigests(t, back), tensorDigests(t, bf16)); d != "" {
					t.Errorf("GGUF → HF → GGUF tensors differ from the converter's: %s", d)
				}
			}

			// Perplexity of the whole text (50 chunks of 128 tokens): the
			// running values of the first chunks of quantized files are not
			// within 0.1% of llama-perplexity's (its rounding of activations
			// weighs more on few tokens), the final ones are.
			ppl := func(model string) (float64, bool) {
				out, err := runApp(t, "ppl", "--json", "-c", "128", "-b", "128", "-t", "2", "-f", text, model)
				if err != nil {
					t.Errorf("ppl %s: %v", filepath.Base(model), err)
					return 0, false
				}
				var r pplJSON
				if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
					t.Fatalf("ppl --json: %v\n%s", err, out)
				}
				return r.PPL, true
			}
			if got, ok := ppl(hfDir); ok {
				w := ref.Transformer.Ctx128.PPL
				t.Logf("ppl HF %.6f, transformers fp32 %.6f (rel %.1e)", got, w, relDiff(got, w))
				if relDiff(got, w) > 1e-4 {
					t.Errorf("ppl HF %.6f, transformers fp32 %.6f (rel %.2e)", got, w, relDiff(got, w))
				}
			}
			// MLX: the bf16 directory holds the HF values (mlx-lm's own
			// arithmetic may round differently, e.g. Gemma's embedding
			// scale in bf16: 0.1%); 4-bit g64 stays within 5% of them.
			mlx4 := filepath.Join(dir, "mlx4")
			if _, err := runApp(t, "convert", "--bits", "4", "--group-size", "64", "-j", "2", hfDir, mlx4); err != nil {
				t.Errorf("HF → MLX 4-bit: %v", err)
			}
			w := ref.Transformer.Ctx128.PPL
			for _, c := range []struct {
				dir string
				tol float64
			}{{mlxDir, 1e-3}, {mlx4, 0.05}} {
				if got, ok := ppl(c.dir); ok {
					t.Logf("ppl MLX %s %.6f, transformers fp32 %.6f (rel %.1e)", filepath.Base(c.dir), got, w, relDiff(got, w))
					if relDiff(got, w) > c.tol {
						t.Errorf("ppl MLX %s %.6f, transformers fp32 %.6f (rel %.2e > %g)", filepath.Base(c.dir), got, w, relDiff(got, w), c.tol)
					}
				}
			}
			files := map[string]string{"bf16": bf16}
			for k, v := range quant {
				files[k] = v
			}
			for typ, f := range files {
				r := ref.GGUF[typ].PPL
				tol := archPPLTolerance(fx.name)
				if got, ok := ppl(f); ok {
					w := r.PPL
					t.Logf("ppl %s %.4f, llama-perplexity %.4f (rel %.1e)", typ, got, w, relDiff(got, w))
					if relDiff(got, w) > tol {
						t.Errorf("ppl %s %.4f, llama-perplexity %.4f (rel %.2e)", typ, got, w, relDiff(got, w))
					}
				}
			}

			// Token ids of the whole text, as tokenize reads it (verbatim).
			var ids map[string][]int
			b, err := os.ReadFile(testref.Local(t, "arch", fx.name+".eval_token_ids.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ids); err != nil {
				t.Fatal(err)
			}
			for _, model := range []string{hfDir, bf16, mlxDir} {
				out, err := runApp(t, "tokenize", "--json", model, text)
				if err != nil {
					t.Errorf("tokenize %s: %v", filepath.Base(model), err)
					continue
				}
				var got []int
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("tokenize --json: %v", err)
				}
				if fmt.Sprint(got) != fmt.Sprint(ids["kjv_eval.txt"]) {
					t.Errorf("tokenize %s: %d ids, HF tokenizer %d (or they differ)", filepath.Base(model), len(got), len(ids["kjv_eval.txt"]))
				}
			}
		})
	}
}
