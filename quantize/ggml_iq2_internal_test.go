package quantize

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

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

// latticeHash is the SHA-256 of a lattice's kmap (int32 little endian,
// 43692 entries) followed by its neighbour lists (uint16 little endian).
func latticeHash(g *iq2Lattice) string {
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, g.kmap)
	binary.Write(h, binary.LittleEndian, g.neigh)
	return hex.EncodeToString(h.Sum(nil))
}

// The lattice tables equal ggml's iq2_data after iq2xs_init_impl (the same
// encoding of the map and the same neighbour lists in the same order), as
// dumped from ggml-quants.c 34af94cd by scripts/iq2-lattice-hashes.sh.
func TestIQ2LatticeTables(t *testing.T) {
	for _, tc := range []struct {
		name  string
		which int
		want  string
	}{
		{"IQ2_XXS", latIQ2XXS, "247e30da383dc36a3aee32e5e002ee32ba5369eed4e88eecd407f34f9471d3c0"},
		{"IQ2_XS", latIQ2XS, "4b9200750451be8853e815498cc397e587ae1d27f78ead4aaffc61e33cd401b7"},
		{"IQ1_S/IQ1_M", latIQ1, "70ef46623f22ca8e13b1b5c516fabe16d93f2a0530999588c1dafd7d63765095"},
		{"IQ2_S", latIQ2S, "dd86d0ef8fce59cbfb70df1bbb6a36876459502556019662377a29bd006f5618"},
	} {
		if got := latticeHash(iq2LatticeFor(tc.which)); got != tc.want {
			t.Errorf("%s: tables hash %s, ggml's %s", tc.name, got, tc.want)
		}
	}
}
