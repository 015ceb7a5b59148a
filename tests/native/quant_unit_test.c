/*
 * quant_unit_test — edge cases of the k-bit reference (native/common/bnb_quant.h): kernels, every slot's
 * validation (status + message substring + "a failed call writes nothing"), n = 0 / 1 / odd / tails, NaN/Inf
 * policies, weight layouts and the 4-bit matmul. Links bnb_common directly; no golden files needed.
 *
 * Usage: quant_unit_test            exit code 0 when every check passes; each failure is printed with its line.
 */
#include "bnb_quant.h"

#include "unit_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


static bnb_tensor tensor1d(void* data, int32_t dtype, int64_t n) {
    bnb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 1;
    t.shape[0] = n;
    return t;
}

static bnb_tensor tensor2d(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride) {
    bnb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    if (row_stride != 0) {
        t.stride[0] = row_stride;
        t.stride[1] = 1;
    }
    return t;
}

static bnb_absmax plain_absmax(const bnb_tensor* values) {
    bnb_absmax a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.values = values;
    return a;
}

static int all_bytes(const void* p, size_t n, unsigned char v) {
    const unsigned char* b = (const unsigned char*)p;
    for (size_t i = 0; i < n; ++i)
        if (b[i] != v) return 0;
    return 1;
}

/* Deterministic pseudo-normal values (sum of uniforms), enough for layout and arithmetic checks. */
static uint32_t g_rng = 12345u;
static float rand_value(void) {
    float s = 0.0f;
    for (int i = 0; i < 4; ++i) {
        g_rng = g_rng * 1664525u + 1013904223u;
        s += (float)(g_rng >> 8) / 16777216.0f;
    }
    return s - 2.0f;
}

static bnb_context_common g_ctx_error = {BNB_CONTEXT_MAGIC, 0, 1, BNB_NONFINITE_ERROR};
static bnb_context_common g_ctx_propagate = {BNB_CONTEXT_MAGIC, 0, 1, BNB_NONFINITE_PROPAGATE};
#define CTX ((bnb_context*)(void*)&g_ctx_error)
#define CTX_PROPAGATE ((bnb_context*)(void*)&g_ctx_propagate)

static void test_math_environment(void) {
    /* LUT mode depends on a correctly rounded fmaf: a*a = 1 + 2^-11 + 2^-24 exactly; unfused gives 0 */
    volatile float a = 1.0f + 0x1p-12f;
    CHECK(fmaf(a, a, -(1.0f + 0x1p-11f)) == 0x1p-24f);
}

static void test_lut(void) {
    static uint8_t lut[BNB_LUT_SIZE];
    const float* tables[2] = {bnb_table_dynamic_signed, bnb_table_dynamic_unsigned};
    for (int t = 0; t < 2; ++t) {
        float mid[255];
        bnb_ref_code_midpoints(tables[t], 256, mid);
        bnb_ref_build_lut(tables[t], lut);
        int same = 1;
        for (uint32_t i = 0; i < BNB_LUT_SIZE; ++i) same &= lut[i] == bnb_ref_lut_entry(mid, i);
        CHECK(same);
    }
    /* spec §2.5.3: zero inside a non-zero block → signed code 131, unsigned code 7 */
    float mid[255];
    bnb_ref_code_midpoints(bnb_table_dynamic_signed, 256, mid);
    CHECK(bnb_ref_lut_entry(mid, bnb_ref_lut_index(0.0f, 1.0f)) == 131);
    bnb_ref_code_midpoints(bnb_table_dynamic_unsigned, 256, mid);
    CHECK(bnb_ref_lut_entry(mid, bnb_ref_lut_index(0.0f, 1.0f)) == 7);
    CHECK(bnb_ref_lut_index(NAN, 1.0f) == 0);
    CHECK(bnb_ref_lut_index(INFINITY, 0.0f) == 0); /* Inf * 0 = NaN */
    CHECK(bnb_ref_lut_index(5.0f, 1.0f) == 65535); /* clamped to 1 */
    CHECK(bnb_ref_lut_index(-5.0f, 1.0f) == 0);
}

