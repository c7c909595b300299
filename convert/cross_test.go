package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/formats/safetensors"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// refSHA256 are the sha256 sums of llama.cpp's reference files in
// ../shared/testdata/llama.cpp: kjv-llama.bf16.gguf written by
// convert_hf_to_gguf.py --outtype bf16 from testdata/kjv-llama, and
// kjv-llama.TYPE.gguf written by llama-quantize from it (llama.cpp
// 34af94cd). The default suite reproduces some from the repository's copy
// of the HF checkpoint; the refdata suite compares whole files.
var refSHA256 = map[string]string{
	"BF16":   "f125087a3e23255ef40a6c8b5547bcb52932f92d7bb7d90bb7f20c295ef9f6f8",
	"Q2_K":   "20ec4f22947ea236d28aa09a2f7166941c57661f0a39dc8fb4564236440908e2",
	"Q3_K_M": "182174d756d882dda646c18c23e0f6b1c2b1f0fd0383a78a5cfdb593ee2e014d",
	"Q4_0":   "9b7b5422c5c2607f03c9d9ffa582cbcf77beac0cbf1552373be3cce5048ea31a",
	"Q4_1":   "0d6e86063ea0ccb8053bd2c4221cdb1bec3ab886854127b2ec584e073f51d3f0",
	"Q4_K_M": "7bf1ec342399ff64586a302f821eebf8eb64d0209b244c0e84b14a40c0944608",
	"Q4_K_S": "6bad54c51a8314765dde3794fdec533dfe1fba823306b1a7c0caba4784a46365",
	"Q5_0":   "df4636938c15dcf9529ba3a58abccf0d2723b8f62e932830376bbece3700827d",
	"Q5_1":   "9660c11c209dd3bea42fec533de0bb3e3308dc2242b81c48bbf9d1ef741b3dee",
	"Q5_K_M": "35cce2a06cd55c7ffbe08c4c76e9f0c1b1e8d8aa90b63ea98518c3b12024c832",
	"Q5_K_S": "bf03e83adcac9708e373b12a557d31c49b65a2fc46be681606ec5ea24af49fe5",
	"Q6_K":   "e709fe1892e8661c22afdd3db404fb8abb83c1915963b6b90fd06a1448f8e224",
	"Q8_0":   "8e4056056f1948bbd536a9614775170d3bf1a7773d80b51f723413abe6d86ed7",
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func convertOK(t testing.TB, in, out string, opt Options) *Summary {
	t.Helper()
	if opt.Jobs == 0 {
		opt.Jobs = 2
	}
	s, err := Convert(context.Background(), in, out, opt)
	if err != nil {
		t.Fatalf("convert %s -> %s: %v", in, out, err)
	}
	return s
}

// TestHFToGGUFMatchesLlamaCpp converts the repository's HF kjv-llama
// checkpoint to GGUF and requires llama.cpp's bytes: BF16 as
// convert_hf_to_gguf.py writes it, Q8_0 as llama-quantize makes it from
// that, and the BF16 file quantized GGUF → GGUF to Q4_K_M.
func TestHFToGGUFMatchesLlamaCpp(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	bf16 := filepath.Join(dir, "kjv.bf16.gguf")
	convertOK(t, hfDir, bf16, Options{})
	if got := fileSHA256(t, bf16); got != refSHA256["BF16"] {
		t.Errorf("HF -> GGUF (auto = BF16): sha256 %s, want convert_hf_to_gguf's %s", got, refSHA256["BF16"])
	}
	q8 := filepath.Join(dir, "kjv.q8_0.gguf")
	convertOK(t, hfDir, q8, Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}})
	if got := fileSHA256(t, q8); got != refSHA256["Q8_0"] {
		t.Errorf("HF -> Q8_0: sha256 %s, want llama-quantize's %s", got, refSHA256["Q8_0"])
	}
	q4 := filepath.Join(dir, "kjv.q4_k_m.gguf")
	convertOK(t, bf16, q4, Options{Target: GGUFTarget{FileType: mustFT(t, "Q4_K_M")}})
	if got := fileSHA256(t, q4); got != refSHA256["Q4_K_M"] {
		t.Errorf("GGUF BF16 -> Q4_K_M: sha256 %s, want llama-quantize's %s", got, refSHA256["Q4_K_M"])
	}

	// Back to HF: un-permuted Q/K rows, BF16 everywhere (the GGUF norms
	// are F32 holding BF16 values): the original safetensors file exactly.
	back := filepath.Join(dir, "hf")
	convertOK(t, bf16, back, Options{Target: HFTarget{Dtype: ptr(graph.BF16)}})
	got, err := os.ReadFile(filepath.Join(back, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(hfDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("GGUF BF16 -> HF: model.safetensors differs from the original checkpoint")
	}
}

// ggufTensors returns name -> (type, shape, bytes) of a GGUF file.
func ggufTensors(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	for i, ti := range f.Tensors {
		b, err := graph.ReadAll(f.TensorReader(i))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		out[ti.Name] = fmt.Sprintf("%v %v %x", ti.Type, ti.Shape, h[:8])
	}
	return out
}

// safetensorsTensors returns name -> (dtype, shape, bytes) of every
// tensor in a directory's model*.safetensors files.
func safetensorsTensors(t testing.TB, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "model*.safetensors"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no safetensors (%v)", dir, err)
	}
	out := map[string]string{}
	for _, p := range files {
		f, err := safetensors.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, ti := range f.Tensors {
			b, err := graph.ReadAll(f.Section(i))
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(b)
			out[ti.Name] = fmt.Sprintf("%v %v %x", ti.DType, ti.Shape, h[:8])
		}
		f.Close()
	}
	return out
}

