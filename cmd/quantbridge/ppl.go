package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/perplexity"
)

func init() {
	register(&cli.Command{
		Name:      "ppl",
		Usage:     "perplexity of a model on a text file, computed as llama-perplexity does",
		ArgsUsage: "-f TEXT MODEL",
		Description: "MODEL is a GGUF file or an HF/MLX checkpoint directory. The text is tokenized once (BOS first),\n" +
			"cut into --ctx token chunks (BOS overwrites each chunk's first token) and the second half of every\n" +
			"chunk is scored. The running perplexity is printed as llama-perplexity prints it ([1]54.1315,...).\n" +
			"Chunks are batched as llama-perplexity batches them (-b/-ub, llama.cpp's defaults 2048/512), which decides part of\n" +
			"llama.cpp's arithmetic: pass the -b and -ub the llama-perplexity figures were made with.\n" +
			"The text file is read as llama-perplexity reads -f: verbatim with one final newline dropped (--escape processes escapes);\n" +
			"--chunks N stops tokenizing once N chunks' tokens exist, so any size of text is read in bounded memory.\n" +
			"Gates: --max-ppl X and --max-ppl-increase PCT --baseline MODEL exit with status 1 when exceeded.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "text file to score", Required: true},
			&cli.BoolFlag{Name: "escape", Usage: "process escape sequences (\\n, \\t, \\xHH, ...) in the text, as llama-perplexity --escape (by default the text is read verbatim, as llama-perplexity reads it)"},
			&cli.BoolFlag{Name: "no-escape", Hidden: true, Usage: "read the text verbatim (the default)"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 512, Usage: "context (chunk) length in tokens"},
			&cli.IntFlag{Name: "chunks", Usage: "maximum number of chunks (default all)"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "worker threads (default: number of CPUs)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (running values go to stderr)"},
			&cli.StringFlag{Name: "kl-base", Usage: "also compute KL divergence against this base `MODEL` (same vocabulary)"},
			&cli.Float64Flag{Name: "max-ppl", Usage: "exit with status 1 if the perplexity exceeds `X`"},
			&cli.Float64Flag{Name: "max-ppl-increase", Usage: "exit with status 1 if the perplexity exceeds the --baseline model's by more than `PCT` percent"},
			&cli.StringFlag{Name: "baseline", Usage: "baseline `MODEL` for --max-ppl-increase"},
			&cli.StringFlag{Name: "activations", Value: "auto", Usage: "matrix-product input rounding: auto (llama.cpp's for GGUF, float32 otherwise), llama, float"},
		}, batchFlags()...),
		Action: runPPL,
	})
}

type pplJSON struct {
	PPL             float64   `json:"ppl"`
	PPLStderr       float64   `json:"ppl_stderr"`
	Ctx             int       `json:"ctx"`
	Chunks          int       `json:"chunks"`
	TokensScored    int       `json:"tokens_scored"`
	Seconds         float64   `json:"seconds"`
	TokensPerSecond float64   `json:"tokens_per_second"`
	Running         []float64 `json:"running"`
	KLD             *float64  `json:"kld,omitempty"`
	KLDStderr       *float64  `json:"kld_stderr,omitempty"`
	Top1Agreement   *float64  `json:"top1_agreement,omitempty"`
	PPLRatio        *float64  `json:"ppl_ratio,omitempty"`
	BaselinePPL     *float64  `json:"baseline_ppl,omitempty"`
}