static void test_4bit_map(void) {
    static const uint8_t fp4_order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};
    bnb_4bit_map fp4, nf4;
    bnb_ref_4bit_map_init(BNB_QUANT_FP4, &fp4);
    bnb_ref_4bit_map_init(BNB_QUANT_NF4, &nf4);
    CHECK(memcmp(fp4.order, fp4_order, 16) == 0);
    for (int j = 0; j < 16; ++j) CHECK(nf4.order[j] == j);
    CHECK(bnb_ref_4bit_code(&fp4, 0.0f) == 0);
    CHECK(bnb_ref_4bit_code(&fp4, -0.001f) == 0);
    CHECK(bnb_ref_4bit_code(&fp4, 0.001f) == 8); /* §2.6.2: (0, 0.0026] → 0b1000 */
    CHECK(bnb_ref_4bit_code(&fp4, NAN) == 0);
    CHECK(bnb_ref_4bit_code(&nf4, NAN) == 0);
    CHECK(bnb_ref_4bit_code(&nf4, 0.0f) == 7);
    CHECK(bnb_ref_4bit_code(&nf4, nf4.bounds[9]) == 9);        /* a tie goes to the lower index */
    CHECK(bnb_ref_4bit_code(&nf4, nextafterf(nf4.bounds[9], 2.0f)) == 10);
    CHECK(bnb_ref_4bit_code(&nf4, 1.0f) == 15);
    CHECK(bnb_ref_4bit_code(&nf4, -1.0f) == 0);
}

