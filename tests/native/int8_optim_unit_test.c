/*
 * int8_optim_unit_test — edge cases of the LLM.int8 and optimizer references (native/common/bnb_int8.h,
 * bnb_optim.h): hand-computed results, outliers, zero rows, row strides, AdEMAMix 8-bit absmax rows, trust ratio,
 * optimizer_unorm, percentile clipping, and every slot's validation (status + message substring + "a failed call
 * writes nothing"). Links bnb_common directly; no golden files needed (the golden cases run in golden_runner).
 *
 * Usage: int8_optim_unit_test       exit code 0 when every check passes; each failure is printed with its line.
 */
#include "bnb_int8.h"
#include "bnb_optim.h"

#include "unit_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


static bnb_context_common g_ctx_error = {BNB_CONTEXT_MAGIC, 0, 1, BNB_NONFINITE_ERROR};
static bnb_context_common g_ctx_propagate = {BNB_CONTEXT_MAGIC, 0, 1, BNB_NONFINITE_PROPAGATE};
#define CTX ((bnb_context*)(void*)&g_ctx_error)
#define CTX_PROPAGATE ((bnb_context*)(void*)&g_ctx_propagate)

static bnb_tensor t1(void* data, int32_t dtype, int64_t n) {
    bnb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 1;
    t.shape[0] = n;
    return t;
}

static bnb_tensor t2(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride) {
    bnb_tensor t = t1(data, dtype, rows);
    t.ndim = 2;
    t.shape[1] = cols;
    if (row_stride != 0) {
        t.stride[0] = row_stride;
        t.stride[1] = 1;
    }
    return t;
}

static int near(double a, double b, double rtol) { return fabs(a - b) <= rtol * fabs(b) + 1e-30; }

