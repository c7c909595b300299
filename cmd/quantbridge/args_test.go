package main

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestInterspersed(t *testing.T) {
	cmds := []*cli.Command{{
		Name: "convert",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Aliases: []string{"t"}},
			&cli.BoolFlag{Name: "force"},
			&cli.IntFlag{Name: "jobs"},
		},
	}}
	tests := []struct{ in, want []string }{
		{[]string{"qb", "convert", "in", "out", "--type", "Q4_K_M"}, []string{"qb", "convert", "--type", "Q4_K_M", "--", "in", "out"}},
		{[]string{"qb", "convert", "--force", "in", "-t=Q8_0", "out", "--jobs", "2"}, []string{"qb", "convert", "--force", "-t=Q8_0", "--jobs", "2", "--", "in", "out"}},
		{[]string{"qb", "convert", "in", "--", "-odd-name"}, []string{"qb", "convert", "--", "in", "-odd-name"}},
		{[]string{"qb", "other", "in", "--x"}, []string{"qb", "other", "in", "--x"}},
		{[]string{"qb"}, []string{"qb"}},
	}
	for _, tc := range tests {
		if got := interspersed(tc.in, cmds); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&exitError{130, errors.New("interrupted")}, 130},
		{fmt.Errorf("wrapped: %w", &exitError{2, errors.New("usage")}), 2},
		{errors.New(`Required flag "file" not set`), 2},
		{errors.New("gguf: x.gguf: offset 8: truncated"), 1},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
