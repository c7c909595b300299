package perplexity

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// weight is a 2-D weight matrix [rows, cols] kept in its stored encoding
// (except F32, which is decoded once) and dequantized a tile of rows at a
// time inside matMul.
type weight struct {
	name       string
	rows, cols int
	typ        graph.Type
	f32        []float32 // set for F32 weights (and tests)
	raw        []byte    // encoded rows, rowBytes each (non-F32 ggml types, MLX codes)
	rowBytes   int
	// MLX affine: scales and biases decoded to float32 values as MLX's
	// dequantize uses them (one per group).
	affine *affineWeight
	// mins are the per-block minimums m of Q4_1/Q5_1 weights
	// ([rows * cols/32]), for llama.cpp's Q8_1 block-sum term.
	mins []float32
}

type affineWeight struct {
	bits, groupSize int
	scales, biases  []float32 // [rows * cols/groupSize]
	// round rounds to the scale dtype (MLX computes the dequantized value
	// in that dtype); identity for F32 scales.
	round func(float32) float32
	// f16 is set for F16 scales: round is roundF16, which affineF16 does
	// eight lanes at a time.
	f16 bool
}

func roundBF16(f float32) float32 { return quantize.BF16ToFP32(quantize.FP32ToBF16(f)) }
func roundF16(f float32) float32  { return quantize.FP16ToFP32(quantize.FP32ToFP16(f)) }
func roundF32(f float32) float32  { return f }

// dequantRows writes rows [r0, r1) as float32 into dst (len (r1-r0)*cols).
func (w *weight) dequantRows(dst []float32, r0, r1 int) {
	k := w.cols
	if w.f32 != nil {
		copy(dst, w.f32[r0*k:r1*k])
		return
	}
	for r := r0; r < r1; r++ {
		w.dequantRow(dst[(r-r0)*k:(r-r0+1)*k], r)
	}
}

