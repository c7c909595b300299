//go:build linux

package perplexity

import "syscall"

// mapPopulate asks mmap to map the pages at once (see mapSection).
const mapPopulate = syscall.MAP_POPULATE
