package batch

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testManifest = `
models:
  - name: a
    path: models/a.gguf
  - name: b
    path: models/b
targets:
  - {format: gguf, type: Q8_0}
  - {format: gguf, type: q4_k_m}
  - {format: mlx, type: INT4, group_size: 64}
output_dir: out
eval:
  text: eval.txt
  ctx: 128
`

func setup(t *testing.T) (string, *Manifest) {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "models", "b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "models", "a.gguf"), []byte("model a"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "models", "b", "config.json"), []byte("{}"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "eval.txt"), []byte("text"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(testManifest), 0o644))
	m, err := ParseManifest(filepath.Join(dir, "m.yaml"))
	must(err)
	return dir, m
}

// fake converter/evaluator: deterministic values, counting calls.
type fake struct {
	converts, evals map[string]int
	failOn          string
}

func newFake() *fake { return &fake{converts: map[string]int{}, evals: map[string]int{}} }

func (f *fake) convert(_ context.Context, it Item, _ int) (ConvertResult, error) {
	if it.ID() == f.failOn {
		return ConvertResult{}, errors.New("boom")
	}
	f.converts[it.ID()]++
	if it.Target.Format == "mlx" {
		if err := os.MkdirAll(it.Output, 0o755); err != nil {
			return ConvertResult{}, err
		}
		return ConvertResult{BitsPerWeight: 4.5}, os.WriteFile(filepath.Join(it.Output, "model.safetensors"), []byte(strings.Repeat("m", 40)), 0o644)
	}
	os.MkdirAll(filepath.Dir(it.Output), 0o755)
	n := map[string]int{"Q8_0": 85, "Q4_K_M": 48}[it.Target.Type]
	return ConvertResult{BitsPerWeight: float64(n) / 10}, os.WriteFile(it.Output, []byte(strings.Repeat("g", n)), 0o644)
}

