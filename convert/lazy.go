package convert

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// lazyJob computes a job's output rows on demand, for writers that pull
// tensor data through graph.Source (the HF and MLX directory writers). It
// keeps one slab of computed rows; reads that walk a part front to back
// compute every slab once per part.
type lazyJob struct {
	ctx      context.Context
	j        *job
	slabRows int64

	mu    sync.Mutex
	r0, n int64
	parts [][]byte
	err   error
}

func newLazyJob(ctx context.Context, j *job, slabBytes int64) *lazyJob {
	if slabBytes <= 0 {
		slabBytes = 16 << 20
	}
	per := max(1, 4*j.RowLen+j.InRowBytes+j.OutRowBytes)
	step := max(1, slabBytes/per)
	if g := j.RowGroup; g > 1 {
		step = max(g, step/g*g)
	}
	return &lazyJob{ctx: ctx, j: j, slabRows: step, n: -1}
}

// part returns a graph.Source over output part i (0: data; 1, 2: MLX
// affine scales and biases).
func (l *lazyJob) part(i int) *lazyPart {
	return &lazyPart{l: l, i: i, rowBytes: l.j.PartRowBytes[i]}
}

// rows makes the cache hold the slab containing row r and calls fn under
// the lock.
func (l *lazyJob) with(r int64, fn func(r0 int64, parts [][]byte)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if r < l.r0 || r >= l.r0+l.n {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		r0 := r / l.slabRows * l.slabRows
		n := min(l.slabRows, l.j.Rows-r0)
		f, err := l.j.Load(r0, n)
		if err == nil {
			l.parts, err = l.j.Encode(f, r0, n)
		}
		if err != nil {
			l.err = err
			return err
		}
		l.r0, l.n = r0, n
	}
	fn(l.r0, l.parts)
	return nil
}

type lazyPart struct {
	l        *lazyJob
	i        int
	rowBytes int64
}

func (p *lazyPart) Size() int64 { return p.rowBytes * p.l.j.Rows }

func (p *lazyPart) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("tensor %s: negative offset", p.l.j.Name)
	}
	size := p.Size()
	n := 0
	for n < len(b) && off < size {
		row := off / p.rowBytes
		err := p.l.with(row, func(r0 int64, parts [][]byte) {
			n0 := copy(b[n:], parts[p.i][off-r0*p.rowBytes:])
			n += n0
			off += int64(n0)
		})
		if err != nil {
			return n, err
		}
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
