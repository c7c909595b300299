//go:build unix

package convert

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNonRegularInput: a named pipe is refused at once (reading it blocked
// the conversion forever).
func TestNonRegularInput(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "in.gguf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{filepath.Join(dir, "out.gguf"), filepath.Join(dir, "out")} {
		done := make(chan error, 1)
		go func() {
			var target Target = MLXTarget{Bits: 4}
			if strings.HasSuffix(out, ".gguf") {
				target = GGUFTarget{FileType: mustFT(t, "Q8_0")}
			}
			_, err := Convert(context.Background(), fifo, out, Options{Target: target})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != "input: "+fifo+" is a named pipe, not a regular file" {
				t.Errorf("-> %s: %v", out, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("-> %s: still blocked on the pipe after 10s", out)
		}
	}
}