/* Deterministic pseudo-random values in [-1, 1). */
static uint32_t g_seed = 12345u;
static float next_uniform(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* ─── LLM.int8 ───────────────────────────────────────────────────────────────────────────────────────────── */

static void test_vectorwise_quant(void) {
    /* thr 0: row_stats = row max; 127/4 = 31.75: 1 → 31.75 → 32, -2 → -63.5 → -64 (ties to even); 0.5·127 = 63.5 → 64 */
    float A[6] = {1.0f, -2.0f, 4.0f, 0.5f, 0.25f, -1.0f};
    int8_t CA[6];
    float rs[2];
    bnb_tensor tA = t2(A, BNB_DTYPE_F32, 2, 3, 0), tCA = t2(CA, BNB_DTYPE_I8, 2, 3, 0), trs = t1(rs, BNB_DTYPE_F32, 2);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX, &tA, 0.0f, &tCA, &trs, NULL, NULL));
    CHECK(rs[0] == 4.0f && rs[1] == 1.0f);
    CHECK(CA[0] == 32 && CA[1] == -64 && CA[2] == 127 && CA[3] == 64 && CA[4] == 32 && CA[5] == -127);

    /* thr 3, row stride 4: column 1 holds the outlier 5; row 0's max excludes it, row 1's max keeps its own 1;
     * the whole column is zeroed in both rows */
    float B[8] = {1.0f, 5.0f, 2.0f, 99.0f, 0.5f, 1.0f, -1.0f, 99.0f};
    int64_t cols[3] = {-1, -1, -1}, count = -1;
    bnb_tensor tB = t2(B, BNB_DTYPE_F32, 2, 3, 4), tcols = t1(cols, BNB_DTYPE_I64, 3);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX, &tB, 3.0f, &tCA, &trs, &tcols, &count));
    CHECK(count == 1 && cols[0] == 1);
    CHECK(rs[0] == 2.0f && rs[1] == 1.0f);
    CHECK(CA[1] == 0 && CA[4] == 0 && CA[0] == 64 && CA[2] == 127 && CA[3] == 64 && CA[5] == -127);

    /* one row: only the outlier element is 0; a zero row gives stats 0 and codes 0 */
    float C[3] = {-7.0f, 0.0f, 3.5f};
    bnb_tensor tC = t2(C, BNB_DTYPE_F32, 1, 3, 0), tCA1 = t2(CA, BNB_DTYPE_I8, 1, 3, 0);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX, &tC, 4.0f, &tCA1, &trs, &tcols, &count));
    CHECK(count == 1 && cols[0] == 0 && rs[0] == 3.5f && CA[0] == 0 && CA[1] == 0 && CA[2] == 127);
    float Z[3] = {0.0f, 0.0f, 0.0f};
    bnb_tensor tZ = t2(Z, BNB_DTYPE_F32, 1, 3, 0);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX, &tZ, 0.0f, &tCA1, &trs, NULL, NULL));
    CHECK(rs[0] == 0.0f && CA[0] == 0 && CA[1] == 0 && CA[2] == 0);

    /* fp16 input, all rows outlier-free except one NaN under PROPAGATE: stats NaN, codes 0 */
    uint16_t H[3] = {bnb_f32_to_f16(1.0f), bnb_f32_to_f16(NAN), bnb_f32_to_f16(-0.5f)};
    bnb_tensor tH = t2(H, BNB_DTYPE_F16, 1, 3, 0);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX_PROPAGATE, &tH, 0.0f, &tCA1, &trs, NULL, NULL));
    CHECK(rs[0] != rs[0] && CA[0] == 0 && CA[1] == 0 && CA[2] == 0);

    /* bad inputs: nothing written */
    memset(CA, 0x55, sizeof CA);
    rs[0] = rs[1] = 42.0f;
    float N[6] = {1, 2, 3, 4, 5, NAN};
    bnb_tensor tN = t2(N, BNB_DTYPE_F32, 2, 3, 0);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tN, 0.0f, &tCA, &trs, NULL, NULL), BNB_ERR_NON_FINITE,
                "A[1, 2] = NaN");
    CHECK(CA[0] == 0x55 && rs[0] == 42.0f);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(NULL, &tA, 0.0f, &tCA, &trs, NULL, NULL), BNB_ERR_NULL_POINTER,
                "context");
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, NULL, 0.0f, &tCA, &trs, NULL, NULL), BNB_ERR_NULL_POINTER, "A");
    bnb_tensor tAi = t2(A, BNB_DTYPE_I32, 2, 3, 0);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tAi, 0.0f, &tCA, &trs, NULL, NULL), BNB_ERR_UNSUPPORTED_DTYPE,
                "A.dtype = i32");
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, -1.0f, &tCA, &trs, NULL, NULL), BNB_ERR_INVALID_ARGUMENT,
                "threshold = -1");
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, NAN, &tCA, &trs, NULL, NULL), BNB_ERR_INVALID_ARGUMENT,
                "threshold");
    bnb_tensor tCAw = t2(CA, BNB_DTYPE_I8, 3, 2, 0), tCAs = t2(CA, BNB_DTYPE_I8, 1, 3, 0);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, 0.0f, &tCAw, &trs, NULL, NULL), BNB_ERR_SHAPE_MISMATCH,
                "out_CA has 2 columns, expected 3");
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, 0.0f, &tCAs, &trs, NULL, NULL), BNB_ERR_BUFFER_TOO_SMALL,
                "out_CA has 1 rows but 2");
    bnb_tensor trs1 = t1(rs, BNB_DTYPE_F32, 1);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, 0.0f, &tCA, &trs1, NULL, NULL), BNB_ERR_BUFFER_TOO_SMALL,
                "out_row_stats");
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, 3.0f, &tCA, &trs, NULL, NULL), BNB_ERR_NULL_POINTER,
                "out_outlier_cols");
    bnb_tensor tcols2 = t1(cols, BNB_DTYPE_I64, 2);
    CHECK_FAILS(bnb_ref_int8_vectorwise_quant(CTX, &tA, 3.0f, &tCA, &trs, &tcols2, NULL), BNB_ERR_BUFFER_TOO_SMALL,
                "out_outlier_cols");
    CHECK(CA[0] == 0x55 && rs[0] == 42.0f && rs[1] == 42.0f);

    /* empty matrix: nothing to do */
    bnb_tensor tE = t2(NULL, BNB_DTYPE_F32, 0, 3, 0), tCAE = t2(NULL, BNB_DTYPE_I8, 0, 3, 0), trsE = t1(NULL, BNB_DTYPE_F32, 0);
    CHECK_OK(bnb_ref_int8_vectorwise_quant(CTX, &tE, 0.0f, &tCAE, &trsE, NULL, NULL));
}

