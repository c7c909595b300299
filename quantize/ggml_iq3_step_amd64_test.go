//go:build amd64 && !purego

package quantize

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// iq3Step (AVX-512) gives the same levels, grid flags, sums (to the bit,
// added up by iq3Sums)
// and failure flag as the portable stepGo at every candidate scale of both
// searches, on Gaussian and heavy-tailed sub-blocks, with x² and imatrix
// weights, zero, negative, subnormal, infinite and NaN weights, and values
// whose errors overflow (no neighbour: ggml aborts).
func TestIQ3StepAVX512MatchesGo(t *testing.T) {
	if !iq3StepAVX512 {
		t.Log("this CPU lacks AVX-512 F/VL or BMI2: iq3Step not compared")
		return
	}
	r := rand.New(rand.NewPCG(11, 17))
	specials := []float32{0, -1, 1e-40, float32(math.Inf(1)), float32(math.NaN()), 1e30}
	var fails, offGrid, steps int
	for trial := range 3000 {
		var xval, weight, waux, wx [32]float32
		var max float32
		for i := range xval {
			v := float32(r.NormFloat64())
			switch trial % 5 {
			case 1:
				v = float32(r.ExpFloat64() * r.ExpFloat64())
			case 2:
				v = float32(r.IntN(4)) * 0.25
			case 3:
				v *= 1e36 // errors overflow
			}
			xval[i] = abs32(v)
			if xval[i] > max {
				max = xval[i]
			}
			weight[i] = xval[i] * xval[i]
			if trial%2 == 1 {
				weight[i] = float32(r.ExpFloat64())
			}
		}
		if trial%7 == 6 {
			weight[r.IntN(32)] = specials[r.IntN(len(specials))]
		}
		if max == 0 {
			continue
		}
		for i := range xval {
			waux[i] = sqrt32(weight[i])
			wx[i] = weight[i] * xval[i]
		}
		for _, size := range []int{256, 512} {
			g := iq3Tables(size)
			for is := -15; is <= 15; is++ {
				id := (15 + float32(float32(is)*0.2)) / max
				var sq [8]float32
				iq3ScaledLevels(&sq, 1/id)
				var la, lb [32]int8
				var oa, ob [8]bool
				qa, q2a, oka := g.stepGo(&xval, &waux, &wx, &weight, id, &sq, &la, &oa)
				var prod [4][64]float32
				var sums [4][2]float32
				okb := iq3Step(&g.step.info[0], &g.step.lanes16[0], &xval, &waux, &wx, &weight, id, &sq, &lb, &ob, &prod[is&3])
				iq3Sums(&prod[0], 1, &sums[0])
				qb, q2b := sums[is&3][0], sums[is&3][1]
				if la != lb || oa != ob || oka != okb || math.Float32bits(qa) != math.Float32bits(qb) || math.Float32bits(q2a) != math.Float32bits(q2b) {
					t.Fatalf("trial %d grid %d is %d: Go %v %v %v %g %g, AVX-512 %v %v %v %g %g\nx %v\nw %v",
						trial, size, is, la, oa, oka, qa, q2a, lb, ob, okb, qb, q2b, xval, weight)
				}
				steps++
				if !oka {
					fails++
				}
				for _, on := range oa {
					if !on {
						offGrid++
					}
				}
			}
		}
	}
	if fails == 0 || offGrid == 0 {
		t.Fatalf("no failed search (%d) or no off-grid group (%d): the cases do not cover the kernel", fails, offGrid)
	}
	t.Logf("%d steps compared (%d failed, %d off-grid groups)", steps, fails, offGrid)
}

// The IQ3 quantizers give the same bytes with iq3Step as with the portable
// step, including sub-blocks holding NaN (which take the portable step).
func TestIQ3StepQuantizersMatchGo(t *testing.T) {
	if !iq3StepAVX512 {
		t.Log("this CPU lacks AVX-512 F/VL or BMI2: iq3Step not compared")
		return
	}
	defer func(v bool) { useSIMD = v }(useSIMD)
	r := rand.New(rand.NewPCG(5, 8))
	x := make([]float32, 64*256)
	w := make([]float32, len(x))
	for i := range x {
		x[i] = float32(r.NormFloat64()) * 0.02
		w[i] = float32(r.ExpFloat64())
	}
	x[300] = float32(math.NaN())
	for i := 512; i < 768; i++ {
		x[i] = 0
	}
	for _, q := range []func([]byte, []float32, []float32){QuantizeIQ3XXS, QuantizeIQ3S} {
		for _, ww := range [][]float32{nil, w} {
			a := make([]byte, 64*iq3sBlock)
			b := make([]byte, 64*iq3sBlock)
			useSIMD = false
			q(a, x, ww)
			useSIMD = true
			if !useIQ3Step() {
				t.Fatal("useIQ3Step false with useSIMD on an AVX-512 CPU")
			}
			q(b, x, ww)
			if !bytes.Equal(a, b) {
				t.Errorf("iq3Step and portable outputs differ (weights %v)", ww != nil)
			}
		}
	}
}

// Every point of both grids' maps goes through iq3Step as each of the 8
// groups: values placed near the point (id 1: level l where x ~ 2l+1), so
// that every neighbour list, long ones (up to 38 points, 3 chunks) and
// ties included, is searched by the kernel and by stepGo.
func TestIQ3StepAVX512EveryList(t *testing.T) {
	if !iq3StepAVX512 {
		t.Log("this CPU lacks AVX-512 F/VL or BMI2: iq3Step not compared")
		return
	}
	r := rand.New(rand.NewPCG(21, 4))
	var long int
	for _, size := range []int{256, 512} {
		g := iq3Tables(size)
		for u := range 4096 {
			if v := g.kmap[u]; v < 0 && g.neighbours[-v-1] > 16 {
				long++
			}
			for trial := range 3 {
				var xval, weight, waux, wx [32]float32
				for k := range 8 {
					p := (u + 509*k) & 4095
					for i := range 4 {
						l := float32(p >> (3 * i) & 7)
						x := 2*l + 1 + float32(r.Float64()-0.5)
						w := float32(r.ExpFloat64())
						if trial == 1 { // ties: halfway values, equal weights
							x, w = 2*l, 1
						}
						xval[4*k+i], weight[4*k+i] = abs32(x), w
					}
				}
				for i := range xval {
					waux[i] = sqrt32(weight[i])
					wx[i] = weight[i] * xval[i]
				}
				id := float32(1)
				if trial == 2 {
					id = float32(0.9 + 0.2*r.Float64())
				}
				var sq [8]float32
				iq3ScaledLevels(&sq, 1/id)
				var la, lb [32]int8
				var oa, ob [8]bool
				var prod [4][64]float32
				var sums [4][2]float32
				qa, q2a, oka := g.stepGo(&xval, &waux, &wx, &weight, id, &sq, &la, &oa)
				okb := iq3Step(&g.step.info[0], &g.step.lanes16[0], &xval, &waux, &wx, &weight, id, &sq, &lb, &ob, &prod[0])
				iq3Sums(&prod[0], 1, &sums[0])
				if la != lb || oa != ob || oka != okb || math.Float32bits(qa) != math.Float32bits(sums[0][0]) || math.Float32bits(q2a) != math.Float32bits(sums[0][1]) {
					t.Fatalf("grid %d point %d trial %d: Go %v %v %v %g %g, AVX-512 %v %v %v %g %g",
						size, u, trial, la, oa, oka, qa, q2a, lb, ob, okb, sums[0][0], sums[0][1])
				}
			}
		}
	}
	if long == 0 {
		t.Fatal("no neighbour list longer than one chunk")
	}
}