static void test_quantize_blockwise(void) {
    static float x[300];
    static uint8_t codes[300], codes2[300];
    static float absmax[8], absmax2[8];
    for (int i = 0; i < 300; ++i) x[i] = rand_value();
    bnb_tensor tA = tensor1d(x, BNB_DTYPE_F32, 300);
    bnb_tensor tcode = tensor1d((void*)(uintptr_t)bnb_table_dynamic_signed, BNB_DTYPE_F32, 256);
    bnb_tensor tq = tensor1d(codes, BNB_DTYPE_U8, 300);
    bnb_tensor tm = tensor1d(absmax, BNB_DTYPE_F32, 8);

    /* the optimizer helper and the slot agree in both modes (n = 300: one full block of 256 and a tail of 44) */
    for (int32_t rounding = 0; rounding <= 1; ++rounding) {
        CHECK_OK(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 256, rounding, &tq, &tm));
        bnb_ref_requantize_blockwise_f32(x, 300, bnb_table_dynamic_signed, 256, rounding, codes2, absmax2);
        CHECK(memcmp(codes, codes2, 300) == 0 && memcmp(absmax, absmax2, 2 * sizeof(float)) == 0);
    }

    /* n = 0: OK and nothing written, even with NULL data */
    memset(codes, 0xAB, sizeof codes);
    bnb_tensor t0 = tensor1d(NULL, BNB_DTYPE_F32, 0);
    bnb_tensor tq0 = tensor1d(NULL, BNB_DTYPE_U8, 0);
    bnb_tensor tm0 = tensor1d(NULL, BNB_DTYPE_F32, 0);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &t0, &tcode, 64, BNB_ROUND_NEAREST, &tq0, &tm0));
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &t0, &tcode, 64, BNB_ROUND_NEAREST, &tq, &tm));
    CHECK(all_bytes(codes, sizeof codes, 0xAB));

    /* n = 1 */
    float one = -0.75f;
    bnb_tensor t1 = tensor1d(&one, BNB_DTYPE_F32, 1);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &t1, &tcode, 64, BNB_ROUND_NEAREST, &tq, &tm));
    CHECK(absmax[0] == 0.75f && codes[0] == 0); /* scaled -1 → nearest code -0.99296874 (index 0) */
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &t1, &tcode, 64, BNB_ROUND_BNB_CPU_LUT, &tq, &tm));
    CHECK(absmax[0] == 0.75f && codes[0] == 0);

    /* zero blocks: nearest stores 0 for a full block and the clamped 1e-38 for a short tail; LUT stores 0 and
     * writes code 0 */
    static float zeros[100];
    bnb_tensor tz = tensor1d(zeros, BNB_DTYPE_F32, 100);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &tz, &tcode, 64, BNB_ROUND_NEAREST, &tq, &tm));
    CHECK(absmax[0] == 0.0f && absmax[1] == 1e-38f && codes[0] == 127 && codes[99] == 127);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &tz, &tcode, 64, BNB_ROUND_BNB_CPU_LUT, &tq, &tm));
    CHECK(absmax[0] == 0.0f && absmax[1] == 0.0f && codes[0] == 0 && codes[99] == 0);

    /* NaN / Inf: rejected under ERROR (naming the index, nothing written), encoded under PROPAGATE */
    static float special[64];
    for (int i = 0; i < 64; ++i) special[i] = 0.5f;
    special[3] = NAN;
    bnb_tensor ts = tensor1d(special, BNB_DTYPE_F32, 64);
    memset(codes, 0xAB, sizeof codes);
    memset(absmax, 0xAB, sizeof absmax);
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &ts, &tcode, 64, BNB_ROUND_NEAREST, &tq, &tm), BNB_ERR_NON_FINITE,
                "A[3] = NaN");
    CHECK(all_bytes(codes, sizeof codes, 0xAB) && all_bytes(absmax, sizeof absmax, 0xAB));
    for (int32_t rounding = 0; rounding <= 1; ++rounding) {
        CHECK_OK(bnb_ref_quantize_blockwise(CTX_PROPAGATE, &ts, &tcode, 64, rounding, &tq, &tm));
        CHECK(codes[3] == 0 && absmax[0] == 0.5f && codes[4] == 255);
    }
    special[3] = INFINITY;
    for (int32_t rounding = 0; rounding <= 1; ++rounding) {
        CHECK_OK(bnb_ref_quantize_blockwise(CTX_PROPAGATE, &ts, &tcode, 64, rounding, &tq, &tm));
        CHECK(isinf(absmax[0]) && codes[3] == 0 && codes[4] == (rounding == BNB_ROUND_NEAREST ? 127 : 131));
    }

    /* f16 / bf16 inputs read as their float32 values */
    uint16_t h[3] = {bnb_f32_to_f16(0.5f), bnb_f32_to_f16(-1.0f), bnb_f32_to_f16(0.25f)};
    uint16_t bf[3] = {bnb_f32_to_bf16(0.5f), bnb_f32_to_bf16(-1.0f), bnb_f32_to_bf16(0.25f)};
    float f[3] = {0.5f, -1.0f, 0.25f};
    bnb_tensor th = tensor1d(h, BNB_DTYPE_F16, 3), tb = tensor1d(bf, BNB_DTYPE_BF16, 3), tf = tensor1d(f, BNB_DTYPE_F32, 3);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &tf, &tcode, 32, BNB_ROUND_NEAREST, &tq, &tm));
    memcpy(codes2, codes, 3);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &th, &tcode, 32, BNB_ROUND_NEAREST, &tq, &tm));
    CHECK(memcmp(codes, codes2, 3) == 0);
    CHECK_OK(bnb_ref_quantize_blockwise(CTX, &tb, &tcode, 32, BNB_ROUND_NEAREST, &tq, &tm));
    CHECK(memcmp(codes, codes2, 3) == 0);

    /* validation */
    bnb_tensor tbad = tensor1d(codes, BNB_DTYPE_U8, 300);
    float short_code[255] = {0};
    float unsorted[256];
    memcpy(unsorted, bnb_table_dynamic_signed, sizeof unsorted);
    unsorted[10] = 0.5f;
    bnb_tensor tshort = tensor1d(short_code, BNB_DTYPE_F32, 255);
    bnb_tensor tunsorted = tensor1d(unsorted, BNB_DTYPE_F32, 256);
    bnb_tensor tq_small = tensor1d(codes, BNB_DTYPE_U8, 299);
    bnb_tensor tm_small = tensor1d(absmax, BNB_DTYPE_F32, 4);
    bnb_tensor tm_f16 = tensor1d(absmax, BNB_DTYPE_F16, 8);
    memset(codes, 0xAB, sizeof codes);
    CHECK_FAILS(bnb_ref_quantize_blockwise(NULL, &tA, &tcode, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, "context");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, NULL, &tcode, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, "A is NULL");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, NULL, 64, 0, &tq, &tm), BNB_ERR_NULL_POINTER, "code is NULL");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 0, NULL, &tm), BNB_ERR_NULL_POINTER, "out_codes");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 0, &tq, NULL), BNB_ERR_NULL_POINTER, "out_absmax");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tbad, &tcode, 64, 0, &tq, &tm), BNB_ERR_UNSUPPORTED_DTYPE, "A.dtype");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 0, &tq, &tm_f16), BNB_ERR_UNSUPPORTED_DTYPE,
                "out_absmax.dtype");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 100, 0, &tq, &tm), BNB_ERR_INVALID_BLOCKSIZE,
                "blocksize = 100");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 8192, 0, &tq, &tm), BNB_ERR_INVALID_BLOCKSIZE,
                "blocksize = 8192");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 16, 0, &tq, &tm), BNB_ERR_INVALID_BLOCKSIZE,
                "blocksize = 16");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tshort, 64, 0, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                "code has 255 elements");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tunsorted, 64, 0, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                "not sorted");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 7, &tq, &tm), BNB_ERR_INVALID_ARGUMENT,
                "rounding = 7");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 0, &tq_small, &tm), BNB_ERR_BUFFER_TOO_SMALL,
                "out_codes holds 299");
    CHECK_FAILS(bnb_ref_quantize_blockwise(CTX, &tA, &tcode, 64, 0, &tq, &tm_small), BNB_ERR_BUFFER_TOO_SMALL,
                "out_absmax holds 4");
    CHECK(all_bytes(codes, sizeof codes, 0xAB));
}