static void test_double_quant(void) {
    /* fp16 A [2, 2] with an outlier 8 at [0, 1], threshold 6. Column 1's stat ignores it; CAt only zeroes it. */
    const float values[4] = {1.0f, 8.0f, -0.5f, 2.0f};
    uint16_t A[4];
    for (int i = 0; i < 4; ++i) A[i] = bnb_f32_to_f16(values[i]);
    int8_t CA[4], CAt[4];
    float rs[2], cs[2];
    int64_t cols[2], count = 0;
    bnb_tensor tA = t2(A, BNB_DTYPE_F16, 2, 2, 0), tCA = t2(CA, BNB_DTYPE_I8, 2, 2, 0),
               tCAt = t2(CAt, BNB_DTYPE_I8, 2, 2, 0), trs = t1(rs, BNB_DTYPE_F32, 2), tcs = t1(cs, BNB_DTYPE_F32, 2),
               tcols = t1(cols, BNB_DTYPE_I64, 2);
    CHECK_OK(bnb_ref_int8_double_quant(CTX, &tA, 6.0f, &tCA, &tCAt, &trs, &tcs, &tcols, &count));
    CHECK(count == 1 && cols[0] == 1);
    CHECK(rs[0] == 1.0f && rs[1] == 2.0f && CA[1] == 0 && CA[3] == 0 && CA[0] == 127 && CA[2] == -32);
    CHECK(cs[0] == 1.0f && cs[1] == 2.0f);
    /* CAt: column 0 = round(f16(a·127) / 1) = 127, -64 (f16(-63.5) = -63.5 → ties to even -64); column 1: outlier
     * → 0, 2·127/2 = 127 */
    CHECK(CAt[0] == 127 && CAt[2] == -64 && CAt[1] == 0 && CAt[3] == 127);
    bnb_tensor tcs1 = t1(cs, BNB_DTYPE_F32, 1);
    CHECK_FAILS(bnb_ref_int8_double_quant(CTX, &tA, 6.0f, &tCA, &tCAt, &trs, &tcs1, &tcols, &count),
                BNB_ERR_BUFFER_TOO_SMALL, "out_col_stats");
    CHECK_FAILS(bnb_ref_int8_double_quant(CTX, &tA, 6.0f, &tCA, NULL, &trs, &tcs, &tcols, &count),
                BNB_ERR_NULL_POINTER, "out_CAt");
}

static void test_int8_matmul_dequant(void) {
    int8_t A[6] = {1, -2, 3, 127, -128, 0}, B[6] = {4, 5, 6, -1, -1, 1};
    int32_t C[4];
    bnb_tensor tA = t2(A, BNB_DTYPE_I8, 2, 3, 0), tB = t2(B, BNB_DTYPE_I8, 2, 3, 0), tC = t2(C, BNB_DTYPE_I32, 2, 2, 0);
    CHECK_OK(bnb_ref_int8_linear_matmul(CTX, &tA, &tB, &tC));
    CHECK(C[0] == 12 && C[1] == 4 && C[2] == 508 - 640 && C[3] == -127 + 128);
    bnb_tensor tB2 = t2(B, BNB_DTYPE_I8, 3, 2, 0);
    CHECK_FAILS(bnb_ref_int8_linear_matmul(CTX, &tA, &tB2, &tC), BNB_ERR_SHAPE_MISMATCH, "K differs (3 vs 2)");
    bnb_tensor tCw = t2(C, BNB_DTYPE_I32, 2, 1, 0);
    CHECK_FAILS(bnb_ref_int8_linear_matmul(CTX, &tA, &tB, &tCw), BNB_ERR_SHAPE_MISMATCH, "out has 1 columns");

    /* K = 140000 of (-128)·(-128) = 2 293 760 000 > INT32_MAX: rejected, out untouched */
    enum { K = 140000 };
    static int8_t big[K];
    memset(big, 0x80, sizeof big);
    int32_t one = 7;
    bnb_tensor tBig = t2(big, BNB_DTYPE_I8, 1, K, 0), tOne = t2(&one, BNB_DTYPE_I32, 1, 1, 0);
    CHECK_FAILS(bnb_ref_int8_linear_matmul(CTX, &tBig, &tBig, &tOne), BNB_ERR_INVALID_ARGUMENT, "does not fit int32");
    CHECK(one == 7);

    /* vectorwise dequant: CA · stats · f32(1/127) */
    int8_t CA[2] = {127, -64};
    float stats[1] = {2.0f}, out[2];
    bnb_tensor tCA = t2(CA, BNB_DTYPE_I8, 1, 2, 0), tst = t1(stats, BNB_DTYPE_F32, 1), tout = t2(out, BNB_DTYPE_F32, 1, 2, 0);
    CHECK_OK(bnb_ref_int8_vectorwise_dequant(CTX, &tCA, &tst, &tout));
    CHECK(out[0] == (254.0f * BNB_INT8_INV127) && out[1] == (-128.0f * BNB_INT8_INV127));
    bnb_tensor tout16 = t2(out, BNB_DTYPE_F16, 1, 2, 0);
    CHECK_FAILS(bnb_ref_int8_vectorwise_dequant(CTX, &tCA, &tst, &tout16), BNB_ERR_UNSUPPORTED_DTYPE, "out.dtype");

    /* mm dequant with bf16 bias into bf16 out: fmaf(C·row·col, 1/127², bias) rounded once to bf16 */
    int32_t Cm[2] = {16129, -16129};
    float row[1] = {1.0f}, col[2] = {1.0f, 2.0f};
    uint16_t bias[2] = {bnb_f32_to_bf16(0.5f), bnb_f32_to_bf16(-1.0f)}, o[2];
    bnb_tensor tCm = t2(Cm, BNB_DTYPE_I32, 1, 2, 0), trow = t1(row, BNB_DTYPE_F32, 1), tcol = t1(col, BNB_DTYPE_F32, 2),
               tbias = t1(bias, BNB_DTYPE_BF16, 2), to = t2(o, BNB_DTYPE_BF16, 1, 2, 0);
    CHECK_OK(bnb_ref_int8_mm_dequant(CTX, &tCm, &trow, &tcol, &tbias, &to));
    CHECK(near(bnb_bf16_to_f32(o[0]), 1.5, 1e-2) && near(bnb_bf16_to_f32(o[1]), -3.0, 1e-2));
    CHECK(o[0] == bnb_f32_to_bf16(fmaf(16129.0f, BNB_INT8_INV127SQ, 0.5f)));
    bnb_tensor tcol1 = t1(col, BNB_DTYPE_F32, 1), tbias1 = t1(bias, BNB_DTYPE_BF16, 1);
    CHECK_FAILS(bnb_ref_int8_mm_dequant(CTX, &tCm, &trow, &tcol1, &tbias, &to), BNB_ERR_BUFFER_TOO_SMALL, "col_stats");
    CHECK_FAILS(bnb_ref_int8_mm_dequant(CTX, &tCm, &trow, &tcol, &tbias1, &to), BNB_ERR_BUFFER_TOO_SMALL, "bias");
    CHECK(BNB_INT8_INV127SQ == (float)(1.0 / 16129.0));
}

