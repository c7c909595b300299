package jsonnum

import (
	"encoding/json"
	"testing"
)

func TestFloat(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want float64
		ok   bool
	}{
		{0.5, 0.5, true},
		{json.Number("500000"), 500000, true},
		{json.Number("1e-05"), 1e-05, true},
		{json.Number("x"), 0, false},
		{8, 8, true},
		{int64(-3), -3, true},
		{nil, 0, false},
		{"1", 0, false},
		{true, 0, false},
		{[]any{1.0}, 0, false},
		{int32(1), 0, false},
	} {
		got, ok := Float(tc.v)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Float(%#v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
