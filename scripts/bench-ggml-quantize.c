// bench-ggml-quantize: times ggml's quantizer (ggml_quantize_chunk, what
// llama-quantize runs) on the row BenchmarkQuantizeWeighted dumps, on one
// thread, and checks that its bytes equal quantbridge's.
//
//   QB_BENCH_DUMP=/tmp/qbrow go test -run '^$' -bench 'QuantizeWeighted/IQ4_XS' ./quantize
//   cc -O2 -I ~/llama.cpp/ggml/include scripts/bench-ggml-quantize.c
//      -L ~/llama.cpp/build/bin -lggml-base -o /tmp/bench-ggml-quantize
//   LD_LIBRARY_PATH=~/llama.cpp/build/bin /tmp/bench-ggml-quantize /tmp/qbrow IQ4_XS 23 w 5
//
// Arguments: the dump directory, the output's name there (<name>.bin), the
// ggml type number, "w" to weight by w.f32 or "-" for no importance
// vector, and the repetitions. Prints wall and thread-CPU milliseconds per
// row (best and median) and whether the bytes match.
#define _POSIX_C_SOURCE 199309L
#include <ggml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *slurp(const char *dir, const char *name, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(len);
    if (fread(p, 1, len, f) != (size_t)len) { perror(path); exit(1); }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s DUMPDIR NAME GGML_TYPE w|- REPS\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char outname[512];
    snprintf(outname, sizeof outname, "%s.bin", argv[2]);
    enum ggml_type type = (enum ggml_type)atoi(argv[3]);
    int reps = atoi(argv[5]);
    size_t nx, nw, nwant;
    float *x = slurp(dir, "x.f32", &nx);
    float *w = strcmp(argv[4], "w") == 0 ? slurp(dir, "w.f32", &nw) : NULL;
    unsigned char *want = slurp(dir, outname, &nwant);
    int64_t n = (int64_t)(nx / 4);
    size_t rs = ggml_row_size(type, n);
    if (rs != nwant) { fprintf(stderr, "row size %zu, %s has %zu bytes\n", rs, outname, nwant); return 1; }
    unsigned char *dst = malloc(rs);
    ggml_quantize_init(type);
    double *wall = malloc(sizeof(double) * reps), *cpu = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
        ggml_quantize_chunk(type, x, dst, 0, 1, n, w);
        cpu[r] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
        wall[r] = now(CLOCK_MONOTONIC) - w0;
    }
    qsort(wall, reps, sizeof(double), cmpd);
    qsort(cpu, reps, sizeof(double), cmpd);
    printf("%s: %lld values, wall ms best %.1f median %.1f, cpu ms best %.1f median %.1f, bytes %s\n",
           argv[2], (long long)n, wall[0], wall[reps / 2], cpu[0], cpu[reps / 2],
           memcmp(dst, want, rs) == 0 ? "identical" : "DIFFERENT");
    return 0;
}
