package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/internal/testref"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "quantbridge", Commands: commands, Writer: &out, ErrWriter: &out}
	err := app.Run(interspersed(append([]string{"quantbridge"}, args...), commands))
	return out.String(), err
}

func TestTokenizeCommand(t *testing.T) {
	text := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(text, []byte("Hello world\n<s> x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spm := testref.Local(t, "real", "gguf", "ggml-vocab-llama-spm.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		// BOS, "▁Hello ▁world <0x0A>", <s> parsed as BOS, then "▁" "▁x"
		// (llama.cpp prefixes a space after a special token).
		{[]string{"tokenize", spm, text}, "[1, 15043, 3186, 13, 1, 29871, 921]\n"},
		{[]string{"tokenize", "--json", "--no-bos", "--no-parse-special", spm, text}, "[15043,3186,13,29966,29879,29958,921]\n"},
		{[]string{"tokenize", "--no-bos", testref.Local(t, "real", "gguf", "ggml-vocab-gpt-2.gguf"), text}, "[15496, 995, 198, 27, 82, 29, 2124]\n"},
		{[]string{"tokenize", "--json", testref.Local(t, "kjv-llama"), text}, "[1,420,577,4039,1172,13,1,4034,4034,4084]\n"},
		{[]string{"tokenize", "--json", "--no-parse-special", testref.Local(t, "kjv-llama"), text}, "[1,420,577,4039,1172,13,63,4041,65,4034,4084]\n"},
	} {
		got, err := runApp(t, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got != c.want {
			t.Errorf("%v:\n got  %q\n want %q", c.args, got, c.want)
		}
	}
	dir := testref.Local(t, "real", "safetensors")
	if _, err := runApp(t, "tokenize", dir, text); err == nil || !strings.Contains(err.Error(), dir+": the model has no tokenizer") {
		t.Errorf("model without tokenizer: %v", err)
	}
}
