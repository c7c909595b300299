package convert

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// repackTargets are the GGUF types an MLX affine tensor of the given bit
// width may map to exactly, in order of preference: 4-bit → Q4_0 (every
// bias -8 × scale) or Q4_1 (bias as the block minimum), 5-bit → Q5_0 or
// Q5_1, 8-bit → Q8_0 (every bias -128 × scale). Group sizes must be
// multiples of 32.
func repackTargets(a *graph.Affine) []graph.Type {
	if a == nil || a.GroupSize%32 != 0 {
		return nil
	}
	switch a.Bits {
	case 4:
		return []graph.Type{graph.Q4_0, graph.Q4_1}
	case 5:
		return []graph.Type{graph.Q5_0, graph.Q5_1}
	case 8:
		return []graph.Type{graph.Q8_0}
	}
	return nil
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

// ggufAffineJob repacks a GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 tensor into MLX
// affine codes, scales and biases with group size 32 and F16 scales
// (quantize.RepackGGUFToAffine: the same codes, scale d, bias m or -o·d),
// rows permuted by p (GGUF → HF order for llama Q/K) in all three parts
// alike. A row whose -o·d overflows F16 (only for d beyond 65504/o) has
// no exact form: it is dequantized and quantized at the same bits, and
// fallback counts it.
func ggufAffineJob(t *graph.Tensor, p *perm, ds [3]dest, fallback *atomic.Int64) (*job, error) {
	rl, rows := rowsOf(t.Shape)
	bits, ok := quantize.RepackableGGUF(t.Type)
	if !ok || len(t.Shape) < 2 || rl%32 != 0 {
		return nil, fmt.Errorf("tensor %s: %v %v has no exact MLX affine form", t.Name, t.Type, t.Shape)
	}
	in, err := graph.RowSize(t.Type, rl)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if t.Data == nil || t.Data.Size() < in*rows {
		return nil, fmt.Errorf("tensor %s: data is shorter than its shape %v of %v needs", t.Name, t.Shape, t.Type)
	}
	for i, d := range ds {
		if d.w == nil {
			return nil, fmt.Errorf("tensor %s: no destination for part %d", t.Name, i)
		}
	}
	words := int64(quantize.AffinePackedWords(int(rl), bits))
	sb := rl / 32 * 2
	prb := []int64{words * 4, sb, sb}
	j := &job{Name: t.Name, Shape: t.Shape, From: t.Type.String(), To: affineName(bits, 32), Rows: rows, RowLen: rl,
		InRowBytes: in, OutRowBytes: words*4 + 2*sb, PartRowBytes: prb, Elements: elementsOf(t.Shape)}
	var pp perm
	if p != nil {
		if pp, err = p.withRows(rows); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		j.RowGroup = pp.headRows
	}
	ap := quantize.AffineParams{Bits: bits, GroupSize: 32}
	name, typ := t.Name, t.Type
	j.Raw = func(r0, n int64) error {
		src, err := readRows(t.Data, name, r0, n, in)
		if err != nil {
			return err
		}
		parts := [3][]byte{make([]byte, n*prb[0]), make([]byte, n*sb), make([]byte, n*sb)}
		packed := make([]uint32, words)
		var f []float32
		for i := int64(0); i < n; i++ {
			sc, bi := parts[1][i*sb:(i+1)*sb], parts[2][i*sb:(i+1)*sb]
			row := src[i*in : (i+1)*in]
			if _, err := quantize.RepackGGUFToAffine(packed, sc, bi, row, typ, int(rl)); err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
			if !finite16(bi) {
				if f == nil {
					f = make([]float32, rl)
				}
				if err := quantize.ToFloat32(f, row, typ); err != nil {
					return fmt.Errorf("tensor %s: %w", name, err)
				}
				if err := quantize.AffineQuantizeRow(packed, sc, bi, f, ap, graph.F16); err != nil {
					return fmt.Errorf("tensor %s: row %d: %w", name, r0+i, err)
				}
				fallback.Add(1)
			}
			for k, w := range packed {
				binary.LittleEndian.PutUint32(parts[0][(i*words+int64(k))*4:], w)
			}
		}
		return writeParts(name, ds[:], parts[:], prb, r0, n, p, pp)
	}
	return j, nil
}

// writeParts writes rows r0..r0+n-1 of each part of a tensor (parts[k]
// holds n rows of prb[k] bytes) to ds[k], the rows permuted by pp when p
// is set.
func writeParts(name string, ds []dest, parts [][]byte, prb []int64, r0, n int64, p *perm, pp perm) error {
	for k, b := range parts {
		if p != nil {
			var err error
			if b, err = permuteBytes(b, prb[k], n, pp); err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
		}
		if _, err := ds[k].w.WriteAt(b, ds[k].off+r0*prb[k]); err != nil {
			return fmt.Errorf("tensor %s: write: %w", name, err)
		}
	}
	return nil
}

// finite16 reports whether every F16 value in b is finite.
func finite16(b []byte) bool {
	for i := 0; i+1 < len(b); i += 2 {
		if (uint16(b[i])|uint16(b[i+1])<<8)&0x7c00 == 0x7c00 {
			return false
		}
	}
	return true
}

// affineCopyJob copies an MLX affine tensor's codes, scales and biases
// unchanged to ds.
func affineCopyJob(t *graph.Tensor, ds [3]dest) (*job, error) {
	rd, err := newReader(t)
	if err != nil {
		return nil, err
	}
	sb := rd.groups * rd.scale
	prb := []int64{rd.words * 4, sb, sb}
	srcs := []graph.Source{t.Data, t.Affine.Scales, t.Affine.Biases}
	for i, d := range ds {
		if d.w == nil {
			return nil, fmt.Errorf("tensor %s: no destination for part %d", t.Name, i)
		}
	}
	j := &job{Name: t.Name, Shape: t.Shape, Rows: rd.rows, RowLen: rd.rowLen, InRowBytes: rd.rowBytes,
		OutRowBytes: rd.rowBytes, PartRowBytes: prb, Elements: elementsOf(t.Shape)}
	j.Raw = func(r0, n int64) error {
		for k := range srcs {
			b, err := readRows(srcs[k], t.Name, r0, n, prb[k])
			if err != nil {
				return err
			}
			if _, err := ds[k].w.WriteAt(b, ds[k].off+r0*prb[k]); err != nil {
				return fmt.Errorf("tensor %s: write: %w", t.Name, err)
			}
		}
		return nil
	}
	return j, nil
}
