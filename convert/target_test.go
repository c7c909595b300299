package convert

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

func TestParseTarget(t *testing.T) {
	pure := PlanOptions{Pure: true}
	for _, c := range []struct {
		out  string
		f    TargetFlags
		want Target
		err  string
	}{
		// GGUF outputs.
		{"m.gguf", TargetFlags{}, GGUFTarget{}, ""},
		{"m.GGUF", TargetFlags{Type: "q4_k_m"}, GGUFTarget{FileType: mustFT(t, "Q4_K_M")}, ""},
		{"m.gguf", TargetFlags{Type: "Q8_0", Plan: pure, AllowRequantize: true}, GGUFTarget{FileType: mustFT(t, "Q8_0"), Plan: pure, AllowRequantize: true}, ""},
		{"m.gguf", TargetFlags{Type: "F32"}, GGUFTarget{FileType: mustFT(t, "F32")}, ""},
		{"m.gguf", TargetFlags{Bits: 4}, nil, "--bits 4 does not apply to m.gguf"},
		{"m.gguf", TargetFlags{Type: "Q4_0", GroupSize: 32}, nil, "--group-size 32 does not apply to m.gguf"},
		{"m.gguf", TargetFlags{Rounding: "gpu"}, nil, "--mlx-rounding gpu does not apply to m.gguf"},
		{"m.gguf", TargetFlags{To: "hf"}, nil, "--to hf does not apply to m.gguf"},
		{"m.gguf", TargetFlags{To: "mlx", Type: "Q8_0"}, nil, "--to mlx does not apply to m.gguf"},
		{"m.gguf", TargetFlags{Dtype: "f16"}, nil, "--dtype f16 does not apply to m.gguf: the GGUF file type is --type (e.g. --type F16)"},
		{"m.gguf", TargetFlags{Type: "INT4"}, nil, "--type INT4 is MLX affine quantization; m.gguf is a GGUF file"},
		{"m.gguf", TargetFlags{Type: "Q9_9"}, nil, `--type: unknown GGUF file type "Q9_9"`},
		{"m.gguf", TargetFlags{Plan: pure}, nil, "--pure needs --type"},
		{"m.gguf", TargetFlags{Plan: PlanOptions{TokenEmbeddingType: ptr(graph.Q8_0)}}, nil, "--token-embedding-type needs --type"},

		// MLX outputs. F32 is graph.Type's zero value: it must survive.
		{"m", TargetFlags{}, MLXTarget{}, ""},
		{"m", TargetFlags{Type: "F32"}, MLXTarget{Dtype: ptr(graph.F32)}, ""},
		{"m", TargetFlags{Dtype: "f32"}, MLXTarget{Dtype: ptr(graph.F32)}, ""},
		{"m", TargetFlags{To: "mlx", Type: "bf16", Dtype: "BF16"}, MLXTarget{Dtype: ptr(graph.BF16)}, ""},
		{"m", TargetFlags{Type: "int4"}, MLXTarget{Bits: 4}, ""},
		{"m", TargetFlags{QMode: "mxfp4"}, MLXTarget{Mode: "mxfp4"}, ""},
		{"m", TargetFlags{QMode: "MXFP4", Bits: 4, GroupSize: 32, Dtype: "bf16"}, MLXTarget{Mode: "mxfp4", GroupSize: 32, Dtype: ptr(graph.BF16)}, ""},
		{"m", TargetFlags{QMode: "affine", Bits: 8}, MLXTarget{Bits: 8}, ""},
		{"m", TargetFlags{QMode: "affine"}, MLXTarget{}, ""},
		{"m", TargetFlags{QMode: "mxfp4", Bits: 8}, nil, "--bits 8 and --q-mode mxfp4 contradict each other"},
		{"m", TargetFlags{QMode: "mxfp4", GroupSize: 64}, nil, "--group-size 64 and --q-mode mxfp4 contradict each other"},
		{"m", TargetFlags{QMode: "mxfp4", Rounding: "gpu"}, nil, "only MLX's CPU mxfp4 quantizer"},
		{"m", TargetFlags{QMode: "nvfp4"}, nil, "--q-mode nvfp4: want affine or mxfp4"},
		{"m.gguf", TargetFlags{QMode: "mxfp4"}, nil, "--q-mode mxfp4 does not apply to m.gguf"},
		{"m", TargetFlags{To: "hf", QMode: "mxfp4"}, nil, "--q-mode mxfp4 and --to hf contradict each other"},
		{"m", TargetFlags{Type: "INT4", Bits: 4}, MLXTarget{Bits: 4}, ""},
		{"m", TargetFlags{Bits: 3, GroupSize: 32, Rounding: "gpu", Dtype: "f32"}, MLXTarget{Bits: 3, GroupSize: 32, Dtype: ptr(graph.F32), Rounding: quantize.RoundGPU}, ""},
		{"m", TargetFlags{Bits: 8, Rounding: "cpu"}, MLXTarget{Bits: 8, Rounding: quantize.RoundCPU}, ""},
		{"m", TargetFlags{Type: "INT4", Bits: 8}, nil, "--type INT4 and --bits 8 contradict each other"},
		{"m", TargetFlags{Type: "F16", Bits: 4}, nil, "--type F16 and --bits 4 contradict each other"},
		{"m", TargetFlags{Type: "F16", Dtype: "bf16"}, nil, "--type F16 and --dtype bf16 contradict each other"},
		{"m", TargetFlags{Bits: 7}, nil, "--bits 7: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits"},
		{"m", TargetFlags{Bits: -4}, nil, "--bits -4: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits"},
		{"m", TargetFlags{Type: "INT7"}, nil, "--type INT7: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits"},
		{"m", TargetFlags{Bits: 4, GroupSize: 48}, nil, "--group-size 48: MLX affine group sizes are 32, 64 and 128"},
		{"m", TargetFlags{GroupSize: 32}, nil, "--group-size 32 needs --bits or --type INT2..INT8"},
		{"m", TargetFlags{Rounding: "gpu"}, nil, "--mlx-rounding gpu needs --bits or --type INT2..INT8"},
		{"m", TargetFlags{Bits: 4, Rounding: "fast"}, nil, "--mlx-rounding fast: want cpu or gpu"},
		{"m", TargetFlags{Dtype: "q8_0"}, nil, "--dtype q8_0: want f16, bf16 or f32"},
		{"m", TargetFlags{Type: "Q4_K_M"}, nil, "--type Q4_K_M: for MLX/HF output use INT2..INT8, F16, BF16 or F32"},
		{"m", TargetFlags{To: "onnx"}, nil, "--to onnx: want mlx or hf"},
		{"m", TargetFlags{Plan: PlanOptions{OutputTensorType: ptr(graph.Q8_0)}}, nil, "--output-tensor-type does not apply to m"},
		{"m", TargetFlags{Bits: 4, Plan: PlanOptions{LeaveOutputTensor: true}}, nil, "--leave-output-tensor does not apply to m"},
		{"m", TargetFlags{AllowRequantize: true}, nil, "--allow-requantize does not apply to m"},

		// HF outputs.
		{"m", TargetFlags{To: "hf"}, HFTarget{}, ""},
		{"m", TargetFlags{To: "HF", Dtype: "f32"}, HFTarget{Dtype: ptr(graph.F32)}, ""},
		{"m", TargetFlags{To: "hf", Type: "F32"}, HFTarget{Dtype: ptr(graph.F32)}, ""},
		{"m", TargetFlags{To: "hf", Bits: 4}, nil, "--bits 4 and --to hf contradict each other"},
		{"m", TargetFlags{To: "hf", Type: "INT4"}, nil, "--type INT4 and --to hf contradict each other"},
		{"m", TargetFlags{To: "hf", GroupSize: 64}, nil, "--group-size 64 and --to hf contradict each other"},
		{"m", TargetFlags{To: "hf", Rounding: "gpu"}, nil, "--mlx-rounding gpu and --to hf contradict each other"},
		{"m", TargetFlags{To: "hf", Type: "F16", Dtype: "f32"}, nil, "--type F16 and --dtype f32 contradict each other"},
	} {
		got, err := ParseTarget(c.out, c.f)
		if c.err != "" {
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseTarget(%q, %+v) = %#v, %v; want a UsageError %q", c.out, c.f, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseTarget(%q, %+v) = %#v, %v; want %#v", c.out, c.f, got, err, c.want)
		}
	}
}

