//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package atomicfile

import (
	"errors"
	"os"
)

// tryLock is not available here: no temporary is ever proven stale, so
// RemoveStale removes nothing.
func tryLock(path string, dir bool) (*os.File, error) {
	return nil, errors.ErrUnsupported
}
