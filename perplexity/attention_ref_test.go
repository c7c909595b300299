package perplexity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attentionGGMLRef is attentionGGML as it was before the loop interchange
// and the AVX-512 kernels (one query row at a time over all its key tiles,
// the softmax step lane by lane in Go): the reference the current kernel
// must reproduce bit for bit.
func (r *runner) attentionGGMLRef(T int, scale float32) {
	m := r.m
	D, H, KV := m.HeadDim, m.Heads, m.KVHeads
	qDim, kvDim := H*D, KV*D
	group := H / KV
	q, k, v, att := r.q, r.k, r.v, r.att
	const qBlock = 16
	blocks := (T + qBlock - 1) / qBlock
	tiles := (T + faTileKV - 1) / faTileKV
	kts := make([]float32, tiles*D*faTileKV)
	p := make([]float32, faTileKV)
	for item := 0; item < H*blocks; item++ {
		h, b := item/blocks, item%blocks
		kvh := h / group
		t0, t1 := b*qBlock, min((b+1)*qBlock, T)
		for c := 0; c < t1; c += faTileKV {
			kt := kts[c/faTileKV*D*faTileKV:][:D*faTileKV]
			for j := 0; j < faTileKV; j++ {
				if c+j >= T {
					for d := 0; d < D; d++ {
						kt[d*faTileKV+j] = 0
					}
					continue
				}
				kv := k[(c+j)*kvDim+kvh*D:][:D]
				for d, x := range kv {
					kt[d*faTileKV+j] = x
				}
			}
		}
		for t := t0; t < t1; t++ {
			qv := q[t*qDim+h*D : t*qDim+(h+1)*D]
			out := att[t*qDim+h*D : t*qDim+(h+1)*D]
			clear(out)
			M := float32(math.Inf(-1))
			var S float32
			j0 := r.attnFrom(t)
			for c := 0; c <= t; c += faTileKV {
				lo, hi := max(c, j0), min(c+faTileKV, t+1)
				if lo >= hi {
					continue
				}
				kt := kts[c/faTileKV*D*faTileKV:][:D*faTileKV]
				if useSIMD {
					faScores(&qv[0], &kt[0], D, &p[0])
				} else {
					for j := range p {
						var acc float32
						for d, x := range qv {
							acc = fma32(x, kt[d*faTileKV+j], acc)
						}
						p[j] = acc
					}
				}
				tileMax := float32(math.Inf(-1))
				for j := range p {
					s := float32(math.Inf(-1))
					if c+j >= lo && c+j < hi {
						s = p[j] * scale
					}
					p[j] = s
					tileMax = max(tileMax, s)
				}
				Mnew := max(M, tileMax)
				if Mnew > M {
					ms := expf32(M - Mnew)
					for d := range out {
						out[d] *= ms
					}
					S *= ms
				}
				M = Mnew
				var sum float64
				for i := 0; i < faTileKV; i += faLanes {
					var lanes [faLanes]float32
					for l := range lanes {
						e := vexpf(p[i+l] - Mnew)
						p[i+l] = e
						lanes[l] = e
					}
					sum += float64(reduce16(&lanes))
				}
				S = float32(float64(S) + sum)
				if useSIMD && D%8 == 0 {
					faPV(&p[lo-c], &v[lo*kvDim+kvh*D], kvDim, hi-lo, D, &out[0])
				} else {
					for j := lo; j < hi; j++ {
						pj := p[j-c]
						vv := v[j*kvDim+kvh*D : j*kvDim+(kvh+1)*D]
						for d := range out {
							out[d] = fma32(pj, vv[d], out[d])
						}
					}
				}
			}
			inv := float32(0)
			if S != 0 {
				inv = 1 / S
			}
			for d := range out {
				out[d] *= inv
			}
		}
	}
}

// attnRunner is a runner with random q and F16-rounded k, v for T rows of
// H heads (KV key/value heads) of size D. Every 97th key is large, so the
// running maximum moves and exponentials underflow.
func attnRunner(rng *rand.Rand, T, D, H, KV, threads int) *runner {
	r := &runner{m: &Model{HeadDim: D, Heads: H, KVHeads: KV, activations: true}, threads: threads}
	r.q = make([]float32, T*H*D)
	r.k = make([]float32, T*KV*D)
	r.v = make([]float32, T*KV*D)
	r.att = make([]float32, T*H*D)
	for i := range r.q {
		r.q[i] = float32(rng.NormFloat64())
	}
	for i := range r.k {
		x := rng.NormFloat64()
		if (i/D)%97 == 5 {
			x *= 12
		}
		r.k[i] = roundF16(float32(x))
		r.v[i] = roundF16(float32(rng.NormFloat64()))
	}
	return r
}

