/*
 * optim_bench — params/s of the optimizer slots of CPU backends, side by side in one run (not a test: timing lives
 * here, never in ctest). Built on demand: `cmake --build <dir> --target bnb_optim_bench`.
 *
 *   bnb_optim_bench [--n N] [--threads T] [--reps R] [--bits 8|32|both] [--kind adamw|lion|momentum|...]
 *                   <backend-library>...
 *
 * Per backend and bit width: R timed steps after one warm-up step on f32 parameters; prints min and median ms per
 * step and params/s at the min and the median. Every backend gets the same data and the same step sequence.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "bnb_test_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds of the whole process: on a machine shared with other jobs, a 1-thread step's CPU time is a steadier
 * measure of the kernel than wall time (it still suffers from shared caches and SMT siblings). */
static double cpu_s(void) {
#if defined(CLOCK_PROCESS_CPUTIME_ID)
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

static int cmp_double(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static const struct {
    const char* name;
    int32_t kind;
    int states;
} kinds[] = {{"adamw", BNB_OPTIM_ADAM, 2},     {"momentum", BNB_OPTIM_MOMENTUM, 1}, {"rmsprop", BNB_OPTIM_RMSPROP, 1},
             {"adagrad", BNB_OPTIM_ADAGRAD, 1}, {"lion", BNB_OPTIM_LION, 1},         {"lamb", BNB_OPTIM_LAMB, 2},
             {"lars", BNB_OPTIM_LARS, 1},       {"ademamix", BNB_OPTIM_ADEMAMIX, 2}};

int main(int argc, char** argv) {
    int64_t n = 16 * 1024 * 1024;
    int32_t threads = 1, reps = 7, bits_mask = 3, k = 0;
    int first_lib = 1;
    for (; first_lib < argc && strncmp(argv[first_lib], "--", 2) == 0; first_lib += 2) {
        if (first_lib + 1 >= argc) break;
        const char* v = argv[first_lib + 1];
        if (strcmp(argv[first_lib], "--n") == 0) n = atoll(v);
        else if (strcmp(argv[first_lib], "--threads") == 0) threads = atoi(v);
        else if (strcmp(argv[first_lib], "--reps") == 0) reps = atoi(v);
        else if (strcmp(argv[first_lib], "--bits") == 0) bits_mask = strcmp(v, "8") == 0 ? 1 : strcmp(v, "32") == 0 ? 2 : 3;
        else if (strcmp(argv[first_lib], "--kind") == 0) {
            for (k = 0; k < (int)(sizeof kinds / sizeof kinds[0]) && strcmp(kinds[k].name, v) != 0; ++k) {}
            if (k == (int)(sizeof kinds / sizeof kinds[0])) { fprintf(stderr, "unknown kind %s\n", v); return 2; }
        }
    }
    if (first_lib >= argc || n <= 0 || reps <= 0 || reps > 1000) {
        fprintf(stderr, "usage: %s [--n N] [--threads T] [--reps R] [--bits 8|32|both] [--kind K] <backend>...\n",
                argv[0]);
        return 2;
    }
    const int64_t blocks = (n + 255) / 256;
    const int64_t s1n = kinds[k].kind == BNB_OPTIM_ADEMAMIX ? 2 * n : n;
    float* p = (float*)malloc((size_t)n * 4);
    float* g = (float*)malloc((size_t)n * 4);
    float* s32a = (float*)calloc((size_t)s1n, 4);
    float* s32b = (float*)calloc((size_t)n, 4);
    uint8_t* s8a = (uint8_t*)calloc((size_t)s1n, 1);
    uint8_t* s8b = (uint8_t*)calloc((size_t)n, 1);
    float* am1 = (float*)calloc((size_t)(2 * blocks), 4);
    float* am2 = (float*)calloc((size_t)blocks, 4);
    double* t = (double*)malloc((size_t)reps * sizeof(double));
    double* c = (double*)malloc((size_t)reps * sizeof(double));
    if (!p || !g || !s32a || !s32b || !s8a || !s8b || !am1 || !am2 || !t || !c) {
        fprintf(stderr, "out of memory for n = %lld\n", (long long)n);
        return 1;
    }
    uint32_t r = 1;
    for (int64_t i = 0; i < n; ++i) {
        r = r * 1664525u + 1013904223u;
        p[i] = (float)((r >> 8) & 0xFFFF) / 65536.0f - 0.5f;
        r = r * 1664525u + 1013904223u;
        g[i] = 0.01f * ((float)((r >> 8) & 0xFFFF) / 65536.0f - 0.5f);
    }
    printf("kind %s, n = %lld f32 params, %d thread(s), %d reps (+1 warm-up)\n", kinds[k].name, (long long)n,
           (int)threads, (int)reps);
    printf("%-32s %4s %9s %9s %13s %13s %12s %14s\n", "backend", "bits", "min ms", "median ms", "Mparams/s@min",
           "Mparams/s@med", "cpu min ms", "Mparams/s@cpu");
    for (int li = first_lib; li < argc; ++li) {
        bnbt_backend b;
        if (!bnbt_load(argv[li], &b) || b.probe() == 0) {
            printf("%-32s skipped (cannot load or cannot run here)\n", argv[li]);
            continue;
        }
        const bnb_api* A = b.api;
        bnb_context_options o = {sizeof o, 0, threads, BNB_NONFINITE_PROPAGATE};
        bnb_context* ctx = NULL;
        if (A->context_create(&o, &ctx) != BNB_OK) {
            printf("%-32s context_create failed: %s\n", argv[li], A->last_error_message());
            continue;
        }
        float q1[256], q2[256];
        bnb_tensor tq1 = bnbt_tensor1(q1, BNB_DTYPE_F32, 256), tq2 = bnbt_tensor1(q2, BNB_DTYPE_F32, 256);
        A->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &tq1);
        A->get_code_table(BNB_TABLE_DYNAMIC_UNSIGNED, &tq2);
        const char* name = strrchr(argv[li], '/');
        name = name ? name + 1 : argv[li];
        for (int bits = 8; bits <= 32; bits += 24) {
            if (!((bits == 8 && (bits_mask & 1)) || (bits == 32 && (bits_mask & 2)))) continue;
            bnb_status st = BNB_OK;
            for (int rep = -1; rep < reps && st == BNB_OK; ++rep) {
                bnb_optimizer_params h;
                memset(&h, 0, sizeof h);
                h.struct_size = sizeof h;
                h.kind = kinds[k].kind;
                h.step = rep + 2;
                h.rounding = BNB_ROUND_NEAREST;
                h.lr = 1e-3;
                h.beta1 = 0.9;
                h.beta2 = 0.999;
                h.beta3 = 0.9999;
                h.alpha = 5.0;
                h.eps = 1e-8;
                h.weight_decay = 1e-2;
                h.gnorm_scale = 1.0;
                h.param_norm = -1.0;
                bnb_tensor tp = bnbt_tensor1(p, BNB_DTYPE_F32, n), tg = bnbt_tensor1(g, BNB_DTYPE_F32, n);
                const double t0 = now_s(), c0 = cpu_s();
                if (bits == 32) {
                    bnb_tensor a = bnbt_tensor1(s32a, BNB_DTYPE_F32, s1n), c = bnbt_tensor1(s32b, BNB_DTYPE_F32, n);
                    st = A->optimizer_update_32bit(ctx, &h, &tp, &tg, &a, kinds[k].states == 2 ? &c : NULL, NULL);
                } else {
                    bnb_tensor a = bnbt_tensor1(s8a, BNB_DTYPE_U8, s1n), c = bnbt_tensor1(s8b, BNB_DTYPE_U8, n);
                    bnb_tensor m1 = bnbt_tensor1(am1, BNB_DTYPE_F32, s1n == n ? blocks : 2 * blocks);
                    bnb_tensor m2 = bnbt_tensor1(am2, BNB_DTYPE_F32, blocks);
                    const int two = kinds[k].states == 2;
                    st = A->optimizer_update_8bit_blockwise(ctx, &h, &tp, &tg, &a, two ? &c : NULL, &m1, two ? &m2 : NULL,
                                                            &tq1, two ? &tq2 : NULL);
                }
                if (rep >= 0) {
                    t[rep] = now_s() - t0;
                    c[rep] = cpu_s() - c0;
                }
            }
            if (st != BNB_OK) {
                printf("%-32s %4d failed: %s\n", name, bits, A->last_error_message());
                continue;
            }
            qsort(t, (size_t)reps, sizeof(double), cmp_double);
            qsort(c, (size_t)reps, sizeof(double), cmp_double);
            const double tmin = t[0], tmed = t[reps / 2];
            printf("%-32s %4d %9.2f %9.2f %13.1f %13.1f %12.2f %14.1f\n", name, bits, tmin * 1e3, tmed * 1e3,
                   n / tmin / 1e6, n / tmed / 1e6, c[0] * 1e3, n / c[0] / 1e6);
        }
        A->context_destroy(ctx);
        bnbt_unload(&b);
    }
    return 0;
}
