package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// torchRef is testdata/torch_rope_freqs.json, written by
// scripts/torch-rope-freqs.py with PyTorch 2.11 on an AVX-512 x86 CPU.
type torchRef struct {
	Torch         string
	CPUCapability string `json:"cpu_capability"`
	Rope          []struct {
		Base, Factor, Low, High, Orig float64
		Dim                           int
		Factors                       []string
	}
	Pow []struct {
		Base float64
		Dim  int
		Pow  []string
	}
}

func hexF32(t *testing.T, s string) float32 {
	t.Helper()
	u, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return math.Float32frombits(uint32(u))
}

func loadTorchRef(t *testing.T) *torchRef {
	b, err := os.ReadFile("testdata/torch_rope_freqs.json")
	if err != nil {
		t.Fatal(err)
	}
	var r torchRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Rope) == 0 || len(r.Pow) == 0 {
		t.Fatal("empty reference")
	}
	return &r
}

// TestRopeFreqsTorch compares RopeFreqs with the converter's statements run
// in PyTorch for 75 configurations (Llama 3.1/3.2 and random ones with many
// smoothed entries): every float32 must be bit-identical.
func TestRopeFreqsTorch(t *testing.T) {
	ref := loadTorchRef(t)
	smooth := 0
	for _, c := range ref.Rope {
		r := Llama3Rope{Base: c.Base, Dim: c.Dim, Factor: c.Factor, LowFreqFactor: c.Low, HighFreqFactor: c.High, OriginalCtx: c.Orig}
		got, err := r.RopeFreqs()
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if len(got) != len(c.Factors) {
			t.Fatalf("%+v: %d factors, want %d", r, len(got), len(c.Factors))
		}
		for i, h := range c.Factors {
			want := hexF32(t, h)
			if want != 1 && want != float32(c.Factor) {
				smooth++
			}
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Errorf("%+v: factor %d = %v (%08x), torch %v (%s)", r, i, got[i], math.Float32bits(got[i]), want, h)
			}
		}
	}
	if smooth < 100 {
		t.Errorf("only %d smoothed entries compared", smooth)
	}
	t.Logf("%d configurations, %d smoothed entries, torch %s %s", len(ref.Rope), smooth, ref.Torch, ref.CPUCapability)
}

// TestSleefPowfTorch compares the SLEEF powf port (and the scalar tail
// rule) with torch's `base ** arange(0, dim, 2)/dim` for 120 bases.
func TestSleefPowfTorch(t *testing.T) {
	ref := loadTorchRef(t)
	n, differ := 0, 0
	for _, c := range ref.Pow {
		m := len(c.Pow)
		vec := m - m%(2*torchPowLanes)
		for i, h := range c.Pow {
			x := float32(2*i) / float32(c.Dim)
			var got float32
			if i < vec {
				got = sleefPowf(float32(c.Base), x)
			} else {
				got = glibcPowf(float32(c.Base), x)
			}
			want := hexF32(t, h)
			n++
			if got != want {
				t.Errorf("base %v dim %d i %d: %v, torch %v", c.Base, c.Dim, i, got, want)
			}
			if cr := float32(math.Pow(float64(float32(c.Base)), float64(x))); cr != want {
				differ++
			}
		}
	}
	// The point of the port: SLEEF is not correctly rounded.
	if differ == 0 {
		t.Errorf("no value where SLEEF differs from a correctly rounded pow: the test proves nothing")
	}
	t.Logf("%d values, %d where SLEEF's result is not the correctly rounded one", n, differ)
}

func TestFMA32(t *testing.T) {
	for _, c := range []struct{ a, b, c float32 }{
		{1 + 1.0/(1<<23), 1 - 1.0/(1<<23), -1},
		{3, 1.0 / 3, -1},
		{1 << 12, 1 << 12, 1.0 / (1 << 30)},
		{0.1, 10, -1},
		{-2.5, 4e-20, 1e-19},
	} {
		// big enough precision: float64 of the exact value, then float32, is
		// exact unless a double rounding hits; compare against math.FMA on
		// float64 rounded once more only where that is safe.
		want := float32(math.FMA(float64(c.a), float64(c.b), float64(c.c)))
		if got := fma32(c.a, c.b, c.c); got != want {
			t.Errorf("fma32(%v, %v, %v) = %v, want %v", c.a, c.b, c.c, got, want)
		}
	}
	// A double-rounding case: a*b+c exactly = 1 + 2^-24 + 2^-60 must round
	// up to 1+2^-23, where rounding to float64 first lands on the tie 1+2^-24.
	a, b := float32(1+1.0/(1<<12)), float32(1+1.0/(1<<12)) // a*b = 1 + 2^-11 + 2^-24
	c := float32(-1.0 / (1 << 11))
	if got := fma32(a, b, c); got != 1 {
		// exact: 1 + 2^-24 → tie → even → 1
		t.Errorf("fma32 tie = %v, want 1", got)
	}
}

