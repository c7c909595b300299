//go:build amd64 && !purego

package perplexity

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
	"golang.org/x/sys/cpu"
)

// requireAVX512 turns on the AVX-512 kernels (and the VDPBF16PS ones where
// the CPU has AVX512_BF16) for the test, even under QUANTBRIDGE_PUREGO,
// and reports whether it could. On a CPU without AVX512F/BW/VL (unlike
// AVX2, missing from many current x86-64 CPUs) the kernels are never
// selected (TestHalfKernelsDispatch) and the caller has nothing to run.
func requireAVX512(t *testing.T) bool {
	t.Helper()
	requireSIMD(t)
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW || !cpu.X86.HasAVX512VL {
		t.Log("this CPU lacks AVX512F/BW/VL: the 16-bit kernels are never selected here")
		return false
	}
	old, oldBF := useAVX512, useAVX512BF16
	useAVX512, useAVX512BF16 = true, cpu.X86.HasAVX512BF16
	t.Cleanup(func() { useAVX512, useAVX512BF16 = old, oldBF })
	return true
}

// TestHalfKernels checks the 16-bit kernels (F16 weights by VCVTPH2PS and
// fused multiply-adds, BF16 weights by VDPBF16PS), run through matMulJobs
// on the stored rows with the activations rounded by setHalves, against
// the definitions of orderTinyBLAS16 and orderTinyBLASBF16 on the float32
// rows and roundActivations' rounding, bit for bit: token counts that leave every tail of
// the six-token kernel, row counts that are multiples of 4 but not of the
// 16-row tile, token counts past the L2 block of 256 KiB (77 tokens of
// 4096), and k not a multiple of 32 for F16.
func TestHalfKernels(t *testing.T) {
	if !requireAVX512(t) {
		return
	}
	rng := rand.New(rand.NewPCG(61, 67))
	for _, typ := range []graph.Type{graph.F16, graph.BF16} {
		order, have := orderTinyBLAS16, useAVX512
		if typ == graph.BF16 {
			order, have = orderTinyBLASBF16, useAVX512BF16
		}
		if !have {
			t.Logf("%v: this CPU lacks AVX512_BF16; not tested", typ)
			continue
		}
		for _, s := range []struct{ rows, k, nTok int }{
			{4, 16, 2}, {8, 48, 7}, {4, 96, 5}, {12, 64, 6}, {20, 512, 13},
			{16, 2048, 12}, {36, 256, 11}, {24, 1024, 31}, {8, 5632, 9}, {4, 4096, 77},
		} {
			if s.k%32 != 0 && typ == graph.BF16 {
				continue // the order needs whole 32-element steps
			}
			w := kquantWeight(t, rng, typ, s.rows, s.k)
			rows := make([]float32, s.rows*s.k)
			w.dequantRows(rows, 0, s.rows)
			x := make([]float32, s.nTok*s.k)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * math.Exp2(float64(rng.IntN(9)-4)))
			}
			var c actCache
			c.threads = 2
			xr := c.rounded(typ, x, s.k)
			dst := make([]float32, s.nTok*s.rows)
			j := mulJob{dst: dst, w: w, x: x, order: llamaDotOrder(w, s.nTok, false)}
			if j.order != order || !c.setHalves(&j, s.nTok) {
				t.Fatalf("%v %v: order %d, 16-bit kernels %v: want order %d on them", typ, s, j.order, j.x16 != nil, order)
			}
			matMulJobs([]mulJob{j}, s.nTok, 2, &scratch{})
			for tt := 0; tt < s.nTok; tt++ {
				for r := 0; r < s.rows; r++ {
					want := order.dot(rows[r*s.k:(r+1)*s.k], xr[tt*s.k:(tt+1)*s.k])
					if got := dst[tt*s.rows+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%v %v: [token %d, row %d] = %v (%#x), want %v (%#x)", typ, s, tt, r, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
			if dst[0] == 0 || dst[len(dst)-1] == 0 {
				t.Fatalf("%v %v: zero outputs", typ, s)
			}
		}
	}
}

// TestHalfKernelsDispatch checks which jobs go to the 16-bit kernels: not
// expanded (float32) weights, not a row count that is no multiple of 4,
// not routed experts (orderVecBF16), not one token.
func TestHalfKernelsDispatch(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(7, 1))
	w := kquantWeight(t, rng, graph.F16, 8, 64)
	wb := kquantWeight(t, rng, graph.BF16, 8, 64)
	odd := kquantWeight(t, rng, graph.F16, 6, 64)
	exp := &weight{name: "f32", rows: 8, cols: 64, typ: graph.F16, f32: make([]float32, 8*64)}
	for _, c := range []struct {
		w    *weight
		nTok int
		id   bool
		want bool
	}{
		{w, 4, false, useAVX512},
		{w, 1, false, false},
		{odd, 4, false, false},
		{exp, 4, false, false},
		{wb, 4, false, useAVX512BF16},
		{wb, 4, true, false},
	} {
		j := mulJob{w: c.w, order: llamaDotOrder(c.w, c.nTok, c.id)}
		if got := halfKernel(&j); got != c.want {
			t.Errorf("%v %d×%d, %d tokens, id %v: 16-bit kernels %v, want %v", c.w.typ, c.w.rows, c.w.cols, c.nTok, c.id, got, c.want)
		}
	}
}

// TestExpandAtLoadHalf loads qwen3-tiny's BF16 GGUF for llama.cpp's
// activations and for float32 ones: the weights the 16-bit kernels read in
// place stay as stored for the former (where the CPU has the kernels) and
// every weight is expanded for the latter.
func TestExpandAtLoadHalf(t *testing.T) {
	m := loadGGUF(t, testref.Local(t, "arch", "qwen3-tiny.bf16.gguf"))
	for _, llama := range []bool{true, false} {
		fm, err := loadModel(m, llama)
		if err != nil {
			t.Fatal(err)
		}
		kept := 0
		for i := range fm.layers {
			l := &fm.layers[i]
			for _, w := range []*weight{l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down} {
				if w.typ != graph.BF16 {
					t.Fatalf("%s: %v, want BF16", w.name, w.typ)
				}
				want := !(llama && halfRows(w))
				if (w.f32 != nil) != want {
					t.Errorf("llama activations %v: %s expanded %v, want %v", llama, w.name, w.f32 != nil, want)
				}
				if w.f32 == nil {
					kept++
				}
			}
		}
		t.Logf("llama activations %v: %d of %d layer weights kept as stored (AVX512_BF16 %v)", llama, kept, 7*len(fm.layers), useAVX512BF16)
	}
}

// TestF32ToF16AVX checks VCVTPS2PH against quantize.FP32ToFP16 (what
// roundActivations rounds F16 activations with) on random bit patterns of
// every exponent and on the edges: halfway cases, the largest fp16 and
// what rounds to infinity, subnormal fp16 results, float32 subnormals,
// infinities.
func TestF32ToF16AVX(t *testing.T) {
	if !requireAVX512(t) {
		return
	}
	rng := rand.New(rand.NewPCG(11, 13))
	src := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.996, 65520, -65520, 1e6,
		float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1.0000002p-25, 0x1p-14, 0x1.ffcp-15,
		0x1p-140, -0x1p-149, 1.00048828125, 1.000732421875, 2049, 2051, -0.33333334}
	for len(src)%16 != 0 || len(src) < 1<<16 {
		b := rng.Uint32()
		if e := b >> 23 & 0xff; e == 0xff || (e > 0x90 && rng.IntN(4) != 0) {
			continue // NaN (VCVTPS2PH keeps its payload), or most of the values past fp16's range
		}
		if rng.IntN(3) == 0 {
			b = b&^0x7f800000 | uint32(100+rng.IntN(50))<<23 // around fp16's range
		}
		src = append(src, math.Float32frombits(b))
	}
	got := make([]uint16, len(src))
	f32ToF16AVX(&got[0], &src[0], len(src))
	for i, v := range src {
		if want := quantize.FP32ToFP16(v); got[i] != want {
			t.Fatalf("fp16(%g = %#x) = %#x, want %#x", v, math.Float32bits(v), got[i], want)
		}
	}
}

