package tokenizer

// Byte-level BPE as llama.cpp's llm_tokenizer_bpe_session: the text is split
// into words by the pre-tokenizer (pretok.go), each word's bytes are mapped
// to GPT-2's printable characters, and within a word the adjacent pair with
// the lowest merge rank is merged, repeatedly (ties: leftmost first). With
// ignore_merges a word that is itself a vocabulary piece is taken whole. A
// final symbol that is not a piece falls back to its single bytes looked up
// as pieces, and bytes that are not pieces are dropped, as in llama.cpp.

type bpeSymbol struct {
	next   int
	off, n int
}

type bpeBigram struct {
	left, right int
	rank        int
	leftN, size int
}

// before orders the bigram queue as llama.cpp's llm_bigram_bpe::comparator:
// lowest merge rank first, then leftmost.
func (a bpeBigram) before(b bpeBigram) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.left < b.left
}

type bpeSession struct {
	syms  []bpeSymbol
	prev  []int
	queue bigramQueue[bpeBigram]
}

func (s *bpeSession) tokenize(v *Tokenizer, text string, out []int) []int {
	words, err := v.split.preTokenize(text, v.pre.byteEncode)
	if err != nil {
		// regexp2 only fails on a match timeout, which is not set.
		panic(err)
	}
	for _, w := range words {
		out = s.word(v, w, out)
	}
	return out
}

func (s *bpeSession) word(v *Tokenizer, w string, out []int) []int {
	s.syms = s.syms[:0]
	s.prev = s.prev[:0]
	s.queue = s.queue[:0]
	whole := false
	if v.ignoreMerges {
		_, whole = v.ids[w]
	} else if v.pre.gemma4 && w != "" && onlyNewlines(w) {
		_, whole = v.ids[w] // llama.cpp's gemma4 newline special case
	}
	if whole {
		s.syms = append(s.syms, bpeSymbol{next: -1, off: 0, n: len(w)})
		s.prev = append(s.prev, -1)
	} else {
		for off := 0; off < len(w); {
			n := min(utf8Len(w[off]), len(w)-off)
			idx := len(s.syms)
			next := idx + 1
			if off+n == len(w) {
				next = -1
			}
			s.syms = append(s.syms, bpeSymbol{next: next, off: off, n: n})
			s.prev = append(s.prev, idx-1)
			off += n
		}
	}
	for i := 1; i < len(s.syms); i++ {
		s.addBigram(v, w, i-1, i)
	}
	for len(s.queue) > 0 {
		b := s.queue.pop()
		l, r := &s.syms[b.left], &s.syms[b.right]
		if l.n == 0 || r.n == 0 || l.n != b.leftN || l.n+r.n != b.size {
			continue // outdated
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			s.prev[r.next] = b.left
		}
		s.addBigram(v, w, s.prev[b.left], b.left)
		s.addBigram(v, w, b.left, l.next)
	}
	for _, sym := range s.syms {
		if sym.n == 0 {
			continue
		}
		piece := w[sym.off : sym.off+sym.n]
		if id, ok := v.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(piece); j++ {
			var key string
			if v.pre.byteEncode {
				key = piece[j : j+1]
			} else {
				const hex = "0123456789ABCDEF"
				key = string([]byte{'<', '0', 'x', hex[piece[j]>>4], hex[piece[j]&15], '>'})
			}
			if id, ok := v.ids[key]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func (s *bpeSession) addBigram(v *Tokenizer, w string, left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.syms[left], s.syms[right]
	rank, ok := v.ranks[bpePair{w[l.off : l.off+l.n], w[r.off : r.off+r.n]}]
	if !ok {
		return
	}
	s.queue.push(bpeBigram{left: left, right: right, rank: rank, leftN: l.n, size: l.n + r.n})
}

func onlyNewlines(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\n' {
			return false
		}
	}
	return true
}
