package graph

import (
	"fmt"
	"io"
	"sort"
)

// Concat returns a Source reading the given sources one after another (the
// stacked expert tensors of a MoE layer read from per-expert tensors).
func Concat(srcs ...Source) Source {
	c := &concat{srcs: srcs, ends: make([]int64, len(srcs))}
	var n int64
	for i, s := range srcs {
		n += s.Size()
		c.ends[i] = n
	}
	return c
}

type concat struct {
	srcs []Source
	ends []int64 // cumulative end offsets
}

func (c *concat) Size() int64 {
	if len(c.ends) == 0 {
		return 0
	}
	return c.ends[len(c.ends)-1]
}

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("graph: negative offset %d", off)
	}
	n := 0
	i := sort.Search(len(c.ends), func(i int) bool { return c.ends[i] > off })
	for n < len(p) && i < len(c.srcs) {
		start := c.ends[i] - c.srcs[i].Size()
		want := min(int64(len(p)-n), c.ends[i]-off)
		k, err := c.srcs[i].ReadAt(p[n:n+int(want)], off-start)
		n += k
		off += int64(k)
		if int64(k) < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
