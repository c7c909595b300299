//go:build amd64 && !purego

package quantize

import (
	"os"

	"golang.org/x/sys/cpu"
)

// simdAvailable reports whether this build and CPU can run the AVX2 lane
// kernels of ggml_amd64.s.
var simdAvailable = cpu.X86.HasAVX2

// useSIMD selects the lane kernels. Setting QUANTBRIDGE_PUREGO to a
// non-empty value (or building with -tags purego) forces the portable Go
// code; both give the same bytes.
var useSIMD = simdAvailable && os.Getenv("QUANTBRIDGE_PUREGO") == ""

//go:noescape
func qkx2x8(x, w, aux *float32, n, nmax int, nums *float32, nnums, mad int, out *[12][8]float32)

//go:noescape
func qx8(x *float32, n, nmax int, nums *float32, out *[2][8]float32)

//go:noescape
func quantDiv(dst *uint8, x *float32, n int, add, div float32, lo, hi, off int32)

//go:noescape
func lanePrep(xt, wt, x *float32, n, wmode int)

//go:noescape
func q3x8(x, lt *float32, n, nmax int, out *[8]float32)

//go:noescape
func q8Blocks(y *byte, x *float32, nb int, d *float32)

//go:noescape
func absMaxBits(x *float32, n int) uint32

//go:noescape
func q40Blocks(y *byte, x *float32, nb int, d *float32)

//go:noescape
func q50Blocks(y *byte, x *float32, nb int, d *float32)

//go:noescape
func q41Blocks(y *byte, x *float32, nb int, d, m *float32)

//go:noescape
func q51Blocks(y *byte, x *float32, nb int, d, m *float32)
