//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// temporaries lists the atomicfile temporaries under dir.
func temporaries(dir string) []string {
	var tmps []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".") && strings.Contains(fi.Name(), ".tmp") {
			tmps = append(tmps, p)
		}
		return nil
	})
	return tmps
}

// signalled runs quantbridge args in a child process (this test binary as
// quantbridge, see TestMain), sends it sig as soon as a temporary file
// appears under dir, i.e. while it is writing, and returns its exit status
// and stderr. A child that finished before the signal landed is run again
// (at most three times).
func signalled(t *testing.T, dir string, sig syscall.Signal, args ...string) (int, string) {
	t.Helper()
	for try := 0; try < 3; try++ {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "QB_RUN_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for len(temporaries(dir)) == 0 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("%q: no temporary file appeared", args)
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Signal(sig)
		cmd.Wait()
		code := cmd.ProcessState.ExitCode() // -1: killed by the signal
		if code == 0 {
			t.Logf("%q finished before %v arrived; again", args, sig)
			os.RemoveAll(dir)
			os.MkdirAll(dir, 0o755)
			continue
		}
		return code, stderr.String()
	}
	t.Fatalf("%q always finished before the signal", args)
	return 0, ""
}

// TestConvertSignals: SIGINT, SIGTERM and SIGHUP stop a conversion with
// status 130, 143 and 129 and remove its temporary output (SIGTERM exited
// 130; SIGHUP killed the process and left a full-size hidden temporary).
func TestConvertSignals(t *testing.T) {
	kjv := testref.Local(t, "kjv-llama")
	for _, c := range []struct {
		sig  syscall.Signal
		code int
		out  string
	}{
		{syscall.SIGINT, 130, "kjv.Q4_K_M.gguf"},
		{syscall.SIGTERM, 143, "kjv.Q4_K_M.gguf"},
		{syscall.SIGHUP, 129, "kjv.Q4_K_M.gguf"},
		{syscall.SIGHUP, 129, "kjv-mlx"},
	} {
		if c.sig == syscall.SIGHUP && signal.Ignored(syscall.SIGHUP) {
			// Under nohup the child inherits the ignored SIGHUP and, as
			// a conversion under nohup should, runs to the end.
			t.Logf("SIGHUP is ignored (nohup): %s case not run", c.out)
			continue
		}
		dir := t.TempDir()
		out := filepath.Join(dir, c.out)
		typ := "Q4_K_M"
		if !strings.HasSuffix(out, ".gguf") {
			typ = "INT4"
		}
		code, stderr := signalled(t, dir, c.sig, "convert", "-j", "1", "--type", typ, kjv, out)
		name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP"}[c.sig]
		if want := fmt.Sprintf("quantbridge: interrupted by %s; %s not written\n", name, out); code != c.code || stderr != want {
			t.Errorf("%v -> %s: exit %d, stderr %q; want %d, %q", c.sig, c.out, code, stderr, c.code, want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%v -> %s: left %v", c.sig, c.out, ents)
		}
	}
}

// TestBatchSignals: SIGTERM (and SIGINT) stop a batch with status 143
// (130); the item in progress is reported "interrupted", not "failed:
// context canceled", and its temporaries are removed.
func TestBatchSignals(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		os.MkdirAll(out, 0o755)
		manifest := filepath.Join(dir, "m.yaml")
		text := fmt.Sprintf("models:\n  - name: kjv\n    path: %s\ntargets:\n  - {format: gguf, type: Q4_K_M}\n  - {format: mlx, type: INT4}\noutput_dir: %s\n",
			testref.Local(t, "kjv-llama"), out)
		if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		report := filepath.Join(dir, "report")
		code, stderr := signalled(t, out, c.sig, "batch", "-j", "1", "--report", report, manifest)
		if code != c.code || !strings.Contains(stderr, "[1] kjv/gguf-Q4_K_M: interrupted\n") || strings.Contains(stderr, "failed") ||
			!strings.Contains(stderr, "quantbridge: interrupted by") {
			t.Errorf("%v: exit %d, stderr:\n%s", c.sig, code, stderr)
		}
		if tmps := temporaries(dir); len(tmps) != 0 {
			t.Errorf("%v: left %v", c.sig, tmps)
		}
		var rep struct {
			Items []struct{ Status, Error string }
		}
		data, err := os.ReadFile(filepath.Join(report, "report.json"))
		if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Items) != 2 ||
			rep.Items[0].Status != "interrupted" || rep.Items[0].Error != "" || rep.Items[1].Status != "pending" {
			t.Errorf("%v: report.json %s (%v)", c.sig, data, err)
		}
	}
}

// TestNohup: started with SIGHUP ignored (nohup), a conversion ignores a
// hangup and finishes, as it did before it handled SIGHUP.
func TestNohup(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "kjv.Q4_K_M.gguf")
	cmd := exec.Command("/bin/sh", "-c", `trap "" HUP; exec "$0" "$@"`, os.Args[0],
		"convert", "-j", "1", "--type", "Q4_K_M", testref.Local(t, "kjv-llama"), out)
	cmd.Env = append(os.Environ(), "QB_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(temporaries(dir)) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no temporary file appeared")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if st, err := os.Stat(out); err != nil || st.Size() != 4333440 {
		t.Errorf("output: %v, %v", st, err)
	}
}
