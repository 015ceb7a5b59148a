/*
 * bad_input_test — every op of the table on one backend, fed bad input through the public ABI:
 * NULL context / tensor / data / out-parameter, short outputs, n = 0 (no-op) and n = 1, blocksizes outside
 * {32, 64, …, 4096}, unsupported dtypes, mismatched shapes, NaN/Inf under both policies, bad enum values.
 * Each bad call must return the specific status, set a message naming the op and the argument (and the value where
 * there is one), and leave every output untouched (outputs are filled with a sentinel byte pattern before the call
 * and compared after). A loader part checks that a missing path and a text file named like a library fail cleanly.
 *
 *   bad_input_test <backend-library> <text-file-named-like-a-library> <missing-path>
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "api_check.h"
#include "bnb_test_loader.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_backend_name[64] = "";



/* ─── watched outputs: filled with a sentinel before a call, compared after ──────────────────────────────── */

#define SENTINEL 0xCD
#define MAX_WATCH 12
static struct {
    void* p;
    size_t n;
    unsigned char* copy; /* the bytes before the call (for in/out tensors with meaningful content) */
} g_watch[MAX_WATCH];
static int g_nwatch = 0;

/* Fill `p` with the sentinel and watch it. */
static void watch(void* p, size_t n) {
    if (g_nwatch >= MAX_WATCH) abort();
    memset(p, SENTINEL, n);
    g_watch[g_nwatch].p = p;
    g_watch[g_nwatch].n = n;
    g_watch[g_nwatch].copy = (unsigned char*)malloc(n ? n : 1);
    memcpy(g_watch[g_nwatch].copy, p, n);
    ++g_nwatch;
}
/* Watch an in/out buffer without changing its content (optimizer params and states, gnorm history). */
static void watch_keep(void* p, size_t n) {
    if (g_nwatch >= MAX_WATCH) abort();
    g_watch[g_nwatch].p = p;
    g_watch[g_nwatch].n = n;
    g_watch[g_nwatch].copy = (unsigned char*)malloc(n ? n : 1);
    memcpy(g_watch[g_nwatch].copy, p, n);
    ++g_nwatch;
}
static int untouched(const char* what) {
    int i, ok = 1;
    for (i = 0; i < g_nwatch; ++i) {
        if (memcmp(g_watch[i].p, g_watch[i].copy, g_watch[i].n) != 0) {
            size_t k = 0;
            while (((unsigned char*)g_watch[i].p)[k] == g_watch[i].copy[k]) ++k;
            CHECK(0, "%s: output #%d was written (first changed byte %zu of %zu)", what, i, k, g_watch[i].n);
            ok = 0;
        }
        free(g_watch[i].copy);
    }
    g_nwatch = 0;
    return ok;
}
static void unwatch(void) {
    int i;
    for (i = 0; i < g_nwatch; ++i) free(g_watch[i].copy);
    g_nwatch = 0;
}

/* A failing call: status must be `want` (or `alt` when alt >= 0: the header leaves the choice open), the message
 * must name the backend, the op and every non-NULL needle, and every watched output must be untouched. */
static void expect_fail2(const char* what, bnb_status got, bnb_status want, bnb_status alt, const char* op,
                         const char* needle1, const char* needle2) {
    const char* m = A->last_error_message();
    CHECK(got == want || (alt >= 0 && got == alt), "%s: status %s (%d), expected %s%s%s; message: %s", what,
          bnbt_status_name(got), (int)got, bnbt_status_name(want), alt >= 0 ? " or " : "",
          alt >= 0 ? bnbt_status_name(alt) : "", m ? m : "(NULL)");
    if (got != BNB_OK) {
        CHECK(m != NULL && m[0] != '\0', "%s: no error message", what);
        if (m && m[0]) {
            if (g_backend_name[0])
                CHECK(strstr(m, g_backend_name) != NULL, "%s: message \"%s\" does not name the backend \"%s\"",
                      what, m, g_backend_name);
            if (op) CHECK(strstr(m, op) != NULL, "%s: message \"%s\" does not name the op \"%s\"", what, m, op);
            if (needle1)
                CHECK(strstr(m, needle1) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, m, needle1);
            if (needle2)
                CHECK(strstr(m, needle2) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, m, needle2);
        }
    }
    untouched(what);
}
static void expect_fail(const char* what, bnb_status got, bnb_status want, const char* op, const char* needle1,
                        const char* needle2) {
    expect_fail2(what, got, want, -1, op, needle1, needle2);
}
/* A successful call. */
static void expect_ok(const char* what, bnb_status got) {
    CHECK(got == BNB_OK, "%s: status %s (%d), expected OK; message: %s", what, bnbt_status_name(got), (int)got, msg());
    unwatch();
}
/* A successful call that must not write anything (n = 0). */
static void expect_noop(const char* what, bnb_status got) {
    CHECK(got == BNB_OK, "%s: status %s (%d), expected OK (no-op); message: %s", what, bnbt_status_name(got),
          (int)got, msg());
    untouched(what);
}

static bnb_tensor T1(void* data, int32_t dtype, int64_t n) { return bnbt_tensor1(data, dtype, n); }
static bnb_tensor T2(void* data, int32_t dtype, int64_t r, int64_t c) { return bnbt_tensor2(data, dtype, r, c); }

static bnb_absmax plain(const bnb_tensor* values) {
    bnb_absmax m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.values = values;
    return m;
}

static bnb_context* g_ctx;      /* default policy: NaN/Inf → BNB_ERR_NON_FINITE */
static bnb_context* g_ctx_prop; /* BNB_NONFINITE_PROPAGATE */

static const int64_t BAD_BLOCKSIZES[] = {0, 16, 31, 48, 100, 8192, -64};
#define NBAD (sizeof BAD_BLOCKSIZES / sizeof BAD_BLOCKSIZES[0])

static float g_signed[256], g_unsigned[256];

/* ─── 8-bit blockwise ────────────────────────────────────────────────────────────────────────────────────── */

