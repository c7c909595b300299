package quantize_test

import (
	"testing"

	"github.com/quantbridge/quantbridge/dtype"
	"github.com/quantbridge/quantbridge/quantize"
)

const benchN = 1 << 20

// BenchmarkQuantize/<type>: one row of 2^20 Gaussian values; MB/s counts
// float32 input bytes.
func BenchmarkQuantize(b *testing.B) {
	x := gaussian(1, benchN, 0.02)
	for _, typ := range blockTypes {
		b.Run(typ.String(), func(b *testing.B) {
			size, _ := dtype.RowSize(typ, benchN)
			dst := make([]byte, size)
			b.SetBytes(4 * benchN)
			b.ReportAllocs()
			for b.Loop() {
				if err := quantize.QuantizeRow(dst, x, typ); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDequantize/<type>: one row of 2^20 values; MB/s counts float32
// output bytes.
func BenchmarkDequantize(b *testing.B) {
	x := gaussian(1, benchN, 0.02)
	for _, typ := range append(blockTypes, dtype.IQ4_NL, dtype.IQ4_XS, dtype.MXFP4) {
		b.Run(typ.String(), func(b *testing.B) {
			size, _ := dtype.RowSize(typ, benchN)
			src := make([]byte, size)
			if quantize.CanQuantize(typ) {
				if err := quantize.QuantizeRow(src, x, typ); err != nil {
					b.Fatal(err)
				}
			} else {
				for i := range src {
					src[i] = byte(i * 7) // arbitrary codes; scales stay finite
				}
			}
			dst := make([]float32, benchN)
			b.SetBytes(4 * benchN)
			b.ReportAllocs()
			for b.Loop() {
				if err := quantize.DequantizeRow(dst, src, typ); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
