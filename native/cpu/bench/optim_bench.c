/*
 * optim_bench — params/s of the optimizer slots of CPU backends, side by side in one run (not a test: timing lives
 * here, never in ctest). Built on demand: `cmake --build <dir> --target bnb_optim_bench`.
 *
 *   bnb_optim_bench [--n N] [--threads T] [--reps R] [--bits 8|32|both] [--kind adamw|lion|momentum|...]
 *                   [--fresh-grad 1] [--nonfinite error|propagate] [--paged P [--spill DIR]]
 *                   <backend-library>...
 *
 * Per backend and bit width: R timed steps after one warm-up step on f32 parameters; prints min and median ms per
 * step and params/s at the min and the median. Every backend gets the same data and the same step sequence.
 *
 *   --fresh-grad 1   a new random gradient before every step (untimed), as in training; by default every step reuses
 *                    one gradient, so the states converge and most codes stop changing (an easier case).
 *   --nonfinite error|propagate   the context's NaN/Inf policy (default propagate; error, the library's default, adds
 *                    the gradient's NaN/Inf scan to every step).
 *   --paged P   also splits the N parameters into P equal tensors and runs them twice: states in plain memory, and
 *               states in PAGED buffers under a budget of a quarter of the total state (spill file in --spill DIR,
 *               default the temp directory), each step mapping a tensor's states, updating, unmapping and
 *               prefetching the next tensor's states, as a paged optimizer does. Prints both and the ratio.
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

/* The hyper-parameters every timed step uses (bitsandbytes' AdamW defaults; AdEMAMix extras). */
static bnb_optimizer_params bench_params(int32_t kind, int32_t step) {
    bnb_optimizer_params h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    h.kind = kind;
    h.step = step;
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
    return h;
}

/* ─── --paged: the same update over P tensors, states plain vs paged ──────────────────────────────────────── */

typedef struct {
    const bnb_api* A;
    bnb_context* ctx;
    int bits, two;
    int32_t kind;
    int64_t per; /* elements per tensor (multiple of 256) */
    int P;
    float *p, *g;
    uint8_t *s8a, *s8b;
    float *s32a, *s32b, *am1, *am2;
    const float *q1, *q2;
    bnb_buffer** bufs; /* [P][4] or NULL for plain memory */
} split_run;

static size_t state_bytes(const split_run* r, int k) {
    const int64_t blocks = r->per / 256;
    if (r->bits == 32) return (size_t)r->per * 4;
    return k < 2 ? (size_t)r->per : (size_t)blocks * 4;
}

static int state_count(const split_run* r) { return r->bits == 32 ? (r->two ? 2 : 1) : (r->two ? 4 : 2); }

/* One optimizer step over the P tensors; 0 on success. */
static int split_step(const split_run* r, int32_t step) {
    const int ns = state_count(r);
    for (int i = 0; i < r->P; ++i) {
        const int64_t off = (int64_t)i * r->per, blocks = r->per / 256;
        void* st[4] = {NULL, NULL, NULL, NULL};
        if (r->bufs) {
            for (int k = 0; k < ns; ++k)
                if (r->A->buffer_map_access(r->bufs[i * 4 + k], BNB_MAP_READ_WRITE, &st[k]) != BNB_OK) return 1;
        } else if (r->bits == 32) {
            st[0] = r->s32a + off;
            st[1] = r->s32b + off;
        } else {
            st[0] = r->s8a + off;
            st[1] = r->s8b + off;
            st[2] = r->am1 + off / 256;
            st[3] = r->am2 + off / 256;
        }
        const bnb_optimizer_params h = bench_params(r->kind, step);
        bnb_tensor tp = bnbt_tensor1(r->p + off, BNB_DTYPE_F32, r->per), tg = bnbt_tensor1(r->g + off, BNB_DTYPE_F32, r->per);
        bnb_status status;
        if (r->bits == 32) {
            bnb_tensor a = bnbt_tensor1(st[0], BNB_DTYPE_F32, r->per), c = bnbt_tensor1(st[1], BNB_DTYPE_F32, r->per);
            status = r->A->optimizer_update_32bit(r->ctx, &h, &tp, &tg, &a, r->two ? &c : NULL, NULL);
        } else {
            bnb_tensor a = bnbt_tensor1(st[0], BNB_DTYPE_U8, r->per), c = bnbt_tensor1(st[1], BNB_DTYPE_U8, r->per);
            bnb_tensor m1 = bnbt_tensor1(st[2], BNB_DTYPE_F32, blocks), m2 = bnbt_tensor1(st[3], BNB_DTYPE_F32, blocks);
            bnb_tensor t1 = bnbt_tensor1((void*)r->q1, BNB_DTYPE_F32, 256), t2 = bnbt_tensor1((void*)r->q2, BNB_DTYPE_F32, 256);
            if (!r->two) { /* 1-state kinds: absmax1 is the second buffer */
                m1 = bnbt_tensor1(st[1], BNB_DTYPE_F32, blocks);
            }
            status = r->A->optimizer_update_8bit_blockwise(r->ctx, &h, &tp, &tg, &a, r->two ? &c : NULL, &m1,
                                                           r->two ? &m2 : NULL, &t1, r->two ? &t2 : NULL);
        }
        if (status != BNB_OK) return 1;
        if (r->bufs) {
            for (int k = 0; k < ns; ++k) r->A->buffer_unmap(r->bufs[i * 4 + k]);
            if (i + 1 < r->P)
                for (int k = 0; k < ns; ++k)
                    r->A->paged_prefetch(r->ctx, r->bufs[(i + 1) * 4 + k], 0, state_bytes(r, k), BNB_PREFETCH_TO_DEVICE);
        }
    }
    return 0;
}

