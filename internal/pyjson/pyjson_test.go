package pyjson

import (
	"encoding/json"
	"math"
	"testing"
)

// TestMarshal: expected outputs are Python 3's json.dumps(obj, indent=N).
func TestMarshal(t *testing.T) {
	floats := func(k string) bool { return k == "rope_theta" }
	for _, tc := range []struct {
		name string
		enc  Encoder
		v    any
		want string
	}{
		{"python floats and escapes", Encoder{Indent: "  "}, map[string]any{
			"a": 1e-05, "b": 1e16, "c": 10000.0, "d": "é😀\x01\"\\\n", "e": []any{}, "f": map[string]any{},
			"g": []any{1, 2.5, nil, true}, "h": 0.0001, "i": 1e15, "j": math.Copysign(0, -1), "k": 123456789012345678.0,
		}, `{
  "a": 1e-05,
  "b": 1e+16,
  "c": 10000.0,
  "d": "\u00e9\ud83d\ude00\u0001\"\\\n",
  "e": [],
  "f": {},
  "g": [
    1,
    2.5,
    null,
    true
  ],
  "h": 0.0001,
  "i": 1000000000000000.0,
  "j": -0.0,
  "k": 1.2345678901234568e+17
}`},
		{"object keeps order", Encoder{Indent: "    "}, Object{{"z", int64(1)}, {"a", Object{{"y", json.Number("2")}, {"x", json.Number("2.50")}}}},
			"{\n    \"z\": 1,\n    \"a\": {\n        \"y\": 2,\n        \"x\": 2.5\n    }\n}"},
		{"AsFloat: integral float64 is an int except under float keys", Encoder{Indent: "    ", AsFloat: floats},
			map[string]any{"rope_theta": 10000.0, "n": 32.0, "x": 0.5, "l": []any{1.0, json.Number("3")}, "t": json.Number("500000")},
			"{\n    \"l\": [\n        1,\n        3\n    ],\n    \"n\": 32,\n    \"rope_theta\": 10000.0,\n    \"t\": 500000,\n    \"x\": 0.5\n}"},
		{"AsFloat: json.Number under a float key", Encoder{AsFloat: floats}, map[string]any{"rope_theta": json.Number("10000")},
			"{\n\"rope_theta\": 10000.0\n}"},
	} {
		got, err := tc.enc.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), json.Number("x"), struct{}{}, []any{map[string]any{"a": float32(math.Inf(-1))}}} {
		if b, err := (Encoder{}).Marshal(v); err == nil {
			t.Errorf("%#v: no error, wrote %s", v, b)
		}
	}
}
