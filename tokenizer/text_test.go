package tokenizer

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestProcessEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a\nb`, "a\nb"},
		{`\r\t\'\"\\`, "\r\t'\"\\"},
		{`\x41\x4a`, "AJ"},
		{`\x4`, `\x4`},     // fewer than two bytes follow
		{`\x4g!`, `\x4g!`}, // not both consumed
		{`\x 9.`, "\t."},   // strtol skips leading space
		{`\x-1.`, "\xff."}, // and takes a sign
		{`\q\`, `\q\`},     // unknown escape and a final backslash stay
		{"plain\n", "plain\n"},
	}
	for _, tc := range tests {
		if got := ProcessEscapes(tc.in); got != tc.want {
			t.Errorf("ProcessEscapes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadTextFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(p, []byte("line\\tone\n\n"), 0o644)
	tests := []struct {
		escape, strip bool
		want          string
	}{
		{true, true, "line\tone\n"}, // llama-perplexity: one newline dropped
		{true, false, "line\tone\n\n"},
		{false, false, "line\\tone\n\n"},
	}
	for _, tc := range tests {
		got, err := ReadTextFile(p, tc.escape, tc.strip)
		if err != nil || got != tc.want {
			t.Errorf("ReadTextFile(escape=%v, strip=%v) = %q, %v; want %q", tc.escape, tc.strip, got, err, tc.want)
		}
	}
	if _, err := ReadTextFile(filepath.Join(t.TempDir(), "missing"), true, true); err == nil {
		t.Error("missing file: no error")
	}
}

// TestTextReader checks that the streaming reader gives ReadTextFile's
// text, one byte at a time, for escapes cut anywhere by the reads.
func TestTextReader(t *testing.T) {
	for _, in := range []string{"", "\n", "a\n\n", "a\\", "x\\x4", "\\x41\\x4g\\n\r\n", "tail\\x41\n", "\\\\n\\", "no newline"} {
		p := filepath.Join(t.TempDir(), "t.txt")
		if err := os.WriteFile(p, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, escape := range []bool{false, true} {
			for _, drop := range []bool{false, true} {
				want, err := ReadTextFile(p, escape, drop)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(NewTextReader(iotest.OneByteReader(strings.NewReader(in)), escape, drop))
				if err != nil || string(got) != want {
					t.Errorf("%q escape=%v drop=%v: %q, %v; want %q", in, escape, drop, got, err, want)
				}
			}
		}
	}
}
