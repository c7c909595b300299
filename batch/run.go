package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ConvertResult is what one conversion reports.
type ConvertResult struct {
	Bytes         int64
	BitsPerWeight float64
}

// Converter produces it.Output from it.Input for it.Target, atomically
// (nothing at it.Output unless complete), overwriting an existing output.
type Converter func(ctx context.Context, it Item, jobs int) (ConvertResult, error)

// Evaluator scores model on the eval text. base, when not empty, is the
// unquantized model to compute KL-divergence and top-1 agreement against.
type Evaluator func(ctx context.Context, model, base string, ev EvalSpec, text string) (EvalResult, error)

// Options control a run.
type Options struct {
	Shard    Shard
	Jobs     int
	Convert  Converter
	Evaluate Evaluator // required when the manifest has eval
	// Log receives one line per item; nil discards.
	Log io.Writer
	// OnItem is called after each item of this shard (for progress bars).
	OnItem func(it Item, status string)

	// Checks of Validate, which Run calls before running anything.
	// CheckTarget reports whether the converter can produce it.Target
	// (called once per target); CheckInput whether the model at path can
	// be read (once per model). ReportDir is where the caller will write
	// the report. Nil and "" skip the check.
	CheckTarget func(it Item) error
	CheckInput  func(path string) error
	ReportDir   string

	// Pull makes this process one of any number of workers that pull the
	// next unclaimed item of the shard (see the package documentation)
	// instead of doing all of the shard's items itself.
	Pull bool
	// Lease is how long a claim lives without renewal (DefaultLease if 0).
	Lease time.Duration
	// NoWait makes a pulling worker stop when nothing is left to claim,
	// instead of waiting for the items other workers hold (to take over
	// those of workers that die).
	NoWait bool
	// Holder is the identity written into claims (Self() if zero).
	Holder Holder
}

// Status values of a report row.
const (
	StatusDone        = "done"    // converted (and scored) in this run
	StatusSkipped     = "skipped" // already complete; nothing redone
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted" // stopped by the run's context (a signal); redone by the next run
	StatusPending     = "pending"     // not run: another shard's, or after an interruption
)

// Outcome is the result of one item in this run.
type Outcome struct {
	Item   Item
	Status string
	Err    error
}

// Run validates the manifest (Validate: a *ValidationError, nothing run)
// and processes the shard's items in manifest order. A failed item does not
// stop the others; the returned error says how many failed. When ctx ends
// (a signal), the item in progress is StatusInterrupted, the later ones are
// not run, and the error is ctx's.
func Run(ctx context.Context, m *Manifest, opt Options) ([]Outcome, error) {
	if opt.Shard.N == 0 {
		opt.Shard = All
	}
	if opt.Convert == nil {
		return nil, errors.New("batch: no converter")
	}
	if m.Eval != nil && opt.Evaluate == nil {
		return nil, errors.New("batch: manifest has eval but no evaluator")
	}
	if err := Validate(m, opt); err != nil {
		return nil, err
	}
	logw := opt.Log
	if logw == nil {
		logw = io.Discard
	}
	jobs := opt.Jobs
	if jobs == 0 {
		jobs = m.Jobs
	}
	if opt.Pull {
		return runPull(ctx, m, jobs, logw, opt)
	}
	var outs []Outcome
	failed := 0
	for _, it := range m.Items() {
		if !opt.Shard.Has(it.Index) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return outs, err
		}
		status, err := runItem(ctx, m, it, jobs, opt)
		switch {
		case err != nil && ctx.Err() != nil:
			fmt.Fprintf(logw, "[%d] %s: interrupted\n", it.Index+1, it.ID())
			outs = append(outs, Outcome{it, StatusInterrupted, nil})
			if opt.OnItem != nil {
				opt.OnItem(it, StatusInterrupted)
			}
			return outs, ctx.Err()
		case err != nil:
			failed++
			status = StatusFailed
			fmt.Fprintf(logw, "[%d] %s: failed: %v\n", it.Index+1, it.ID(), err)
		default:
			fmt.Fprintf(logw, "[%d] %s: %s -> %s\n", it.Index+1, it.ID(), status, it.Output)
		}
		outs = append(outs, Outcome{it, status, err})
		if opt.OnItem != nil {
			opt.OnItem(it, status)
		}
	}
	if failed > 0 {
		return outs, fmt.Errorf("%d of %d items failed", failed, len(outs))
	}
	return outs, nil
}