/* ─── optimizers ─────────────────────────────────────────────────────────────────────────────────────────── */

static bnb_optimizer_params params_for(int32_t kind, int32_t step) {
    bnb_optimizer_params P;
    memset(&P, 0, sizeof P);
    P.struct_size = sizeof P;
    P.kind = kind;
    P.step = step;
    P.lr = 1e-3;
    P.beta1 = 0.9;
    P.beta2 = kind == BNB_OPTIM_LION ? 0.99 : 0.999;
    P.beta3 = 0.9999;
    P.alpha = 5.0;
    P.eps = 1e-8;
    P.weight_decay = 0.01;
    P.gnorm_scale = 1.0;
    P.param_norm = -1.0;
    P.rounding = BNB_ROUND_BNB_CPU_LUT;
    return P;
}

enum { ON = 600 }; /* 3 blocks of 256, the last one short */

static void test_optimizer_32bit_vs_formula(void) {
    /* Adam/AdamW step 1 from zero states, in double: m = (1-β1)g, v = (1-β2)g², p' = p(1-ηλ) - η·m̂/(√v̂+ε) */
    float p[ON], g[ON], s1[ON], s2[ON], p0[ON];
    for (int i = 0; i < ON; ++i) p0[i] = p[i] = next_uniform(), g[i] = 0.01f * next_uniform(), s1[i] = s2[i] = 0.0f;
    bnb_optimizer_params P = params_for(BNB_OPTIM_ADAM, 1);
    bnb_tensor tp = t1(p, BNB_DTYPE_F32, ON), tg = t1(g, BNB_DTYPE_F32, ON), ts1 = t1(s1, BNB_DTYPE_F32, ON),
               ts2 = t1(s2, BNB_DTYPE_F32, ON);
    float unorm = -1.0f;
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg, &ts1, &ts2, &unorm));
    int bad = 0;
    for (int i = 0; i < ON; ++i) {
        const double m = 0.1 * g[i], v = 0.001 * (double)g[i] * g[i];
        const double expect = p0[i] * (1.0 - 1e-5) - 1e-3 * (m / 0.1) / (sqrt(v / 0.001) + 1e-8);
        bad += !near(p[i], expect, 1e-5) || !near(s1[i], m, 1e-6) || !near(s2[i], v, 1e-5);
    }
    CHECK(bad == 0);
    CHECK(unorm == 0.0f); /* max_unorm = 0: no trust ratio */

    /* every kind and dtype runs, moves p and keeps it finite */
    for (int32_t kind = 0; kind < BNB_OPTIM_COUNT; ++kind) {
        for (int32_t dt = BNB_DTYPE_F32; dt <= BNB_DTYPE_BF16; ++dt) {
            uint16_t p16[ON], g16[ON];
            float pf[ON], st1[2 * ON], st2[ON];
            for (int i = 0; i < ON; ++i) {
                pf[i] = p0[i];
                p16[i] = dt == BNB_DTYPE_F16 ? bnb_f32_to_f16(p0[i]) : bnb_f32_to_bf16(p0[i]);
                g16[i] = dt == BNB_DTYPE_F16 ? bnb_f32_to_f16(g[i]) : bnb_f32_to_bf16(g[i]);
                st1[i] = st1[ON + i] = st2[i] = 0.0f;
            }
            void* pd = dt == BNB_DTYPE_F32 ? (void*)pf : (void*)p16;
            void* gd = dt == BNB_DTYPE_F32 ? (void*)g : (void*)g16;
            float before[ON];
            for (int i = 0; i < ON; ++i) before[i] = bnb_load_float(pd, dt, i);
            bnb_optimizer_params Q = params_for(kind, 1);
            Q.lr = 1.0; /* large enough to move every bf16 parameter */
            bnb_tensor tpk = t1(pd, dt, ON), tgk = t1(gd, dt, ON),
                       ts1k = kind == BNB_OPTIM_ADEMAMIX ? t2(st1, BNB_DTYPE_F32, 2, ON, 0) : t1(st1, BNB_DTYPE_F32, ON),
                       ts2k = t1(st2, BNB_DTYPE_F32, ON);
            CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &Q, &tpk, &tgk, &ts1k, &ts2k, NULL));
            int moved = 0, finite = 1;
            for (int i = 0; i < ON; ++i) {
                const float v = bnb_load_float(pd, dt, i);
                moved += v != before[i];
                finite &= bnb_is_finite_f32(v);
            }
            if (!(finite && moved > ON / 2)) printf("  kind %d dtype %d: moved %d finite %d\n", (int)kind, (int)dt, moved, finite);
            CHECK(finite && moved > ON / 2);
        }
    }
}

