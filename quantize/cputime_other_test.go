//go:build !unix

package quantize_test

// processCPU returns -1: no CPU clock on this platform.
func processCPU() int64 { return -1 }