// TestAttentionGGMLMatchesRef checks the tiled attention against the
// one-row-at-a-time reference, bit for bit, in the kernels this build and
// CPU select, then without AVX-512 and without SIMD, for row counts that
// are not multiples of the tile sizes and with a sliding window.
func TestAttentionGGMLMatchesRef(t *testing.T) {
	oldSIMD, old512 := useSIMD, useAVX512
	t.Cleanup(func() { useSIMD, useAVX512 = oldSIMD, old512 })
	for mode := range 3 {
		useAVX512 = old512 && mode == 0
		useSIMD = oldSIMD && mode < 2
		t.Run(fmt.Sprintf("simd=%v,avx512=%v", useSIMD, useAVX512), testAttentionGGMLMatchesRef)
	}
}

func testAttentionGGMLMatchesRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	for _, tc := range []struct{ T, D, H, KV, window, threads int }{
		{64, 16, 2, 1, 0, 1},
		{100, 32, 4, 2, 0, 2},
		{200, 64, 4, 1, 0, 3},
		{150, 48, 2, 2, 40, 2},
		{333, 64, 2, 1, 100, 1},
		{300, 64, 8, 2, 70, 2},
		{260, 80, 2, 1, 0, 2},
		{200, 144, 2, 2, 0, 1},
	} {
		t.Run(fmt.Sprintf("T%d-D%d-H%d-KV%d-w%d", tc.T, tc.D, tc.H, tc.KV, tc.window), func(t *testing.T) {
			r := attnRunner(rng, tc.T, tc.D, tc.H, tc.KV, tc.threads)
			r.window = tc.window
			scale := 1 / float32(math.Sqrt(float64(tc.D)))
			r.attentionGGMLRef(tc.T, scale)
			want := append([]float32(nil), r.att...)
			clear(r.att)
			r.attentionGGML(r.q, r.att, r.k, r.v, 0, tc.T, scale)
			for i, x := range r.att {
				if math.Float32bits(x) != math.Float32bits(want[i]) {
					t.Fatalf("att[%d] (row %d) = %x, reference %x", i, i/(tc.H*tc.D), x, want[i])
				}
			}
		})
	}
}

// BenchmarkAttentionGGML times the tiled attention of one layer at 32
// heads of 64 with 4 key/value heads (a 2048-wide model) on 2 threads.
func BenchmarkAttentionGGML(b *testing.B) {
	for _, T := range []int{512, 2048} {
		b.Run(fmt.Sprintf("T%d", T), func(b *testing.B) {
			r := attnRunner(rand.New(rand.NewPCG(1, 2)), T, 64, 32, 4, 2)
			scale := float32(1.0 / 8)
			for b.Loop() {
				r.attentionGGML(r.q, r.att, r.k, r.v, 0, T, scale)
			}
		})
	}
}

// TestAttentionOneChunkSIMD runs the one-row flash attention over the last
// n rows of a sequence (keys and values of every earlier position from the
// cache) with the AVX-512 fp16 steps and with the Go loops: the same bits,
// for head sizes with and without a scalar tail and with a sliding
// window. The rows' results must also not depend on which other rows run
// with them: the last 5 rows alone give the bits of the last 5 of 40.
func TestAttentionOneChunkSIMD(t *testing.T) {
	old512 := useAVX512
	t.Cleanup(func() { useAVX512 = old512 })
	rng := rand.New(rand.NewPCG(11, 13))
	for _, tc := range []struct{ T, n, D, H, KV, window int }{
		{100, 40, 32, 4, 2, 0},
		{90, 20, 48, 2, 1, 0},
		{130, 33, 64, 4, 4, 50},
		{70, 7, 80, 2, 1, 0},
	} {
		r := attnRunner(rng, tc.T, tc.D, tc.H, tc.KV, 2)
		r.window = tc.window
		qDim := tc.H * tc.D
		p0 := tc.T - tc.n
		q := r.q[p0*qDim:]
		scale := 1 / float32(math.Sqrt(float64(tc.D)))
		run := func(simd bool, rows int) []float32 {
			useAVX512 = old512 && simd
			att := make([]float32, rows*qDim)
			r.attentionOneChunk(q[(tc.n-rows)*qDim:], att, r.k, r.v, tc.T-rows, rows, scale)
			return att
		}
		want := run(false, tc.n)
		got := run(true, tc.n)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("T%d D%d: att[%d] = %g with AVX-512, %g without", tc.T, tc.D, i, got[i], want[i])
			}
		}
		tail := run(true, 5)
		for i, x := range tail {
			if w := want[(tc.n-5)*qDim+i]; math.Float32bits(x) != math.Float32bits(w) {
				t.Fatalf("T%d D%d: last 5 rows alone: att[%d] = %g, with the others %g", tc.T, tc.D, i, x, w)
			}
		}
	}
}