func sameTensors(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	bad := 0
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if got[k] != want[k] {
			bad++
			if bad <= 5 {
				t.Errorf("%s: %s = %q, want %q", what, k, got[k], want[k])
			}
		}
	}
}

// TestRoundTrips checks the lossless round trips: GGUF F16 → MLX F16 →
// GGUF F16, and MLX (unquantized) → GGUF → MLX, tensor for tensor.
func TestRoundTrips(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	f16 := filepath.Join(dir, "kjv.f16.gguf")
	convertOK(t, hfDir, f16, Options{Target: GGUFTarget{FileType: mustFT(t, "F16")}})
	mlxDir := filepath.Join(dir, "mlx-f16")
	convertOK(t, f16, mlxDir, Options{})
	f16b := filepath.Join(dir, "kjv.f16.again.gguf")
	convertOK(t, mlxDir, f16b, Options{Target: GGUFTarget{FileType: mustFT(t, "F16")}})
	sameTensors(t, "GGUF F16 -> MLX -> GGUF F16", ggufTensors(t, f16b), ggufTensors(t, f16))

	mlx2 := filepath.Join(dir, "mlx-f16-again")
	convertOK(t, f16b, mlx2, Options{})
	sameTensors(t, "MLX -> GGUF F16 -> MLX", safetensorsTensors(t, mlx2), safetensorsTensors(t, mlxDir))
}

