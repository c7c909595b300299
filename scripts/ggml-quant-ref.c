// ggml-quant-ref: quantize and dequantize rows with llama.cpp's ggml (the
// reference for quantbridge's golden blocks, testdata/quant/iq2_golden.bin).
//
// Build against the reference build of llama.cpp 34af94cd:
//   gcc -O2 -o /tmp/ggml-quant-ref scripts/ggml-quant-ref.c \
//       -I ~/llama.cpp/ggml/include -L ~/llama.cpp/build/bin -lggml-base
// Run with LD_LIBRARY_PATH=~/llama.cpp/build/bin.
//
// stdin (little endian): u32 ggml type, u32 rows, u32 row length, u32 has
// weights, rows*row length f32 values, then (if has weights) row length f32
// importance weights. stdout: the quantized rows (ggml_quantize_chunk), then
// their dequantization (the type's to_float), rows*row length f32.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml.h"

static void readn(void * p, size_t size, size_t n) {
    if (fread(p, size, n, stdin) != n) {
        fprintf(stderr, "ggml-quant-ref: short input\n");
        exit(1);
    }
}

int main(void) {
    uint32_t hdr[4];
    readn(hdr, 4, 4);
    const enum ggml_type type = (enum ggml_type) hdr[0];
    const int64_t rows = hdr[1], n = hdr[2];
    float * src = malloc(rows * n * sizeof(float));
    float * w = hdr[3] ? malloc(n * sizeof(float)) : NULL;
    readn(src, sizeof(float), rows * n);
    if (w) readn(w, sizeof(float), n);
    const size_t rb = ggml_row_size(type, n);
    uint8_t * q = malloc(rows * rb);
    ggml_quantize_init(type);
    const size_t size = ggml_quantize_chunk(type, src, q, 0, rows, n, w);
    if (size != rows * rb || !ggml_validate_row_data(type, q, size)) {
        fprintf(stderr, "ggml-quant-ref: quantization failed\n");
        return 1;
    }
    float * deq = malloc(rows * n * sizeof(float));
    ggml_get_type_traits(type)->to_float(q, deq, rows * n);
    fwrite(q, 1, size, stdout);
    fwrite(deq, sizeof(float), rows * n, stdout);
    return 0;
}
