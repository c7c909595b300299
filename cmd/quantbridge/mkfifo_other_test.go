//go:build !unix

package main

import "errors"

func mkfifo(string) error { return errors.New("no named pipes here") }

// haveFifo: no named pipes on this platform; the tests needing one skip.
const haveFifo = false
