package convert

import (
	"fmt"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/quantize"
)

// Target is what a conversion writes: a GGUFTarget, an MLXTarget or an
// HFTarget. ParseTarget builds one from command-line settings; Convert
// checks one built by hand the same way.
type Target interface{ isTarget() }

// GGUFTarget writes a GGUF file.
type GGUFTarget struct {
	// FileType is the llama.cpp file type (llama-quantize's mixture, or
	// convert_hf_to_gguf.py's --outtype for F32, F16 and BF16). The zero
	// FileType, which names no file type, means none was given: an HF or
	// MLX input is then written in convert_hf_to_gguf.py's "auto" type (BF16
	// when the first matrix is BF16, else F16) with MLX affine tensors
	// repacked exactly to Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 where their values allow;
	// a GGUF input needs a file type.
	FileType FileType
	// Plan are llama-quantize's mixture options. They need a FileType, and
	// with an HF or MLX input a quantized one (F32/F16/BF16 output is
	// convert_hf_to_gguf.py's, which has no mixture).
	Plan PlanOptions
	// AllowRequantize permits converting already-quantized GGUF tensors to
	// another type (llama-quantize --allow-requantize).
	AllowRequantize bool
	// Imatrix is the path of an importance matrix (llama-imatrix's output)
	// weighting the quantization (llama-quantize --imatrix); "" for none.
	// The path is recorded as given in quantize.imatrix.file. It needs a
	// quantized FileType.
	Imatrix string
	// ImatrixInclude keeps only, and ImatrixExclude drops, the importance
	// matrix entries whose tensor names contain one of these strings
	// (llama-quantize --include-weights, --exclude-weights; one of the two
	// at most).
	ImatrixInclude, ImatrixExclude []string
}

// MLXTarget writes an mlx-lm checkpoint directory.
type MLXTarget struct {
	// Bits is the affine quantization's bit width (2, 3, 4, 5, 6 or 8), 0
	// for none asked. With Bits 0 and no Dtype the input's quantization is
	// kept where MLX can hold it exactly: an MLX input's tensors are copied,
	// and a GGUF input whose quantized tensors are all of one legacy type
	// (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0) is repacked exactly to affine
	// quantization with those bits and group size 32 (Options.Note says
	// so); otherwise tensors are written unquantized. A GGUF input's
	// MXFP4 tensors are kept as mxfp4 modules in either case.
	Bits int
	// GroupSize is the affine group size (32, 64 or 128; 0 means 64). It
	// needs Bits.
	GroupSize int
	// Dtype is the float type (F16, BF16 or F32) of unquantized tensors and
	// of affine scales and biases; nil keeps each tensor's own float type
	// (F16 for GGUF block types). Setting it without Bits asks for an
	// unquantized output.
	Dtype *graph.Type
	// Rounding is the MLX kernel whose rounding affine quantization
	// reproduces. RoundGPU needs Bits.
	Rounding quantize.Rounding
	// Mode is the MLX quantization mode: "" or "affine" (Bits, GroupSize)
	// or "mxfp4" (mlx_lm.convert --q-mode mxfp4: group size 32, E8M0
	// scales, no biases, MLX's CPU quantizer; Bits must be 0 or 4,
	// GroupSize 0 or 32, Rounding cpu). Modules the architecture's
	// quant_predicate gives other parameters (a MoE router's 8-bit group
	// 64) are quantized affine with them, as mlx-lm does.
	Mode string
}

// mxfp4 reports whether t asks for MLX mxfp4 quantization.
func (t MLXTarget) mxfp4() bool { return strings.EqualFold(t.Mode, "mxfp4") }

// HFTarget writes a Hugging Face safetensors checkpoint directory
// (unquantized).
type HFTarget struct {
	// Dtype is the float type (F16, BF16 or F32) of every tensor; nil keeps
	// each tensor's own float type (the scale type of an MLX affine tensor,
	// F16 for GGUF block types).
	Dtype *graph.Type
}

func (GGUFTarget) isTarget() {}
func (MLXTarget) isTarget()  {}
func (HFTarget) isTarget()   {}

// A UsageError reports conversion settings that cannot be right for any
// input contents: a setting that does not apply to the output (or to the
// input's format), settings that contradict each other, a value out of
// range. It names the command-line flags involved. quantbridge exits 2 for
// it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// TargetFlags are the output settings as quantbridge convert's flags give
// them; a zero field is a flag not given.
type TargetFlags struct {
	Type      string // --type: a GGUF file type, or INT2..INT8, F16, BF16, F32 for a directory
	To        string // --to: mlx or hf
	Bits      int    // --bits
	GroupSize int    // --group-size
	Dtype     string // --dtype: f16, bf16 or f32
	Rounding  string // --mlx-rounding: cpu or gpu
	QMode     string // --q-mode: affine or mxfp4

	Plan            PlanOptions // --leave-output-tensor, --output-tensor-type, --token-embedding-type, --pure, --tensor-type
	AllowRequantize bool        // --allow-requantize

	Imatrix        string   // --imatrix
	ImatrixInclude []string // --include-weights
	ImatrixExclude []string // --exclude-weights
}

