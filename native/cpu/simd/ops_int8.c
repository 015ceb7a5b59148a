/* LLM.int8() slots of the SIMD CPU variants (spec §2.8). First cut: the reference kernels, so the variants link. */
#include "bnb_int8.h"
#include "cpu_ops.h"

bnb_status BNB_CALL bnb_cpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    return bnb_ref_int8_vectorwise_quant(context, A, threshold, out_CA, out_row_stats, out_outlier_cols,
                                         out_outlier_count);
}

bnb_status BNB_CALL bnb_cpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out) {
    return bnb_ref_int8_vectorwise_dequant(context, CA, row_stats, out);
}

bnb_status BNB_CALL bnb_cpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out) {
    return bnb_ref_int8_linear_matmul(context, A, B, out);
}

bnb_status BNB_CALL bnb_cpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    return bnb_ref_int8_mm_dequant(context, C, row_stats, col_stats, bias, out);
}

bnb_status BNB_CALL bnb_cpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count) {
    return bnb_ref_int8_double_quant(context, A, threshold, out_CA, out_CAt, out_row_stats, out_col_stats,
                                     out_outlier_cols, out_outlier_count);
}
