/*
 * large_size_test — int64 element counts and strides past 2^31, without allocating gigabytes.
 *
 *   large_size_test <backend-library>
 *
 * 1. Declared sizes: an output *declared* with 2^31 + 5 elements (or 2^32 + 16, which wraps to 16 in 32-bit
 *    arithmetic) whose matching input is small must fail with a size status and write nothing; a shape whose
 *    element count overflows int64 must be rejected. A backend that truncates counts to 32 bits would accept these.
 * 2. A strided view (Linux): gemm_4bit writes a 2-row output whose row stride is 2^31 elements into a sparse
 *    8 GiB reservation (MAP_NORESERVE: only the touched pages become memory). Row 1 must land exactly 2^31
 *    elements after row 0 and equal the result of the same gemm into a contiguous output.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#endif

#include "api_check.h"
#include "bnb_test_loader.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif




static int all_bytes(const void* p, size_t n, unsigned char v) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (((const unsigned char*)p)[i] != v) return 0;
    return 1;
}

/* A status that says "these sizes do not fit" (the header allows either for a short input). */
static int size_error(bnb_status st) {
    return st == BNB_ERR_BUFFER_TOO_SMALL || st == BNB_ERR_SHAPE_MISMATCH || st == BNB_ERR_INVALID_ARGUMENT;
}

static void declared_sizes(bnb_context* ctx) {
    const int64_t big = ((int64_t)1 << 31) + 5;   /* > INT32_MAX                   */
    const int64_t wrap = ((int64_t)1 << 32) + 16; /* == 16 when truncated to 32 bits */
    float out[64], absmax[64], code[256];
    uint8_t codes[64];
    bnb_status st;
    bnb_tensor tq, tm, tc, to;
    bnb_absmax am;
    int i;
    for (i = 0; i < 64; ++i) {
        codes[i] = (uint8_t)i;
        absmax[i] = 1.0f;
    }
    {
        bnb_tensor t = bnbt_tensor1(code, BNB_DTYPE_F32, 256);
        A->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &t);
    }
    memset(&am, 0, sizeof am);
    am.struct_size = sizeof am;
    am.values = &tm;
    tc = bnbt_tensor1(code, BNB_DTYPE_F32, 256);

    /* dequantize_blockwise: n = numel(out) = 2^31 + 5, but only 64 codes and 64 absmax values exist. */
    tq = bnbt_tensor1(codes, BNB_DTYPE_U8, 64);
    tm = bnbt_tensor1(absmax, BNB_DTYPE_F32, 64);
    to = bnbt_tensor1(out, BNB_DTYPE_F32, big);
    memset(out, 0xCD, sizeof out);
    st = A->dequantize_blockwise(ctx, &tq, &am, &tc, 4096, &to);
    CHECK(size_error(st), "dequantize_blockwise(out declared 2^31 + 5, 64 codes): %s: %s", bnbt_status_name(st),
          msg());
    CHECK(all_bytes(out, sizeof out, 0xCD), "dequantize_blockwise wrote into out although it failed");

    /* Same with 2^32 + 16: truncated to 32 bits this is 16, which the small inputs would cover. */
    to = bnbt_tensor1(out, BNB_DTYPE_F32, wrap);
    memset(out, 0xCD, sizeof out);
    st = A->dequantize_blockwise(ctx, &tq, &am, &tc, 4096, &to);
    CHECK(size_error(st), "dequantize_blockwise(out declared 2^32 + 16): %s: %s", bnbt_status_name(st), msg());
    CHECK(all_bytes(out, sizeof out, 0xCD), "dequantize_blockwise(2^32 + 16) wrote into out");

    /* dequantize_4bit: out declared 2^32 + 16 elements, 64 packed bytes. */
    st = A->dequantize_4bit(ctx, &tq, &am, BNB_QUANT_NF4, 4096, &to);
    CHECK(size_error(st), "dequantize_4bit(out declared 2^32 + 16, 64 bytes): %s: %s", bnbt_status_name(st), msg());
    CHECK(all_bytes(out, sizeof out, 0xCD), "dequantize_4bit(2^32 + 16) wrote into out");

    /* quantize_blockwise: A declared 2^32 + 16 (never read: the 16-element outputs are checked first or the
     * call fails on them), outputs declared 16. */
    {
        float a[16] = {0};
        bnb_tensor tA = bnbt_tensor1(a, BNB_DTYPE_F32, 16), oq = bnbt_tensor1(codes, BNB_DTYPE_U8, 16);
        bnb_tensor om = bnbt_tensor1(absmax, BNB_DTYPE_F32, 1);
        tA.shape[0] = wrap;
        memset(codes, 0xCD, sizeof codes);
        memset(absmax, 0xCD, sizeof absmax);
        st = A->quantize_blockwise(ctx, &tA, &tc, 4096, BNB_ROUND_NEAREST, &oq, &om);
        CHECK(st == BNB_ERR_BUFFER_TOO_SMALL, "quantize_blockwise(A declared 2^32 + 16, out_codes 16): %s: %s",
              bnbt_status_name(st), msg());
        CHECK(all_bytes(codes, sizeof codes, 0xCD) && all_bytes(absmax, sizeof absmax, 0xCD),
              "quantize_blockwise wrote outputs although it failed");
    }

    /* A shape whose element count overflows int64: rejected, never a wrapped count. */
    {
        int64_t shape[4] = {(int64_t)1 << 31, (int64_t)1 << 31, (int64_t)1 << 31, 8};
        bnb_tensor t = bnbt_tensor(out, BNB_DTYPE_F32, 4, shape);
        memset(out, 0xCD, sizeof out);
        st = A->dequantize_blockwise(ctx, &tq, &am, &tc, 4096, &t);
        CHECK(st == BNB_ERR_INVALID_ARGUMENT, "out shape [2^31, 2^31, 2^31, 8] (overflows int64): %s: %s",
              bnbt_status_name(st), msg());
        CHECK(strstr(msg(), "out") != NULL, "message \"%s\" does not name out", msg());
        CHECK(all_bytes(out, sizeof out, 0xCD), "overflowing shape: out was written");
    }
}

