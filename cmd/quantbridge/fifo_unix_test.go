//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNamedPipeInput: a named pipe as MODEL is refused at once (inspect
// blocked forever on it).
func TestNamedPipeInput(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "model.gguf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"inspect", fifo}, {"tokenize", fifo, fifo}, {"ppl", "-f", fifo, fifo}, {"convert", fifo, fifo + ".out.gguf"}} {
		done := make(chan string, 1)
		go func() {
			_, stderr, code := runMain(t, cmd...)
			if code != 1 {
				stderr += " (exit status not 1)"
			}
			done <- stderr
		}()
		select {
		case stderr := <-done:
			if !strings.Contains(stderr, fifo+" is a named pipe, not a regular file\n") || strings.Contains(stderr, "exit status") {
				t.Errorf("%s: %q", cmd[0], stderr)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: blocked on the named pipe", cmd[0])
		}
	}
}
