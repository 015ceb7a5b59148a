/* ops_gemm4.c — 4-bit weight layouts and matmul of the SIMD CPU variants.
 *
 * First cut: the shared validators, then the reference arithmetic split over context->pool by output columns (each
 * task owns a disjoint column range of out, so the bytes are identical for every thread count). The vector kernels
 * and the tuned BNB_WEIGHT_BACKEND layout replace this step by step.
 */
#include "bnb_quant.h"
#include "cpu_ops.h"

/* ─── weight layouts (BACKEND = STANDARD for now) ────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_cpu_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes) {
    return bnb_ref_weight_pack_size(context, format, N, K, blocksize, out_bytes);
}

bnb_status BNB_CALL bnb_cpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    return bnb_ref_weight_pack(context, format, packed, N, K, blocksize, out_packed);
}

bnb_status BNB_CALL bnb_cpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    return bnb_ref_weight_unpack(context, format, packed, N, K, blocksize, out_standard);
}

/* ─── matmul ─────────────────────────────────────────────────────────────────────────────────────────────── */

#define GEMM4_COLS_PER_TASK 16

static void gemm4_columns_task(void* arg, int64_t task) {
    const bnb_gemm_4bit_args* a = (const bnb_gemm_4bit_args*)arg;
    const float* table = bnb_table_4bit(a->quant_type);
    const int64_t n0 = task * GEMM4_COLS_PER_TASK;
    const int64_t n1 = n0 + GEMM4_COLS_PER_TASK < a->N ? n0 + GEMM4_COLS_PER_TASK : a->N;
    for (int64_t m = 0; m < a->M; ++m) {
        const int64_t a_row = m * a->A.row_stride;
        const int64_t out_row = m * a->out.row_stride;
        for (int64_t n = n0; n < n1; ++n) {
            float acc = 0.0f;
            for (int64_t k = 0; k < a->K; ++k) {
                const uint8_t q = a->layout == BNB_WEIGHT_BNB_CPU ? bnb_nibble_cpu_layout(a->W, a->K, n, k)
                                                                  : bnb_nibble_standard(a->W, n * a->K + k);
                const float w = table[q] * bnb_scale_at(&a->scales, (n * a->K + k) / a->blocksize);
                acc += bnb_load_float(a->A.data, a->A.dtype, a_row + k) * w;
            }
            if (a->bias != NULL) acc += bnb_load_float(a->bias, a->bias_dtype, n);
            bnb_store_float(a->out.data, a->out.dtype, out_row + n, acc);
        }
    }
}

static void gemm4_run(bnb_context* context, bnb_gemm_4bit_args* a) {
    if (a->M == 0 || a->N == 0) return;
    bnb_parallel_for(context->pool, bnb_ceil_div(a->N, GEMM4_COLS_PER_TASK), gemm4_columns_task, a);
}

bnb_status BNB_CALL bnb_cpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(bnb_validate_gemm_4bit("gemv_4bit", context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, &a));
    gemm4_run(context, &a);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(bnb_validate_gemm_4bit("gemm_4bit", context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, &a));
    gemm4_run(context, &a);
    return BNB_OK;
}