// TestVDPBF16PSSubnormals pins the one way VDPBF16PS differs from
// orderTinyBLASBF16's definition (dpbf16): as Intel documents it (DAZ,
// FTZ) and this CPU does, it reads subnormal inputs as zero and flushes
// each subnormal sum (after adding the first product and after the
// second) to zero, where dpbf16 keeps them; a product in the subnormal
// range is kept exact until it is added. llama.cpp
// runs the instruction itself, so on such values the 16-bit kernel is the
// reference; they only arise below 2^-126 (1.2e-38), far under what a
// model's activations and weights multiply to. Values are drawn near
// 2^-63 so that products and partial sums cross 2^-126, with subnormal
// weights against activations near 2^8.
func TestVDPBF16PSSubnormals(t *testing.T) {
	if !requireAVX512(t) {
		return
	}
	if !useAVX512BF16 {
		t.Log("this CPU lacks AVX512_BF16: the VDPBF16PS kernel is never selected here")
		return
	}
	const k = 256
	rng := rand.New(rand.NewPCG(23, 29))
	ftz := func(v float32) float32 {
		if math.Abs(float64(v)) < 0x1p-126 {
			return float32(math.Copysign(0, float64(v)))
		}
		return v
	}
	differ := 0
	for trial := 0; trial < 200; trial++ {
		xs := make([]uint16, k)
		ws := make([]byte, 4*2*k)
		wf := make([]float32, k)
		xf := make([]float32, k)
		for i := 0; i < k; i++ {
			xs[i] = quantize.FP32ToBF16(float32(rng.NormFloat64() * 0x1p-63))
			b := quantize.FP32ToBF16(float32(rng.NormFloat64() * 0x1p-63))
			if rng.IntN(8) == 0 { // a subnormal weight times a large activation
				b = uint16(rng.IntN(0x80)) | uint16(rng.IntN(2))<<15
				xs[i] = quantize.FP32ToBF16(float32(rng.NormFloat64() * 0x1p8))
			}
			ws[2*i], ws[2*i+1] = byte(b), byte(b>>8)
			wf[i] = quantize.BF16ToFP32(b)
			xf[i] = quantize.BF16ToFP32(xs[i])
		}
		var got [4]float32
		dot4x1bf(&xs[0], k, &ws[0], k, k, &got[0], 4)
		// Subnormal inputs read as zero; each sum of the accumulator and
		// an exact product is rounded once, then flushed to zero if
		// subnormal (a subnormal product is not flushed by itself).
		var acc [16]float32
		for i := 0; i < k; i += 32 {
			for j := range acc {
				p1 := float64(ftz(wf[i+2*j+1])) * float64(ftz(xf[i+2*j+1]))
				p0 := float64(ftz(wf[i+2*j])) * float64(ftz(xf[i+2*j]))
				a := ftz(float32(float64(acc[j]) + p1))
				acc[j] = ftz(float32(float64(a) + p0))
			}
		}
		want := reduce16(&acc)
		if math.Float32bits(got[0]) != math.Float32bits(want) {
			t.Fatalf("trial %d: VDPBF16PS kernel %g (%#x), flushing definition %g (%#x)", trial, got[0], math.Float32bits(got[0]), want, math.Float32bits(want))
		}
		if plain := orderTinyBLASBF16.dot(wf, xf); math.Float32bits(plain) != math.Float32bits(want) {
			differ++
		}
	}
	t.Logf("200 dot products near 2^-126: %d differ from dpbf16's (subnormals kept)", differ)
	if differ == 0 {
		t.Fatal("no dot product reached the subnormal range: the test data misses its purpose")
	}
}
