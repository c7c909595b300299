//go:build slurm

// The Slurm test needs a running cluster on this machine (scripts/slurm-local.sh
// start, as .ci/run does) and submits docs/slurm-array.sh to it:
//
//	go test -tags slurm -run Slurm -v ./cmd/quantbridge

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quantbridge/quantbridge/internal/testref"
)

type slurmRun struct {
	t        *testing.T
	dir, bin string
	script   string
}

func newSlurmRun(t *testing.T) *slurmRun {
	for _, tool := range []string{"sbatch", "squeue", "scontrol", "scancel", "sinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: start a cluster with scripts/slurm-local.sh start", tool)
		}
	}
	if out, err := exec.Command("sinfo", "-h", "-o", "%a %t").CombinedOutput(); err != nil || !strings.Contains(string(out), "up") {
		t.Fatalf("no Slurm partition up (scripts/slurm-local.sh start): %v %s", err, out)
	}
	r := &slurmRun{t: t, dir: t.TempDir(), script: filepath.Join(testref.Root(t), "docs", "slurm-array.sh")}
	// The job runs quantbridge from PATH: a binary built from this tree.
	r.bin = filepath.Join(r.dir, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(r.bin, "quantbridge"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return r
}

func (r *slurmRun) env(extra ...string) []string {
	return append(append(os.Environ(), "PATH="+r.bin+":"+os.Getenv("PATH")), extra...)
}

// submit sbatches docs/slurm-array.sh on manifest as a 3-task array, its
// task logs at logs/NAME-TASK.log, and returns the job id. With wait, it
// returns when the job ended, with sbatch's error when a task failed.
func (r *slurmRun) submit(name, manifest string, wait bool, env ...string) (string, error) {
	r.t.Helper()
	args := []string{"--parsable", "--array=0-2", "--cpus-per-task=1", "--mem=2G", "--time=15",
		"--job-name=qb-" + name, "--output=" + filepath.Join(r.dir, "logs", name+"-%a.log")}
	if wait {
		args = append(args, "--wait")
	}
	args = append(args, r.script, manifest)
	os.MkdirAll(filepath.Join(r.dir, "logs"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sbatch", args...)
	cmd.Env, cmd.Dir = r.env(env...), r.dir
	out, err := cmd.Output()
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if id == "" && err == nil {
		err = fmt.Errorf("sbatch printed no job id")
	}
	r.t.Logf("sbatch %s: job %s (%v)", strings.Join(args, " "), id, err)
	return id, err
}

// logs returns the task logs of a submission by task id.
func (r *slurmRun) logs(name string) map[int]string {
	out := map[int]string{}
	for i := range 3 {
		if data, err := os.ReadFile(filepath.Join(r.dir, "logs", fmt.Sprintf("%s-%d.log", name, i))); err == nil {
			out[i] = string(data)
		}
	}
	return out
}

func (r *slurmRun) dumpLogs(name string) {
	for i, l := range r.logs(name) {
		r.t.Logf("--- %s task %d:\n%s", name, i, l)
	}
}

var taskStateRE = regexp.MustCompile(`ArrayTaskId=(\d+) .*JobState=(\S+) .*ExitCode=(\S+)`)

// taskStates returns "STATE EXIT" per array task from scontrol (the
// cluster has no accounting database for sacct; MinJobAge keeps finished
// jobs in scontrol for 10 minutes).
func taskStates(t *testing.T, job string) map[string]string {
	t.Helper()
	out, err := exec.Command("scontrol", "-o", "show", "job", job).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v\n%s", job, err, out)
	}
	states := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := taskStateRE.FindStringSubmatch(line); m != nil {
			states[m[1]] = m[2] + " " + m[3]
		}
	}
	return states
}

// waitGone polls squeue until the job has left the queue.
func waitGone(t *testing.T, job string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		out, err := exec.Command("squeue", "-h", "-j", job, "-o", "%i %T").Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			exec.Command("scancel", job).Run()
			t.Fatalf("job %s still queued after 10 minutes: %s", job, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// countLines counts, per item id, the log lines "[k] ID: WHAT".
func countLines(logs map[int]string, what string) map[string]int {
	re := regexp.MustCompile(`(?m)^\[\d+\] (\S+): ` + regexp.QuoteMeta(what))
	n := map[string]int{}
	for _, l := range logs {
		for _, m := range re.FindAllStringSubmatch(l, -1) {
			n[m[1]]++
		}
	}
	return n
}

var slurmItems = []string{"kjv/gguf-Q8_0", "kjv/gguf-Q4_K_M", "kjv/mlx-INT4-g64", "kjv-f16/gguf-Q8_0", "kjv-f16/gguf-Q4_K_M", "kjv-f16/mlx-INT4-g64"}

// checkReport builds the --report-only merge of all tasks' records and
// checks its rows.
func checkReport(t *testing.T, manifest, reportDir string) {
	t.Helper()
	stdout, err := runApp(t, "batch", "--report-only", "--json", "--report", reportDir, manifest)
	if err != nil {
		t.Fatalf("--report-only: %v", err)
	}
	var rep struct {
		Items []struct {
			Model, Format, Type, Status string
			Bytes                       int64
			PPL                         *float64 `json:"ppl"`
			KLD                         *float64 `json:"kld"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout[strings.Index(stdout, "{"):]), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if len(rep.Items) != len(slurmItems) {
		t.Fatalf("report has %d rows, want %d", len(rep.Items), len(slurmItems))
	}
	for _, row := range rep.Items {
		// 2 chunks of kjv_eval at ctx 128: ≈ 35.8 for bf16 (TestBatchEndToEnd).
		if row.Status != "done" || row.Bytes == 0 || row.PPL == nil || *row.PPL < 30 || *row.PPL > 42 || row.KLD == nil || *row.KLD < 0 {
			t.Errorf("report row %+v", row)
		}
	}
	for _, name := range []string{"report.json", "report.csv", "report.md", "report.svg"} {
		if st, err := os.Stat(filepath.Join(reportDir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func checkOutputs(t *testing.T, out string) map[string]time.Time {
	t.Helper()
	recs := records(t, out)
	for _, id := range slurmItems {
		if _, ok := recs[id]; !ok {
			t.Errorf("%s: no complete record (converted and scored)", id)
		}
	}
	// HF → Q4_K_M through the batch is llama-quantize's file (4333440 bytes).
	if st, err := os.Stat(filepath.Join(out, "kjv", "kjv-Q4_K_M.gguf")); err != nil || st.Size() != 4333440 {
		t.Errorf("kjv-Q4_K_M.gguf: %v %v", st, err)
	}
	for _, id := range slurmItems {
		model, _, _ := strings.Cut(id, "/")
		if _, err := runApp(t, "inspect", filepath.Join(out, model, map[string]string{
			"gguf-Q8_0": model + "-Q8_0.gguf", "gguf-Q4_K_M": model + "-Q4_K_M.gguf", "mlx-INT4-g64": model + "-mlx-int4-g64",
		}[strings.TrimPrefix(id, model+"/")])); err != nil {
			t.Errorf("%s: output does not open: %v", id, err)
		}
	}
	claims, _ := filepath.Glob(filepath.Join(out, "*", "*.qb.claim.*"))
	if len(claims) > 0 {
		t.Errorf("claims left behind: %v", claims)
	}
	return recs
}

// TestSlurmArray: docs/slurm-array.sh on a one-node Slurm cluster, 2 models
// × 3 targets with eval, 3 array tasks: first in fixed shards, then pulling
// items; then one task is scancelled mid-item and the job resubmitted.
func TestSlurmArray(t *testing.T) {
	r := newSlurmRun(t)
	gguf := filepath.Join(r.dir, "kjv-f16.gguf")
	if _, err := runApp(t, "convert", "--type", "f16", testref.Local(t, "kjv-llama"), gguf); err != nil {
		t.Fatal(err)
	}

	t.Run("shard", func(t *testing.T) {
		r.t = t
		dir := filepath.Join(r.dir, "shard")
		os.MkdirAll(dir, 0o755)
		out := filepath.Join(dir, "out")
		manifest := writeManifest(t, dir, gguf, out)
		job, err := r.submit("shard", manifest, true, "QB_BATCH_MODE=shard")
		if err != nil {
			r.dumpLogs("shard")
			t.Fatalf("sbatch --wait: %v", err)
		}
		logs := r.logs("shard")
		for i := range 3 {
			if want := fmt.Sprintf("2 of 6 items in shard %d/3", i); !strings.Contains(logs[i], want) {
				t.Errorf("task %d: log lacks %q:\n%s", i, want, logs[i])
			}
		}
		done := countLines(logs, "done -> ")
		for _, id := range slurmItems {
			if done[id] != 1 {
				t.Errorf("%s done %d times, want 1", id, done[id])
			}
		}
		for task, st := range taskStates(t, job) {
			if st != "COMPLETED 0:0" {
				t.Errorf("task %s: %s", task, st)
			}
		}
		checkOutputs(t, out)
		checkReport(t, manifest, filepath.Join(dir, "report"))
	})

	t.Run("pull", func(t *testing.T) {
		r.t = t
		dir := filepath.Join(r.dir, "pull")
		os.MkdirAll(dir, 0o755)
		out := filepath.Join(dir, "out")
		manifest := writeManifest(t, dir, gguf, out)
		job, err := r.submit("pull", manifest, true)
		if err != nil {
			r.dumpLogs("pull")
			t.Fatalf("sbatch --wait: %v", err)
		}
		logs := r.logs("pull")
		if len(logs) != 3 {
			t.Fatalf("%d task logs, want 3", len(logs))
		}
		for i, l := range logs {
			if !strings.Contains(l, "pulling from 6 of 6 items") {
				t.Errorf("task %d did not pull:\n%s", i, l)
			}
		}
		done, claimed := countLines(logs, "done -> "), countLines(logs, "claimed (")
		for _, id := range slurmItems {
			if done[id] != 1 || claimed[id] != 1 {
				t.Errorf("%s claimed %d times and done %d times, want 1 and 1", id, claimed[id], done[id])
			}
		}
		states := taskStates(t, job)
		if len(states) != 3 {
			t.Errorf("scontrol shows %d tasks: %v", len(states), states)
		}
		for task, st := range states {
			if st != "COMPLETED 0:0" {
				t.Errorf("task %s: %s", task, st)
			}
		}
		checkOutputs(t, out)
		checkReport(t, manifest, filepath.Join(dir, "report"))

		// Redo one model: its 3 items are pulled again; one task is
		// scancelled while it works on an item.
		keep := records(t, out)
		if err := os.RemoveAll(filepath.Join(out, "kjv-f16")); err != nil {
			t.Fatal(err)
		}
		job, err = r.submit("cancel", manifest, false)
		if err != nil {
			t.Fatal(err)
		}
		victim, item := -1, ""
		workRE := regexp.MustCompile(`(?m)^\[\d+\] (\S+): claimed \(`)
		deadline := time.Now().Add(5 * time.Minute)
		for victim < 0 {
			for task, l := range r.logs("cancel") {
				if m := workRE.FindAllStringSubmatch(l, -1); len(m) > 0 {
					last := m[len(m)-1][1]
					if !strings.Contains(l, "] "+last+": done -> ") {
						victim, item = task, last
						break
					}
				}
			}
			if time.Now().After(deadline) {
				exec.Command("scancel", job).Run()
				r.dumpLogs("cancel")
				t.Fatal("no task started an item")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if out, err := exec.Command("scancel", fmt.Sprintf("%s_%d", job, victim)).CombinedOutput(); err != nil {
			t.Fatalf("scancel: %v %s", err, out)
		}
		t.Logf("scancelled task %d while it worked on %s", victim, item)
		waitGone(t, job)
		states = taskStates(t, job)
		if !strings.HasPrefix(states[fmt.Sprint(victim)], "CANCELLED") {
			t.Errorf("scancelled task %d: %s", victim, states[fmt.Sprint(victim)])
		}
		cancelLogs := r.logs("cancel")
		if !strings.Contains(cancelLogs[victim], "] "+item+": interrupted") {
			t.Errorf("task %d's log does not show %s interrupted:\n%s", victim, item, cancelLogs[victim])
		}

		// Resubmitted, the job completes; nothing finished is redone.
		if _, err := r.submit("resubmit", manifest, true); err != nil {
			r.dumpLogs("cancel")
			r.dumpLogs("resubmit")
			t.Fatalf("resubmitted job: %v", err)
		}
		all := map[int]string{}
		for i, l := range cancelLogs {
			all[i] = l
		}
		for i, l := range r.logs("resubmit") {
			all[10+i] = l
		}
		done = countLines(all, "done -> ")
		after := checkOutputs(t, out)
		for _, id := range slurmItems {
			want := 1
			if strings.HasPrefix(id, "kjv/") {
				want = 0 // finished before: not redone
				if !after[id].Equal(keep[id]) {
					t.Errorf("%s: output rewritten", id)
				}
			}
			if done[id] != want {
				t.Errorf("%s done %d times after the cancel and resubmission, want %d", id, done[id], want)
			}
		}
		checkReport(t, manifest, filepath.Join(dir, "report2"))
		r.dumpLogs("cancel") // shown with -v or on failure
		if t.Failed() {
			r.dumpLogs("resubmit")
		}
	})
}
