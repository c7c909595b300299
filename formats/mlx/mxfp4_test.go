package mlx

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/quantbridge/quantbridge/quantize"
)

// TestMXFP4Views: the GGUF-block view of MLX mxfp4 arrays and the MLX views
// of GGUF blocks agree with the row kernels at any offset and length, and
// compose to the identity; a 0xff scale fails the read.
func TestMXFP4Views(t *testing.T) {
	r := rand.New(rand.NewPCG(39, 4))
	const n = 37 // groups
	codes := make([]byte, 16*n)
	scales := make([]byte, n)
	for i := range codes {
		codes[i] = byte(r.Uint32())
	}
	for i := range scales {
		scales[i] = byte(r.IntN(255))
	}
	want := make([]byte, 17*n)
	if err := quantize.MXFP4FromMLX(want, codes, scales); err != nil {
		t.Fatal(err)
	}
	blocks := MXFP4Blocks(bytes.NewReader(codes), bytes.NewReader(scales), n)
	if blocks.Size() != 17*n {
		t.Fatalf("size %d", blocks.Size())
	}
	for k := 0; k < 200; k++ {
		off := r.Int64N(17 * n)
		ln := 1 + r.IntN(60)
		p := make([]byte, ln)
		got, err := blocks.ReadAt(p, off)
		end := min(off+int64(ln), 17*n)
		if got != int(end-off) || !bytes.Equal(p[:got], want[off:end]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v: wrong bytes", ln, off, got, err)
		}
		if (err == io.EOF) != (got < ln) {
			t.Fatalf("ReadAt(%d bytes at %d): n %d, err %v", ln, off, got, err)
		}
	}
	all := make([]byte, 17*n)
	if _, err := blocks.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  []byte
		view interface {
			ReadAt([]byte, int64) (int, error)
			Size() int64
		}
	}{{codes, MXFP4Codes(bytes.NewReader(all), n)}, {scales, MXFP4Scales(bytes.NewReader(all), n)}} {
		got := make([]byte, c.view.Size())
		if _, err := c.view.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.src) {
			t.Fatal("MLX view of the GGUF view is not the MLX arrays")
		}
		off := int64(len(c.src) / 3)
		part := make([]byte, 5)
		if _, err := c.view.ReadAt(part, off); err != nil || !bytes.Equal(part, c.src[off:off+5]) {
			t.Fatalf("partial read at %d: %v", off, err)
		}
	}
	scales[3] = 0xff
	if _, err := blocks.ReadAt(all, 0); err == nil {
		t.Error("scale 0xff read without an error")
	}
}
