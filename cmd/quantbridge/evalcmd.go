package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/arch"
	"github.com/quantbridge/quantbridge/graph"
	"github.com/quantbridge/quantbridge/perplexity"
	"github.com/quantbridge/quantbridge/tokenizer"
)

// Flag checks and model loading shared by the commands that run the forward
// pass over a text (ppl, imatrix).

// checkEvalCounts refuses the --ctx, --chunks and --threads values that
// cannot mean anything (usage errors, exit status 2), naming the command.
func checkEvalCounts(c *cli.Context, cmd string) error {
	if n := c.Int("ctx"); n < minCtx {
		return &exitError{2, fmt.Errorf("%s: --ctx %d: want a context of at least %d tokens", cmd, n, minCtx)}
	}
	if n := c.Int("chunks"); n < 0 {
		return &exitError{2, fmt.Errorf("%s: --chunks %d: want a positive number of chunks (0 or no flag: all)", cmd, n)}
	}
	if n := c.Int("threads"); n < 0 {
		return &exitError{2, fmt.Errorf("%s: --threads %d: want a positive number of threads (0 or no flag: all CPUs)", cmd, n)}
	}
	return nil
}

// batchFlags are llama-perplexity's and llama-imatrix's -b and -ub, which
// decide how chunks are batched and so part of llama.cpp's arithmetic.
func batchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "batch-size", Aliases: []string{"b"}, Value: perplexity.DefaultBatch, Usage: "logical batch size, as llama.cpp's -b: max(1, b/ctx) chunks are evaluated together, as llama.cpp evaluates them (its arithmetic depends on it)"},
		&cli.IntFlag{Name: "ubatch-size", Aliases: []string{"ub"}, Value: perplexity.DefaultUBatch, Usage: "physical batch size, as llama.cpp's -ub"},
	}
}

// batchSizes reads --batch-size and --ubatch-size, refusing values below 1.
func batchSizes(c *cli.Context, cmd string) (batch, ubatch int, err error) {
	for _, name := range []string{"batch-size", "ubatch-size"} {
		if n := c.Int(name); n < 1 {
			return 0, 0, &exitError{2, fmt.Errorf("%s: --%s %d: want at least 1 token", cmd, name, n)}
		}
	}
	return c.Int("batch-size"), c.Int("ubatch-size"), nil
}

// parseActivations reads --activations: auto, llama or
// float.
func parseActivations(c *cli.Context, cmd string) (perplexity.Activations, error) {
	switch s := c.String("activations"); s {
	case "auto":
		return perplexity.ActivationsAuto, nil
	case "llama":
		return perplexity.ActivationsLlamaCpp, nil
	case "float":
		return perplexity.ActivationsFloat32, nil
	default:
		return perplexity.ActivationsAuto, &exitError{2, fmt.Errorf("%s: --activations %q: want auto, llama or float", cmd, s)}
	}
}

// openEvalModel opens the model at path for evaluation at a context of ctx
// tokens: it validates it (warnings to stderr), warns when ctx exceeds the
// training context, and builds its tokenizer. The caller closes the model.
func openEvalModel(stderr io.Writer, path string, ctx int) (*graph.Model, *tokenizer.Tokenizer, error) {
	m, err := openModel(path)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*graph.Model, *tokenizer.Tokenizer, error) {
		m.Close()
		return nil, nil, err
	}
	warns, err := arch.Validate(m)
	if err != nil {
		return fail(err)
	}
	for _, w := range warns {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if m.Tokenizer == nil {
		return fail(fmt.Errorf("%s: the model carries no tokenizer", path))
	}
	warnTrainCtx(stderr, m, ctx, "--ctx")
	tok, err := tokenizer.NewForModel(m)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	return m, tok, nil
}

// evalWriters are the command's output and its warnings' writer (stderr
// when the app sets none).
func evalWriters(c *cli.Context) (stdout, stderr io.Writer) {
	stdout, stderr = c.App.Writer, c.App.ErrWriter
	if stderr == nil {
		stderr = os.Stderr
	}
	return stdout, stderr
}

// openEvalText opens --file and returns the text as llama-perplexity and
// llama-imatrix read -f: one trailing newline dropped, the rest verbatim
// (escapes only with --escape). The caller closes f.
func openEvalText(c *cli.Context) (f *os.File, text io.Reader, err error) {
	f, err = os.Open(c.String("file"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading text: %w", err)
	}
	return f, tokenizer.NewTextReader(f, c.Bool("escape"), true), nil
}