static void test_dequantize_blockwise(void) {
    uint8_t codes[70];
    float absmax[2] = {2.0f, -0.5f};
    float out[70];
    uint16_t out16[70];
    for (int i = 0; i < 70; ++i) codes[i] = (uint8_t)(i * 37);
    bnb_tensor tq = tensor1d(codes, BNB_DTYPE_U8, 70);
    bnb_tensor tm = tensor1d(absmax, BNB_DTYPE_F32, 2);
    bnb_tensor tcode = tensor1d((void*)(uintptr_t)bnb_table_dynamic_signed, BNB_DTYPE_F32, 256);
    bnb_tensor to = tensor1d(out, BNB_DTYPE_F32, 70);
    bnb_tensor to16 = tensor1d(out16, BNB_DTYPE_BF16, 70);
    bnb_absmax am = plain_absmax(&tm);
    CHECK_OK(bnb_ref_dequantize_blockwise(CTX, &tq, &am, &tcode, 64, &to));
    int ok = 1;
    for (int i = 0; i < 70; ++i) ok &= out[i] == bnb_table_dynamic_signed[codes[i]] * absmax[i / 64];
    CHECK(ok);
    float helper[70];
    bnb_ref_dequantize_blockwise_f32(codes, absmax, 70, bnb_table_dynamic_signed, 64, helper);
    CHECK(memcmp(helper, out, sizeof out) == 0);
    CHECK_OK(bnb_ref_dequantize_blockwise(CTX, &tq, &am, &tcode, 64, &to16));
    ok = 1;
    for (int i = 0; i < 70; ++i) ok &= out16[i] == bnb_f32_to_bf16(out[i]);
    CHECK(ok);

    /* nested absmax: absmax[b] = f32(f32(code[q[b]] * nested[b / nbs]) + offset) */
    uint8_t q2[2] = {200, 40};
    float nested[1] = {3.0f};
    bnb_tensor tq2 = tensor1d(q2, BNB_DTYPE_U8, 2), tn = tensor1d(nested, BNB_DTYPE_F32, 1);
    bnb_absmax amn = plain_absmax(&tq2);
    amn.nested = 1;
    amn.nested_absmax = &tn;
    amn.nested_code = &tcode;
    amn.nested_blocksize = 256;
    amn.nested_offset = 0.125f;
    CHECK_OK(bnb_ref_dequantize_blockwise(CTX, &tq, &amn, &tcode, 64, &to));
    const float s0 = bnb_table_dynamic_signed[200] * 3.0f + 0.125f;
    CHECK(out[5] == bnb_table_dynamic_signed[codes[5]] * s0);

    /* validation */
    bnb_tensor tq_small = tensor1d(codes, BNB_DTYPE_U8, 69);
    bnb_tensor tm_small = tensor1d(absmax, BNB_DTYPE_F32, 1);
    bnb_absmax am_small = plain_absmax(&tm_small);
    bnb_tensor to_bad = tensor1d(codes, BNB_DTYPE_I8, 70);
    memset(out, 0xAB, sizeof out);
    CHECK_FAILS(bnb_ref_dequantize_blockwise(CTX, &tq_small, &am, &tcode, 64, &to), BNB_ERR_BUFFER_TOO_SMALL,
                "codes holds 69");
    CHECK_FAILS(bnb_ref_dequantize_blockwise(CTX, &tq, &am_small, &tcode, 64, &to), BNB_ERR_BUFFER_TOO_SMALL,
                "absmax.values");
    CHECK_FAILS(bnb_ref_dequantize_blockwise(CTX, &tq, NULL, &tcode, 64, &to), BNB_ERR_NULL_POINTER, "absmax");
    CHECK_FAILS(bnb_ref_dequantize_blockwise(CTX, &tq, &am, &tcode, 64, &to_bad), BNB_ERR_UNSUPPORTED_DTYPE,
                "out.dtype");
    CHECK_FAILS(bnb_ref_dequantize_blockwise(CTX, &tq, &am, &tcode, 48, &to), BNB_ERR_INVALID_BLOCKSIZE,
                "blocksize = 48");
    CHECK(all_bytes(out, sizeof out, 0xAB));
}

