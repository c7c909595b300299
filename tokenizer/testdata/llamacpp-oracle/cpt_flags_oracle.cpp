// cpt_flags_oracle prints llama.cpp's codepoint table (unicode-data.cpp) as
// runs over U+0000..U+10FFFF: "lo hi class" in hex, hex, decimal, where
// class is 0 other, 1 number, 2 letter, 3 punctuation, 4 mark, 5 symbol,
// plus 8 for whitespace; then "L cpt lower" for each codepoint that
// unicode_tolower changes. Build: see tokenizer_llamacpp_gen_test.go.
#include "unicode.h"

#include <cstdio>

static int cpt_class(uint32_t c) {
    const auto f = unicode_cpt_flags_from_cpt(c);
    const int cat = f.is_number ? 1 : f.is_letter ? 2 : f.is_punctuation ? 3 : f.is_accent_mark ? 4 : f.is_symbol ? 5 : 0;
    return cat | (f.is_whitespace ? 8 : 0);
}

int main() {
    uint32_t lo = 0;
    int k = cpt_class(0);
    for (uint32_t c = 1; c <= 0x110000; c++) {
        const int kc = c <= 0x10FFFF ? cpt_class(c) : -1;
        if (kc != k) {
            printf("%x %x %d\n", lo, c - 1, k);
            lo = c;
            k = kc;
        }
    }
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        const uint32_t l = unicode_tolower(c);
        if (l != c) {
            printf("L %x %x\n", c, l);
        }
    }
    return 0;
}
