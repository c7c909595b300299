package batch

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// runPull is Run's pull mode: claim the next unclaimed item of the shard
// (manifest order), do it, release the claim, repeat. Items held by other
// live workers are passed over; unless opt.NoWait, the worker then waits
// (polling every lease/4, at most 2s) until each of them is complete or its
// claim dead, which it takes over. Each worker tries an item at most once:
// an item it failed is left to the others (which may fail it too).
func runPull(ctx context.Context, m *Manifest, jobs int, logw io.Writer, opt Options) ([]Outcome, error) {
	lease := opt.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	self := opt.Holder
	if self == (Holder{}) {
		self = Self()
	}
	poll := min(max(lease/4, 10*time.Millisecond), 2*time.Second)
	var todo []Item
	for _, it := range m.Items() {
		if opt.Shard.Has(it.Index) {
			todo = append(todo, it)
		}
	}
	// Items complete before this worker began are "skipped"; those that
	// other workers finish meanwhile are theirs.
	before := map[int]bool{}
	for _, it := range todo {
		before[it.Index] = itemComplete(m, it)
	}
	var outs []Outcome
	failed := 0
	finished := map[int]bool{}
	announced := map[int]string{}
	emit := func(it Item, status string, err error) {
		outs = append(outs, Outcome{it, status, err})
		if opt.OnItem != nil {
			opt.OnItem(it, status)
		}
	}
	for {
		waiting := 0
		for _, it := range todo {
			if finished[it.Index] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return outs, err
			}
			if itemComplete(m, it) {
				finished[it.Index] = true
				if before[it.Index] {
					fmt.Fprintf(logw, "[%d] %s: %s -> %s\n", it.Index+1, it.ID(), StatusSkipped, it.Output)
					emit(it, StatusSkipped, nil)
				} else {
					fmt.Fprintf(logw, "[%d] %s: done by another worker\n", it.Index+1, it.ID())
					if opt.OnItem != nil {
						opt.OnItem(it, StatusDone)
					}
				}
				continue
			}
			c, held, err := tryClaim(it, self, lease)
			if err != nil {
				failed++
				err = fmt.Errorf("claiming: %w", err)
				fmt.Fprintf(logw, "[%d] %s: failed: %v\n", it.Index+1, it.ID(), err)
				finished[it.Index] = true
				emit(it, StatusFailed, err)
				continue
			}
			if c == nil {
				waiting++
				if held != nil && announced[it.Index] != held.Path {
					announced[it.Index] = held.Path
					who := "a worker"
					if held.Holder.Host != "" {
						who = held.Holder.String()
					}
					fmt.Fprintf(logw, "[%d] %s: claimed by %s\n", it.Index+1, it.ID(), who)
				}
				continue
			}
			if itemComplete(m, it) { // finished between the look and the claim
				c.release()
				finished[it.Index] = true
				continue
			}
			ictx, cancel := context.WithCancelCause(ctx)
			c.keep(lease, func() { cancel(errClaimLost) })
			fmt.Fprintf(logw, "[%d] %s: claimed (%s), working\n", it.Index+1, it.ID(), filepath.Base(c.path))
			status, err := runItem(ictx, m, it, jobs, opt)
			lost := c.release()
			cancel(nil)
			switch {
			case err != nil && ctx.Err() != nil:
				fmt.Fprintf(logw, "[%d] %s: interrupted\n", it.Index+1, it.ID())
				emit(it, StatusInterrupted, nil)
				return outs, ctx.Err()
			case err != nil && lost:
				// Taken for dead (stopped, or cut off from the others longer
				// than the lease): the taker does the item.
				fmt.Fprintf(logw, "[%d] %s: claim lost to another worker; left to it\n", it.Index+1, it.ID())
				waiting++
			case err != nil:
				failed++
				finished[it.Index] = true
				fmt.Fprintf(logw, "[%d] %s: failed: %v\n", it.Index+1, it.ID(), err)
				emit(it, StatusFailed, err)
			default:
				finished[it.Index] = true
				fmt.Fprintf(logw, "[%d] %s: %s -> %s\n", it.Index+1, it.ID(), status, it.Output)
				emit(it, status, nil)
			}
		}
		if waiting == 0 || opt.NoWait {
			break
		}
		sleepCtx(ctx, poll)
	}
	if err := ctx.Err(); err != nil {
		return outs, err
	}
	if failed > 0 {
		return outs, fmt.Errorf("%d of %d items failed", failed, len(outs))
	}
	return outs, nil
}
