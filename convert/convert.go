package convert

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/quantbridge/quantbridge/graph"
)

// Convert converts the checkpoint at in to out. An out ending in ".gguf"
// is a GGUF file (opt.Type is the llama.cpp file type); any other out is a
// checkpoint directory: MLX unless opt.To is "hf".
func Convert(ctx context.Context, in, out string, opt Options) (*Summary, error) {
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	toGGUF := strings.HasSuffix(strings.ToLower(out), ".gguf")
	if !st.IsDir() && isGGUF(in) && toGGUF {
		return ConvertGGUF(ctx, in, out, opt)
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

// ParseTypeFlag interprets a --type value for the output out: a llama.cpp
// file type for GGUF output; for a directory output INT2..INT8 (MLX affine
// bits) or a float dtype (F16, BF16, F32).
func ParseTypeFlag(opt *Options, s, out string) error {
	if strings.HasSuffix(strings.ToLower(out), ".gguf") {
		ft, err := ParseFileType(s)
		if err != nil {
			return err
		}
		opt.Type = ft
		return nil
	}
	u := strings.ToUpper(s)
	if b, ok := strings.CutPrefix(u, "INT"); ok {
		switch b {
		case "2", "3", "4", "5", "6", "8":
			opt.Bits = int(b[0] - '0')
			return nil
		}
		return fmt.Errorf("--type %s: MLX affine quantization has 2, 3, 4, 5, 6 or 8 bits", s)
	}
	switch u {
	case "F16", "BF16", "F32":
		t, _ := graph.ParseType(u)
		opt.Dtype = t
		return nil
	}
	return fmt.Errorf("--type %s: for MLX/HF output use INT2..INT8, F16, BF16 or F32", s)
}
