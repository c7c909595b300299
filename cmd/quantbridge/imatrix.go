package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/internal/atomicfile"
	"github.com/quantbridge/quantbridge/perplexity"
)

func init() {
	register(&cli.Command{
		Name:      "imatrix",
		Usage:     "importance matrix of a model over a text file, computed as llama-imatrix does",
		ArgsUsage: "-f TEXT [-o OUT.imatrix.gguf] MODEL",
		Description: "MODEL is a GGUF file or an HF/MLX checkpoint directory. The text is tokenized once (BOS first) and cut\n" +
			"into --ctx token chunks (BOS overwrites each chunk's first token); every position of every chunk is evaluated,\n" +
			"and for every matrix of the transformer blocks (blk.*; output.weight with --process-output) the sum of squared\n" +
			"input activations per input column and the token count are collected, routed experts per expert.\n" +
			"The result is written as llama-imatrix's GGUF (general.type = imatrix, NAME.in_sum2 / NAME.counts,\n" +
			"imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size), tensor names in GGUF spelling whatever the input\n" +
			"format (llama-quantize --imatrix reads it); --output-format dat writes its legacy .dat instead.\n" +
			"The running perplexity is printed as llama-imatrix prints it (--no-ppl skips it).\n" +
			"Chunks are batched as llama-imatrix batches them (-b/-ub, llama.cpp's defaults 2048/512), which decides part of\n" +
			"llama.cpp's arithmetic and which small products it skips.\n" +
			"The text file is read as llama-imatrix reads -f (--parse-special as its --parse-special).",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "calibration text file", Required: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "imatrix.gguf", Usage: "output `FILE`"},
			&cli.StringFlag{Name: "output-format", Value: "gguf", Usage: "gguf, or dat: llama-imatrix's legacy format (llama-imatrix --output-format)"},
			&cli.BoolFlag{Name: "escape", Usage: "process escape sequences (\\n, \\t, \\xHH, ...) in the text (llama-imatrix reads it verbatim by default)"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 512, Usage: "context (chunk) length in tokens"},
			&cli.IntFlag{Name: "chunks", Usage: "maximum number of chunks (default all)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "worker threads (default: number of CPUs)"},
			&cli.BoolFlag{Name: "parse-special", Usage: "turn control-token text in the file (e.g. <s>) into those tokens (llama-imatrix --parse-special)"},
			&cli.BoolFlag{Name: "process-output", Usage: "also collect output.weight (llama-imatrix --process-output)"},
			&cli.BoolFlag{Name: "no-ppl", Usage: "do not compute the perplexity"},
			&cli.StringFlag{Name: "activations", Value: "auto", Usage: "forward-pass rounding: auto (llama.cpp's for GGUF, float32 otherwise), llama, float"},
		}, batchFlags()...),
		Action: runImatrix,
	})
}

func runImatrix(c *cli.Context) error {
	if c.NArg() != 1 {
		return &exitError{2, errors.New("imatrix: want exactly one MODEL argument")}
	}
	if err := checkEvalCounts(c, "imatrix"); err != nil {
		return err
	}
	out := c.String("output")
	if out == "" {
		return &exitError{2, errors.New("imatrix: empty --output")}
	}
	dat := false
	switch c.String("output-format") {
	case "gguf":
	case "dat":
		dat = true
	default:
		return &exitError{2, fmt.Errorf("imatrix: --output-format %q: want gguf or dat", c.String("output-format"))}
	}
	opt := perplexity.ImatrixOptions{
		Ctx: c.Int("ctx"), Chunks: c.Int("chunks"), Threads: c.Int("threads"),
		ProcessOutput: c.Bool("process-output"), NoPPL: c.Bool("no-ppl"),
		Dataset: c.String("file"),
	}
	var err error
	if opt.Batch, opt.UBatch, err = batchSizes(c, "imatrix"); err != nil {
		return err
	}
	if opt.Activations, err = parseActivations(c, "imatrix"); err != nil {
		return err
	}
	stdout, stderr := evalWriters(c)
	opt.Progress = stdout

	modelPath := c.Args().Get(0)
	m, tok, err := openEvalModel(stderr, modelPath, opt.Ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	f, text, err := openEvalText(c)
	if err != nil {
		return err
	}
	defer f.Close()
	// common_tokenize(ctx, text, add_special=true, parse_special), stopping
	// once --chunks chunks' tokens exist.
	tokens, err := perplexity.Tokenize(tok, text,
		perplexity.Options{Ctx: opt.Ctx, Chunks: opt.Chunks, ParseSpecial: c.Bool("parse-special")})
	if err != nil {
		return fmt.Errorf("reading text: %w", err)
	}
	res, err := perplexity.Imatrix(context.Background(), m, tokens, tok.AddBOS(), tok.BOS(), opt)
	if err != nil {
		return evalError(err, c.String("file"))
	}
	if !opt.NoPPL {
		fmt.Fprintf(stdout, "Final estimate: PPL = %.4f +/- %.5f\n", res.PPL, res.PPLStderr)
	}
	if err := atomicfile.Write(out, 0o644, func(f *os.File) error {
		w := bufio.NewWriter(f)
		write := res.Matrix.WriteGGUF
		if dat {
			write = res.Matrix.WriteDat
		}
		if err := write(w); err != nil {
			return err
		}
		return w.Flush()
	}); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	var partial []string
	for _, e := range res.Matrix.Entries {
		for _, n := range e.Counts {
			if n == 0 {
				partial = append(partial, e.Name)
				break
			}
		}
	}
	if len(partial) > 0 {
		fmt.Fprintf(stderr, "warning: %d entries have partial data (experts no token was routed to): %s\n", len(partial), strings.Join(partial, ", "))
	}
	fmt.Fprintf(stderr, "%s: %d entries, %d chunks of %d tokens, %.2f s\n", out, len(res.Matrix.Entries), res.Matrix.ChunkCount, res.Ctx, res.Seconds)
	return nil
}
