package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/internal/testref"
)

func runPPLJSON(t *testing.T, args ...string) (pplJSON, error) {
	t.Helper()
	out, err := runApp(t, append([]string{"ppl", "--json", "-c", "128", "--chunks", "2", "-t", "2"}, args...)...)
	var r pplJSON
	if i := strings.Index(out, "{"); i >= 0 {
		if jerr := json.Unmarshal([]byte(out[i:]), &r); jerr != nil {
			t.Fatalf("--json output: %v\n%s", jerr, out)
		}
	}
	return r, err
}

func TestPPLCommand(t *testing.T) {
	text := testref.Local(t, "kjv_eval.txt")
	hf := testref.Local(t, "kjv-llama")
	q2 := filepath.Join(t.TempDir(), "kjv.Q2_K.gguf")
	if _, err := runApp(t, "convert", "--type", "Q2_K", hf, q2); err != nil {
		t.Fatal(err)
	}

	// Two chunks at ctx 128 of the bf16 checkpoint: llama-perplexity prints
	// [1]54.1315,[2]35.7765 for this model (reference.json, F32).
	r, err := runPPLJSON(t, "-f", text, hf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ctx != 128 || r.Chunks != 2 || r.TokensScored != 126 || len(r.Running) != 2 || r.TokensPerSecond <= 0 ||
		math.Abs(r.PPL-35.7765)/35.7765 > 1e-4 || math.Abs(r.Running[0]-54.1315)/54.1315 > 1e-4 || r.PPLStderr <= 0 {
		t.Errorf("bf16: %+v", r)
	}

	// KL-divergence against the base model.
	k, err := runPPLJSON(t, "-f", text, "--kl-base", hf, q2)
	if err != nil {
		t.Fatal(err)
	}
	if k.KLD == nil || *k.KLD <= 0 || *k.KLD > 1 || k.Top1Agreement == nil || *k.Top1Agreement < 0.5 || *k.Top1Agreement > 1 || k.PPLRatio == nil || *k.PPLRatio <= 1 {
		t.Errorf("kl: %+v", k)
	}

	// Gates: exit status 1 with a message when exceeded, success otherwise.
	gates := []struct {
		args []string
		fail string
	}{
		{[]string{"--max-ppl", "30", hf}, "exceeds --max-ppl 30"},
		{[]string{"--max-ppl", "40", hf}, ""},
		{[]string{"--max-ppl-increase", "0.5", "--baseline", hf, q2}, "--max-ppl-increase"},
		{[]string{"--max-ppl-increase", "50", "--baseline", hf, q2}, ""},
	}
	for _, g := range gates {
		_, err := runPPLJSON(t, append([]string{"-f", text}, g.args...)...)
		var ee *exitError
		switch {
		case g.fail == "" && err != nil:
			t.Errorf("%v: %v", g.args, err)
		case g.fail != "" && (!errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), g.fail)):
			t.Errorf("%v: err %v, want exit status 1 mentioning %q", g.args, err, g.fail)
		}
	}

	// Errors name the problem.
	short := filepath.Join(t.TempDir(), "short.txt")
	os.WriteFile(short, []byte("In the beginning God created the heaven and the earth."), 0o644)
	if _, err := runPPLJSON(t, "-f", short, hf); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short text: %v", err)
	}
	if _, err := runPPLJSON(t, "--max-ppl-increase", "5", "-f", text, hf); err == nil || !strings.Contains(err.Error(), "--baseline") {
		t.Errorf("--max-ppl-increase without --baseline: %v", err)
	}
}
