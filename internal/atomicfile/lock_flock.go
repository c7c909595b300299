//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// tryLock opens path (a file read-write, a directory read-only) and takes
// an exclusive flock on it without waiting. The lock lasts until the
// returned file is closed or the process ends, however it ends; that is
// what tells a live writer's temporary from a dead one's. errLocked means
// another open file holds it.
func tryLock(path string, dir bool) (*os.File, error) {
	flag := os.O_RDWR
	if dir {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}
