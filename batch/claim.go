package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Claims (pull mode).
//
// A worker that pulls items claims one before working on it by creating
// <output>.qb.claim.<G> with O_CREATE|O_EXCL, G a generation number: the
// first claim of an item is generation 0, and a claim whose holder is dead
// is taken over by creating generation G+1, so that of any number of
// workers judging the same claim dead exactly one wins (the others' create
// fails with EEXIST). The file holds the holder's identity (host, pid,
// process start time, boot id) and lease; its modification time is the
// holder's heartbeat, renewed every lease/3 while the item runs. A claim is
// dead when its lease expired (now - mtime > lease), or at once when its
// holder ran on this host in this process namespace (same host name, boot id
// and PID namespace, so that containers sharing a host name prove nothing)
// and its process is gone: no /proc/PID, or a process with another start
// time there (the pid was reused). A holder that finds its claim file removed, or a later
// generation beside it, has lost the item: it stops working on it. When the
// item ends (done, failed or interrupted) the holder removes its claim. A
// worker that holds a claim checks the item's record again before working,
// so a finished item is never redone.

// DefaultLease is the lease of a claim when Options.Lease is zero.
const DefaultLease = 5 * time.Minute

// Holder identifies a worker process in its claims.
type Holder struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Start is the process's start time in clock ticks after boot (field
	// 22 of /proc/PID/stat); 0 where unknown.
	Start uint64 `json:"start,omitempty"`
	// Boot is the kernel's boot id (/proc/sys/kernel/random/boot_id).
	Boot string `json:"boot_id,omitempty"`
	// PIDNS is the process's PID namespace (the link /proc/self/ns/pid).
	PIDNS string `json:"pid_ns,omitempty"`
}

func (h Holder) String() string { return fmt.Sprintf("%s pid %d", h.Host, h.PID) }

// Self is this process's identity.
func Self() Holder {
	host, _ := os.Hostname()
	h := Holder{Host: host, PID: os.Getpid()}
	h.Start, _ = procStart(h.PID)
	h.Boot = bootID()
	h.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	return h
}

