package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/formats/gguf"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/internal/testref"
	"github.com/quantbridge/quantbridge/quantize"
)

// affineValue is code*scale+bias of element c of row r, computed exactly
// (scales and biases decoded from F16/BF16/F32, a small integer code:
// float64 holds the real result).
func affineValue(codes []byte, scales, biases []float32, a *graph.Affine, cols, r, c int64) float64 {
	words := int64(quantize.AffinePackedWords(int(cols), a.Bits))
	pos := c * int64(a.Bits)
	w := r*words + pos/32
	off := uint(pos % 32)
	v := uint64(binaryLE32(codes[4*w:]))
	if off+uint(a.Bits) > 32 {
		v |= uint64(binaryLE32(codes[4*(w+1):])) << 32
	}
	code := (v >> off) & (1<<uint(a.Bits) - 1)
	g := r*(cols/int64(a.GroupSize)) + c/int64(a.GroupSize)
	return float64(scales[g])*float64(code) + float64(biases[g])
}

func decodeAll(t *testing.T, b []byte, typ graph.Type) []float32 {
	t.Helper()
	f := make([]float32, int64(len(b))/int64(quantize.AffineScaleSize(typ)))
	if err := quantize.ToFloat32(f, b, typ); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestGGUFToMLXRepack converts llama.cpp-identical Q8_0 and Q4_0 GGUFs of
// kjv-llama to MLX at the matching bits with group size 32: every tensor
// of the GGUF type must become MLX affine whose code*scale+bias is exactly
// the GGUF block's value (Q/K rows back in HF order), with no lossy
// warning for them; converting back to GGUF without --type must give the
// same blocks byte for byte.
func TestGGUFToMLXRepack(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	for _, c := range []struct {
		ft   string
		typ  graph.Type
		bits int
	}{{"Q8_0", graph.Q8_0, 8}, {"Q4_0", graph.Q4_0, 4}} {
		t.Run(c.ft, func(t *testing.T) {
			g := filepath.Join(dir, c.ft+".gguf")
			convertOK(t, hfDir, g, Options{Target: GGUFTarget{FileType: mustFT(t, c.ft)}})
			if c.ft == "Q8_0" && fileSHA256(t, g) != refSHA256["Q8_0"] {
				t.Fatal("HF -> Q8_0 is not llama-quantize's file")
			}
			var warned []string
			mlxDir := filepath.Join(dir, c.ft+"-mlx")
			s := convertOK(t, g, mlxDir, Options{Target: MLXTarget{Bits: c.bits, GroupSize: 32}, Warn: func(s string) { warned = append(warned, s) }})
			src, err := gguf.ReadModel(g)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			mm, err := openModel(mlxDir)
			if err != nil {
				t.Fatal(err)
			}
			defer mm.Close()
			to := map[string]string{}
			for _, ts := range s.Tensors {
				to[ts.Name] = ts.To
			}
			repacked, other := 0, 0
			for _, gt := range src.Tensors {
				if gt.Type != c.typ {
					if gt.Type.IsQuantized() {
						other++
					}
					continue
				}
				if to[gt.Name] != affineName(c.bits, 32) {
					t.Errorf("%s: summary says %q", gt.Name, to[gt.Name])
				}
				mt := mm.Tensor(gt.Name)
				if mt == nil || mt.Type != graph.MLXAffine || mt.Affine.Bits != c.bits || mt.Affine.GroupSize != 32 || mt.Affine.ScaleType != graph.F16 {
					t.Fatalf("%s: MLX tensor %+v", gt.Name, mt)
				}
				gb, _ := graph.ReadAll(gt.Data)
				vals := make([]float32, gt.Elements())
				if err := quantize.ToFloat32(vals, gb, gt.Type); err != nil {
					t.Fatal(err)
				}
				codes, _ := graph.ReadAll(mt.Data)
				sb, _ := graph.ReadAll(mt.Affine.Scales)
				bb, _ := graph.ReadAll(mt.Affine.Biases)
				scales, biases := decodeAll(t, sb, mt.Affine.ScaleType), decodeAll(t, bb, mt.Affine.ScaleType)
				rows, cols := gt.Shape[0], gt.Shape[1]
				p := rotaryPerm(src, gt.Name, true)
				for r := int64(0); r < rows; r++ {
					sr := r // MLX (HF) row held by GGUF row r
					if p != nil {
						hd := rows / int64(p.heads)
						h, k := r/hd, r%hd
						sr = h*hd + (k%2)*(hd/2) + k/2
					}
					for col := int64(0); col < cols; col++ {
						if got, want := affineValue(codes, scales, biases, mt.Affine, cols, sr, col), float64(vals[r*cols+col]); got != want {
							t.Fatalf("%s [%d,%d]: MLX row %d gives %v, GGUF %v", gt.Name, r, col, sr, got, want)
						}
					}
				}
				repacked++
			}
			t.Logf("%d tensors repacked exactly, %d other quantized tensors, warnings %q", repacked, other, warned)
			if repacked < 40 {
				t.Errorf("%d tensors repacked", repacked)
			}
			if other == 0 && len(warned) > 0 {
				t.Errorf("lossless repack warned: %q", warned)
			}
			if other > 0 && (len(warned) == 0 || !strings.Contains(strings.Join(warned, "\n"), "requantizing")) {
				t.Errorf("%d other quantized tensors requantized without a warning (%q)", other, warned)
			}
			// Back to GGUF: the same blocks.
			back := filepath.Join(dir, c.ft+"-back.gguf")
			convertOK(t, mlxDir, back, Options{})
			want, got := ggufTensors(t, g), ggufTensors(t, back)
			same := 0
			for _, gt := range src.Tensors {
				if gt.Type != c.typ {
					continue
				}
				if got[gt.Name] != want[gt.Name] {
					t.Errorf("%s: GGUF -> MLX -> GGUF %s, was %s", gt.Name, got[gt.Name], want[gt.Name])
				}
				same++
			}
			if same != repacked {
				t.Errorf("%d of %d compared", same, repacked)
			}
		})
	}
}

// TestDirProgressSummary: directory outputs report progress to the end and
// time every tensor, as GGUF output does.
func TestDirProgressSummary(t *testing.T) {
	dir := t.TempDir()
	hfDir := testref.Local(t, "kjv-llama")
	bf16 := filepath.Join(dir, "kjv.bf16.gguf")
	convertOK(t, hfDir, bf16, Options{})
	for _, c := range []struct {
		name, in string
		opt      Options
	}{
		{"mlx-int4", hfDir, Options{Target: MLXTarget{Bits: 4}}},
		{"mlx-f16", bf16, Options{Target: MLXTarget{Dtype: ptr(graph.F16)}}},
		{"hf", bf16, Options{Target: HFTarget{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var last Progress
			calls := 0
			c.opt.Progress = func(p Progress) { last = p; calls++ }
			s := convertOK(t, c.in, filepath.Join(dir, c.name), c.opt)
			if last.TensorsDone != last.Tensors || last.BytesDone != last.Bytes || last.Tensors != len(s.Tensors) || calls < len(s.Tensors) {
				t.Errorf("last progress %+v after %d calls, %d tensors", last, calls, len(s.Tensors))
			}
			var bytes int64
			for _, ts := range s.Tensors {
				if !(ts.Seconds > 0) || ts.Bytes <= 0 || ts.From == "" || ts.To == "" {
					t.Errorf("tensor summary %+v", ts)
				}
				bytes += ts.Bytes
			}
			if bytes != s.TotalBytes || bytes != last.Bytes || !(s.BitsPerWeight > 0) {
				t.Errorf("summary bytes %d, total %d, progress %d, bpw %v", bytes, s.TotalBytes, last.Bytes, s.BitsPerWeight)
			}
		})
	}
}

// TestDirInterrupted cancels directory conversions part way: the final
// path must not exist and no temporary directory may be left behind.
func TestDirInterrupted(t *testing.T) {
	hfDir := testref.Local(t, "kjv-llama")
	src := t.TempDir()
	bf16 := filepath.Join(src, "kjv.bf16.gguf")
	convertOK(t, hfDir, bf16, Options{})
	for _, c := range []struct {
		name, in string
		opt      Options
	}{
		{"mlx", hfDir, Options{Target: MLXTarget{Bits: 4}, SlabBytes: 1 << 10}},
		{"hf", bf16, Options{Target: HFTarget{}, SlabBytes: 1 << 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.opt.Jobs = 2
			c.opt.Progress = func(p Progress) {
				if p.TensorsDone >= 3 {
					cancel()
				}
			}
			_, err := Convert(ctx, c.in, out, c.opt)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("left behind: %q", names)
			}
		})
	}
}

func TestDirForce(t *testing.T) {
	hfDir := testref.Local(t, "kjv-llama")
	dir := t.TempDir()
	// A non-empty directory that is not a checkpoint is never replaced.
	notCkpt := filepath.Join(dir, "notes")
	os.MkdirAll(notCkpt, 0o755)
	os.WriteFile(filepath.Join(notCkpt, "a.txt"), []byte("keep"), 0o644)
	if _, err := Convert(context.Background(), hfDir, notCkpt, Options{Force: true}); err == nil || !strings.Contains(err.Error(), "not a checkpoint") {
		t.Errorf("replacing a non-checkpoint directory: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(notCkpt, "a.txt")); string(b) != "keep" {
		t.Error("non-checkpoint directory touched")
	}
	// An existing checkpoint is replaced whole with --force (a stale file
	// goes), refused without it.
	out := filepath.Join(dir, "mlx")
	convertOK(t, hfDir, out, Options{Target: MLXTarget{Bits: 8}})
	os.WriteFile(filepath.Join(out, "model-00009-of-00009.safetensors"), []byte("stale"), 0o644)
	if _, err := Convert(context.Background(), hfDir, out, Options{Target: MLXTarget{Bits: 4}}); !errors.Is(err, ErrExists) {
		t.Errorf("without --force: %v", err)
	}
	convertOK(t, hfDir, out, Options{Target: MLXTarget{Bits: 4}, Force: true})
	if _, err := os.Stat(filepath.Join(out, "model-00009-of-00009.safetensors")); err == nil {
		t.Error("stale shard kept")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d entries in the parent, want 2 (no temporary directories)", len(ents))
	}
	// The output may not contain the input.
	in := filepath.Join(out, "x.gguf")
	convertOK(t, hfDir, in, Options{})
	if _, err := Convert(context.Background(), in, out, Options{Force: true}); err == nil || !strings.Contains(err.Error(), "inside the output") {
		t.Errorf("input inside output: %v", err)
	}
}

// TestRemoveStaleTemps: what a SIGKILLed conversion leaves beside its
// output is removed by the next conversion to that output, and nothing
// else is.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".out.tmp-123", ".out.tmp456", ".out.tmp-77.old"}
	keep := []string{"out", ".out.tmp-12a", ".out.tmp.tmp-1x", ".out2.tmp-1", ".out.tmp", "x.out.tmp-1"}
	for _, n := range append(append([]string{}, stale...), keep...) {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleTemps(filepath.Join(dir, "out"))
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s kept", n)
		}
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed", n)
		}
	}
}