func evalKey(m *Manifest) string {
	if m.Eval == nil {
		return ""
	}
	st, _ := stampInput(m.EvalText())
	key := fmt.Sprintf("ctx=%d chunks=%d text=%s", m.Eval.Ctx, m.Eval.Chunks, m.EvalText())
	if len(st) == 1 {
		key += fmt.Sprintf(" size=%d mtime=%d", st[0].Size, st[0].ModTime)
	}
	return key
}

func runItem(ctx context.Context, m *Manifest, it Item, jobs int, opt Options) (string, error) {
	stamp, err := stampInput(it.Input)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", it.Input, err)
	}
	rec := readRecord(it.Output)
	converted := recordMatches(rec, it, stamp)
	status := StatusSkipped
	if !converted {
		start := time.Now()
		res, err := opt.Convert(ctx, it, jobs)
		if err != nil {
			return "", err
		}
		n, err := outputSize(it.Output)
		if err != nil {
			return "", fmt.Errorf("output %s: %w", it.Output, err)
		}
		rec = &Record{
			Version: recordVersion, Item: it.ID(), Target: it.Target,
			Input: it.Input, InputStamp: stamp, Output: it.Output,
			Bytes: n, BitsPerWeight: res.BitsPerWeight,
			Seconds: time.Since(start).Seconds(),
		}
		if err := writeRecord(rec); err != nil {
			return "", err
		}
		status = StatusDone
	}
	if key := evalKey(m); key != "" && (rec.Eval == nil || rec.EvalKey != key) {
		// The base model's own score is what the report's Δppl is against.
		if _, err := baseEval(ctx, m, it, key, opt); err != nil {
			return "", err
		}
		ev, err := opt.Evaluate(ctx, it.Output, it.Input, *m.Eval, m.EvalText())
		if err != nil {
			return "", fmt.Errorf("evaluating %s: %w", it.Output, err)
		}
		rec.Eval, rec.EvalKey = &ev, key
		if err := writeRecord(rec); err != nil {
			return "", err
		}
		status = StatusDone
	}
	return status, nil
}

// recordMatches reports whether rec says the item's output is converted
// from the input identified by stamp, and the output has the recorded size.
func recordMatches(rec *Record, it Item, stamp []FileStamp) bool {
	if rec == nil || rec.Item != it.ID() || rec.Target != it.Target || !slices.Equal(rec.InputStamp, stamp) {
		return false
	}
	n, err := outputSize(it.Output)
	return err == nil && n == rec.Bytes
}

// baseRecord caches the unquantized model's own score per model.
type baseRecord struct {
	Version    int         `json:"version"`
	Input      string      `json:"input"`
	InputStamp []FileStamp `json:"input_stamp"`
	EvalKey    string      `json:"eval_key"`
	Eval       EvalResult  `json:"eval"`
}

func basePath(m *Manifest, model string) string {
	return filepath.Join(m.resolve(m.OutputDir), model, "base.qb.json")
}

func readBase(m *Manifest, model string) *baseRecord {
	data, err := os.ReadFile(basePath(m, model))
	if err != nil {
		return nil
	}
	var b baseRecord
	if json.Unmarshal(data, &b) != nil || b.Version != recordVersion {
		return nil
	}
	return &b
}

func jsonIndent(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	return append(data, '\n'), err
}

// baseEval returns the base model's score, computing it once per model and
// eval settings.
func baseEval(ctx context.Context, m *Manifest, it Item, key string, opt Options) (*EvalResult, error) {
	if b := readBase(m, it.Model.Name); b != nil && b.EvalKey == key && b.Input == it.Input {
		if st, err := stampInput(it.Input); err == nil && slices.Equal(st, b.InputStamp) {
			return &b.Eval, nil
		}
	}
	st, err := stampInput(it.Input)
	if err != nil {
		return nil, err
	}
	ev, err := opt.Evaluate(ctx, it.Input, "", *m.Eval, m.EvalText())
	if err != nil {
		return nil, fmt.Errorf("evaluating base model %s: %w", it.Input, err)
	}
	b := &baseRecord{Version: recordVersion, Input: it.Input, InputStamp: st, EvalKey: key, Eval: ev}
	data, err := jsonIndent(b)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(basePath(m, it.Model.Name), data); err != nil {
		return nil, err
	}
	return &b.Eval, nil
}