// TestInferLlama3Rope recovers the parameters of every torch reference
// configuration with low_freq_factor 1 from its factors alone.
func TestInferLlama3Rope(t *testing.T) {
	ref := loadTorchRef(t)
	n := 0
	for _, c := range ref.Rope {
		if c.Low != 1 {
			continue
		}
		freqs := make([]float32, len(c.Factors))
		for i, h := range c.Factors {
			freqs[i] = hexF32(t, h)
		}
		r, exact, err := InferLlama3Rope(freqs, c.Base, c.Dim)
		if err != nil {
			t.Fatal(err)
		}
		if !exact {
			t.Errorf("%+v: inferred %+v is not exact", c, r)
			continue
		}
		got, _ := r.RopeFreqs()
		for i := range got {
			if got[i] != freqs[i] {
				t.Fatalf("%+v: exact but factor %d differs", c, i)
			}
		}
		n++
	}
	t.Logf("%d configurations recovered exactly", n)
}

// TestLlama3RopeRoundTrip: the converter's GGUF of a llama3-scaled model →
// HF (and MLX) restores rope_scaling in config.json, and that checkpoint
// converts back to the converter's GGUF byte for byte (rope_freqs.weight
// recomputed; tensors compared by name, llama.* metadata exactly).
func TestLlama3RopeRoundTrip(t *testing.T) {
	ref := testref.Local(t, "unseen", "llama3-bpe-tied.bf16.gguf")
	for to, target := range map[string]Target{"hf": HFTarget{}, "mlx": MLXTarget{}} {
		t.Run(to, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "model")
			if _, err := Convert(context.Background(), ref, out, Options{Target: target, Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			b, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			rs, _ := cfg["rope_scaling"].(map[string]any)
			wantRS := map[string]any{"rope_type": "llama3", "type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
				"high_freq_factor": 4.0, "original_max_position_embeddings": 64.0}
			if !reflect.DeepEqual(rs, wantRS) {
				t.Errorf("rope_scaling = %v, want %v", rs, wantRS)
			}
			if _, err := os.Stat(filepath.Join(out, "rope_freqs.safetensors")); err == nil {
				t.Errorf("rope_freqs written as a file")
			}
			back := filepath.Join(dir, "back.gguf")
			if _, err := Convert(context.Background(), out, back, Options{Jobs: 2}); err != nil {
				t.Fatal(err)
			}
			gf, err := gguf.Open(back)
			if err != nil {
				t.Fatal(err)
			}
			defer gf.Close()
			if i := gf.TensorIndex(ropeFreqsName); i != 0 {
				t.Fatalf("rope_freqs.weight at index %d, want 0 (the converter yields it first)", i)
			}
			wf, err := gguf.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer wf.Close()
			if len(gf.Tensors) != len(wf.Tensors) {
				t.Fatalf("%d tensors, want %d", len(gf.Tensors), len(wf.Tensors))
			}
			// The HF writer orders tensors its own way, so the GGUF's order
			// after rope_freqs follows it: compare by name.
			for k, wt := range wf.Tensors {
				g := gf.TensorIndex(wt.Name)
				if g < 0 {
					t.Errorf("%s missing", wt.Name)
					continue
				}
				a, _ := io.ReadAll(gf.TensorReader(g))
				b, _ := io.ReadAll(wf.TensorReader(k))
				if gf.Tensors[g].Type != wt.Type || !bytes.Equal(a, b) {
					t.Errorf("tensor %s differs", wt.Name)
				}
			}
			wkv := map[string]any{}
			for _, kv := range wf.KV {
				wkv[kv.Key] = kv.Value
			}
			for _, kv := range gf.KV {
				if w, ok := wkv[kv.Key]; !ok || !kvEqual(kv.Value, w) {
					if strings.HasPrefix(kv.Key, "llama.") {
						t.Errorf("KV %s = %s, converter %s", kv.Key, shortVal(kv.Value), shortVal(w))
						continue
					}
					t.Logf("KV %s = %s, converter %s", kv.Key, shortVal(kv.Value), shortVal(w))
				}
			}
		})
	}
}