// IsGGUFPath reports whether out names a GGUF file output (it ends in
// ".gguf", in any case); any other output is a checkpoint directory.
func IsGGUFPath(out string) bool { return strings.HasSuffix(strings.ToLower(out), ".gguf") }

// ParseTarget interprets the output settings f for the output path out:
// an out ending in ".gguf" is a GGUF file, any other out a checkpoint
// directory, MLX unless f.To is "hf". A setting that does not apply to
// that output, two settings that contradict each other and values out of
// range are *UsageError naming the flags.
func ParseTarget(out string, f TargetFlags) (Target, error) {
	if IsGGUFPath(out) {
		return parseGGUFTarget(out, f)
	}
	return parseDirTarget(out, f)
}

// mlxOnly lists the MLX-only flags set in f.
func (f TargetFlags) mlxOnly() []string {
	var s []string
	if f.Bits != 0 {
		s = append(s, fmt.Sprintf("--bits %d", f.Bits))
	}
	if f.GroupSize != 0 {
		s = append(s, fmt.Sprintf("--group-size %d", f.GroupSize))
	}
	if f.Rounding != "" {
		s = append(s, "--mlx-rounding "+f.Rounding)
	}
	if f.QMode != "" {
		s = append(s, "--q-mode "+f.QMode)
	}
	return s
}

// imatrixFlags lists the importance-matrix flags set in f.
func (f TargetFlags) imatrixFlags() []string {
	return GGUFTarget{Imatrix: f.Imatrix, ImatrixInclude: f.ImatrixInclude, ImatrixExclude: f.ImatrixExclude}.imatrixFlags()
}

// imatrixFlags lists the importance-matrix flags of the settings of t.
func (t GGUFTarget) imatrixFlags() []string {
	var s []string
	if t.Imatrix != "" {
		s = append(s, "--imatrix "+t.Imatrix)
	}
	if len(t.ImatrixInclude) > 0 {
		s = append(s, "--include-weights")
	}
	if len(t.ImatrixExclude) > 0 {
		s = append(s, "--exclude-weights")
	}
	return s
}

// flags lists the flags of the options set in p.
func (p PlanOptions) flags() []string {
	var s []string
	if p.LeaveOutputTensor {
		s = append(s, "--leave-output-tensor")
	}
	if p.OutputTensorType != nil {
		s = append(s, "--output-tensor-type")
	}
	if p.TokenEmbeddingType != nil {
		s = append(s, "--token-embedding-type")
	}
	if p.Pure {
		s = append(s, "--pure")
	}
	if len(p.TensorTypes) > 0 {
		s = append(s, "--tensor-type")
	}
	return s
}

func parseGGUFTarget(out string, f TargetFlags) (Target, error) {
	if f.To != "" {
		return nil, usagef("--to %s does not apply to %s: an output ending in .gguf is a GGUF file (--to picks a directory output's format)", f.To, out)
	}
	if s := f.mlxOnly(); len(s) > 0 {
		return nil, usagef("%s does not apply to %s: it is MLX affine quantization, and an output ending in .gguf is a GGUF file (use --type, e.g. Q4_0 or Q4_K_M)", s[0], out)
	}
	if f.Dtype != "" {
		return nil, usagef("--dtype %s does not apply to %s: the GGUF file type is --type (e.g. --type %s)", f.Dtype, out, strings.ToUpper(f.Dtype))
	}
	t := GGUFTarget{Plan: f.Plan, AllowRequantize: f.AllowRequantize,
		Imatrix: f.Imatrix, ImatrixInclude: f.ImatrixInclude, ImatrixExclude: f.ImatrixExclude}
	if f.Type != "" {
		if _, ok := mlxBitsOf(f.Type); ok {
			return nil, usagef("--type %s is MLX affine quantization; %s is a GGUF file (GGUF types: Q4_0, Q4_K_M, Q8_0, ...)", f.Type, out)
		}
		ft, err := ParseFileType(f.Type)
		if err != nil {
			return nil, usagef("--type: %v", err)
		}
		t.FileType = ft
	}
	if err := t.check(out); err != nil {
		return nil, err
	}
	return t, nil
}