// summaryTypes counts a conversion's output tensor types, MLX affine ones
// as "MLX_AFFINE_<bits>BIT_G<group>".
func summaryTypes(s *Summary) map[string]int {
	n := map[string]int{}
	for _, ts := range s.Tensors {
		n[ts.To]++
	}
	return n
}

// A GGUF whose quantized tensors are all one legacy type becomes MLX
// affine quantization with those bits and group 32, repacked exactly, when
// the target asks for neither bits nor dtype; the note says so. A dtype
// asks for an unquantized output; a GGUF of several block types is written
// unquantized with a note naming the exact repack available.
func TestGGUFToMLXDefault(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	q8, q4 := filepath.Join(dir, "q8.gguf"), filepath.Join(dir, "q4.gguf")
	convertOK(t, hfDir, q8, Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}})
	convertOK(t, hfDir, q4, Options{Target: GGUFTarget{FileType: mustFT(t, "Q4_0")}})
	for _, c := range []struct {
		name   string
		in     string
		target Target
		note   string // "" for none
		types  map[string]int
		same   Target // target whose output must be identical
	}{
		{"q8-default", q8, MLXTarget{},
			"q8.gguf: no --bits: its 44 quantized tensors are all Q8_0, repacked exactly as MLX 8-bit affine quantization with group size 32",
			map[string]int{"MLX_AFFINE_8BIT_G32": 44, "F32": 13}, MLXTarget{Bits: 8, GroupSize: 32}},
		{"q8-nil-target", q8, nil,
			"repacked exactly as MLX 8-bit affine quantization with group size 32",
			map[string]int{"MLX_AFFINE_8BIT_G32": 44, "F32": 13}, nil},
		{"q8-dtype", q8, MLXTarget{Dtype: ptr(graph.F16)}, "", map[string]int{"F16": 57}, nil},
		{"q8-hf", q8, HFTarget{}, "", map[string]int{"F16": 44, "F32": 13}, nil},
		{"q4-mixed", q4, MLXTarget{},
			"q4.gguf: no --bits: its quantized tensors (43 Q4_0, 1 Q6_K) are not all of one type that MLX holds exactly (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0): written unquantized (--bits 4 --group-size 32 repacks the Q4_0 tensors exactly",
			map[string]int{"F16": 44, "F32": 13}, nil},
		{"q8-explicit", q8, MLXTarget{Bits: 4, GroupSize: 64}, "", map[string]int{"MLX_AFFINE_4BIT_G64": 44, "F32": 13}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var notes []string
			out := filepath.Join(dir, c.name)
			s := convertOK(t, c.in, out, Options{Target: c.target, Note: func(s string) { notes = append(notes, s) }})
			if got := summaryTypes(s); !reflect.DeepEqual(got, c.types) {
				t.Errorf("output types %v, want %v", got, c.types)
			}
			switch {
			case c.note == "" && len(notes) > 0:
				t.Errorf("notes %q, want none", notes)
			case c.note != "" && (len(notes) != 1 || !strings.Contains(notes[0], c.note)):
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
			if c.same != nil {
				ref := filepath.Join(dir, c.name+"-explicit")
				convertOK(t, c.in, ref, Options{Target: c.same})
				sameTensors(t, c.name, safetensorsTensors(t, out), safetensorsTensors(t, ref))
			}
		})
	}
}

