package batch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain runs a pulling worker when the test binary is started with
// QB_PULL_MANIFEST (by the tests below, as separate processes): the fake
// converter sleeps QB_PULL_SLEEP per item and appends "start|end ITEM PID
// UNIXNANO" lines to QB_PULL_LOG (O_APPEND: whole lines from all workers).
func TestMain(m *testing.M) {
	if p := os.Getenv("QB_PULL_MANIFEST"); p != "" {
		os.Exit(pullWorker(p))
	}
	os.Exit(m.Run())
}

func pullWorker(manifest string) int {
	m, err := ParseManifest(manifest)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sleep, _ := time.ParseDuration(os.Getenv("QB_PULL_SLEEP"))
	lease, _ := time.ParseDuration(os.Getenv("QB_PULL_LEASE"))
	logf, err := os.OpenFile(os.Getenv("QB_PULL_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	note := func(what string, it Item) {
		fmt.Fprintf(logf, "%s %s %d %d\n", what, it.ID(), os.Getpid(), time.Now().UnixNano())
	}
	f := newFake()
	holder := Self()
	if h := os.Getenv("QB_PULL_HOST"); h != "" {
		holder.Host = h // as if on another machine: only the lease can prove it dead
	}
	_, err = Run(context.Background(), m, Options{
		Pull: true, Lease: lease, Holder: holder, Log: os.Stderr,
		Convert: func(ctx context.Context, it Item, jobs int) (ConvertResult, error) {
			note("start", it)
			select {
			case <-time.After(sleep):
			case <-ctx.Done():
				return ConvertResult{}, context.Cause(ctx)
			}
			r, err := f.convert(ctx, it, jobs)
			note("end", it)
			return r, err
		},
		Evaluate: f.eval,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type worker struct {
	cmd    *exec.Cmd
	stderr strings.Builder
}

func startWorker(t *testing.T, manifest, logPath string, env ...string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	w.cmd.Env = append(os.Environ(), append([]string{"QB_PULL_MANIFEST=" + manifest, "QB_PULL_LOG=" + logPath}, env...)...)
	w.cmd.Stderr = &w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

type logLine struct {
	what, item string
	pid        int
	at         time.Time
}

func readPullLog(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l logLine
		var ns int64
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d %d", &l.what, &l.item, &l.pid, &ns); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		l.at = time.Unix(0, ns)
		out = append(out, l)
	}
	return out
}

// ends counts the finished conversions per item.
func ends(lines []logLine) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		if l.what == "end" {
			n[l.item]++
		}
	}
	return n
}

func checkAllComplete(t *testing.T, m *Manifest) {
	t.Helper()
	for _, it := range m.Items() {
		if !itemComplete(m, it) {
			t.Errorf("%s: not complete", it.ID())
		}
		if gens, _ := claimGens(it.Output); len(gens) != 0 {
			t.Errorf("%s: claims left behind: %v", it.ID(), gens)
		}
	}
}

func writeEnvManifest(t *testing.T) (*Manifest, string) {
	t.Helper()
	dir, m := setup(t)
	return m, filepath.Join(dir, "m.yaml")
}

func TestPullThreeWorkersEachItemOnce(t *testing.T) {
	m, manifest := writeEnvManifest(t)
	logPath := filepath.Join(t.TempDir(), "log")
	var ws []*worker
	for range 3 {
		ws = append(ws, startWorker(t, manifest, logPath, "QB_PULL_SLEEP=150ms", "QB_PULL_LEASE=5s"))
	}
	for i, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, w.stderr.String())
		}
	}
	var logs string
	for _, w := range ws {
		logs += w.stderr.String()
	}
	// Nothing was complete when they began: no item is "skipped", each is
	// "done" by one worker (the others see it done by another).
	if s, d := strings.Count(logs, ": skipped -> "), strings.Count(logs, ": done -> "); s != 0 || d != 6 {
		t.Errorf("workers logged %d skipped and %d done items, want 0 and 6:\n%s", s, d, logs)
	}
	lines := readPullLog(t, logPath)
	n := ends(lines)
	pids := map[int]bool{}
	for _, l := range lines {
		pids[l.pid] = true
	}
	for _, it := range m.Items() {
		if n[it.ID()] != 1 {
			t.Errorf("%s converted %d times, want 1", it.ID(), n[it.ID()])
		}
	}
	if len(lines) != 12 {
		t.Errorf("%d log lines, want 6 starts and 6 ends:\n%v", len(lines), lines)
	}
	if len(pids) < 2 {
		t.Errorf("all items done by %d worker(s); the others pulled nothing", len(pids))
	}
	checkAllComplete(t, m)

	// A fourth worker finds everything done and does nothing.
	w := startWorker(t, manifest, logPath, "QB_PULL_SLEEP=0s")
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("fourth worker: %v\n%s", err, w.stderr.String())
	}
	if got := len(readPullLog(t, logPath)); got != 12 {
		t.Errorf("rerun converted again: %d log lines", got)
	}
	if c := strings.Count(w.stderr.String(), ": skipped -> "); c != 6 {
		t.Errorf("rerun skipped %d items, want 6:\n%s", c, w.stderr.String())
	}
}

