package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/quantbridge/quantbridge/graph"
)

// Progress is reported after every finished piece of work.
type Progress struct {
	TensorsDone, Tensors int
	BytesDone, Bytes     int64 // output tensor bytes
	Tensor               string
}

// Options control a conversion.
type Options struct {
	// Type is the GGUF file type (mixture) for GGUF output.
	Type FileType
	// Plan are llama-quantize's mixture options.
	Plan PlanOptions
	// Jobs is the number of concurrent workers (0: runtime.NumCPU()).
	Jobs int
	// MaxMemory bounds the bytes of tensor buffers in flight (0: Jobs ×
	// the largest piece of work). A piece larger than MaxMemory runs alone.
	MaxMemory int64
	// SlabBytes caps the float32 working set of one piece of work; larger
	// tensors are processed in slabs of whole rows (0: 64 MiB).
	SlabBytes int64
	// AllowRequantize permits converting an already-quantized tensor to
	// another quantized type (dequantize → quantize, lossy).
	AllowRequantize bool
	// Force overwrites an existing output.
	Force bool
	// Progress, if set, is called (serially) as work finishes.
	Progress func(Progress)
	// Warn, if set, receives warnings (requantization, lossy steps).
	Warn func(string)

	// To selects the output format for a directory output: "mlx" (default)
	// or "hf".
	To string
	// MLX output: Bits (0 = not quantized), GroupSize (0 = 64), Dtype for
	// unquantized float tensors (F16, BF16, F32; 0 = keep), Rounding
	// ("cpu" default, or "gpu").
	Bits      int
	GroupSize int
	Dtype     graph.Type
	Rounding  string
}

func (o *Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return runtime.NumCPU()
}

