//go:build linux

package batch

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestPullTakeoverSameHostAtOnce(t *testing.T) {
	m, manifest := writeEnvManifest(t)
	logPath := filepath.Join(t.TempDir(), "log")
	// A lease of an hour: only the holder's missing process frees the item.
	item, killed := killMidItem(t, manifest, logPath, "QB_PULL_SLEEP=1h", "QB_PULL_LEASE=1h")
	w := startWorker(t, manifest, logPath, "QB_PULL_SLEEP=10ms", "QB_PULL_LEASE=1h")
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("worker: %v\n%s", err, w.stderr.String())
	}
	lines := readPullLog(t, logPath)
	for _, l := range lines {
		if l.what == "start" && l.item == item && l.pid == w.cmd.Process.Pid {
			if d := l.at.Sub(killed); d > 10*time.Second {
				t.Errorf("%s taken over after %v", item, d)
			}
		}
	}
	n := ends(lines)
	for _, it := range m.Items() {
		if n[it.ID()] != 1 {
			t.Errorf("%s converted %d times, want 1", it.ID(), n[it.ID()])
		}
	}
	checkAllComplete(t, m)
}

func TestHolderGone(t *testing.T) {
	self := Self()
	if self.Start == 0 || self.Boot == "" || self.PIDNS == "" {
		t.Fatalf("Self() = %+v: no start time, boot id or PID namespace", self)
	}
	// A child that exited: its pid is gone (or, if reused, has another start time).
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	exited := self
	exited.PID = cmd.Process.Pid
	tests := []struct {
		name string
		h    Holder
		want bool
	}{
		{"itself", self, false},
		{"pid reused by another process", Holder{self.Host, self.PID, self.Start + 1, self.Boot, self.PIDNS}, true},
		{"exited process", exited, true},
		{"other host", Holder{"elsewhere", exited.PID, 1, self.Boot, self.PIDNS}, false},
		// A host name shared by containers (or a reboot) proves nothing: the lease decides.
		{"other PID namespace", Holder{self.Host, exited.PID, 1, self.Boot, "pid:[1]"}, false},
		{"earlier boot", Holder{self.Host, exited.PID, 1, "00000000-0000-0000-0000-000000000000", self.PIDNS}, false},
		{"unparsed claim", Holder{}, false},
		{"no start time recorded", Holder{self.Host, self.PID, 0, self.Boot, self.PIDNS}, false},
	}
	for _, tt := range tests {
		if got := self.gone(tt.h); got != tt.want {
			t.Errorf("%s: gone(%+v) = %v, want %v", tt.name, tt.h, got, tt.want)
		}
	}
}
