package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "kjv.q8_0.gguf")
	stdout, err := runApp(t, "convert", "--type", "q8_0", "-j", "2", "--json", testref.Local(t, "kjv-llama"), out)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Input, Output, Type string
		Tensors             []struct {
			Name, From, To string
			Bytes          int64
		}
		TotalBytes    int64   `json:"total_bytes"`
		BitsPerWeight float64 `json:"bits_per_weight"`
	}
	if err := json.Unmarshal([]byte(stdout[strings.Index(stdout, "{"):]), &s); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	// llama-quantize's kjv-llama.Q8_0.gguf is 7352704 bytes, 8.5 bits per
	// weight for the quantized matrices.
	if s.Type != "Q8_0" || s.Output != out || len(s.Tensors) != 57 || s.TotalBytes != st.Size() || st.Size() != 7352704 ||
		s.BitsPerWeight < 8.5 || s.BitsPerWeight > 8.6 || s.Tensors[0].Name != "output.weight" || s.Tensors[0].To != "Q8_0" {
		t.Errorf("summary %+v (file %d bytes)", s, st.Size())
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert", "--type", "int8", testref.Local(t, "kjv-llama"), dir}, 1, "exists"},
		{[]string{"convert", "--type", "q9_9", testref.Local(t, "kjv-llama"), out}, 2, "unknown GGUF file type"},
		{[]string{"convert", "--type", "int7", testref.Local(t, "kjv-llama"), filepath.Join(dir, "m")}, 2, "2, 3, 4, 5, 6 or 8 bits"},
		{[]string{"convert", "--max-memory", "lots", testref.Local(t, "kjv-llama"), out}, 2, "bad size"},
		{[]string{"convert", testref.Local(t, "kjv-llama")}, 2, "want IN and OUT"},
		{[]string{"convert", "--type", "q4_k_m", out, filepath.Join(dir, "x.gguf")}, 1, "requantizing from type Q8_0 is disabled"},
	} {
		_, err := runApp(t, c.args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want exit %d mentioning %q", c.args[1:], err, c.code, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "4K": 4096, "2G": 2 << 30, "1GiB": 1 << 30, "3m": 3 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1G", "0"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
