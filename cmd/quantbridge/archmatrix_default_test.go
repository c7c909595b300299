//go:build !refdata

package main

// refdataMatrix: the default suite checks Q4_K_M and the first chunks only.
const refdataMatrix = false
