package dtype

import "testing"

func TestTypes(t *testing.T) {
	tests := []struct {
		typ        Type
		n, rowSize int64
		quantized  bool
	}{
		{F32, 256, 1024, false}, {BF16, 256, 512, false}, {Q8_0, 256, 272, true},
		{Q4_K, 256, 144, true}, {Q6_K, 512, 420, true}, {Q4_0, 64, 36, true}, {MXFP4, 32, 17, true},
	}
	for _, tc := range tests {
		rs, err := RowSize(tc.typ, tc.n)
		if err != nil || rs != tc.rowSize || tc.typ.IsQuantized() != tc.quantized {
			t.Errorf("%v: RowSize(%d) = %d, %v; quantized %v", tc.typ, tc.n, rs, err, tc.typ.IsQuantized())
		}
		if p, ok := ParseType(tc.typ.String()); !ok || p != tc.typ {
			t.Errorf("ParseType(%q) = %v, %v", tc.typ.String(), p, ok)
		}
	}
	if _, err := RowSize(Q4_K, 352); err == nil {
		t.Error("Q4_K row of 352: no error")
	}
	if _, err := RowSize(Type(999), 32); err == nil {
		t.Error("unknown type: no error")
	}
}
