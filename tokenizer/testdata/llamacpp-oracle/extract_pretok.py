#!/usr/bin/env python3
"""Writes table.inc for pretok_oracle.cpp from a llama.cpp checkout.

table.inc holds, taken verbatim from src/llama-vocab.cpp and
src/llama-vocab.h at build time (it is generated, never committed):
the llama_vocab_pre_type enum, the regex switch of llm_tokenizer_bpe's
constructor wrapped as regexes_for(), and the tokenizer.ggml.pre name ->
pre type table with the flags each branch of llama_vocab::impl::load sets.

usage: extract_pretok.py LLAMA_CPP_DIR OUT_DIR
"""
import os
import re
import sys

root, out_dir = sys.argv[1], sys.argv[2]
src = open(os.path.join(root, 'src', 'llama-vocab.cpp'), encoding='utf-8').read()
hdr = open(os.path.join(root, 'src', 'llama-vocab.h'), encoding='utf-8').read()

enum = hdr[hdr.index('enum llama_vocab_pre_type {'):]
enum = enum[:enum.index('};') + 2]

# The switch over the pre type in llm_tokenizer_bpe's constructor.
start = src.index('struct llm_tokenizer_bpe : llm_tokenizer')
a = src.index('switch (vocab.get_pre_type()) {', start)
j, depth = src.index('{', a), 0
while True:
    c = src[j]
    if c == '{':
        depth += 1
    elif c == '}':
        depth -= 1
        if depth == 0:
            break
    elif c in '"\'':
        q, j = c, j + 1
        while src[j] != q:
            j += 2 if src[j] == '\\' else 1
    j += 1
switch = src[a:j + 1].replace('vocab.get_pre_type()', 't')

# The if/else chain mapping tokenizer.ggml.pre names to pre types.
c0 = src.index('if (tokenizer_pre.empty())')
c1 = src.index('unknown pre-tokenizer type', c0)
rows = []
for b in re.split(r'\}\s*else if\s*\(', src[c0:c1]):
    names = re.findall(r'tokenizer_pre == "([^"]+)"', b)
    if 'tokenizer_pre.empty()' in b:
        names = [''] + names
    m = re.search(r'pre_type = (LLAMA_VOCAB_PRE_TYPE_\w+)', b)
    flags = re.findall(r'\n\s*((?:ignore_merges|clean_spaces|add_bos|escape_whitespaces|add_sep|special_bos_id)\s*=\s*[^;]+);', b)
    for n in names:
        rows.append((n, m.group(1), ' '.join(f.replace(' ', '') for f in flags)))

out = ['#include "unicode.h"', '#include <string>', '#include <vector>', enum,
       'static std::vector<std::string> regexes_for(llama_vocab_pre_type t, bool & byte_encode) {',
       '    std::vector<std::string> regex_exprs;', '    byte_encode = true;', switch,
       '    return regex_exprs;', '}',
       'struct pre_row { const char * name; llama_vocab_pre_type t; const char * flags; };',
       'static const pre_row k_pre[] = {']
out += ['    {"%s", %s, "%s"},' % r for r in rows]
out.append('};')
with open(os.path.join(out_dir, 'table.inc'), 'w', encoding='utf-8') as f:
    f.write('\n'.join(out) + '\n')
print('%d pre-tokenizer names' % len(rows), file=sys.stderr)
