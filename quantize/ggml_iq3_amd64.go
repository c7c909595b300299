//go:build amd64 && !purego

package quantize

//go:noescape
func iq3Nearest8(lv *uint8, n int, x, w *[4]float32, sq *[8]float32) int
