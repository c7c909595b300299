package perplexity

import (
	"runtime"
	"sync"
)

// dot returns the float32 dot product of a and b[:len(a)] with eight
// independent accumulators (summation order differs from a naive loop in
// the last bits only).
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	if useSIMD && n >= 8 {
		m := n &^ 7
		s := dotAVX(&a[0], &b[0], m)
		for i := m; i < n; i++ {
			s += a[i] * b[i]
		}
		return s
	}
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// axpy adds a·x to y element-wise (len(x) >= len(y)). The AVX2 kernel
// multiplies and adds separately (no FMA), so every element is rounded
// exactly as in the Go loop.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	if useSIMD && len(y) >= 8 {
		m := len(y) &^ 7
		axpyAVX(&y[0], a, &x[0], m)
		y, x = y[m:], x[m:]
	}
	for i := range y {
		y[i] += a * x[i]
	}
}

// dot4x1 computes the dot products of one activation row x with four weight
// rows at once, so each activation element is loaded once for four rows.
// All slices must be at least len(x) long.
func dot4x1(x, w0, w1, w2, w3 []float32) (r0, r1, r2, r3 float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var a0, a1, a2, a3 float32
	for i, u := range x {
		a0 += u * w0[i]
		a1 += u * w1[i]
		a2 += u * w2[i]
		a3 += u * w3[i]
	}
	return a0, a1, a2, a3
}

// dot4x2 computes the eight dot products of two activation rows x0, x1
// with four weight rows: each loaded weight serves two tokens and each
// loaded activation four rows (eight accumulators fit the SSE registers
// without spilling). d receives [x0·w0..x0·w3, x1·w0..x1·w3].
func dot4x2(d *[8]float32, x0, x1, w0, w1, w2, w3 []float32) {
	n := len(x0)
	x1 = x1[:n]
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var a0, a1, a2, a3, b0, b1, b2, b3 float32
	for i, u := range x0 {
		v := x1[i]
		c0, c1, c2, c3 := w0[i], w1[i], w2[i], w3[i]
		a0 += u * c0
		a1 += u * c1
		a2 += u * c2
		a3 += u * c3
		b0 += v * c0
		b1 += v * c1
		b2 += v * c2
		b3 += v * c3
	}
	*d = [8]float32{a0, a1, a2, a3, b0, b1, b2, b3}
}

// rowTile is how many weight rows one work item dequantizes and multiplies
// against every activation row; tokBlock is how many activation rows are
// processed per pass over a tile (keeps the tile and the activation block in
// L1/L2).
const (
	rowTile  = 16
	tokBlock = 32
)

