package convert

import (
	"fmt"
	"io"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// mxfp4MLXJob writes an MXFP4 tensor (GGUF MXFP4 blocks: a GGUF tensor,
// or an MLX mxfp4 module as formats/mlx presents it) as an MLX mxfp4
// module: codes to ds[0], scales to ds[1]. The values are unchanged
// (quantize.MXFP4ToMLX); rows are permuted by p (nil: none).
func mxfp4MLXJob(t *graph.Tensor, p *perm, ds [3]dest) (*job, error) {
	rl, rows := rowsOf(t.Shape)
	if t.Type != graph.MXFP4 || len(t.Shape) < 2 || rl%32 != 0 {
		return nil, fmt.Errorf("tensor %s: %v %v has no MLX mxfp4 form", t.Name, t.Type, t.Shape)
	}
	in := rl / 32 * 17
	if t.Data == nil || t.Data.Size() < in*rows {
		return nil, fmt.Errorf("tensor %s: data is shorter than its shape %v of %v needs", t.Name, t.Shape, t.Type)
	}
	for i := range 2 {
		if ds[i].w == nil {
			return nil, fmt.Errorf("tensor %s: no destination for part %d", t.Name, i)
		}
	}
	prb := []int64{rl / 2, rl / 32}
	j := &job{Name: t.Name, Shape: t.Shape, From: t.Type.String(), To: "MLX_MXFP4", Rows: rows, RowLen: rl,
		InRowBytes: in, OutRowBytes: prb[0] + prb[1], PartRowBytes: prb, Elements: elementsOf(t.Shape)}
	var pp perm
	if p != nil {
		var err error
		if pp, err = p.withRows(rows); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		j.RowGroup = pp.headRows
	}
	name := t.Name
	j.Raw = func(r0, n int64) error {
		src, err := readRows(t.Data, name, r0, n, in)
		if err != nil {
			return err
		}
		parts := [2][]byte{make([]byte, n*prb[0]), make([]byte, n*prb[1])}
		if err := quantize.MXFP4ToMLX(parts[0], parts[1], src); err != nil {
			return fmt.Errorf("tensor %s: rows %d..%d: %w", name, r0, r0+n-1, err)
		}
		return writeParts(name, ds[:], parts[:], prb, r0, n, p, pp)
	}
	return j, nil
}

// mxfp4PermJob copies an MXFP4 tensor into a GGUF file with its rows
// permuted by p (llama's Q/K rotary order): whole rows of blocks move, so
// the bytes, not only the values, are kept.
func mxfp4PermJob(t *graph.Tensor, p *perm, w io.WriterAt, off int64) (*job, error) {
	rl, rows := rowsOf(t.Shape)
	rb, err := graph.RowSize(t.Type, rl)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if t.Data == nil || t.Data.Size() < rb*rows {
		return nil, fmt.Errorf("tensor %s: data is shorter than its shape %v of %v needs", t.Name, t.Shape, t.Type)
	}
	pp, err := p.withRows(rows)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	j := &job{Name: t.Name, Shape: t.Shape, From: t.Type.String(), To: t.Type.String(), Rows: rows, RowLen: rl,
		InRowBytes: rb, OutRowBytes: rb, PartRowBytes: []int64{rb}, Elements: elementsOf(t.Shape), RowGroup: pp.headRows}
	name := t.Name
	j.Raw = func(r0, n int64) error {
		b, err := readRows(t.Data, name, r0, n, rb)
		if err != nil {
			return err
		}
		if b, err = permuteBytes(b, rb, n, pp); err != nil {
			return fmt.Errorf("tensor %s: %w", name, err)
		}
		if _, err := w.WriteAt(b, off+r0*rb); err != nil {
			return fmt.Errorf("tensor %s: write: %w", name, err)
		}
		return nil
	}
	return j, nil
}