// mlxBitsOf parses an MLX --type INTn; ok reports the INT prefix (bits is
// 0 for an unsupported width).
func mlxBitsOf(s string) (bits int, ok bool) {
	b, ok := strings.CutPrefix(strings.ToUpper(strings.TrimSpace(s)), "INT")
	if !ok {
		return 0, false
	}
	switch b {
	case "2", "3", "4", "5", "6", "8":
		return int(b[0] - '0'), true
	}
	return 0, true
}

// parseDtype parses a float dtype name (f16, bf16, f32).
func parseDtype(s string) (graph.Type, bool) {
	t, ok := graph.ParseType(strings.TrimSpace(s))
	return t, ok && plainFloat(t)
}

func parseDirTarget(out string, f TargetFlags) (Target, error) {
	if s := f.Plan.flags(); len(s) > 0 {
		return nil, usagef("%s does not apply to %s: it is a llama-quantize mixture option, for GGUF output (an output ending in .gguf)", s[0], out)
	}
	if f.AllowRequantize {
		return nil, usagef("--allow-requantize does not apply to %s: it is for GGUF output (directory outputs requantize with a warning)", out)
	}
	if s := f.imatrixFlags(); len(s) > 0 {
		return nil, usagef("%s does not apply to %s: an importance matrix weights llama-quantize's quantization, for GGUF output (an output ending in .gguf) with --type", s[0], out)
	}
	var dtype *graph.Type
	if f.Dtype != "" {
		t, ok := parseDtype(f.Dtype)
		if !ok {
			return nil, usagef("--dtype %s: want f16, bf16 or f32", f.Dtype)
		}
		dtype = &t
	}
	// --type is INTn (the same as --bits) or a float type (an unquantized
	// output of that dtype).
	var typeBits int
	var typeDtype *graph.Type
	if f.Type != "" {
		if b, ok := mlxBitsOf(f.Type); ok {
			if b == 0 {
				return nil, usagef("--type %s: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits", f.Type)
			}
			typeBits = b
		} else if t, ok := parseDtype(f.Type); ok {
			typeDtype = &t
		} else {
			return nil, usagef("--type %s: for MLX/HF output use INT2..INT8, F16, BF16 or F32 (GGUF file types need an output ending in .gguf)", f.Type)
		}
	}
	switch {
	case typeBits != 0 && f.Bits != 0 && typeBits != f.Bits:
		return nil, usagef("--type %s and --bits %d contradict each other", f.Type, f.Bits)
	case typeDtype != nil && f.Bits != 0:
		return nil, usagef("--type %s and --bits %d contradict each other: --type %s asks for an unquantized output (--bits %d --dtype %s quantizes with %s scales)",
			f.Type, f.Bits, f.Type, f.Bits, strings.ToLower(f.Type), *typeDtype)
	case typeDtype != nil && dtype != nil && *typeDtype != *dtype:
		return nil, usagef("--type %s and --dtype %s contradict each other", f.Type, f.Dtype)
	}
	if typeDtype != nil {
		dtype = typeDtype
	}
	bits := f.Bits
	if typeBits != 0 {
		bits = typeBits
	}

	switch strings.ToLower(strings.TrimSpace(f.To)) {
	case "hf":
		switch {
		case typeBits != 0:
			return nil, usagef("--type %s and --to hf contradict each other: an HF checkpoint holds no quantized tensors (use --to mlx)", f.Type)
		case len(f.mlxOnly()) > 0:
			return nil, usagef("%s and --to hf contradict each other: an HF checkpoint holds no quantized tensors (use --to mlx)", f.mlxOnly()[0])
		}
		return HFTarget{Dtype: dtype}, nil
	case "", "mlx":
	default:
		return nil, usagef("--to %s: want mlx or hf", f.To)
	}
	t := MLXTarget{Bits: bits, GroupSize: f.GroupSize, Dtype: dtype}
	switch m := strings.ToLower(strings.TrimSpace(f.QMode)); m {
	case "", "affine":
	case "mxfp4":
		t.Mode = m
		if bits == 4 {
			t.Bits = 0 // implied by the mode
		}
	default:
		return nil, usagef("--q-mode %s: want affine or mxfp4 (nvfp4 and mxfp8 are not supported)", f.QMode)
	}
	if f.Rounding != "" {
		r, err := parseRounding(f.Rounding)
		if err != nil {
			return nil, usagef("--mlx-rounding %s: want cpu or gpu", f.Rounding)
		}
		t.Rounding = r
	}
	if bits == 0 && !t.mxfp4() {
		// Rounding's zero value is cpu: name the flag, not the value.
		for _, s := range f.mlxOnly() {
			if strings.HasPrefix(s, "--q-mode") {
				continue // --q-mode affine alone: the default
			}
			return nil, usagef("%s needs --bits or --type INT2..INT8: it applies to quantized MLX output", s)
		}
	}
	if err := t.check(out); err != nil {
		return nil, err
	}
	return t, nil
}