// killMidItem starts a worker, waits until it is converting its first
// item, and SIGKILLs it. It returns that item and the time of the kill.
func killMidItem(t *testing.T, manifest, logPath string, env ...string) (string, time.Time) {
	t.Helper()
	w := startWorker(t, manifest, logPath, env...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lines := readPullLogIfAny(t, logPath); len(lines) > 0 {
			w.cmd.Process.Signal(syscall.SIGKILL)
			w.cmd.Wait()
			return lines[0].item, time.Now()
		}
		if time.Now().After(deadline) {
			w.cmd.Process.Kill()
			t.Fatalf("worker started nothing:\n%s", w.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPullLogIfAny(t *testing.T, path string) []logLine {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return readPullLog(t, path)
}

func TestPullTakeoverAfterLease(t *testing.T) {
	m, manifest := writeEnvManifest(t)
	logPath := filepath.Join(t.TempDir(), "log")
	const lease = 2 * time.Second
	// The victim claims as another host: its pid proves nothing here, only
	// the lease can expire.
	item, killed := killMidItem(t, manifest, logPath, "QB_PULL_SLEEP=1h", "QB_PULL_LEASE=2s", "QB_PULL_HOST=elsewhere.example")
	a := startWorker(t, manifest, logPath, "QB_PULL_SLEEP=50ms", "QB_PULL_LEASE=2s")
	b := startWorker(t, manifest, logPath, "QB_PULL_SLEEP=50ms", "QB_PULL_LEASE=2s")
	for _, w := range []*worker{a, b} {
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("worker: %v\n%s", err, w.stderr.String())
		}
	}
	lines := readPullLog(t, logPath)
	n := ends(lines)
	for _, it := range m.Items() {
		if n[it.ID()] != 1 {
			t.Errorf("%s converted %d times, want 1", it.ID(), n[it.ID()])
		}
	}
	// The dead worker's last renewal was at most lease/3 before the kill:
	// its item may not be taken before lease - lease/3 after the kill.
	var starts []time.Time
	for _, l := range lines {
		if l.what == "start" && l.item == item {
			starts = append(starts, l.at)
		}
	}
	if len(starts) != 2 {
		t.Fatalf("%s started %d times, want 2 (victim, taker)", item, len(starts))
	}
	if wait := starts[1].Sub(killed); wait < lease-lease/3 || wait > lease+10*time.Second {
		t.Errorf("%s taken over %v after the kill, want about the lease (%v)", item, wait, lease)
	}
	if !strings.Contains(a.stderr.String()+b.stderr.String(), "claimed by elsewhere.example pid") {
		t.Errorf("no worker reported the dead claim:\n%s\n%s", a.stderr.String(), b.stderr.String())
	}
	checkAllComplete(t, m)
}

func TestClaimTakeoverHasOneWinner(t *testing.T) {
	_, m := setup(t)
	it := m.Items()[0]
	dead := Holder{Host: "elsewhere", PID: 1}
	c, held, err := tryClaim(it, dead, time.Second)
	if err != nil || c == nil || held != nil {
		t.Fatalf("first claim: %v %v %v", c, held, err)
	}
	// A live claim is not taken.
	me := Self()
	if c2, held, err := tryClaim(it, me, time.Second); c2 != nil || held == nil || err != nil || held.Holder != dead {
		t.Fatalf("live claim taken: %v %+v %v", c2, held, err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(c.path, old, old); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		wins []*claim
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			if c, _, err := tryClaim(it, me, time.Second); err != nil {
				t.Error(err)
			} else if c != nil {
				mu.Lock()
				wins = append(wins, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d workers took the dead claim over, want 1", len(wins))
	}
	if wins[0].gen != 1 {
		t.Errorf("takeover generation %d, want 1", wins[0].gen)
	}
	// The dead holder's renewal finds the claim lost.
	if c.holding() {
		t.Error("the dead holder still holds its claim after the takeover")
	}
	lost := make(chan struct{})
	c.keep(30*time.Millisecond, func() { close(lost) })
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Error("renewal did not notice the takeover")
	}
	if !c.release() {
		t.Error("release of a lost claim reports it held")
	}
	if wins[0].release() {
		t.Error("the winner's release reports its claim lost")
	}
	if gens, _ := claimGens(it.Output); len(gens) != 0 {
		t.Errorf("claims left after release: %v", gens)
	}
}

func TestClaimGensIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m-Q8_0.gguf")
	for _, name := range []string{"m-Q8_0.gguf.qb.claim.3", "m-Q8_0.gguf.qb.claim.10", "m-Q8_0.gguf.qb.claim.x",
		"m-Q8_0.gguf.qb.claim.01", "m-Q8_0.gguf.qb.claim.-1", "other.gguf.qb.claim.0", "m-Q8_0.gguf.qb.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gens, err := claimGens(out)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gens) != "[3 10]" {
		t.Errorf("claimGens = %v, want [3 10]", gens)
	}
}

// An interrupted worker (SIGTERM: its context ends) releases the item it
// held, so the others take it at once rather than after the lease.
func TestPullInterruptReleasesClaim(t *testing.T) {
	_, m := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake()
	outs, err := Run(ctx, m, Options{
		Pull: true, Lease: time.Hour,
		Convert: func(ctx context.Context, it Item, jobs int) (ConvertResult, error) {
			if it.Index == 1 {
				if gens, _ := claimGens(it.Output); fmt.Sprint(gens) != "[0]" {
					t.Errorf("%s: claims %v while converting, want [0]", it.ID(), gens)
				}
				cancel()
				<-ctx.Done()
				return ConvertResult{}, ctx.Err()
			}
			return f.convert(ctx, it, jobs)
		},
		Evaluate: f.eval,
	})
	if err != context.Canceled {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, o.Item.ID()+" "+o.Status)
	}
	if want := "[a/gguf-Q8_0 done a/gguf-Q4_K_M interrupted]"; fmt.Sprint(got) != want {
		t.Errorf("outcomes %v, want %s", got, want)
	}
	for _, it := range m.Items() {
		if gens, _ := claimGens(it.Output); len(gens) != 0 {
			t.Errorf("%s: claims %v left after the interruption", it.ID(), gens)
		}
	}
}
