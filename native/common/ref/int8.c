/*
 * LLM.int8() primitives — argument resolution and the scalar reference (spec §2.8).
 *
 * Semantics (bit-exact against the golden int8 cases):
 *   vectorwise quant  outliers are elements with |a| >= threshold (threshold > 0, compared in float32 as the CUDA
 *                     kernel does); a column with any outlier is an outlier column. row_stats[r] = max |a| over the
 *                     row's non-outlier elements; CA = round_half_even(f32(a * f32(127 / row_stats))), and every
 *                     element of an outlier column is 0 (for rows == 1 that is exactly the outlier element, as in
 *                     bitsandbytes). A zero row gives row_stats 0 and CA 0.
 *   double quant      row part as above; col_stats[c] = max_r |a| with outlier elements counted as 0;
 *                     CAt = round_half_even(f32(T(a * 127) / col_stats[c])) where T is A's dtype (PyTorch
 *                     evaluates A.mul(127) in fp16 for fp16 A); only outlier elements are 0 in CAt.
 *   vectorwise dequant  out = f32(f32((float)CA * row_stats) * f32(1/127)), the order of bitsandbytes' expression.
 *   linear matmul     exact int32 A·Bᵀ (accumulated in int64; results outside int32 are rejected, never wrapped).
 *   mm dequant        CUDA's formula T(fmaf(f32(f32((float)C * row) * col), f32(1/127²), bias)), bias as float32;
 *                     without bias the last step is the plain product f32(x * f32(1/127²)).
 * Conversions to int8 saturate and map NaN to 0 (the CUDA result for a zero row); they are only reachable with
 * NaN/Inf inputs under BNB_NONFINITE_PROPAGATE or fp16 overflow of a*127 in the column part.
 */
#include "../bnb_int8.h"

#include <math.h>

#if defined(__clang__)
/* torch/bitsandbytes round every float operation separately unless an fma is written out: no implicit fusion. */
#pragma STDC FP_CONTRACT OFF
#endif

#define F32_BIT BNB_DTYPE_BIT(BNB_DTYPE_F32)
#define I8_BIT BNB_DTYPE_BIT(BNB_DTYPE_I8)
#define I32_BIT BNB_DTYPE_BIT(BNB_DTYPE_I32)
#define I64_BIT BNB_DTYPE_BIT(BNB_DTYPE_I64)

int8_t bnb_int8_round(float v) {
    if (v != v) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return (int8_t)nearbyintf(v); /* default FP environment: ties to even */
}

/* ─── validation helpers ─────────────────────────────────────────────────────────────────────────────────── */

static bnb_status check_out_matrix(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                                   int64_t rows, int64_t cols, bnb_matrix* out) {
    BNB_TRY(bnb_check_matrix(op, arg, t, dtype_mask, out));
    if (out->cols != cols)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "%s has %lld columns, expected %lld", arg, (long long)out->cols,
                        (long long)cols);
    if (out->rows < rows)
        return bnb_fail(BNB_ERR_BUFFER_TOO_SMALL, op, "%s has %lld rows but %lld are needed", arg,
                        (long long)out->rows, (long long)rows);
    return BNB_OK;
}