static void split_time(const split_run* r, int reps, double* t, double* out_min, double* out_med, double* out_cpu) {
    *out_cpu = 1e30;
    for (int rep = -1; rep < reps; ++rep) {
        const double t0 = now_s(), c0 = cpu_s();
        if (split_step(r, rep + 2) != 0) {
            printf("      failed: %s\n", r->A->last_error_message());
            *out_min = *out_med = *out_cpu = 0.0;
            return;
        }
        if (rep >= 0) {
            t[rep] = now_s() - t0;
            if (cpu_s() - c0 < *out_cpu) *out_cpu = cpu_s() - c0;
        }
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    *out_min = t[0];
    *out_med = t[reps / 2];
}

static void paged_compare(split_run r, int reps, const char* spill, double* t) {
    const int ns = state_count(&r);
    /* 1-state 8-bit kinds keep (codes, absmax) in slots 0 and 1 */
    size_t total = 0;
    for (int k = 0; k < ns; ++k) {
        const size_t b = r.bits == 8 && !r.two && k == 1 ? (size_t)(r.per / 256) * 4 : state_bytes(&r, k);
        total += (b + 63) / 64 * 64;
    }
    total *= (size_t)r.P;
    double plain_min, plain_med, paged_min, paged_med, plain_cpu, paged_cpu;
    r.bufs = NULL;
    split_time(&r, reps, t, &plain_min, &plain_med, &plain_cpu);
    bnb_pager_config cfg = {sizeof cfg, 0, total / 4, spill};
    if (r.A->pager_configure(r.ctx, &cfg) != BNB_OK) {
        printf("      pager_configure failed: %s\n", r.A->last_error_message());
        return;
    }
    bnb_buffer** bufs = (bnb_buffer**)calloc((size_t)r.P * 4, sizeof(bnb_buffer*));
    for (int i = 0; i < r.P && bufs; ++i)
        for (int k = 0; k < ns; ++k) {
            const size_t b = r.bits == 8 && !r.two && k == 1 ? (size_t)(r.per / 256) * 4 : state_bytes(&r, k);
            if (r.A->buffer_alloc(r.ctx, BNB_MEMORY_PAGED, b, &bufs[i * 4 + k]) != BNB_OK) {
                printf("      buffer_alloc failed: %s\n", r.A->last_error_message());
                return;
            }
        }
    r.bufs = bufs;
    bnb_memory_stats before;
    memset(&before, 0, sizeof before);
    before.struct_size = sizeof before;
    split_time(&r, 1, t, &paged_min, &paged_med, &paged_cpu); /* warm-up: the first spill */
    r.A->memory_stats(r.ctx, &before);
    split_time(&r, reps, t, &paged_min, &paged_med, &paged_cpu);
    bnb_memory_stats after = before;
    r.A->memory_stats(r.ctx, &after);
    const double steps = reps + 1;
    printf("      %d tensors x %lld, state %.1f MiB, budget %.1f MiB: plain min/med %.2f/%.2f ms, paged %.2f/%.2f ms, "
           "paged/plain (median) %.2fx; cpu min plain %.2f ms, paged %.2f ms (%.2fx); per step %.1f evictions, %.1f MiB "
           "written, %.1f MiB loaded\n",
           r.P, (long long)r.per, total / 1048576.0, total / 4 / 1048576.0, plain_min * 1e3, plain_med * 1e3,
           paged_min * 1e3, paged_med * 1e3, plain_med > 0 ? paged_med / plain_med : 0.0, plain_cpu * 1e3,
           paged_cpu * 1e3, plain_cpu > 0 ? paged_cpu / plain_cpu : 0.0,
           (after.evictions - before.evictions) / steps, (after.written_bytes - before.written_bytes) / steps / 1048576.0,
           (after.loaded_bytes - before.loaded_bytes) / steps / 1048576.0);
    for (int i = 0; i < r.P * 4; ++i) r.A->buffer_free(bufs[i]);
    free(bufs);
    bnb_pager_config off = {sizeof off, 0, 0, spill};
    r.A->pager_configure(r.ctx, &off);
}

int main(int argc, char** argv) {
    int64_t n = 16 * 1024 * 1024;
    int32_t threads = 1, reps = 7, bits_mask = 3, k = 0, paged = 0, fresh = 0, policy = BNB_NONFINITE_PROPAGATE;
    const char* spill = NULL;
    int first_lib = 1;
    for (; first_lib < argc && strncmp(argv[first_lib], "--", 2) == 0; first_lib += 2) {
        if (first_lib + 1 >= argc) break;
        const char* v = argv[first_lib + 1];
        if (strcmp(argv[first_lib], "--n") == 0) n = atoll(v);
        else if (strcmp(argv[first_lib], "--threads") == 0) threads = atoi(v);
        else if (strcmp(argv[first_lib], "--reps") == 0) reps = atoi(v);
        else if (strcmp(argv[first_lib], "--paged") == 0) paged = atoi(v);
        else if (strcmp(argv[first_lib], "--fresh-grad") == 0) fresh = atoi(v);
        else if (strcmp(argv[first_lib], "--nonfinite") == 0)
            policy = strcmp(v, "error") == 0 ? BNB_NONFINITE_ERROR : BNB_NONFINITE_PROPAGATE;
        else if (strcmp(argv[first_lib], "--spill") == 0) spill = v;
        else if (strcmp(argv[first_lib], "--bits") == 0) bits_mask = strcmp(v, "8") == 0 ? 1 : strcmp(v, "32") == 0 ? 2 : 3;
        else if (strcmp(argv[first_lib], "--kind") == 0) {
            for (k = 0; k < (int)(sizeof kinds / sizeof kinds[0]) && strcmp(kinds[k].name, v) != 0; ++k) {}
            if (k == (int)(sizeof kinds / sizeof kinds[0])) { fprintf(stderr, "unknown kind %s\n", v); return 2; }
        }
    }
    if (first_lib >= argc || n <= 0 || reps <= 0 || reps > 1000) {
        fprintf(stderr, "usage: %s [--n N] [--threads T] [--reps R] [--bits 8|32|both] [--kind K] [--fresh-grad 1] "
                        "[--nonfinite error|propagate] [--paged P] [--spill DIR] <backend>...\n",
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
        bnb_context_options o = {sizeof o, 0, threads, policy};
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
                const bnb_optimizer_params h = bench_params(kinds[k].kind, rep + 2);
                bnb_tensor tp = bnbt_tensor1(p, BNB_DTYPE_F32, n), tg = bnbt_tensor1(g, BNB_DTYPE_F32, n);
                if (fresh) { /* a new gradient each step, as in training (untimed) */
                    for (int64_t i = 0; i < n; ++i) {
                        r = r * 1664525u + 1013904223u;
                        g[i] = 0.01f * ((float)((r >> 8) & 0xFFFF) / 65536.0f - 0.5f);
                    }
                }
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
            if (paged > 0 && kinds[k].kind != BNB_OPTIM_ADEMAMIX && n / paged >= 256) {
                double* t2 = (double*)malloc((size_t)reps * sizeof(double));
                const split_run r = {A,   ctx, bits, kinds[k].states == 2, kinds[k].kind, n / paged / 256 * 256, paged,
                                     p,   g,   s8a,  s8b, s32a, s32b, am1, am2, q1, q2, NULL};
                if (t2) paged_compare(r, reps, spill, t2);
                free(t2);
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
