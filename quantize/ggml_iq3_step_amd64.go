//go:build amd64 && !purego

package quantize

import "golang.org/x/sys/cpu"

// iq3StepAVX512 reports whether the CPU runs iq3Step (AVX-512 F and VL,
// BMI2's BZHI).
var iq3StepAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2

// useIQ3Step selects iq3Step for the IQ3 search: with the SIMD kernels on
// (useSIMD) and the CPU able to run it.
func useIQ3Step() bool { return useSIMD && iq3StepAVX512 }

//go:noescape
func iq3Step(info *uint32, lanes *uint8, xval, waux, wx, weight *[32]float32, id float32, sq *[8]float32, laux *[32]int8, onGrid *[8]bool, prod *[64]float32) (ok bool)

//go:noescape
func iq3Sums(prod *[64]float32, nquads int, sums *[2]float32)
