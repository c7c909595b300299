package quantize_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/quantize"
)

// weightedBenchTypes are the types with importance-weighted quantizers.
var weightedBenchTypes = []dtype.Type{
	dtype.Q4_0, dtype.Q4_1, dtype.Q5_0, dtype.Q5_1,
	dtype.Q2_K, dtype.Q3_K, dtype.Q4_K, dtype.Q5_K, dtype.Q6_K,
	dtype.IQ4_NL, dtype.IQ4_XS,
}

// BenchmarkQuantizeWeighted/<type>: one row of 2^20 Gaussian values with an
// importance vector (squares of Gaussians, as activations' mean squares
// look); IQ4_NL/IQ4_XS also without one (/noimatrix). MB/s counts float32
// input bytes. With QB_BENCH_DUMP set to a directory it writes there the
// row (x.f32), the vector (w.f32) and each output (<name>.bin, / as _), for
// scripts/bench-ggml-quantize.c to time ggml on the same row and compare.
func BenchmarkQuantizeWeighted(b *testing.B) {
	x := gaussian(1, benchN, 0.02)
	w := gaussian(2, benchN, 1)
	for i, v := range w {
		w[i] = v*v + 1e-3
	}
	dump := os.Getenv("QB_BENCH_DUMP")
	write := func(name string, v any) {
		f, err := os.Create(filepath.Join(dump, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := binary.Write(f, binary.LittleEndian, v); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if dump != "" {
		write("x.f32", x)
		write("w.f32", w)
	}
	run := func(name string, typ dtype.Type, w []float32) {
		b.Run(name, func(b *testing.B) {
			size, _ := dtype.RowSize(typ, benchN)
			dst := make([]byte, size)
			b.SetBytes(4 * benchN)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := quantize.QuantizeRowWeighted(dst, x, w, typ); err != nil {
					b.Fatal(err)
				}
			}
			if cpu0 >= 0 {
				// CPU time tells more than wall time on a loaded machine
				// (the loop runs on one goroutine and allocates nothing).
				b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			}
			if dump != "" {
				write(strings.ReplaceAll(name, "/", "_")+".bin", dst)
			}
		})
	}
	for _, typ := range weightedBenchTypes {
		run(typ.String(), typ, w)
	}
	run("IQ4_NL/noimatrix", dtype.IQ4_NL, nil)
	run("IQ4_XS/noimatrix", dtype.IQ4_XS, nil)
}