func (f *fake) eval(_ context.Context, model, base string, _ EvalSpec, _ string) (EvalResult, error) {
	f.evals[model]++
	ppl := 10.0
	if base != "" {
		ppl = 10 + float64(len(model)%7)/10
		return EvalResult{PPL: ppl, PPLStderr: 0.5, HasKL: true, KLD: 0.01, Top1: 0.95}, nil
	}
	return EvalResult{PPL: ppl, PPLStderr: 0.5}, nil
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no models", "targets: [{format: gguf, type: Q8_0}]", "no models"},
		{"no targets", "models: [{name: a, path: x}]", "no targets"},
		{"bad format", "models: [{name: a, path: x}]\ntargets: [{format: onnx, type: Q8_0}]", `format "onnx"`},
		{"bad group", "models: [{name: a, path: x}]\ntargets: [{format: mlx, type: INT4, group_size: 48}]", "group_size 48"},
		{"dup model", "models: [{name: a, path: x}, {name: a, path: y}]\ntargets: [{format: gguf, type: Q8_0}]", "duplicate name"},
		{"dup target", "models: [{name: a, path: x}]\ntargets: [{format: gguf, type: Q8_0}, {format: gguf, type: q8_0}]", "duplicate target"},
		{"bad name", "models: [{name: '../x', path: x}]\ntargets: [{format: gguf, type: Q8_0}]", "must be letters"},
		{"unknown key", "models: [{name: a, path: x, bogus: 1}]\ntargets: [{format: gguf, type: Q8_0}]", "bogus"},
		{"not yaml", "models: [", "invalid manifest"},
		{"eval without text", "models: [{name: a, path: x}]\ntargets: [{format: gguf, type: Q8_0}]\neval: {ctx: 128}", "text is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestItems(t *testing.T) {
	dir, m := setup(t)
	items := m.Items()
	if len(items) != 6 {
		t.Fatalf("%d items, want 6", len(items))
	}
	want := []string{"a/gguf-Q8_0", "a/gguf-Q4_K_M", "a/mlx-INT4-g64", "b/gguf-Q8_0", "b/gguf-Q4_K_M", "b/mlx-INT4-g64"}
	for i, it := range items {
		if it.ID() != want[i] || it.Index != i {
			t.Errorf("item %d = %s (index %d), want %s", i, it.ID(), it.Index, want[i])
		}
	}
	if got, want := items[1].Output, filepath.Join(dir, "out", "a", "a-Q4_K_M.gguf"); got != want {
		t.Errorf("output %s, want %s", got, want)
	}
	if got, want := items[5].Output, filepath.Join(dir, "out", "b", "b-mlx-int4-g64"); got != want {
		t.Errorf("output %s, want %s", got, want)
	}
	if got, want := items[3].Input, filepath.Join(dir, "models", "b"); got != want {
		t.Errorf("input %s, want %s", got, want)
	}
}

func TestShardsCoverEveryItemOnce(t *testing.T) {
	for n := 1; n <= 7; n++ {
		seen := map[int]int{}
		for i := 0; i < n; i++ {
			s, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 6; k++ {
				if s.Has(k) {
					seen[k]++
				}
			}
		}
		for k := 0; k < 6; k++ {
			if seen[k] != 1 {
				t.Fatalf("N=%d: item %d in %d shards", n, k, seen[k])
			}
		}
	}
	for _, bad := range []string{"2/2", "-1/2", "0/0", "x/2", "1"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) succeeded", bad)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    Shard
		ok      bool
		wantErr string
	}{
		{map[string]string{}, All, false, ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, Shard{2, 3}, true, ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "2"}, Shard{}, true, "JOB_COMPLETIONS"},
		{map[string]string{"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"}, Shard{}, true, "0 <= I < N"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard{0, 4}, true, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"}, Shard{3, 4}, true, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard{}, true, "not an integer"},
	}
	for i, tc := range tests {
		s, ok, err := ShardFromEnv(func(k string) string { return tc.env[k] })
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%d: err = %v, want %q", i, err, tc.wantErr)
			}
			continue
		}
		if err != nil || ok != tc.ok || s != tc.want {
			t.Errorf("%d: got %v %v %v, want %v %v", i, s, ok, err, tc.want, tc.ok)
		}
	}
}

