//go:build !amd64 || purego

package quantize

func useIQ3Step() bool { return false }

func iq3Step(info *uint32, lanes *uint8, xval, waux, wx, weight *[32]float32, id float32, sq *[8]float32, laux *[32]int8, onGrid *[8]bool, prod *[64]float32) (ok bool) {
	panic("quantize: no SIMD kernels in this build")
}

func iq3Sums(prod *[64]float32, nquads int, sums *[2]float32) {
	panic("quantize: no SIMD kernels in this build")
}
