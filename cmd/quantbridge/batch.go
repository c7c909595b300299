package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/quantbridge/quantbridge/batch"
	"github.com/quantbridge/quantbridge/convert"
	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/perplexity"
	"github.com/quantbridge/quantbridge/tokenizer"
)

func init() {
	register(&cli.Command{
		Name:      "batch",
		Usage:     "requantize a model zoo from a manifest: resumable, idempotent, shardable, with a report",
		ArgsUsage: "MANIFEST.yaml",
		Description: "Runs every (model, target) item of the manifest that belongs to this shard. Finished items\n" +
			"(a .qb.json record beside the output matching the input and settings) are not redone, so a\n" +
			"killed run resumes where it stopped. The shard comes from --shard I/N, else from Kubernetes\n" +
			"Indexed Jobs (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) or Slurm arrays (SLURM_ARRAY_TASK_ID,\n" +
			"SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN). Relative paths in the manifest are relative\n" +
			"to the manifest's directory.\n\n" +
			"With --pull, any number of workers (array tasks, pods, processes) share the items: each claims\n" +
			"the next unclaimed one (a <output>.qb.claim.N file beside the output, created exclusively and\n" +
			"renewed every --lease/3 while it works), so big and small models balance themselves. A claim\n" +
			"whose worker died is taken over once its lease expired, or at once when that worker ran on the\n" +
			"same host and its process is gone. The scheduler's shard variables are ignored (--shard still\n" +
			"applies). Unless --no-wait, a worker with nothing left to claim waits for the items others hold,\n" +
			"to take over those of workers that die. See docs/batch-clusters.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shard", Usage: "I/N: do only items k with k mod N == I (0-based)"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "workers per conversion (default: manifest jobs, else all cores)"},
			&cli.StringFlag{Name: "report", Usage: "write report.json, report.csv, report.md and report.svg into `DIR`"},
			&cli.BoolFlag{Name: "report-only", Usage: "convert nothing: build the report from the records on disk (after all shards finished)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report rows as JSON on stdout"},
			&cli.IntFlag{Name: "threads", Usage: "threads for evaluation (default: all cores)"},
			&cli.BoolFlag{Name: "pull", Usage: "share the items with other workers through claims beside the outputs, instead of a fixed shard"},
			&cli.DurationFlag{Name: "lease", Value: batch.DefaultLease, Usage: "with --pull: a claim not renewed for this long is taken over (renewed every lease/3)"},
			&cli.BoolFlag{Name: "no-wait", Usage: "with --pull: exit when nothing is left to claim, instead of waiting for the items other workers hold"},
		},
		Action: runBatch,
	})
}

func runBatch(c *cli.Context) error {
	if c.NArg() != 1 {
		return &exitError{2, fmt.Errorf("batch: want one MANIFEST argument")}
	}
	for _, f := range []string{"jobs", "threads"} {
		if n := c.Int(f); n < 0 {
			return &exitError{2, fmt.Errorf("batch: --%s %d: want a positive number (0 or no flag: all cores)", f, n)}
		}
	}
	pull := c.Bool("pull")
	if !pull && (c.IsSet("lease") || c.Bool("no-wait")) {
		return &exitError{2, fmt.Errorf("batch: --lease and --no-wait apply to --pull only")}
	}
	if lease := c.Duration("lease"); lease < time.Second {
		return &exitError{2, fmt.Errorf("batch: --lease %v: want at least 1s", lease)}
	}
	m, err := batch.ParseManifest(c.Args().First())
	if err != nil {
		return &exitError{2, err}
	}
	shard := batch.All
	if s := c.String("shard"); s != "" {
		if shard, err = batch.ParseShard(s); err != nil {
			return &exitError{2, err}
		}
	} else if pull {
		// Every worker pulls from all items: the array index is no shard.
	} else if s, ok, err := batch.ShardFromEnv(nil); err != nil {
		return &exitError{2, err}
	} else if ok {
		shard = s
	}
	ctx, signaled, stop := signalContext(c.Context)
	defer stop()
	reportDir := c.String("report")

	var outcomes []batch.Outcome
	var runErr error
	if c.Bool("report-only") {
		if reportDir != "" {
			if err := batch.WritableDir(reportDir); err != nil {
				return &exitError{2, err}
			}
		}
	} else {
		items := 0
		for _, it := range m.Items() {
			if shard.Has(it.Index) {
				items++
			}
		}
		if pull {
			host, _ := os.Hostname()
			fmt.Fprintf(os.Stderr, "quantbridge batch: pulling from %d of %d items (shard %s) as %s pid %d, lease %v\n",
				items, len(m.Items()), shard, host, os.Getpid(), c.Duration("lease"))
		} else {
			fmt.Fprintf(os.Stderr, "quantbridge batch: %d of %d items in shard %s\n", items, len(m.Items()), shard)
		}
		var bar *progressbar.ProgressBar
		if term.IsTerminal(int(os.Stderr.Fd())) {
			bar = progressbar.NewOptions(items, progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("manifest"), progressbar.OptionShowCount(),
				progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true))
		}
		threads := c.Int("threads")
		outcomes, runErr = batch.Run(ctx, m, batch.Options{
			Shard:   shard,
			Pull:    pull,
			Lease:   c.Duration("lease"),
			NoWait:  c.Bool("no-wait"),
			Jobs:    c.Int("jobs"),
			Convert: batchConvert,
			CheckTarget: func(it batch.Item) error {
				_, err := batchOptions(it, 1)
				return err
			},
			CheckInput: func(path string) error { return batchCheckInput(path, m.Eval, os.Stderr) },
			ReportDir:  reportDir,
			Evaluate: func(ctx context.Context, model, base string, ev batch.EvalSpec, text string) (batch.EvalResult, error) {
				return batchEval(ctx, model, base, ev, text, threads)
			},
			Log: logLines{bar},
			OnItem: func(batch.Item, string) {
				if bar != nil {
					bar.Add(1)
				}
			},
		})
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(os.Stderr)
		}
		var ve *batch.ValidationError
		if errors.As(runErr, &ve) {
			return &exitError{2, fmt.Errorf("%s: %w", c.Args().First(), runErr)}
		}
		if sig := signaled(); sig != nil {
			runErr = interrupted(sig, "run the manifest again to finish (finished items are not redone)")
		}
	}
	rep := batch.Collect(m, outcomes)
	if dir := reportDir; dir != "" {
		if err := rep.WriteFiles(dir); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "quantbridge batch: report written to %s\n", dir)
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, rep); err != nil {
			return err
		}
	} else if c.String("report") == "" || c.Bool("report-only") {
		c.App.Writer.Write(rep.Markdown())
	}
	return runErr
}

