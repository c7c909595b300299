//go:build amd64 && !purego

package perplexity

// The comparisons of the amd64 kernels with their portable definitions.
// They exist where the kernels are built; requireSIMD fails (rather than
// skips) on an amd64 CPU without AVX2/FMA, and turns the kernels on even
// under QUANTBRIDGE_PUREGO.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// kquantWeight quantizes rows×k random values (Gaussian, with some large
// outliers so scales and minimums vary) to K-quant type t.
func kquantWeight(t testing.TB, rng *rand.Rand, typ graph.Type, rows, k int) *weight {
	t.Helper()
	rs, err := graph.RowSize(typ, int64(k))
	if err != nil {
		t.Fatal(err)
	}
	w := &weight{name: typ.String(), rows: rows, cols: k, typ: typ, rowBytes: int(rs), raw: make([]byte, int(rs)*rows)}
	src := make([]float32, k)
	for r := 0; r < rows; r++ {
		for i := range src {
			src[i] = float32(rng.NormFloat64()) + 0.3*float32(r%3)
			if rng.IntN(50) == 0 {
				src[i] *= 8
			}
		}
		if err := quantize.QuantizeRow(w.raw[r*int(rs):(r+1)*int(rs)], src, typ); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// requireSIMD turns on the SIMD kernels for the test, failing when the CPU
// lacks the instructions they need.
func requireSIMD(t *testing.T) {
	t.Helper()
	if !simdAvailable {
		t.Fatal("this amd64 CPU lacks AVX2/FMA, which the kernels under test need")
	}
	old := useSIMD
	useSIMD = true
	t.Cleanup(func() { useSIMD = old })
}

// TestFusedKQuantSIMD checks that the fused K-quant kernels (kVecDot,
// kRepackDot, their four-token AVX-512 forms and kRepack16x4z) give the
// bits of mulTileK's portable loop, for every K-quant order, with token
// counts that split the repacked orders between their GEMM and GEMV
// groupings at every point of a four and tiles of 16, 8 and 4 rows.
func TestFusedKQuantSIMD(t *testing.T) {
	requireSIMD(t)
	if !useKRepackZ {
		t.Log("this CPU lacks AVX512_VNNI: kRepack16x4z is not tested")
	}
	oldZ := useKRepackZ
	t.Cleanup(func() { useKRepackZ = oldZ })
	rng := rand.New(rand.NewPCG(11, 13))
	for _, tc := range []struct {
		typ   graph.Type
		order dotOrder
	}{
		{graph.Q6_K, orderQ6K}, {graph.Q5_K, orderQ5K}, {graph.Q3_K, orderQ3K},
		{graph.Q4_K, orderQ4KRepack}, {graph.Q2_K, orderQ2KRepack},
	} {
		repack := tc.order == orderQ4KRepack || tc.order == orderQ2KRepack
		for _, shape := range []struct{ rows, k, nTok int }{
			{8, 256, 1}, {16, 512, 7}, {24, 768, 5}, {16, 512, 14},
			{8, 256, 4}, {16, 512, 5}, {24, 768, 9}, {20, 512, 13}, {40, 1024, 8},
		} {
			t.Run(fmt.Sprintf("%v/%dx%dx%d", tc.typ, shape.rows, shape.k, shape.nTok), func(t *testing.T) {
				w := kquantWeight(t, rng, tc.typ, shape.rows, shape.k)
				x := make([]float32, shape.nTok*shape.k)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				x[3] = -40 // a block whose largest magnitude is negative
				a := newQ8KBlocks(x)
				// The GEMM/GEMV split of ggml_mul_mat (gemvFrom at the
				// last whole four), all GEMV (routed experts) and, for the
				// repacked orders, every split point, with and without the
				// AVX-512 four-token layout and kRepack16x4z.
				type variant struct {
					gemvFrom    int
					quads, tile bool
				}
				vs := []variant{{shape.nTok - shape.nTok%4, false, false}, {shape.nTok - shape.nTok%4, true, false}, {0, true, false}}
				if repack {
					for g := 0; g <= shape.nTok+1; g++ {
						vs = append(vs, variant{g, true, true})
					}
					vs = append(vs, variant{shape.nTok - shape.nTok%4, false, true})
				}
				for _, v := range vs {
					useKRepackZ = oldZ && v.tile
					a.quadK = 0
					if v.quads {
						a.makeQuads(shape.k)
					}
					got := make([]float32, shape.nTok*shape.rows)
					want := make([]float32, shape.nTok*shape.rows)
					for tile := 0; tile*rowTile < shape.rows; tile++ {
						mulTileK(got, w, tc.order, a, shape.nTok, v.gemvFrom, tile)
						useSIMD = false
						mulTileK(want, w, tc.order, a, shape.nTok, v.gemvFrom, tile)
						useSIMD = true
					}
					nonzero := 0
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%+v: output %d (token %d, row %d): fused %v (%x), portable %v (%x)", v, i, i/shape.rows, i%shape.rows, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
						}
						if want[i] != 0 {
							nonzero++
						}
					}
					if nonzero < len(want)/2 {
						t.Fatalf("%+v: only %d of %d outputs nonzero", v, nonzero, len(want))
					}
				}
			})
		}
	}
}