static void test_quantize_blockwise(void) {
    const char* op = "quantize_blockwise";
    enum { N = 300 };
    float x[N];
    uint8_t codes[N];
    float absmax[16];
    char what[128], val[32];
    size_t i;
    for (i = 0; i < N; ++i) x[i] = (float)sin((double)i) * 3.0f;
    bnb_tensor tA = T1(x, BNB_DTYPE_F32, N), tcode = T1(g_signed, BNB_DTYPE_F32, 256);
    bnb_tensor tq = T1(codes, BNB_DTYPE_U8, N), tm = T1(absmax, BNB_DTYPE_F32, 16);
    bnb_tensor bad;

#define QB(ctx, a, code, bs, rnd, q, m) A->quantize_blockwise(ctx, a, code, bs, rnd, q, m)
#define WATCH_QB()                                                                                                     \
    do {                                                                                                               \
        watch(codes, sizeof codes);                                                                                    \
        watch(absmax, sizeof absmax);                                                                                  \
    } while (0)

    WATCH_QB();
    expect_ok("quantize_blockwise valid", QB(g_ctx, &tA, &tcode, 64, BNB_ROUND_NEAREST, &tq, &tm));
    WATCH_QB();
    expect_fail("quantize_blockwise(NULL context)", QB(NULL, &tA, &tcode, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, op,
                "context", NULL);
    WATCH_QB();
    expect_fail("quantize_blockwise(A = NULL)", QB(g_ctx, NULL, &tcode, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, op,
                "A", NULL);
    WATCH_QB();
    expect_fail("quantize_blockwise(code = NULL)", QB(g_ctx, &tA, NULL, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, op,
                "code", NULL);
    WATCH_QB();
    expect_fail("quantize_blockwise(out_codes = NULL)", QB(g_ctx, &tA, &tcode, 64, 0, NULL, &tm),
                BNB_ERR_NULL_POINTER, op, "out_codes", NULL);
    WATCH_QB();
    expect_fail("quantize_blockwise(out_absmax = NULL)", QB(g_ctx, &tA, &tcode, 64, 0, &tq, NULL),
                BNB_ERR_NULL_POINTER, op, "out_absmax", NULL);
    bad = tA;
    bad.data = NULL;
    WATCH_QB();
    expect_fail("quantize_blockwise(A.data = NULL)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER,
                op, "A", NULL);
    bad = tq;
    bad.shape[0] = N - 1;
    WATCH_QB();
    expect_fail("quantize_blockwise(out_codes short)", QB(g_ctx, &tA, &tcode, 64, 0, &bad, &tm),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_codes", NULL);
    bad = tm;
    bad.shape[0] = 4; /* needs ceil(300/64) = 5 */
    WATCH_QB();
    expect_fail("quantize_blockwise(out_absmax short)", QB(g_ctx, &tA, &tcode, 64, 0, &tq, &bad),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_absmax", NULL);
    for (i = 0; i < NBAD; ++i) {
        snprintf(what, sizeof what, "quantize_blockwise(blocksize = %lld)", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        WATCH_QB();
        expect_fail(what, QB(g_ctx, &tA, &tcode, BAD_BLOCKSIZES[i], 0, &tq, &tm), BNB_ERR_INVALID_BLOCKSIZE, op,
                    "blocksize", val);
    }
    WATCH_QB();
    expect_ok("quantize_blockwise(blocksize = 32)", QB(g_ctx, &tA, &tcode, 32, 0, &tq, &tm));
    WATCH_QB();
    expect_ok("quantize_blockwise(blocksize = 4096)", QB(g_ctx, &tA, &tcode, 4096, 0, &tq, &tm));
    WATCH_QB();
    expect_fail("quantize_blockwise(rounding = 2)", QB(g_ctx, &tA, &tcode, 64, 2, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                op, "rounding", "2");
    WATCH_QB();
    expect_fail("quantize_blockwise(rounding = -1)", QB(g_ctx, &tA, &tcode, 64, -1, &tq, &tm),
                BNB_ERR_INVALID_ARGUMENT, op, "rounding", "-1");
    bad = tcode;
    bad.shape[0] = 255;
    WATCH_QB();
    expect_fail2("quantize_blockwise(code with 255 entries)", QB(g_ctx, &tA, &bad, 64, 0, &tq, &tm),
                 BNB_ERR_INVALID_ARGUMENT, BNB_ERR_BUFFER_TOO_SMALL, op, "code", NULL);
    bad = tA;
    bad.dtype = BNB_DTYPE_I32;
    WATCH_QB();
    expect_fail("quantize_blockwise(A i32)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm), BNB_ERR_UNSUPPORTED_DTYPE, op,
                "A", NULL);
    bad = tA;
    bad.dtype = 99;
    WATCH_QB();
    expect_fail("quantize_blockwise(A dtype 99)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "A", NULL);
    bad = tcode;
    bad.dtype = BNB_DTYPE_F16;
    WATCH_QB();
    expect_fail("quantize_blockwise(code f16)", QB(g_ctx, &tA, &bad, 64, 0, &tq, &tm), BNB_ERR_UNSUPPORTED_DTYPE, op,
                "code", NULL);
    bad = tq;
    bad.dtype = BNB_DTYPE_I8;
    WATCH_QB();
    expect_fail("quantize_blockwise(out_codes i8)", QB(g_ctx, &tA, &tcode, 64, 0, &bad, &tm),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out_codes", NULL);
    bad = tm;
    bad.dtype = BNB_DTYPE_F16;
    WATCH_QB();
    expect_fail("quantize_blockwise(out_absmax f16)", QB(g_ctx, &tA, &tcode, 64, 0, &tq, &bad),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out_absmax", NULL);
    bad = tA;
    bad.ndim = 5;
    WATCH_QB();
    expect_fail("quantize_blockwise(A.ndim = 5)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                op, "A", "5");
    bad = tA;
    bad.shape[0] = -3;
    WATCH_QB();
    expect_fail("quantize_blockwise(A.shape[0] = -3)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm),
                BNB_ERR_INVALID_ARGUMENT, op, "A", "-3");
    bad = T2(x, BNB_DTYPE_F32, 10, 10);
    bad.stride[0] = 20; /* rows with gaps: not contiguous */
    bad.stride[1] = 1;
    WATCH_QB();
    expect_fail("quantize_blockwise(A strided)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                op, "A", NULL);

    /* n = 0: OK, nothing written. n = 1. */
    bad = tA;
    bad.shape[0] = 0;
    WATCH_QB();
    expect_noop("quantize_blockwise(n = 0)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm));
    bad.data = NULL;
    WATCH_QB();
    expect_noop("quantize_blockwise(n = 0, data NULL)", QB(g_ctx, &bad, &tcode, 64, 0, &tq, &tm));
    {
        float one = 0.5f;
        int r;
        bnb_tensor t1 = T1(&one, BNB_DTYPE_F32, 1);
        for (r = 0; r <= 1; ++r) {
            codes[0] = 0;
            absmax[0] = 0;
            expect_ok("quantize_blockwise(n = 1)", QB(g_ctx, &t1, &tcode, 64, r, &tq, &tm));
            CHECK(codes[0] == 255 && absmax[0] == 0.5f, "quantize_blockwise(n = 1, rounding %d): code %u absmax %g",
                  r, codes[0], (double)absmax[0]);
        }
    }

    /* NaN / Inf: rejected (naming the index) under the default policy, encoded under PROPAGATE. */
    x[17] = NAN;
    WATCH_QB();
    expect_fail("quantize_blockwise(NaN at 17)", QB(g_ctx, &tA, &tcode, 64, 0, &tq, &tm), BNB_ERR_NON_FINITE, op,
                "17", NULL);
    WATCH_QB();
    expect_ok("quantize_blockwise(NaN, PROPAGATE)",
              QB(g_ctx_prop, &tA, &tcode, 64, BNB_ROUND_BNB_CPU_LUT, &tq, &tm));
    x[17] = 0.0f;
    x[200] = -INFINITY;
    WATCH_QB();
    expect_fail("quantize_blockwise(-Inf at 200)", QB(g_ctx, &tA, &tcode, 64, 0, &tq, &tm), BNB_ERR_NON_FINITE, op,
                "200", NULL);
    WATCH_QB();
    expect_ok("quantize_blockwise(-Inf, PROPAGATE)", QB(g_ctx_prop, &tA, &tcode, 64, 0, &tq, &tm));
    CHECK(isinf(absmax[3]), "PROPAGATE: the block holding -Inf should get absmax Inf, got %g", (double)absmax[3]);
    x[200] = 1.0f;
#undef QB
#undef WATCH_QB
}

static void test_dequantize_blockwise(void) {
    const char* op = "dequantize_blockwise";
    enum { N = 300 };
    uint8_t codes[N];
    float absmax[5] = {1, 2, 3, 4, 5}, out[N], nested_absmax[1] = {1.0f};
    uint8_t nested_codes[5] = {250, 251, 252, 253, 254};
    char what[128], val[32];
    size_t i;
    for (i = 0; i < N; ++i) codes[i] = (uint8_t)(i * 7);
    bnb_tensor tq = T1(codes, BNB_DTYPE_U8, N), tm = T1(absmax, BNB_DTYPE_F32, 5);
    bnb_tensor tcode = T1(g_signed, BNB_DTYPE_F32, 256), to = T1(out, BNB_DTYPE_F32, N), bad;
    bnb_absmax am = plain(&tm), badm;

#define DQ(ctx, q, m, code, bs, o) A->dequantize_blockwise(ctx, q, m, code, bs, o)
    watch(out, sizeof out);
    expect_ok("dequantize_blockwise valid", DQ(g_ctx, &tq, &am, &tcode, 64, &to));
    CHECK(out[0] == g_signed[0] * 1.0f && out[299] == g_signed[(299 * 7) & 255] * 5.0f,
          "dequantize_blockwise values: out[0] = %g, out[299] = %g", (double)out[0], (double)out[299]);
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(NULL context)", DQ(NULL, &tq, &am, &tcode, 64, &to), BNB_ERR_NULL_POINTER, op,
                "context", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(codes = NULL)", DQ(g_ctx, NULL, &am, &tcode, 64, &to), BNB_ERR_NULL_POINTER, op,
                "codes", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(absmax = NULL)", DQ(g_ctx, &tq, NULL, &tcode, 64, &to), BNB_ERR_NULL_POINTER,
                op, "absmax", NULL);
    badm = am;
    badm.values = NULL;
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(absmax.values = NULL)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                BNB_ERR_NULL_POINTER, op, "absmax", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(code = NULL)", DQ(g_ctx, &tq, &am, NULL, 64, &to), BNB_ERR_NULL_POINTER, op,
                "code", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(out = NULL)", DQ(g_ctx, &tq, &am, &tcode, 64, NULL), BNB_ERR_NULL_POINTER, op,
                "out", NULL);
    bad = tq;
    bad.shape[0] = N - 1;
    watch(out, sizeof out);
    expect_fail2("dequantize_blockwise(codes short)", DQ(g_ctx, &bad, &am, &tcode, 64, &to),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "codes", NULL);
    bad = tm;
    bad.shape[0] = 4;
    badm = plain(&bad);
    watch(out, sizeof out);
    expect_fail2("dequantize_blockwise(absmax short)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "absmax", NULL);
    for (i = 0; i < NBAD; ++i) {
        snprintf(what, sizeof what, "dequantize_blockwise(blocksize = %lld)", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        watch(out, sizeof out);
        expect_fail(what, DQ(g_ctx, &tq, &am, &tcode, BAD_BLOCKSIZES[i], &to), BNB_ERR_INVALID_BLOCKSIZE, op,
                    "blocksize", val);
    }
    bad = to;
    bad.dtype = BNB_DTYPE_I32;
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(out i32)", DQ(g_ctx, &tq, &am, &tcode, 64, &bad), BNB_ERR_UNSUPPORTED_DTYPE, op,
                "out", NULL);
    bad = tq;
    bad.dtype = BNB_DTYPE_F32;
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(codes f32)", DQ(g_ctx, &bad, &am, &tcode, 64, &to), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "codes", NULL);
    badm = am;
    badm.nested = 2;
    watch(out, sizeof out);
    expect_fail("dequantize_blockwise(absmax.nested = 2)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                BNB_ERR_INVALID_ARGUMENT, op, "nested", "2");
    {
        bnb_tensor tnc = T1(nested_codes, BNB_DTYPE_U8, 5), tna = T1(nested_absmax, BNB_DTYPE_F32, 1);
        bnb_absmax nm;
        memset(&nm, 0, sizeof nm);
        nm.struct_size = sizeof nm;
        nm.nested = 1;
        nm.values = &tnc;
        nm.nested_absmax = &tna;
        nm.nested_code = &tcode;
        nm.nested_blocksize = 256;
        nm.nested_offset = 0.5f;
        watch(out, sizeof out);
        expect_ok("dequantize_blockwise(nested absmax)", DQ(g_ctx, &tq, &nm, &tcode, 64, &to));
        badm = nm;
        badm.nested_code = NULL;
        watch(out, sizeof out);
        expect_fail("dequantize_blockwise(nested_code = NULL)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                    BNB_ERR_NULL_POINTER, op, "nested_code", NULL);
        badm = nm;
        badm.nested_absmax = NULL;
        watch(out, sizeof out);
        expect_fail("dequantize_blockwise(nested_absmax = NULL)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                    BNB_ERR_NULL_POINTER, op, "nested_absmax", NULL);
        badm = nm;
        badm.nested_blocksize = 100;
        watch(out, sizeof out);
        expect_fail("dequantize_blockwise(nested_blocksize = 100)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                    BNB_ERR_INVALID_BLOCKSIZE, op, "nested_blocksize", "100");
        badm = nm;
        badm.nested_offset = NAN;
        watch(out, sizeof out);
        expect_fail2("dequantize_blockwise(nested_offset = NaN)", DQ(g_ctx, &tq, &badm, &tcode, 64, &to),
                     BNB_ERR_NON_FINITE, BNB_ERR_INVALID_ARGUMENT, op, "nested_offset", NULL);
    }
    bad = to;
    bad.shape[0] = 0;
    watch(out, sizeof out);
    expect_noop("dequantize_blockwise(n = 0)", DQ(g_ctx, &tq, &am, &tcode, 64, &bad));
    bad.shape[0] = 1;
    watch(out, sizeof out);
    expect_ok("dequantize_blockwise(n = 1)", DQ(g_ctx, &tq, &am, &tcode, 64, &bad));
    CHECK(out[0] == g_signed[0], "dequantize_blockwise(n = 1): out[0] = %g, expected %g", (double)out[0], (double)g_signed[0]);
    CHECK(((unsigned char*)out)[4] == SENTINEL, "dequantize_blockwise(n = 1) wrote past element 0");
#undef DQ
}

static void test_quantize_absmax_nested(void) {
    const char* op = "quantize_absmax_nested";
    enum { B = 600 };
    float absmax[B], nabs[3], off = -1, offset_in = 0.25f;
    uint8_t codes[B];
    char what[128], val[32];
    size_t i;
    for (i = 0; i < B; ++i) absmax[i] = 0.1f + (float)(i % 17) * 0.01f;
    bnb_tensor ta = T1(absmax, BNB_DTYPE_F32, B), tcode = T1(g_signed, BNB_DTYPE_F32, 256);
    bnb_tensor tc = T1(codes, BNB_DTYPE_U8, B), tn = T1(nabs, BNB_DTYPE_F32, 3), bad;

#define QN(ctx, a, code, nbs, rnd, oin, c, n, o) A->quantize_absmax_nested(ctx, a, code, nbs, rnd, oin, c, n, o)
#define W()                                                                                                            \
    do {                                                                                                               \
        watch(codes, sizeof codes);                                                                                    \
        watch(nabs, sizeof nabs);                                                                                      \
        watch(&off, sizeof off);                                                                                       \
    } while (0)
    W();
    expect_ok("quantize_absmax_nested valid", QN(g_ctx, &ta, &tcode, 256, 0, NULL, &tc, &tn, &off));
    W();
    expect_ok("quantize_absmax_nested(offset_in)", QN(g_ctx, &ta, &tcode, 256, 1, &offset_in, &tc, &tn, &off));
    CHECK(off == offset_in, "out_offset %g != offset_in %g", (double)off, (double)offset_in);
    W();
    expect_fail("quantize_absmax_nested(NULL context)", QN(NULL, &ta, &tcode, 256, 0, NULL, &tc, &tn, &off),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    W();
    expect_fail("quantize_absmax_nested(absmax = NULL)", QN(g_ctx, NULL, &tcode, 256, 0, NULL, &tc, &tn, &off),
                BNB_ERR_NULL_POINTER, op, "absmax", NULL);
    W();
    expect_fail("quantize_absmax_nested(out_offset = NULL)", QN(g_ctx, &ta, &tcode, 256, 0, NULL, &tc, &tn, NULL),
                BNB_ERR_NULL_POINTER, op, "out_offset", NULL);
    W();
    expect_fail("quantize_absmax_nested(out_codes = NULL)", QN(g_ctx, &ta, &tcode, 256, 0, NULL, NULL, &tn, &off),
                BNB_ERR_NULL_POINTER, op, "out_codes", NULL);
    bad = tn;
    bad.shape[0] = 2;
    W();
    expect_fail("quantize_absmax_nested(out_nested_absmax short)",
                QN(g_ctx, &ta, &tcode, 256, 0, NULL, &tc, &bad, &off), BNB_ERR_BUFFER_TOO_SMALL, op,
                "out_nested_absmax", NULL);
    bad = tc;
    bad.shape[0] = B - 1;
    W();
    expect_fail("quantize_absmax_nested(out_codes short)", QN(g_ctx, &ta, &tcode, 256, 0, NULL, &bad, &tn, &off),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_codes", NULL);
    for (i = 0; i < NBAD; ++i) {
        snprintf(what, sizeof what, "quantize_absmax_nested(nested_blocksize = %lld)", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        W();
        expect_fail(what, QN(g_ctx, &ta, &tcode, BAD_BLOCKSIZES[i], 0, NULL, &tc, &tn, &off),
                    BNB_ERR_INVALID_BLOCKSIZE, op, "blocksize", val);
    }
    W();
    expect_fail("quantize_absmax_nested(rounding = 3)", QN(g_ctx, &ta, &tcode, 256, 3, NULL, &tc, &tn, &off),
                BNB_ERR_INVALID_ARGUMENT, op, "rounding", "3");
    bad = ta;
    bad.dtype = BNB_DTYPE_F16;
    W();
    expect_fail("quantize_absmax_nested(absmax f16)", QN(g_ctx, &bad, &tcode, 256, 0, NULL, &tc, &tn, &off),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "absmax", NULL);
    absmax[5] = NAN;
    W();
    expect_fail("quantize_absmax_nested(NaN at 5)", QN(g_ctx, &ta, &tcode, 256, 0, NULL, &tc, &tn, &off),
                BNB_ERR_NON_FINITE, op, "5", NULL);
    absmax[5] = 0.2f;
    {
        float inf_off = INFINITY;
        W();
        expect_fail2("quantize_absmax_nested(offset_in = Inf)",
                     QN(g_ctx, &ta, &tcode, 256, 0, &inf_off, &tc, &tn, &off), BNB_ERR_NON_FINITE,
                     BNB_ERR_INVALID_ARGUMENT, op, "offset", NULL);
    }
    bad = ta;
    bad.shape[0] = 0;
    W();
    expect_noop("quantize_absmax_nested(n = 0)", QN(g_ctx, &bad, &tcode, 256, 0, NULL, &tc, &tn, &off));
    bad.shape[0] = 1;
    W();
    expect_ok("quantize_absmax_nested(n = 1)", QN(g_ctx, &bad, &tcode, 256, 0, NULL, &tc, &tn, &off));
    CHECK(off == absmax[0], "n = 1: offset = mean = %g, expected %g", (double)off, (double)absmax[0]);
#undef QN
#undef W
}

/* ─── 4-bit ──────────────────────────────────────────────────────────────────────────────────────────────── */

static void test_quantize_4bit(void) {
    const char* op = "quantize_4bit";
    enum { N = 257 };
    float x[N], absmax[16];
    uint8_t packed[(N + 1) / 2];
    char what[128], val[32];
    size_t i;
    for (i = 0; i < N; ++i) x[i] = (float)cos((double)i * 0.3);
    bnb_tensor tA = T1(x, BNB_DTYPE_F32, N), tp = T1(packed, BNB_DTYPE_U8, (N + 1) / 2);
    bnb_tensor tm = T1(absmax, BNB_DTYPE_F32, 16), bad;

#define Q4(ctx, a, qt, bs, p, m) A->quantize_4bit(ctx, a, qt, bs, p, m)
#define W()                                                                                                            \
    do {                                                                                                               \
        watch(packed, sizeof packed);                                                                                  \
        watch(absmax, sizeof absmax);                                                                                  \
    } while (0)
    W();
    expect_ok("quantize_4bit valid", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &tp, &tm));
    W();
    expect_fail("quantize_4bit(NULL context)", Q4(NULL, &tA, BNB_QUANT_NF4, 64, &tp, &tm), BNB_ERR_NULL_POINTER, op,
                "context", NULL);
    W();
    expect_fail("quantize_4bit(A = NULL)", Q4(g_ctx, NULL, BNB_QUANT_NF4, 64, &tp, &tm), BNB_ERR_NULL_POINTER, op,
                "A", NULL);
    W();
    expect_fail("quantize_4bit(out_packed = NULL)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, NULL, &tm),
                BNB_ERR_NULL_POINTER, op, "out_packed", NULL);
    W();
    expect_fail("quantize_4bit(out_absmax = NULL)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &tp, NULL),
                BNB_ERR_NULL_POINTER, op, "out_absmax", NULL);
    bad = tp;
    bad.data = NULL;
    W();
    expect_fail("quantize_4bit(out_packed.data = NULL)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &bad, &tm),
                BNB_ERR_NULL_POINTER, op, "out_packed", NULL);
    bad = tp;
    bad.shape[0] = (N + 1) / 2 - 1;
    W();
    expect_fail("quantize_4bit(out_packed short: odd n needs (n+1)/2)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &bad, &tm),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_packed", NULL);
    bad = tm;
    bad.shape[0] = 4; /* needs 5 */
    W();
    expect_fail("quantize_4bit(out_absmax short)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &tp, &bad),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_absmax", NULL);
    for (i = 0; i < NBAD; ++i) {
        snprintf(what, sizeof what, "quantize_4bit(blocksize = %lld)", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        W();
        expect_fail(what, Q4(g_ctx, &tA, BNB_QUANT_FP4, BAD_BLOCKSIZES[i], &tp, &tm), BNB_ERR_INVALID_BLOCKSIZE, op,
                    "blocksize", val);
    }
    W();
    expect_fail("quantize_4bit(quant_type = 0)", Q4(g_ctx, &tA, 0, 64, &tp, &tm), BNB_ERR_INVALID_ARGUMENT, op,
                "quant_type", "0");
    W();
    expect_fail("quantize_4bit(quant_type = 3)", Q4(g_ctx, &tA, 3, 64, &tp, &tm), BNB_ERR_INVALID_ARGUMENT, op,
                "quant_type", "3");
    bad = tA;
    bad.dtype = BNB_DTYPE_I32;
    W();
    expect_fail("quantize_4bit(A i32)", Q4(g_ctx, &bad, BNB_QUANT_NF4, 64, &tp, &tm), BNB_ERR_UNSUPPORTED_DTYPE, op,
                "A", NULL);
    bad = tp;
    bad.dtype = BNB_DTYPE_F32;
    W();
    expect_fail("quantize_4bit(out_packed f32)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &bad, &tm),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out_packed", NULL);
    x[100] = INFINITY;
    W();
    expect_fail("quantize_4bit(Inf at 100)", Q4(g_ctx, &tA, BNB_QUANT_NF4, 64, &tp, &tm), BNB_ERR_NON_FINITE, op,
                "100", NULL);
    W();
    expect_ok("quantize_4bit(Inf, PROPAGATE)", Q4(g_ctx_prop, &tA, BNB_QUANT_NF4, 64, &tp, &tm));
    x[100] = 0.5f;
    bad = tA;
    bad.shape[0] = 0;
    W();
    expect_noop("quantize_4bit(n = 0)", Q4(g_ctx, &bad, BNB_QUANT_NF4, 64, &tp, &tm));
    {
        float one = 0.5f;
        bnb_tensor t1 = T1(&one, BNB_DTYPE_F32, 1);
        W();
        expect_ok("quantize_4bit(n = 1, NF4)", Q4(g_ctx, &t1, BNB_QUANT_NF4, 64, &tp, &tm));
        CHECK(packed[0] == 0xF7 && absmax[0] == 0.5f, "n = 1 NF4: byte 0x%02x (expected 0xF7: code 15, pad 7) absmax %g",
              packed[0], (double)absmax[0]);
        CHECK(packed[1] == SENTINEL, "quantize_4bit(n = 1) wrote a second byte");
        W();
        expect_ok("quantize_4bit(n = 1, FP4)", Q4(g_ctx, &t1, BNB_QUANT_FP4, 64, &tp, &tm));
        CHECK(packed[0] == 0x30, "n = 1 FP4: byte 0x%02x (expected 0x30: code 3, pad 0)", packed[0]);
    }
#undef Q4
#undef W
}

static void test_dequantize_4bit(void) {
    const char* op = "dequantize_4bit";
    enum { N = 257 };
    uint8_t packed[(N + 1) / 2];
    float absmax[5] = {1, 2, 3, 4, 5}, out[N];
    char what[128], val[32];
    size_t i;
    for (i = 0; i < sizeof packed; ++i) packed[i] = (uint8_t)(i * 37);
    bnb_tensor tp = T1(packed, BNB_DTYPE_U8, sizeof packed), tm = T1(absmax, BNB_DTYPE_F32, 5);
    bnb_tensor to = T1(out, BNB_DTYPE_F32, N), bad;
    bnb_absmax am = plain(&tm), badm;

#define D4(ctx, p, m, qt, bs, o) A->dequantize_4bit(ctx, p, m, qt, bs, o)
    watch(out, sizeof out);
    expect_ok("dequantize_4bit valid", D4(g_ctx, &tp, &am, BNB_QUANT_NF4, 64, &to));
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(NULL context)", D4(NULL, &tp, &am, BNB_QUANT_NF4, 64, &to), BNB_ERR_NULL_POINTER, op,
                "context", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(packed = NULL)", D4(g_ctx, NULL, &am, BNB_QUANT_NF4, 64, &to), BNB_ERR_NULL_POINTER,
                op, "packed", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(absmax = NULL)", D4(g_ctx, &tp, NULL, BNB_QUANT_NF4, 64, &to), BNB_ERR_NULL_POINTER,
                op, "absmax", NULL);
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(out = NULL)", D4(g_ctx, &tp, &am, BNB_QUANT_NF4, 64, NULL), BNB_ERR_NULL_POINTER, op,
                "out", NULL);
    bad = to;
    bad.data = NULL;
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(out.data = NULL)", D4(g_ctx, &tp, &am, BNB_QUANT_NF4, 64, &bad),
                BNB_ERR_NULL_POINTER, op, "out", NULL);
    bad = tp;
    bad.shape[0] = (N + 1) / 2 - 1;
    watch(out, sizeof out);
    expect_fail2("dequantize_4bit(packed short)", D4(g_ctx, &bad, &am, BNB_QUANT_NF4, 64, &to),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "packed", NULL);
    bad = tm;
    bad.shape[0] = 4;
    badm = plain(&bad);
    watch(out, sizeof out);
    expect_fail2("dequantize_4bit(absmax short)", D4(g_ctx, &tp, &badm, BNB_QUANT_NF4, 64, &to),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "absmax", NULL);
    for (i = 0; i < NBAD; ++i) {
        snprintf(what, sizeof what, "dequantize_4bit(blocksize = %lld)", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        watch(out, sizeof out);
        expect_fail(what, D4(g_ctx, &tp, &am, BNB_QUANT_NF4, BAD_BLOCKSIZES[i], &to), BNB_ERR_INVALID_BLOCKSIZE, op,
                    "blocksize", val);
    }
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(quant_type = 7)", D4(g_ctx, &tp, &am, 7, 64, &to), BNB_ERR_INVALID_ARGUMENT, op,
                "quant_type", "7");
    bad = to;
    bad.dtype = BNB_DTYPE_I8;
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(out i8)", D4(g_ctx, &tp, &am, BNB_QUANT_NF4, 64, &bad), BNB_ERR_UNSUPPORTED_DTYPE, op,
                "out", NULL);
    bad = tm;
    bad.dtype = BNB_DTYPE_BF16;
    badm = plain(&bad);
    watch(out, sizeof out);
    expect_fail("dequantize_4bit(absmax bf16)", D4(g_ctx, &tp, &badm, BNB_QUANT_NF4, 64, &to),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "absmax", NULL);
    bad = to;
    bad.shape[0] = 0;
    watch(out, sizeof out);
    expect_noop("dequantize_4bit(n = 0)", D4(g_ctx, &tp, &am, BNB_QUANT_NF4, 64, &bad));
    {
        uint8_t b = 0xF7;
        float two = 2.0f;
        bnb_tensor tb = T1(&b, BNB_DTYPE_U8, 1), t2 = T1(&two, BNB_DTYPE_F32, 1);
        bnb_absmax a2 = plain(&t2);
        bad = to;
        bad.shape[0] = 1;
        watch(out, sizeof out);
        expect_ok("dequantize_4bit(n = 1)", D4(g_ctx, &tb, &a2, BNB_QUANT_NF4, 64, &bad));
        CHECK(out[0] == 2.0f, "dequantize_4bit(n = 1): %g, expected 2 (NF4 code 15 × absmax 2)", (double)out[0]);
        CHECK(((unsigned char*)out)[4] == SENTINEL, "dequantize_4bit(n = 1) wrote past element 0");
    }
#undef D4
}

static void test_weight_pack(void) {
    const char* op;
    enum { N = 64, K = 128, BS = 64 };
    static uint8_t W[N * K / 2], P[N * K / 2 + 64], U[N * K / 2];
    size_t bytes = 0, i;
    for (i = 0; i < sizeof W; ++i) W[i] = (uint8_t)(i * 13 + 5);
    bnb_tensor tw = T1(W, BNB_DTYPE_U8, sizeof W), tp = T1(P, BNB_DTYPE_U8, sizeof P), tu = T1(U, BNB_DTYPE_U8, sizeof U);
    bnb_tensor bad;

    op = "weight_pack_size";
    watch(&bytes, sizeof bytes);
    expect_ok("weight_pack_size(BNB_CPU)", A->weight_pack_size(g_ctx, BNB_WEIGHT_BNB_CPU, N, K, BS, &bytes));
    CHECK(bytes == (size_t)N * K / 2, "weight_pack_size(BNB_CPU) = %zu, expected %d", bytes, N * K / 2);
    watch(&bytes, sizeof bytes);
    expect_ok("weight_pack_size(STANDARD)", A->weight_pack_size(g_ctx, BNB_WEIGHT_STANDARD, N, K, BS, &bytes));
    CHECK(bytes == (size_t)N * K / 2, "weight_pack_size(STANDARD) = %zu, expected %d", bytes, N * K / 2);
    watch(&bytes, sizeof bytes);
    expect_fail("weight_pack_size(format = 3)", A->weight_pack_size(g_ctx, 3, N, K, BS, &bytes),
                BNB_ERR_INVALID_ARGUMENT, op, "format", "3");
    watch(&bytes, sizeof bytes);
    expect_fail("weight_pack_size(N = -1)", A->weight_pack_size(g_ctx, BNB_WEIGHT_BNB_CPU, -1, K, BS, &bytes),
                BNB_ERR_INVALID_ARGUMENT, op, "N", "-1");
    watch(&bytes, sizeof bytes);
    expect_fail("weight_pack_size(out_bytes = NULL)", A->weight_pack_size(g_ctx, BNB_WEIGHT_BNB_CPU, N, K, BS, NULL),
                BNB_ERR_NULL_POINTER, op, "out_bytes", NULL);
    watch(&bytes, sizeof bytes);
    expect_fail("weight_pack_size(NULL context)", A->weight_pack_size(NULL, BNB_WEIGHT_BNB_CPU, N, K, BS, &bytes),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    watch(&bytes, sizeof bytes);
    expect_fail2("weight_pack_size(BNB_CPU, N = 48: N % 32 != 0)",
                 A->weight_pack_size(g_ctx, BNB_WEIGHT_BNB_CPU, 48, K, BS, &bytes), BNB_ERR_INVALID_ARGUMENT,
                 BNB_ERR_SHAPE_MISMATCH, op, "N", "48");
    watch(&bytes, sizeof bytes);
    expect_fail("weight_pack_size(blocksize = 100)", A->weight_pack_size(g_ctx, BNB_WEIGHT_BNB_CPU, N, K, 100, &bytes),
                BNB_ERR_INVALID_BLOCKSIZE, op, "blocksize", "100");

    op = "weight_pack";
    watch(P, sizeof P);
    expect_ok("weight_pack(BNB_CPU)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, &tw, N, K, BS, &tp));
    CHECK(P[N * K / 2] == SENTINEL, "weight_pack wrote past weight_pack_size bytes");
    watch(U, sizeof U);
    expect_ok("weight_unpack(BNB_CPU)", A->weight_unpack(g_ctx, BNB_WEIGHT_BNB_CPU, &tp, N, K, BS, &tu));
    CHECK(memcmp(U, W, sizeof W) == 0, "weight_unpack(weight_pack(W)) != W");
    watch(P, sizeof P);
    expect_fail("weight_pack(NULL context)", A->weight_pack(NULL, BNB_WEIGHT_BNB_CPU, &tw, N, K, BS, &tp),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    watch(P, sizeof P);
    expect_fail("weight_pack(packed = NULL)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, NULL, N, K, BS, &tp),
                BNB_ERR_NULL_POINTER, op, "packed", NULL);
    watch(P, sizeof P);
    expect_fail("weight_pack(out_packed = NULL)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, &tw, N, K, BS, NULL),
                BNB_ERR_NULL_POINTER, op, "out_packed", NULL);
    bad = tp;
    bad.shape[0] = N * K / 2 - 1;
    watch(P, sizeof P);
    expect_fail("weight_pack(out_packed short)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, &tw, N, K, BS, &bad),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_packed", NULL);
    bad = tw;
    bad.shape[0] = N * K / 2 - 1;
    watch(P, sizeof P);
    expect_fail2("weight_pack(packed short for N×K)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, &bad, N, K, BS, &tp),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "packed", NULL);
    watch(P, sizeof P);
    expect_fail("weight_pack(format = 9)", A->weight_pack(g_ctx, 9, &tw, N, K, BS, &tp), BNB_ERR_INVALID_ARGUMENT, op,
                "format", "9");
    bad = tw;
    bad.dtype = BNB_DTYPE_I8;
    watch(P, sizeof P);
    expect_fail("weight_pack(packed i8)", A->weight_pack(g_ctx, BNB_WEIGHT_BNB_CPU, &bad, N, K, BS, &tp),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "packed", NULL);
    op = "weight_unpack";
    bad = tu;
    bad.shape[0] = N * K / 2 - 1;
    watch(U, sizeof U);
    expect_fail("weight_unpack(out_standard short)", A->weight_unpack(g_ctx, BNB_WEIGHT_BNB_CPU, &tp, N, K, BS, &bad),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_standard", NULL);
    watch(U, sizeof U);
    expect_fail("weight_unpack(format = -1)", A->weight_unpack(g_ctx, -1, &tp, N, K, BS, &tu),
                BNB_ERR_INVALID_ARGUMENT, op, "format", "-1");
    watch(U, sizeof U);
    expect_fail("weight_unpack(NULL context)", A->weight_unpack(NULL, BNB_WEIGHT_BNB_CPU, &tp, N, K, BS, &tu),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
}

static void test_gemm(int gemv) {
    const char* op = gemv ? "gemv_4bit" : "gemm_4bit";
    enum { M = 3, N = 32, K = 128, BS = 64 };
    static float x[M * K], absmax[N * K / BS], out[M * N], bias[N + 1];
    static uint8_t W[N * K / 2];
    char what[160], val[32];
    size_t i;
    for (i = 0; i < M * K; ++i) x[i] = (float)sin((double)i * 0.1);
    for (i = 0; i < sizeof W; ++i) W[i] = (uint8_t)(i * 29 + 3);
    for (i = 0; i < N * K / BS; ++i) absmax[i] = 0.5f + (float)i * 0.01f;
    for (i = 0; i < N + 1; ++i) bias[i] = (float)i;
    bnb_tensor tA = T2(x, BNB_DTYPE_F32, M, K), tW = T1(W, BNB_DTYPE_U8, sizeof W);
    bnb_tensor tm = T1(absmax, BNB_DTYPE_F32, N * K / BS), to = T2(out, BNB_DTYPE_F32, M, N);
    bnb_tensor tb = T1(bias, BNB_DTYPE_F32, N), bad;
    bnb_absmax am = plain(&tm), badm;

#define GM(ctx, a, w, fmt, m, qt, bs, b, o)                                                                            \
    (gemv ? A->gemv_4bit(ctx, a, w, fmt, m, qt, bs, b, o) : A->gemm_4bit(ctx, a, w, fmt, m, qt, bs, b, o))
#define NAME(s) (snprintf(what, sizeof what, "%s(%s)", op, s), what)
    watch(out, sizeof out);
    expect_ok(NAME("valid"), GM(g_ctx, &tA, &tW, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &to));
    watch(out, sizeof out);
    expect_ok(NAME("valid, bias"), GM(g_ctx, &tA, &tW, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_FP4, BS, &tb, &to));
    watch(out, sizeof out);
    expect_fail(NAME("NULL context"), GM(NULL, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_NULL_POINTER,
                op, "context", NULL);
    watch(out, sizeof out);
    expect_fail(NAME("A = NULL"), GM(g_ctx, NULL, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_NULL_POINTER,
                op, "A", NULL);
    watch(out, sizeof out);
    expect_fail(NAME("W = NULL"), GM(g_ctx, &tA, NULL, 0, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_NULL_POINTER,
                op, "W", NULL);
    watch(out, sizeof out);
    expect_fail(NAME("absmax = NULL"), GM(g_ctx, &tA, &tW, 0, NULL, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_NULL_POINTER, op, "absmax", NULL);
    watch(out, sizeof out);
    expect_fail(NAME("out = NULL"), GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, NULL), BNB_ERR_NULL_POINTER,
                op, "out", NULL);
    bad = tA;
    bad.data = NULL;
    watch(out, sizeof out);
    expect_fail(NAME("A.data = NULL"), GM(g_ctx, &bad, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_NULL_POINTER, op, "A", NULL);
    /* K mismatch: A has K + 64 columns, W only holds N × K codes. */
    {
        static float x2[M * (K + 64)];
        bnb_tensor tA2 = T2(x2, BNB_DTYPE_F32, M, K + 64);
        watch(out, sizeof out);
        expect_fail2(NAME("A K = 192, W for K = 128"), GM(g_ctx, &tA2, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to),
                     BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "W", NULL);
    }
    bad = to;
    bad.shape[0] = M - 1;
    watch(out, sizeof out);
    expect_fail2(NAME("out rows M - 1"), GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &bad),
                 BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "out", NULL);
    bad = tb;
    bad.shape[0] = N + 1;
    watch(out, sizeof out);
    expect_fail(NAME("bias [N + 1]"), GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, &bad, &to),
                BNB_ERR_SHAPE_MISMATCH, op, "bias", NULL);
    bad = tm;
    bad.shape[0] = N * K / BS - 1;
    badm = plain(&bad);
    watch(out, sizeof out);
    expect_fail2(NAME("absmax short"), GM(g_ctx, &tA, &tW, 0, &badm, BNB_QUANT_NF4, BS, NULL, &to),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "absmax", NULL);
    for (i = 0; i < NBAD; ++i) {
        char w2[64];
        snprintf(w2, sizeof w2, "blocksize = %lld", (long long)BAD_BLOCKSIZES[i]);
        snprintf(val, sizeof val, "%lld", (long long)BAD_BLOCKSIZES[i]);
        watch(out, sizeof out);
        expect_fail(NAME(w2), GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BAD_BLOCKSIZES[i], NULL, &to),
                    BNB_ERR_INVALID_BLOCKSIZE, op, "blocksize", val);
    }
    watch(out, sizeof out);
    expect_fail(NAME("weight_format = 5"), GM(g_ctx, &tA, &tW, 5, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_INVALID_ARGUMENT, op, "format", "5");
    watch(out, sizeof out);
    expect_fail(NAME("quant_type = 0"), GM(g_ctx, &tA, &tW, 0, &am, 0, BS, NULL, &to), BNB_ERR_INVALID_ARGUMENT, op,
                "quant_type", "0");
    bad = tA;
    bad.dtype = BNB_DTYPE_I32;
    watch(out, sizeof out);
    expect_fail(NAME("A i32"), GM(g_ctx, &bad, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "A", NULL);
    bad = to;
    bad.dtype = BNB_DTYPE_U8;
    watch(out, sizeof out);
    expect_fail(NAME("out u8"), GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &bad), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "out", NULL);
    bad = tW;
    bad.dtype = BNB_DTYPE_F32;
    watch(out, sizeof out);
    expect_fail(NAME("W f32"), GM(g_ctx, &tA, &bad, 0, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "W", NULL);
    bad = tA;
    bad.stride[0] = K;
    bad.stride[1] = 2;
    watch(out, sizeof out);
    expect_fail(NAME("A.stride[1] = 2"), GM(g_ctx, &bad, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_INVALID_ARGUMENT, op, "A", NULL);
    /* M = 0: nothing to do. */
    bad = tA;
    bad.shape[0] = 0;
    {
        bnb_tensor o0 = to;
        o0.shape[0] = 0;
        watch(out, sizeof out);
        expect_noop(NAME("M = 0"), GM(g_ctx, &bad, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &o0));
    }
    /* M = 1 */
    bad = tA;
    bad.shape[0] = 1;
    {
        bnb_tensor o1 = to;
        o1.shape[0] = 1;
        watch(out, sizeof out);
        expect_ok(NAME("M = 1"), GM(g_ctx, &bad, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &o1));
        CHECK(((unsigned char*)out)[N * 4] == SENTINEL, "%s(M = 1) wrote past row 0", op);
    }
    x[5] = NAN; /* matmul inputs are not quantized: NaN propagates, never an error or a crash */
    watch(out, sizeof out);
    {
        bnb_status st = GM(g_ctx, &tA, &tW, 0, &am, BNB_QUANT_NF4, BS, NULL, &to);
        CHECK(st == BNB_OK || st == BNB_ERR_NON_FINITE, "%s with NaN in A: %s", op, bnbt_status_name(st));
        if (st == BNB_OK)
            unwatch();
        else
            untouched(NAME("NaN in A"));
    }
    x[5] = 0.0f;
#undef GM
#undef NAME
}

/* ─── LLM.int8() ─────────────────────────────────────────────────────────────────────────────────────────── */

static void test_int8(void) {
    const char* op;
    enum { R = 4, C = 8, N = 5 };
    float a[R * C], stats[R], cstats[C], out[R * C], outmm[R * N], bias[N];
    int8_t CA[R * C], CAt[R * C], B[N * C];
    int32_t Ci[R * N];
    int64_t cols[C], count = -1;
    size_t i;
    for (i = 0; i < R * C; ++i) a[i] = (float)(int)(i % 7) - 3.0f + 0.25f;
    a[2 * C + 5] = 10.0f; /* one outlier in column 5 */
    for (i = 0; i < N * C; ++i) B[i] = (int8_t)((int)(i * 11 % 255) - 127);
    for (i = 0; i < N; ++i) bias[i] = 0.5f;
    bnb_tensor tA = T2(a, BNB_DTYPE_F32, R, C), tCA = T2(CA, BNB_DTYPE_I8, R, C), tCAt = T2(CAt, BNB_DTYPE_I8, R, C);
    bnb_tensor ts = T1(stats, BNB_DTYPE_F32, R), tcs = T1(cstats, BNB_DTYPE_F32, C), tcols = T1(cols, BNB_DTYPE_I64, C);
    bnb_tensor tB = T2(B, BNB_DTYPE_I8, N, C), tC = T2(Ci, BNB_DTYPE_I32, R, N), tout = T2(out, BNB_DTYPE_F32, R, C);
    bnb_tensor tmm = T2(outmm, BNB_DTYPE_F32, R, N), tbias = T1(bias, BNB_DTYPE_F32, N), bad;

    op = "int8_vectorwise_quant";
#define VQ(ctx, a_, thr, ca, s, c, cnt) A->int8_vectorwise_quant(ctx, a_, thr, ca, s, c, cnt)
#define W()                                                                                                            \
    do {                                                                                                               \
        watch(CA, sizeof CA);                                                                                          \
        watch(stats, sizeof stats);                                                                                    \
        watch(cols, sizeof cols);                                                                                      \
        watch(&count, sizeof count);                                                                                   \
    } while (0)
    W();
    expect_ok("int8_vectorwise_quant(threshold 0)", VQ(g_ctx, &tA, 0.0f, &tCA, &ts, NULL, NULL));
    W();
    expect_ok("int8_vectorwise_quant(threshold 6)", VQ(g_ctx, &tA, 6.0f, &tCA, &ts, &tcols, &count));
    CHECK(count == 1 && cols[0] == 5, "outliers: count %lld, first %lld (expected 1 column: 5)", (long long)count,
          (long long)cols[0]);
    W();
    expect_fail("int8_vectorwise_quant(NULL context)", VQ(NULL, &tA, 0.0f, &tCA, &ts, NULL, NULL),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    W();
    expect_fail("int8_vectorwise_quant(A = NULL)", VQ(g_ctx, NULL, 0.0f, &tCA, &ts, NULL, NULL), BNB_ERR_NULL_POINTER,
                op, "A", NULL);
    W();
    expect_fail("int8_vectorwise_quant(out_CA = NULL)", VQ(g_ctx, &tA, 0.0f, NULL, &ts, NULL, NULL),
                BNB_ERR_NULL_POINTER, op, "out_CA", NULL);
    W();
    expect_fail("int8_vectorwise_quant(out_row_stats = NULL)", VQ(g_ctx, &tA, 0.0f, &tCA, NULL, NULL, NULL),
                BNB_ERR_NULL_POINTER, op, "out_row_stats", NULL);
    W();
    expect_fail("int8_vectorwise_quant(threshold 6, out_outlier_cols = NULL)",
                VQ(g_ctx, &tA, 6.0f, &tCA, &ts, NULL, &count), BNB_ERR_NULL_POINTER, op, "out_outlier_cols", NULL);
    bad = tCA;
    bad.shape[0] = R - 1;
    W();
    expect_fail2("int8_vectorwise_quant(out_CA short)", VQ(g_ctx, &tA, 0.0f, &bad, &ts, NULL, NULL),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "out_CA", NULL);
    bad = ts;
    bad.shape[0] = R - 1;
    W();
    expect_fail("int8_vectorwise_quant(out_row_stats short)", VQ(g_ctx, &tA, 0.0f, &tCA, &bad, NULL, NULL),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_row_stats", NULL);
    bad = tcols;
    bad.shape[0] = C - 1;
    W();
    expect_fail("int8_vectorwise_quant(out_outlier_cols short)", VQ(g_ctx, &tA, 6.0f, &tCA, &ts, &bad, &count),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_outlier_cols", NULL);
    bad = tA;
    bad.dtype = BNB_DTYPE_I32;
    W();
    expect_fail("int8_vectorwise_quant(A i32)", VQ(g_ctx, &bad, 0.0f, &tCA, &ts, NULL, NULL),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "A", NULL);
    bad = tCA;
    bad.dtype = BNB_DTYPE_U8;
    W();
    expect_fail("int8_vectorwise_quant(out_CA u8)", VQ(g_ctx, &tA, 0.0f, &bad, &ts, NULL, NULL),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out_CA", NULL);
    bad = tcols;
    bad.dtype = BNB_DTYPE_I32;
    W();
    expect_fail("int8_vectorwise_quant(out_outlier_cols i32)", VQ(g_ctx, &tA, 6.0f, &tCA, &ts, &bad, &count),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out_outlier_cols", NULL);
    W();
    expect_fail("int8_vectorwise_quant(threshold NaN)", VQ(g_ctx, &tA, NAN, &tCA, &ts, &tcols, &count),
                BNB_ERR_INVALID_ARGUMENT, op, "threshold", NULL);
    a[9] = NAN;
    W();
    expect_fail("int8_vectorwise_quant(NaN at 9 = [1, 1])", VQ(g_ctx, &tA, 0.0f, &tCA, &ts, NULL, NULL),
                BNB_ERR_NON_FINITE, op, "A", NULL);
    CHECK(strstr(msg(), "9") || strstr(msg(), "1, 1") || strstr(msg(), "1][1"),
          "NaN message \"%s\" names neither flat index 9 nor [1, 1]", msg());
    W();
    expect_ok("int8_vectorwise_quant(NaN, PROPAGATE)", VQ(g_ctx_prop, &tA, 0.0f, &tCA, &ts, NULL, NULL));
    a[9] = 1.0f;
    bad = tA;
    bad.shape[0] = 0;
    {
        bnb_tensor ca0 = tCA, s0 = ts;
        ca0.shape[0] = 0;
        s0.shape[0] = 0;
        W();
        expect_noop("int8_vectorwise_quant(0 rows)", VQ(g_ctx, &bad, 0.0f, &ca0, &s0, NULL, NULL));
    }
#undef VQ
#undef W

    op = "int8_vectorwise_dequant";
    watch(out, sizeof out);
    expect_ok("int8_vectorwise_dequant valid", A->int8_vectorwise_dequant(g_ctx, &tCA, &ts, &tout));
    watch(out, sizeof out);
    expect_fail("int8_vectorwise_dequant(NULL context)", A->int8_vectorwise_dequant(NULL, &tCA, &ts, &tout),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    watch(out, sizeof out);
    expect_fail("int8_vectorwise_dequant(CA = NULL)", A->int8_vectorwise_dequant(g_ctx, NULL, &ts, &tout),
                BNB_ERR_NULL_POINTER, op, "CA", NULL);
    watch(out, sizeof out);
    expect_fail("int8_vectorwise_dequant(out = NULL)", A->int8_vectorwise_dequant(g_ctx, &tCA, &ts, NULL),
                BNB_ERR_NULL_POINTER, op, "out", NULL);
    bad = ts;
    bad.shape[0] = R - 1;
    watch(out, sizeof out);
    expect_fail2("int8_vectorwise_dequant(row_stats short)", A->int8_vectorwise_dequant(g_ctx, &tCA, &bad, &tout),
                 BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "row_stats", NULL);
    bad = tout;
    bad.shape[0] = R - 1;
    watch(out, sizeof out);
    expect_fail2("int8_vectorwise_dequant(out short)", A->int8_vectorwise_dequant(g_ctx, &tCA, &ts, &bad),
                 BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "out", NULL);
    bad = tCA;
    bad.dtype = BNB_DTYPE_F32;
    watch(out, sizeof out);
    expect_fail("int8_vectorwise_dequant(CA f32)", A->int8_vectorwise_dequant(g_ctx, &bad, &ts, &tout),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "CA", NULL);
    bad = tout;
    bad.dtype = BNB_DTYPE_I32;
    watch(out, sizeof out);
    expect_fail("int8_vectorwise_dequant(out i32)", A->int8_vectorwise_dequant(g_ctx, &tCA, &ts, &bad),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out", NULL);

    op = "int8_linear_matmul";
    watch(Ci, sizeof Ci);
    expect_ok("int8_linear_matmul valid", A->int8_linear_matmul(g_ctx, &tCA, &tB, &tC));
    watch(Ci, sizeof Ci);
    expect_fail("int8_linear_matmul(NULL context)", A->int8_linear_matmul(NULL, &tCA, &tB, &tC), BNB_ERR_NULL_POINTER,
                op, "context", NULL);
    watch(Ci, sizeof Ci);
    expect_fail("int8_linear_matmul(B = NULL)", A->int8_linear_matmul(g_ctx, &tCA, NULL, &tC), BNB_ERR_NULL_POINTER,
                op, "B", NULL);
    bad = tB;
    bad.shape[1] = C - 2; /* K mismatch */
    watch(Ci, sizeof Ci);
    expect_fail("int8_linear_matmul(K mismatch)", A->int8_linear_matmul(g_ctx, &tCA, &bad, &tC),
                BNB_ERR_SHAPE_MISMATCH, op, "K", NULL);
    bad = tC;
    bad.shape[1] = N - 1;
    watch(Ci, sizeof Ci);
    expect_fail2("int8_linear_matmul(out N - 1)", A->int8_linear_matmul(g_ctx, &tCA, &tB, &bad),
                 BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "out", NULL);
    bad = tCA;
    bad.dtype = BNB_DTYPE_U8;
    watch(Ci, sizeof Ci);
    expect_fail("int8_linear_matmul(A u8)", A->int8_linear_matmul(g_ctx, &bad, &tB, &tC), BNB_ERR_UNSUPPORTED_DTYPE,
                op, "A", NULL);
    bad = tC;
    bad.dtype = BNB_DTYPE_F32;
    watch(Ci, sizeof Ci);
    expect_fail("int8_linear_matmul(out f32)", A->int8_linear_matmul(g_ctx, &tCA, &tB, &bad),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "out", NULL);

    op = "int8_mm_dequant";
    {
        float rs[R] = {1, 2, 3, 4}, cs[N] = {1, 1, 2, 2, 3};
        bnb_tensor trs = T1(rs, BNB_DTYPE_F32, R), tcs2 = T1(cs, BNB_DTYPE_F32, N);
        watch(outmm, sizeof outmm);
        expect_ok("int8_mm_dequant valid", A->int8_mm_dequant(g_ctx, &tC, &trs, &tcs2, &tbias, &tmm));
        watch(outmm, sizeof outmm);
        expect_fail("int8_mm_dequant(NULL context)", A->int8_mm_dequant(NULL, &tC, &trs, &tcs2, NULL, &tmm),
                    BNB_ERR_NULL_POINTER, op, "context", NULL);
        watch(outmm, sizeof outmm);
        expect_fail("int8_mm_dequant(col_stats = NULL)", A->int8_mm_dequant(g_ctx, &tC, &trs, NULL, NULL, &tmm),
                    BNB_ERR_NULL_POINTER, op, "col_stats", NULL);
        bad = tcs2;
        bad.shape[0] = N - 1;
        watch(outmm, sizeof outmm);
        expect_fail2("int8_mm_dequant(col_stats short)", A->int8_mm_dequant(g_ctx, &tC, &trs, &bad, NULL, &tmm),
                     BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "col_stats", NULL);
        bad = tbias;
        bad.shape[0] = N - 1;
        watch(outmm, sizeof outmm);
        expect_fail2("int8_mm_dequant(bias short)", A->int8_mm_dequant(g_ctx, &tC, &trs, &tcs2, &bad, &tmm),
                     BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "bias", NULL);
        bad = tC;
        bad.dtype = BNB_DTYPE_I8;
        watch(outmm, sizeof outmm);
        expect_fail("int8_mm_dequant(C i8)", A->int8_mm_dequant(g_ctx, &bad, &trs, &tcs2, NULL, &tmm),
                    BNB_ERR_UNSUPPORTED_DTYPE, op, "C", NULL);
        bad = tmm;
        bad.dtype = BNB_DTYPE_I32;
        watch(outmm, sizeof outmm);
        expect_fail("int8_mm_dequant(out i32)", A->int8_mm_dequant(g_ctx, &tC, &trs, &tcs2, NULL, &bad),
                    BNB_ERR_UNSUPPORTED_DTYPE, op, "out", NULL);
        bad = tmm;
        bad.shape[0] = R - 1;
        watch(outmm, sizeof outmm);
        expect_fail2("int8_mm_dequant(out short)", A->int8_mm_dequant(g_ctx, &tC, &trs, &tcs2, NULL, &bad),
                     BNB_ERR_BUFFER_TOO_SMALL, BNB_ERR_SHAPE_MISMATCH, op, "out", NULL);
    }

    op = "int8_double_quant";
#define DQ8(ctx, a_, thr, ca, cat, rs, cs, oc, cnt) A->int8_double_quant(ctx, a_, thr, ca, cat, rs, cs, oc, cnt)
#define W()                                                                                                            \
    do {                                                                                                               \
        watch(CA, sizeof CA);                                                                                          \
        watch(CAt, sizeof CAt);                                                                                        \
        watch(stats, sizeof stats);                                                                                    \
        watch(cstats, sizeof cstats);                                                                                  \
        watch(cols, sizeof cols);                                                                                      \
    } while (0)
    W();
    expect_ok("int8_double_quant valid", DQ8(g_ctx, &tA, 6.0f, &tCA, &tCAt, &ts, &tcs, &tcols, &count));
    W();
    expect_fail("int8_double_quant(NULL context)", DQ8(NULL, &tA, 0.0f, &tCA, &tCAt, &ts, &tcs, NULL, NULL),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    W();
    expect_fail("int8_double_quant(out_CAt = NULL)", DQ8(g_ctx, &tA, 0.0f, &tCA, NULL, &ts, &tcs, NULL, NULL),
                BNB_ERR_NULL_POINTER, op, "out_CAt", NULL);
    bad = tcs;
    bad.shape[0] = C - 1;
    W();
    expect_fail("int8_double_quant(out_col_stats short)", DQ8(g_ctx, &tA, 0.0f, &tCA, &tCAt, &ts, &bad, NULL, NULL),
                BNB_ERR_BUFFER_TOO_SMALL, op, "out_col_stats", NULL);
    bad = tA;
    bad.dtype = BNB_DTYPE_I8;
    W();
    expect_fail("int8_double_quant(A i8)", DQ8(g_ctx, &bad, 0.0f, &tCA, &tCAt, &ts, &tcs, NULL, NULL),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "A", NULL);
    a[3] = INFINITY;
    W();
    expect_fail("int8_double_quant(Inf at 3)", DQ8(g_ctx, &tA, 0.0f, &tCA, &tCAt, &ts, &tcs, NULL, NULL),
                BNB_ERR_NON_FINITE, op, "3", NULL);
    a[3] = 0.0f;
#undef DQ8
#undef W
}

/* ─── optimizers ─────────────────────────────────────────────────────────────────────────────────────────── */

static bnb_optimizer_params params(int32_t kind) {
    bnb_optimizer_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.kind = kind;
    p.step = 1;
    p.lr = 1e-3;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.beta3 = 0.9999;
    p.alpha = 5.0;
    p.eps = 1e-8;
    p.gnorm_scale = 1.0;
    p.param_norm = -1.0;
    p.rounding = BNB_ROUND_NEAREST;
    return p;
}

static void test_optimizers(void) {
    const char* op;
    enum { N = 600, NB = 3 };
    static float p[N], g[N], s1[2 * N], s2[N], a1[2 * NB], a2[NB], hist[100];
    static uint8_t q1[2 * N], q2[N];
    float unorm = 0, gnorm = 0, scale = 0;
    double usq = 0, psq = 0;
    char what[128];
    size_t i;
    int32_t k;
    for (i = 0; i < N; ++i) {
        p[i] = (float)sin((double)i) * 0.1f;
        g[i] = (float)cos((double)i) * 0.01f;
        s2[i] = 0;
    }
    bnb_tensor tp = T1(p, BNB_DTYPE_F32, N), tg = T1(g, BNB_DTYPE_F32, N), t1 = T1(s1, BNB_DTYPE_F32, N);
    bnb_tensor t2 = T1(s2, BNB_DTYPE_F32, N), bad;
    bnb_optimizer_params prm;

    op = "optimizer_update_32bit";
#define WO()                                                                                                           \
    do {                                                                                                               \
        watch_keep(p, sizeof p);                                                                                       \
        watch_keep(s1, sizeof s1);                                                                                     \
        watch_keep(s2, sizeof s2);                                                                                     \
    } while (0)
    for (k = 0; k < BNB_OPTIM_COUNT; ++k) {
        bnb_tensor ts1 = t1;
        int two = k == BNB_OPTIM_ADAM || k == BNB_OPTIM_LAMB || k == BNB_OPTIM_ADEMAMIX;
        if (k == BNB_OPTIM_ADEMAMIX) ts1 = T2(s1, BNB_DTYPE_F32, 2, N);
        memset(s1, 0, sizeof s1);
        memset(s2, 0, sizeof s2);
        prm = params(k);
        snprintf(what, sizeof what, "optimizer_update_32bit(kind %d)", (int)k);
        expect_ok(what, A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &ts1, two ? &t2 : NULL, &unorm));
        if (two) {
            snprintf(what, sizeof what, "optimizer_update_32bit(kind %d, state2 = NULL)", (int)k);
            WO();
            expect_fail(what, A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &ts1, NULL, &unorm),
                        BNB_ERR_NULL_POINTER, op, "state2", NULL);
        }
    }
    prm = params(BNB_OPTIM_ADAM);
    WO();
    expect_fail("optimizer_update_32bit(NULL context)", A->optimizer_update_32bit(NULL, &prm, &tp, &tg, &t1, &t2, NULL),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    WO();
    expect_fail("optimizer_update_32bit(params = NULL)", A->optimizer_update_32bit(g_ctx, NULL, &tp, &tg, &t1, &t2, NULL),
                BNB_ERR_NULL_POINTER, op, "params", NULL);
    WO();
    expect_fail("optimizer_update_32bit(p = NULL)", A->optimizer_update_32bit(g_ctx, &prm, NULL, &tg, &t1, &t2, NULL),
                BNB_ERR_NULL_POINTER, op, "p", NULL);
    WO();
    expect_fail("optimizer_update_32bit(g = NULL)", A->optimizer_update_32bit(g_ctx, &prm, &tp, NULL, &t1, &t2, NULL),
                BNB_ERR_NULL_POINTER, op, "g", NULL);
    WO();
    expect_fail("optimizer_update_32bit(state1 = NULL)",
                A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, NULL, &t2, NULL), BNB_ERR_NULL_POINTER, op, "state1",
                NULL);
    prm.kind = BNB_OPTIM_COUNT;
    WO();
    expect_fail("optimizer_update_32bit(kind = 8)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &t1, &t2, NULL),
                BNB_ERR_INVALID_ARGUMENT, op, "kind", "8");
    prm.kind = -1;
    WO();
    expect_fail("optimizer_update_32bit(kind = -1)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &t1, &t2, NULL),
                BNB_ERR_INVALID_ARGUMENT, op, "kind", "-1");
    prm = params(BNB_OPTIM_ADAM);
    prm.step = 0;
    WO();
    expect_fail("optimizer_update_32bit(step = 0)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &t1, &t2, NULL),
                BNB_ERR_INVALID_ARGUMENT, op, "step", "0");
    prm = params(BNB_OPTIM_ADAM);
    bad = tg;
    bad.shape[0] = N - 1;
    WO();
    expect_fail("optimizer_update_32bit(g numel != p numel)",
                A->optimizer_update_32bit(g_ctx, &prm, &tp, &bad, &t1, &t2, NULL), BNB_ERR_SHAPE_MISMATCH, op, "g",
                NULL);
    bad = tg;
    bad.dtype = BNB_DTYPE_F16;
    WO();
    expect_fail2("optimizer_update_32bit(g f16, p f32)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &bad, &t1, &t2, NULL),
                 BNB_ERR_UNSUPPORTED_DTYPE, BNB_ERR_SHAPE_MISMATCH, op, "g", NULL);
    bad = t1;
    bad.shape[0] = N - 1;
    WO();
    expect_fail2("optimizer_update_32bit(state1 short)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &bad, &t2, NULL),
                 BNB_ERR_SHAPE_MISMATCH, BNB_ERR_BUFFER_TOO_SMALL, op, "state1", NULL);
    bad = t2;
    bad.dtype = BNB_DTYPE_BF16;
    WO();
    expect_fail("optimizer_update_32bit(state2 bf16)", A->optimizer_update_32bit(g_ctx, &prm, &tp, &tg, &t1, &bad, NULL),
                BNB_ERR_UNSUPPORTED_DTYPE, op, "state2", NULL);
    bad = tp;
    bad.dtype = BNB_DTYPE_I32;
    WO();
    {
        bnb_tensor bg = tg;
        bg.dtype = BNB_DTYPE_I32;
        expect_fail("optimizer_update_32bit(p, g i32)", A->optimizer_update_32bit(g_ctx, &prm, &bad, &bg, &t1, &t2, NULL),
                    BNB_ERR_UNSUPPORTED_DTYPE, op, "p", NULL);
    }
    {
        bnb_tensor z = tp, zg = tg, z1 = t1, z2 = t2;
        z.shape[0] = zg.shape[0] = z1.shape[0] = z2.shape[0] = 0;
        WO();
        expect_noop("optimizer_update_32bit(n = 0)", A->optimizer_update_32bit(g_ctx, &prm, &z, &zg, &z1, &z2, NULL));
        z.shape[0] = zg.shape[0] = z1.shape[0] = z2.shape[0] = 1;
        expect_ok("optimizer_update_32bit(n = 1)", A->optimizer_update_32bit(g_ctx, &prm, &z, &zg, &z1, &z2, &unorm));
    }

    op = "optimizer_update_8bit_blockwise";
    {
        bnb_tensor tq1 = T1(q1, BNB_DTYPE_U8, N), tq2 = T1(q2, BNB_DTYPE_U8, N);
        bnb_tensor ta1 = T1(a1, BNB_DTYPE_F32, NB), ta2 = T1(a2, BNB_DTYPE_F32, NB);
        bnb_tensor tm1 = T1(g_signed, BNB_DTYPE_F32, 256), tm2 = T1(g_unsigned, BNB_DTYPE_F32, 256);
#define O8(ctx, prm_, s1_, s2_, a1_, a2_, m1_, m2_)                                                                    \
    A->optimizer_update_8bit_blockwise(ctx, prm_, &tp, &tg, s1_, s2_, a1_, a2_, m1_, m2_)
#define W8()                                                                                                           \
    do {                                                                                                               \
        watch_keep(p, sizeof p);                                                                                       \
        watch_keep(q1, sizeof q1);                                                                                     \
        watch_keep(q2, sizeof q2);                                                                                     \
        watch_keep(a1, sizeof a1);                                                                                     \
        watch_keep(a2, sizeof a2);                                                                                     \
    } while (0)
        for (k = 0; k < BNB_OPTIM_COUNT; ++k) {
            bnb_tensor s1t = tq1, a1t = ta1;
            int two = k == BNB_OPTIM_ADAM || k == BNB_OPTIM_LAMB || k == BNB_OPTIM_ADEMAMIX;
            if (k == BNB_OPTIM_ADEMAMIX) {
                s1t = T2(q1, BNB_DTYPE_U8, 2, N);
                a1t = T2(a1, BNB_DTYPE_F32, 2, NB);
            }
            memset(q1, 0, sizeof q1);
            memset(q2, 0, sizeof q2);
            memset(a1, 0, sizeof a1);
            memset(a2, 0, sizeof a2);
            prm = params(k);
            prm.rounding = BNB_ROUND_BNB_CPU_LUT;
            snprintf(what, sizeof what, "optimizer_update_8bit_blockwise(kind %d)", (int)k);
            expect_ok(what, O8(g_ctx, &prm, &s1t, two ? &tq2 : NULL, &a1t, two ? &ta2 : NULL, &tm1, two ? &tm2 : NULL));
        }
        prm = params(BNB_OPTIM_ADAM);
        W8();
        expect_fail("optimizer_update_8bit_blockwise(NULL context)", O8(NULL, &prm, &tq1, &tq2, &ta1, &ta2, &tm1, &tm2),
                    BNB_ERR_NULL_POINTER, op, "context", NULL);
        W8();
        expect_fail("optimizer_update_8bit_blockwise(qmap1 = NULL)",
                    O8(g_ctx, &prm, &tq1, &tq2, &ta1, &ta2, NULL, &tm2), BNB_ERR_NULL_POINTER, op, "qmap1", NULL);
        W8();
        expect_fail("optimizer_update_8bit_blockwise(absmax2 = NULL, adam)",
                    O8(g_ctx, &prm, &tq1, &tq2, &ta1, NULL, &tm1, &tm2), BNB_ERR_NULL_POINTER, op, "absmax2", NULL);
        bad = ta1;
        bad.shape[0] = NB - 1;
        W8();
        expect_fail2("optimizer_update_8bit_blockwise(absmax1 short)",
                     O8(g_ctx, &prm, &tq1, &tq2, &bad, &ta2, &tm1, &tm2), BNB_ERR_BUFFER_TOO_SMALL,
                     BNB_ERR_SHAPE_MISMATCH, op, "absmax1", NULL);
        bad = tq1;
        bad.dtype = BNB_DTYPE_F32;
        W8();
        expect_fail("optimizer_update_8bit_blockwise(state1 f32)", O8(g_ctx, &prm, &bad, &tq2, &ta1, &ta2, &tm1, &tm2),
                    BNB_ERR_UNSUPPORTED_DTYPE, op, "state1", NULL);
        bad = tm1;
        bad.shape[0] = 255;
        W8();
        expect_fail2("optimizer_update_8bit_blockwise(qmap1 with 255 entries)",
                     O8(g_ctx, &prm, &tq1, &tq2, &ta1, &ta2, &bad, &tm2), BNB_ERR_INVALID_ARGUMENT,
                     BNB_ERR_BUFFER_TOO_SMALL, op, "qmap1", NULL);
        prm.rounding = 4;
        W8();
        expect_fail("optimizer_update_8bit_blockwise(rounding = 4)", O8(g_ctx, &prm, &tq1, &tq2, &ta1, &ta2, &tm1, &tm2),
                    BNB_ERR_INVALID_ARGUMENT, op, "rounding", "4");
        prm = params(BNB_OPTIM_ADAM);
        prm.step = 0;
        W8();
        expect_fail("optimizer_update_8bit_blockwise(step = 0)", O8(g_ctx, &prm, &tq1, &tq2, &ta1, &ta2, &tm1, &tm2),
                    BNB_ERR_INVALID_ARGUMENT, op, "step", "0");
        prm = params(42);
        W8();
        expect_fail("optimizer_update_8bit_blockwise(kind = 42)", O8(g_ctx, &prm, &tq1, &tq2, &ta1, &ta2, &tm1, &tm2),
                    BNB_ERR_INVALID_ARGUMENT, op, "kind", "42");
        prm = params(BNB_OPTIM_ADAM);
        bad = tq1;
        bad.shape[0] = N - 1;
        W8();
        expect_fail2("optimizer_update_8bit_blockwise(state1 numel != p numel)",
                     O8(g_ctx, &prm, &bad, &tq2, &ta1, &ta2, &tm1, &tm2), BNB_ERR_SHAPE_MISMATCH,
                     BNB_ERR_BUFFER_TOO_SMALL, op, "state1", NULL);
#undef O8
#undef W8
    }

    op = "optimizer_unorm";
    prm = params(BNB_OPTIM_LAMB);
    memset(s1, 0, sizeof s1);
    expect_ok("optimizer_unorm(LAMB)", A->optimizer_unorm(g_ctx, &prm, &tp, &tg, &t1, &t2, &usq, &psq));
    CHECK(usq > 0 && psq > 0, "optimizer_unorm: update_sq %g, param_sq %g", usq, psq);
    expect_fail("optimizer_unorm(out_update_sq = NULL)", A->optimizer_unorm(g_ctx, &prm, &tp, &tg, &t1, &t2, NULL, &psq),
                BNB_ERR_NULL_POINTER, op, "out_update_sq", NULL);
    expect_fail("optimizer_unorm(NULL context)", A->optimizer_unorm(NULL, &prm, &tp, &tg, &t1, &t2, &usq, &psq),
                BNB_ERR_NULL_POINTER, op, "context", NULL);
    prm.kind = 77;
    expect_fail("optimizer_unorm(kind = 77)", A->optimizer_unorm(g_ctx, &prm, &tp, &tg, &t1, &t2, &usq, &psq),
                BNB_ERR_INVALID_ARGUMENT, op, "kind", "77");

    op = "percentile_clipping";
    {
        bnb_tensor th = T1(hist, BNB_DTYPE_F32, 100);
        memset(hist, 0, sizeof hist);
        expect_ok("percentile_clipping(step 1)", A->percentile_clipping(g_ctx, &tg, &th, 1, 95, &gnorm, &scale));
        CHECK(hist[0] > 0 && hist[0] == hist[99], "step 1 fills all 100 slots: %g … %g", (double)hist[0],
              (double)hist[99]);
        CHECK(scale == 1.0f, "gnorm_scale after step 1 = %g, expected 1", (double)scale);
#define WP()                                                                                                           \
    do {                                                                                                               \
        watch_keep(hist, sizeof hist);                                                                                 \
        watch_keep(&scale, sizeof scale);                                                                              \
        watch_keep(&gnorm, sizeof gnorm);                                                                              \
    } while (0)
        WP();
        expect_fail("percentile_clipping(percentile = 100)", A->percentile_clipping(g_ctx, &tg, &th, 2, 100, &gnorm, &scale),
                    BNB_ERR_INVALID_ARGUMENT, op, "percentile", "100");
        WP();
        expect_fail("percentile_clipping(percentile = -1)", A->percentile_clipping(g_ctx, &tg, &th, 2, -1, &gnorm, &scale),
                    BNB_ERR_INVALID_ARGUMENT, op, "percentile", "-1");
        WP();
        expect_fail("percentile_clipping(step = 0)", A->percentile_clipping(g_ctx, &tg, &th, 0, 95, &gnorm, &scale),
                    BNB_ERR_INVALID_ARGUMENT, op, "step", "0");
        bad = th;
        bad.shape[0] = 99;
        WP();
        expect_fail("percentile_clipping(gnorm_history with 99 entries)",
                    A->percentile_clipping(g_ctx, &tg, &bad, 2, 95, &gnorm, &scale), BNB_ERR_BUFFER_TOO_SMALL, op,
                    "gnorm_history", NULL);
        WP();
        expect_fail("percentile_clipping(out_gnorm_scale = NULL)",
                    A->percentile_clipping(g_ctx, &tg, &th, 2, 95, &gnorm, NULL), BNB_ERR_NULL_POINTER, op,
                    "out_gnorm_scale", NULL);
        WP();
        expect_fail("percentile_clipping(NULL context)", A->percentile_clipping(NULL, &tg, &th, 2, 95, &gnorm, &scale),
                    BNB_ERR_NULL_POINTER, op, "context", NULL);
        bad = tg;
        bad.dtype = BNB_DTYPE_I8;
        WP();
        expect_fail("percentile_clipping(g i8)", A->percentile_clipping(g_ctx, &bad, &th, 2, 95, &gnorm, &scale),
                    BNB_ERR_UNSUPPORTED_DTYPE, op, "g", NULL);
        bad = th;
        bad.dtype = BNB_DTYPE_F16;
        WP();
        expect_fail("percentile_clipping(gnorm_history f16)",
                    A->percentile_clipping(g_ctx, &tg, &bad, 2, 95, &gnorm, &scale), BNB_ERR_UNSUPPORTED_DTYPE, op,
                    "gnorm_history", NULL);
#undef WP
    }
#undef WO
}

/* ─── memory and streams ─────────────────────────────────────────────────────────────────────────────────── */

static void test_memory(void) {
    const char* op = "buffer_alloc";
    bnb_buffer* buf = NULL;
    bnb_buffer* const sentinel = (bnb_buffer*)(void*)&buf;
    bnb_stream* stream = NULL;
    void* ptr = NULL;
    size_t bytes = 0;
    unsigned char src[64], dst[64];
    bnb_backend_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    A->backend_get_info(&info);

    buf = sentinel;
    expect_fail("buffer_alloc(kind = 7)", A->buffer_alloc(g_ctx, 7, 64, &buf), BNB_ERR_INVALID_ARGUMENT, op, "kind",
                "7");
    expect_fail("buffer_alloc(bytes = 0)", A->buffer_alloc(g_ctx, BNB_MEMORY_DEVICE, 0, &buf),
                BNB_ERR_INVALID_ARGUMENT, op, "bytes", "0");
    expect_fail("buffer_alloc(out = NULL)", A->buffer_alloc(g_ctx, BNB_MEMORY_DEVICE, 64, NULL), BNB_ERR_NULL_POINTER,
                op, "out", NULL);
    expect_fail("buffer_alloc(NULL context)", A->buffer_alloc(NULL, BNB_MEMORY_DEVICE, 64, &buf), BNB_ERR_NULL_POINTER,
                op, "context", NULL);
    expect_fail("buffer_alloc(SIZE_MAX bytes)", A->buffer_alloc(g_ctx, BNB_MEMORY_DEVICE, SIZE_MAX, &buf),
                BNB_ERR_OUT_OF_MEMORY, op, NULL, NULL);
    CHECK(buf == sentinel, "a failed buffer_alloc wrote *out_buffer");
    if (!(info.ops & (1ull << BNB_OP_BUFFERS))) {
        printf("     backend has no buffers (ops bit BUFFERS clear): buffer round trip skipped\n");
        return;
    }
    buf = NULL;
    expect_ok("buffer_alloc(64)", A->buffer_alloc(g_ctx, BNB_MEMORY_DEVICE, 64, &buf));
    if (!buf) return;
    expect_ok("buffer_get_pointer", A->buffer_get_pointer(buf, &ptr, &bytes));
    if (info.device_kind == BNB_DEVICE_CPU) {
        CHECK(ptr != NULL && bytes == 64 && ((uintptr_t)ptr % 64) == 0, "buffer_get_pointer: %p, %zu bytes", ptr, bytes);
        CHECK(ptr == NULL || ((unsigned char*)ptr)[0] == 0, "buffer_alloc memory is not zeroed");
    } else {
        /* a device address (or bnb_xpu's cl_mem reference) need not be host-readable: check zeroing by a copy */
        CHECK(ptr != NULL && bytes == 64, "buffer_get_pointer: %p, %zu bytes", ptr, bytes);
        memset(dst, 0xAB, sizeof dst);
        expect_ok("memory_copy(d2h) of a new buffer", A->memory_copy(g_ctx, dst, ptr, 64, BNB_COPY_DEVICE_TO_HOST));
        CHECK(dst[0] == 0 && dst[63] == 0, "buffer_alloc memory is not zeroed");
    }
    expect_fail("buffer_get_pointer(out_pointer = NULL)", A->buffer_get_pointer(buf, NULL, &bytes),
                BNB_ERR_NULL_POINTER, "buffer_get_pointer", "out_pointer", NULL);
    memset(src, 7, sizeof src);
    expect_ok("memory_copy(h2d)", A->memory_copy(g_ctx, ptr, src, 64, BNB_COPY_HOST_TO_DEVICE));
    watch(dst, sizeof dst);
    expect_fail("memory_copy(direction = 9)", A->memory_copy(g_ctx, dst, ptr, 64, 9), BNB_ERR_INVALID_ARGUMENT,
                "memory_copy", "direction", "9");
    watch(dst, sizeof dst);
    expect_fail("memory_copy(src = NULL)", A->memory_copy(g_ctx, dst, NULL, 64, BNB_COPY_DEVICE_TO_HOST),
                BNB_ERR_NULL_POINTER, "memory_copy", "src", NULL);
    watch(dst, sizeof dst);
    expect_noop("memory_copy(0 bytes)", A->memory_copy(g_ctx, dst, ptr, 0, BNB_COPY_DEVICE_TO_HOST));
    expect_ok("memory_copy(d2h)", A->memory_copy(g_ctx, dst, ptr, 64, BNB_COPY_DEVICE_TO_HOST));
    CHECK(memcmp(src, dst, 64) == 0, "memory_copy round trip differs");
    expect_fail("paged_prefetch(target = 3)", A->paged_prefetch(g_ctx, buf, 0, 64, 3), BNB_ERR_INVALID_ARGUMENT,
                "paged_prefetch", "target", "3");
    expect_fail2("paged_prefetch(range past the end)", A->paged_prefetch(g_ctx, buf, 32, 64, BNB_PREFETCH_TO_DEVICE),
                 BNB_ERR_INVALID_ARGUMENT, BNB_ERR_BUFFER_TOO_SMALL, "paged_prefetch", NULL, NULL);
    expect_ok("buffer_free", A->buffer_free(buf));

    if (info.ops & (1ull << BNB_OP_STREAMS)) {
        expect_fail("stream_create(out = NULL)", A->stream_create(g_ctx, NULL, NULL), BNB_ERR_NULL_POINTER,
                    "stream_create", "out", NULL);
        expect_ok("stream_create", A->stream_create(g_ctx, NULL, &stream));
        expect_ok("context_set_stream", A->context_set_stream(g_ctx, stream));
        expect_ok("stream_synchronize", A->stream_synchronize(stream));
        expect_ok("context_set_stream(NULL)", A->context_set_stream(g_ctx, NULL));
        expect_ok("stream_destroy", A->stream_destroy(stream));
        expect_fail("stream_synchronize(NULL)", A->stream_synchronize(NULL), BNB_ERR_NULL_POINTER,
                    "stream_synchronize", "stream", NULL);
    }
}

/* ─── loader: missing files and files that are not libraries fail cleanly ────────────────────────────────── */

static void test_loader(const char* fake, const char* missing) {
    char err[512];
    bnbt_lib h;
    err[0] = '\0';
    h = bnbt_open(missing, err, sizeof err);
    CHECK(h == NULL, "opening the missing path %s succeeded", missing);
    CHECK(err[0] != '\0', "no OS message for a missing library");
    printf("     missing library: %s\n", err);
    bnbt_close(h);
    err[0] = '\0';
    h = bnbt_open(fake, err, sizeof err);
    CHECK(h == NULL, "opening the text file %s as a library succeeded", fake);
    CHECK(err[0] != '\0', "no OS message for a file that is not a library");
    printf("     not a library: %s\n", err);
    bnbt_close(h);
#if defined(__linux__)
    {
        /* A real shared library without the two symbols: loads, but is not a backend. */
        bnbt_backend b;
        printf("     (expected) ");
        fflush(stdout);
        CHECK(!bnbt_load("libm.so.6", &b), "libm.so.6 was accepted as a backend");
    }
#endif
}

int main(int argc, char** argv) {
    bnbt_backend b;
    bnb_context_options o;
    bnb_backend_info info;
    if (argc != 4) {
        fprintf(stderr, "usage: %s <backend-library> <text-file-named-like-a-library> <missing-path>\n", argv[0]);
        return 2;
    }
    test_loader(argv[2], argv[3]);
    g_backend = argv[1];
    if (!bnbt_load(argv[1], &b)) return 1;
    A = b.api;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (A->backend_get_info(&info) == BNB_OK && info.name) snprintf(g_backend_name, sizeof g_backend_name, "%s", info.name);
    printf("backend %s (%s)\n", g_backend_name, argv[1]);

    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.num_threads = 2;
    if (A->context_create(&o, &g_ctx) != BNB_OK) {
        printf("FAIL context_create: %s\n", msg());
        return 1;
    }
    o.nonfinite_policy = BNB_NONFINITE_PROPAGATE;
    if (A->context_create(&o, &g_ctx_prop) != BNB_OK) {
        printf("FAIL context_create(PROPAGATE): %s\n", msg());
        return 1;
    }
    {
        bnb_tensor t = T1(g_signed, BNB_DTYPE_F32, 256), u = T1(g_unsigned, BNB_DTYPE_F32, 256);
        if (A->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &t) != BNB_OK ||
            A->get_code_table(BNB_TABLE_DYNAMIC_UNSIGNED, &u) != BNB_OK) {
            printf("FAIL get_code_table: %s\n", msg());
            return 1;
        }
    }

    test_quantize_blockwise();
    test_dequantize_blockwise();
    test_quantize_absmax_nested();
    test_quantize_4bit();
    test_dequantize_4bit();
    test_weight_pack();
    test_gemm(1);
    test_gemm(0);
    test_int8();
    test_optimizers();
    test_memory();

    A->context_destroy(g_ctx_prop);
    A->context_destroy(g_ctx);
    bnbt_unload(&b);
    return bnbt_finish();
}
