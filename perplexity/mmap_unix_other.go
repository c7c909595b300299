//go:build unix && !linux

package perplexity

// mapPopulate is 0 where mmap has no MAP_POPULATE: pages come in as they
// are touched.
const mapPopulate = 0
