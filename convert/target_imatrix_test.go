package convert

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTargetImatrix(t *testing.T) {
	for _, tc := range []struct {
		out  string
		f    TargetFlags
		want string // "" for accepted
	}{
		{"o.gguf", TargetFlags{Type: "IQ4_XS", Imatrix: "m.gguf"}, ""},
		{"o.gguf", TargetFlags{Type: "Q4_K_M", Imatrix: "m.gguf", ImatrixInclude: []string{"attn"}}, ""},
		{"o.gguf", TargetFlags{Imatrix: "m.gguf"}, "--imatrix m.gguf needs --type"},
		{"o.gguf", TargetFlags{Type: "Q4_K_M", ImatrixExclude: []string{"attn"}}, "--exclude-weights needs --imatrix"},
		{"o.gguf", TargetFlags{Type: "Q4_K_M", Imatrix: "m", ImatrixInclude: []string{"a"}, ImatrixExclude: []string{"b"}}, "contradict"},
		{"dir", TargetFlags{Imatrix: "m.gguf"}, "--imatrix m.gguf does not apply to dir"},
	} {
		tg, err := ParseTarget(tc.out, tc.f)
		var ue *UsageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.f, err)
		case tc.want == "" && tg.(GGUFTarget).Imatrix != tc.f.Imatrix:
			t.Errorf("%+v: target %+v", tc.f, tg)
		case tc.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err %v, want a UsageError with %q", tc.f, err, tc.want)
		}
	}
}