static void test_trust_ratio_and_unorm(void) {
    float p[ON], g[ON], s1[ON], s2[ON], pa[ON], s1a[ON], s2a[ON];
    double psq = 0.0;
    for (int i = 0; i < ON; ++i) {
        p[i] = pa[i] = 0.1f * next_uniform();
        g[i] = next_uniform();
        s1[i] = s1a[i] = 0.01f * next_uniform();
        s2[i] = s2a[i] = 1e-4f;
        psq += (double)p[i] * p[i];
    }
    bnb_optimizer_params P = params_for(BNB_OPTIM_LAMB, 3);
    P.weight_decay = 0.0;
    P.max_unorm = 0.01; /* forces the ratio below 1 */
    bnb_tensor tp = t1(p, BNB_DTYPE_F32, ON), tg = t1(g, BNB_DTYPE_F32, ON), ts1 = t1(s1, BNB_DTYPE_F32, ON),
               ts2 = t1(s2, BNB_DTYPE_F32, ON);
    double usq = -1.0, psq_op = -1.0;
    CHECK_OK(bnb_ref_optimizer_unorm(CTX, &P, &tp, &tg, &ts1, &ts2, &usq, &psq_op));
    CHECK(near(psq_op, psq, 1e-12) && usq > 0.0);
    CHECK(s1[0] == s1a[0] && p[0] == pa[0]); /* unorm writes nothing */
    float unorm = 0.0f;
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg, &ts1, &ts2, &unorm));
    CHECK(near(unorm, sqrt(usq), 1e-6));
    /* the applied step is the plain step scaled by max_unorm·‖p‖/‖upd‖; param_norm given = computed */
    bnb_optimizer_params Q = P;
    Q.param_norm = (float)sqrt(psq);
    bnb_tensor tpa = t1(pa, BNB_DTYPE_F32, ON), ts1a = t1(s1a, BNB_DTYPE_F32, ON), ts2a = t1(s2a, BNB_DTYPE_F32, ON);
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &Q, &tpa, &tg, &ts1a, &ts2a, NULL));
    int same = 0;
    for (int i = 0; i < ON; ++i) same += near(pa[i], p[i], 1e-6);
    CHECK(same == ON);
    const double us = 0.01 * sqrt(psq) / sqrt(usq);
    CHECK(us < 1.0);
    /* LARS: unorm is the norm of the new momentum buffer */
    float m[ON];
    for (int i = 0; i < ON; ++i) m[i] = 0.0f;
    bnb_optimizer_params L = params_for(BNB_OPTIM_LARS, 1);
    L.weight_decay = 0.0;
    L.max_unorm = 0.02;
    bnb_tensor tm = t1(m, BNB_DTYPE_F32, ON);
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &L, &tp, &tg, &tm, NULL, &unorm));
    double gsq = 0.0;
    for (int i = 0; i < ON; ++i) gsq += (double)g[i] * g[i];
    CHECK(near(unorm, sqrt(gsq), 1e-6));
}

