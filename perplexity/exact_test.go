package perplexity

import (
	"math"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
)

// The values below were computed on the reference machine (x86-64, glibc
// 2.36, gcc 12.2): glibc's expf, sinf and cosf, and ggml_v_expf compiled
// with -mavx512f. Each libm case is one where the correctly rounded result
// (float32 of the float64 function) differs from glibc's.

func TestLibmMatchesGlibc(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func(float32) float32
		x, y float32
	}{
		{"expf", expf32, -0x1.abd244p+0, 0x1.811392p-3},
		{"expf", expf32, -0x1.7a8e5cp+4, 0x1.d2a5a2p-35},
		{"expf", expf32, -0x1.fb31a4p-8, 0x1.fc0d88p-1},
		{"expf", expf32, -0x1.0c1a6p+4, 0x1.c5b11p-25},
		{"expf", expf32, -0x1.9b2c32p+2, 0x1.a8fea8p-10},
		{"sinf", sinf32, 0x1.28c978p+4, -0x1.2ef95p-2},
		{"sinf", sinf32, 0x1.ac3b6ep+6, 0x1.ee8afap-3}, // |x| >= 120: the large-argument reduction
		{"sinf", sinf32, 0x1.0aa426p-1, 0x1.fd805ep-2},
		{"sinf", sinf32, 34, 0x1.0ee3ecp-1}, // rope angle of position 34, first pair
		{"cosf", cosf32, 0x1.a2fa8cp+5, -0x1.058134p-1},
		{"cosf", cosf32, 0x1.0f762ep+4, -0x1.3abap-2},
		{"cosf", cosf32, 0x1.35a9b8p+0, 0x1.69dae2p-2},
		{"cosf", cosf32, 0x1.29d77cp+1, -0x1.5f465ep-1},
	} {
		if got := c.f(c.x); got != c.y {
			t.Errorf("%s(%x) = %x, glibc %x", c.name, c.x, got, c.y)
		}
	}
}

// TestLogSoftmaxGlibcExpf: llama-perplexity's log_softmax sums glibc's
// expf of each logit less the maximum; on logits whose terms are the
// cases above where glibc's expf is not the correctly rounded exponential,
// logSoftmax must sum glibc's values.
func TestLogSoftmaxGlibcExpf(t *testing.T) {
	logits := []float32{0.5, 0.5 - 0x1.abd244p+0, 0.5 - 0x1.fb31a4p-8, 0.5 - 0x1.9b2c32p+2}
	glibc := []float32{1, 0x1.811392p-3, 0x1.fc0d88p-1, 0x1.a8fea8p-10}
	for i, v := range logits { // the differences are exact
		if float64(v-0.5) != float64(v)-0.5 {
			t.Fatalf("logit %d: %x - 0.5 is not exact", i, v)
		}
	}
	var sum, rounded float64
	for _, e := range glibc {
		sum += float64(e)
	}
	for _, v := range logits {
		rounded += float64(float32(math.Exp(float64(v - 0.5))))
	}
	if sum == rounded {
		t.Fatal("the cases do not tell glibc's expf from the correctly rounded exponential")
	}
	for tok := range logits {
		want := float64(logits[tok]-0.5) - math.Log(sum)
		if got := logSoftmax(logits, tok); got != want {
			t.Errorf("token %d: log-softmax %v, with glibc's expf %v", tok, got, want)
		}
	}
}

func TestVexpfMatchesGgml(t *testing.T) {
	for _, c := range [][2]float32{
		{-0x1p-1, 0x1.368b2ep-1},
		{-0x1.a66666p+1, 0x1.2e259ap-5},
		{-0x1.41999ap+4, 0x1.005326p-29},
		{-0x1.5ep+6, 0x1.b2cafp-127},
		{-0x1.9p+6, 0x1.bp-145}, // subnormal result
		{-0x1.0624dep-10, 0x1.ff7cfep-1},
		{0x1.666666p-1, 0x1.01c2a4p+1},
		{0x1.5p+2, 0x1.7d21fp+7},
		{-0x1.5798eep-27, 1},
		{-0x1.38p+3, 0x1.e902d6p-15},
		{-0x1.2cp+7, 0}, // |n| > 192
		{-0x1.633334p+5, 0x1.ec9f4cp-65},
		{-0x1.555476p-2, 0x1.6edd82p-1},
		{-2, 0x1.152aaap-3},
		{-0x1.ep+5, 0x1.5ae194p-87},
		{float32(math.Inf(-1)), 0}, // masked attention scores
	} {
		if got := vexpf(c[0]); got != c[1] {
			t.Errorf("ggml_v_expf(%x) = %x, ggml %x", c[0], got, c[1])
		}
	}
}

// TestReduce16 pins gcc's _mm512_reduce_add_ps pairing on values whose
// float32 sum depends on it.
func TestReduce16(t *testing.T) {
	a := [16]float32{1, 0x1p-24, -1, 0x1p-24}
	// c = hi + lo = a[:8], d = c[4:] + c[:4] = [1, 2^-24, -1, 2^-24]:
	// (d0+d2) + (d1+d3) = 2^-23, where (d0+d1) + (d2+d3) would give 2^-24.
	if got, want := reduce16(&a), float32(0x1p-23); got != want {
		t.Errorf("reduce16 = %x, want %x", got, want)
	}
	b := [8]float32{1, 0x1p-24, -1, 0x1p-24}
	if got, want := reduce8(&b), float32(0x1p-23); got != want {
		t.Errorf("reduce8 = %x, want %x", got, want)
	}
	// dpbf16 adds element 2j+1 before 2j.
	var acc [16]float32
	w, x := make([]float32, 32), make([]float32, 32)
	for i := range w {
		w[i], x[i] = 1, 0
	}
	x[0], x[1] = 0x1p-24, 1
	acc[0] = 0x1p-24
	dpbf16(&acc, w, x)
	// (2^-24 + 1) rounds to 1, then + 2^-24 rounds to 1 again; adding the
	// even element first would give 1 + 2^-23.
	if acc[0] != 1 {
		t.Errorf("dpbf16 lane 0 = %x, want 1", acc[0])
	}
}

// TestLlamaEmulationRepeatable runs the llama.cpp emulation twice on the
// same runner and once with the portable kernels: the exact orders must
// not depend on state left by a previous pass or on the kernel set.
func TestLlamaEmulationRepeatable(t *testing.T) {
	spec := synthSpec{arch: "llama", vocab: 64, embd: 64, ffn: 96, layers: 2, heads: 4, kv: 2, hd: 16}
	tokens := make([]int, 80) // >= 64 rows: the tiled flash attention
	for i := range tokens {
		tokens[i] = (i*7 + 3) % spec.vocab
	}
	for _, typ := range []graph.Type{graph.BF16, graph.F16, graph.Q8_0, graph.Q5_1} {
		t.Run(typ.String(), func(t *testing.T) {
			fm, err := LoadModel(newSynth(spec, 5).model(graph.FormatGGUF, typ))
			if err != nil {
				t.Fatal(err)
			}
			fm.activations = true
			r := newRunner(fm, 2)
			a, err := r.forward(tokens, 0)
			if err != nil {
				t.Fatal(err)
			}
			a = append([]float32(nil), a...)
			b, _ := r.forward(tokens, 0)
			defer func(v bool) { useSIMD = v }(useSIMD)
			useSIMD = false
			c, _ := newRunner(fm, 3).forward(tokens, 0)
			for i := range a {
				if a[i] != b[i] || a[i] != c[i] {
					t.Fatalf("logit %d: %x, second pass %x, portable kernels %x", i, a[i], b[i], c[i])
				}
			}
		})
	}
}
