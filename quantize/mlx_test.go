package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestMLXGolden checks bit identity with the real MLX library on rows taken
// from the MLX oracle (testdata/mlx-golden/golden.safetensors, written by
// `go test -tags refdata -run TestMLXOracle ./quantize -mlx-golden`): 4
// configurations × 12 tensors × 2–3 rows, including rows where GPU rounding
// would change a code, plus MLX's own dequantization of two down_proj rows.
func TestMLXGolden(t *testing.T) {
	g := readST(t, testref.Local(t, "mlx-golden", "golden.safetensors"))
	configs := map[string]AffineParams{}
	var rowsChecked, gpuDiffRows int
	for key, src := range g {
		base, ok := strings.CutSuffix(key, ".src")
		if !ok {
			continue
		}
		cfg := base[:strings.IndexByte(base, '/')]
		var p AffineParams
		if _, err := fmt.Sscanf(strings.TrimPrefix(cfg, "kjv-llama-"), "int%d-g%d", &p.Bits, &p.GroupSize); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		configs[cfg] = p
		wantW, wantS, wantB := g[base+".weight"], g[base+".scales"], g[base+".biases"]
		cols := src.Shape[1]
		words := AffinePackedWords(cols, p.Bits)
		packed := make([]uint32, words)
		sb := cols / p.GroupSize * 2
		scales, biases := make([]byte, sb), make([]byte, sb)
		for r := 0; r < src.Shape[0]; r++ {
			in := bf16Row(src.row(r))
			if err := AffineQuantizeRow(packed, scales, biases, in, p, dtype.BF16); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(packed, u32Row(wantW.row(r))); i >= 0 {
				t.Errorf("%s row %d: packed word %d = %#08x, want %#08x", base, r, i, packed[i], u32Row(wantW.row(r))[i])
			}
			if i := firstDiff(scales, wantS.row(r)); i >= 0 {
				t.Errorf("%s row %d: scales differ at byte %d", base, r, i)
			}
			if i := firstDiff(biases, wantB.row(r)); i >= 0 {
				t.Errorf("%s row %d: biases differ at byte %d", base, r, i)
			}
			rowsChecked++
			gp := p
			gp.Rounding = RoundGPU
			if err := AffineQuantizeRow(packed, scales, biases, in, gp, dtype.BF16); err != nil {
				t.Fatal(err)
			}
			if firstDiff(packed, u32Row(wantW.row(r))) >= 0 {
				gpuDiffRows++
			}
		}
		if dq, ok := g[base+".dequant"]; ok {
			got := make([]float32, cols)
			for r := 0; r < dq.Shape[0]; r++ {
				if err := AffineDequantizeRow(got, u32Row(wantW.row(r)), wantS.row(r), wantB.row(r), p, dtype.BF16); err != nil {
					t.Fatal(err)
				}
				want := f32Row(dq.row(r))
				if i := firstDiff(got, want); i >= 0 {
					t.Errorf("%s row %d: dequant col %d = %g, want %g", base, r, i, got[i], want[i])
				}
			}
		}
	}
	if len(configs) != 4 || rowsChecked < 80 {
		t.Fatalf("golden covers %d configs, %d rows; want 4 configs, >= 80 rows", len(configs), rowsChecked)
	}
	if gpuDiffRows == 0 {
		t.Errorf("no golden row tells GPU rounding from CPU rounding")
	}
	t.Logf("%d rows bit-identical over %d configs; GPU rules would change %d of them", rowsChecked, len(configs), gpuDiffRows)
}