static void test_absmax_nested(void) {
    float absmax[300];
    for (int i = 0; i < 300; ++i) absmax[i] = 1.0f + 0.01f * (float)(i % 17);
    uint8_t q[300], q2[300];
    float nested[2], nested2[2], offset = 0.0f;
    bnb_tensor tm = tensor1d(absmax, BNB_DTYPE_F32, 300);
    bnb_tensor tcode = tensor1d((void*)(uintptr_t)bnb_table_dynamic_signed, BNB_DTYPE_F32, 256);
    bnb_tensor tq = tensor1d(q, BNB_DTYPE_U8, 300), tn = tensor1d(nested, BNB_DTYPE_F32, 2);
    CHECK_OK(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 256, BNB_ROUND_BNB_CPU_LUT, NULL, &tq, &tn, &offset));
    double sum = 0.0;
    for (int i = 0; i < 300; ++i) sum += absmax[i];
    CHECK(offset == (float)(sum / 300.0));
    /* = quantizing f32(absmax - offset) with the same code and blocksize */
    float centered[300];
    for (int i = 0; i < 300; ++i) centered[i] = absmax[i] - offset;
    bnb_ref_requantize_blockwise_f32(centered, 300, bnb_table_dynamic_signed, 256, BNB_ROUND_BNB_CPU_LUT, q2, nested2);
    CHECK(memcmp(q, q2, 300) == 0 && memcmp(nested, nested2, sizeof nested) == 0);

    const float given = 1.5f;
    CHECK_OK(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 256, BNB_ROUND_NEAREST, &given, &tq, &tn, &offset));
    CHECK(offset == 1.5f);

    bnb_tensor tn_small = tensor1d(nested, BNB_DTYPE_F32, 1);
    float bad_offset = NAN;
    offset = 7.0f;
    CHECK_FAILS(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 256, 0, NULL, &tq, &tn, NULL), BNB_ERR_NULL_POINTER,
                "out_offset");
    CHECK_FAILS(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 64, 0, NULL, &tq, &tn, &offset),
                BNB_ERR_BUFFER_TOO_SMALL, "out_nested_absmax");
    CHECK_FAILS(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 256, 0, &bad_offset, &tq, &tn_small, &offset),
                BNB_ERR_BUFFER_TOO_SMALL, "out_nested_absmax holds 1");
    CHECK_FAILS(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 256, 0, &bad_offset, &tq, &tn, &offset),
                BNB_ERR_NON_FINITE, "offset_in");
    CHECK_FAILS(bnb_ref_quantize_absmax_nested(CTX, &tm, &tcode, 300, 0, NULL, &tq, &tn, &offset),
                BNB_ERR_INVALID_BLOCKSIZE, "nested_blocksize = 300");
    CHECK(offset == 7.0f);
}

