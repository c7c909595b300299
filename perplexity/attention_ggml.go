package perplexity

import (
	"math"
	"math/bits"
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
// (expf is the scalar libm call; see expf32). With AVX-512 the steps of a
// tile run in the kernels of attention_avx512_amd64.s; the Go loops below
// are the portable path and their definition.
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
// The key tiles of every key/value head are transposed once; then each
// work item, one head and a block of qBlock query rows, takes the key
// tiles in order and runs every row of the block that reaches a tile over
// it while the tile is in cache, each row keeping its own M, S and output
// (the operations of one row are those of ggml, in its order).
func (r *runner) attentionGGML(q, att, k, v []float32, p0, n int, scale float32) {
	m := r.m
	D, H, KV := m.HeadDim, m.Heads, m.KVHeads
	qDim, kvDim := H*D, KV*D
	group := H / KV
	T := p0 + n // keys
	const qBlock = 16
	blocks := (n + qBlock - 1) / qBlock
	tiles := (T + faTileKV - 1) / faTileKV
	tileSize := D * faTileKV
	// The key tiles, transposed ([kv head][tile][D][64]); keys past T are
	// zero (their scores are masked anyway).
	if n := KV * tiles * tileSize; cap(r.attnK) < n {
		r.attnK = make([]float32, n)
	}
	kts := r.attnK[:KV*tiles*tileSize]
	parallelFor(r.threads, KV*tiles, func(_, item int) {
		kvh, c := item/tiles, item%tiles*faTileKV
		kt := kts[item*tileSize:][:tileSize]
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
	})
	// Per worker: the scores of one tile for each row of a block.
	bufs := r.sc.attnBufs(r.threads, qBlock*faTileKV)
	parallelFor(r.threads, H*blocks, func(worker, item int) {
		h, b := item/blocks, item%blocks
		kvh := h / group
		// Rows t0..t1-1 of q, positions p0+t0..p0+t1-1.
		t0, t1 := b*qBlock, min((b+1)*qBlock, n)
		ps := bufs[worker][:qBlock*faTileKV]
		var ms, ss [qBlock]float32 // each row's M and S
		for t := t0; t < t1; t++ {
			clear(att[t*qDim+h*D : t*qDim+(h+1)*D])
			ms[t-t0] = float32(math.Inf(-1))
		}
		for c := r.attnFrom(p0+t0) / faTileKV * faTileKV; c < p0+t1; c += faTileKV {
			kt := kts[(kvh*tiles+c/faTileKV)*tileSize:][:tileSize]
			r0 := max(t0, c-p0) // the first row that reaches the tile
			if useAVX512 {
				faScoresRows(ps, q[r0*qDim+h*D:], qDim, kt, t1-r0)
			}
			var full uint32 // rows (from r0) that see every key of the tile
			for t := r0; t < t1; t++ {
				pos := p0 + t
				lo, hi := max(c, r.attnFrom(pos)), min(c+faTileKV, pos+1) // unmasked keys of the tile
				if lo >= hi {
					continue // the whole tile is masked for this row
				}
				qv := q[t*qDim+h*D : t*qDim+(h+1)*D]
				out := att[t*qDim+h*D : t*qDim+(h+1)*D]
				p := ps[(t-r0)*faTileKV:][:faTileKV]
				var tileMax float32
				if useAVX512 {
					tileMax = faMaskMax(p, scale, lo-c, hi-c)
				} else {
					tileMax = faTileScoresGo(p, qv, kt, scale, lo-c, hi-c)
				}
				M, S := ms[t-t0], ss[t-t0]
				Mnew := max(M, tileMax)
				if Mnew > M {
					e := expf32(M - Mnew)
					for d := range out {
						out[d] *= e
					}
					S *= e
				}
				M = Mnew
				S = float32(float64(S) + faTileExp(p, Mnew))
				ms[t-t0], ss[t-t0] = M, S
				if useAVX512 && lo == c && hi == c+faTileKV {
					full |= 1 << (t - r0)
					continue
				}
				// Masked keys have p = 0 and add nothing.
				faTilePV(out, p[lo-c:hi-c], v[lo*kvDim+kvh*D:], kvDim)
			}
			// The rows over whole tiles, four at a time where they can.
			for full != 0 {
				i := bits.TrailingZeros32(full)
				out := att[(r0+i)*qDim+h*D:]
				if full>>i&15 == 15 && D%16 == 0 {
					_ = out[3*qDim+D-1]
					_ = v[(c+faTileKV-1)*kvDim+(kvh+1)*D-1]
					faPV4x512(&ps[i*faTileKV], &v[c*kvDim+kvh*D], kvDim, faTileKV, D, &out[0], qDim)
					full &^= 15 << i
					continue
				}
				faTilePV(out[:D], ps[i*faTileKV:][:faTileKV], v[c*kvDim+kvh*D:], kvDim)
				full &^= 1 << i
			}
		}
		for t := t0; t < t1; t++ {
			out := att[t*qDim+h*D : t*qDim+(h+1)*D]
			inv := float32(0)
			if S := ss[t-t0]; S != 0 {
				inv = 1 / S
			}
			for d := range out {
				out[d] *= inv
			}
		}
	})
}

// faScoresRows computes the raw scores (faScores1x512) of the n query rows
// q, q+ldq, ... (n <= 16) over the tile kt into s[0:64], s[64:128], ...,
// four rows at a time where it can.
func faScoresRows(s, q []float32, ldq int, kt []float32, n int) {
	D := len(kt) / faTileKV
	_ = s[n*faTileKV-1]
	_ = q[(n-1)*ldq+D-1]
	i := 0
	for ; i+4 <= n; i += 4 {
		faScores4x512(&q[i*ldq], ldq, &kt[0], D, &s[i*faTileKV])
	}
	for ; i < n; i++ {
		faScores1x512(&q[i*ldq], &kt[0], D, &s[i*faTileKV])
	}
}

// faMaskMax scales the raw scores p of a tile, sets those of keys outside
// lo..hi-1 to −Inf and returns the largest (faTileScoresGo after the fma
// chains), with AVX-512.
func faMaskMax(p []float32, scale float32, lo, hi int) float32 {
	p = p[:faTileKV]
	mask := (uint64(1)<<hi - 1) &^ (uint64(1)<<lo - 1)
	m := faMaskMax512(&p[0], scale, mask)
	if m != 0 {
		return m
	}
	// Go's max orders −0 below +0.
	m = float32(math.Inf(-1))
	for _, s := range p {
		m = max(m, s)
	}
	return m
}

// faTileScores sets p[j] to the score of key j of a tile (kt, transposed)
// for query qv, × scale, for lo <= j < hi, and to −Inf for the other keys
// of the tile; it returns the largest p[j].
func faTileScores(p, qv, kt []float32, scale float32, lo, hi int) float32 {
	p = p[:faTileKV]
	if useAVX512 {
		faScoresRows(p, qv, len(qv), kt, 1)
		return faMaskMax(p, scale, lo, hi)
	}
	return faTileScoresGo(p, qv, kt, scale, lo, hi)
}

// faTileScoresGo is faTileScores without AVX-512.
func faTileScoresGo(p, qv, kt []float32, scale float32, lo, hi int) float32 {
	D := len(qv)
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
		if j >= lo && j < hi {
			s = p[j] * scale
		}
		p[j] = s
		tileMax = max(tileMax, s)
	}
	return tileMax
}