func (o *Options) warn(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

// TensorSummary is one tensor of a Summary.
type TensorSummary struct {
	Name    string  `json:"name"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// Summary describes a finished conversion (the --json output).
type Summary struct {
	Input         string          `json:"input"`
	Output        string          `json:"output"`
	Type          string          `json:"type"`
	Tensors       []TensorSummary `json:"tensors"`
	TotalBytes    int64           `json:"total_bytes"`
	Seconds       float64         `json:"seconds"`
	BitsPerWeight float64         `json:"bits_per_weight"`
}

// work is one piece of the pipeline: rows [row0, row0+rows) of a tensor.
type work struct {
	ti         int // index into the tensor list
	row0, rows int64
	cost       int64
}

// outTensor is one tensor to write: where its bytes come from and how to
// turn them into the output encoding.
type outTensor struct {
	Name  string
	Shape []int64
	From  graph.Type
	To    graph.Type
	Src   graph.Source
	// Offset is the absolute file offset of the tensor's first byte.
	Offset int64
	// Transform, if set, rewrites the float32 rows [row0, row0+n) in place
	// before encoding (e.g. Q/K row permutation needs whole heads, so it is
	// applied per tensor: see rowGroup).
	Transform func(rows []float32, row0 int64) error
	// RowGroup is the number of rows a slab must keep together (0 or 1: any).
	RowGroup int64
}

func (t *outTensor) rowLen() int64 {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

func (t *outTensor) elems() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t *outTensor) rows() int64 {
	if r := t.rowLen(); r > 0 {
		return t.elems() / r
	}
	return 0
}

// check validates that the tensor can be produced and returns its output
// and input row sizes.
func (t *outTensor) check(opt *Options) (inRS, outRS int64, err error) {
	rl := t.rowLen()
	inRS, err = graph.RowSize(t.From, rl)
	if err != nil {
		return 0, 0, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	outRS, err = graph.RowSize(t.To, rl)
	if err != nil {
		return 0, 0, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if t.Src == nil {
		return 0, 0, fmt.Errorf("tensor %s: no data", t.Name)
	}
	if want := inRS * t.rows(); t.Src.Size() < want {
		return 0, 0, fmt.Errorf("tensor %s: %d bytes of data, want %d for %v %v", t.Name, t.Src.Size(), want, t.From, t.Shape)
	}
	if t.From == t.To && t.Transform == nil {
		return inRS, outRS, nil
	}
	if !canDecode(t.From) {
		return 0, 0, fmt.Errorf("tensor %s: cannot convert from type %v", t.Name, t.From)
	}
	if !canEncode(t.To) {
		return 0, 0, fmt.Errorf("tensor %s: cannot convert to type %v", t.Name, t.To)
	}
	if t.From.IsQuantized() && t.From != t.To && !opt.AllowRequantize {
		return 0, 0, fmt.Errorf("tensor %s: requantizing from type %v is disabled (use --allow-requantize)", t.Name, t.From)
	}
	return inRS, outRS, nil
}

// writeTensors converts and writes every tensor at its offset in w, with
// opt.jobs() workers and bounded memory. Header bytes must be written by
// the caller. It returns per-tensor summaries in input order.
func writeTensors(ctx context.Context, w io.WriterAt, ts []*outTensor, opt *Options) ([]TensorSummary, error) {
	slab := opt.SlabBytes
	if slab <= 0 {
		slab = 64 << 20
	}
	inRS := make([]int64, len(ts))
	outRS := make([]int64, len(ts))
	var works []work
	var total int64
	var maxCost int64
	requant := 0
	for i, t := range ts {
		var err error
		inRS[i], outRS[i], err = t.check(opt)
		if err != nil {
			return nil, err
		}
		if t.From.IsQuantized() && t.From != t.To {
			requant++
		}
		rows := t.rows()
		total += outRS[i] * rows
		convert := t.From != t.To || t.Transform != nil
		perRow := inRS[i]
		if convert {
			perRow += 4*t.rowLen() + outRS[i]
		}
		step := rows
		if perRow > 0 {
			step = max(1, slab/perRow)
		}
		if g := t.RowGroup; g > 1 {
			step = max(g, step/g*g)
		}
		if rows == 0 {
			works = append(works, work{ti: i})
			continue
		}
		for r := int64(0); r < rows; r += step {
			n := min(step, rows-r)
			c := n * perRow
			maxCost = max(maxCost, c)
			works = append(works, work{ti: i, row0: r, rows: n, cost: c})
		}
	}
	if requant > 0 {
		opt.warn("dequantizing %d already-quantized tensors to convert them: quality lost to the first quantization stays, and requantizing adds more", requant)
	}
	jobs := opt.jobs()
	limit := opt.MaxMemory
	if limit <= 0 {
		limit = max(1, maxCost*int64(jobs))
	}
	sem := semaphore.NewWeighted(limit)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)

	type tstate struct {
		left       int
		start, end time.Time
	}
	var mu sync.Mutex
	state := make([]tstate, len(ts))
	for _, wk := range works {
		state[wk.ti].left++
	}
	sums := make([]TensorSummary, len(ts))
	var prog Progress
	prog.Tensors, prog.Bytes = len(ts), total

	for _, wk := range works {
		c := min(wk.cost, limit)
		if err := sem.Acquire(gctx, c); err != nil {
			break
		}
		g.Go(func() error {
			defer sem.Release(c)
			if err := gctx.Err(); err != nil {
				return err
			}
			t := ts[wk.ti]
			start := time.Now()
			if err := runWork(t, wk, inRS[wk.ti], outRS[wk.ti], w); err != nil {
				return err
			}
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			st := &state[wk.ti]
			if st.start.IsZero() || start.Before(st.start) {
				st.start = start
			}
			if end.After(st.end) {
				st.end = end
			}
			st.left--
			prog.BytesDone += wk.rows * outRS[wk.ti]
			prog.Tensor = t.Name
			if st.left == 0 {
				prog.TensorsDone++
				sums[wk.ti] = TensorSummary{Name: t.Name, From: t.From.String(), To: t.To.String(),
					Bytes: outRS[wk.ti] * t.rows(), Seconds: st.end.Sub(st.start).Seconds()}
			}
			if opt.Progress != nil {
				opt.Progress(prog)
			}
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// runWork converts and writes one slab.
func runWork(t *outTensor, wk work, inRS, outRS int64, w io.WriterAt) error {
	if wk.rows == 0 {
		return nil
	}
	in := make([]byte, wk.rows*inRS)
	if n, err := t.Src.ReadAt(in, wk.row0*inRS); n < len(in) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("tensor %s: read rows %d..%d: %w", t.Name, wk.row0, wk.row0+wk.rows, err)
	}
	out := in
	if t.From != t.To || t.Transform != nil {
		rl := t.rowLen()
		f := make([]float32, wk.rows*rl)
		if err := decodeRows(f, in, t.From); err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if t.From != t.To {
			if i := firstNonFinite(f); i >= 0 {
				return errNonFinite(t.Name, wk.row0*rl+int64(i), f[i])
			}
		}
		if t.Transform != nil {
			if err := t.Transform(f, wk.row0); err != nil {
				return fmt.Errorf("tensor %s: %w", t.Name, err)
			}
		}
		out = make([]byte, wk.rows*outRS)
		if err := encodeRows(out, f, t.To); err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if t.To == graph.F16 || t.To == graph.BF16 {
			if i := firstNonFinite16(out, t.To); i >= 0 {
				return fmt.Errorf("tensor %s: element %d (%v) overflows %v", t.Name, wk.row0*rl+int64(i), f[i], t.To)
			}
		}
	}
	if _, err := w.WriteAt(out, t.Offset+wk.row0*outRS); err != nil {
		return fmt.Errorf("tensor %s: write: %w", t.Name, err)
	}
	return nil
}

// firstNonFinite16 returns the first F16/BF16 element that is Inf or NaN.
func firstNonFinite16(b []byte, t graph.Type) int {
	mask := uint16(0x7c00)
	if t == graph.BF16 {
		mask = 0x7f80
	}
	for i := 0; i+1 < len(b); i += 2 {
		if (uint16(b[i])|uint16(b[i+1])<<8)&mask == mask {
			return i / 2
		}
	}
	return -1
}