static void test_optimizer_8bit(void) {
    /* AdEMAMix 8-bit with n % 256 != 0: step 1 from zero states gives m2 = (1-β3)·g, so absmax1 row 1 holds
     * max |g|·(1-β3) of each block at absmax1[blocks + b] (not bitsandbytes' CUDA (n+i)/256 index) */
    enum { B = 3 };
    float p[ON], g[ON];
    uint8_t c1[2 * ON], c2[ON];
    float a1[2 * B], a2[B];
    for (int i = 0; i < ON; ++i) p[i] = next_uniform(), g[i] = 0.01f * next_uniform(), c1[i] = c1[ON + i] = c2[i] = 0;
    for (int b = 0; b < 2 * B; ++b) a1[b] = 0.0f;
    for (int b = 0; b < B; ++b) a2[b] = 0.0f;
    bnb_optimizer_params P = params_for(BNB_OPTIM_ADEMAMIX, 1);
    bnb_tensor tp = t1(p, BNB_DTYPE_F32, ON), tg = t1(g, BNB_DTYPE_F32, ON), tc1 = t2(c1, BNB_DTYPE_U8, 2, ON, 0),
               tc2 = t1(c2, BNB_DTYPE_U8, ON), ta1 = t2(a1, BNB_DTYPE_F32, 2, B, 0), ta2 = t1(a2, BNB_DTYPE_F32, B),
               tq1 = t1((void*)bnb_table_dynamic_signed, BNB_DTYPE_F32, 256),
               tq2 = t1((void*)bnb_table_dynamic_unsigned, BNB_DTYPE_F32, 256);
    CHECK_OK(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tq1, &tq2));
    const float omb3 = (float)(1.0 - 0.9999), omb1 = (float)(1.0 - 0.9);
    for (int b = 0; b < B; ++b) {
        float gmax = 0.0f;
        for (int i = b * 256; i < ON && i < (b + 1) * 256; ++i) gmax = fmaxf(gmax, fabsf(g[i]));
        CHECK(near(a1[B + b], gmax * omb3, 1e-6));
        CHECK(near(a1[b], gmax * omb1, 1e-6));
    }

    /* every 8-bit kind tracks its 32-bit twin closely over a few steps (LUT requantization error only) */
    for (int32_t kind = 0; kind < BNB_OPTIM_COUNT; ++kind) {
        const int rows = kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
        float p8[ON], p32[ON], s1[2 * ON], s2[ON], d1[2 * ON];
        for (int i = 0; i < ON; ++i) p8[i] = p32[i] = p[i];
        memset(c1, 0, sizeof c1);
        memset(c2, 0, sizeof c2);
        memset(a1, 0, sizeof a1);
        memset(a2, 0, sizeof a2);
        memset(s1, 0, sizeof s1);
        memset(s2, 0, sizeof s2);
        double max_err = 0.0;
        for (int32_t step = 1; step <= 3; ++step) {
            for (int i = 0; i < ON; ++i) g[i] = 0.01f * next_uniform();
            bnb_optimizer_params Q = params_for(kind, step);
            bnb_tensor tp8 = t1(p8, BNB_DTYPE_F32, ON), tp32 = t1(p32, BNB_DTYPE_F32, ON),
                       tc1k = t1(c1, BNB_DTYPE_U8, rows * ON), ta1k = t1(a1, BNB_DTYPE_F32, rows * B),
                       ts1 = t1(s1, BNB_DTYPE_F32, rows * ON), ts2 = t1(s2, BNB_DTYPE_F32, ON);
            CHECK_OK(bnb_ref_optimizer_update_8bit_blockwise(CTX, &Q, &tp8, &tg, &tc1k, &tc2, &ta1k, &ta2, &tq1, &tq2));
            CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp32, &tg, &ts1, &ts2, NULL));
            /* re-synchronise the 32-bit twin to the dequantized 8-bit state, as bitsandbytes' tests do */
            for (int r = 0; r < rows; ++r)
                for (int i = 0; i < ON; ++i) d1[r * ON + i] = bnb_table_dynamic_signed[c1[r * ON + i]] * a1[r * B + i / 256];
            for (int i = 0; i < rows * ON; ++i) s1[i] = d1[i];
            if (bnb_optim_is_two_state(kind))
                for (int i = 0; i < ON; ++i) s2[i] = bnb_table_dynamic_unsigned[c2[i]] * a2[i / 256];
            for (int i = 0; i < ON; ++i) max_err = fmax(max_err, fabs((double)p8[i] - p32[i]));
            for (int i = 0; i < ON; ++i) p32[i] = p8[i];
        }
        if (!(max_err < 2e-4)) printf("  8-bit kind %d max |p8 - p32| = %g\n", (int)kind, max_err);
        CHECK(max_err < 2e-4);
    }
}

