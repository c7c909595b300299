package perplexity

import (
	"math"

	"github.com/quantbridge/quantbridge/graph"
)

// ggmlRope holds what ggml's CPU rope needs to rebuild its float32
// rotation tables (ggml_rope_cache_init).
type ggmlRope struct {
	thetaScale float32   // powf(base, -2/dims)
	freqScale  float32   // 1/linear factor
	factors    []float32 // rope_freqs.weight or a longrope factor list, nil: none
	mscale     float32   // multiplies cos and sin (attn_factor; 0 means 1)
}

func newGGMLRope(base float64, dims int, sc *graph.RopeScaling, factors []float32) *ggmlRope {
	g := &ggmlRope{freqScale: 1, factors: factors}
	if factors == nil && sc != nil {
		switch sc.Type {
		case "", "none", "default":
		case "linear":
			g.freqScale = float32(1 / sc.Factor)
		default:
			return nil
		}
	}
	g.thetaScale = float32(math.Pow(float64(float32(base)), float64(float32(-2)/float32(dims))))
	return g
}

// table fills cos and sin for positions 0..T-1 as ggml_rope_cache_init
// does (ext_factor 0): theta = p·theta_scale^i in float32, divided by the
// factor, times freq_scale, then cosf and sinf (glibc's) times mscale.
func (g *ggmlRope) table(cos, sin []float32, T, half int) {
	for p := 0; p < T; p++ {
		theta := float32(p)
		for i := 0; i < half; i++ {
			th := theta
			if g.factors != nil {
				th /= g.factors[i]
			}
			th *= g.freqScale
			c, sn := cosf32(th), sinf32(th)
			if g.mscale != 0 {
				c, sn = c*g.mscale, sn*g.mscale
			}
			cos[p*half+i] = c
			sin[p*half+i] = sn
			theta *= g.thetaScale
		}
	}
}

// ropeFMA rotates (x0, x1) by (cos, sin) as ggml's x86 build of
// rotate_pairs does: gcc contracts x0·cos − x1·sin into
// fma(x0, cos, −(x1·sin)) and x0·sin + x1·cos into fma(x0, sin, x1·cos).
// The float32 fma is taken in float64, where x0·cos is exact.
func ropeFMA(x0, x1, cos, sin float32) (float32, float32) {
	y0 := float32(float64(x0)*float64(cos) - float64(x1*sin))
	y1 := float32(float64(x0)*float64(sin) + float64(x1*cos))
	return y0, y1
}
