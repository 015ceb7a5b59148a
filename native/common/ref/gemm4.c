/* 4-bit matmul reference: out[M, N] = A[M, K] · dequant(W)[N, K]^T (+ bias[N]) (spec §2.10).
 *
 * The oracle's arithmetic, chosen for clarity: each weight is dequantized exactly as dequantize_4bit does
 * (w = f32(table[nibble] * absmax of its flat block)), each product is rounded to float32 and summed in float32 in
 * ascending k, then the bias is added once and the sum is converted (RNE) to the output dtype. gemv and gemm share
 * this code. Fast backends may reorder the sum; they match this within the documented NMSE.
 */
#include "bnb_quant.h"

/* ─── validation ─────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status bnb_validate_gemm_4bit(const char* op, bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                  int32_t weight_format, int32_t backend_format, const bnb_absmax* absmax,
                                  int32_t quant_type, int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out,
                                  bnb_gemm_4bit_args* resolved) {
    bnb_gemm_4bit_args r = {0};
    bnb_weight_pack_args layout;
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_matrix(op, "A", A, BNB_FLOAT_DTYPES, &r.A));
    BNB_TRY(bnb_check_matrix(op, "out", out, BNB_FLOAT_DTYPES, &r.out));
    r.M = r.A.rows;
    r.K = r.A.cols;
    r.N = r.out.cols;
    if (r.out.rows != r.M)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "out.shape = [%lld, %lld] but A has M = %lld rows",
                        (long long)r.out.rows, (long long)r.out.cols, (long long)r.M);
    BNB_TRY(bnb_check_quant_type(op, quant_type));
    BNB_TRY(bnb_validate_weight_layout(op, weight_format, backend_format, r.N, r.K, blocksize, &layout));
    if (W != NULL && W->ndim == 2 && W->shape[1] != 1 && (W->shape[0] != r.N || W->shape[1] * 2 != r.K))
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op,
                        "W.shape = [%lld, %lld] is not [N, K/2] for N = %lld (out columns) and K = %lld (A columns)",
                        (long long)W->shape[0], (long long)W->shape[1], (long long)r.N, (long long)r.K);
    BNB_TRY(bnb_check_input(op, "W", W, BNB_DTYPE_BIT(BNB_DTYPE_U8), layout.bytes, NULL));
    BNB_TRY(bnb_check_absmax(op, absmax, bnb_ceil_div(r.N * r.K, blocksize), &r.scales));
    if (bias != NULL) {
        int64_t bias_numel = 0;
        BNB_TRY(bnb_check_input(op, "bias", bias, BNB_FLOAT_DTYPES, 0, &bias_numel));
        if (bias_numel != r.N)
            return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "bias has %lld elements but out has N = %lld columns",
                            (long long)bias_numel, (long long)r.N);
        r.bias = bias->data;
        r.bias_dtype = bias->dtype;
    }
    r.W = (const uint8_t*)W->data;
    r.layout = layout.layout;
    r.quant_type = quant_type;
    r.blocksize = blocksize;
    *resolved = r;
    return BNB_OK;
}

/* ─── kernel ─────────────────────────────────────────────────────────────────────────────────────────────── */

static uint8_t weight_nibble(const bnb_gemm_4bit_args* a, int64_t n, int64_t k) {
    if (a->layout == BNB_WEIGHT_BNB_CPU) return bnb_nibble_cpu_layout(a->W, a->K, n, k);
    return bnb_nibble_standard(a->W, n * a->K + k);
}

static void gemm_4bit(const bnb_gemm_4bit_args* a) {
    const float* table = bnb_table_4bit(a->quant_type);
    for (int64_t m = 0; m < a->M; ++m) {
        const int64_t a_row = m * a->A.row_stride;
        const int64_t out_row = m * a->out.row_stride;
        for (int64_t n = 0; n < a->N; ++n) {
            float acc = 0.0f;
            for (int64_t k = 0; k < a->K; ++k) {
                const float w = table[weight_nibble(a, n, k)] * bnb_scale_at(&a->scales, (n * a->K + k) / a->blocksize);
                const float product = bnb_load_float(a->A.data, a->A.dtype, a_row + k) * w;
                acc += product;
            }
            if (a->bias != NULL) acc += bnb_load_float(a->bias, a->bias_dtype, n);
            bnb_store_float(a->out.data, a->out.dtype, out_row + n, acc);
        }
    }
}

/* ─── reference slots ────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(bnb_validate_gemm_4bit("gemv_4bit", context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, &a));
    gemm_4bit(&a);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(bnb_validate_gemm_4bit("gemm_4bit", context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, &a));
    gemm_4bit(&a);
    return BNB_OK;
}