// MLX → GGUF without a file type: the note names the types written, which
// are the file's (norms F32, as convert_hf_to_gguf writes them), and only
// affine tensors with no exact GGUF form are said to be dequantized.
func TestMLXToGGUFDefaultNote(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	for _, c := range []struct {
		bits  int
		note  string
		warn  string
		types map[graph.Type]int
	}{
		{4, "no --type: 44 MLX affine tensors repacked exactly (44 Q4_1), 13 other tensors written as convert_hf_to_gguf.py writes them (13 F32); general.file_type Q4_1",
			"", map[graph.Type]int{graph.Q4_1: 44, graph.F32: 13}},
		{6, "", "44 MLX affine tensors have no exact GGUF form and are dequantized to BF16", map[graph.Type]int{graph.BF16: 44, graph.F32: 13}},
	} {
		m := filepath.Join(dir, "mlx"+string(rune('0'+c.bits)))
		convertOK(t, hfDir, m, Options{Target: MLXTarget{Bits: c.bits}})
		var notes, warns []string
		g := m + ".gguf"
		convertOK(t, m, g, Options{Note: func(s string) { notes = append(notes, s) }, Warn: func(s string) { warns = append(warns, s) }})
		if c.note == "" && len(notes) > 0 || c.note != "" && (len(notes) != 1 || notes[0] != c.note) {
			t.Errorf("%d-bit: notes %q, want %q", c.bits, notes, c.note)
		}
		if c.warn == "" && len(warns) > 0 || c.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0], c.warn)) {
			t.Errorf("%d-bit: warnings %q, want %q", c.bits, warns, c.warn)
		}
		f, err := gguf.Open(g)
		if err != nil {
			t.Fatal(err)
		}
		got := map[graph.Type]int{}
		for _, ti := range f.Tensors {
			got[ti.Type]++
		}
		f.Close()
		if !reflect.DeepEqual(got, c.types) {
			t.Errorf("%d-bit: GGUF tensor types %v, want %v", c.bits, got, c.types)
		}
	}
}

