package perplexity

// qkNorm applies the per-head RMSNorm of q and k (Qwen3's q_norm/k_norm;
// llama.cpp src/models/qwen3.cpp build_norm on Qcur/Kcur shaped [head_dim,
// heads, tokens] before rope) when the layer has one: every head of every
// token is normalized over its HeadDim values and multiplied by the
// shared weight.
func (r *runner) qkNorm(l *layerWeights, T int) {
	if l.qNorm == nil && l.kNorm == nil {
		return
	}
	m := r.m
	D := m.HeadDim
	r.rows(T, func(t0, t1 int) {
		if l.qNorm != nil {
			q := r.q[t0*m.Heads*D : t1*m.Heads*D]
			rmsNorm(q, q, l.qNorm, (t1-t0)*m.Heads, D, m.eps)
		}
		if l.kNorm != nil {
			k := r.k[t0*m.KVHeads*D : t1*m.KVHeads*D]
			rmsNorm(k, k, l.kNorm, (t1-t0)*m.KVHeads, D, m.eps)
		}
	})
}
