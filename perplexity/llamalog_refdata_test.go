//go:build refdata

package perplexity

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// llamaPerplexityLog reads the running values and the final estimate from
// a llama-perplexity log.
func llamaPerplexityLog(t *testing.T, path string) (running []float64, ppl, stderr float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\[(\d+)\]([0-9.]+),`).FindAllSubmatch(b, -1) {
		i, _ := strconv.Atoi(string(m[1]))
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		if i != len(running)+1 {
			t.Fatalf("%s: running value [%d] out of order", path, i)
		}
		running = append(running, v)
	}
	m := regexp.MustCompile(`Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)`).FindSubmatch(b)
	if m == nil || len(running) == 0 {
		t.Fatalf("%s: no final estimate", path)
	}
	ppl, _ = strconv.ParseFloat(string(m[1]), 64)
	stderr, _ = strconv.ParseFloat(string(m[2]), 64)
	return running, ppl, stderr
}