// check validates t for the output out (see GGUFTarget).
func (t GGUFTarget) check(out string) error {
	switch {
	case len(t.ImatrixInclude) > 0 && len(t.ImatrixExclude) > 0:
		return usagef("--include-weights and --exclude-weights contradict each other (llama-quantize takes one or the other)")
	case t.Imatrix == "" && len(t.imatrixFlags()) > 0:
		return usagef("%s needs --imatrix: it selects entries of the importance matrix", t.imatrixFlags()[0])
	}
	if t.FileType.Name == "" {
		if s := t.Plan.flags(); len(s) > 0 {
			return usagef("%s needs --type: it is an option of llama-quantize's mixture for a file type", s[0])
		}
		if s := t.imatrixFlags(); len(s) > 0 {
			return usagef("%s needs --type: an importance matrix weights llama-quantize's quantization to a file type", s[0])
		}
		if t.FileType != (FileType{}) {
			return usagef("GGUF file type %+v has no name", t.FileType)
		}
		return nil
	}
	for _, ft := range fileTypes {
		if ft == t.FileType {
			return nil
		}
	}
	return usagef("--type: GGUF file type %+v is not one of ParseFileType's", t.FileType)
}

func checkDtype(dt *graph.Type) error {
	if dt != nil && !plainFloat(*dt) {
		return usagef("--dtype %v: want F16, BF16 or F32", *dt)
	}
	return nil
}

// dirOutput refuses a directory target whose output ends in .gguf.
func dirOutput(kind, out string) error {
	if IsGGUFPath(out) {
		return usagef("%s output %s ends in .gguf: an output ending in .gguf is a GGUF file", kind, out)
	}
	return nil
}

// groupSize is t's group size (0 means 64).
func (t MLXTarget) groupSize() int {
	if t.GroupSize == 0 {
		return 64
	}
	return t.GroupSize
}

// check validates t for the output out (see MLXTarget).
func (t MLXTarget) check(out string) error {
	if err := dirOutput("MLX", out); err != nil {
		return err
	}
	if err := checkDtype(t.Dtype); err != nil {
		return err
	}
	if t.mxfp4() {
		switch {
		case t.Bits != 0 && t.Bits != 4:
			return usagef("--bits %d and --q-mode mxfp4 contradict each other: mxfp4 has 4 bits", t.Bits)
		case t.GroupSize != 0 && t.GroupSize != 32:
			return usagef("--group-size %d and --q-mode mxfp4 contradict each other: mxfp4 groups are 32", t.GroupSize)
		case t.Rounding != quantize.RoundCPU:
			return usagef("--mlx-rounding gpu and --q-mode mxfp4: only MLX's CPU mxfp4 quantizer is reproduced")
		}
		return nil
	}
	if t.Mode != "" && !strings.EqualFold(t.Mode, "affine") {
		return usagef("MLX quantization mode %q: want affine or mxfp4", t.Mode)
	}
	if t.Bits == 0 {
		switch {
		case t.GroupSize != 0:
			return usagef("--group-size %d needs --bits or --type INT2..INT8: it applies to quantized MLX output", t.GroupSize)
		case t.Rounding != quantize.RoundCPU:
			return usagef("--mlx-rounding needs --bits or --type INT2..INT8: it applies to quantized MLX output")
		}
		return nil
	}
	switch t.Bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return usagef("--bits %d: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits", t.Bits)
	}
	switch t.groupSize() {
	case 32, 64, 128:
	default:
		return usagef("--group-size %d: MLX affine group sizes are 32, 64 and 128", t.GroupSize)
	}
	if t.Rounding != quantize.RoundCPU && t.Rounding != quantize.RoundGPU {
		return usagef("--mlx-rounding: unknown rounding %d", int(t.Rounding))
	}
	return nil
}

// check validates t for the output out.
func (t HFTarget) check(out string) error {
	if err := dirOutput("HF", out); err != nil {
		return err
	}
	return checkDtype(t.Dtype)
}

// target returns opt.Target checked for out; with none, the default for
// out (GGUFTarget for a .gguf out, else MLXTarget).
func (o *Options) target(out string) (Target, error) {
	t := o.Target
	if t == nil {
		if IsGGUFPath(out) {
			return GGUFTarget{}, nil
		}
		return MLXTarget{}, nil
	}
	var err error
	switch t := t.(type) {
	case GGUFTarget:
		err = t.check(out)
	case MLXTarget:
		err = t.check(out)
	case HFTarget:
		err = t.check(out)
	default:
		err = usagef("unknown conversion target %T", t)
	}
	return t, err
}