static void test_optimizer_validation(void) {
    float p[8] = {0}, g[8] = {0}, s1[16] = {0}, s2[8] = {0};
    bnb_tensor tp = t1(p, BNB_DTYPE_F32, 8), tg = t1(g, BNB_DTYPE_F32, 8), ts1 = t1(s1, BNB_DTYPE_F32, 8),
               ts2 = t1(s2, BNB_DTYPE_F32, 8);
    bnb_optimizer_params P = params_for(BNB_OPTIM_ADAM, 1);
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(NULL, &P, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_NULL_POINTER, "context");
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, NULL, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_NULL_POINTER, "params");
    bnb_optimizer_params Q = P;
    Q.struct_size = 8;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT,
                "struct_size = 8");
    Q = P, Q.kind = 42;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT,
                "kind = 42");
    Q = P, Q.step = 0;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT,
                "step = 0");
    Q = P, Q.beta1 = 1.0;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT,
                "beta1 = 1");
    Q = P, Q.lr = NAN;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT, "lr");
    Q = P, Q.eps = -1.0;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_INVALID_ARGUMENT, "eps");
    Q = params_for(BNB_OPTIM_MOMENTUM, 1), Q.eps = NAN; /* unused by momentum: ignored */
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, NULL, NULL));
    uint16_t g16[8] = {0};
    bnb_tensor tg16 = t1(g16, BNB_DTYPE_F16, 8), tg7 = t1(g, BNB_DTYPE_F32, 7), ts1n = t1(s1, BNB_DTYPE_F32, 16);
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg16, &ts1, &ts2, NULL), BNB_ERR_UNSUPPORTED_DTYPE,
                "g.dtype = f16 differs from p.dtype = f32");
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg7, &ts1, &ts2, NULL), BNB_ERR_SHAPE_MISMATCH,
                "p has 8 elements but g has 7");
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg, &ts1, NULL, NULL), BNB_ERR_NULL_POINTER, "state2");
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg, &ts1n, &ts2, NULL), BNB_ERR_SHAPE_MISMATCH, "state1");
    Q = params_for(BNB_OPTIM_ADEMAMIX, 1);
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_SHAPE_MISMATCH,
                "needs [2, 8]");
    bnb_tensor ts1w = t2(s1, BNB_DTYPE_F32, 8, 2, 0);
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1w, &ts2, NULL), BNB_ERR_SHAPE_MISMATCH, "state1");
    bnb_tensor ts1ok = t2(s1, BNB_DTYPE_F32, 2, 8, 0);
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &Q, &tp, &tg, &ts1ok, &ts2, NULL));

    /* NaN gradient: rejected under ERROR naming the index, nothing written; accepted under PROPAGATE */
    for (int i = 0; i < 8; ++i) p[i] = 1.0f, s1[i] = 0.5f;
    g[3] = NAN;
    CHECK_FAILS(bnb_ref_optimizer_update_32bit(CTX, &P, &tp, &tg, &ts1, &ts2, NULL), BNB_ERR_NON_FINITE, "g[3] = NaN");
    CHECK(p[0] == 1.0f && s1[0] == 0.5f);
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX_PROPAGATE, &P, &tp, &tg, &ts1, &ts2, NULL));
    CHECK(p[3] != p[3] && p[0] != 1.0f);
    g[3] = 0.0f;

    /* n = 0 is a no-op */
    bnb_tensor te = t1(NULL, BNB_DTYPE_F32, 0);
    float unorm = -1.0f;
    CHECK_OK(bnb_ref_optimizer_update_32bit(CTX, &P, &te, &te, &te, &te, &unorm));
    CHECK(unorm == 0.0f);

    /* 8-bit */
    uint8_t c1[16] = {0}, c2[8] = {0};
    float a1[2] = {0}, a2[1] = {0}, q[256];
    for (int i = 0; i < 256; ++i) q[i] = bnb_table_dynamic_signed[i];
    bnb_tensor tc1 = t1(c1, BNB_DTYPE_U8, 8), tc2 = t1(c2, BNB_DTYPE_U8, 8), ta1 = t1(a1, BNB_DTYPE_F32, 1),
               ta2 = t1(a2, BNB_DTYPE_F32, 1), tq = t1(q, BNB_DTYPE_F32, 256), tq255 = t1(q, BNB_DTYPE_F32, 255),
               ta0 = t1(a1, BNB_DTYPE_F32, 0);
    CHECK_OK(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tq, &tq));
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, NULL, &ta1, &ta2, &tq, &tq),
                BNB_ERR_NULL_POINTER, "state2 is NULL but adam");
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tq, NULL),
                BNB_ERR_NULL_POINTER, "qmap2");
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta0, &ta2, &tq, &tq),
                BNB_ERR_BUFFER_TOO_SMALL, "absmax1");
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tq255, &tq),
                BNB_ERR_INVALID_ARGUMENT, "qmap1 has 255 elements");
    Q = P, Q.rounding = 7;
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &Q, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tq, &tq),
                BNB_ERR_INVALID_ARGUMENT, "rounding");
    bnb_tensor tc1f = t1(s1, BNB_DTYPE_F32, 8);
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1f, &tc2, &ta1, &ta2, &tq, &tq),
                BNB_ERR_UNSUPPORTED_DTYPE, "state1");
    Q = params_for(BNB_OPTIM_ADEMAMIX, 1);
    bnb_tensor tc1x = t2(c1, BNB_DTYPE_U8, 2, 8, 0), ta1x = t2(a1, BNB_DTYPE_F32, 2, 1, 0),
               ta1bad = t2(a1, BNB_DTYPE_F32, 1, 2, 0);
    CHECK_OK(bnb_ref_optimizer_update_8bit_blockwise(CTX, &Q, &tp, &tg, &tc1x, &tc2, &ta1x, &ta2, &tq, &tq));
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &Q, &tp, &tg, &tc1x, &tc2, &ta1bad, &ta2, &tq, &tq),
                BNB_ERR_SHAPE_MISMATCH, "absmax1 is [1, 2], expected [2, 1]");
    float qbad[256];
    for (int i = 0; i < 256; ++i) qbad[i] = q[255 - i];
    bnb_tensor tqbad = t1(qbad, BNB_DTYPE_F32, 256);
    CHECK_FAILS(bnb_ref_optimizer_update_8bit_blockwise(CTX, &P, &tp, &tg, &tc1, &tc2, &ta1, &ta2, &tqbad, &tq),
                BNB_ERR_INVALID_ARGUMENT, "not sorted");
    double usq, psq;
    CHECK_FAILS(bnb_ref_optimizer_unorm(CTX, &P, &tp, &tg, &ts1, &ts2, NULL, &psq), BNB_ERR_NULL_POINTER,
                "out_update_sq");
    CHECK_OK(bnb_ref_optimizer_unorm(CTX, &P, &tp, &tg, &ts1, &ts2, &usq, &psq));
}