// TestHalfToF32SIMD checks the fp16 and bf16 row expansion of the SIMD
// kernels against the portable conversion for all 65536 bit patterns
// (NaNs need only stay NaNs: VCVTPH2PS quiets signalling ones).
func TestHalfToF32SIMD(t *testing.T) {
	requireSIMD(t)
	const n = 1 << 16
	src := make([]byte, 2*n+2) // one element past a multiple of 8: the Go tail
	for i := 0; i < n; i++ {
		src[2*i], src[2*i+1] = byte(i), byte(i>>8)
	}
	src[2*n], src[2*n+1] = 0x00, 0x3c // 1.0 in fp16
	for _, typ := range []graph.Type{graph.F16, graph.BF16} {
		w := &weight{name: typ.String(), rows: 1, cols: n + 1, typ: typ, rowBytes: 2*n + 2, raw: src}
		got := make([]float32, n+1)
		want := make([]float32, n+1)
		w.dequantRow(got, 0)
		useSIMD = false
		w.dequantRow(want, 0)
		useSIMD = true
		for i := range got {
			g, v := got[i], want[i]
			if math.Float32bits(g) != math.Float32bits(v) && !(g != g && v != v) {
				t.Fatalf("%v %#04x: SIMD %v (%x), portable %v (%x)", typ, i, g, math.Float32bits(g), v, math.Float32bits(v))
			}
		}
		if typ == graph.F16 && got[n] != 1 {
			t.Fatalf("F16 tail element = %v, want 1", got[n])
		}
	}
}

// TestTinyBLAS16SIMD checks the SIMD tile of the tinyBLAS<16> order (with
// AVX-512 four tokens by four rows, the token remainder by dot4x1t16;
// without, dot4x1t16 alone) against the order's portable definition, bit
// for bit, plain and on VDPBF16PS-permuted bf16 values.
func TestTinyBLAS16SIMD(t *testing.T) {
	requireSIMD(t)
	t.Logf("AVX-512 kernels: %v", useAVX512)
	rng := rand.New(rand.NewPCG(5, 9))
	for _, s := range []struct{ nr, k, nTok int }{{4, 16, 1}, {8, 96, 7}, {16, 512, 13}, {12, 4096, 70}} {
		rows := make([]float32, s.nr*s.k)
		x := make([]float32, s.nTok*s.k)
		for i := range rows {
			rows[i] = roundBF16(float32(rng.NormFloat64()))
		}
		for i := range x {
			x[i] = roundBF16(float32(rng.NormFloat64()))
		}
		ldd := s.nr + 3
		for _, order := range []dotOrder{orderTinyBLAS16, orderTinyBLASBF16} {
			rp, xp := rows, x
			if order == orderTinyBLASBF16 {
				if s.k%32 != 0 {
					continue // the order needs whole 32-element steps
				}
				rp, xp = append([]float32(nil), rows...), append([]float32(nil), x...)
				permuteDPBF16(rp)
				permuteDPBF16(xp)
			}
			dst := make([]float32, s.nTok*ldd)
			mulTileT16(dst, ldd, xp, s.k, s.nTok, rp, s.nr)
			for tt := 0; tt < s.nTok; tt++ {
				for r := 0; r < s.nr; r++ {
					want := order.dot(rows[r*s.k:(r+1)*s.k], x[tt*s.k:(tt+1)*s.k])
					if got := dst[tt*ldd+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%d×%d×%d order %d: [token %d, row %d] = %v, want %v", s.nr, s.k, s.nTok, order, tt, r, got, want)
					}
				}
			}
		}
	}
}

