package convert

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// rowsOf returns the row length and row count of a shape (a scalar is one
// row of one value).
func rowsOf(shape []int64) (rowLen, rows int64) {
	rowLen, rows = 1, 1
	if len(shape) > 0 {
		rowLen = shape[len(shape)-1]
		for _, d := range shape[:len(shape)-1] {
			rows *= d
		}
	}
	return rowLen, rows
}

func elementsOf(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// perm is llama's rotary Q/K row permutation (convert_hf_to_gguf
// LlamaModel.permute): HF/MLX half-split rows to GGUF interleaved rows
// (forward) or back (inverse), within each of heads groups of rows.
type perm struct {
	heads   int
	inverse bool
	// headRows is the number of units (rows, or elements of a 1-D bias)
	// per head: the whole tensor's count / heads. 0 means n / heads of the
	// n units given to apply (the whole tensor in one piece).
	headRows int64
}

// withRows returns p for a tensor of n units (rows or bias elements).
func (p perm) withRows(n int64) (perm, error) {
	if p.heads <= 0 || n%int64(p.heads) != 0 || (n/int64(p.heads))%2 != 0 {
		return p, fmt.Errorf("%d rows cannot be permuted for %d heads", n, p.heads)
	}
	p.headRows = n / int64(p.heads)
	return p, nil
}

// apply permutes n units of unit floats each (rows of a 2-D tensor, or the
// elements of a 1-D bias) in place; n must be a whole number of heads
// (a slab of whole heads of a larger tensor when headRows is set).
func (p perm) apply(f []float32, unit, n int64) error {
	hd := p.headRows
	if hd == 0 && p.heads > 0 && n%int64(p.heads) == 0 {
		hd = n / int64(p.heads)
	}
	if p.heads <= 0 || hd <= 0 || n%hd != 0 || hd%2 != 0 {
		return fmt.Errorf("cannot permute %d rows for %d heads", n, p.heads)
	}
	tmp := make([]float32, hd*unit)
	half := hd / 2
	for h := int64(0); h < n/hd; h++ {
		blk := f[h*hd*unit : (h+1)*hd*unit]
		copy(tmp, blk)
		for i := int64(0); i < half; i++ {
			for j := int64(0); j < 2; j++ {
				inter, split := 2*i+j, j*half+i // GGUF row, HF row
				src, dst := split, inter
				if p.inverse {
					src, dst = inter, split
				}
				copy(blk[dst*unit:(dst+1)*unit], tmp[src*unit:(src+1)*unit])
			}
		}
	}
	return nil
}

// reader produces float32 rows of a source tensor.
type reader struct {
	t        *graph.Tensor
	rowLen   int64
	rows     int64
	rowBytes int64 // bytes read per row (all parts)
	// For MLXAffine sources.
	ap                   quantize.AffineParams
	words, groups, scale int64
}

func newReader(t *graph.Tensor) (*reader, error) {
	rl, rows := rowsOf(t.Shape)
	r := &reader{t: t, rowLen: rl, rows: rows}
	if t.Data == nil {
		return nil, fmt.Errorf("tensor %s: no data", t.Name)
	}
	if t.Type == graph.MLXAffine {
		a := t.Affine
		if a == nil || a.Scales == nil || a.Biases == nil {
			return nil, fmt.Errorf("tensor %s: MLX affine tensor without scales and biases", t.Name)
		}
		r.ap = quantize.AffineParams{Bits: a.Bits, GroupSize: a.GroupSize}
		if err := r.ap.Validate(); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if rl%int64(a.GroupSize) != 0 {
			return nil, fmt.Errorf("tensor %s: row of %d is not a whole number of groups of %d", t.Name, rl, a.GroupSize)
		}
		r.words = int64(quantize.AffinePackedWords(int(rl), a.Bits))
		r.groups = rl / int64(a.GroupSize)
		r.scale = int64(quantize.AffineScaleSize(a.ScaleType))
		if r.scale == 0 {
			return nil, fmt.Errorf("tensor %s: affine scale type %v", t.Name, a.ScaleType)
		}
		for _, c := range []struct {
			what string
			s    graph.Source
			want int64
		}{{"codes", t.Data, r.words * 4 * rows}, {"scales", a.Scales, r.groups * r.scale * rows}, {"biases", a.Biases, r.groups * r.scale * rows}} {
			if c.s.Size() < c.want {
				return nil, fmt.Errorf("tensor %s: %d bytes of %s, want %d", t.Name, c.s.Size(), c.what, c.want)
			}
		}
		r.rowBytes = r.words*4 + 2*r.groups*r.scale
		return r, nil
	}
	rb, err := graph.RowSize(t.Type, rl)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if want := rb * rows; t.Data.Size() < want {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, want %d for %v %v", t.Name, t.Data.Size(), want, t.Type, t.Shape)
	}
	if !canDecode(t.Type) {
		return nil, fmt.Errorf("tensor %s: cannot convert from type %v", t.Name, t.Type)
	}
	r.rowBytes = rb
	return r, nil
}

// load reads and decodes rows [r0, r0+n).
func (r *reader) load(r0, n int64) ([]float32, error) {
	t := r.t
	f := make([]float32, n*r.rowLen)
	if t.Type != graph.MLXAffine {
		b, err := readRows(t.Data, t.Name, r0, n, r.rowBytes)
		if err != nil {
			return nil, err
		}
		if err := decodeRows(f, b, t.Type); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		return f, nil
	}
	codes, err := readRows(t.Data, t.Name, r0, n, r.words*4)
	if err != nil {
		return nil, err
	}
	sb := r.groups * r.scale
	scales, err := readRows(t.Affine.Scales, t.Name+" scales", r0, n, sb)
	if err != nil {
		return nil, err
	}
	biases, err := readRows(t.Affine.Biases, t.Name+" biases", r0, n, sb)
	if err != nil {
		return nil, err
	}
	words := make([]uint32, r.words)
	for i := int64(0); i < n; i++ {
		for k := range words {
			words[k] = binary.LittleEndian.Uint32(codes[(i*r.words+int64(k))*4:])
		}
		if err := quantize.AffineDequantizeRow(f[i*r.rowLen:(i+1)*r.rowLen], words, scales[i*sb:(i+1)*sb], biases[i*sb:(i+1)*sb], r.ap, t.Affine.ScaleType); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
	}
	return f, nil
}

// roundVia rounds every value to the precision of float type via (F16 or
// BF16; anything else is a no-op), as a pass through an intermediate file
// of that type would.
func roundVia(f []float32, via graph.Type) {
	switch via {
	case graph.F16:
		for i, v := range f {
			f[i] = quantize.FP16ToFP32(quantize.FP32ToFP16(v))
		}
	case graph.BF16:
		for i, v := range f {
			f[i] = quantize.BF16ToFP32(quantize.FP32ToBF16(v))
		}
	}
}

// spec describes one output tensor built from one source tensor.
type spec struct {
	name  string
	src   *graph.Tensor
	perm  *perm      // rotary permutation, nil for none
	via   graph.Type // intermediate float type (0: none)
	to    graph.Type // output encoding (a ggml type or a plain dtype)
	w     io.WriterAt
	off   int64
	check bool // refuse NaN/Inf inputs
	// add is added to every value after the permutation (Gemma's RMSNorm
	// offset, see normOffset); the sum is rounded to addRound (F16 or
	// BF16; 0 keeps float32) as the converter's torch addition in the
	// source dtype rounds it.
	add      float32
	addRound graph.Type
	// mlxFP4 asks for MLX mxfp4 output (codes, then scales, as MLX
	// lays them out), quantized by MLX's CPU rule for an array of dtype
	// scaleType.
	mlxFP4 bool
	// For MLXAffine output: where scales and biases go.
	affine            *quantize.AffineParams
	scaleType         graph.Type
	scaleOff, biasOff int64
	scaleW, biasW     io.WriterAt
	toName            string // type name for the summary (default to.String())
	// imp is the importance vector of a quantized output (llama-quantize
	// --imatrix): matRows rows per matrix, each matrix (expert) weighted by
	// its own RowLen values of imp; nil for none.
	imp     []float32
	matRows int64
}

// build turns a spec into a job.
func (s *spec) build() (*job, error) {
	t := s.src
	rl, rows := rowsOf(t.Shape)
	j := &job{Name: s.name, Shape: t.Shape, From: t.Type.String(), To: s.to.String(), Rows: rows, RowLen: rl,
		Elements: elementsOf(t.Shape)}
	if s.toName != "" {
		j.To = s.toName
	}
	if t.Type == s.to && s.perm == nil && s.add == 0 && s.affine == nil && !s.mlxFP4 && t.Type != graph.MLXAffine {
		rb, err := graph.RowSize(t.Type, rl)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if t.Data == nil || t.Data.Size() < rb*rows {
			return nil, fmt.Errorf("tensor %s: data is shorter than its shape %v of %v needs", t.Name, t.Shape, t.Type)
		}
		j.InRowBytes, j.OutRowBytes, j.Src, j.Dst, j.Off = rb, rb, t.Data, s.w, s.off
		return j, nil
	}
	rd, err := newReader(t)
	if err != nil {
		return nil, err
	}
	j.InRowBytes = rd.rowBytes
	unit, n := rl, rows
	var p *perm
	if s.perm != nil {
		if len(t.Shape) == 1 {
			unit, n = 1, rl
		}
		pp, err := s.perm.withRows(n)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		p = &pp
		if len(t.Shape) == 1 {
			j.RowGroup = rows
		} else {
			j.RowGroup = pp.headRows
		}
	}
	via, check, name := s.via, s.check, s.name
	add, addRound := s.add, s.addRound
	j.Load = func(r0, k int64) ([]float32, error) {
		f, err := rd.load(r0, k)
		if err != nil {
			return nil, err
		}
		if check {
			if i := firstNonFinite(f); i >= 0 {
				return nil, errNonFinite(name, r0*rl+int64(i), f[i])
			}
		}
		if p != nil {
			cnt := k
			if unit == 1 {
				cnt = rl
			}
			if err := p.apply(f, unit, cnt); err != nil {
				return nil, fmt.Errorf("tensor %s: %w", name, err)
			}
		}
		if add != 0 {
			for i := range f {
				f[i] += add
			}
			roundVia(f, addRound)
		}
		roundVia(f, via)
		return f, nil
	}
	if s.mlxFP4 {
		st := s.scaleType
		if rl%quantize.MXFP4GroupSize != 0 {
			return nil, fmt.Errorf("tensor %s: row of %d is not a whole number of mxfp4 groups of 32", t.Name, rl)
		}
		j.PartRowBytes = []int64{rl / 2, rl / quantize.MXFP4GroupSize}
		j.Encode = func(f []float32, _, k int64) ([][]byte, error) {
			codes := make([]byte, k*rl/2)
			scales := make([]byte, k*rl/quantize.MXFP4GroupSize)
			packed := make([]uint32, rl/8)
			for i := int64(0); i < k; i++ {
				row := f[i*rl : (i+1)*rl]
				roundVia(row, st) // the array MLX quantizes has dtype st
				if err := quantize.MLXFP4QuantizeRow(packed, scales[i*rl/32:(i+1)*rl/32], row, st); err != nil {
					return nil, fmt.Errorf("tensor %s: %w", name, err)
				}
				for q, v := range packed {
					binary.LittleEndian.PutUint32(codes[i*rl/2+int64(q)*4:], v)
				}
			}
			return [][]byte{codes, scales}, nil
		}
	} else if s.affine != nil {
		ap, st := *s.affine, s.scaleType
		words := int64(quantize.AffinePackedWords(int(rl), ap.Bits))
		sb := rl / int64(ap.GroupSize) * int64(quantize.AffineScaleSize(st))
		j.PartRowBytes = []int64{words * 4, sb, sb}
		j.Encode = func(f []float32, _, k int64) ([][]byte, error) {
			codes := make([]byte, k*words*4)
			scales := make([]byte, k*sb)
			biases := make([]byte, k*sb)
			packed := make([]uint32, words)
			for i := int64(0); i < k; i++ {
				if err := quantize.AffineQuantizeRow(packed, scales[i*sb:(i+1)*sb], biases[i*sb:(i+1)*sb], f[i*rl:(i+1)*rl], ap, st); err != nil {
					return nil, fmt.Errorf("tensor %s: %w", name, err)
				}
				for q, v := range packed {
					binary.LittleEndian.PutUint32(codes[(i*words+int64(q))*4:], v)
				}
			}
			return [][]byte{codes, scales, biases}, nil
		}
	} else {
		if !canEncode(s.to) && !(s.imp != nil && quantize.CanQuantizeWeighted(s.to)) {
			return nil, fmt.Errorf("tensor %s: cannot convert to type %v", t.Name, s.to)
		}
		ob, err := graph.RowSize(s.to, rl)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		j.PartRowBytes = []int64{ob}
		to := s.to
		imp, matRows := s.imp, s.matRows
		if imp != nil && (matRows <= 0 || int64(len(imp))%rl != 0 || (rows+matRows-1)/matRows > int64(len(imp))/rl) {
			return nil, fmt.Errorf("tensor %s: %d importance values for %d rows of %d in matrices of %d rows", t.Name, len(imp), rows, rl, matRows)
		}
		// Weighted types quantize row by row (their searches look at the
		// whole row), with the row's matrix's importance vector if any.
		perRow := imp != nil || quantize.CanQuantizeWeighted(to)
		j.Encode = func(f []float32, r0, k int64) ([][]byte, error) {
			out := make([]byte, k*ob)
			if perRow {
				for i := int64(0); i < k; i++ {
					var w []float32
					if imp != nil {
						m := (r0 + i) / matRows
						w = imp[m*rl : (m+1)*rl]
					}
					if err := quantize.QuantizeRowWeighted(out[i*ob:(i+1)*ob], f[i*rl:(i+1)*rl], w, to); err != nil {
						return nil, fmt.Errorf("tensor %s: row %d: %w", name, r0+i, err)
					}
				}
			} else if err := encodeRows(out, f, to); err != nil {
				return nil, fmt.Errorf("tensor %s: %w", name, err)
			}
			if check && (to == graph.F16 || to == graph.BF16) {
				if i := firstNonFinite16(out, to); i >= 0 {
					return nil, fmt.Errorf("tensor %s: element %d (%v) overflows %v", name, int64(i), f[i], to)
				}
			}
			return [][]byte{out}, nil
		}
	}
	for _, b := range j.PartRowBytes {
		j.OutRowBytes += b
	}
	if s.w != nil {
		ws := []io.WriterAt{s.w, s.scaleW, s.biasW}
		offs := []int64{s.off, s.scaleOff, s.biasOff}
		prb := j.PartRowBytes
		enc := j.Encode
		j.Store = func(f []float32, r0, k int64) error {
			parts, err := enc(f, r0, k)
			if err != nil {
				return err
			}
			for i, b := range parts {
				if _, err := ws[i].WriteAt(b, offs[i]+r0*prb[i]); err != nil {
					return fmt.Errorf("tensor %s: write: %w", name, err)
				}
			}
			return nil
		}
	}
	return j, nil
}