// logLines prints per-item lines above the progress bar.
type logLines struct{ bar *progressbar.ProgressBar }

func (l logLines) Write(p []byte) (int, error) {
	if l.bar != nil {
		l.bar.Clear()
	}
	return os.Stderr.Write(p)
}

// batchOptions are the conversion options of an item.
func batchOptions(it batch.Item, jobs int) (convert.Options, error) {
	opt := convert.Options{
		Jobs:  jobs,
		Force: true, // the item's record, not the output's existence, says whether it is done
		Warn:  func(s string) { fmt.Fprintf(os.Stderr, "quantbridge: %s: warning: %s\n", it.ID(), s) },
	}
	tf := convert.TargetFlags{Type: it.Target.Type}
	if it.Target.Format != "gguf" {
		tf.To = it.Target.Format
	}
	target, err := convert.ParseTarget(it.Output, tf)
	if err != nil {
		return opt, err
	}
	// The manifest's group_size (64 unless given) is for quantized MLX.
	if mt, ok := target.(convert.MLXTarget); ok && mt.Bits > 0 {
		mt.GroupSize = it.Target.GroupSize
		target = mt
	}
	opt.Target = target
	return opt, nil
}

// batchCheckInput opens a manifest's model as the run will (and closes it),
// warning when the eval context exceeds its training context.
func batchCheckInput(path string, ev *batch.EvalSpec, warn io.Writer) error {
	m, err := formats.Open(path)
	if err != nil {
		return err
	}
	defer m.Close()
	if ev != nil {
		warnTrainCtx(warn, m, ev.Ctx, "eval ctx")
	}
	return nil
}

func batchConvert(ctx context.Context, it batch.Item, jobs int) (batch.ConvertResult, error) {
	opt, err := batchOptions(it, jobs)
	if err != nil {
		return batch.ConvertResult{}, err
	}
	out := it.Output
	if err := os.MkdirAll(dirOf(out), 0o755); err != nil {
		return batch.ConvertResult{}, err
	}
	sum, err := convert.Convert(ctx, it.Input, out, opt)
	if err != nil {
		return batch.ConvertResult{}, err
	}
	return batch.ConvertResult{Bytes: sum.TotalBytes, BitsPerWeight: sum.BitsPerWeight}, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[:i]
	}
	return "."
}

func batchEval(ctx context.Context, model, base string, ev batch.EvalSpec, textPath string, threads int) (batch.EvalResult, error) {
	start := time.Now()
	m, err := formats.Open(model)
	if err != nil {
		return batch.EvalResult{}, err
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return batch.EvalResult{}, fmt.Errorf("%s: the model has no tokenizer", model)
	}
	tok, err := tokenizer.NewForModel(m)
	if err != nil {
		return batch.EvalResult{}, fmt.Errorf("%s: %w", model, err)
	}
	text, err := tokenizer.ReadTextFile(textPath, false, true) // as llama-perplexity -f
	if err != nil {
		return batch.EvalResult{}, err
	}
	opt := perplexity.Options{Ctx: ev.Ctx, Chunks: ev.Chunks, Threads: threads}
	if base != "" {
		bm, err := formats.Open(base)
		if err != nil {
			return batch.EvalResult{}, err
		}
		defer bm.Close()
		opt.KLBase = bm
	}
	res, err := perplexity.Evaluate(ctx, m, tok, text, opt)
	if err != nil {
		return batch.EvalResult{}, evalError(err, textPath)
	}
	out := batch.EvalResult{PPL: res.PPL, PPLStderr: res.PPLStderr, Seconds: time.Since(start).Seconds()}
	if res.KL != nil {
		out.HasKL, out.KLD, out.KLDStderr, out.Top1 = true, res.KL.KLD, res.KL.KLDStderr, res.KL.SameTop
	}
	return out, nil
}