static void test_4bit(void) {
    float x[101];
    uint8_t packed[51];
    float absmax[4], out[101];
    for (int i = 0; i < 101; ++i) x[i] = rand_value();
    bnb_tensor tA = tensor1d(x, BNB_DTYPE_F32, 101);
    bnb_tensor tp = tensor1d(packed, BNB_DTYPE_U8, 51), tm = tensor1d(absmax, BNB_DTYPE_F32, 4);
    bnb_tensor to = tensor1d(out, BNB_DTYPE_F32, 101);
    bnb_absmax am = plain_absmax(&tm);
    float tail_max = 0.0f;
    for (int i = 96; i < 101; ++i) tail_max = fmaxf(tail_max, fabsf(x[i]));
    for (int32_t qt = BNB_QUANT_FP4; qt <= BNB_QUANT_NF4; ++qt) {
        /* odd n: the last low nibble is the pad (code of 0.0: NF4 7, FP4 0); tail block stores its own max */
        CHECK_OK(bnb_ref_quantize_4bit(CTX, &tA, qt, 32, &tp, &tm));
        CHECK((packed[50] & 0x0F) == (qt == BNB_QUANT_NF4 ? 7 : 0));
        CHECK(absmax[3] == tail_max);
        CHECK_OK(bnb_ref_dequantize_4bit(CTX, &tp, &am, qt, 32, &to));
        const float* table = bnb_table_4bit(qt);
        int ok = 1;
        for (int i = 0; i < 101; ++i) {
            const uint8_t nib = (i & 1) ? (uint8_t)(packed[i / 2] & 15) : (uint8_t)(packed[i / 2] >> 4);
            ok &= out[i] == table[nib] * absmax[i / 32];
            ok &= fabsf(out[i] - x[i]) <= 0.5f * absmax[i / 32]; /* a code within half the range */
        }
        CHECK(ok);
    }
    /* n = 1 */
    float one = 0.3f;
    bnb_tensor t1 = tensor1d(&one, BNB_DTYPE_F32, 1);
    CHECK_OK(bnb_ref_quantize_4bit(CTX, &t1, BNB_QUANT_NF4, 64, &tp, &tm));
    CHECK(packed[0] == 0xF7 && absmax[0] == 0.3f);
    /* zero blocks: full block absmax 0 with NF4 0x77; short tail stores 1e-38 */
    float zeros[96] = {0};
    bnb_tensor tz = tensor1d(zeros, BNB_DTYPE_F32, 96);
    CHECK_OK(bnb_ref_quantize_4bit(CTX, &tz, BNB_QUANT_NF4, 64, &tp, &tm));
    CHECK(packed[0] == 0x77 && packed[47] == 0x77 && absmax[0] == 0.0f && absmax[1] == 1e-38f);
    /* NaN → nibble 0 under PROPAGATE, rejected under ERROR */
    float nan_block[4] = {0.5f, NAN, -0.5f, 1.0f};
    bnb_tensor tnan = tensor1d(nan_block, BNB_DTYPE_F32, 4);
    CHECK_OK(bnb_ref_quantize_4bit(CTX_PROPAGATE, &tnan, BNB_QUANT_FP4, 32, &tp, &tm));
    CHECK((packed[0] & 0x0F) == 0 && absmax[0] == 1.0f);
    memset(packed, 0xAB, sizeof packed);
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &tnan, BNB_QUANT_FP4, 32, &tp, &tm), BNB_ERR_NON_FINITE, "A[1] = NaN");
    CHECK(all_bytes(packed, sizeof packed, 0xAB));
    /* n = 0 */
    bnb_tensor t0 = tensor1d(NULL, BNB_DTYPE_BF16, 0);
    CHECK_OK(bnb_ref_quantize_4bit(CTX, &t0, BNB_QUANT_NF4, 64, &tp, &tm));
    CHECK(all_bytes(packed, sizeof packed, 0xAB));

    /* validation */
    bnb_tensor tp_small = tensor1d(packed, BNB_DTYPE_U8, 50);
    bnb_tensor tm_small = tensor1d(absmax, BNB_DTYPE_F32, 3);
    bnb_tensor ti = tensor1d(x, BNB_DTYPE_I32, 101);
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &tA, 3, 64, &tp, &tm), BNB_ERR_INVALID_ARGUMENT, "quant_type = 3");
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &tA, BNB_QUANT_NF4, 0, &tp, &tm), BNB_ERR_INVALID_BLOCKSIZE,
                "blocksize = 0");
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &tA, BNB_QUANT_NF4, 32, &tp_small, &tm), BNB_ERR_BUFFER_TOO_SMALL,
                "out_packed holds 50");
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &tA, BNB_QUANT_NF4, 32, &tp, &tm_small), BNB_ERR_BUFFER_TOO_SMALL,
                "out_absmax holds 3");
    CHECK_FAILS(bnb_ref_quantize_4bit(CTX, &ti, BNB_QUANT_NF4, 32, &tp, &tm), BNB_ERR_UNSUPPORTED_DTYPE, "A.dtype");
    bnb_tensor to_big = tensor1d(out, BNB_DTYPE_F32, 103);
    CHECK_FAILS(bnb_ref_dequantize_4bit(CTX, &tp, &am, BNB_QUANT_NF4, 32, &to_big), BNB_ERR_BUFFER_TOO_SMALL,
                "packed holds 51");
    CHECK_FAILS(bnb_ref_dequantize_4bit(CTX, &tp, &am, 0, 32, &to), BNB_ERR_INVALID_ARGUMENT, "quant_type = 0");
}