// Settings that cannot apply to the input are usage errors, found before
// anything is written; a lone safetensors file is named as such.
func TestConvertInputErrors(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	g := filepath.Join(dir, "f16.gguf")
	convertOK(t, hfDir, g, Options{Target: GGUFTarget{FileType: mustFT(t, "F16")}})
	// A safetensors file under another name.
	hdr := []byte(`{"__metadata__":{}}`)
	renamed := filepath.Join(dir, "weights.bin")
	if err := os.WriteFile(renamed, append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, in, out string
		opt           Options
		usage         bool
		want          string
	}{
		{"tokenizer-pre-gguf", g, "q8.gguf", Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}, TokenizerPre: "qwen2"}, true,
			"--tokenizer-pre qwen2 does not apply to " + g},
		{"tokenizer-pre-gguf-dir", g, "m", Options{TokenizerPre: "llama-bpe"}, true, "--tokenizer-pre llama-bpe does not apply"},
		{"gguf-no-type", g, "x.gguf", Options{}, true, "GGUF → GGUF needs a file type (--type)"},
		{"plan-float-type", hfDir, "x.gguf", Options{Target: GGUFTarget{FileType: mustFT(t, "BF16"), Plan: PlanOptions{LeaveOutputTensor: true}}}, true,
			"--leave-output-tensor and --type BF16 contradict each other for an HF or MLX input"},
		{"lone-safetensors", filepath.Join(hfDir, "model.safetensors"), "x.gguf", Options{}, false,
			"model.safetensors: a lone safetensors file has no architecture (no config.json) and cannot be converted: give the checkpoint directory"},
		{"renamed-safetensors", renamed, "m", Options{}, false, "weights.bin: a lone safetensors file has no architecture"},
		{"not-a-model", filepath.Join(hfDir, "config.json"), "m", Options{}, false, "config.json: not a GGUF file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.out)
			_, err := Convert(context.Background(), c.in, out, c.opt)
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &ue) != c.usage {
				t.Fatalf("err %v, want %q (usage error: %v)", err, c.want, c.usage)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists: %v", out, err)
			}
		})
	}
	// The plan options do apply to a GGUF input at a float type, as
	// llama-quantize applies them.
	s := convertOK(t, g, filepath.Join(dir, "f16-q8out.gguf"), Options{Target: GGUFTarget{FileType: mustFT(t, "F16"), Plan: PlanOptions{OutputTensorType: ptr(graph.Q8_0)}}})
	if s.Tensors[0].Name != "output.weight" || s.Tensors[0].To != "Q8_0" {
		t.Errorf("--output-tensor-type Q8_0 at F16: %+v", s.Tensors[0])
	}
}
