package batch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Shard is this process's share of the items: index I of N (0 <= I < N).
type Shard struct{ I, N int }

// All is the single shard covering everything.
var All = Shard{0, 1}

// Has reports whether item k belongs to the shard.
func (s Shard) Has(k int) bool { return k%s.N == s.I }

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// ParseShard parses "I/N" (0-based I).
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4", v)
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with integers", v)
	}
	return newShard(i, n, "shard "+v)
}

func newShard(i, n int, what string) (Shard, error) {
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%s: need 0 <= I < N, got I=%d N=%d", what, i, n)
	}
	return Shard{i, n}, nil
}

// ShardFromEnv reads the shard from a cluster scheduler's environment:
// Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX with JOB_COMPLETIONS) or
// Slurm job arrays (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, and
// SLURM_ARRAY_TASK_MIN, which may be nonzero as in --array=1-8). ok is false
// when neither is set.
func ShardFromEnv(getenv func(string) string) (s Shard, ok bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	num := func(key string) (int, error) {
		v, err := strconv.Atoi(strings.TrimSpace(getenv(key)))
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not an integer", key, getenv(key))
		}
		return v, nil
	}
	if getenv("JOB_COMPLETION_INDEX") != "" {
		i, err := num("JOB_COMPLETION_INDEX")
		if err != nil {
			return Shard{}, true, err
		}
		if getenv("JOB_COMPLETIONS") == "" {
			return Shard{}, true, fmt.Errorf("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not (set it from the Job's .spec.completions)")
		}
		n, err := num("JOB_COMPLETIONS")
		if err != nil {
			return Shard{}, true, err
		}
		s, err := newShard(i, n, "Kubernetes indexed job")
		return s, true, err
	}
	if getenv("SLURM_ARRAY_TASK_ID") != "" {
		id, err := num("SLURM_ARRAY_TASK_ID")
		if err != nil {
			return Shard{}, true, err
		}
		n, err := num("SLURM_ARRAY_TASK_COUNT")
		if err != nil {
			return Shard{}, true, err
		}
		min := 0
		if getenv("SLURM_ARRAY_TASK_MIN") != "" {
			if min, err = num("SLURM_ARRAY_TASK_MIN"); err != nil {
				return Shard{}, true, err
			}
		}
		s, err := newShard(id-min, n, "Slurm array task")
		return s, true, err
	}
	return All, false, nil
}
