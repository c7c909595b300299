package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopSignals are the signals on which the commands that write files stop
// cleanly: cancel the work, remove their temporary files, and exit with
// 128 + the signal's number (130, 143, 129), as a shell reports a process
// killed by it. SIGHUP (the terminal closed, or a job scheduler's hangup)
// is handled like SIGINT.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// signalContext returns a context canceled by the first of stopSignals.
// signaled reports that signal (nil while none has arrived); stop
// unregisters the handler. Later signals are caught too, so cleanup
// is not cut short; SIGKILL still ends the process at once. A signal the
// process was started with ignored (nohup's SIGHUP, SIGINT of a
// background job in a non-interactive shell) stays ignored.
func signalContext(parent context.Context) (ctx context.Context, signaled func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	for _, sig := range stopSignals {
		if !signal.Ignored(sig) {
			signal.Notify(ch, sig)
		}
	}
	var (
		mu  sync.Mutex
		got os.Signal
	)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				mu.Lock()
				if got == nil {
					got = s
				}
				mu.Unlock()
				cancel()
			case <-done:
				return
			}
		}
	}()
	signaled = func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
	return ctx, signaled, stop
}

// interrupted is the error a command returns when sig stopped it: exit
// status 128 + the signal number, and what was left undone.
func interrupted(sig os.Signal, what string) *exitError {
	code := 130
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
	}
	return &exitError{code, fmt.Errorf("interrupted by %v; %s", sigName(sig), what)}
}

// sigName names a signal as users type it: SIGINT, SIGTERM, SIGHUP.
func sigName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}
