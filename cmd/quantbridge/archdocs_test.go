package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantbridge/quantbridge/arch"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the supported-architectures tables in README.md and docs/cli.md from the registry")

const (
	archBegin = "<!-- architectures: generated from the arch registry by `go test ./cmd/quantbridge -run TestArchitectureTables -update-docs` -->\n"
	archEnd   = "<!-- end architectures -->"
)

// TestArchitectureTables: the README's and docs/cli.md's tables of
// supported architectures are the registry's (arch.Table), and
// `inspect --architectures` prints the same table.
func TestArchitectureTables(t *testing.T) {
	want := arch.Table()
	for _, doc := range []string{"README.md", filepath.Join("docs", "cli.md")} {
		path := filepath.Join("..", "..", doc)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i, j := strings.Index(s, archBegin), strings.Index(s, archEnd)
		if i < 0 || j < i {
			t.Errorf("%s: no architectures section (%q … %q)", doc, archBegin, archEnd)
			continue
		}
		if got := s[i+len(archBegin) : j]; got != want {
			if *updateDocs {
				if err := os.WriteFile(path, []byte(s[:i+len(archBegin)]+want+s[j:]), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("%s: architectures table is stale (run with -update-docs):\n%s\nwant:\n%s", doc, got, want)
		}
	}
	out, err := runApp(t, "inspect", "--architectures")
	if err != nil || out != want {
		t.Errorf("inspect --architectures = %q, %v; want %q", out, err, want)
	}
	for _, a := range arch.All() {
		if a.Verified == "" || !strings.Contains(want, "`"+a.Name+"`") {
			t.Errorf("%s: no table row or no Verified text", a.Name)
		}
	}
}
