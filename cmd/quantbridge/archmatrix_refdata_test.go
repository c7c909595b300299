//go:build refdata

package main

// refdataMatrix: with -tags refdata the matrix covers every llama-quantize
// type in reference.json and whole-text perplexity.
const refdataMatrix = true
