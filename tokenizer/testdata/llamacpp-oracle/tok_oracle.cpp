// tok_oracle tokenizes with llama.cpp's libllama (llama_tokenize on a
// vocab-only model) for quantbridge's golden files.
// Build: see tokenizer_llamacpp_gen_test.go.
//
//   tok_oracle VOCAB.gguf   reads "AP hex(text)" lines (A, P: add_special,
//                           parse_special as 0/1), answers "OK id ..." or "ERR"
#include "llama.h"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

static void quiet(ggml_log_level, const char *, void *) {}

static std::string unhex(const std::string & s) {
    std::string o;
    for (size_t i = 0; i + 1 < s.size(); i += 2) {
        o += (char) std::stoi(s.substr(i, 2), nullptr, 16);
    }
    return o;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VOCAB.gguf < lines\n", argv[0]);
        return 1;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * m = llama_model_load_from_file(argv[1], mp);
    if (!m) {
        fprintf(stderr, "%s: cannot load\n", argv[1]);
        return 1;
    }
    const llama_vocab * v = llama_model_get_vocab(m);
    std::string line;
    std::vector<llama_token> toks;
    while (std::getline(std::cin, line)) {
        const bool add_special = line[0] == '1', parse_special = line[1] == '1';
        const std::string text = unhex(line.substr(3));
        toks.resize(text.size() * 2 + 16);
        int n = llama_tokenize(v, text.data(), (int) text.size(), toks.data(), (int) toks.size(), add_special, parse_special);
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(v, text.data(), (int) text.size(), toks.data(), (int) toks.size(), add_special, parse_special);
        }
        if (n < 0) {
            printf("ERR\n");
            continue;
        }
        printf("OK");
        for (int i = 0; i < n; i++) {
            printf(" %d", toks[i]);
        }
        printf("\n");
    }
    llama_model_free(m);
    return 0;
}