func TestAffineParamsValidate(t *testing.T) {
	tests := []struct {
		p  AffineParams
		ok bool
	}{
		{AffineParams{Bits: 4, GroupSize: 64}, true},
		{AffineParams{Bits: 2, GroupSize: 32}, true},
		{AffineParams{Bits: 8, GroupSize: 128}, true},
		{AffineParams{Bits: 7, GroupSize: 64}, false},
		{AffineParams{Bits: 1, GroupSize: 64}, false},
		{AffineParams{Bits: 16, GroupSize: 64}, false},
		{AffineParams{Bits: 4, GroupSize: 48}, false},
		{AffineParams{Bits: 4, GroupSize: 16}, false},
		{AffineParams{Bits: 4, GroupSize: 256}, false},
		{AffineParams{Bits: 4, GroupSize: 64, Rounding: 7}, false},
	}
	for _, tc := range tests {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func affineRow(t *testing.T, src []float32, p AffineParams, st dtype.Type) ([]uint32, []byte, []byte) {
	t.Helper()
	ss := AffineScaleSize(st)
	packed := make([]uint32, AffinePackedWords(len(src), p.Bits))
	scales := make([]byte, len(src)/p.GroupSize*ss)
	biases := make([]byte, len(scales))
	if err := AffineQuantizeRow(packed, scales, biases, src, p, st); err != nil {
		t.Fatal(err)
	}
	return packed, scales, biases
}

// TestAffineRoundTrip quantizes random rows at every bits × group size and
// checks that dequantization lands within one step of every input (the edge
// snap may stretch the range past 2^bits-1 steps by at most one, which is
// clamped), that the snapped edge and zero are exact, and that codes use
// the full range.
func TestAffineRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cols = 512
	src := make([]float32, cols)
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, gs := range []int{32, 64, 128} {
			t.Run(fmt.Sprintf("b%d-g%d", bits, gs), func(t *testing.T) {
				p := AffineParams{Bits: bits, GroupSize: gs}
				for trial := 0; trial < 20; trial++ {
					off := float32(rng.NormFloat64() * 0.05)
					for i := range src {
						src[i] = BF16ToFP32(MLXFloatToBF16(float32(rng.NormFloat64()*0.1) + off))
					}
					packed, scales, biases := affineRow(t, src, p, dtype.F32)
					dst := make([]float32, cols)
					if err := AffineDequantizeRow(dst, packed, scales, biases, p, dtype.F32); err != nil {
						t.Fatal(err)
					}
					for g := 0; g < cols/gs; g++ {
						s := math.Float32frombits(binary.LittleEndian.Uint32(scales[4*g:]))
						b := math.Float32frombits(binary.LittleEndian.Uint32(biases[4*g:]))
						grp := src[g*gs : (g+1)*gs]
						lo, hi := grp[0], grp[0]
						for _, x := range grp {
							lo, hi = min(lo, x), max(hi, x)
						}
						edge := hi
						if mlxAbs32(lo) > mlxAbs32(hi) {
							edge = lo
						}
						if b != edge {
							t.Fatalf("group %d: bias %g, want the edge %g", g, b, edge)
						}
						maxCode := uint32(0)
						for j, x := range grp {
							if err := math.Abs(float64(dst[g*gs+j] - x)); err > 1.0001*math.Abs(float64(s)) {
								t.Fatalf("group %d col %d: |%g - %g| = %g > |scale| %g", g, j, dst[g*gs+j], x, err, s)
							}
							maxCode = max(maxCode, affineCode(packed, g*gs+j, uint(bits)))
							if x == edge && dst[g*gs+j] != edge {
								t.Fatalf("group %d: edge %g dequantizes to %g", g, x, dst[g*gs+j])
							}
						}
						if maxCode < 1<<bits-2 {
							t.Fatalf("group %d: max code %d, range not used (bits %d)", g, maxCode, bits)
						}
					}
				}
			})
		}
	}
}

// TestAffinePacking checks the bit stream against a byte-wise packer written
// the way MLX's CPU kernel writes 3/5/6-bit packs (codes in a uint64, then
// bytes little-endian) and 2/4/8-bit words.
func TestAffinePacking(t *testing.T) {
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, gs := range []int{32, 64, 128} {
			n := 1<<bits - 1
			cols := 2 * gs
			// w = n - c gives code c when the group holds both 0 and n:
			// scale -1, bias n.
			src := make([]float32, cols)
			want := make([]uint32, cols)
			for i := range src {
				c := (i*7 + i/3) % (n + 1)
				if i%gs == 0 {
					c = 0
				} else if i%gs == 1 {
					c = n
				}
				want[i] = uint32(c)
				src[i] = float32(n - c)
			}
			p := AffineParams{Bits: bits, GroupSize: gs}
			packed, _, _ := affineRow(t, src, p, dtype.BF16)
			// reference packer
			pf, bpp := 32/bits, 4
			switch bits {
			case 3:
				pf, bpp = 8, 3
			case 5:
				pf, bpp = 8, 5
			case 6:
				pf, bpp = 4, 3
			}
			var ref []byte
			for j := 0; j < cols/pf; j++ {
				var el uint64
				for k := 0; k < pf; k++ {
					el |= uint64(want[j*pf+k]) << (k * bits)
				}
				for b := 0; b < bpp; b++ {
					ref = append(ref, byte(el>>(8*b)))
				}
			}
			if i := firstDiff(u32Bytes(packed), ref); i >= 0 {
				t.Errorf("bits %d group %d: packed byte %d differs", bits, gs, i)
			}
			for i := range want {
				if c := affineCode(packed, i, uint(bits)); c != want[i] {
					t.Fatalf("bits %d group %d: code %d = %d, want %d", bits, gs, i, c, want[i])
				}
			}
		}
	}
}