static void test_weight_layouts(void) {
    enum { N = 64, K = 10 };
    static uint8_t standard[N * K / 2], cpu[N * K / 2], back[N * K / 2];
    for (int i = 0; i < N * K / 2; ++i) standard[i] = (uint8_t)(i * 73 + 11);
    size_t bytes = 0;
    CHECK_OK(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_BNB_CPU, N, K, 64, &bytes));
    CHECK(bytes == N * K / 2);
    CHECK_OK(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_STANDARD, 3, 5, 64, &bytes));
    CHECK(bytes == 8);
    CHECK_OK(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_BACKEND, (int64_t)1 << 31, 4, 64, &bytes));
    CHECK(bytes == (size_t)1 << 32); /* no 32-bit overflow */
    bnb_tensor ts = tensor1d(standard, BNB_DTYPE_U8, N * K / 2);
    bnb_tensor tc = tensor2d(cpu, BNB_DTYPE_U8, N, K / 2, 0);
    bnb_tensor tb = tensor1d(back, BNB_DTYPE_U8, N * K / 2);
    CHECK_OK(bnb_ref_weight_pack(CTX, BNB_WEIGHT_BNB_CPU, &ts, N, K, 64, &tc));
    int ok = 1;
    for (int n = 0; n < N; ++n)
        for (int k = 0; k < K; ++k)
            ok &= bnb_nibble_cpu_layout(cpu, K, n, k) == bnb_nibble_standard(standard, (int64_t)n * K + k);
    CHECK(ok);
    /* spot check of §2.10.4: byte 2m+e of block (nb=1, k2=2) = w[48+m, 4+e] << 4 | w[32+m, 4+e] */
    const int m = 5, e = 1;
    CHECK(cpu[(1 * (K / 2) + 2) * 32 + 2 * m + e] ==
          ((bnb_nibble_standard(standard, (48 + m) * K + 4 + e) << 4) | bnb_nibble_standard(standard, (32 + m) * K + 4 + e)));
    CHECK_OK(bnb_ref_weight_unpack(CTX, BNB_WEIGHT_BNB_CPU, &tc, N, K, 64, &tb));
    CHECK(memcmp(back, standard, sizeof back) == 0);
    memset(back, 0, sizeof back);
    CHECK_OK(bnb_ref_weight_pack(CTX, BNB_WEIGHT_STANDARD, &ts, N, K, 64, &tb));
    CHECK(memcmp(back, standard, sizeof back) == 0);

    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, 9, N, K, 64, &bytes), BNB_ERR_INVALID_ARGUMENT, "format = 9");
    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_BNB_CPU, 33, K, 64, &bytes), BNB_ERR_INVALID_ARGUMENT,
                "N = 33");
    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_BNB_CPU, N, 11, 64, &bytes), BNB_ERR_INVALID_ARGUMENT,
                "K = 11");
    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_STANDARD, -1, K, 64, &bytes), BNB_ERR_INVALID_ARGUMENT,
                "N = -1");
    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_STANDARD, (int64_t)1 << 40, (int64_t)1 << 40, 64, &bytes),
                BNB_ERR_INVALID_ARGUMENT, "overflows");
    CHECK_FAILS(bnb_ref_weight_pack_size(CTX, BNB_WEIGHT_STANDARD, N, K, 64, NULL), BNB_ERR_NULL_POINTER,
                "out_bytes");
    bnb_tensor tc_small = tensor1d(cpu, BNB_DTYPE_U8, N * K / 2 - 1);
    memset(cpu, 0xAB, sizeof cpu);
    CHECK_FAILS(bnb_ref_weight_pack(CTX, BNB_WEIGHT_BNB_CPU, &ts, N, K, 64, &tc_small), BNB_ERR_BUFFER_TOO_SMALL,
                "out_packed");
    CHECK_FAILS(bnb_ref_weight_unpack(CTX, BNB_WEIGHT_BNB_CPU, &tc_small, N, K, 64, &tb), BNB_ERR_BUFFER_TOO_SMALL,
                "packed");
    CHECK(all_bytes(cpu, sizeof cpu, 0xAB));
}

