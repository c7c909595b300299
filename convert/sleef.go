package convert

import "math"

// A float32 port of SLEEF's powf (Sleef_powf_u10, src/libm/sleefsimdsp.c
// xpowf with logkf/expkf and the double-float helpers of src/common/df.h)
// as built for targets with fused multiply-add (AVX2, AVX-512, NEON: the
// ENABLE_FMA_SP variants). PyTorch's CPU pow kernel calls it for whole
// vectors (Vectorized<float>::pow), so convert_hf_to_gguf's
// `base ** torch.arange(...)` goes through it; sleefPowf reproduces its
// results bit for bit for positive finite bases.

// fma32 is a*b+c rounded once to float32 (the FMA instruction): the
// product is exact in float64, the sum is rounded to float64 with round
// to odd (TwoSum error, then the odd neighbour), which then rounds to
// float32 correctly because float64 has more than 24+1 extra bits.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	s := p + float64(c)
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	if e != 0 && !math.IsInf(s, 0) && math.Float64bits(s)&1 == 0 {
		s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
	}
	return float32(s)
}

// fmapn is x*y-z rounded once (vfmapn, _mm256_fmsub_ps).
func fmapn(x, y, z float32) float32 { return fma32(x, y, -z) }

// fmanp is -x*y+z rounded once (vfmanp, _mm256_fnmadd_ps).
func fmanp(x, y, z float32) float32 { return fma32(-x, y, z) }

// df is SLEEF's vfloat2: an unevaluated sum x+y of two float32s.
type df struct{ x, y float32 }

func mul32(a, b float32) float32 { return float32(a * b) }

func dfAdd2FF(x, y float32) df { // dfadd2_vf2_vf_vf
	s := x + y
	v := s - x
	return df{s, (x - (s - v)) + (y - v)}
}

func dfAddDD(x, y df) df { // dfadd_vf2_vf2_vf2 (|x| >= |y|)
	s := x.x + y.x
	return df{s, (((x.x - s) + y.x) + x.y) + y.y}
}

func dfAdd2DD(x, y df) df { // dfadd2_vf2_vf2_vf2
	s := x.x + y.x
	v := s - x.x
	t := (x.x - (s - v)) + (y.x - v)
	return df{s, t + (x.y + y.y)}
}

func dfAdd2DF(x df, y float32) df { // dfadd2_vf2_vf2_vf
	s := x.x + y
	v := s - x.x
	t := (x.x - (s - v)) + (y - v)
	return df{s, t + x.y}
}

func dfAddFD(x float32, y df) df { // dfadd_vf2_vf_vf2
	s := x + y.x
	return df{s, ((x - s) + y.x) + y.y}
}

func dfNormalize(t df) df {
	s := t.x + t.y
	return df{s, (t.x - s) + t.y}
}

func dfScale(d df, s float32) df { return df{mul32(d.x, s), mul32(d.y, s)} }

func dfDiv(n, d df) df { // dfdiv_vf2_vf2_vf2, FMA variant
	t := 1 / d.x
	s := mul32(n.x, t)
	u := fmapn(t, n.x, s)
	v := fmanp(d.y, t, fmanp(d.x, t, 1))
	return df{s, fma32(s, v, fma32(n.y, t, u))}
}

func dfSqu(x df) df { // dfsqu_vf2_vf2, FMA variant
	s := mul32(x.x, x.x)
	return df{s, fma32(x.x+x.x, x.y, fmapn(x.x, x.x, s))}
}

func dfMulDD(x, y df) df { // dfmul_vf2_vf2_vf2, FMA variant
	s := mul32(x.x, y.x)
	return df{s, fma32(x.x, y.y, fma32(x.y, y.x, fmapn(x.x, y.x, s)))}
}

func dfMulDF(x df, y float32) df { // dfmul_vf2_vf2_vf, FMA variant
	s := mul32(x.x, y)
	return df{s, fma32(x.y, y, fmapn(x.x, y, s))}
}

// sleefLogk is logkf: log(d) as a double-float, for d > 0 finite.
func sleefLogk(d float32) df {
	adj := int32(0)
	if d < math.SmallestNonzeroFloat32*(1<<23) { // SLEEF_FLT_MIN
		d = mul32(d, float32(1<<32)*float32(1<<32))
		adj = 64
	}
	e := int32(math.Float32bits(mul32(d, float32(1.0)/float32(0.75)))>>23&0xff) - 0x7f
	m := math.Float32frombits(uint32(int32(math.Float32bits(d)) + (-e)<<23))
	e -= adj
	x := dfDiv(dfAdd2FF(-1, m), dfAdd2FF(1, m))
	x2 := dfSqu(x)
	t := float32(0.240320354700088500976562)
	t = fma32(t, x2.x, 0.285112679004669189453125)
	t = fma32(t, x2.x, 0.400007992982864379882812)
	c := df{0.66666662693023681640625, 3.69183861259614332084311e-09}
	s := dfMulDF(df{0.69314718246459960938, -1.904654323148236017e-09}, float32(e))
	s = dfAddDD(s, dfScale(x, 2))
	s = dfAddDD(s, dfMulDD(dfMulDD(x2, x), dfAdd2DD(dfMulDF(x2, t), c)))
	return s
}

const (
	sleefL2U   = float32(0.693145751953125)
	sleefL2L   = float32(1.428606765330187045e-06)
	sleefRLN2f = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
)

