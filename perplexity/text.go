package perplexity

import (
	"fmt"
	"os"
)

// ReadTextFile reads an evaluation text the way llama.cpp's tools read
// "-f FILE": llama-perplexity (common's -f handler) drops one trailing
// newline, then (unless escapes are off, --no-escape) processes escape
// sequences; llama-tokenize keeps the bytes verbatim apart from escapes.
// stripNewline selects the llama-perplexity behaviour.
func ReadTextFile(path string, escape, stripNewline bool) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading text: %w", err)
	}
	s := string(data)
	if stripNewline && len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	if escape {
		s = ProcessEscapes(s)
	}
	return s, nil
}

// ProcessEscapes rewrites \n \r \t \' \" \\ and \xHH as llama.cpp's
// string_process_escapes does (common/common.cpp); any other backslash
// sequence is kept as it is. Its \x takes exactly the next two bytes when
// strtol(…, 16) consumes both (so leading whitespace or a sign count).
func ProcessEscapes(s string) string {
	in := []byte(s)
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' || i+1 >= len(in) {
			out = append(out, in[i])
			continue
		}
		i++
		switch c := in[i]; c {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '\'', '"', '\\':
			out = append(out, c)
		case 'x':
			if i+2 < len(in) {
				if v, ok := strtol2Hex(in[i+1], in[i+2]); ok {
					out = append(out, byte(v))
					i += 2
					break
				}
			}
			out = append(out, '\\', c)
		default:
			out = append(out, '\\', c)
		}
	}
	return string(out)
}

// strtol2Hex mimics strtol(x, &end, 16) on the two-byte string ab and
// reports whether end == x+2 (both bytes consumed).
func strtol2Hex(a, b byte) (int, bool) {
	hex := func(c byte) (int, bool) {
		switch {
		case '0' <= c && c <= '9':
			return int(c - '0'), true
		case 'a' <= c && c <= 'f':
			return int(c-'a') + 10, true
		case 'A' <= c && c <= 'F':
			return int(c-'A') + 10, true
		}
		return 0, false
	}
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	if x, ok := hex(a); ok {
		if y, ok := hex(b); ok {
			return x*16 + y, true
		}
		return 0, false
	}
	if y, ok := hex(b); ok {
		switch {
		case isSpace(a), a == '+':
			return y, true
		case a == '-':
			return -y, true
		}
	}
	return 0, false
}
