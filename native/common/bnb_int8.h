/*
 * bnb_int8.h — LLM.int8() primitives: argument resolution shared by every backend, and the scalar reference
 * implementation of the five ABI slots (spec §2.8). Internal; never installed.
 *
 * A backend calls the bnb_int8_resolve_* function of an op first: it validates every argument (context, NULL
 * pointers, dtypes, shapes, capacities, NaN/Inf policy) and fills a small struct of plain pointers, sizes and
 * strides. After a successful resolve nothing can fail, so outputs are only written once everything is known good.
 *
 * Layout conventions: matrices are bnb_matrix views (row stride in elements, columns contiguous). Output matrices
 * must have exactly the op's number of columns (SHAPE_MISMATCH) and at least its number of rows
 * (BUFFER_TOO_SMALL); vectors (stats, bias, outlier columns) are contiguous with at least the needed elements.
 */
#ifndef BNB_INT8_H
#define BNB_INT8_H

#include "bnb_common.h"

#include <math.h>

#ifdef __cplusplus
extern "C" {
#endif

/* f32(1/127), the dequantization factor of bitsandbytes' int8_vectorwise_dequant (7.874015718698502e-3). */
#define BNB_INT8_INV127 7.874015718698502e-3f
/* f32(1/127^2), the constant of bitsandbytes' CUDA int8 mm-dequant kernel. (The Python default backend uses
 * 6.200124e-05, a typo; we use the CUDA value everywhere, spec §0 item 4.) */
#define BNB_INT8_INV127SQ 6.200012e-05f

/* int8_vectorwise_quant and int8_double_quant. */
typedef struct bnb_int8_quant_args {
    bnb_matrix A;              /* f32/f16/bf16 [rows, cols]                                                   */
    float threshold;           /* > 0: |a| >= threshold (compared as float32) marks an outlier; 0: off      */
    bnb_matrix CA;             /* i8 [rows, cols]                                                              */
    bnb_matrix CAt;            /* i8 [rows, cols], double quant only (data NULL otherwise)                     */
    float* row_stats;          /* f32 [rows]                                                                   */
    float* col_stats;          /* f32 [cols], double quant only                                                */
    int64_t* outlier_cols;     /* i64 capacity >= cols; NULL when threshold == 0 and the caller passed none   */
    int64_t* outlier_count;    /* may be NULL                                                                  */
} bnb_int8_quant_args;

/* double_quant = 0: validates the int8_vectorwise_quant arguments (out_CAt/out_col_stats ignored).
 * double_quant = 1: also validates out_CAt and out_col_stats. */
bnb_status bnb_int8_resolve_quant(const char* op, bnb_context* context, const bnb_tensor* A, float threshold,
                                  bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                  bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                  int64_t* out_outlier_count, int double_quant, bnb_int8_quant_args* out);

typedef struct bnb_int8_dequant_args {
    bnb_matrix CA;            /* i8 [rows, cols]  */
    const float* row_stats;   /* f32 [rows]       */
    bnb_matrix out;           /* f32 [rows, cols] */
} bnb_int8_dequant_args;
bnb_status bnb_int8_resolve_vectorwise_dequant(const char* op, bnb_context* context, const bnb_tensor* CA,
                                               const bnb_tensor* row_stats, bnb_tensor* out,
                                               bnb_int8_dequant_args* args);

typedef struct bnb_int8_matmul_args {
    bnb_matrix A;    /* i8 [M, K]  */
    bnb_matrix B;    /* i8 [N, K]  */
    bnb_matrix out;  /* i32 [M, N] */
} bnb_int8_matmul_args;
/* Besides shapes, rejects (INVALID_ARGUMENT) products whose exact value does not fit int32; this needs a dry run
 * of the dot products, done only when K is large enough for an overflow to be possible (K > 131071). */
bnb_status bnb_int8_resolve_linear_matmul(const char* op, bnb_context* context, const bnb_tensor* A,
                                          const bnb_tensor* B, bnb_tensor* out, bnb_int8_matmul_args* args);

typedef struct bnb_int8_mm_dequant_args {
    bnb_matrix C;             /* i32 [M, N]                 */
    const float* row_stats;   /* f32 [M]                    */
    const float* col_stats;   /* f32 [N]                    */
    const void* bias;         /* NULL or [N] of bias_dtype  */
    int32_t bias_dtype;
    bnb_matrix out;           /* f32/f16/bf16 [M, N]        */
} bnb_int8_mm_dequant_args;
bnb_status bnb_int8_resolve_mm_dequant(const char* op, bnb_context* context, const bnb_tensor* C,
                                       const bnb_tensor* row_stats, const bnb_tensor* col_stats,
                                       const bnb_tensor* bias, bnb_tensor* out, bnb_int8_mm_dequant_args* args);

/* round-half-even of v to int8, saturating; NaN → 0 (bitsandbytes' CUDA kernel result for a zero row). */
int8_t bnb_int8_round(float v);

/* One element of int8_mm_dequant: f32(f32(f32((float)c * row) * col) * 1/127²) (+ bias with one fma). */
static inline float bnb_int8_mm_dequant_value(int32_t c, float row, float col, const float* bias) {
    const float scaled_row = (float)c * row;
    const float scaled = scaled_row * col;
    /* No bias: a plain product. bnb_fmaf(x, k, 0) equals it except for the sign of a zero result. */
    if (bias == NULL) return scaled * BNB_INT8_INV127SQ;
    return bnb_fmaf(scaled, BNB_INT8_INV127SQ, *bias);
}

/* ─── reference slot implementations (exact ABI signatures) ─────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_ref_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count);

#ifdef __cplusplus
}
#endif

#endif /* BNB_INT8_H */
