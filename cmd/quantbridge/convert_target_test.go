package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
)

// modelTypes counts a model's tensor types, MLX affine ones as
// "MLX_<bits>BIT_G<group>".
func modelTypes(t *testing.T, path string) (graph.Format, map[string]int) {
	t.Helper()
	m, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n := map[string]int{}
	for _, tt := range m.Tensors {
		s := tt.Type.String()
		if tt.Type == graph.MLXAffine {
			s = fmt.Sprintf("MLX_%dBIT_G%d", tt.Affine.Bits, tt.Affine.GroupSize)
		}
		n[s]++
	}
	return m.Format, n
}

// Every output flag either applies to the output or is a usage error
// (exit 2) naming it and what it contradicts; F32 is honoured for
// directory outputs; GGUF Q8_0 → MLX repacks exactly by default and says
// so; MLX → GGUF says what it wrote.
func TestConvertTargetFlags(t *testing.T) {
	dir := t.TempDir()
	kjv := testref.Local(t, "kjv-llama")
	q8 := filepath.Join(dir, "kjv.q8_0.gguf")
	mlx4 := filepath.Join(dir, "kjv-mlx4")
	for _, args := range [][]string{{"--type", "q8_0", kjv, q8}, {"--type", "int4", kjv, mlx4}} {
		if _, err := runApp(t, append([]string{"convert", "-j", "2"}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	out := func(name string) string { return filepath.Join(dir, name) }

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{kjv, out("e1.gguf"), "--bits", "4"}, 2, "--bits 4 does not apply to " + out("e1.gguf")},
		{[]string{kjv, out("e2"), "--type", "INT4", "--bits", "8"}, 2, "--type INT4 and --bits 8 contradict each other"},
		{[]string{kjv, out("e3.gguf"), "--to", "hf", "--type", "F16"}, 2, "--to hf does not apply to " + out("e3.gguf")},
		{[]string{kjv, out("e4"), "--bits", "7"}, 2, "--bits 7: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits"},
		{[]string{kjv, out("e5"), "--bits", "4", "--group-size", "48"}, 2, "--group-size 48: MLX affine group sizes are 32, 64 and 128"},
		{[]string{kjv, out("e6"), "--group-size", "32"}, 2, "--group-size 32 needs --bits"},
		{[]string{kjv, out("e7"), "--mlx-rounding", "gpu", "--to", "hf"}, 2, "--mlx-rounding gpu and --to hf contradict each other"},
		{[]string{kjv, out("e8"), "--to", "hf", "--bits", "4"}, 2, "--bits 4 and --to hf contradict each other"},
		{[]string{kjv, out("e9.gguf"), "--dtype", "f32"}, 2, "--dtype f32 does not apply to " + out("e9.gguf")},
		{[]string{kjv, out("e10.gguf"), "--pure"}, 2, "--pure needs --type"},
		{[]string{kjv, out("e11.gguf"), "--type", "bf16", "--output-tensor-type", "q8_0"}, 2, "--output-tensor-type and --type BF16 contradict each other"},
		{[]string{kjv, out("e12"), "--type", "q4_k_m", "--to", "mlx"}, 2, "--type q4_k_m: for MLX/HF output"},
		{[]string{kjv, out("e13"), "--allow-requantize", "--bits", "4"}, 2, "--allow-requantize does not apply to " + out("e13")},
		{[]string{q8, out("e14.gguf")}, 2, "GGUF → GGUF needs a file type (--type)"},
		{[]string{q8, out("e15.gguf"), "--type", "q4_0", "--tokenizer-pre", "qwen2"}, 2, "--tokenizer-pre qwen2 does not apply to " + q8},
		{[]string{filepath.Join(kjv, "model.safetensors"), out("e16.gguf")}, 1, "a lone safetensors file has no architecture (no config.json) and cannot be converted: give the checkpoint directory"},
	} {
		_, err := runApp(t, append([]string{"convert"}, c.args...)...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want exit %d mentioning %q", c.args, err, c.code, c.want)
		}
	}
	if names, _ := filepath.Glob(out("e*")); len(names) > 0 {
		t.Errorf("refused conversions wrote %v", names)
	}

	for _, c := range []struct {
		name   string
		args   []string
		format graph.Format
		types  map[string]int
		stderr string
		not    string
	}{
		{"hf-dtype-f32", []string{kjv, out("hf-f32"), "--to", "hf", "--dtype", "f32"}, graph.FormatHF, map[string]int{"F32": 57}, "", ""},
		{"hf-type-f32", []string{kjv, out("hf-t-f32"), "--to", "hf", "--type", "F32"}, graph.FormatHF, map[string]int{"F32": 57}, "", ""},
		{"mlx-type-f32", []string{kjv, out("mlx-f32"), "--type", "F32"}, graph.FormatMLX, map[string]int{"F32": 57}, "", ""},
		{"mlx-dtype-f32", []string{kjv, out("mlx-d-f32"), "--dtype", "f32"}, graph.FormatMLX, map[string]int{"F32": 57}, "", ""},
		{"mlx-int4-f32-scales", []string{kjv, out("mlx4-f32"), "--bits", "4", "--dtype", "f32"}, graph.FormatMLX, map[string]int{"MLX_4BIT_G64": 44, "F32": 13}, "", ""},
		{"gguf-q8-to-mlx", []string{q8, out("q8-mlx")}, graph.FormatMLX, map[string]int{"MLX_8BIT_G32": 44, "F32": 13},
			"quantbridge: " + q8 + ": no --bits: its 44 quantized tensors are all Q8_0, repacked exactly as MLX 8-bit affine quantization with group size 32", ""},
		{"mlx-to-gguf", []string{mlx4, out("mlx4.gguf")}, graph.FormatGGUF, map[string]int{"Q4_1": 44, "F32": 13},
			"quantbridge: no --type: 44 MLX affine tensors repacked exactly (44 Q4_1), 13 other tensors written as convert_hf_to_gguf.py writes them (13 F32); general.file_type Q4_1",
			"dequantized to BF16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stderr, err := runApp(t, append([]string{"convert", "-j", "2"}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr, c.stderr) || c.not != "" && strings.Contains(stderr, c.not) {
				t.Errorf("stderr %q, want %q and not %q", stderr, c.stderr, c.not)
			}
			format, types := modelTypes(t, c.args[1])
			if format != c.format || !reflect.DeepEqual(types, c.types) {
				t.Errorf("%s: %s with types %v, want %s with %v", c.args[1], format, types, c.format, c.types)
			}
		})
	}
}
