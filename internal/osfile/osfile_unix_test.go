//go:build unix

package osfile

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestNotRegular: a named pipe or a device is refused before it is opened
// (opening a pipe without a writer blocks forever); Stat accepts
// directories, Open does not.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "model.gguf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, tc := range []struct {
			name string
			f    func() error
			want string
		}{
			{"Open(fifo)", func() error { _, _, err := Open(fifo); return err }, fifo + " is a named pipe, not a regular file"},
			{"ReadLimited(fifo)", func() error { _, err := ReadLimited(fifo, 1<<20); return err }, fifo + " is a named pipe, not a regular file"},
			{"Stat(fifo)", func() error { _, err := Stat(fifo); return err }, fifo + " is a named pipe, not a regular file"},
			{"Open(/dev/null)", func() error { _, _, err := Open("/dev/null"); return err }, "/dev/null is a device, not a regular file"},
			{"Open(dir)", func() error { _, _, err := Open(dir); return err }, dir + " is a directory"},
			{"Stat(dir)", func() error { _, err := Stat(dir); return err }, ""},
		} {
			err := tc.f()
			if got := ""; err != nil {
				got = err.Error()
				if got != tc.want {
					t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("%s: no error, want %q", tc.name, tc.want)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on the named pipe")
	}
}