static void test_percentile_clipping(void) {
    float g[4] = {3.0f, 4.0f, 0.0f, 0.0f}, hist[100];
    for (int i = 0; i < 100; ++i) hist[i] = 0.0f;
    bnb_tensor tg = t1(g, BNB_DTYPE_F32, 4), th = t1(hist, BNB_DTYPE_F32, 100);
    float gnorm = 0.0f, scale = 0.0f;
    CHECK_OK(bnb_ref_percentile_clipping(CTX, &tg, &th, 1, 5, &gnorm, &scale));
    CHECK(hist[0] == 25.0f && hist[99] == 25.0f && gnorm == 5.0f && scale == 1.0f);
    g[0] = 30.0f, g[1] = 40.0f; /* ‖g‖² = 2500: slot 2 becomes 2525, the 5th percentile stays 25 */
    CHECK_OK(bnb_ref_percentile_clipping(CTX, &tg, &th, 2, 5, &gnorm, &scale));
    CHECK(hist[2] == 2525.0f && hist[1] == 25.0f && gnorm == sqrtf(2525.0f));
    CHECK(scale == 5.0f / sqrtf(2525.0f));
    CHECK_OK(bnb_ref_percentile_clipping(CTX, &tg, &th, 102, 99, NULL, &scale)); /* slot 2 again; max → no clip */
    CHECK(hist[2] == 5025.0f && scale == 1.0f);

    hist[0] = 7.0f;
    CHECK_FAILS(bnb_ref_percentile_clipping(CTX, &tg, &th, 2, 100, NULL, &scale), BNB_ERR_INVALID_ARGUMENT,
                "percentile = 100");
    CHECK_FAILS(bnb_ref_percentile_clipping(CTX, &tg, &th, 0, 5, NULL, &scale), BNB_ERR_INVALID_ARGUMENT, "step = 0");
    CHECK_FAILS(bnb_ref_percentile_clipping(CTX, &tg, &th, 2, 5, NULL, NULL), BNB_ERR_NULL_POINTER, "out_gnorm_scale");
    bnb_tensor th99 = t1(hist, BNB_DTYPE_F32, 99);
    CHECK_FAILS(bnb_ref_percentile_clipping(CTX, &tg, &th99, 2, 5, NULL, &scale), BNB_ERR_BUFFER_TOO_SMALL,
                "gnorm_history");
    g[2] = INFINITY;
    CHECK_FAILS(bnb_ref_percentile_clipping(CTX, &tg, &th, 2, 5, NULL, &scale), BNB_ERR_NON_FINITE, "g[2] = +Inf");
    CHECK(hist[0] == 7.0f && hist[2] == 5025.0f);
}

int main(void) {
    test_vectorwise_quant();
    test_double_quant();
    test_int8_matmul_dequant();
    test_optimizer_32bit_vs_formula();
    test_trust_ratio_and_unorm();
    test_optimizer_8bit();
    test_optimizer_validation();
    test_percentile_clipping();
    return bnbt_finish("int8_optim_unit_test");
}
