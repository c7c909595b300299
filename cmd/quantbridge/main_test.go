package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

// runMain runs the command line as main does (same app, same exit
// statuses) and returns what it printed and its status.
func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"quantbridge"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestVersionHelpUnknown(t *testing.T) {
	for _, c := range []struct {
		args             []string
		code             int
		stdout, stderr   string // substrings ("" for none)
		exactOut, exactE bool
	}{
		{[]string{"--version"}, 0, "quantbridge version devel\n", "", true, true},
		{[]string{"version"}, 0, "quantbridge version devel\n", "", true, true},
		{[]string{"help", "convert"}, 0, "quantbridge convert - convert or quantize a checkpoint", "", false, true},
		{[]string{"help", "ppl"}, 0, "--max-ppl-increase PCT", "", false, true},
		{[]string{"help"}, 0, "COMMANDS:", "", false, true},
		{[]string{"--help"}, 0, "COMMANDS:", "", false, true},
		{[]string{"-h"}, 0, "COMMANDS:", "", false, true},
		{[]string{"help", "frob"}, 2, "", `quantbridge: help: unknown command "frob"`, true, false},
		{[]string{"frob"}, 2, "", `quantbridge: unknown command "frob"`, true, false},
		{[]string{"--frob"}, 2, "", "flag provided but not defined: -frob", false, false},
		{[]string{"version", "x"}, 2, "", "version: takes no arguments", true, false},
	} {
		stdout, stderr, code := runMain(t, c.args...)
		okOut := stdout == c.stdout || (!c.exactOut && strings.Contains(stdout, c.stdout))
		okErr := stderr == c.stderr || (!c.exactE && strings.Contains(stderr, c.stderr))
		if code != c.code || !okOut || !okErr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
				c.args, code, stdout, stderr, c.code, c.stdout, c.stderr)
		}
	}
}

// TestCountFlags: counts that mean nothing are usage errors (exit 2), not
// silently replaced by defaults (-c 0 ran with 512).
func TestCountFlags(t *testing.T) {
	kjv, text := testref.Local(t, "kjv-llama"), testref.Local(t, "kjv_eval.txt")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ppl", "-c", "0", "-f", text, kjv}, "--ctx 0: want a context of at least 4 tokens"},
		{[]string{"ppl", "-c", "-5", "-f", text, kjv}, "--ctx -5"},
		{[]string{"ppl", "-t", "-1", "-f", text, kjv}, "--threads -1: want a positive number"},
		{[]string{"ppl", "--chunks", "-1", "-f", text, kjv}, "--chunks -1: want a positive number"},
		{[]string{"batch", "-j", "-2", "m.yaml"}, "--jobs -2"},
	} {
		_, stderr, code := runMain(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
	}
	// A context beyond the model's training context is scored, with a warning.
	stdout, stderr, code := runMain(t, "ppl", "-c", "1024", "--chunks", "1", "-t", "2", "-f", text, kjv)
	if code != 0 || !strings.Contains(stdout, "Final estimate") ||
		!strings.Contains(stderr, "quantbridge: warning: "+kjv+": model was trained on only 512 context tokens (--ctx 1024)\n") {
		t.Errorf("ppl -c 1024: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if _, stderr, _ := runMain(t, "ppl", "-c", "128", "--chunks", "1", "-t", "2", "-f", text, kjv); strings.Contains(stderr, "warning") {
		t.Errorf("ppl -c 128 warned: %s", stderr)
	}
}

// TestErrorNamesPathOnce: an error names the file it is about once
// ("X: X: unsupported architecture" before).
func TestErrorNamesPathOnce(t *testing.T) {
	vocab := testref.Local(t, "real", "gguf", "ggml-vocab-gpt-2.gguf")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		path string
	}{
		{[]string{"ppl", "-f", testref.Local(t, "kjv_eval.txt"), vocab}, vocab},
		{[]string{"convert", testref.Local(t, "kjv-llama"), filepath.Join(file, "x.gguf")}, filepath.Join(file, "x.gguf")},
	} {
		_, stderr, code := runMain(t, c.args...)
		if code != 1 || strings.Count(stderr, c.path) != 1 {
			t.Errorf("%q: exit %d, %q; want exit 1 naming %s once", c.args, code, stderr, c.path)
		}
	}
}

// TestQuickStartTwice: the README's quick start, run twice, succeeds both
// times: the second convert replaces its GGUF output as llama-quantize
// would (it used to refuse, so the ppl after && never ran).
func TestQuickStartTwice(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out", "kjv-llama.Q4_K_M.gguf")
	for i := 0; i < 2; i++ {
		if _, stderr, code := runMain(t, "convert", testref.Local(t, "kjv-llama"), out, "--type", "Q4_K_M", "-j", "2"); code != 0 {
			t.Fatalf("run %d: convert exit %d: %s", i+1, code, stderr)
		}
		stdout, stderr, code := runMain(t, "ppl", "-c", "128", "--chunks", "2", "-t", "2", "-f", testref.Local(t, "kjv_eval.txt"), out)
		if code != 0 || !strings.Contains(stdout, "Final estimate: PPL = ") {
			t.Fatalf("run %d: ppl exit %d: %s %s", i+1, code, stdout, stderr)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Size() != 4333440 { // llama-quantize's kjv Q4_K_M
		t.Errorf("output: %v %v", st, err)
	}
}