func bf16Bits(b []byte, i int) uint16 { return binary.LittleEndian.Uint16(b[2*i:]) }

// TestAffineEdgeCases pins hand-computed results for degenerate groups and
// the CPU/GPU rounding differences.
func TestAffineEdgeCases(t *testing.T) {
	const gs = 32
	fill := func(v float32, tail ...float32) []float32 {
		s := make([]float32, gs)
		for i := range s {
			s[i] = v
		}
		copy(s, tail)
		return s
	}
	bf := func(f float32) uint16 { return MLXFloatToBF16(f) }
	div := func(a, b float32) float32 { return a / b } // at run time, in float32
	q0 := float32(math.RoundToEven(float64(div(0.5, -1e-7))))
	if q0 != -5e6 {
		t.Fatalf("q0 = %g", q0)
	}
	tests := []struct {
		name     string
		src      []float32
		p        AffineParams
		scale    uint16 // bf16 bits
		bias     uint16
		codes    []uint32 // first len(codes) codes
		dequant0 float32  // dequantized element 0
	}{
		// all zero: scale = -eps, q0 = 0, bias 0, codes 0.
		{"zero", fill(0), AffineParams{Bits: 4, GroupSize: gs}, bf(-1e-7), 0, []uint32{0, 0}, 0},
		// constant c: range 0 -> scale -eps, q0 = rint(c/-eps) != 0, bias c.
		{"constant", fill(0.5), AffineParams{Bits: 4, GroupSize: gs}, bf(div(0.5, q0)), bf(0.5), []uint32{0, 0}, 0.5},
		// all negative, CPU: min -3 max -1: |min| > |max| so edge -3,
		// scale (2/3) -> q0 = rint(-4.5) = -4 (even), scale = 0.75, bias -3.
		{"negative-cpu", fill(-1, -3, -2), AffineParams{Bits: 2, GroupSize: gs}, bf(0.75), bf(-3), []uint32{0, 1, 3}, -3},
		// all negative, GPU: w_max starts at 0 so the range is [-3, 0],
		// scale 1, q0 = round(-3) = -3, bias -3; -1 is code 2.
		{"negative-gpu", fill(-1, -3, -2), AffineParams{Bits: 2, GroupSize: gs, Rounding: RoundGPU}, bf(1), bf(-3), []uint32{0, 1, 2}, -3},
		// ties: {3, 0, 2.5, 0.5}: edge 3, scale -1, bias 3; 2.5 -> 0.5 and
		// 0.5 -> 2.5: CPU rounds to even (0, 2), GPU away (1, 3).
		{"tie-cpu", fill(1, 3, 0, 2.5, 0.5), AffineParams{Bits: 2, GroupSize: gs}, bf(-1), bf(3), []uint32{0, 3, 0, 2, 2}, 3},
		{"tie-gpu", fill(1, 3, 0, 2.5, 0.5), AffineParams{Bits: 2, GroupSize: gs, Rounding: RoundGPU}, bf(-1), bf(3), []uint32{0, 3, 1, 3, 2}, 3},
		// |min| == |max|: edge is the max, scale -(2/255) (float32), 1/scale
		// = -127.49999 -> q0 = -127, scale 1/-127, bias 1; -1 -> code 254.
		{"symmetric", fill(0, 1, -1), AffineParams{Bits: 8, GroupSize: gs}, bf(div(1, -127)), bf(1), []uint32{0, 254}, 1},
		// a snapped edge pushes the far end past 2^bits-1 steps: {-1, 0.6, 0.9}
		// at 2 bits: scale 1.9/3, q0 = rint(-1.58) = -2, scale 0.5, bias -1;
		// 0.6 -> 3.2 -> 3 and 0.9 -> 3.8 -> 4 clamped to 3.
		{"clamp", fill(0, -1, 0.6, 0.9), AffineParams{Bits: 2, GroupSize: gs}, bf(0.5), bf(-1), []uint32{0, 3, 3, 2}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packed, scales, biases := affineRow(t, tc.src, tc.p, dtype.BF16)
			if s, b := bf16Bits(scales, 0), bf16Bits(biases, 0); s != tc.scale || b != tc.bias {
				t.Errorf("scale, bias = %g, %g; want %g, %g", BF16ToFP32(s), BF16ToFP32(b), BF16ToFP32(tc.scale), BF16ToFP32(tc.bias))
			}
			for i, want := range tc.codes {
				if c := affineCode(packed, i, uint(tc.p.Bits)); c != want {
					t.Errorf("code %d = %d, want %d", i, c, want)
				}
			}
			dst := make([]float32, gs)
			if err := AffineDequantizeRow(dst, packed, scales, biases, tc.p, dtype.BF16); err != nil {
				t.Fatal(err)
			}
			if dst[0] != tc.dequant0 {
				t.Errorf("dequant[0] = %g, want %g", dst[0], tc.dequant0)
			}
		})
	}
}