static void test_gemm(void) {
    enum { M = 3, N = 32, K = 40, BS = 32, LDA = 48, LDO = 40 };
    static float W[N * K], A[M * LDA], out[M * LDO], absmax[N * K / BS];
    static uint8_t packed[N * K / 2], cpu[N * K / 2];
    static uint16_t bias16[N];
    for (int i = 0; i < N * K; ++i) W[i] = rand_value();
    for (int i = 0; i < M * LDA; ++i) A[i] = rand_value();
    for (int i = 0; i < N; ++i) bias16[i] = bnb_f32_to_f16(0.25f * (float)i);
    bnb_tensor tW = tensor1d(W, BNB_DTYPE_F32, N * K), tp = tensor1d(packed, BNB_DTYPE_U8, N * K / 2);
    bnb_tensor tm = tensor1d(absmax, BNB_DTYPE_F32, N * K / BS);
    CHECK_OK(bnb_ref_quantize_4bit(CTX, &tW, BNB_QUANT_NF4, BS, &tp, &tm));
    bnb_tensor tc = tensor2d(cpu, BNB_DTYPE_U8, N, K / 2, 0);
    CHECK_OK(bnb_ref_weight_pack(CTX, BNB_WEIGHT_BNB_CPU, &tp, N, K, BS, &tc));

    bnb_tensor tA = tensor2d(A, BNB_DTYPE_F32, M, K, LDA);
    bnb_tensor to = tensor2d(out, BNB_DTYPE_F32, M, N, LDO);
    bnb_tensor tbias = tensor1d(bias16, BNB_DTYPE_F16, N);
    bnb_absmax am = plain_absmax(&tm);
    /* expected: the documented order, from dequantize_4bit's float32 weights */
    static float Wd[N * K];
    bnb_tensor tWd = tensor1d(Wd, BNB_DTYPE_F32, N * K);
    CHECK_OK(bnb_ref_dequantize_4bit(CTX, &tp, &am, BNB_QUANT_NF4, BS, &tWd));
    const bnb_tensor* weights[2] = {&tp, &tc};
    for (int32_t fmt = 0; fmt <= 1; ++fmt) {
        for (int gemv = 0; gemv <= 1; ++gemv) {
            memset(out, 0xAB, sizeof out);
            if (gemv) CHECK_OK(bnb_ref_gemv_4bit(CTX, &tA, weights[fmt], fmt, &am, BNB_QUANT_NF4, BS, &tbias, &to));
            else CHECK_OK(bnb_ref_gemm_4bit(CTX, &tA, weights[fmt], fmt, &am, BNB_QUANT_NF4, BS, &tbias, &to));
            int ok = 1;
            for (int m = 0; m < M; ++m) {
                for (int n = 0; n < N; ++n) {
                    float acc = 0.0f;
                    for (int k = 0; k < K; ++k) {
                        const float p = A[m * LDA + k] * Wd[n * K + k];
                        acc += p;
                    }
                    acc += bnb_f16_to_f32(bias16[n]);
                    ok &= out[m * LDO + n] == acc;
                }
                ok &= all_bytes(&out[m * LDO + N], (LDO - N) * sizeof(float), 0xAB); /* row padding untouched */
            }
            CHECK(ok);
        }
    }
    /* K = 0: out = bias */
    bnb_tensor tA0 = tensor2d(A, BNB_DTYPE_F32, M, 0, 0);
    bnb_tensor tp0 = tensor1d(NULL, BNB_DTYPE_U8, 0), tm0 = tensor1d(NULL, BNB_DTYPE_F32, 0);
    bnb_absmax am0 = plain_absmax(&tm0);
    CHECK_OK(bnb_ref_gemm_4bit(CTX, &tA0, &tp0, BNB_WEIGHT_STANDARD, &am0, BNB_QUANT_NF4, BS, &tbias, &to));
    CHECK(out[LDO + 3] == 0.75f);

    /* validation */
    bnb_tensor tA_badk = tensor2d(A, BNB_DTYPE_F32, M, K - 2, LDA);
    bnb_tensor to_rows = tensor2d(out, BNB_DTYPE_F32, M + 1, N, LDO);
    bnb_tensor to_i8 = tensor2d(out, BNB_DTYPE_I8, M, N, 0);
    bnb_tensor tbias_short = tensor1d(bias16, BNB_DTYPE_F16, N - 1);
    bnb_tensor tm_short = tensor1d(absmax, BNB_DTYPE_F32, N * K / BS - 1);
    bnb_absmax am_short = plain_absmax(&tm_short);
    bnb_tensor tp_short = tensor1d(packed, BNB_DTYPE_U8, N * K / 2 - 1);
    memset(out, 0xAB, sizeof out);
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA_badk, &tc, BNB_WEIGHT_BNB_CPU, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_SHAPE_MISMATCH, "K = 38");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, &tc, BNB_WEIGHT_BNB_CPU, &am, BNB_QUANT_NF4, BS, NULL, &to_rows),
                BNB_ERR_SHAPE_MISMATCH, "M = 3");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, &tc, BNB_WEIGHT_BNB_CPU, &am, BNB_QUANT_NF4, BS, NULL, &to_i8),
                BNB_ERR_UNSUPPORTED_DTYPE, "out.dtype");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, &tp, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, &tbias_short, &to),
                BNB_ERR_SHAPE_MISMATCH, "bias has 31");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, &tp, BNB_WEIGHT_STANDARD, &am_short, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_BUFFER_TOO_SMALL, "absmax.values");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, &tp_short, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_BUFFER_TOO_SMALL, "W holds");
    CHECK_FAILS(bnb_ref_gemm_4bit(CTX, &tA, NULL, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &to),
                BNB_ERR_NULL_POINTER, "W is NULL");
    CHECK_FAILS(bnb_ref_gemv_4bit(CTX, &tA, &tp, 4, &am, BNB_QUANT_NF4, BS, NULL, &to), BNB_ERR_INVALID_ARGUMENT,
                "format = 4");
    CHECK_FAILS(bnb_ref_gemv_4bit(CTX, &tA, &tp, BNB_WEIGHT_STANDARD, &am, 7, BS, NULL, &to), BNB_ERR_INVALID_ARGUMENT,
                "quant_type = 7");
    CHECK_FAILS(bnb_ref_gemv_4bit(CTX, &tA, &tp, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, 33, NULL, &to),
                BNB_ERR_INVALID_BLOCKSIZE, "blocksize = 33");
    CHECK(all_bytes(out, sizeof out, 0xAB));
}

int main(void) {
    test_math_environment();
    test_lut();
    test_4bit_map();
    test_quantize_blockwise();
    test_dequantize_blockwise();
    test_absmax_nested();
    test_4bit();
    test_weight_layouts();
    test_gemm();
    return bnbt_finish("quant_unit_test");
}