func TestRunIdempotentAndSharded(t *testing.T) {
	dir, m := setup(t)
	f := newFake()
	// Two shards together do everything exactly once.
	for i := 0; i < 2; i++ {
		if _, err := Run(context.Background(), m, Options{Shard: Shard{i, 2}, Convert: f.convert, Evaluate: f.eval}); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range m.Items() {
		if f.converts[it.ID()] != 1 {
			t.Errorf("%s converted %d times", it.ID(), f.converts[it.ID()])
		}
	}
	// Base models evaluated once each, every output once.
	if f.evals[filepath.Join(dir, "models", "a.gguf")] != 1 || f.evals[filepath.Join(dir, "models", "b")] != 1 {
		t.Errorf("base evals %v", f.evals)
	}
	stat := map[string]int64{}
	for _, it := range m.Items() {
		fi, err := os.Stat(recordPath(it.Output))
		if err != nil {
			t.Fatal(err)
		}
		stat[it.ID()] = fi.ModTime().UnixNano()
	}
	// A rerun of the finished manifest rewrites nothing.
	f2 := newFake()
	outs, err := Run(context.Background(), m, Options{Convert: f2.convert, Evaluate: f2.eval})
	if err != nil {
		t.Fatal(err)
	}
	if len(f2.converts) != 0 || len(f2.evals) != 0 {
		t.Errorf("rerun did work: converts %v evals %v", f2.converts, f2.evals)
	}
	for _, o := range outs {
		if o.Status != StatusSkipped {
			t.Errorf("%s: status %s on rerun", o.Item.ID(), o.Status)
		}
		fi, _ := os.Stat(recordPath(o.Item.Output))
		if fi.ModTime().UnixNano() != stat[o.Item.ID()] {
			t.Errorf("%s: record rewritten", o.Item.ID())
		}
	}
	// Report covers all items with values.
	rep := Collect(m, outs)
	if err := rep.WriteFiles(filepath.Join(dir, "report")); err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 6 {
		t.Fatalf("report has %d rows", len(rep.Items))
	}
	r0 := rep.Items[0]
	if r0.Bytes != 85 || r0.PPL == nil || r0.PPLDeltaPct == nil || r0.KLD == nil || *r0.KLD != 0.01 {
		t.Errorf("row 0 = %+v", r0)
	}
	if want := 100 * (*r0.PPL - 10) / 10; *r0.PPLDeltaPct != want {
		t.Errorf("delta %v, want %v", *r0.PPLDeltaPct, want)
	}
	var js Report
	data, _ := os.ReadFile(filepath.Join(dir, "report", "report.json"))
	if err := json.Unmarshal(data, &js); err != nil || len(js.Items) != 6 {
		t.Fatalf("report.json: %v (%d items)", err, len(js.Items))
	}
	csvData, _ := os.ReadFile(filepath.Join(dir, "report", "report.csv"))
	if lines := strings.Count(string(csvData), "\n"); lines != 7 {
		t.Errorf("report.csv has %d lines", lines)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report", "report.md"))
	if !strings.Contains(string(md), "| a MLX INT4 g64 | mlx |") {
		t.Errorf("report.md:\n%s", md)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "report", "report.svg"))
	if err := xml.Unmarshal(svg, new(struct{ XMLName xml.Name })); err != nil || !strings.Contains(string(svg), "Q4_K_M") {
		t.Errorf("report.svg is not an SVG with labels: %v", err)
	}
}

func TestRunResumesAfterCrash(t *testing.T) {
	_, m := setup(t)
	f := newFake()
	f.failOn = "a/mlx-INT4-g64" // the run "dies" here
	if _, err := Run(context.Background(), m, Options{Convert: f.convert, Evaluate: f.eval}); err == nil {
		t.Fatal("want an error from the failed item")
	}
	items := m.Items()
	// Simulate a kill between the output's rename and its record: output
	// present, record absent.
	os.Remove(recordPath(items[4].Output))
	// and a stale temporary file from a killed writer.
	os.WriteFile(items[5].Output+".tmp123", []byte("partial"), 0o644)
	f2 := newFake()
	outs, err := Run(context.Background(), m, Options{Convert: f2.convert, Evaluate: f2.eval})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a/mlx-INT4-g64": 1, "b/gguf-Q4_K_M": 1}
	for id, n := range f2.converts {
		if want[id] != n {
			t.Errorf("resume converted %s %d times", id, n)
		}
	}
	if len(f2.converts) != 2 {
		t.Errorf("resume converted %v, want %v", f2.converts, want)
	}
	for _, o := range outs {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Item.ID(), o.Err)
		}
	}
}

func TestRunRedoesWhenInputChanges(t *testing.T) {
	dir, m := setup(t)
	f := newFake()
	if _, err := Run(context.Background(), m, Options{Convert: f.convert, Evaluate: f.eval}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models", "a.gguf"), []byte("model a v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	f2 := newFake()
	if _, err := Run(context.Background(), m, Options{Convert: f2.convert, Evaluate: f2.eval}); err != nil {
		t.Fatal(err)
	}
	if len(f2.converts) != 3 || f2.converts["b/gguf-Q8_0"] != 0 {
		t.Errorf("after changing model a, converted %v", f2.converts)
	}
}

func TestReportFilesReadable(t *testing.T) {
	_, m := setup(t)
	f := newFake()
	outs, err := Run(context.Background(), m, Options{Convert: f.convert, Evaluate: f.eval})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Collect(m, outs).WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "report.svg"), recordPath(m.Items()[0].Output)} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, %v; want 0644", p, st.Mode().Perm(), err)
		}
	}
}
