//go:build unix

package quantize_test

import "syscall"

// processCPU returns the process's user+system CPU time in nanoseconds, or
// -1 where it cannot be read.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