/* Under BNB_NONFINITE_ERROR a NaN/Inf element of a float matrix fails the call, naming its [row, col]. */
static bnb_status check_matrix_finite(const char* op, const char* arg, const bnb_context_common* ctx,
                                      const bnb_matrix* m) {
    if (ctx->nonfinite_policy == BNB_NONFINITE_PROPAGATE) return BNB_OK;
    for (int64_t r = 0; r < m->rows; ++r) {
        for (int64_t c = 0; c < m->cols; ++c) {
            const float v = bnb_load_float(m->data, m->dtype, r * m->row_stride + c);
            if (!bnb_is_finite_f32(v))
                return bnb_fail(BNB_ERR_NON_FINITE, op,
                                "%s[%lld, %lld] = %s; NaN/Inf inputs are rejected (set nonfinite_policy = "
                                "BNB_NONFINITE_PROPAGATE for bitsandbytes' behaviour)",
                                arg, (long long)r, (long long)c, v != v ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
        }
    }
    return BNB_OK;
}

bnb_status bnb_int8_resolve_quant(const char* op, bnb_context* context, const bnb_tensor* A, float threshold,
                                  bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                  bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                  int64_t* out_outlier_count, int double_quant, bnb_int8_quant_args* out) {
    const bnb_context_common* ctx = NULL;
    BNB_TRY(bnb_check_context(op, context, &ctx));
    bnb_int8_quant_args a = {0};
    BNB_TRY(bnb_check_matrix(op, "A", A, BNB_FLOAT_DTYPES, &a.A));
    if (!(threshold >= 0.0f) || !bnb_is_finite_f32(threshold))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "threshold = %g must be finite and >= 0 (0 = no outliers)",
                        (double)threshold);
    a.threshold = threshold;
    const int64_t rows = a.A.rows, cols = a.A.cols;
    BNB_TRY(check_out_matrix(op, "out_CA", out_CA, I8_BIT, rows, cols, &a.CA));
    BNB_TRY(bnb_check_output(op, "out_row_stats", out_row_stats, F32_BIT, rows, NULL));
    a.row_stats = (float*)out_row_stats->data;
    if (double_quant) {
        BNB_TRY(check_out_matrix(op, "out_CAt", out_CAt, I8_BIT, rows, cols, &a.CAt));
        BNB_TRY(bnb_check_output(op, "out_col_stats", out_col_stats, F32_BIT, cols, NULL));
        a.col_stats = (float*)out_col_stats->data;
    }
    /* The outlier column list doubles as the per-column flag scratch, hence capacity `cols`. */
    if (threshold > 0.0f || out_outlier_cols != NULL) {
        if (out_outlier_cols == NULL)
            return bnb_fail(BNB_ERR_NULL_POINTER, op, "out_outlier_cols is NULL but threshold = %g > 0",
                            (double)threshold);
        BNB_TRY(bnb_check_output(op, "out_outlier_cols", out_outlier_cols, I64_BIT, cols, NULL));
        a.outlier_cols = (int64_t*)out_outlier_cols->data;
    }
    a.outlier_count = out_outlier_count;
    BNB_TRY(check_matrix_finite(op, "A", ctx, &a.A));
    *out = a;
    return BNB_OK;
}

bnb_status bnb_int8_resolve_vectorwise_dequant(const char* op, bnb_context* context, const bnb_tensor* CA,
                                               const bnb_tensor* row_stats, bnb_tensor* out,
                                               bnb_int8_dequant_args* args) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    bnb_int8_dequant_args a = {0};
    BNB_TRY(bnb_check_matrix(op, "CA", CA, I8_BIT, &a.CA));
    BNB_TRY(bnb_check_input(op, "row_stats", row_stats, F32_BIT, a.CA.rows, NULL));
    a.row_stats = (const float*)row_stats->data;
    BNB_TRY(check_out_matrix(op, "out", out, F32_BIT, a.CA.rows, a.CA.cols, &a.out));
    *args = a;
    return BNB_OK;
}

/* Exact dot product of row m of A and row n of B (both int8, K long), in int64. */
static int64_t dot_i8(const bnb_matrix* A, const bnb_matrix* B, int64_t m, int64_t n) {
    const int8_t* a = (const int8_t*)A->data + m * A->row_stride;
    const int8_t* b = (const int8_t*)B->data + n * B->row_stride;
    int64_t acc = 0;
    for (int64_t k = 0; k < A->cols; ++k) acc += (int64_t)a[k] * (int64_t)b[k];
    return acc;
}

bnb_status bnb_int8_resolve_linear_matmul(const char* op, bnb_context* context, const bnb_tensor* A,
                                          const bnb_tensor* B, bnb_tensor* out, bnb_int8_matmul_args* args) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    bnb_int8_matmul_args a = {0};
    BNB_TRY(bnb_check_matrix(op, "A", A, I8_BIT, &a.A));
    BNB_TRY(bnb_check_matrix(op, "B", B, I8_BIT, &a.B));
    if (a.A.cols != a.B.cols)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "A is [%lld, %lld] and B is [%lld, %lld]: K differs (%lld vs %lld)",
                        (long long)a.A.rows, (long long)a.A.cols, (long long)a.B.rows, (long long)a.B.cols,
                        (long long)a.A.cols, (long long)a.B.cols);
    BNB_TRY(check_out_matrix(op, "out", out, I32_BIT, a.A.rows, a.B.rows, &a.out));
    /* |a·b| <= 128·128 per term: with K <= 131071 no sum can leave int32, otherwise check every sum first. */
    if (a.A.cols > 131071) {
        for (int64_t m = 0; m < a.A.rows; ++m) {
            for (int64_t n = 0; n < a.B.rows; ++n) {
                const int64_t v = dot_i8(&a.A, &a.B, m, n);
                if (v > INT32_MAX || v < INT32_MIN)
                    return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                                    "out[%lld, %lld] = %lld does not fit int32 (K = %lld)", (long long)m,
                                    (long long)n, (long long)v, (long long)a.A.cols);
            }
        }
    }
    *args = a;
    return BNB_OK;
}

