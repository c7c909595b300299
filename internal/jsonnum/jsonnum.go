// Package jsonnum reads numbers out of decoded JSON values (the any trees
// encoding/json produces, with or without Decoder.UseNumber, and maps built
// in Go holding ints). It does not decode JSON itself and says nothing about
// whether a number was spelled as an integer.
package jsonnum

import "encoding/json"

// Float returns v as a float64 when v is a float64, a json.Number that
// parses as one, an int or an int64; ok is false for anything else
// (nil, strings, booleans, lists, objects, malformed json.Numbers).
func Float(v any) (f float64, ok bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
