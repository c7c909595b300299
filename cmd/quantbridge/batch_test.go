package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// TestMain lets a test run the real command in a child process (to kill it
// with SIGKILL): QB_RUN_MAIN=1 makes the test binary behave as quantbridge.
func TestMain(m *testing.M) {
	if os.Getenv("QB_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeManifest(t *testing.T, dir, gguf, outDir string) string {
	t.Helper()
	text := fmt.Sprintf(`models:
  - name: kjv
    path: %s
  - name: kjv-f16
    path: %s
targets:
  - {format: gguf, type: Q8_0}
  - {format: gguf, type: Q4_K_M}
  - {format: mlx, type: INT4, group_size: 64}
output_dir: %s
eval:
  text: %s
  ctx: 128
  chunks: 2
`, testref.Local(t, "kjv-llama"), gguf, outDir, testref.Local(t, "kjv_eval.txt"))
	p := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type recordFile struct {
	Item   string `json:"item"`
	Output string `json:"output"`
	Bytes  int64  `json:"bytes"`
	Eval   *struct {
		PPL   float64 `json:"ppl"`
		HasKL bool    `json:"has_kl"`
		KLD   float64 `json:"kld"`
		Top1  float64 `json:"top1_agreement"`
	} `json:"eval"`
}

// records returns, for the items under dir whose record says they are
// complete (converted and scored), the modification time of their output.
// An item converted but not yet scored has a record without eval.
func records(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".qb.json") && !strings.HasSuffix(p, "base.qb.json") {
			var r recordFile
			data, _ := os.ReadFile(p)
			if json.Unmarshal(data, &r) != nil {
				t.Errorf("%s: unreadable record %s", p, data)
				return nil
			}
			st, err := os.Stat(r.Output)
			if err != nil {
				t.Errorf("%s: output missing: %v", p, err)
				return nil
			}
			if r.Eval != nil && r.Eval.HasKL && r.Eval.PPL > 0 {
				out[r.Item] = st.ModTime()
			}
		}
		return nil
	})
	return out
}

func TestBatchEndToEnd(t *testing.T) {
	dir := t.TempDir()
	gguf := filepath.Join(dir, "kjv-f16.gguf")
	if _, err := runApp(t, "convert", "--type", "f16", testref.Local(t, "kjv-llama"), gguf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	manifest := writeManifest(t, dir, gguf, out)

	// Two shards cover every item exactly once.
	for _, shard := range []string{"0/2", "1/2"} {
		if _, err := runApp(t, "batch", "--shard", shard, "-j", "2", manifest); err != nil {
			t.Fatalf("shard %s: %v", shard, err)
		}
	}
	first := records(t, out)
	want := []string{"kjv/gguf-Q8_0", "kjv/gguf-Q4_K_M", "kjv/mlx-INT4-g64", "kjv-f16/gguf-Q8_0", "kjv-f16/gguf-Q4_K_M", "kjv-f16/mlx-INT4-g64"}
	for _, id := range want {
		if _, ok := first[id]; !ok {
			t.Errorf("item %s has no record", id)
		}
	}
	if len(first) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(first), len(want), first)
	}
	// HF → Q4_K_M through the batch is llama-quantize's file (4333440 bytes).
	if st, err := os.Stat(filepath.Join(out, "kjv", "kjv-Q4_K_M.gguf")); err != nil || st.Size() != 4333440 {
		t.Errorf("kjv-Q4_K_M.gguf: %v %v", st, err)
	}

	// Rerunning the finished manifest rewrites nothing; the report covers all items.
	report := filepath.Join(dir, "report")
	stdout, err := runApp(t, "batch", "--json", "--report", report, manifest)
	if err != nil {
		t.Fatal(err)
	}
	for id, mt := range records(t, out) {
		if !mt.Equal(first[id]) {
			t.Errorf("%s: output rewritten on rerun", id)
		}
	}
	var rep struct {
		Items []struct {
			Model, Format, Type, Status string
			Bytes                       int64
			PPL                         *float64 `json:"ppl"`
			Delta                       *float64 `json:"ppl_delta_pct"`
			KLD                         *float64 `json:"kld"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout[strings.Index(stdout, "{"):]), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if len(rep.Items) != 6 {
		t.Fatalf("report has %d rows", len(rep.Items))
	}
	for _, r := range rep.Items {
		if r.Status != "skipped" || r.Bytes == 0 || r.PPL == nil || r.Delta == nil || r.KLD == nil || *r.KLD < 0 {
			t.Errorf("row %+v", r)
		}
		// 2 chunks of kjv_eval at ctx 128: bf16 ≈ 35.8 (llama-perplexity's running value after chunk 2).
		if r.PPL != nil && (*r.PPL < 30 || *r.PPL > 42) {
			t.Errorf("%s %s: ppl %v out of range", r.Model, r.Type, *r.PPL)
		}
	}
	for _, name := range []string{"report.json", "report.csv", "report.md", "report.svg"} {
		if st, err := os.Stat(filepath.Join(report, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	svg, _ := os.ReadFile(filepath.Join(report, "report.svg"))
	if err := xml.Unmarshal(svg, new(struct{ XMLName xml.Name })); err != nil {
		t.Errorf("report.svg does not parse: %v", err)
	}
}

func TestBatchResumesAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	gguf := filepath.Join(dir, "kjv-f16.gguf")
	if _, err := runApp(t, "convert", "--type", "f16", testref.Local(t, "kjv-llama"), gguf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	manifest := writeManifest(t, dir, gguf, out)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "batch", "-j", "2", manifest)
		cmd.Env = append(os.Environ(), "QB_RUN_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	// Kill it as soon as the second item is complete.
	deadline := time.Now().Add(3 * time.Minute)
	for len(records(t, out)) < 2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := records(t, out)
	if len(before) >= 6 {
		t.Fatalf("killed too late: %d items already done", len(before))
	}
	// Restart: it finishes the rest and redoes nothing finished.
	cmd = start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	after := records(t, out)
	if len(after) != 6 {
		t.Fatalf("after resume %d items complete, want 6", len(after))
	}
	for id, mt := range before {
		if !after[id].Equal(mt) {
			t.Errorf("%s was done again after the restart", id)
		}
	}
	// Nothing but outputs, records and base scores is left behind.
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(filepath.Base(p), ".tmp") {
			t.Errorf("leftover temporary file %s", p)
		}
		return nil
	})
}
