#!/bin/sh
# Times ggml's own IQ3_XXS / IQ3_S / TQ quantizers (ggml_quantize_chunk from
# llama.cpp's libggml-base, the code llama-quantize runs) on one thread, on
# the shape of quantbridge's BenchmarkQuantizeIQ3: 2^20 Gaussian values
# (sigma 0.02) as 4096 rows of 256, without and with an importance vector.
# Prints thread CPU milliseconds per 2^20 values (best of REPS runs).
#
# Usage: scripts/bench-iq3-kernels.sh [LLAMA_CPP_DIR]   (default ~/llama.cpp)
# Compare with: go test -run '^$' -bench QuantizeIQ3 ./quantize
set -eu
LLAMA=${1:-$HOME/llama.cpp}
REPS=${REPS:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/bench.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <math.h>
#include <time.h>
#include "ggml.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }
static double cpu_ms(void) {
    struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char ** argv) {
    int reps = atoi(argv[1]);
    const int n = 1 << 20, ncol = 256, nrow = n / ncol;
    float * x = malloc(n * sizeof(float));
    float * w = malloc(ncol * sizeof(float));
    void * q = malloc(n);
    for (int i = 0; i < n; i++) x[i] = 0.02f * gauss();
    for (int i = 0; i < ncol; i++) { float g = gauss(); w[i] = g * g + 0.01f; }
    enum ggml_type types[4] = {GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_TQ1_0, GGML_TYPE_TQ2_0};
    for (int t = 0; t < 4; t++) {
        ggml_quantize_init(types[t]);
        for (int weighted = 0; weighted < 2; weighted++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = cpu_ms();
                ggml_quantize_chunk(types[t], x, q, 0, nrow, ncol, weighted ? w : NULL);
                double dt = cpu_ms() - t0;
                if (dt < best) best = dt;
            }
            printf("ggml %s/%s: %.1f ms per 2^20 values (thread CPU)\n", ggml_type_name(types[t]), weighted ? "imatrix" : "x2", best);
        }
    }
    return 0;
}
CEOF
cc -O2 -I"$LLAMA/ggml/include" -o "$TMP/bench" "$TMP/bench.c" -L"$LLAMA/build/bin" -lggml-base -lm
LD_LIBRARY_PATH="$LLAMA/build/bin" "$TMP/bench" "$REPS"