// sleefExpk is expkf: exp(d.x+d.y) as a float32.
func sleefExpk(d df) float32 {
	u := mul32(d.x+d.y, sleefRLN2f)
	q := int32(math.RoundToEven(float64(u)))
	s := dfAdd2DF(d, mul32(float32(q), -sleefL2U))
	s = dfAdd2DF(s, mul32(float32(q), -sleefL2L))
	s = dfNormalize(s)
	u = 0.00136324646882712841033936
	u = fma32(u, s.x, 0.00836596917361021041870117)
	u = fma32(u, s.x, 0.0416710823774337768554688)
	u = fma32(u, s.x, 0.166665524244308471679688)
	u = fma32(u, s.x, 0.499999850988388061523438)
	t := dfAddDD(s, dfMulDF(dfSqu(s), u))
	t = dfAddFD(1, t)
	u = t.x + t.y
	u = float32(math.Ldexp(float64(u), int(q)))
	if d.x < -104 {
		return 0
	}
	return u
}

// sleefPowf is SLEEF's xpowf for x > 0 finite (other bases fall back to a
// correctly rounded pow; convert never passes them).
func sleefPowf(x, y float32) float32 {
	if y == 0 || x == 1 {
		return 1
	}
	if !(x > 0) || math.IsInf(float64(x), 0) || y != y || math.IsInf(float64(y), 0) {
		return float32(math.Pow(float64(x), float64(y)))
	}
	return sleefExpk(dfMulDF(sleefLogk(x), y))
}

// glibcPowf is glibc's powf (sysdeps/ieee754/flt-32/e_powf.c, the Arm
// optimized-routines algorithm, also musl's) as x86-64 glibc runs it on
// CPUs with FMA (the __powf_fma variant: GCC contracts each a*b+c), for
// x > 0 normal and finite y. It is not correctly rounded (0.82 ULP), and
// PyTorch's scalar pow loop (std::pow on float) reaches it for the
// elements after the last whole SIMD block.
func glibcPowf(x, y float32) float32 {
	if y == 0 || x == 1 {
		return 1
	}
	ix := math.Float32bits(x)
	if !(x > 0) || ix < 0x00800000 || ix >= 0x7f800000 || y != y || math.IsInf(float64(y), 0) {
		return float32(math.Pow(float64(x), float64(y)))
	}
	// log2_inline
	tmp := ix - 0x3f330000
	i := (tmp >> (23 - 4)) % 16
	top := tmp & 0xff800000
	iz := ix - top
	k := int32(top) >> 23
	invc, logc := powfLog2Tab[i][0], powfLog2Tab[i][1]
	z := float64(math.Float32frombits(iz))
	r := math.FMA(z, invc, -1)
	y0 := logc + float64(k)
	r2 := r * r
	yy := math.FMA(powfLog2Poly[0], r, powfLog2Poly[1])
	p := math.FMA(powfLog2Poly[2], r, powfLog2Poly[3])
	r4 := r2 * r2
	q := math.FMA(powfLog2Poly[4], r, y0)
	q = math.FMA(p, r2, q)
	logx := math.FMA(yy, r4, q)

	ylogx := float64(y) * logx
	if ylogx > 0x1.fffffffd1d571p+6 {
		return float32(math.Inf(1))
	}
	if ylogx <= -150 {
		return 0
	}
	// exp2_inline, without TOINT_INTRINSICS (x86-64)
	const shift = 0x1.8p+52 / 32
	kd := ylogx + shift
	ki := math.Float64bits(kd)
	kd -= shift
	rr := ylogx - kd
	t := exp2fTab[ki%32] + ki<<(52-5)
	s := math.Float64frombits(t)
	zz := math.FMA(exp2fPoly[0], rr, exp2fPoly[1])
	rr2 := rr * rr
	v := math.FMA(exp2fPoly[2], rr, 1)
	v = math.FMA(zz, rr2, v)
	return float32(v * s)
}

// Tables of glibc/musl powf (powf_data.c, exp2f_data.c; POWF_SCALE 1).
var powfLog2Tab = [16][2]float64{
	{0x1.661ec79f8f3bep+0, -0x1.efec65b963019p-2},
	{0x1.571ed4aaf883dp+0, -0x1.b0b6832d4fca4p-2},
	{0x1.49539f0f010bp+0, -0x1.7418b0a1fb77bp-2},
	{0x1.3c995b0b80385p+0, -0x1.39de91a6dcf7bp-2},
	{0x1.30d190c8864a5p+0, -0x1.01d9bf3f2b631p-2},
	{0x1.25e227b0b8eap+0, -0x1.97c1d1b3b7afp-3},
	{0x1.1bb4a4a1a343fp+0, -0x1.2f9e393af3c9fp-3},
	{0x1.12358f08ae5bap+0, -0x1.960cbbf788d5cp-4},
	{0x1.0953f419900a7p+0, -0x1.a6f9db6475fcep-5},
	{0x1p+0, 0x0p+0},
	{0x1.e608cfd9a47acp-1, 0x1.338ca9f24f53dp-4},
	{0x1.ca4b31f026aap-1, 0x1.476a9543891bap-3},
	{0x1.b2036576afce6p-1, 0x1.e840b4ac4e4d2p-3},
	{0x1.9c2d163a1aa2dp-1, 0x1.40645f0c6651cp-2},
	{0x1.886e6037841edp-1, 0x1.88e9c2c1b9ff8p-2},
	{0x1.767dcf5534862p-1, 0x1.ce0a44eb17bccp-2},
}

var powfLog2Poly = [5]float64{
	0x1.27616c9496e0bp-2, -0x1.71969a075c67ap-2,
	0x1.ec70a6ca7baddp-2, -0x1.7154748bef6c8p-1,
	0x1.71547652ab82bp0,
}

var exp2fTab = [32]uint64{
	0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
	0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
	0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
	0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
	0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
	0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
	0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
	0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
}

var exp2fPoly = [3]float64{0x1.c6af84b912394p-5, 0x1.ebfce50fac4f3p-3, 0x1.62e42ff0c52d6p-1}
