package perplexity

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A forward pass runs about ten short parallel loops per layer. Starting
// goroutines for each leaves a core idle while the scheduler wakes a
// thread (tens of microseconds per loop), so parallel loops run on
// persistent helper goroutines that spin briefly for the next loop before
// parking, as ggml's thread pool does.

// spinFor is how long an idle helper polls for the next loop before it
// parks (the serial work between the loops of a layer is shorter).
const spinFor = 200 * time.Microsecond

type poolJob struct {
	fn      func(worker, i int)
	n       int
	workers int32        // participants wanted, the caller included
	ids     atomic.Int32 // worker ids handed out
	next    atomic.Int64 // next item
	active  atomic.Int32 // participants inside run
}

// run takes a worker id and items until none are left.
func (j *poolJob) run() {
	j.active.Add(1)
	defer j.active.Add(-1)
	id := j.ids.Add(1) - 1
	if id >= j.workers {
		return
	}
	for {
		i := int(j.next.Add(1) - 1)
		if i >= j.n {
			return
		}
		j.fn(int(id), i)
	}
}

type workerPool struct {
	mu      sync.Mutex
	cond    *sync.Cond
	helpers int           // helper goroutines started
	seq     atomic.Uint64 // bumped for every published job
	job     atomic.Pointer[poolJob]
	parked  atomic.Int32
}

var pool = func() *workerPool {
	p := &workerPool{}
	p.cond = sync.NewCond(&p.mu)
	return p
}()

// ensure starts helpers until there are at least n.
func (p *workerPool) ensure(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; p.helpers < n; p.helpers++ {
		go p.helper(p.seq.Load())
	}
}

func (p *workerPool) helper(last uint64) {
	for {
		start := time.Now()
		spins := 0
		for p.seq.Load() == last {
			spins++
			if spins%128 != 0 {
				continue
			}
			runtime.Gosched()
			if time.Since(start) < spinFor {
				continue
			}
			p.mu.Lock()
			p.parked.Add(1)
			for p.seq.Load() == last {
				p.cond.Wait()
			}
			p.parked.Add(-1)
			p.mu.Unlock()
		}
		last = p.seq.Load()
		if j := p.job.Load(); j != nil {
			j.run()
		}
	}
}

// parallelFor runs fn(worker, i) for i in [0, n) on up to threads workers
// (the caller and pool helpers), handing out indices dynamically. worker is
// in [0, threads). Calls must not be nested or concurrent with other
// parallelFor calls of more than one thread.
func parallelFor(threads, n int, fn func(worker, i int)) {
	if threads <= 1 || n <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	threads = min(threads, n)
	pool.ensure(threads - 1)
	j := &poolJob{fn: fn, n: n, workers: int32(threads)}
	pool.job.Store(j)
	pool.seq.Add(1)
	if pool.parked.Load() > 0 {
		pool.mu.Lock()
		pool.cond.Broadcast()
		pool.mu.Unlock()
	}
	j.run()
	for j.active.Load() != 0 {
		runtime.Gosched()
	}
}
