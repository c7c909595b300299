package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/formats/mlx"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/atomicfile"
)

// checkDirOutput refuses directory outputs that replacing could hurt: an
// existing out that is not a directory, a non-empty directory that holds
// no config.json (not a checkpoint), and an out that contains the input.
// checkPaths has already refused an existing out without --force.
func checkDirOutput(in, out string, force bool) error {
	ai, err1 := filepath.Abs(in)
	ao, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && strings.HasPrefix(filepath.Clean(ai)+string(filepath.Separator), filepath.Clean(ao)+string(filepath.Separator)) {
		return fmt.Errorf("%s: the input %s is inside the output directory", out, in)
	}
	st, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err // *PathError: names out
	}
	if !force {
		return fmt.Errorf("%s: %w", out, ErrExists)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", out)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(out, "config.json")); err != nil {
			return fmt.Errorf("%s is a non-empty directory without config.json (not a checkpoint); refusing to replace it", out)
		}
	}
	return nil
}

// createTempDir removes what killed conversions to final left beside it and
// creates final's temporary output directory (and final's parent).
func createTempDir(final string) (*atomicfile.Dir, error) {
	removeStaleTemps(final)
	d, err := atomicfile.CreateDir(final)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return d, nil
}

// dest is where one part of a tensor goes.
type dest struct {
	w   io.WriterAt
	off int64
}

