package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/quantbridge/quantbridge/formats"
	"github.com/quantbridge/quantbridge/formats/hf"
	"github.com/quantbridge/quantbridge/tokenizer"
)

func init() {
	register(&cli.Command{
		Name:      "tokenize",
		Usage:     "print the token ids of a text file, as llama-tokenize --ids does",
		ArgsUsage: "MODEL TEXTFILE",
		Description: "MODEL is a GGUF file or an HF/MLX checkpoint directory; TEXTFILE is read verbatim, as Hugging Face tokenizers and\n" +
			"llama-tokenize --no-escape -f read it (\"-\" reads stdin); --escape processes escape sequences first, as llama-tokenize does by default.\n" +
			"Like llama-tokenize, BOS is added when the model asks for it and special-token text (e.g. <s>) is parsed.\n" +
			"Texts of any size are tokenized in bounded memory, ids written as they come.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array of ids"},
			&cli.BoolFlag{Name: "no-bos", Usage: "do not add BOS/EOS even if the model asks for them"},
			&cli.BoolFlag{Name: "no-parse-special", Usage: "tokenize special-token text as plain text (llama-perplexity's behaviour)"},
			&cli.BoolFlag{Name: "escape", Usage: "process escape sequences (\\n, \\t, \\xHH, ...) in the text, as llama-tokenize does by default"},
			&cli.BoolFlag{Name: "no-escape", Hidden: true, Usage: "read the text verbatim (the default)"},
		},
		Action: runTokenize,
	})
}

func runTokenize(c *cli.Context) error {
	if c.NArg() != 2 {
		return &exitError{2, errors.New("tokenize: want MODEL and TEXTFILE")}
	}
	modelPath, textPath := c.Args().Get(0), c.Args().Get(1)
	if c.Bool("escape") && c.Bool("no-escape") {
		return &exitError{2, errors.New("tokenize: --escape and --no-escape contradict each other")}
	}
	tok, err := openVocab(modelPath)
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	if textPath != "-" {
		f, err := os.Open(textPath)
		if err != nil {
			return fmt.Errorf("reading text: %w", err)
		}
		defer f.Close()
		in = f
	}
	// Verbatim (as llama-tokenize -f reads the file), escapes only with --escape.
	in = tokenizer.NewTextReader(in, c.Bool("escape"), false)
	opt := tokenizer.Options{AddSpecial: !c.Bool("no-bos"), ParseSpecial: !c.Bool("no-parse-special")}

	w := bufio.NewWriter(c.App.Writer)
	asJSON := c.Bool("json")
	sep := ", "
	if asJSON {
		sep = ","
	}
	w.WriteByte('[')
	n := 0
	err = tok.EncodeReader(in, opt, func(ids []int) error {
		var b []byte
		for _, id := range ids {
			if n > 0 {
				b = append(b, sep...)
			}
			b = strconv.AppendInt(b, int64(id), 10)
			n++
		}
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", textPath, err)
	}
	w.WriteString("]\n")
	return w.Flush()
}

// openVocab reads the tokenizer of any model formats.Open reads (GGUF
// tokenizers get llama.cpp's model-name rules too), or of a directory that
// holds only HF tokenizer files.
func openVocab(path string) (*tokenizer.Tokenizer, error) {
	m, err := formats.Open(path)
	if err != nil {
		st, serr := os.Stat(path)
		if serr != nil || !st.IsDir() {
			return nil, err
		}
		_, p, _, cerr := hf.ReadConfigFile(filepath.Join(path, hf.ConfigName))
		if cerr != nil && !errors.Is(cerr, os.ErrNotExist) {
			return nil, cerr
		}
		t, terr := hf.ReadTokenizer(path, p)
		if terr != nil {
			return nil, terr
		}
		if t == nil {
			return nil, fmt.Errorf("%s: the model has no tokenizer", path)
		}
		return tokenizer.New(t)
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return nil, fmt.Errorf("%s: the model has no tokenizer", path)
	}
	return tokenizer.NewForModel(m)
}