bnb_status bnb_int8_resolve_mm_dequant(const char* op, bnb_context* context, const bnb_tensor* C,
                                       const bnb_tensor* row_stats, const bnb_tensor* col_stats,
                                       const bnb_tensor* bias, bnb_tensor* out, bnb_int8_mm_dequant_args* args) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    bnb_int8_mm_dequant_args a = {0};
    BNB_TRY(bnb_check_matrix(op, "C", C, I32_BIT, &a.C));
    BNB_TRY(bnb_check_input(op, "row_stats", row_stats, F32_BIT, a.C.rows, NULL));
    BNB_TRY(bnb_check_input(op, "col_stats", col_stats, F32_BIT, a.C.cols, NULL));
    a.row_stats = (const float*)row_stats->data;
    a.col_stats = (const float*)col_stats->data;
    if (bias != NULL) {
        BNB_TRY(bnb_check_input(op, "bias", bias, BNB_FLOAT_DTYPES, a.C.cols, NULL));
        a.bias = bias->data;
        a.bias_dtype = bias->dtype;
    }
    BNB_TRY(check_out_matrix(op, "out", out, BNB_FLOAT_DTYPES, a.C.rows, a.C.cols, &a.out));
    *args = a;
    return BNB_OK;
}

/* ─── reference math ─────────────────────────────────────────────────────────────────────────────────────── */

static float load_at(const bnb_matrix* m, int64_t r, int64_t c) {
    return bnb_load_float(m->data, m->dtype, r * m->row_stride + c);
}

static int is_outlier(float v, float threshold) { return threshold > 0.0f && fabsf(v) >= threshold; }

/* Max that propagates NaN, as torch.max/amax do. */
static float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

/* Writes the ascending outlier column indices to a->outlier_cols and returns their count. The list's memory first
 * holds one flag per column, then is compacted in place (index k <= c, so no flag is overwritten before read). */
static int64_t find_outlier_columns(const bnb_int8_quant_args* a) {
    if (a->outlier_cols == NULL || a->threshold <= 0.0f) return 0;
    int64_t* cols = a->outlier_cols;
    for (int64_t c = 0; c < a->A.cols; ++c) cols[c] = 0;
    for (int64_t r = 0; r < a->A.rows; ++r)
        for (int64_t c = 0; c < a->A.cols; ++c)
            if (is_outlier(load_at(&a->A, r, c), a->threshold)) cols[c] = 1;
    int64_t count = 0;
    for (int64_t c = 0; c < a->A.cols; ++c)
        if (cols[c]) cols[count++] = c;
    return count;
}

/* Row part shared by vectorwise and double quant. */
static void quantize_rows(const bnb_int8_quant_args* a) {
    const int64_t outliers = find_outlier_columns(a);
    for (int64_t r = 0; r < a->A.rows; ++r) {
        float row_max = 0.0f;
        for (int64_t c = 0; c < a->A.cols; ++c) {
            const float v = load_at(&a->A, r, c);
            if (!is_outlier(v, a->threshold)) row_max = max_nan(row_max, fabsf(v));
        }
        a->row_stats[r] = row_max;
        const float scale = 127.0f / row_max;
        int8_t* out = (int8_t*)a->CA.data + r * a->CA.row_stride;
        int64_t k = 0; /* next outlier column at or after c */
        for (int64_t c = 0; c < a->A.cols; ++c) {
            while (k < outliers && a->outlier_cols[k] < c) ++k;
            const int outlier_column = k < outliers && a->outlier_cols[k] == c;
            if (outlier_column || row_max == 0.0f) {
                out[c] = 0;
            } else {
                const float scaled = load_at(&a->A, r, c) * scale;
                out[c] = bnb_int8_round(scaled);
            }
        }
    }
    if (a->outlier_count != NULL) *a->outlier_count = outliers;
}

