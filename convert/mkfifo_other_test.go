//go:build !unix

package convert

import "errors"

func mkfifo(string) error { return errors.New("no named pipes here") }

// haveFifo: no named pipes on this platform; the tests needing one skip.
const haveFifo = false
