package quantize

// Lane glue for the SIMD k-quant kernels (ggml_amd64.s). The sub-blocks of
// a super-block run ggml's make_qkx2_quants / make_qx_quants independently,
// so the kernels run 8 of them at once, one per vector lane, each lane
// doing exactly the scalar code's float32 operations in the scalar order.
// The inputs are transposed so that row i of a lane matrix holds element i
// of the 8 sub-blocks. The kernels do not write the codes L of the search:
// quantize_row_*_ref overwrites them for every sub-block with a non-zero
// scale, and for the others the kernels return the (iscale, min) that
// reproduce them.

// Search numerators for make_qkx2_quants (rmin + rdelta*is + nmax, is =
// 0..nstep) and make_qx_quants (-(nmax + 0.1f*is), is = -9..9 but 0).
var (
	q2kNums = qkx2Nums(3, -0.5, 0.1, 15)
	q4kNums = qkx2Nums(15, -1, 0.1, 20)
	q5kNums = qkx2Nums(31, -0.5, 0.1, 15)
	q6kNums = qxNums(32)
)

func qkx2Nums(nmax int32, rmin, rdelta float32, nstep int) []float32 {
	nums := make([]float32, nstep+1)
	for is := range nums {
		nums[is] = rmin + float32(rdelta*float32(is)) + float32(nmax)
	}
	return nums
}

func qxNums(nmax int32) *[18]float32 {
	var nums [18]float32
	k := 0
	for is := -9; is <= 9; is++ {
		if is != 0 {
			nums[k] = -(float32(nmax) + float32(0.1*float32(is)))
			k++
		}
	}
	return &nums
}

// lanePrep weight modes.
const (
	lanePrepNone = 0 // transpose only
	lanePrepAbs  = 1 // fabsf(x) (quantize_row_q2_K_ref)
	lanePrepAvX  = 2 // sqrtf(sum_x2/32) + fabsf(x) (q4_K, q5_K)
)

// qkx2Codes writes make_qkx2_quants' codes clamp(nearest_int(iscale*(x -
// min)), 0, nmax) for the (iscale, min) a lane kernel returned.
func qkx2Codes(L []uint8, x []float32, iscale, min float32, nmax int32) {
	L = L[:len(x)]
	for i, v := range x {
		L[i] = uint8(clampI32(nearestInt(iscale*(v-min)), 0, nmax))
	}
}

// qxCodes writes make_qx_quants' codes for the iscale qx8 returned.
func qxCodes(L []int8, x []float32, iscale float32, nmax int32) {
	L = L[:len(x)]
	if iscale == 0 { // all-zero sub-block
		for i := range L {
			L[i] = 0
		}
		return
	}
	for i, v := range x {
		L[i] = int8(clampI32(nearestInt(iscale*v), -nmax, nmax-1) + nmax)
	}
}