// TestQ0TileSIMD checks mulTileQ0's SIMD loop (rows decoded once or read
// in place; four rows by eight or four tokens, a last pair of rows, single
// rows; the minimum terms by q0mins16) against its portable loop, bit for
// bit, for the types of 32-element blocks (Q4_1/Q5_1 with their Q8_1
// minimum terms), with this CPU's kernels and with the AVX2 ones alone.
func TestQ0TileSIMD(t *testing.T) {
	requireSIMD(t)
	oldZ, oldVNNI := useAVX512, useQ0VNNI
	t.Cleanup(func() { useAVX512, useQ0VNNI = oldZ, oldVNNI })
	// This CPU's kernels, then the AVX2 ones alone (q0dot4, the minimum
	// terms in Go).
	for _, z := range []bool{true, false} {
		useAVX512, useQ0VNNI = z && oldZ, z && oldVNNI
		testQ0TileSIMD(t)
	}
}

func testQ0TileSIMD(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 19))
	for _, typ := range []graph.Type{graph.Q8_0, graph.Q4_0, graph.Q4_1, graph.Q5_0, graph.Q5_1} {
		// Tiles of whole fours of rows, a last pair (6, 22, 18 rows), a
		// last single row (3, 7, 13 rows) and a last short tile (20, 22,
		// 36 rows), with token counts in and out of fours and the token
		// blocks of k 4096 (32 tokens) split.
		for _, shape := range []struct{ rows, k, nTok int }{{3, 32, 1}, {16, 256, 9}, {20, 1024, 6}, {16, 256, 8}, {18, 4096, 44},
			{4, 32, 4}, {6, 64, 4}, {7, 96, 12}, {22, 512, 16}, {36, 128, 20}, {13, 256, 7}, {8, 4096, 36}} {
			w := kquantWeight(t, rng, typ, shape.rows, shape.k)
			if typ == graph.Q4_1 || typ == graph.Q5_1 {
				nb := shape.k / 32
				w.mins = make([]float32, shape.rows*nb)
				for i := range w.mins {
					w.mins[i] = quantize.FP16ToFP32(uint16(w.raw[i*w.rowBytes/nb+2]) | uint16(w.raw[i*w.rowBytes/nb+3])<<8)
				}
			}
			x := make([]float32, shape.nTok*shape.k)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			xr := make([]float32, len(x))
			roundActivations(xr, x, shape.k, actQ8_0)
			a := newQ8Blocks(xr)
			s := make([]float32, len(x)/32)
			for b := range s {
				s[b] = q81Sum(x[b*32 : (b+1)*32])
			}
			got := make([]float32, shape.nTok*shape.rows)
			want := make([]float32, shape.nTok*shape.rows)
			buf := make([]float32, rowTile*shape.k)
			for tile := 0; tile*rowTile < shape.rows; tile++ {
				mulTileQ0(got, w, a, s, shape.nTok, tile, buf, false)
				useSIMD = false
				mulTileQ0(want, w, a, s, shape.nTok, tile, buf, false)
				useSIMD = true
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v %v (AVX-512 %v): output %d (token %d, row %d): SIMD %v, portable %v", typ, shape, useAVX512, i, i/shape.rows, i%shape.rows, got[i], want[i])
				}
			}
			if want[0] == 0 || want[len(want)-1] == 0 {
				t.Fatalf("%v %v: zero outputs", typ, shape)
			}
			if typ == graph.Q8_0 {
				// The weight expanded at load (no stored bytes): its rows
				// recovered as Q8_0 codes (the stored ones) and copied
				// into the tile.
				e := &weight{name: w.name, rows: w.rows, cols: w.cols, typ: w.typ, f32: make([]float32, shape.rows*shape.k)}
				w.dequantRows(e.f32, 0, shape.rows)
				clear(got)
				for tile := 0; tile*rowTile < shape.rows; tile++ {
					mulTileQ0(got, e, a, s, shape.nTok, tile, buf, false)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v %v expanded (AVX-512 %v): output %d: SIMD %v, portable (stored rows) %v", typ, shape, useAVX512, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestExactKernelsSIMD checks that the AVX2 kernels of the exact orders
// give the bits of their portable definitions.
func TestExactKernelsSIMD(t *testing.T) {
	requireSIMD(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const k = 96
	bf := func() float32 { return roundBF16(float32(rng.NormFloat64())) }
	w := make([]float32, 4*k)
	x := make([]float32, k)
	for i := range w {
		w[i] = bf()
	}
	for i := range x {
		x[i] = bf()
	}
	var d4 [4]float32
	dot4x1t16(&x[0], &w[0], k, k, &d4[0])
	for r := 0; r < 4; r++ {
		if want := orderTinyBLAS16.dot(w[r*k:(r+1)*k], x); d4[r] != want {
			t.Errorf("dot4x1t16 row %d = %x, tinyBLAS16 %x", r, d4[r], want)
		}
	}
	wp, xp := append([]float32(nil), w...), append([]float32(nil), x...)
	permuteDPBF16(wp)
	permuteDPBF16(xp)
	dot4x1t16(&xp[0], &wp[0], k, k, &d4[0])
	for r := 0; r < 4; r++ {
		if want := orderTinyBLASBF16.dot(w[r*k:(r+1)*k], x); d4[r] != want {
			t.Errorf("permuted dot4x1t16 row %d = %x, VDPBF16PS order %x", r, d4[r], want)
		}
	}

	// Q8_0 family: the AVX2 integer dot against the scalar lanes.
	xr := make([]float32, k)
	roundActivations(xr, x, k, actQ8_0)
	a := newQ8Blocks(xr)
	var wr q0Row
	row := make([]float32, k)
	for i := range row {
		row[i] = float32(rng.IntN(255)-127) * 0x1p-9
	}
	wr.recoverQ8_0(row)
	got := q0dot(&wr.q[0], &a.q[0], &wr.d[0], &a.d[0], k/32)
	var acc [8]float32
	for b := 0; b < k/32; b++ {
		d := wr.d[b] * a.d[b]
		for m := range acc {
			var s int32
			for i := b*32 + 4*m; i < b*32+4*m+4; i++ {
				s += int32(wr.q[i]) * int32(a.q[i])
			}
			acc[m] = fma32(d, float32(s), acc[m])
		}
	}
	if want := reduce8(&acc); got != want {
		t.Errorf("q0dot = %x, scalar %x", got, want)
	}

	// Flash-attention tile kernels against their fma chains.
	const D = 32
	q := make([]float32, D)
	kt := make([]float32, D*faTileKV)
	for i := range q {
		q[i] = float32(rng.NormFloat64())
	}
	for i := range kt {
		kt[i] = roundF16(float32(rng.NormFloat64()))
	}
	s := make([]float32, faTileKV)
	faScores(&q[0], &kt[0], D, &s[0])
	for j := range s {
		var want float32
		for d := range q {
			want = fma32(q[d], kt[d*faTileKV+j], want)
		}
		if s[j] != want {
			t.Fatalf("faScores[%d] = %x, fma chain %x", j, s[j], want)
		}
	}
	out := make([]float32, D)
	faPV(&s[0], &kt[0], faTileKV, 10, D, &out[0])
	for d := range out {
		var want float32
		for j := 0; j < 10; j++ {
			want = fma32(s[j], kt[j*faTileKV+d], want)
		}
		if out[d] != want {
			t.Fatalf("faPV[%d] = %x, fma chain %x", d, out[d], want)
		}
	}
}

// TestQ0Repack16 checks the repacked Q4_0 order's kernel (q0rep16, sixteen
// rows per call) against mulTileQ0's portable loop, bit for bit: full and
// short tiles, one and several blocks, token counts in and out of fours,
// Q4_0 rows stored and Q8_0 rows expanded at load.
func TestQ0Repack16(t *testing.T) {
	requireSIMD(t)
	if !useQ0VNNI {
		t.Log("this CPU lacks AVX512_VNNI: q0rep16 is never selected here")
		return
	}
	rng := rand.New(rand.NewPCG(23, 29))
	for _, typ := range []graph.Type{graph.Q4_0, graph.Q8_0} {
		for _, shape := range []struct{ rows, k, nTok int }{{16, 32, 1}, {16, 256, 9}, {24, 1024, 6}, {8, 4096, 5}, {40, 96, 17}} {
			w := kquantWeight(t, rng, typ, shape.rows, shape.k)
			x := make([]float32, shape.nTok*shape.k)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var a q8Blocks
			if !a.quantize(x, 2) || a.u == nil {
				t.Fatal("no offset codes")
			}
			got := make([]float32, shape.nTok*shape.rows)
			want := make([]float32, shape.nTok*shape.rows)
			buf := make([]float32, rowTile*shape.k)
			for tile := 0; tile*rowTile < shape.rows; tile++ {
				mulTileQ0(got, w, &a, nil, shape.nTok, tile, buf, true)
				useSIMD = false
				mulTileQ0(want, w, &a, nil, shape.nTok, tile, buf, true)
				useSIMD = true
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v %v: output %d (token %d, row %d): q0rep16 %v, portable %v", typ, shape, i, i/shape.rows, i%shape.rows, got[i], want[i])
				}
			}
			if want[0] == 0 || want[len(want)-1] == 0 {
				t.Fatalf("%v %v: zero outputs", typ, shape)
			}
		}
	}
}