// TestMLXQuantizedToGGUF dequantizes an MLX 4-bit model into GGUF BF16 and
// back to HF: every value must be MLX's dequantization (BF16 scales, so
// the auto type BF16 holds it exactly), and the Q/K rows go through the
// GGUF permutation and back.
func TestMLXQuantizedToGGUF(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	mlx4 := filepath.Join(dir, "mlx4")
	s := convertOK(t, hfDir, mlx4, Options{Target: MLXTarget{Bits: 4, GroupSize: 64}})
	if s.Type != "MLX 4-bit g64" {
		t.Errorf("summary type %q", s.Type)
	}
	var warned []string
	g := filepath.Join(dir, "from-mlx.gguf")
	convertOK(t, mlx4, g, Options{Target: GGUFTarget{FileType: mustFT(t, "BF16")}, Warn: func(s string) { warned = append(warned, s) }})
	// Direct dequantization to HF and via GGUF must agree.
	direct := filepath.Join(dir, "hf-direct")
	convertOK(t, mlx4, direct, Options{Target: HFTarget{}})
	via := filepath.Join(dir, "hf-via-gguf")
	convertOK(t, g, via, Options{Target: HFTarget{Dtype: ptr(graph.BF16)}})
	sameTensors(t, "MLX 4-bit -> HF vs MLX -> GGUF -> HF", safetensorsTensors(t, via), safetensorsTensors(t, direct))
	// Requantizing the MLX model to Q8_0 is lossy on lossy: warned.
	warned = nil
	convertOK(t, mlx4, filepath.Join(dir, "q8.gguf"), Options{Target: GGUFTarget{FileType: mustFT(t, "Q8_0")}, Warn: func(s string) { warned = append(warned, s) }})
	if len(warned) == 0 || !strings.Contains(warned[0], "already quantized") {
		t.Errorf("warnings %q", warned)
	}
}

func TestConvertDirErrors(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	tests := []struct {
		name string
		out  string
		opt  Options
		want string
	}{
		{"bad-bits", "o3", Options{Target: MLXTarget{Bits: 7}}, "--bits 7: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits"},
		{"bad-group", "o4", Options{Target: MLXTarget{Bits: 4, GroupSize: 48}}, "--group-size 48: MLX affine group sizes are 32, 64 and 128"},
		{"bad-dtype", "o5", Options{Target: MLXTarget{Dtype: ptr(graph.Q8_0)}}, "--dtype Q8_0: want F16, BF16 or F32"},
		{"bad-hf-dtype", "o6", Options{Target: HFTarget{Dtype: ptr(graph.Q4_0)}}, "--dtype Q4_0: want F16, BF16 or F32"},
		{"bad-rounding", "o7", Options{Target: MLXTarget{Bits: 4, Rounding: quantize.Rounding(7)}}, "unknown rounding 7"},
		{"group-without-bits", "o8", Options{Target: MLXTarget{GroupSize: 32}}, "--group-size 32 needs --bits"},
		{"rounding-without-bits", "o9", Options{Target: MLXTarget{Rounding: quantize.RoundGPU}}, "--mlx-rounding needs --bits"},
		{"mlx-to-gguf-path", "o10.gguf", Options{Target: MLXTarget{Bits: 4}}, "MLX output " + filepath.Join(dir, "o10.gguf") + " ends in .gguf"},
		{"hf-to-gguf-path", "o11.gguf", Options{Target: HFTarget{}}, "HF output " + filepath.Join(dir, "o11.gguf") + " ends in .gguf"},
		{"plan-without-type", "o12.gguf", Options{Target: GGUFTarget{Plan: PlanOptions{Pure: true}}}, "--pure needs --type"},
		{"unknown-file-type", "o13.gguf", Options{Target: GGUFTarget{FileType: FileType{Name: "Q4_0", LlamaFType: 7, Default: graph.Q4_0}}}, "is not one of ParseFileType's"},
		{"plan-with-float-type", "o14.gguf", Options{Target: GGUFTarget{FileType: mustFT(t, "F16"), Plan: PlanOptions{OutputTensorType: ptr(graph.Q8_0)}}},
			"--output-tensor-type and --type F16 contradict each other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(context.Background(), hfDir, filepath.Join(dir, tc.out), tc.opt)
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a UsageError %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.out)); err == nil {
				t.Errorf("%s was created", tc.out)
			}
		})
	}
	// An unsupported architecture names the supported ones.
	bad := filepath.Join(dir, "gpt2")
	os.MkdirAll(bad, 0o755)
	cfg, _ := os.ReadFile(filepath.Join(hfDir, "config.json"))
	os.WriteFile(filepath.Join(bad, "config.json"), bytes.ReplaceAll(cfg, []byte("LlamaForCausalLM"), []byte("GPT2LMHeadModel")), 0o644)
	st, _ := os.ReadFile(filepath.Join(hfDir, "model.safetensors"))
	os.WriteFile(filepath.Join(bad, "model.safetensors"), st, 0o644)
	_, err := Convert(context.Background(), bad, filepath.Join(dir, "gpt2.gguf"), Options{})
	if err == nil || !strings.Contains(err.Error(), "llama, qwen2") {
		t.Errorf("unsupported arch: %v", err)
	}
}

