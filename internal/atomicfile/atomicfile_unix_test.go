//go:build unix

package atomicfile

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveStale: a temporary stays while the process writing it lives
// and is removed once that process has been killed.
func TestRemoveStale(t *testing.T) {
	for _, base := range []string{"out.gguf", "outdir"} {
		dir := t.TempDir()
		final := filepath.Join(dir, base)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_HOLD="+final)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("child: %v", err)
		}
		tmp := strings.TrimSpace(line)
		if got := RemoveStale(final); len(got) != 0 {
			t.Errorf("%s: removed %v while its writer lives", base, got)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := os.Stat(tmp); err != nil {
			t.Fatalf("%s: the killed writer's temporary is gone already: %v", base, err)
		}
		if got := RemoveStale(final); len(got) != 1 || got[0] != tmp {
			t.Errorf("%s: after the kill RemoveStale removed %v, want [%s]", base, got, tmp)
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Errorf("%s: left %v", base, names)
		}
	}
}
