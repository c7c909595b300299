package main

import (
	"strings"
	"testing"
)

// TestBatchPullFlags: --lease and --no-wait mean something with --pull only;
// a lease under a second is refused (renewals every lease/3 would flood a
// shared file system). The pulling itself is tested in package batch and,
// through docs/slurm-array.sh, by the Slurm test (-tags slurm).
func TestBatchPullFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"batch", "--lease", "5m", "m.yaml"}, "--lease and --no-wait apply to --pull only"},
		{[]string{"batch", "--no-wait", "m.yaml"}, "--lease and --no-wait apply to --pull only"},
		{[]string{"batch", "--pull", "--lease", "10ms", "m.yaml"}, "--lease 10ms: want at least 1s"},
		{[]string{"batch", "--pull", "--lease", "-1m", "m.yaml"}, "--lease -1m0s: want at least 1s"},
	} {
		_, stderr, code := runMain(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
	}
}
