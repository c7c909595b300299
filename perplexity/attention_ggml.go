package perplexity

import (
	"math"
)

// ggml's CPU flash attention (ggml_compute_forward_flash_attn_ext_tiled),
// which llama-perplexity runs (flash_attn auto resolves to enabled on the
// CPU) whenever a batch has at least faTileQ query rows and the head
// dimension is a multiple of the SIMD width. Per query row and head, keys
// are taken in tiles of faTileKV from position 0:
//
//	s_j   = fma-chain over d of q[d]·k_j[d] (float32, k from the F16 cache), × scale
//	M'    = max(M, max_j s_j); if M' > M: VKQ, S ×= expf(M − M')
//	p_j   = ggml_v_expf(s_j − M'); S += Σ p_j (float64 per 16 lanes, then float32)
//	VKQ   = fma-chain over j of p_j·v_j (float32)
//
// and the output is VKQ × (1/S). Every step is reproduced here to the bit
// (expf is the scalar libm call; see expf32).
const (
	faTileQ  = 64
	faTileKV = 64
	faLanes  = 16 // GGML_F32_EPR with AVX-512
)

// useGGMLAttention reports whether attention of T query rows follows the
// tiled kernel: llama.cpp emulation, enough rows, head size a multiple of
// the vector width.
func (r *runner) useGGMLAttention(T int) bool {
	return r.m.activations && T >= faTileQ && r.m.HeadDim%faLanes == 0
}

// attentionGGML is attention (forward.go) as the tiled kernel computes it.
func (r *runner) attentionGGML(T int, scale float32) {
	m := r.m
	D, H, KV := m.HeadDim, m.Heads, m.KVHeads
	qDim, kvDim := H*D, KV*D
	group := H / KV
	q, k, v, att := r.q, r.k, r.v, r.att
	const qBlock = 16
	blocks := (T + qBlock - 1) / qBlock
	tiles := (T + faTileKV - 1) / faTileKV
	// Per worker: the key tiles of one head transposed ([tile][D][64]),
	// then the scores of one tile.
	bufs := r.sc.attnBufs(r.threads, tiles*D*faTileKV+faTileKV)
	parallelFor(r.threads, H*blocks, func(worker, item int) {
		h, b := item/blocks, item%blocks
		kvh := h / group
		t0, t1 := b*qBlock, min((b+1)*qBlock, T)
		buf := bufs[worker]
		kts, p := buf[:tiles*D*faTileKV], buf[tiles*D*faTileKV:][:faTileKV]
		// The tiles these rows reach (keys <= t1-1), transposed; keys
		// past T are zero (their scores are masked anyway).
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
			j0 := r.attnFrom(t) // first key in the window
			for c := 0; c <= t; c += faTileKV {
				lo, hi := max(c, j0), min(c+faTileKV, t+1) // unmasked keys of the tile
				if lo >= hi {
					continue // the whole tile is masked for this row
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
				// Masked keys have p = 0 and add nothing.
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
	})
}

// vexpf is ggml_v_expf for AVX-512 on one lane: exp(x) from a degree-5
// polynomial after reduction by ln 2, with fused multiply-adds.
func vexpf(x float32) float32 {
	const (
		r = 0x1.8p23
	)
	z := fma32(x, 0x1.715476p+0, r)
	n := z - r
	b := fma32(-n, 0x1.7f7d1cp-20, fma32(-n, 0x1.62e4p-1, x))
	if n != n || math.Abs(float64(n)) > 192 {
		if n <= 0 || n != n {
			return 0
		}
		return float32(math.Inf(1))
	}
	u := b * b
	j := fma32(fma32(fma32(0x1.0e4020p-7, b, 0x1.573e2ep-5), u, fma32(0x1.555e66p-3, b, 0x1.fffdb6p-2)), u, fma32(0x1.ffffecp-1, b, 1))
	return float32(math.Ldexp(float64(j), int(n)))
}

// swigluGGML is ggml_vec_swiglu_f32 on one row with AVX-512: g = silu(g)·u,
// silu(x) = x / (1 + ggml_v_expf(0 − x)) on groups of 16 from the row
// start, x / (1 + expf(−x)) for the rest.
func swigluGGML(g, u []float32) {
	u = u[:len(g)]
	m := len(g) / faLanes * faLanes
	for i, x := range g[:m] {
		g[i] = x / (1 + vexpf(0-x)) * u[i]
	}
	for i := m; i < len(g); i++ {
		x := g[i]
		g[i] = x / (1 + expf32(-x)) * u[i]
	}
}
