package quantize_test

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

var blockTypes = []dtype.Type{
	dtype.Q4_0, dtype.Q4_1, dtype.Q5_0, dtype.Q5_1, dtype.Q8_0, dtype.Q8_1,
	dtype.Q2_K, dtype.Q3_K, dtype.Q4_K, dtype.Q5_K, dtype.Q6_K, dtype.Q8_K,
}

// maxRelRMSE bounds ||dequant(quant(x)) - x|| / ||x|| on Gaussian rows (and
// on real weight rows in the golden test), about 15% above the values
// measured on N(0,1) rows of 4096: Q8_0 .0053, Q8_K .0069, Q6_K .0183, Q5_K
// .0356, Q5_1 .0372, Q5_0 .0421, Q4_K .0727, Q4_1 .0800, Q4_0 .0863, Q3_K
// .1521, Q2_K .2898.
var maxRelRMSE = map[dtype.Type]float64{
	dtype.Q8_0: 0.0061, dtype.Q8_1: 0.0061, dtype.Q8_K: 0.01,
	dtype.Q6_K: 0.021, dtype.Q5_K: 0.041, dtype.Q5_1: 0.043, dtype.Q5_0: 0.049,
	dtype.Q4_K: 0.084, dtype.Q4_1: 0.092, dtype.Q4_0: 0.1,
	dtype.Q3_K: 0.175, dtype.Q2_K: 0.33,
}

