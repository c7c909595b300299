package perplexity

import "math"

// glibc's libm functions, as llama.cpp's x86-64 build calls them (the FMA
// variants glibc selects on CPUs with FMA). Neither is correctly rounded:
// about 1 result in 200 differs by one unit in the last place from the
// nearest float32, so emulating llama.cpp to the bit needs their exact
// algorithms (Arm's optimized-routines, also in glibc since 2.28).

// expf2Tab[i] holds the bits of 2^(i/32) less i<<47, so that adding
// k<<47 to tab[k%32] gives 2^(k/32) (exp2f_data).
var expf2Tab = func() (t [32]uint64) {
	for i := range t {
		t[i] = math.Float64bits(math.Exp2(float64(i)/32)) - uint64(i)<<47
	}
	return t
}()

// expf32 is glibc's expf: x·32/ln2 = k + r, 2^(k/32) from the table, 2^(r/32)
// from a cubic, all in float64, rounded once to float32.
func expf32(x float32) float32 {
	abstop := (math.Float32bits(x) >> 20) & 0x7ff
	if abstop >= 0x42b { // |x| >= 88, inf or nan
		switch {
		case x != x:
			return x
		case x > 0x1.62e42ep6:
			return float32(math.Inf(1))
		case x < -0x1.9fe368p6:
			return 0
		}
	}
	const (
		n       = 32
		invLn2N = 0x1.71547652b82fep+0 * n
		shift   = 0x1.8p+52
		c0      = 0x1.c6af84b912394p-5 / (n * n * n)
		c1      = 0x1.ebfce50fac4f3p-3 / (n * n)
		c2      = 0x1.62e42ff0c52d6p-1 / n
	)
	z := invLn2N * float64(x)
	kd := z + shift
	ki := math.Float64bits(kd)
	kd -= shift
	r := z - kd
	t := expf2Tab[ki%n] + ki<<(52-5)
	s := math.Float64frombits(t)
	zz := math.FMA(c0, r, c1)
	r2 := r * r
	y := math.FMA(c2, r, 1)
	y = math.FMA(zz, r2, y)
	return float32(y * s)
}

// sincosfCoef are the polynomials of glibc's sinf/cosf (sincosf_data):
// cos(x) ≈ c0 + c1·x² + … + c4·x⁸ and sin(x) ≈ x + s1·x³ + s2·x⁵ + s3·x⁷
// on [−π/4, π/4]. The second set negates the cosine.
type sincosfCoef struct {
	c0, c1, c2, c3, c4, s1, s2, s3 float64
}

var sincosfTab = [2]sincosfCoef{
	{0x1p0, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5, -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16,
		-0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
	{-0x1p0, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5, 0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16,
		-0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
}

// invPio4 is 2/π in 32-bit windows advancing by 8 bits (the hexadecimal
// digits of 2/π = 0.A2F9836E…), for the reduction of large arguments.
var invPio4 = func() (t [24]uint32) {
	const digits = "A2F9836E4E441529FC2757D1F534DDC0DB6295993C439041"
	var bytes [24]uint32
	for i := range bytes {
		for _, c := range digits[2*i : 2*i+2] {
			v := uint32(c - '0')
			if c >= 'A' {
				v = uint32(c-'A') + 10
			}
			bytes[i] = bytes[i]<<4 | v
		}
	}
	for i := range t {
		for b := i - 3; b <= i; b++ {
			t[i] <<= 8
			if b >= 0 {
				t[i] |= bytes[b]
			}
		}
	}
	return t
}()

var sincosfSign = [4]float64{1, -1, -1, 1}

// sincosPoly is glibc's sinf_poly: the sine (n even) or cosine (n odd)
// polynomial of the reduced argument x (x2 = x²), with gcc's contractions.
func sincosPoly(x, x2 float64, p *sincosfCoef, n int) float32 {
	if n&1 == 0 {
		x3 := x * x2
		s1 := math.FMA(x2, p.s3, p.s2)
		x7 := x3 * x2
		s := math.FMA(x3, p.s1, x)
		return float32(math.FMA(x7, s1, s))
	}
	x4 := x2 * x2
	c2 := math.FMA(x2, p.c4, p.c3)
	c1 := math.FMA(x2, p.c1, p.c0)
	x6 := x4 * x2
	c := math.FMA(x4, p.c2, c1)
	return float32(math.FMA(x6, c2, c))
}

// sinf32 and cosf32 are glibc's sinf and cosf for finite x.
func sinf32(x float32) float32 { return sincosf1(x, 0) }
func cosf32(x float32) float32 { return sincosf1(x, 1) }

// sincosf1 computes sin (odd 0) or cos (odd 1) as glibc does: a polynomial
// below π/4, a reduction by multiples of π/2 computed in float64 below
// 120, an exact integer reduction with 2/π's bits above.
func sincosf1(y float32, odd int) float32 {
	x := float64(y)
	abstop := (math.Float32bits(y) >> 20) & 0x7ff
	p := &sincosfTab[0]
	switch {
	case abstop < 0x3f4: // |y| < π/4 (abstop12(0x1.921FB6p-1f))
		if abstop < 0x398 { // |y| < 2^-12
			if odd == 1 {
				return 1
			}
			return y
		}
		return sincosPoly(x, x*x, p, odd)
	case abstop < 0x42f: // |y| < 120
		const hpiInv, hpi = 0x1.45F306DC9C883p+23, 0x1.921FB54442D18p0
		r := x * hpiInv
		n := (int32(r) + 0x800000) >> 24
		x = math.FMA(-float64(n), hpi, x)
		s := sincosfSign[n&3]
		if n&2 != 0 {
			p = &sincosfTab[1]
		}
		return sincosPoly(x*s, x*x, p, int(n)^odd)
	case abstop < 0x7f8:
		xi := math.Float32bits(y)
		sign := int(xi >> 31)
		arr := invPio4[(xi>>26)&15:]
		shift := (xi >> 23) & 7
		xi = (xi & 0xffffff) | 0x800000
		xi <<= shift
		res0 := uint64(xi * arr[0])
		res1 := uint64(xi) * uint64(arr[4])
		res2 := uint64(xi) * uint64(arr[8])
		res0 = (res2 >> 32) | (res0 << 32)
		res0 += res1
		n := (res0 + 1<<61) >> 62
		res0 -= n << 62
		r := float64(int64(res0)) * 0x1.921FB54442D18p-62
		q := int(n) + sign
		s := sincosfSign[q&3]
		if q&2 != 0 {
			p = &sincosfTab[1]
		}
		return sincosPoly(r*s, r*r, p, int(n)^odd)
	}
	return float32(math.NaN())
}