func TestAffineErrors(t *testing.T) {
	p := AffineParams{Bits: 4, GroupSize: 32}
	good := make([]float32, 64)
	tests := []struct {
		name    string
		src     []float32
		p       AffineParams
		st      dtype.Type
		packed  int
		sbBytes int
		want    string
	}{
		{"nan", append(make([]float32, 63), float32(math.NaN())), p, dtype.BF16, 8, 4, "non-finite value NaN at column 63"},
		{"inf", append([]float32{float32(math.Inf(-1))}, make([]float32, 63)...), p, dtype.BF16, 8, 4, "non-finite"},
		{"bits7", good, AffineParams{Bits: 7, GroupSize: 32}, dtype.BF16, 14, 4, "unsupported bits 7"},
		{"group48", make([]float32, 96), AffineParams{Bits: 4, GroupSize: 48}, dtype.BF16, 12, 4, "unsupported group size 48"},
		{"ragged", make([]float32, 48), p, dtype.BF16, 6, 2, "not a multiple of group size"},
		{"scaletype", good, p, dtype.Q8_0, 8, 4, "unsupported scale type"},
		{"short-packed", good, p, dtype.BF16, 7, 4, "packed row has 7 words, want 8"},
		{"short-scales", good, p, dtype.F32, 8, 4, "scales/biases have 4/4 bytes, want 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packed := make([]uint32, tc.packed)
			sb := make([]byte, tc.sbBytes)
			err := AffineQuantizeRow(packed, sb, sb, tc.src, tc.p, tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AffineQuantizeRow error = %v, want %q", err, tc.want)
			}
			if tc.name == "nan" || tc.name == "inf" {
				return
			}
			err = AffineDequantizeRow(make([]float32, len(tc.src)), packed, sb, sb, tc.p, tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AffineDequantizeRow error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestMLXHalfConversions: MLX's float->bf16/f16 agree with ggml's
// FP32ToBF16/FP32ToFP16 on every finite float32 pattern sampled and on
// ±Inf; they differ only on NaN (MLX: 0x7FC0 and sign|0x7D00).
func TestMLXHalfConversions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 1<<20; i++ {
		u := rng.Uint32()
		if i < 1<<16 {
			u = uint32(i)<<16 | uint32(i&1)<<15 // ties and near-ties
		}
		f := math.Float32frombits(u)
		if f != f {
			continue
		}
		if a, b := MLXFloatToBF16(f), FP32ToBF16(f); a != b {
			t.Fatalf("bf16(%#08x): mlx %#04x, ggml %#04x", u, a, b)
		}
		if a, b := MLXFloatToFP16(f), FP32ToFP16(f); a != b {
			t.Fatalf("fp16(%#08x): mlx %#04x, ggml %#04x", u, a, b)
		}
	}
	nan := math.Float32frombits(0xffa00001)
	if got := MLXFloatToBF16(nan); got != 0x7fc0 {
		t.Errorf("MLX bf16(NaN) = %#04x, want 0x7fc0", got)
	}
	if got := FP32ToBF16(nan); got != 0xffe0 {
		t.Errorf("ggml bf16(NaN) = %#04x, want 0xffe0", got)
	}
	if got := MLXFloatToFP16(nan); got != 0xfd00 {
		t.Errorf("MLX fp16(NaN) = %#04x, want 0xfd00", got)
	}
}

func BenchmarkQuantize(b *testing.B) {
	const n = 1 << 20
	rng := rand.New(rand.NewPCG(1, 1))
	src := make([]float32, n)
	for i := range src {
		src[i] = BF16ToFP32(MLXFloatToBF16(float32(rng.NormFloat64() * 0.02)))
	}
	for _, c := range []struct{ bits, gs int }{{4, 64}, {8, 64}, {4, 32}, {3, 64}, {6, 64}} {
		p := AffineParams{Bits: c.bits, GroupSize: c.gs}
		packed := make([]uint32, AffinePackedWords(n, c.bits))
		scales := make([]byte, n/c.gs*2)
		biases := make([]byte, n/c.gs*2)
		b.Run(fmt.Sprintf("mlx-int%d-g%d", c.bits, c.gs), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := AffineQuantizeRow(packed, scales, biases, src, p, dtype.BF16); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("mlx-int%d-g%d-dequant", c.bits, c.gs), func(b *testing.B) {
			dst := make([]float32, n)
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := AffineDequantizeRow(dst, packed, scales, biases, p, dtype.BF16); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
