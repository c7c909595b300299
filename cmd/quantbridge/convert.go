package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/graph"
)

func init() {
	register(&cli.Command{
		Name:      "convert",
		Usage:     "convert or quantize a checkpoint (GGUF, HF safetensors, MLX)",
		ArgsUsage: "IN OUT",
		Description: "OUT ending in .gguf is a GGUF file; any other OUT is a checkpoint directory (MLX unless --to hf).\n" +
			"A flag that does not apply to the output (see docs/cli.md) or contradicts another is a usage error.\n" +
			"GGUF → GGUF does what llama-quantize does, byte for byte: --type picks the llama.cpp file type.\n" +
			"HF/MLX → GGUF without --type writes convert_hf_to_gguf.py's auto type (BF16 if the model's first matrix is BF16, else F16);\n" +
			"MLX 4/5/8-bit affine tensors are repacked exactly to Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 where their values allow.\n" +
			"GGUF → MLX without --bits or --dtype repacks a file whose quantized tensors are all Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0\n" +
			"exactly (MLX affine, those bits, group size 32); other GGUF files are written unquantized. Stderr says which.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Usage: "GGUF output: llama.cpp file type F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_NL IQ4_XS TQ1_0 TQ2_0 MXFP4_MOE; MLX output: INT2..INT8 (as --bits) or F16, BF16, F32 (unquantized); HF output: F16, BF16, F32"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: runtime.NumCPU(), Usage: "concurrent workers"},
			&cli.StringFlag{Name: "max-memory", Usage: "bound on tensor buffers in flight, e.g. 2G (default: jobs × largest piece of work)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing output"},
			&cli.BoolFlag{Name: "allow-requantize", Usage: "GGUF output: allow converting already-quantized tensors (dequantize, then quantize: lossy)"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "leave-output-tensor", Usage: "GGUF output with --type: keep output.weight unquantized"},
			&cli.StringFlag{Name: "output-tensor-type", Usage: "GGUF output with --type: type for output.weight"},
			&cli.StringFlag{Name: "token-embedding-type", Usage: "GGUF output with --type: type for token_embd.weight"},
			&cli.BoolFlag{Name: "pure", Usage: "GGUF output with --type: no k-quant mixture, every quantizable tensor gets the default type"},
			&cli.StringSliceFlag{Name: "tensor-type", Usage: "GGUF output with --type: PATTERN=TYPE forces the type of tensors whose name matches the regular expression (repeatable)"},
			&cli.StringFlag{Name: "imatrix", Usage: "GGUF output with --type: importance matrix (llama-imatrix's file) weighting the quantization, as llama-quantize --imatrix; needed by IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ3_XXS, Q2_K_S"},
			&cli.StringSliceFlag{Name: "include-weights", Usage: "GGUF output with --imatrix: use only the importance matrix entries whose names contain this string (repeatable)"},
			&cli.StringSliceFlag{Name: "exclude-weights", Usage: "GGUF output with --imatrix: ignore the importance matrix entries whose names contain this string (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "GGUF output with --type: print each tensor's planned type, size and the reason, as llama-quantize --dry-run; write nothing"},
			&cli.StringFlag{Name: "tokenizer-pre", Usage: "HF/MLX input: BPE pre-tokenizer name (tokenizer.ggml.pre: llama-bpe, qwen2, gpt-2, ...) for a tokenizer whose split regexes are not recognised"},
			&cli.StringFlag{Name: "to", Usage: "directory output format: mlx (default) or hf"},
			&cli.IntFlag{Name: "bits", Usage: "MLX output: affine quantization bits (2, 3, 4, 5, 6, 8)", DefaultText: "none; see the description"},
			&cli.IntFlag{Name: "group-size", Usage: "MLX output with --bits: affine group size (32, 64, 128)", DefaultText: "64"},
			&cli.StringFlag{Name: "dtype", Usage: "MLX/HF output: float dtype for unquantized tensors and MLX scales: f16, bf16, f32 (default: each tensor's own)"},
			&cli.StringFlag{Name: "mlx-rounding", Usage: "MLX output with --bits: affine rounding to match: cpu (rint, default) or gpu (Metal round)"},
			&cli.StringFlag{Name: "q-mode", Usage: "MLX output: quantization mode, as mlx_lm.convert --q-mode: affine (with --bits) or mxfp4 (group 32, E8M0 scales; MLX's CPU quantizer)", DefaultText: "affine"},
		},
		Action: runConvert,
	})
}

