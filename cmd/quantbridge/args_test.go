package main

import (
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