#if defined(__linux__)
static int strided_view(bnb_context* ctx) {
    enum { M = 2, N = 32, K = 64, BS = 64 };
    const int64_t row_stride = (int64_t)1 << 31; /* elements */
    const size_t bytes = ((size_t)row_stride + N) * sizeof(float);
    float x[M * K], absmax[N * K / BS], ref[M * N];
    uint8_t W[N * K / 2];
    float* big;
    bnb_tensor tA, tW, tm, to;
    bnb_absmax am;
    bnb_status st;
    int i;

    big = (float*)mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (big == (float*)MAP_FAILED) {
        printf("     strided view: cannot reserve %zu bytes of address space; skipped\n", bytes);
        return 0;
    }
    for (i = 0; i < M * K; ++i) x[i] = (float)sin(i * 0.37);
    for (i = 0; i < N * K / 2; ++i) W[i] = (uint8_t)(i * 31 + 7);
    for (i = 0; i < N * K / BS; ++i) absmax[i] = 1.0f + (float)i / 16.0f;
    tA = bnbt_tensor2(x, BNB_DTYPE_F32, M, K);
    tW = bnbt_tensor1(W, BNB_DTYPE_U8, N * K / 2);
    tm = bnbt_tensor1(absmax, BNB_DTYPE_F32, N * K / BS);
    memset(&am, 0, sizeof am);
    am.struct_size = sizeof am;
    am.values = &tm;

    to = bnbt_tensor2(ref, BNB_DTYPE_F32, M, N);
    st = A->gemm_4bit(ctx, &tA, &tW, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &to);
    CHECK(st == BNB_OK, "gemm_4bit (contiguous): %s: %s", bnbt_status_name(st), msg());

    to = bnbt_tensor2(big, BNB_DTYPE_F32, M, N);
    to.stride[0] = row_stride;
    to.stride[1] = 1;
    st = A->gemm_4bit(ctx, &tA, &tW, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &to);
    CHECK(st == BNB_OK, "gemm_4bit (out row stride 2^31): %s: %s", bnbt_status_name(st), msg());
    if (st == BNB_OK) {
        CHECK(memcmp(big, ref, N * sizeof(float)) == 0, "row 0 of the strided output differs");
        CHECK(memcmp(big + row_stride, ref + N, N * sizeof(float)) == 0,
              "row 1 is not at element 2^31 (int64 stride arithmetic)");
        /* What a 32-bit stride would have hit: row 1 at element (int32)2^31 = -2^31 (before the buffer) or 0. */
        CHECK(memcmp(big + N, (const float[N]){0}, N * sizeof(float)) == 0, "elements after row 0 were written");
    }
    munmap(big, bytes);
    return 1;
}
#endif

int main(int argc, char** argv) {
    bnbt_backend b;
    bnb_context* ctx = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <backend-library>\n", argv[0]);
        return 2;
    }
    g_backend = argv[1];
    if (!bnbt_load(argv[1], &b)) return 1;
    A = b.api;
    if (A->context_create(NULL, &ctx) != BNB_OK) {
        printf("FAIL context_create: %s\n", msg());
        return 1;
    }
    declared_sizes(ctx);
#if defined(__linux__)
    strided_view(ctx);
#else
    printf("     strided view test needs Linux mmap(MAP_NORESERVE); skipped on this OS\n");
#endif
    A->context_destroy(ctx);
    bnbt_unload(&b);
    return bnbt_finish();
}
