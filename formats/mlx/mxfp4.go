package mlx

import (
	"fmt"
	"io"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// MLX mxfp4 modules (mode "mxfp4": X.weight uint32 codes, eight 4-bit E2M1
// codes per word, and X.scales uint8 E8M0 exponents, one per group of 32;
// no biases) are read as graph tensors of type MXFP4: an MLX mxfp4 group
// and a GGUF MXFP4 block hold the same values (see quantize.MXFP4FromMLX),
// so the tensor's Data is a view presenting the two arrays as GGUF MXFP4
// blocks, repacked on every read. Writing does the reverse (Plan,
// MXFP4Codes, MXFP4Scales). A scale byte of 0xff (E8M0's NaN) fails the
// read.

// mxfp4Blocks presents MLX mxfp4 codes and scales as GGUF MXFP4 blocks.
type mxfp4Blocks struct {
	codes, scales graph.Source
	n             int64 // blocks
}

// MXFP4Blocks returns a source of the n GGUF MXFP4 blocks (17 bytes each)
// holding the values of MLX mxfp4 codes (16 bytes per group) and scales
// (one byte per group).
func MXFP4Blocks(codes, scales graph.Source, n int64) graph.Source {
	return &mxfp4Blocks{codes: codes, scales: scales, n: n}
}

func (v *mxfp4Blocks) Size() int64 { return 17 * v.n }

func (v *mxfp4Blocks) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("mlx mxfp4: negative offset %d", off)
	}
	if off >= v.Size() {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), v.Size())
	b0, b1 := off/17, (end+16)/17
	codes := make([]byte, 16*(b1-b0))
	if _, err := v.codes.ReadAt(codes, 16*b0); err != nil {
		return 0, fmt.Errorf("mlx mxfp4 codes: %w", err)
	}
	scales := make([]byte, b1-b0)
	if _, err := v.scales.ReadAt(scales, b0); err != nil {
		return 0, fmt.Errorf("mlx mxfp4 scales: %w", err)
	}
	blocks := make([]byte, 17*(b1-b0))
	if err := quantize.MXFP4FromMLX(blocks, codes, scales); err != nil {
		return 0, fmt.Errorf("mlx mxfp4: at group %d: %w", b0, err)
	}
	n := copy(p, blocks[off-17*b0:end-17*b0])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// mxfp4Part presents GGUF MXFP4 blocks as MLX mxfp4 codes (scales false)
// or scales.
type mxfp4Part struct {
	blocks graph.Source
	n      int64
	scales bool
}

// MXFP4Codes returns a source of the MLX mxfp4 codes (16 bytes per group,
// little-endian uint32 words) of n GGUF MXFP4 blocks.
func MXFP4Codes(blocks graph.Source, n int64) graph.Source { return &mxfp4Part{blocks, n, false} }

// MXFP4Scales returns a source of the MLX mxfp4 scales (one E8M0 byte per
// group) of n GGUF MXFP4 blocks.
func MXFP4Scales(blocks graph.Source, n int64) graph.Source { return &mxfp4Part{blocks, n, true} }

func (v *mxfp4Part) unit() int64 {
	if v.scales {
		return 1
	}
	return 16
}

func (v *mxfp4Part) Size() int64 { return v.unit() * v.n }

func (v *mxfp4Part) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("mlx mxfp4: negative offset %d", off)
	}
	if off >= v.Size() {
		return 0, io.EOF
	}
	u := v.unit()
	end := min(off+int64(len(p)), v.Size())
	b0, b1 := off/u, (end+u-1)/u
	blocks := make([]byte, 17*(b1-b0))
	if _, err := v.blocks.ReadAt(blocks, 17*b0); err != nil {
		return 0, fmt.Errorf("mxfp4 blocks: %w", err)
	}
	codes := make([]byte, 16*(b1-b0))
	scales := make([]byte, b1-b0)
	if err := quantize.MXFP4ToMLX(codes, scales, blocks); err != nil {
		return 0, fmt.Errorf("mxfp4 at block %d: %w", b0, err)
	}
	out := codes
	if v.scales {
		out = scales
	}
	n := copy(p, out[off-u*b0:end-u*b0])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// mxfp4Tensor checks one mxfp4 module (codes w, scales s) and returns its
// graph tensor of type MXFP4.
func mxfp4Tensor(name string, w, s *graph.Tensor) (*graph.Tensor, error) {
	if w.Type != graph.U32 {
		return nil, fmt.Errorf("%q has dtype %v, want U32 packed codes", w.Name, w.Type)
	}
	if s.Type != graph.U8 {
		return nil, fmt.Errorf("%q has dtype %v, want U8 (E8M0 mxfp4 scales)", s.Name, s.Type)
	}
	n := len(w.Shape)
	if n < 2 || len(s.Shape) != n {
		return nil, fmt.Errorf("%q shape %v does not match %q shape %v", s.Name, s.Shape, w.Name, w.Shape)
	}
	for i := range n - 1 {
		if w.Shape[i] != s.Shape[i] {
			return nil, fmt.Errorf("%q shape %v does not match %q shape %v", s.Name, s.Shape, w.Name, w.Shape)
		}
	}
	words, groups := w.Shape[n-1], s.Shape[n-1]
	if groups <= 0 || words != 4*groups {
		return nil, fmt.Errorf("%q shape %v does not match %q shape %v for mxfp4 (4 words per group of 32)", s.Name, s.Shape, w.Name, w.Shape)
	}
	blocks := groups
	for _, d := range s.Shape[:n-1] {
		if d < 0 || (d > 0 && blocks > (1<<50)/d) {
			return nil, fmt.Errorf("%q shape %v is out of range", s.Name, s.Shape)
		}
		blocks *= d
	}
	if w.Data.Size() < 16*blocks || s.Data.Size() < blocks {
		return nil, fmt.Errorf("%q or %q holds fewer bytes than its shape needs", w.Name, s.Name)
	}
	shape := append(append([]int64{}, w.Shape[:n-1]...), 32*groups)
	return &graph.Tensor{Name: name, Shape: shape, Type: graph.MXFP4, Data: MXFP4Blocks(w.Data, s.Data, blocks)}, nil
}