func defaultThreads(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

// matMul computes dst[t*w.rows+r] = x[t*w.cols : (t+1)*w.cols] · row r of w
// for t in [0, nTok): a batch of activation rows times the transposed weight
// matrix. Work is split over output rows; each work item dequantizes a tile
// of rowTile weight rows once into a per-worker buffer and multiplies it
// against all activation rows, so the dequantization cost is amortized over
// the whole batch. act says how activations are rounded for the weight type
// (llama.cpp's vec_dot_type); xq must then hold x in that rounding (see
// quantizeActivations), otherwise xq == x.
func matMul(dst []float32, w *weight, x []float32, nTok, threads int, scratch *scratch) {
	matMulJobs([]mulJob{{dst: dst, w: w, x: x}}, nTok, threads, scratch)
}

// mulJob is one matrix product of matMulJobs: dst = x × wᵀ.
type mulJob struct {
	dst   []float32
	w     *weight
	x     []float32
	order dotOrder // summation order (llama.cpp emulation); 0: the fast kernels
	// floatAct is set for float32 activations (no llama.cpp emulation):
	// any summation order will do.
	floatAct bool
	q8       *q8Blocks  // x as Q8_0/Q8_1 blocks, for orderQ0
	q8s      []float32  // the Q8_1 block sums s, for orderQ0 with Q4_1/Q5_1
	q8K      *q8KBlocks // x as Q8_K blocks, for the K-quant orders
	// x16 is x as fp16/bf16 codes for the 16-bit kernels (see
	// setHalves); nil: not used.
	x16 []uint16
	// gemvFrom is the first token row repack.cpp's GEMV rather than its
	// GEMM multiplies (orderQ4KRepack).
	gemvFrom int
}

// matMulJobs runs several matrix products over the same number of tokens
// (Q, K and V; gate and up) as one parallel loop over all their tiles, so
// the workers start once and share the work of all of them.
func matMulJobs(jobs []mulJob, nTok, threads int, scratch *scratch) {
	var starts [8]int
	if len(jobs) > len(starts)-1 {
		for _, j := range jobs {
			matMulJobs([]mulJob{j}, nTok, threads, scratch)
		}
		return
	}
	maxK := 0
	for i, j := range jobs {
		starts[i+1] = starts[i] + (j.w.rows+rowTile-1)/rowTile
		maxK = max(maxK, j.w.cols)
	}
	bufs := scratch.tileBufs(threads, rowTile*maxK)
	parallelFor(threads, starts[len(jobs)], func(worker, item int) {
		ji := 0
		for item >= starts[ji+1] {
			ji++
		}
		j := &jobs[ji]
		mulTile(j, nTok, item-starts[ji], bufs[worker])
	})
}

// mulTile computes rows [tile·rowTile, +rowTile) of dst = x × wᵀ, expanding
// encoded weight rows into buf.
func mulTile(j *mulJob, nTok, tile int, buf []float32) {
	dst, w, x, order := j.dst, j.w, j.x, j.order
	k, n := w.cols, w.rows
	if order == orderQ0 || order == orderQ0Repack {
		mulTileQ0(dst, w, j.q8, j.q8s, nTok, tile, buf, order == orderQ0Repack)
		return
	}
	if order.q8K() {
		mulTileK(dst, w, order, j.q8K, nTok, j.gemvFrom, tile)
		return
	}
	if j.x16 != nil {
		mulTileHalf(j, nTok, tile)
		return
	}
	dst = dst[:nTok*n]
	x = x[:nTok*k]
	{
		r0 := tile * rowTile
		r1 := min(r0+rowTile, n)
		nr := r1 - r0
		var rows []float32
		if w.f32 != nil {
			rows = w.f32[r0*k : r1*k]
		} else {
			rows = buf[:nr*k]
			w.dequantRows(rows, r0, r1)
		}
		if (order == orderTinyBLAS16 || order == orderTinyBLASBF16) && useSIMD && nr%4 == 0 && k%16 == 0 {
			if order == orderTinyBLASBF16 {
				if w.f32 != nil { // expanded: permute a copy
					rows = buf[:nr*k]
					copy(rows, w.f32[r0*k:r1*k])
				}
				permuteDPBF16(rows)
			}
			mulTileT16(dst[r0:], n, x, k, nTok, rows, nr)
			return
		}
		if order != orderFast {
			for r := 0; r < nr; r++ {
				wr := rows[r*k : (r+1)*k]
				for t := 0; t < nTok; t++ {
					dst[t*n+r0+r] = order.dot(wr, x[t*k:(t+1)*k])
				}
			}
			return
		}
		if useAVX512 && j.floatAct && nr%4 == 0 && k%16 == 0 {
			// Float32 activations (MLX and HF models, --activations
			// float), no reference order to follow: the AVX-512 tile
			// kernel. The orderFast products of the types llama.cpp sums
			// in its integer order (IQ3, TQ) keep mulBlockSIMD's order,
			// whose results the llama-perplexity comparisons were
			// measured with.
			mulTileT16(dst[r0:], n, x, k, nTok, rows, nr)
			return
		}
		if useSIMD && k%8 == 0 {
			mulBlockSIMD(dst[r0:], n, x, k, nTok, rows, k, nr, k)
			return
		}
		for t0 := 0; t0 < nTok; t0 += tokBlock {
			t1 := min(t0+tokBlock, nTok)
			r := 0
			for ; r+4 <= nr; r += 4 {
				w0 := rows[r*k : (r+1)*k]
				w1 := rows[(r+1)*k : (r+2)*k]
				w2 := rows[(r+2)*k : (r+3)*k]
				w3 := rows[(r+3)*k : (r+4)*k]
				t := t0
				var d8 [8]float32
				for ; t+2 <= t1; t += 2 {
					dot4x2(&d8, x[t*k:(t+1)*k], x[(t+1)*k:(t+2)*k], w0, w1, w2, w3)
					copy(dst[t*n+r0+r:t*n+r0+r+4], d8[:4])
					copy(dst[(t+1)*n+r0+r:(t+1)*n+r0+r+4], d8[4:])
				}
				if t < t1 {
					d := dst[t*n+r0+r : t*n+r0+r+4]
					d[0], d[1], d[2], d[3] = dot4x1(x[t*k:(t+1)*k], w0, w1, w2, w3)
				}
			}
			for ; r < nr; r++ {
				wr := rows[r*k : (r+1)*k]
				for t := t0; t < t1; t++ {
					dst[t*n+r0+r] = dot(wr, x[t*k:(t+1)*k])
				}
			}
		}
	}
}

// mulBlockSIMD computes dst[i*ldd+j] = x_i · w_j for i < nx, j < nw with
// the AVX2 kernels, where x_i = x[i*ldx:][:k] and w_j = w[j*ldw:][:k] (k a
// positive multiple of 8). Each group of four w rows (kept in L1) meets the
// x rows three at a time.
func mulBlockSIMD(dst []float32, ldd int, x []float32, ldx, nx int, w []float32, ldw, nw, k int) {
	if nx <= 0 || nw <= 0 {
		return
	}
	// The kernels read k elements from each row start: check the last ones.
	_ = x[(nx-1)*ldx+k-1]
	_ = w[(nw-1)*ldw+k-1]
	_ = dst[(nx-1)*ldd+nw-1]
	// Blocks of x rows small enough to stay in L1 (about 24 KiB) while
	// every group of four w rows passes over them.
	xb := max(3, (24<<10)/(4*k)/3*3)
	for i0 := 0; i0 < nx; i0 += xb {
		i1 := min(i0+xb, nx)
		mulBlockSIMD1(dst[i0*ldd:], ldd, x[i0*ldx:], ldx, i1-i0, w, ldw, nw, k)
	}
}

func mulBlockSIMD1(dst []float32, ldd int, x []float32, ldx, nx int, w []float32, ldw, nw, k int) {
	j := 0
	for ; j+4 <= nw; j += 4 {
		wp := &w[j*ldw]
		i := 0
		for ; i+3 <= nx; i += 3 {
			dot4x3(&x[i*ldx], ldx, wp, ldw, k, &dst[i*ldd+j], ldd)
		}
		for ; i < nx; i++ {
			dot4x1avx(&x[i*ldx], wp, ldw, k, &dst[i*ldd+j])
		}
	}
	for ; j < nw; j++ {
		for i := 0; i < nx; i++ {
			dst[i*ldd+j] = dotAVX(&w[j*ldw], &x[i*ldx], k)
		}
	}
}

// scratch holds reusable per-worker buffers.
type scratch struct {
	mu    sync.Mutex
	tiles [][]float32
	attn  [][]float32
}

func (s *scratch) tileBufs(threads, size int) [][]float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.tiles) < threads {
		s.tiles = append(s.tiles, nil)
	}
	for i := 0; i < threads; i++ {
		if cap(s.tiles[i]) < size {
			s.tiles[i] = make([]float32, size)
		}
		s.tiles[i] = s.tiles[i][:size]
	}
	return s.tiles[:threads]
}