// writeMLXDir lays out the mlx-lm directory with mlx.Plan and writes it
// through a temporary directory: the shard files are created at their
// final size with their headers, every tensor is produced by the bounded
// worker pool straight to its planned offsets (progress and per-tensor
// times as for GGUF output), then config.json, the index and the
// auxiliary files; the directory is renamed into place at the end.
func writeMLXDir(ctx context.Context, out string, tm *graph.Model, dts []*dirTensor, q *mlx.Quantization, opt *Options) ([]TensorSummary, error) {
	p, err := mlx.Plan(tm, q, mlx.WriteOptions{})
	if err != nil {
		return nil, err
	}
	td, err := createTempDir(out)
	if err != nil {
		return nil, err
	}
	defer td.Abort()
	files := make([]*os.File, len(p.Shards))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, sh := range p.Shards {
		f, err := os.Create(filepath.Join(td.Path, sh.Name))
		if err != nil {
			return nil, err
		}
		files[i] = f
		if err := f.Truncate(sh.Layout.Size); err != nil {
			return nil, err // *PathError: names the file
		}
		if _, err := f.WriteAt(sh.Layout.Header, 0); err != nil {
			return nil, err
		}
	}
	loc := map[[2]int]dest{}
	for _, tp := range p.Tensors {
		loc[[2]int{tp.Tensor, int(tp.Part)}] = dest{files[tp.Shard], tp.Offset}
	}
	var jobs []*job
	var jdt []*dirTensor
	var fallback atomic.Int64
	for ti, dt := range dts {
		d0, ok := loc[[2]int{ti, 0}]
		if !ok {
			continue // not written (tied output.weight)
		}
		dt.written = true
		j, err := dt.job([3]dest{d0, loc[[2]int{ti, 1}], loc[[2]int{ti, 2}]}, &fallback)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
		jdt = append(jdt, dt)
	}
	sums, err := writeJobs(ctx, jobs, opt)
	if err != nil {
		return nil, err
	}
	if n := fallback.Load(); n > 0 {
		opt.warn("%d rows of GGUF blocks have a bias -o·d beyond F16 and were requantized instead of repacked exactly", n)
	}
	for i, f := range files {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("%s: sync: %w", f.Name(), err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("%s: close: %w", f.Name(), err)
		}
		files[i] = nil
	}
	if err := p.WriteMeta(td.Path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := td.Commit(); err != nil {
		return nil, err
	}
	for i := range sums {
		sums[i].From, sums[i].To = jdt[i].from, jdt[i].to
	}
	return sums, nil
}

// job builds the job producing dt's parts at ds (data, then scales and
// biases for MLX affine output).
func (dt *dirTensor) job(ds [3]dest, fallback *atomic.Int64) (*job, error) {
	t := dt.src
	switch {
	case dt.repack:
		return ggufAffineJob(t, dt.perm, ds, fallback)
	case dt.mxfp4:
		return mxfp4MLXJob(t, dt.perm, ds)
	case dt.copy && t.Type == graph.MLXAffine:
		return affineCopyJob(t, ds)
	case dt.copy:
		sp := spec{name: t.Name, src: t, to: t.Type, w: ds[0].w, off: ds[0].off}
		return sp.build()
	}
	sp := *dt.sp
	sp.w, sp.off = ds[0].w, ds[0].off
	if sp.affine != nil || sp.mlxFP4 {
		sp.scaleW, sp.scaleOff, sp.biasW, sp.biasOff = ds[1].w, ds[1].off, ds[2].w, ds[2].off
	}
	return sp.build()
}

// writeHFDir writes the HF directory with hf.WriteDir (its layout, its
// temporary directory renamed into place), each converted tensor computed
// lazily as the writer reads it; a meter on every tensor's data reports
// progress and per-tensor times.
func writeHFDir(ctx context.Context, out string, tm *graph.Model, dts []*dirTensor, opt *Options) ([]TensorSummary, error) {
	mt := newMeter(dts, opt)
	for i, dt := range dts {
		var src graph.Source
		if dt.copy {
			src = dt.src.Data
		} else {
			j, err := dt.sp.build()
			if err != nil {
				return nil, err
			}
			src = newLazyJob(ctx, j, opt.SlabBytes).part(0)
		}
		dt.nt.Data = mt.wrap(i, src)
		dt.written = true
	}
	removeStaleTemps(out)
	if err := hf.WriteDir(out, tm, hf.WriteOptions{Overwrite: opt.Force}); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return mt.summaries(), nil
}

// meter counts the bytes a writer pulls from each tensor's source.
type meter struct {
	mu    sync.Mutex
	opt   *Options
	prog  Progress
	size  []int64
	read  []int64
	start []time.Time
	end   []time.Time
	sums  []TensorSummary
}

func newMeter(dts []*dirTensor, opt *Options) *meter {
	m := &meter{opt: opt, size: make([]int64, len(dts)), read: make([]int64, len(dts)),
		start: make([]time.Time, len(dts)), end: make([]time.Time, len(dts)), sums: make([]TensorSummary, len(dts))}
	m.prog.Tensors = len(dts)
	for i, dt := range dts {
		b := dt.nt.Bytes()
		m.size[i] = b
		m.prog.Bytes += b
		m.sums[i] = TensorSummary{Name: dt.nt.Name, From: dt.from, To: dt.to, Bytes: b}
	}
	return m
}

func (m *meter) wrap(i int, src graph.Source) graph.Source {
	if src == nil {
		return nil
	}
	return &meteredSource{src: src, m: m, i: i}
}

func (m *meter) record(i int, n int, t0, t1 time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start[i].IsZero() || t0.Before(m.start[i]) {
		m.start[i] = t0
	}
	if t1.After(m.end[i]) {
		m.end[i] = t1
	}
	was := m.read[i]
	m.read[i] = min(m.size[i], was+int64(n))
	m.prog.BytesDone += m.read[i] - was
	m.prog.Tensor = m.sums[i].Name
	if was < m.size[i] && m.read[i] == m.size[i] {
		m.prog.TensorsDone++
		m.sums[i].Seconds = m.end[i].Sub(m.start[i]).Seconds()
	}
	if m.opt.Progress != nil {
		m.opt.Progress(m.prog)
	}
}

func (m *meter) summaries() []TensorSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]TensorSummary(nil), m.sums...)
}

type meteredSource struct {
	src graph.Source
	m   *meter
	i   int
}

func (s *meteredSource) Size() int64 { return s.src.Size() }

func (s *meteredSource) ReadAt(b []byte, off int64) (int, error) {
	t0 := time.Now()
	n, err := s.src.ReadAt(b, off)
	s.m.record(s.i, n, t0, time.Now())
	return n, err
}
