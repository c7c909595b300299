package convert

import (
	"encoding/binary"
	"fmt"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// repackTarget is the GGUF type an MLX affine tensor of the given bit width
// maps to exactly, if any (4-bit → Q4_1 and 5-bit → Q5_1 with the bias as
// the block minimum; 8-bit → Q8_0 only when every bias is -128 × scale).
func repackTarget(a *graph.Affine) (graph.Type, bool) {
	if a == nil || a.GroupSize%32 != 0 {
		return 0, false
	}
	switch a.Bits {
	case 4:
		return graph.Q4_1, true
	case 5:
		return graph.Q5_1, true
	case 8:
		return graph.Q8_0, true
	}
	return 0, false
}

// repacker converts the rows of an MLX affine tensor to a GGUF legacy type
// without touching the values.
type repacker struct {
	rd  *reader
	to  graph.Type
	out int64 // output row bytes
}

func newRepacker(t *graph.Tensor, to graph.Type) (*repacker, error) {
	rd, err := newReader(t)
	if err != nil {
		return nil, err
	}
	out, err := graph.RowSize(to, rd.rowLen)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return &repacker{rd: rd, to: to, out: out}, nil
}

// rows repacks rows [r0, r0+n); ok is false when some row has no exact
// GGUF form.
func (r *repacker) rows(r0, n int64) (out []byte, ok bool, err error) {
	rd, t := r.rd, r.rd.t
	codes, err := readRows(t.Data, t.Name, r0, n, rd.words*4)
	if err != nil {
		return nil, false, err
	}
	sb := rd.groups * rd.scale
	scales, err := readRows(t.Affine.Scales, t.Name+" scales", r0, n, sb)
	if err != nil {
		return nil, false, err
	}
	biases, err := readRows(t.Affine.Biases, t.Name+" biases", r0, n, sb)
	if err != nil {
		return nil, false, err
	}
	out = make([]byte, n*r.out)
	words := make([]uint32, rd.words)
	for i := int64(0); i < n; i++ {
		for k := range words {
			words[k] = binary.LittleEndian.Uint32(codes[(i*rd.words+int64(k))*4:])
		}
		ok, err := quantize.RepackAffineToGGUF(out[i*r.out:(i+1)*r.out], r.to, words, scales[i*sb:(i+1)*sb], biases[i*sb:(i+1)*sb],
			rd.ap, t.Affine.ScaleType, int(rd.rowLen))
		if err != nil {
			return nil, false, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if !ok {
			return nil, false, nil
		}
	}
	return out, true, nil
}

// exact reports whether every row repacks exactly (it reads the tensor).
func (r *repacker) exact(slabRows int64) (bool, error) {
	for r0 := int64(0); r0 < r.rd.rows; r0 += slabRows {
		_, ok, err := r.rows(r0, min(slabRows, r.rd.rows-r0))
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// job returns the job writing the repacked tensor, rows permuted by p
// (nil: none), at off.
func (r *repacker) job(name string, p *perm, dst interface {
	WriteAt([]byte, int64) (int, error)
}, off int64) *job {
	rd := r.rd
	j := &job{Name: name, Shape: rd.t.Shape, From: fmt.Sprintf("MLX_AFFINE_%dBIT_G%d", rd.ap.Bits, rd.ap.GroupSize), To: r.to.String(),
		Rows: rd.rows, RowLen: rd.rowLen, InRowBytes: rd.rowBytes, OutRowBytes: r.out, Elements: elementsOf(rd.t.Shape)}
	var pp perm
	if p != nil {
		var err error
		if pp, err = p.withRows(rd.rows); err != nil {
			j.Raw = func(int64, int64) error { return fmt.Errorf("tensor %s: %w", name, err) }
			return j
		}
		j.RowGroup = pp.headRows
	}
	j.Raw = func(r0, n int64) error {
		b, ok, err := r.rows(r0, n)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("tensor %s: changed while converting (no longer repacks exactly)", name)
		}
		if p != nil {
			// Permute whole output rows: view them as floats-sized units.
			b, err = permuteBytes(b, r.out, n, pp)
			if err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
		}
		if _, err := dst.WriteAt(b, off+r0*r.out); err != nil {
			return fmt.Errorf("tensor %s: write: %w", name, err)
		}
		return nil
	}
	return j
}

// permuteBytes applies p to n rows of rowBytes bytes.
func permuteBytes(b []byte, rowBytes, n int64, p perm) ([]byte, error) {
	hd := p.headRows
	if hd == 0 && p.heads > 0 && n%int64(p.heads) == 0 {
		hd = n / int64(p.heads)
	}
	if p.heads <= 0 || hd <= 0 || n%hd != 0 || hd%2 != 0 {
		return nil, fmt.Errorf("cannot permute %d rows for %d heads", n, p.heads)
	}
	out := make([]byte, len(b))
	half := hd / 2
	for h := int64(0); h < n/hd; h++ {
		for i := int64(0); i < half; i++ {
			for k := int64(0); k < 2; k++ {
				inter, split := h*hd+2*i+k, h*hd+k*half+i
				src, dst := split, inter
				if p.inverse {
					src, dst = inter, split
				}
				copy(out[dst*rowBytes:(dst+1)*rowBytes], b[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return out, nil
}
