#!/bin/sh
# Write testdata/quant/iq3-golden.bin: IQ3_XXS, IQ3_S, TQ1_0 and TQ2_0 blocks
# made by ggml itself (ggml_quantize_chunk with and without an importance
# vector, then the type's to_float), on synthetic rows chosen to reach the
# quantizers' corners: sub-blocks below the IQ3_XXS threshold or all zero
# (ggml's IQ3_S then writes the later sub-blocks' codes early), odd sign
# counts, outliers, subnormal scales, zero importance weights.
#
# Usage: scripts/gen-iq3-golden.sh [LLAMA_CPP_DIR]   (default ~/llama.cpp,
# built as ../shared/docs/llama-cpp-reference-build.md says, commit 34af94cd)
#
# Layout (little endian): "QBIQ3G1\n", u32 case count, then per case: u16
# name length, name, u32 ggml type, u32 n, u32 has weights, n bf16 inputs,
# n bf16 weights if any, u32 output length, output bytes, n f32 values
# decoded from the output.
set -eu
LLAMA=${1:-$HOME/llama.cpp}
OUT=$(cd "$(dirname "$0")/.." && pwd)/testdata/quant/iq3-golden.bin
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/gen.c" <<'CEOF'
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ggml.h"

static uint64_t rng = 88172645463325252ull;
static float urand(void) { /* xorshift64, uniform in [0,1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f;
}
static float gauss(void) { return urand() + urand() + urand() + urand() - 2.0f; }
static float bf16(float x) { /* round to bf16 and back */
    ggml_bf16_t h = ggml_fp32_to_bf16(x);
    uint32_t u = (uint32_t)h.bits << 16; float f; memcpy(&f, &u, 4); return f;
}

static FILE * out;
static uint32_t ncases;
static void put32(uint32_t v) { fwrite(&v, 4, 1, out); }
static void put16(uint16_t v) { fwrite(&v, 2, 1, out); }
static void putbf(const float * x, int n) {
    for (int i = 0; i < n; i++) { uint32_t u; memcpy(&u, &x[i], 4); put16(u >> 16); }
}

static void emit(const char * name, enum ggml_type type, const float * x, const float * w, int n) {
    static uint8_t q[1 << 16];
    static float y[4096];
    size_t sz = ggml_quantize_chunk(type, x, q, 0, 1, n, w);
    ggml_get_type_traits(type)->to_float(q, y, n);
    put16(strlen(name)); fwrite(name, strlen(name), 1, out);
    put32(type); put32(n); put32(w != NULL);
    putbf(x, n);
    if (w) putbf(w, n);
    put32(sz); fwrite(q, sz, 1, out);
    fwrite(y, 4, n, out);
    ncases++;
}

int main(int argc, char ** argv) {
    out = fopen(argv[1], "wb");
    fwrite("QBIQ3G1\n", 8, 1, out);
    put32(0);
    enum ggml_type types[4] = {GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_TQ1_0, GGML_TYPE_TQ2_0};
    float x[512], w[512];
    char name[64];
    for (int t = 0; t < 4; t++) {
        const char * tn = ggml_type_name(types[t]);
        /* plain rows, unweighted and weighted (some weights 0) */
        for (int i = 0; i < 256; i++) x[i] = bf16(0.02f * gauss());
        for (int i = 0; i < 256; i++) w[i] = bf16(i % 37 == 5 ? 0.0f : 0.01f + 2 * urand());
        snprintf(name, sizeof name, "%s/gauss", tn);   emit(name, types[t], x, NULL, 256);
        snprintf(name, sizeof name, "%s/gauss-w", tn); emit(name, types[t], x, w, 256);
        /* two blocks: zero and sub-threshold sub-blocks, a tiny sub-block */
        for (int i = 0; i < 512; i++) x[i] = bf16(gauss());
        for (int i = 0; i < 512; i++) w[i] = bf16(0.5f + urand());
        for (int i = 288; i < 320; i++) x[i] = 0;         /* block 1, sub-block 1 */
        for (int i = 384; i < 416; i++) x[i] = bf16(3e-9f * gauss()); /* block 1, sub-block 4 */
        for (int i = 448; i < 480; i++) x[i] = 0;         /* block 1, sub-block 6 */
        snprintf(name, sizeof name, "%s/zero-subblocks-w", tn); emit(name, types[t], x, w, 512);
        snprintf(name, sizeof name, "%s/zero-subblocks", tn);   emit(name, types[t], x, NULL, 512);
        /* heavy tails: outliers, mostly negative groups (odd sign counts) */
        for (int i = 0; i < 256; i++) {
            float g = gauss();
            x[i] = bf16((i % 8 < 5 ? -fabsf(g) : g) * (i % 53 == 7 ? 40.0f : 1.0f));
        }
        snprintf(name, sizeof name, "%s/outliers", tn); emit(name, types[t], x, NULL, 256);
        /* a block of subnormal magnitude, then an all-zero block */
        for (int i = 0; i < 256; i++) x[i] = bf16(1e-39f * gauss());
        for (int i = 256; i < 512; i++) x[i] = 0;
        for (int i = 0; i < 512; i++) w[i] = bf16(urand());
        snprintf(name, sizeof name, "%s/subnormal-zero-w", tn); emit(name, types[t], x, w, 512);
        /* large values */
        for (int i = 0; i < 256; i++) x[i] = bf16(3000.0f * gauss());
        snprintf(name, sizeof name, "%s/large", tn); emit(name, types[t], x, NULL, 256);
    }
    fseek(out, 8, SEEK_SET);
    put32(ncases);
    fclose(out);
    return 0;
}
CEOF
cc -O1 -std=c11 -I"$LLAMA/ggml/include" -o "$TMP/gen" "$TMP/gen.c" -L"$LLAMA/build/bin" -lggml-base -lm
LD_LIBRARY_PATH="$LLAMA/build/bin" "$TMP/gen" "$OUT"
echo "wrote $OUT ($(wc -c < "$OUT") bytes)"
