//go:build amd64 && !purego

package perplexity

// affineF16 sets dst[i] = f16(f16(s·dst[i]) + b) for i < n (n a positive
// multiple of 8), with the F16C conversions.
//
//go:noescape
func affineF16(dst *float32, n int, s, b float32)