/* a*127 rounded to A's dtype, as PyTorch's A.mul(127.0) (exact in float32 for fp16/bf16 inputs, then one RNE). */
static float times127_in_dtype(float v, int32_t dtype) {
    const float p = v * 127.0f;
    if (dtype == BNB_DTYPE_F16) return bnb_f16_to_f32(bnb_f32_to_f16(p));
    if (dtype == BNB_DTYPE_BF16) return bnb_bf16_to_f32(bnb_f32_to_bf16(p));
    return p;
}

static void quantize_columns(const bnb_int8_quant_args* a) {
    for (int64_t c = 0; c < a->A.cols; ++c) a->col_stats[c] = 0.0f;
    for (int64_t r = 0; r < a->A.rows; ++r) {
        for (int64_t c = 0; c < a->A.cols; ++c) {
            const float v = load_at(&a->A, r, c);
            if (!is_outlier(v, a->threshold)) a->col_stats[c] = max_nan(a->col_stats[c], fabsf(v));
        }
    }
    for (int64_t r = 0; r < a->A.rows; ++r) {
        int8_t* out = (int8_t*)a->CAt.data + r * a->CAt.row_stride;
        for (int64_t c = 0; c < a->A.cols; ++c) {
            const float v = load_at(&a->A, r, c);
            if (is_outlier(v, a->threshold)) {
                out[c] = 0;
            } else {
                const float q = times127_in_dtype(v, a->A.dtype) / a->col_stats[c]; /* 0/0 (zero column) → 0 */
                out[c] = bnb_int8_round(q);
            }
        }
    }
}

bnb_status BNB_CALL bnb_ref_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant("int8_vectorwise_quant", context, A, threshold, out_CA, NULL, out_row_stats,
                                   NULL, out_outlier_cols, out_outlier_count, 0, &a));
    quantize_rows(&a);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count) {
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant("int8_double_quant", context, A, threshold, out_CA, out_CAt, out_row_stats,
                                   out_col_stats, out_outlier_cols, out_outlier_count, 1, &a));
    quantize_rows(&a);
    quantize_columns(&a);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out) {
    bnb_int8_dequant_args a;
    BNB_TRY(bnb_int8_resolve_vectorwise_dequant("int8_vectorwise_dequant", context, CA, row_stats, out, &a));
    for (int64_t r = 0; r < a.CA.rows; ++r) {
        const int8_t* src = (const int8_t*)a.CA.data + r * a.CA.row_stride;
        float* dst = (float*)a.out.data + r * a.out.row_stride;
        for (int64_t c = 0; c < a.CA.cols; ++c) {
            const float scaled = (float)src[c] * a.row_stats[r];
            dst[c] = scaled * BNB_INT8_INV127;
        }
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out) {
    bnb_int8_matmul_args a;
    BNB_TRY(bnb_int8_resolve_linear_matmul("int8_linear_matmul", context, A, B, out, &a));
    for (int64_t m = 0; m < a.A.rows; ++m) {
        int32_t* dst = (int32_t*)a.out.data + m * a.out.row_stride;
        for (int64_t n = 0; n < a.B.rows; ++n) dst[n] = (int32_t)dot_i8(&a.A, &a.B, m, n);
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_int8_mm_dequant_args a;
    BNB_TRY(bnb_int8_resolve_mm_dequant("int8_mm_dequant", context, C, row_stats, col_stats, bias, out, &a));
    for (int64_t m = 0; m < a.C.rows; ++m) {
        const int32_t* src = (const int32_t*)a.C.data + m * a.C.row_stride;
        const int64_t row_offset = m * a.out.row_stride;
        for (int64_t n = 0; n < a.C.cols; ++n) {
            float b = 0.0f;
            if (a.bias != NULL) b = bnb_load_float(a.bias, a.bias_dtype, n);
            const float v = bnb_int8_mm_dequant_value(src[n], a.row_stats[m], a.col_stats[n], a.bias ? &b : NULL);
            bnb_store_float(a.out.data, a.out.dtype, row_offset + n, v);
        }
    }
    return BNB_OK;
}
