package quantize

import "testing"

func BenchmarkIQ2Lattice(b *testing.B) {
	for _, tc := range []struct {
		name  string
		kgrid []uint16
		nwant int
	}{{"IQ2_XXS", kgridIQ2XXS[:], 2}, {"IQ2_XS", kgridIQ2XS[:], 2}, {"IQ2_S", kgridIQ2S[:], 1}, {"IQ1", kgridIQ1S[:], 3}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				newIQ2Lattice(tc.kgrid, tc.nwant)
			}
		})
	}
}