// dequantRow writes row r as float32 into dst (len cols).
func (w *weight) dequantRow(dst []float32, r int) {
	k := w.cols
	dst = dst[:k]
	if w.f32 != nil {
		copy(dst, w.f32[r*k:(r+1)*k])
		return
	}
	src := w.raw[r*w.rowBytes : (r+1)*w.rowBytes]
	if useSIMD && k >= 8 && (w.typ == graph.F16 || w.typ == graph.BF16) {
		m := k &^ 7
		if w.typ == graph.F16 {
			f16ToF32AVX(&dst[0], &src[0], m)
		} else {
			bf16ToF32AVX(&dst[0], &src[0], m)
		}
		dst, src = dst[m:], src[2*m:]
	}
	switch w.typ {
	case graph.F16:
		for i := range dst {
			dst[i] = quantize.FP16ToFP32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case graph.BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case graph.MLXAffine:
		dequantAffineRow(dst, src, w.affine, r)
	default:
		if err := dequantBlocks(dst, src, w.typ); err != nil {
			// newWeight checked the type; a failure here is a bug.
			panic(fmt.Sprintf("perplexity: dequantize %s row %d: %v", w.name, r, err))
		}
	}
}

// dequantAffineRow expands one row of MLX affine codes: code q of group g
// becomes scale[g]*q + bias[g], computed in the scale dtype as MLX's
// dequantize does (for bf16 scales: bf16(bf16(q*scale)+bias)).
func dequantAffineRow(dst []float32, src []byte, a *affineWeight, r int) {
	groups := len(dst) / a.groupSize
	sc := a.scales[r*groups : (r+1)*groups]
	bi := a.biases[r*groups : (r+1)*groups]
	if a.f16 && useSIMD && a.groupSize%8 == 0 && (a.bits == 4 || a.bits == 8) {
		dequantAffineF16(dst, src, a, sc, bi)
		return
	}
	bits := uint(a.bits)
	mask := uint64(1)<<bits - 1
	var acc uint64
	var have uint
	p := 0
	for g := 0; g < groups; g++ {
		s, b := sc[g], bi[g]
		out := dst[g*a.groupSize : (g+1)*a.groupSize]
		for i := range out {
			for have < bits {
				acc |= uint64(src[p]) << have
				p++
				have += 8
			}
			q := float32(acc & mask)
			acc >>= bits
			have -= bits
			out[i] = a.round(a.round(s*q) + b)
		}
	}
}

// nibbles4 holds the two 4-bit codes of every byte as float32, low
// nibble first (MLX packs codes from the low bits of each word up).
var nibbles4 = func() (t [256][2]float32) {
	for b := range t {
		t[b] = [2]float32{float32(b & 15), float32(b >> 4)}
	}
	return t
}()

// dequantAffineF16 is dequantAffineRow for 4- and 8-bit codes with F16
// scales and groups of a multiple of 8: the codes are spread as floats,
// then affineF16 applies f16(f16(s·q) + b) to each group with the F16C
// conversions, bit for bit what roundF16 gives.
func dequantAffineF16(dst []float32, src []byte, a *affineWeight, sc, bi []float32) {
	if a.bits == 4 {
		src = src[:len(dst)/2]
		for i, b := range src {
			v := &nibbles4[b]
			dst[2*i], dst[2*i+1] = v[0], v[1]
		}
	} else {
		src = src[:len(dst)]
		for i, b := range src {
			dst[i] = float32(b)
		}
	}
	gs := a.groupSize
	for g := range sc {
		affineF16(&dst[g*gs], gs, sc[g], bi[g])
	}
}

// newWeight decodes a graph tensor of logical shape [rows, cols] into a
// weight. The tensor's bytes are mapped from the model file or read into
// memory (mapOrRead).
func newWeight(t *graph.Tensor) (*weight, error) {
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("tensor %s: want 2 dimensions, have shape %v", t.Name, t.Shape)
	}
	rows, cols := t.Shape[0], t.Shape[1]
	if rows <= 0 || cols <= 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return nil, fmt.Errorf("tensor %s: bad shape %v", t.Name, t.Shape)
	}
	w := &weight{name: t.Name, rows: int(rows), cols: int(cols), typ: t.Type}
	if t.Data == nil {
		return nil, fmt.Errorf("tensor %s: no data", t.Name)
	}
	if t.Type == graph.MLXAffine {
		return newAffineWeight(w, t)
	}
	rs, err := graph.RowSize(t.Type, cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %v", t.Name, err)
	}
	if !canDequant(t.Type) {
		return nil, fmt.Errorf("tensor %s: type %v is not supported by the forward pass", t.Name, t.Type)
	}
	need := rs * rows
	if t.Data.Size() < need {
		return nil, fmt.Errorf("tensor %s: data is %d bytes, shape %v of %v needs %d", t.Name, t.Data.Size(), t.Shape, t.Type, need)
	}
	w.rowBytes = int(rs)
	if t.Type == graph.F32 {
		raw, err := readAll(t, need)
		if err != nil {
			return nil, err
		}
		w.f32 = make([]float32, rows*cols)
		for i := range w.f32 {
			w.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return w, nil
	}
	raw, err := mapOrRead(w, t, need)
	if err != nil {
		return nil, err
	}
	w.raw = raw
	if t.Type == graph.Q4_1 || t.Type == graph.Q5_1 {
		// block_q4_1 / block_q5_1 start with fp16 d, fp16 m.
		bs := int(t.Type.TypeSize())
		nb := int(cols) / 32
		w.mins = make([]float32, int(rows)*nb)
		for i := range w.mins {
			w.mins[i] = quantize.FP16ToFP32(binary.LittleEndian.Uint16(raw[i*bs+2:]))
		}
	}
	return w, nil
}

// readAll reads the first need bytes of t's data.
func readAll(t *graph.Tensor, need int64) ([]byte, error) {
	raw := make([]byte, need)
	if _, err := t.Data.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("tensor %s: read %d bytes: %w", t.Name, need, err)
	}
	return raw, nil
}

