package convert

import (
	"context"
	"fmt"

	"github.com/quantbridge/quantbridge/internal/osfile"
)

// Convert converts the checkpoint at in to out as opt.Target says: a GGUF
// file, or an MLX or HF checkpoint directory. A GGUF input converted to
// GGUF is quantized as llama-quantize does (ConvertGGUF). Settings that
// cannot apply are a *UsageError, returned before anything is read.
func Convert(ctx context.Context, in, out string, opt Options) (*Summary, error) {
	target, err := opt.target(out)
	if err != nil {
		return nil, err
	}
	opt.Target = target
	st, err := osfile.Stat(in) // a named pipe would block isGGUF's read
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	ggufIn := !st.IsDir() && isGGUF(in)
	if ggufIn {
		if err := checkGGUFInput(in, &opt); err != nil {
			return nil, err
		}
	}
	gt, toGGUF := target.(GGUFTarget)
	if opt.DryRun && (!toGGUF || gt.FileType.Name == "" || (!ggufIn && !gt.FileType.Default.IsQuantized())) {
		return nil, usagef("--dry-run plans llama-quantize's mixture: it needs a GGUF output (ending in .gguf) and --type, a quantized one for an HF or MLX input")
	}
	if ggufIn && toGGUF {
		return ConvertGGUF(ctx, in, out, opt)
	}
	if toGGUF && gt.FileType.Name != "" && !gt.FileType.Default.IsQuantized() {
		// convertToGGUF writes convert_hf_to_gguf.py's file for a float
		// type: there is no mixture for these options to change.
		if s := append(gt.Plan.flags(), gt.imatrixFlags()...); len(s) > 0 {
			return nil, usagef("%s and --type %s contradict each other for an HF or MLX input: %s is written as convert_hf_to_gguf.py writes it, with no llama-quantize mixture (write the GGUF file first, then convert that with these options)",
				s[0], gt.FileType.Name, gt.FileType.Name)
		}
	}
	if err := checkPaths(in, out, opt.Force); err != nil {
		return nil, err
	}
	m, err := openModel(in, opt.TokenizerPre)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := validate(m, &opt); err != nil {
		return nil, err
	}
	if toGGUF {
		return convertToGGUF(ctx, m, in, out, opt)
	}
	return convertToDir(ctx, m, in, out, opt)
}

// checkGGUFInput refuses the options that do not apply to the GGUF input in.
func checkGGUFInput(in string, opt *Options) error {
	if opt.TokenizerPre != "" {
		return usagef("--tokenizer-pre %s does not apply to %s: it names the pre-tokenizer of an HF or MLX input, and a GGUF file has its own (tokenizer.ggml.pre)", opt.TokenizerPre, in)
	}
	return nil
}
