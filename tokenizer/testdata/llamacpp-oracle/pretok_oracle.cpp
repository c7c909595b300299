// pretok_oracle runs llama.cpp's own pre-tokenizer (unicode_regex_split with
// the regexes llm_tokenizer_bpe selects) for quantbridge's golden files.
// Build: see tokenizer_llamacpp_gen_test.go.
//
//   pretok_oracle list    one line per tokenizer.ggml.pre name:
//                         name \t pre-type \t byte_encode \t flags {\t hex(regex)}
//   pretok_oracle         reads "name hex(text)" lines, answers
//                         "OK hex(piece) ..." (no GPT-2 byte encoding) or "ERR msg"
#include "table.inc"

#include <cstdio>
#include <iostream>
#include <stdexcept>

static std::string hex(const std::string & s) {
    static const char * h = "0123456789abcdef";
    std::string o;
    for (unsigned char c : s) {
        o += h[c >> 4];
        o += h[c & 15];
    }
    return o;
}

static std::string unhex(const std::string & s) {
    std::string o;
    for (size_t i = 0; i + 1 < s.size(); i += 2) {
        o += (char) std::stoi(s.substr(i, 2), nullptr, 16);
    }
    return o;
}

int main(int argc, char ** argv) {
    if (argc > 1 && std::string(argv[1]) == "list") {
        for (const auto & r : k_pre) {
            bool be;
            const auto rx = regexes_for(r.t, be);
            printf("%s\t%d\t%d\t%s", r.name, (int) r.t, be ? 1 : 0, r.flags);
            for (const auto & x : rx) {
                printf("\t%s", hex(x).c_str());
            }
            printf("\n");
        }
        return 0;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
        const auto sp = line.find(' ');
        const std::string name = line.substr(0, sp);
        const std::string text = unhex(line.substr(sp + 1));
        const pre_row * row = nullptr;
        for (const auto & r : k_pre) {
            if (name == r.name) {
                row = &r;
            }
        }
        if (!row) {
            printf("ERR unknown pre-tokenizer\n");
            continue;
        }
        bool be;
        const auto rx = regexes_for(row->t, be);
        try {
            std::string o;
            for (const auto & w : unicode_regex_split(text, rx, false)) {
                o += ' ';
                o += hex(w);
            }
            printf("OK%s\n", o.c_str());
        } catch (const std::exception & e) {
            printf("ERR %s\n", e.what());
        }
    }
    return 0;
}