func runConvert(c *cli.Context) error {
	if c.NArg() != 2 {
		return &exitError{2, errors.New("convert: want IN and OUT")}
	}
	in, out := c.Args().Get(0), c.Args().Get(1)
	tf := convert.TargetFlags{
		Type:      c.String("type"),
		To:        c.String("to"),
		Bits:      c.Int("bits"),
		GroupSize: c.Int("group-size"),
		Dtype:     c.String("dtype"),
		Rounding:  c.String("mlx-rounding"),
		QMode:     c.String("q-mode"),
		Plan: convert.PlanOptions{
			LeaveOutputTensor: c.Bool("leave-output-tensor"),
			Pure:              c.Bool("pure"),
		},
		AllowRequantize: c.Bool("allow-requantize"),
		Imatrix:         c.String("imatrix"),
		ImatrixInclude:  c.StringSlice("include-weights"),
		ImatrixExclude:  c.StringSlice("exclude-weights"),
	}
	for _, f := range []struct {
		flag string
		dst  **graph.Type
	}{{"output-tensor-type", &tf.Plan.OutputTensorType}, {"token-embedding-type", &tf.Plan.TokenEmbeddingType}} {
		if s := c.String(f.flag); s != "" {
			t, err := convert.ParseTensorType(s)
			if err != nil {
				return &exitError{2, fmt.Errorf("--%s: %w", f.flag, err)}
			}
			*f.dst = &t
		}
	}
	for _, s := range c.StringSlice("tensor-type") {
		pat, typ, ok := strings.Cut(s, "=")
		if !ok || pat == "" {
			return &exitError{2, fmt.Errorf("--tensor-type %q: want PATTERN=TYPE", s)}
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return &exitError{2, fmt.Errorf("--tensor-type %q: %w", s, err)}
		}
		t, err := convert.ParseTensorType(typ)
		if err != nil {
			return &exitError{2, fmt.Errorf("--tensor-type %q: %w", s, err)}
		}
		tf.Plan.TensorTypes = append(tf.Plan.TensorTypes, convert.TensorTypeRule{Pattern: re, Type: t})
	}
	target, err := convert.ParseTarget(out, tf)
	if err != nil {
		return &exitError{2, err}
	}
	opt := convert.Options{
		Target:       target,
		Jobs:         c.Int("jobs"),
		Force:        c.Bool("force"),
		TokenizerPre: c.String("tokenizer-pre"),
		DryRun:       c.Bool("dry-run"),
		Warn:         func(s string) { fmt.Fprintln(c.App.ErrWriter, "quantbridge: warning:", s) },
		Note:         func(s string) { fmt.Fprintln(c.App.ErrWriter, "quantbridge:", s) },
	}
	if s := c.String("max-memory"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return &exitError{2, fmt.Errorf("--max-memory: %w", err)}
		}
		opt.MaxMemory = n
	}

	if term.IsTerminal(int(os.Stderr.Fd())) {
		var bar *progressbar.ProgressBar
		opt.Progress = func(p convert.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions64(p.Bytes,
					progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionShowBytes(true),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionSetElapsedTime(true),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionFullWidth())
			}
			bar.Describe(fmt.Sprintf("[%d/%d tensors]", p.TensorsDone, p.Tensors))
			bar.Set64(p.BytesDone)
		}
		defer func() {
			if bar != nil {
				bar.Finish()
			}
		}()
	}

	ctx, signaled, stop := signalContext(c.Context)
	defer stop()
	s, err := convert.Convert(ctx, in, out, opt)
	if err != nil {
		if sig := signaled(); sig != nil {
			return interrupted(sig, out+" not written")
		}
		var ue *convert.UsageError
		if errors.As(err, &ue) {
			return &exitError{2, err}
		}
		return &exitError{1, err}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, s)
	}
	if opt.DryRun {
		fmt.Fprint(c.App.Writer, convert.FormatPlan(s))
		return nil
	}
	fmt.Fprintf(c.App.ErrWriter, "quantbridge: wrote %s (%s): %d tensors, %.2f MiB, %.2f bits per weight, %.1fs\n",
		s.Output, s.Type, len(s.Tensors), float64(s.TotalBytes)/(1<<20), s.BitsPerWeight, s.Seconds)
	return nil
}

// parseSize parses a byte count with an optional K, M, G or T suffix
// (powers of 1024).
func parseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i"))
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = u[:n-1]
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}