// TestMLXToGGUFRepack converts an MLX 4-bit g64 model to GGUF without
// --type: the quantized tensors must become Q4_1 holding exactly MLX's
// codes, scales and biases (compared as exact reals, Q/K rows permuted),
// and the rest BF16.
func TestMLXToGGUFRepack(t *testing.T) {
	dir := t.TempDir()
	mlx4 := filepath.Join(dir, "mlx4")
	convertOK(t, testref.Local(t, "kjv-llama"), mlx4, Options{Target: MLXTarget{Bits: 4, GroupSize: 64}})
	out := filepath.Join(dir, "repacked.gguf")
	s := convertOK(t, mlx4, out, Options{})
	if s.Type != "Q4_1" {
		t.Errorf("summary type %q, want Q4_1", s.Type)
	}
	src, err := openModel(mlx4)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.Get("general.file_type"); v != uint32(3) {
		t.Errorf("general.file_type %v, want 3 (Q4_1)", v)
	}
	checked := 0
	for i, ti := range f.Tensors {
		mt := src.Tensor(ti.Name)
		if mt == nil {
			t.Fatalf("%s not in the MLX model", ti.Name)
		}
		if mt.Type != graph.MLXAffine {
			if ti.Type != graph.F32 && ti.Type != graph.BF16 {
				t.Errorf("%s: %v", ti.Name, ti.Type)
			}
			continue
		}
		if ti.Type != graph.Q4_1 {
			t.Errorf("%s: %v, want Q4_1", ti.Name, ti.Type)
			continue
		}
		gb, _ := graph.ReadAll(f.TensorReader(i))
		codes, _ := graph.ReadAll(mt.Data)
		scales, _ := graph.ReadAll(mt.Affine.Scales)
		biases, _ := graph.ReadAll(mt.Affine.Biases)
		rows, cols := mt.Shape[0], mt.Shape[1]
		p := rotaryPerm(src, ti.Name, true)
		for r := int64(0); r < rows; r++ {
			sr := r // MLX row held by GGUF row r
			if p != nil {
				hd := rows / int64(p.heads)
				h, k := r/hd, r%hd
				sr = h*hd + (k%2)*(hd/2) + k/2
			}
			for c := int64(0); c < cols; c++ {
				blk := gb[(r*cols+c)/32*20:]
				j := c % 32
				q := blk[4+j%16] & 0xF
				if j >= 16 {
					q = blk[4+j%16] >> 4
				}
				d := float64(quantizeFP16(blk[0:2]))
				m := float64(quantizeFP16(blk[2:4]))
				word := binaryLE32(codes[(sr*cols/8+c/8)*4:])
				mq := (word >> (4 * uint(c%8))) & 0xF
				g := sr*(cols/64) + c/64
				ms := float64(bf16(scales[2*g:]))
				mb := float64(bf16(biases[2*g:]))
				if d*float64(q)+m != ms*float64(mq)+mb {
					t.Fatalf("%s [%d,%d]: GGUF %v*%d+%v, MLX row %d %v*%d+%v", ti.Name, r, c, d, q, m, sr, ms, mq, mb)
				}
			}
		}
		checked++
	}
	if checked != 44 {
		t.Errorf("%d repacked tensors checked, want 44", checked)
	}
}

func binaryLE32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func quantizeFP16(b []byte) float32 {
	return quantize.FP16ToFP32(uint16(b[0]) | uint16(b[1])<<8)
}
func bf16(b []byte) float32 { return quantize.BF16ToFP32(uint16(b[0]) | uint16(b[1])<<8) }