func gaussian(seed uint64, n int, scale float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

func roundTrip(t *testing.T, x []float32, typ dtype.Type) []float32 {
	t.Helper()
	size, err := dtype.RowSize(typ, int64(len(x)))
	if err != nil {
		t.Fatal(err)
	}
	q := make([]byte, size)
	if err := quantize.QuantizeRow(q, x, typ); err != nil {
		t.Fatalf("%v: %v", typ, err)
	}
	y := make([]float32, len(x))
	if err := quantize.DequantizeRow(y, q, typ); err != nil {
		t.Fatalf("%v: %v", typ, err)
	}
	return y
}

func TestRoundTripGaussian(t *testing.T) {
	for _, typ := range blockTypes {
		for _, scale := range []float32{1, 0.02, 300} {
			x := gaussian(uint64(typ), 4096, scale)
			y := roundTrip(t, x, typ)
			if e := relRMSE(x, y); e > maxRelRMSE[typ] || e == 0 {
				t.Errorf("%v scale %g: relative RMSE %.4f, want (0, %.4f]", typ, scale, e, maxRelRMSE[typ])
			}
		}
	}
}

func TestEdgeRows(t *testing.T) {
	const n = 512
	fill := func(f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	denorm := math.Float32frombits(0x00000123)
	tests := []struct {
		name   string
		x      []float32
		maxAbs float64 // bound on |y - x|; <0 means use maxRelRMSE
	}{
		{"zeros", fill(func(int) float32 { return 0 }), 0},
		{"negative zeros", fill(func(int) float32 { return float32(math.Copysign(0, -1)) }), 0},
		{"constant 1", fill(func(int) float32 { return 1 }), 0.01},
		{"constant -3.5", fill(func(int) float32 { return -3.5 }), 0.03},
		{"denormals", fill(func(i int) float32 { return denorm * float32(i%7-3) }), 1e-38},
		{"smallest normal", fill(func(i int) float32 { return 1.1754944e-38 * float32(i%5-2) }), 1e-37},
		{"one spike", fill(func(i int) float32 { return float32(b2f(i == 77)) * 5 }), 0.005},
		{"ramp ±6e4", fill(func(i int) float32 { return 6e4 * float32(i-n/2) / (n / 2) }), -1},
		{"gaussian 1e4", gaussian(3, n, 1e4), -1},
	}
	for _, tc := range tests {
		for _, typ := range blockTypes {
			y := roundTrip(t, tc.x, typ)
			if tc.maxAbs < 0 {
				if e := relRMSE(tc.x, y); e > maxRelRMSE[typ] {
					t.Errorf("%s %v: relative RMSE %.4f > %.4f", tc.name, typ, e, maxRelRMSE[typ])
				}
				continue
			}
			for i := range y {
				if d := math.Abs(float64(y[i]) - float64(tc.x[i])); !(d <= tc.maxAbs) {
					t.Errorf("%s %v: element %d = %g, want %g ± %g", tc.name, typ, i, y[i], tc.x[i], tc.maxAbs)
					break
				}
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestQuantizeRowErrors(t *testing.T) {
	huge := gaussian(1, 256, 1e30)
	for _, typ := range blockTypes {
		size, _ := dtype.RowSize(typ, 256)
		dst := make([]byte, size)
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			x := gaussian(2, 256, 1)
			x[100] = bad
			err := quantize.QuantizeRow(dst, x, typ)
			if !errors.Is(err, quantize.ErrNonFinite) || !strings.Contains(err.Error(), "element 100") {
				t.Errorf("%v with %v: err = %v, want ErrNonFinite naming element 100", typ, bad, err)
			}
		}
		if typ == dtype.Q8_K { // float32 scale: huge values are fine
			if e := relRMSE(huge, roundTrip(t, huge, typ)); e > maxRelRMSE[typ] {
				t.Errorf("Q8_K with ±1e30 values: relative RMSE %.4f", e)
			}
		} else if err := quantize.QuantizeRow(dst, huge, typ); !errors.Is(err, quantize.ErrInvalidData) {
			t.Errorf("%v with ±1e30 values: err = %v, want ErrInvalidData", typ, err)
		}
		// Values just too large for the fp16 scale fail ggml's validation.
		big := gaussian(4, 256, 1e9)
		if err := quantize.QuantizeRow(dst, big, typ); (err == nil) != (typ == dtype.Q8_K) {
			t.Errorf("%v with 1e9-scale values: err = %v", typ, err)
		}
		x := gaussian(2, 256, 1)
		if err := quantize.QuantizeRow(dst[:len(dst)-1], x, typ); err == nil {
			t.Errorf("%v: short dst accepted", typ)
		}
		if err := quantize.QuantizeRow(append(dst, 0), x, typ); err == nil {
			t.Errorf("%v: long dst accepted", typ)
		}
		if err := quantize.QuantizeRow(dst, x[:255], typ); err == nil {
			t.Errorf("%v: 255 values accepted", typ)
		}
		y := make([]float32, 256)
		if err := quantize.DequantizeRow(y, dst[:len(dst)-1], typ); err == nil {
			t.Errorf("%v: short src accepted by DequantizeRow", typ)
		}
		if err := quantize.DequantizeRow(y[:255], dst, typ); err == nil {
			t.Errorf("%v: 255 values accepted by DequantizeRow", typ)
		}
	}
	for _, typ := range []dtype.Type{dtype.IQ2_XXS, dtype.MLXAffine, dtype.Type(9999), dtype.F8_E4M3, dtype.Bool} {
		if err := quantize.QuantizeRow(make([]byte, 64), make([]float32, 32), typ); err == nil {
			t.Errorf("QuantizeRow accepted %v", typ)
		}
		if quantize.CanQuantize(typ) {
			t.Errorf("CanQuantize(%v) = true", typ)
		}
	}
	for _, typ := range []dtype.Type{dtype.IQ2_XXS, dtype.MLXAffine, dtype.Type(9999), dtype.TQ1_0} {
		if err := quantize.DequantizeRow(make([]float32, 256), make([]byte, 1024), typ); err == nil {
			t.Errorf("DequantizeRow accepted %v", typ)
		}
		if quantize.CanDequantize(typ) {
			t.Errorf("CanDequantize(%v) = true", typ)
		}
	}
}

// ggml_validate_row_data's checks: non-finite fp16 scales are invalid.
func TestValidateRow(t *testing.T) {
	tests := []struct {
		typ  dtype.Type
		data []byte
		ok   bool
	}{
		{dtype.Q8_0, append([]byte{0x00, 0x3c}, make([]byte, 32)...), true},
		{dtype.Q8_0, append([]byte{0x00, 0x7c}, make([]byte, 32)...), false},
		{dtype.Q4_1, append([]byte{0x00, 0x3c, 0x01, 0xfc}, make([]byte, 16)...), false},
		{dtype.Q6_K, append(make([]byte, 208), 0x00, 0x7e), false},
		{dtype.Q2_K, append(make([]byte, 82), 0x00, 0xfc), false},
		{dtype.MXFP4, append([]byte{0xff}, make([]byte, 16)...), false},
		{dtype.MXFP4, append([]byte{0xfe}, make([]byte, 16)...), true},
		{dtype.F32, []byte{0, 0, 0x80, 0x7f}, false},
		{dtype.BF16, []byte{0x80, 0x7f}, false},
		{dtype.BF16, []byte{0x7f, 0x7f}, true},
		{dtype.F16, []byte{0xff, 0x7b}, true},
		{dtype.Q8_0, make([]byte, 33), false},
	}
	for i, tc := range tests {
		err := quantize.ValidateRow(tc.data, tc.typ)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, quantize.ErrInvalidData)) {
			t.Errorf("%d %v: err = %v, want ok=%v", i, tc.typ, err, tc.ok)
		}
	}
}

// Hand-computed blocks from the ggml formulas: IQ4_NL y = d*kvalues[q],
// IQ4_XS y = d*(ls-32)*kvalues[q] with 6-bit ls split over scales_l/scales_h,
// MXFP4 y = kvalues_fp4[q] * 2^(e-128) (doubled E2M1 values).
func TestDequantizeNonLinear(t *testing.T) {
	t.Run("IQ4_NL", func(t *testing.T) {
		b := make([]byte, 18)
		binary.LittleEndian.PutUint16(b, 0x3800) // d = 0.5
		b[2] = 0xF0                              // y[0] = 0.5*-127, y[16] = 0.5*113
		b[3] = 0x98                              // y[1] = 0.5*1, y[17] = 0.5*13
		want := make([]float32, 32)
		for j := range 16 {
			want[j], want[j+16] = 0.5*-127, 0.5*-127
		}
		want[0], want[16], want[1], want[17] = -63.5, 56.5, 0.5, 6.5
		checkDequant(t, dtype.IQ4_NL, b, want)
	})
	t.Run("IQ4_XS", func(t *testing.T) {
		b := make([]byte, 136)
		binary.LittleEndian.PutUint16(b, 0x4000)     // d = 2
		binary.LittleEndian.PutUint16(b[2:], 0x0009) // scales_h: ib0 hi=1, ib1 hi=2
		b[4] = 0x21                                  // scales_l: ib0 lo=1, ib1 lo=2
		// ib0: ls = 1|1<<4 = 17 -> dl = 2*(17-32) = -30
		// ib1: ls = 2|2<<4 = 34 -> dl = 4; ib2..7: ls = 0 -> dl = -64
		b[8] = 0x7F     // ib0 y[0] = -30*113, y[16] = -30*-10
		b[8+16] = 0x08  // ib1 y[32] = 4*1, y[48] = 4*-127
		b[8+127] = 0xE1 // ib7 y[239] = -64*-104, y[255] = -64*89
		want := make([]float32, 256)
		for ib := range 8 {
			dl := float32(-64)
			switch ib {
			case 0:
				dl = -30
			case 1:
				dl = 4
			}
			for j := range 32 {
				want[32*ib+j] = dl * -127
			}
		}
		want[0], want[16] = -30*113, -30*-10
		want[32], want[48] = 4*1, 4*-127
		want[239], want[255] = -64*-104, -64*89
		checkDequant(t, dtype.IQ4_XS, b, want)
	})
	t.Run("MXFP4", func(t *testing.T) {
		b := make([]byte, 3*17)
		b[0] = 128   // scale 2^0 (halved: kvalues are doubled)
		b[1] = 0xF7  // y[0] = 12*1, y[16] = -12*1
		b[17] = 1    // 2^-127
		b[18] = 0x01 // y[32] = 1 * 2^-127
		b[34] = 0xFE // 2^126
		b[35] = 0x5A // y[64] = -2 * 2^126, y[80] = 6 * 2^126
		want := make([]float32, 96)
		want[0], want[16] = 12, -12
		want[32] = float32(math.Ldexp(1, -127))
		want[64], want[80] = float32(math.Ldexp(-2, 126)), float32(math.Ldexp(6, 126))
		checkDequant(t, dtype.MXFP4, b, want)
	})
}

func checkDequant(t *testing.T, typ dtype.Type, src []byte, want []float32) {
	t.Helper()
	got := make([]float32, len(want))
	if err := quantize.DequantizeRow(got, src, typ); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%v element %d = %g, want %g", typ, i, got[i], want[i])
		}
	}
}

// Hand-built blocks for each quantized type decode per the ggml formulas.
func TestDequantizeHandBlocks(t *testing.T) {
	le := binary.LittleEndian
	t.Run("Q4_0", func(t *testing.T) {
		b := make([]byte, 18)
		le.PutUint16(b, 0x4000) // d = 2
		b[2] = 0x1F             // y[0] = (15-8)*2, y[16] = (1-8)*2
		want := make([]float32, 32)
		for i := range want {
			want[i] = -16
		}
		want[0], want[16] = 14, -14
		checkDequant(t, dtype.Q4_0, b, want)
	})
	t.Run("Q5_1", func(t *testing.T) {
		b := make([]byte, 24)
		le.PutUint16(b, 0x3800)      // d = 0.5
		le.PutUint16(b[2:], 0xbc00)  // m = -1
		le.PutUint32(b[4:], 1|1<<31) // high bit of y[0] and y[31]
		b[8], b[8+15] = 0x21, 0xF0   // y[0]=1|16, y[16]=2, y[15]=0, y[31]=15|16
		want := make([]float32, 32)
		for i := range want {
			want[i] = -1
		}
		want[0], want[16], want[31] = 0.5*17-1, 0.5*2-1, 0.5*31-1
		checkDequant(t, dtype.Q5_1, b, want)
	})
	t.Run("Q4_K", func(t *testing.T) {
		b := make([]byte, 144)
		le.PutUint16(b, 0x3c00)     // d = 1
		le.PutUint16(b[2:], 0x4000) // dmin = 2
		b[4+0] = 3                  // sub-block 0: scale 3
		b[4+4] = 5                  // sub-block 0: min 5
		b[4+8] = 0x21               // sub-block 4: scale 1, min 2 (low nibbles)
		b[4+0] |= 1 << 6            // sub-block 4: scale += 16
		b[16] = 0x4A                // y[0] = 3*10 - 10, y[32] = 0*4 - 0
		b[16+64] = 0x07             // y[128] = 17*7 - 4
		want := make([]float32, 256)
		for i := range 32 {
			want[i] = -10
		}
		for i := 128; i < 160; i++ {
			want[i] = -4
		}
		want[0], want[128] = 20, 17*7-4
		checkDequant(t, dtype.Q4_K, b, want)
	})
	t.Run("Q6_K", func(t *testing.T) {
		b := make([]byte, 210)
		le.PutUint16(b[208:], 0x3800) // d = 0.5
		b[192] = 4                    // scale of y[0..15]
		b[192+15] = 0xFE              // scale -2 of y[240..255]
		b[0] = 0x05                   // y[0] low 4 bits = 5
		b[128] = 0x03                 // y[0] high 2 bits = 3 -> q = 53-32 = 21
		b[64+32+31] = 0xF0            // y[255]: ql high nibble = 15
		b[128+32+31] = 0xC0           // y[255]: high bits 3 -> q = 63-32 = 31
		want := make([]float32, 256)
		for i := range 16 {
			want[i] = 0.5 * 4 * -32
			want[240+i] = 0.5 * -2 * -32
		}
		want[0], want[255] = 0.5*4*21, 0.5*-2*31
		checkDequant(t, dtype.Q6_K, b, want)
	})
}

func TestPlainConversions(t *testing.T) {
	tests := []struct {
		typ  dtype.Type
		raw  []byte
		want []float32
	}{
		{dtype.F8_E4M3, []byte{0x38, 0x7e, 0x01, 0x08, 0xb8, 0x00, 0x80}, []float32{1, 448, float32(math.Ldexp(1, -9)), float32(math.Ldexp(1, -6)), -1, 0, float32(math.Copysign(0, -1))}},
		{dtype.F8_E5M2, []byte{0x3c, 0x7b, 0x01, 0xc0, 0x7c}, []float32{1, 57344, float32(math.Ldexp(1, -16)), -2, float32(math.Inf(1))}},
		{dtype.Bool, []byte{0, 1, 7}, []float32{0, 1, 1}},
		{dtype.I8, []byte{0xff, 0x7f}, []float32{-1, 127}},
		{dtype.U8, []byte{0xff}, []float32{255}},
		{dtype.I16, []byte{0x00, 0x80}, []float32{-32768}},
		{dtype.U16, []byte{0xff, 0xff}, []float32{65535}},
		{dtype.I32, []byte{0xfe, 0xff, 0xff, 0xff}, []float32{-2}},
		{dtype.U32, []byte{0x01, 0, 0, 0}, []float32{1}},
		{dtype.I64, []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []float32{-3}},
		{dtype.U64, []byte{0, 0, 0, 0, 1, 0, 0, 0}, []float32{4294967296}},
		{dtype.F64, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, []float32{1}},
		{dtype.F16, []byte{0x00, 0x3c, 0x01, 0x00}, []float32{1, float32(math.Ldexp(1, -24))}},
		{dtype.BF16, []byte{0x80, 0x3f}, []float32{1}},
		{dtype.F32, []byte{0, 0, 0x80, 0xbf}, []float32{-1}},
	}
	for _, tc := range tests {
		got := make([]float32, len(tc.want))
		if err := quantize.ToFloat32(got, tc.raw, tc.typ); err != nil {
			t.Errorf("%v: %v", tc.typ, err)
			continue
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(tc.want[i]) {
				t.Errorf("%v element %d = %g, want %g", tc.typ, i, got[i], tc.want[i])
			}
		}
		if tc.typ == dtype.F8_E4M3 || tc.typ == dtype.F8_E5M2 || tc.typ == dtype.Bool {
			continue
		}
		back := make([]byte, len(tc.raw))
		if err := quantize.FromFloat32(back, got, tc.typ); err != nil {
			t.Errorf("FromFloat32 %v: %v", tc.typ, err)
		} else if string(back) != string(tc.raw) {
			t.Errorf("FromFloat32 %v = %x, want %x", tc.typ, back, tc.raw)
		}
	}
	nan := make([]float32, 1)
	quantize.ToFloat32(nan, []byte{0x7f}, dtype.F8_E4M3)
	if !math.IsNaN(float64(nan[0])) {
		t.Errorf("E4M3 0x7f = %g, want NaN", nan[0])
	}
	for _, tc := range []struct {
		typ dtype.Type
		v   float32
	}{{dtype.I8, 1.5}, {dtype.I8, 128}, {dtype.U8, -1}, {dtype.I16, 40000}, {dtype.U32, 5e9}, {dtype.I32, float32(math.NaN())}} {
		if err := quantize.FromFloat32(make([]byte, tc.typ.TypeSize()), []float32{tc.v}, tc.typ); err == nil {
			t.Errorf("FromFloat32(%v, %v) accepted", tc.v, tc.typ)
		}
	}
}

// No fused multiply-add may appear in the compiled kernels on any GOARCH
// whose compiler fuses: the ggml reference is unfused.
func TestNoFusedMultiplyAdd(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := filepath.Join(testref.Root(t), "quantize")
	fused := regexp.MustCompile(`\sFN?M(ADD|SUB)[SD]\s`)
	for _, arch := range []string{"arm64", "riscv64"} {
		cmd := exec.Command(gobin, "build", "-gcflags=-S", "-o", os.DevNull, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOARCH="+arch, "GOOS=linux", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOARCH=%s go build: %v\n%s", arch, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if fused.MatchString(line) && strings.Contains(line, "/quantize/ggml") {
				t.Errorf("GOARCH=%s fused multiply-add: %s", arch, strings.TrimSpace(line))
			}
		}
		if !strings.Contains(string(out), "ggml_kquants.go") {
			t.Fatalf("GOARCH=%s: no assembly listing for the kernels", arch)
		}
	}
}