func openModel(path string) (*graph.Model, error) {
	m, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func runPPL(c *cli.Context) error {
	if c.NArg() != 1 {
		return &exitError{2, errors.New("ppl: want exactly one MODEL argument")}
	}
	if c.Bool("escape") && c.Bool("no-escape") {
		return &exitError{2, errors.New("ppl: --escape and --no-escape contradict each other")}
	}
	if c.IsSet("max-ppl-increase") && c.String("baseline") == "" {
		return &exitError{2, errors.New("ppl: --max-ppl-increase needs --baseline MODEL")}
	}
	// Counts that cannot mean anything are usage errors, not defaults: -c 0
	// is llama-perplexity's "the model's training context", which is rarely
	// what a perplexity comparison wants, so it is refused rather than guessed.
	if err := checkEvalCounts(c, "ppl"); err != nil {
		return err
	}
	opt := perplexity.Options{Ctx: c.Int("ctx"), Chunks: c.Int("chunks"), Threads: c.Int("threads")}
	var err error
	if opt.Batch, opt.UBatch, err = batchSizes(c, "ppl"); err != nil {
		return err
	}
	if opt.Activations, err = parseActivations(c, "ppl"); err != nil {
		return err
	}
	stdout, stderr := evalWriters(c)
	asJSON := c.Bool("json")
	if asJSON {
		opt.Progress = stderr
	} else {
		opt.Progress = stdout
	}

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
	tokens, err := perplexity.Tokenize(tok, text, opt)
	if err != nil {
		return fmt.Errorf("reading text: %w", err)
	}

	if p := c.String("kl-base"); p != "" {
		base, err := openModel(p)
		if err != nil {
			return err
		}
		defer base.Close()
		opt.KLBase = base
	}
	ctx := context.Background()
	res, err := perplexity.EvaluateTokens(ctx, m, tokens, tok.AddBOS(), tok.BOS(), opt)
	if err != nil {
		return evalError(err, c.String("file"))
	}
	out := pplJSON{
		PPL: res.PPL, PPLStderr: res.PPLStderr, Ctx: res.Ctx, Chunks: res.Chunks,
		TokensScored: res.TokensScored, Seconds: res.Seconds, TokensPerSecond: res.TokensPerSecond,
		Running: res.Running,
	}
	if !asJSON {
		fmt.Fprintf(stdout, "Final estimate: PPL = %.4f +/- %.5f\n", res.PPL, res.PPLStderr)
		fmt.Fprintf(stderr, "%d chunks of %d tokens, %d scored, %.2f s, %.1f tokens/s\n",
			res.Chunks, res.Ctx, res.TokensScored, res.Seconds, res.TokensPerSecond)
	}
	if kl := res.KL; kl != nil {
		out.KLD, out.KLDStderr, out.Top1Agreement, out.PPLRatio = &kl.KLD, &kl.KLDStderr, &kl.SameTop, &kl.Ratio
		if !asJSON {
			fmt.Fprintln(stdout)
			if err := kl.WriteReport(stdout); err != nil {
				return err
			}
		}
	}

	// Gates.
	var gateErr error
	if c.IsSet("max-ppl") && res.PPL > c.Float64("max-ppl") {
		gateErr = fmt.Errorf("perplexity %.4f exceeds --max-ppl %g", res.PPL, c.Float64("max-ppl"))
	}
	if bp := c.String("baseline"); bp != "" {
		var basePPL float64
		if res.KL != nil && bp == c.String("kl-base") {
			basePPL = res.KL.BasePPL
		} else {
			b, err := openModel(bp)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := perplexity.SameVocabulary(b.Tokenizer, m.Tokenizer); err != nil {
				return fmt.Errorf("baseline %s and %s: %w", bp, modelPath, err)
			}
			bopt := opt
			bopt.KLBase = nil
			bopt.Progress = io.Discard
			br, err := perplexity.EvaluateTokens(ctx, b, tokens, tok.AddBOS(), tok.BOS(), bopt)
			if err != nil {
				return fmt.Errorf("baseline %s: %w", bp, err)
			}
			basePPL = br.PPL
		}
		out.BaselinePPL = &basePPL
		inc := 100 * (res.PPL/basePPL - 1)
		if !asJSON {
			fmt.Fprintf(stdout, "Baseline PPL = %.4f (%s); increase %+.3f%%\n", basePPL, bp, inc)
		}
		if c.IsSet("max-ppl-increase") && inc > c.Float64("max-ppl-increase") && gateErr == nil {
			gateErr = fmt.Errorf("perplexity %.4f is %.3f%% above the baseline's %.4f (--max-ppl-increase %g%%)",
				res.PPL, inc, basePPL, c.Float64("max-ppl-increase"))
		}
	}
	if asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	}
	if gateErr != nil {
		return &exitError{1, gateErr}
	}
	return nil
}

// evalError is an error of perplexity.Evaluate as the commands print it.
// The model's errors name the model already (perplexity.LoadModel prefixes
// its path); a text too short for the context gets the text's path.
func evalError(err error, textPath string) error {
	if errors.Is(err, perplexity.ErrTooFewTokens) {
		return fmt.Errorf("%s: %w", textPath, err)
	}
	return err
}

// minCtx is the smallest context perplexity.Evaluate accepts.
const minCtx = 4

// warnTrainCtx warns, as llama-perplexity does, when the context is longer
// than the one the model was trained with (its scores are then of a model
// used outside what it learned).
func warnTrainCtx(w io.Writer, m *graph.Model, ctx int, flag string) {
	if n := m.Params.ContextLength; n > 0 && ctx > n {
		fmt.Fprintf(w, "quantbridge: warning: %s: model was trained on only %d context tokens (%s %d)\n", m.Path, n, flag, ctx)
	}
}
