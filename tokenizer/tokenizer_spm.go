package tokenizer

// SentencePiece tokenization as llama.cpp's llm_tokenizer_spm_session: the
// text (spaces already escaped to U+2581) is cut into UTF-8 characters, then
// the adjacent pair whose concatenation is the highest-scoring vocabulary
// piece is merged, repeatedly (ties: leftmost first). A final symbol that is
// not a piece is written as byte tokens <0xNN>.
//
// llama.cpp's resegment step also consults a reverse-merge map, but that map
// only ever holds texts that are vocabulary pieces, which resegment has
// already looked up, so the lookup is all that matters.

type spmSymbol struct {
	prev, next int
	off, n     int // byte range in the text; n == 0 once merged away
}

type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// before orders the bigram queue as llama.cpp's llm_bigram_spm::comparator:
// highest score first, then leftmost.
func (a spmBigram) before(b spmBigram) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

type spmSession struct {
	syms  []spmSymbol
	queue bigramQueue[spmBigram]
}

// utf8Len is llama.cpp's unicode_len_utf8: the sequence length announced by
// a lead byte (1 for continuation bytes).
func utf8Len(c byte) int {
	switch c >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

func (s *spmSession) tokenize(v *Tokenizer, text string, out []int) []int {
	s.syms = s.syms[:0]
	s.queue = s.queue[:0]
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		idx := len(s.syms)
		next := idx + 1
		if off+n == len(text) {
			next = -1
		}
		s.syms = append(s.syms, spmSymbol{prev: idx - 1, next: next, off: off, n: n})
		off += n
	}
	for i := 1; i < len(s.syms); i++ {
		s.addBigram(v, text, i-1, i)
	}
	for len(s.queue) > 0 {
		b := s.queue.pop()
		l, r := &s.syms[b.left], &s.syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			s.syms[r.next].prev = b.left
		}
		s.addBigram(v, text, l.prev, b.left)
		s.addBigram(v, text, b.left, l.next)
	}
	if len(s.syms) == 0 {
		return out
	}
	for i := 0; i != -1; i = s.syms[i].next {
		sym := s.syms[i]
		piece := text[sym.off : sym.off+sym.n]
		if id, ok := v.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			if id := v.byteToken(piece[j]); id >= 0 {
				out = append(out, id)
			}
		}
	}
	return out
}

func (s *spmSession) addBigram(v *Tokenizer, text string, left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.syms[left], s.syms[right]
	piece := text[l.off : l.off+l.n+r.n]
	id, ok := v.ids[piece]
	if !ok {
		return
	}
	s.queue.push(spmBigram{left: left, right: right, score: v.scores[id], size: len(piece)})
}

// byteToken is llama.cpp's byte_to_token for SentencePiece: the <0xNN>
// piece, else the byte itself as a piece. llama.cpp throws when neither
// exists; the unknown token (or nothing) is used here.
func (v *Tokenizer) byteToken(c byte) int {
	const hex = "0123456789ABCDEF"
	if id, ok := v.ids[string([]byte{'<', '0', 'x', hex[c>>4], hex[c&15], '>'})]; ok {
		return id
	}
	if id, ok := v.ids[string([]byte{c})]; ok {
		return id
	}
	return v.unk
}