// procStart reads a process's start time from /proc (Linux).
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:]) // fields 3...
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// gone reports whether h is provably dead as seen by self: same host,
// boot and PID namespace, and its process no longer exists or is another
// process with its pid. It is false when that cannot be known (another
// host, another boot or namespace, no /proc): then only the lease tells.
func (self Holder) gone(h Holder) bool {
	if runtime.GOOS != "linux" || h.Host == "" || h.Host != self.Host || h.PID <= 0 ||
		h.Boot == "" || h.Boot != self.Boot || h.PIDNS == "" || h.PIDNS != self.PIDNS {
		return false
	}
	start, err := procStart(h.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	return err == nil && h.Start != 0 && start != h.Start
}

// claimFile is the content of a claim.
type claimFile struct {
	Version int     `json:"version"`
	Item    string  `json:"item"`
	Holder  Holder  `json:"holder"`
	Lease   float64 `json:"lease_seconds"`
	Claimed string  `json:"claimed"`
}

func claimPrefix(output string) string { return output + ".qb.claim." }

// claimGens lists the generations of the claim files of output, ascending.
func claimGens(output string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Dir(output))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(claimPrefix(output))
	var gens []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if g, err := strconv.Atoi(rest); err == nil && g >= 0 && strconv.Itoa(g) == rest {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// ClaimInfo describes a claim held by another worker.
type ClaimInfo struct {
	Path    string
	Holder  Holder // zero when the file could not be parsed (being written)
	Renewed time.Time
	Lease   time.Duration
}

// readClaim reads a claim file; a file being written (empty or partial)
// has a zero Holder and counts by its modification time only.
func readClaim(path string, lease time.Duration) (*ClaimInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	ci := &ClaimInfo{Path: path, Renewed: fi.ModTime(), Lease: lease}
	if fi.Size() > 0 && fi.Size() < 1<<16 {
		var c claimFile
		if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &c) == nil && c.Version == 1 {
			ci.Holder = c.Holder
			if c.Lease > 0 && c.Lease < 1e7 {
				ci.Lease = time.Duration(c.Lease * float64(time.Second))
			}
		}
	}
	return ci, nil
}

// dead reports whether the claim may be taken over by self at now.
func (ci *ClaimInfo) dead(self Holder, now time.Time) bool {
	if self.gone(ci.Holder) {
		return true
	}
	return now.Sub(ci.Renewed) > ci.Lease
}

// claim is a claim held by this worker.
type claim struct {
	path   string
	output string
	gen    int
	lost   chan struct{} // closed when the claim was taken over
	stop   chan struct{}
	done   sync.WaitGroup
	once   sync.Once
}

// errClaimLost is the cause of an item's context when its claim was taken
// over by another worker.
var errClaimLost = errors.New("claim taken over by another worker")

// tryClaim claims it for self. It returns the claim, or held describing a
// live claim of another worker, or an error (claims cannot be made there).
func tryClaim(it Item, self Holder, lease time.Duration) (c *claim, held *ClaimInfo, err error) {
	if err := os.MkdirAll(filepath.Dir(it.Output), 0o755); err != nil {
		return nil, nil, err
	}
	gens, err := claimGens(it.Output)
	if err != nil {
		return nil, nil, err
	}
	gen := 0
	if len(gens) > 0 {
		top := gens[len(gens)-1]
		ci, err := readClaim(claimPrefix(it.Output)+strconv.Itoa(top), lease)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil // released just now: the caller tries again
		}
		if err != nil {
			return nil, nil, err
		}
		if !ci.dead(self, time.Now()) {
			return nil, ci, nil
		}
		gen = top + 1
	}
	path := claimPrefix(it.Output) + strconv.Itoa(gen)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil, nil // another worker was faster: the caller looks again
	}
	if err != nil {
		return nil, nil, err
	}
	data, _ := json.Marshal(claimFile{Version: 1, Item: it.ID(), Holder: self, Lease: lease.Seconds(),
		Claimed: time.Now().UTC().Format(time.RFC3339Nano)})
	_, werr := f.Write(append(data, '\n'))
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		os.Remove(path)
		return nil, nil, fmt.Errorf("writing %s: %w", path, werr)
	}
	// The dead holder's generations are removed; it notices at its next renewal.
	for _, g := range gens {
		if g < gen {
			os.Remove(claimPrefix(it.Output) + strconv.Itoa(g))
		}
	}
	return &claim{path: path, output: it.Output, gen: gen, lost: make(chan struct{}), stop: make(chan struct{})}, nil, nil
}

// holding reports whether the claim is still this worker's: its file is
// there and no later generation is.
func (c *claim) holding() bool {
	if _, err := os.Stat(c.path); err != nil {
		return false
	}
	gens, err := claimGens(c.output)
	return err == nil && len(gens) > 0 && gens[len(gens)-1] == c.gen
}

// keep renews the claim every lease/3 until release, calling lost (once)
// when it finds the claim taken over.
func (c *claim) keep(lease time.Duration, lost func()) {
	every := lease / 3
	if every <= 0 {
		every = time.Millisecond
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				now := time.Now()
				if os.Chtimes(c.path, now, now) != nil || !c.holding() {
					close(c.lost)
					lost()
					return
				}
			}
		}
	}()
}

// release stops the renewal and removes the claim file if it is still this
// worker's. It reports whether the claim was lost while held.
func (c *claim) release() (lost bool) {
	c.once.Do(func() { close(c.stop) })
	c.done.Wait()
	select {
	case <-c.lost:
		return true
	default:
	}
	if !c.holding() {
		return true
	}
	os.Remove(c.path)
	return false
}

// itemComplete reports whether the item's record says it is finished with
// the current input and settings (what runItem would skip entirely).
func itemComplete(m *Manifest, it Item) bool {
	stamp, err := stampInput(it.Input)
	if err != nil {
		return false
	}
	rec := readRecord(it.Output)
	if !recordMatches(rec, it, stamp) {
		return false
	}
	key := evalKey(m)
	return key == "" || (rec.Eval != nil && rec.EvalKey == key)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