// faTileExp replaces the scores p of a tile by ggml_v_expf(p[j] − M) and
// returns their sum as ggml forms it: reduce16 of each group of 16 lanes,
// added in float64.
func faTileExp(p []float32, M float32) float64 {
	p = p[:faTileKV]
	if useAVX512 {
		return faExpSum512(&p[0], M)
	}
	return faTileExpGo(p, M)
}

// faTileExpGo is faTileExp without AVX-512.
func faTileExpGo(p []float32, M float32) float64 {
	var sum float64
	for i := 0; i < faTileKV; i += faLanes {
		var lanes [faLanes]float32
		for l := range lanes {
			e := vexpf(p[i+l] - M)
			p[i+l] = e
			lanes[l] = e
		}
		sum += float64(reduce16(&lanes))
	}
	return sum
}

// faTilePV adds the fma chain over j of p[j]·v[j·ldv : j·ldv+len(out)] to
// out (j in order; len(p) >= 1).
func faTilePV(out, p, v []float32, ldv int) {
	D := len(out)
	_ = v[(len(p)-1)*ldv+D-1]
	switch {
	case useAVX512 && D%16 == 0:
		faPV512(&p[0], &v[0], ldv, len(p), D, &out[0])
	case useSIMD && D%8 == 0:
		faPV(&p[0], &v[0], ldv, len(p), D, &out[0])
	default:
		for j, pj := range p {
			vv := v[j*ldv:][:D]
			for d := range out {
				out[d] = fma32(pj, vv[d], out[d])
			}
		}
	}
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
	if useAVX512 && m > 0 {
		swiglu512(&g[0], &u[0], m)
		swigluTail(g[m:], u[m:])
		return
	}
	swigluGGMLGo(g, u)
}

// swigluGGMLGo is swigluGGML without AVX-512.
func swigluGGMLGo(g, u []float32) {
	u = u[:len(g)]
	m := len(g) / faLanes * faLanes
	for i, x := range g[:m] {
		g[i] = x / (1 + vexpf(0-x)) * u[i]
	}
	swigluTail(g[m:], u[m:])
}

// swigluTail is ggml_vec_swiglu_f32's scalar loop after the vectors.
func swigluTail(g, u []float32) {
	u = u[:len(g)]
	for i, x := range g {
		g[i] = x / (1 + expf32(-x)) * u[i]
	}
}
