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
	// Target is the output and its settings (nil: the default for the
	// output path, GGUFTarget{} for one ending in .gguf, else MLXTarget{}).
	Target Target
	// Jobs is the number of concurrent workers (0: runtime.NumCPU()).
	Jobs int
	// MaxMemory bounds the bytes of tensor buffers in flight (0: Jobs ×
	// the largest piece of work). A piece larger than MaxMemory runs alone.
	MaxMemory int64
	// SlabBytes caps the working set of one piece of work; larger tensors
	// are processed in slabs of whole rows (0: 16 MiB).
	SlabBytes int64
	// Force overwrites an existing output directory (or anything else
	// at the output path); a GGUF output replaces an existing regular file
	// without it, as llama-quantize does (see ErrExists).
	Force bool
	// Progress, if set, is called (serially) as work finishes.
	Progress func(Progress)
	// Warn, if set, receives warnings (requantization, lossy steps).
	Warn func(string)
	// Note, if set, receives what the conversion chose where the target
	// left the choice to it (the MLX quantization of a GGUF input, the
	// GGUF types of an MLX input).
	Note func(string)

	// DryRun plans a GGUF output with a quantized file type and writes
	// nothing (llama-quantize --dry-run): Convert returns the plan as a
	// Summary (Output empty, each tensor's planned type, size and Reason).
	// Types that need an importance matrix not given are a warning.
	DryRun bool

	// TokenizerPre overrides the BPE pre-tokenizer name (tokenizer.ggml.pre)
	// of an HF/MLX input whose split regexes quantbridge does not recognise.
	TokenizerPre string
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

func (o *Options) note(format string, args ...any) {
	if o.Note != nil {
		o.Note(fmt.Sprintf(format, args...))
	}
}

// TensorSummary is one tensor of a Summary.
type TensorSummary struct {
	Name    string  `json:"name"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// Reason says why a dry run (Options.DryRun) chose the type.
	Reason string `json:"reason,omitempty"`
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

// job is one tensor to produce. Rows are the unit of work: Load decodes
// rows [r0, r0+n) to float32 and Store encodes and writes them; a job
// without Load copies its rows' bytes from Src to Dst unchanged.
type job struct {
	Name     string
	Shape    []int64
	From, To string // type names for the summary

	// Rows is the number of rows and RowGroup the number of rows a slab
	// must keep together (a multiple of it; 0 or 1: any).
	Rows, RowGroup int64
	// InRowBytes is the size of one input row (what Load or the copy reads),
	// OutRowBytes of one output row (all parts together), RowLen the number
	// of values per row.
	InRowBytes, OutRowBytes, RowLen int64

	Load  func(r0, n int64) ([]float32, error)
	Store func(f []float32, r0, n int64) error
	// Encode turns n rows of floats (rows r0 ...) into the output parts (one, or codes,
	// scales and biases for MLX affine); PartRowBytes are their row sizes.
	Encode       func(f []float32, r0, n int64) ([][]byte, error)
	PartRowBytes []int64
	// Raw, if set, produces and writes rows [r0, r0+n) by itself.
	Raw func(r0, n int64) error

	// Copy path.
	Src graph.Source
	Dst io.WriterAt
	Off int64

	Elements int64 // logical elements, for bits per weight
}

// writeJobs runs every job with opt.jobs() workers and bounded memory and
// returns per-job summaries.
func writeJobs(ctx context.Context, jobs []*job, opt *Options) ([]TensorSummary, error) {
	slab := opt.SlabBytes
	if slab <= 0 {
		slab = 16 << 20
	}
	type piece struct {
		ji       int
		r0, n    int64
		cost     int64
		outBytes int64
	}
	var pieces []piece
	var total, maxCost int64
	for i, j := range jobs {
		total += j.OutRowBytes * j.Rows
		perRow := j.InRowBytes
		if j.Load != nil || j.Raw != nil {
			perRow += 4*j.RowLen + j.OutRowBytes
		}
		step := j.Rows
		if perRow > 0 {
			step = max(1, slab/perRow)
		}
		if g := j.RowGroup; g > 1 {
			step = max(g, step/g*g)
		}
		if j.Rows == 0 {
			pieces = append(pieces, piece{ji: i})
			continue
		}
		for r := int64(0); r < j.Rows; r += step {
			n := min(step, j.Rows-r)
			c := n * perRow
			maxCost = max(maxCost, c)
			pieces = append(pieces, piece{ji: i, r0: r, n: n, cost: c, outBytes: n * j.OutRowBytes})
		}
	}
	workers := opt.jobs()
	limit := opt.MaxMemory
	if limit <= 0 {
		limit = max(1, maxCost*int64(workers))
	}
	sem := semaphore.NewWeighted(limit)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)

	type tstate struct {
		left       int
		start, end time.Time
	}
	var mu sync.Mutex
	state := make([]tstate, len(jobs))
	for _, p := range pieces {
		state[p.ji].left++
	}
	sums := make([]TensorSummary, len(jobs))
	prog := Progress{Tensors: len(jobs), Bytes: total}

	for _, p := range pieces {
		c := min(p.cost, limit)
		if err := sem.Acquire(gctx, c); err != nil {
			break
		}
		g.Go(func() error {
			defer sem.Release(c)
			if err := gctx.Err(); err != nil {
				return err
			}
			j := jobs[p.ji]
			start := time.Now()
			if err := runPiece(j, p.r0, p.n); err != nil {
				return err
			}
			end := time.Now()
			mu.Lock()
			defer mu.Unlock()
			st := &state[p.ji]
			if st.start.IsZero() || start.Before(st.start) {
				st.start = start
			}
			if end.After(st.end) {
				st.end = end
			}
			st.left--
			prog.BytesDone += p.outBytes
			prog.Tensor = j.Name
			if st.left == 0 {
				prog.TensorsDone++
				sums[p.ji] = TensorSummary{Name: j.Name, From: j.From, To: j.To,
					Bytes: j.OutRowBytes * j.Rows, Seconds: st.end.Sub(st.start).Seconds()}
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

// runPiece produces rows [r0, r0+n) of j.
func runPiece(j *job, r0, n int64) error {
	if n == 0 {
		return nil
	}
	if j.Raw != nil {
		return j.Raw(r0, n)
	}
	if j.Load == nil {
		b, err := readRows(j.Src, j.Name, r0, n, j.InRowBytes)
		if err != nil {
			return err
		}
		if _, err := j.Dst.WriteAt(b, j.Off+r0*j.InRowBytes); err != nil {
			return fmt.Errorf("tensor %s: write: %w", j.Name, err)
		}
		return nil
	}
	f, err := j.Load(r0, n)
	if err != nil {
		return err
	}
	return j.Store(f, r0, n)
}

// readRows reads rows [r0, r0+n) of rowBytes each from src.
func readRows(src graph.Source, name string, r0, n, rowBytes int64) ([]byte, error) {
	b := make([]byte, n*rowBytes)
	if k, err := src.ReadAt(b, r0*rowBytes); k < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("tensor %s: read rows %d..%d: %w", name, r0, r0+n, err)
	}
	return b, nil
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