// mapOrRead gives w's encoded rows, the first need bytes of t's data:
// mapped read-only from the model file where it can be (mapSection; the
// mapping is released once w is garbage; every page mapped at once except
// the token embeddings', of which a pass gathers a few rows), read into
// memory otherwise. The
// forward pass never writes w.raw.
func mapOrRead(w *weight, t *graph.Tensor, need int64) ([]byte, error) {
	if b, unmap, ok := mapSection(t.Data, need, t.Name != "token_embd.weight"); ok {
		runtime.AddCleanup(w, func(f func()) { f() }, unmap)
		return b, nil
	}
	return readAll(t, need)
}

func newAffineWeight(w *weight, t *graph.Tensor) (*weight, error) {
	a := t.Affine
	if a == nil || a.Scales == nil || a.Biases == nil {
		return nil, fmt.Errorf("tensor %s: MLX affine tensor without scales/biases", t.Name)
	}
	switch a.Bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return nil, fmt.Errorf("tensor %s: unsupported MLX affine bits %d", t.Name, a.Bits)
	}
	if a.GroupSize <= 0 || w.cols%a.GroupSize != 0 {
		return nil, fmt.Errorf("tensor %s: group size %d does not divide row length %d", t.Name, a.GroupSize, w.cols)
	}
	if (w.cols*a.Bits)%32 != 0 {
		return nil, fmt.Errorf("tensor %s: row of %d %d-bit codes is not whole uint32 words", t.Name, w.cols, a.Bits)
	}
	w.rowBytes = w.cols * a.Bits / 8
	need := int64(w.rowBytes) * int64(w.rows)
	if t.Data.Size() < need {
		return nil, fmt.Errorf("tensor %s: packed data is %d bytes, need %d", t.Name, t.Data.Size(), need)
	}
	raw, err := mapOrRead(w, t, need)
	if err != nil {
		return nil, err
	}
	w.raw = raw
	ng := w.rows * (w.cols / a.GroupSize)
	sc, err := readFloats(a.Scales, a.ScaleType, ng)
	if err != nil {
		return nil, fmt.Errorf("tensor %s scales: %w", t.Name, err)
	}
	bi, err := readFloats(a.Biases, a.ScaleType, ng)
	if err != nil {
		return nil, fmt.Errorf("tensor %s biases: %w", t.Name, err)
	}
	w.affine = &affineWeight{bits: a.Bits, groupSize: a.GroupSize, scales: sc, biases: bi, round: roundF32}
	switch a.ScaleType {
	case graph.BF16:
		w.affine.round = roundBF16
	case graph.F16:
		w.affine.round = roundF16
		w.affine.f16 = true
	}
	return w, nil
}

// readFloats reads n values of a float type (F32, F16, BF16) as float32.
func readFloats(s graph.Source, typ graph.Type, n int) ([]float32, error) {
	var es int
	switch typ {
	case graph.F32:
		es = 4
	case graph.F16, graph.BF16:
		es = 2
	default:
		return nil, fmt.Errorf("unsupported float type %v", typ)
	}
	need := int64(n) * int64(es)
	if s.Size() < need {
		return nil, fmt.Errorf("data is %d bytes, need %d (%d %v values)", s.Size(), need, n, typ)
	}
	raw := make([]byte, need)
	if _, err := s.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("read %d bytes: %w", need, err)
	}
	out := make([]float32, n)
	for i := range out {
		switch typ {
		case graph.F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case graph.F16:
			out[i] = quantize.FP16ToFP32(binary.LittleEndian.Uint16(raw[2*i:]))
		case graph.BF16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	}
	return out, nil
}

// readVector reads a 1-D float tensor (norm weights, biases) of length n.
func readVector(t *graph.Tensor, n int) ([]float32, error) {
	if t.Elements() != int64(n) {
		return nil, fmt.Errorf("tensor %s: shape %v, want %d elements", t.Name, t.Shape, n)
	}
	if t.Data == nil {
		return nil, fmt.Errorf("tensor %s: no data", t.Name)
	}
	if t.Type == graph.F32 || t.Type == graph.F16 || t.Type == graph.BF16 {
		v, err := readFloats(t.Data, t.Type, n)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		return v, nil
	}
	w, err := newWeight(&graph.Tensor{Name: t.Name, Shape: []int64{1, int64(n)}, Type: t.Type, Data: t.Data, Affine: t.Affine})
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	w.dequantRow(v, 0)
	return v, nil
}
