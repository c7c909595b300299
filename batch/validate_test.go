package batch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateBeforeRunning: a manifest with a bad target type, a missing
// model and an output directory that cannot be created runs nothing (the
// good items used to be converted before the bad type failed) and names
// every problem.
func TestValidateBeforeRunning(t *testing.T) {
	dir, m := setup(t)
	m.Targets = append(m.Targets, Target{Format: "gguf", Type: "Q9_9"})
	m.Models = append(m.Models, ModelSpec{Name: "c", Path: "models/missing.gguf"})
	// d's output directory would be out/d, under a regular file "out/d".
	m.Models = append(m.Models, ModelSpec{Name: "d", Path: "models/a.gguf"})
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out", "d"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	outs, err := Run(context.Background(), m, Options{
		Convert: f.convert, Evaluate: f.eval,
		CheckTarget: func(it Item) error {
			if it.Target.Type == "Q9_9" {
				return errors.New("unknown GGUF file type")
			}
			return nil
		},
		ReportDir: filepath.Join(dir, "eval.txt", "report"),
	})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Run: %v, want a *ValidationError", err)
	}
	if len(outs) != 0 || len(f.converts) != 0 || len(f.evals) != 0 {
		t.Errorf("ran despite the errors: outcomes %v, converts %v, evals %v", outs, f.converts, f.evals)
	}
	want := []string{
		"target gguf-Q9_9: unknown GGUF file type",
		"model c: stat " + filepath.Join(dir, "models", "missing.gguf") + ": no such file or directory",
		fmt.Sprintf("output directory: %s is not a directory", filepath.Join(dir, "out", "d")),
		fmt.Sprintf("report directory: %s cannot be created: %s is not a directory", filepath.Join(dir, "eval.txt", "report"), filepath.Join(dir, "eval.txt")),
	}
	if got := strings.Join(ve.Problems, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	// A valid manifest passes, with output directories not yet created.
	_, m = setup(t)
	if err := Validate(m, Options{}); err != nil {
		t.Errorf("valid manifest: %v", err)
	}
}

// TestRunInterrupted: when the context ends during an item, that item is
// "interrupted" (not "failed: context canceled"), no later item runs, and
// Run returns the context's error.
func TestRunInterrupted(t *testing.T) {
	_, m := setup(t)
	f := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log strings.Builder
	outs, err := Run(ctx, m, Options{
		Convert: func(ctx context.Context, it Item, jobs int) (ConvertResult, error) {
			if it.Index == 1 {
				cancel() // SIGINT arrives during the second item
				return ConvertResult{}, ctx.Err()
			}
			return f.convert(ctx, it, jobs)
		},
		Evaluate: f.eval,
		Log:      &log,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	if len(outs) != 2 || outs[0].Status != StatusDone || outs[1].Status != StatusInterrupted || outs[1].Err != nil {
		t.Errorf("outcomes %+v", outs)
	}
	if !strings.Contains(log.String(), "[2] a/gguf-Q4_K_M: interrupted\n") || strings.Contains(log.String(), "failed") {
		t.Errorf("log:\n%s", log.String())
	}
	rep := Collect(m, outs)
	var statuses []string
	for _, r := range rep.Items {
		statuses = append(statuses, r.Status)
	}
	if got, want := strings.Join(statuses, " "), "done interrupted pending pending pending pending"; got != want {
		t.Errorf("report statuses %q, want %q", got, want)
	}
}
