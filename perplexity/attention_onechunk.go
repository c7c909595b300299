package perplexity

import "math"

// ggml's one-row flash attention (ggml_compute_forward_flash_attn_ext_f16_one_chunk),
// which llama.cpp runs on the CPU when a micro-batch holds fewer than
// faTileQ query rows of a sequence or the head size is not a multiple of
// the vector width: at ctx 128, llama-perplexity's default batch of 2048
// tokens holds 16 sequences, and split_equal gives each ubatch 32 rows of
// every one of them. Per query row and head, with the F16 key/value cache:
//
//	q    = fp16(q)                                  (from_float of the K type's vec_dot_type)
//	s_j  = ggml_vec_dot_f16(k_j, q) · scale         (float32; see vecDotF16)
//	if s_j > M: M = s_j; ms = expf(Mold − M); VKQ = fp16(VKQ·ms); vs = 1
//	else:       vs = expf(s_j − M)
//	VKQ  = fp16(VKQ + v_j·vs)                       (ggml_vec_mad_f16)
//	S    = S·ms + vs
//
// for the unmasked keys j in order, then out = float32(VKQ) · (1/S). The
// accumulator VKQ is a row of fp16 values, rounded after every key. ggml
// runs the vector steps on 64 elements at a time; the elements past the
// last multiple of 64 take its scalar loops, which the compiler (gnu++17,
// -ffp-contract=fast by default) contracts to fused multiply-adds like the
// vector steps: both are fma here.

// attentionOneChunk is attention (forward.go) as the one-row kernel
// computes it.
func (r *runner) attentionOneChunk(q, att, k, v []float32, p0, n int, scale float32) {
	m := r.m
	D, H, KV := m.HeadDim, m.Heads, m.KVHeads
	qDim, kvDim := H*D, KV*D
	group := H / KV
	bufs := r.sc.attnBufs(r.threads, 2*D)
	parallelFor(r.threads, H*n, func(worker, item int) {
		h, i := item/n, item%n
		kvh := h / group
		pos := p0 + i
		buf := bufs[worker]
		qh, acc := buf[:D], buf[D:2*D]
		for d, x := range q[i*qDim+h*D : i*qDim+(h+1)*D] {
			qh[d] = roundF16(x)
		}
		clear(acc)
		M, S := float32(math.Inf(-1)), float32(0)
		for j := r.attnFrom(pos); j <= pos; j++ {
			s := vecDotF16(k[j*kvDim+kvh*D:][:D], qh) * scale
			ms, vs := float32(1), float32(1)
			if s > M {
				Mold := M
				M = s
				ms = expf32(Mold - M)
				ocScale(acc, ms)
			} else {
				vs = expf32(s - M)
			}
			ocMad(acc, v[j*kvDim+kvh*D:][:D], vs)
			S = fma32(S, ms, vs)
		}
		inv := float32(0)
		if S != 0 {
			inv = 1 / S
		}
		out := att[i*qDim+h*D : i*qDim+(h+1)*D]
		for d, y := range acc {
			out[d] = y * inv
		}
	})
}

// vecDotF16 is ggml_vec_dot_f16 with AVX-512 (GGML_F16_STEP 64,
// GGML_F16_EPR 16) on rows of fp16 values held as float32: four
// accumulators of 16 lanes, element 64i+16j+l added to lane l of
// accumulator j by a fused multiply-add; then accumulators 0+2 and 1+3,
// their sum, _mm512_reduce_add_ps in float64 with the products of the
// elements past the last multiple of 64 added one by one.
func vecDotF16(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	np := n &^ 63
	var sum float64
	if np > 0 {
		var acc [4][16]float32
		for i := 0; i < np; i += 64 {
			for j := range acc {
				a := &acc[j]
				for l := range a {
					a[l] = fma32(x[i+16*j+l], y[i+16*j+l], a[l])
				}
			}
		}
		for l := range acc[0] {
			acc[0][l] += acc[2][l]
			acc[1][l] += acc[3][l]
		}
		for l := range acc[0] {
			acc[0][l] += acc[1][l]
		}
		sum = float64(reduce16(&acc[0]))
	}
	for i := np; i < n; i++ {
		sum += float64(x[i] * y[i])
	}
	return float32(sum)
}

// ocMad is ggml_vec_mad_f16 on an fp16 accumulator held as float32:
// acc[d] = fp16(v[d]·s + acc[d]), fused, in its vector steps and in its
// scalar loop alike.
func ocMad(acc, v []float32, s float32) {
	v = v[:len(acc)]
	if useAVX512 && len(acc) >= 16 {
		m := len(acc) &^ 15
		ocMadF16(&acc[0], &v[0], s, m)
		acc, v = acc[m:], v[m:]
	}
	for d, x := range v {
		acc[d] = roundF16(fma32(x, s, acc[d]))
	}
}

// ocScale is ggml_vec_scale_f16: acc[d] = fp16(acc[d]·s).
func ocScale(acc []float32, s float32) {
	if useAVX512 && len(acc) >= 16 {
		m := len(acc) &^ 15
		ocScaleF16(&acc[0], s, m)
		acc = acc[m:]
	}
	for d, y := range acc {
		acc[d] = roundF16(y * s)
	}
}
