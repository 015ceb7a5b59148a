/* cpu_ops.h — the op slots of the SIMD CPU variants (bnb_cpu_avx2, bnb_cpu_avx512, bnb_cpu_neon).
 *
 * The same sources build every variant; the ISA comes from the compiler flags of the variant (__AVX512F__,
 * __AVX2__, __ARM_NEON) and finer features are chosen at run time from context->features (AVX-512 VNNI/BF16,
 * NEON dot product). Each slot validates with the shared validators of native/common (bnb_validate_*,
 * bnb_int8_resolve_*, bnb_optim_resolve_*) so errors read the same as on every backend, then splits the work
 * over context->pool (thread_pool.h; results identical for every thread count).
 *
 *   ops_quant.c   quantize_blockwise, dequantize_blockwise, quantize_absmax_nested, quantize_4bit, dequantize_4bit
 *   ops_gemm4.c   weight_pack_size, weight_pack, weight_unpack, gemv_4bit, gemm_4bit
 *   ops_int8.c    int8_vectorwise_quant, int8_vectorwise_dequant, int8_linear_matmul, int8_mm_dequant,
 *                 int8_double_quant
 *   ops_optim.c   optimizer_update_32bit, optimizer_update_8bit_blockwise, optimizer_unorm, percentile_clipping
 *
 * Contract with the reference (bnb_cpu_ref): integer outputs (codes, packed nibbles, int8, int32) are identical;
 * float outputs are within the per-op NMSE bound of the conformance test (tests/native/conformance_test.cpp).
 */
#ifndef BNB_CPU_OPS_H
#define BNB_CPU_OPS_H

#include "../cpu_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NaN/Inf policy of the slots (ops_quant.c): the shared validators scan inputs one scalar at a time, so the slots
 * validate against a copy of the context that says PROPAGATE, then scan under BNB_NONFINITE_ERROR with the vector
 * kernel over the pool; only on a hit does bnb_check_finite run, for the reference's message (first bad index).
 * Valid where the finite check is the validator's last one (it is, in every validator used this way). */
bnb_context* bnb_cpu_propagate_view(bnb_context* context, bnb_context* copy);
bnb_status bnb_cpu_check_finite(const char* op, const char* arg, bnb_context* context, const void* data,
                                int32_t dtype, int64_t n);

bnb_status BNB_CALL bnb_cpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_cpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out);
bnb_status BNB_CALL bnb_cpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset);
bnb_status BNB_CALL bnb_cpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_cpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out);

bnb_status BNB_CALL bnb_cpu_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes);
bnb_status BNB_CALL bnb_cpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed);
bnb_status BNB_CALL bnb_cpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard);
bnb_status BNB_CALL bnb_cpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_cpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);

bnb_status BNB_CALL bnb_cpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_cpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out);
bnb_status BNB_CALL bnb_cpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out);
bnb_status BNB_CALL bnb_cpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_cpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count);

bnb_status BNB_CALL bnb_cpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm);
bnb_status BNB_CALL bnb_cpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                            bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2);
bnb_status BNB_CALL bnb_cpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq);
bnb_status BNB_CALL bnb_cpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                int32_t step, int32_t percentile, float* out_gnorm,
                                                float* out_gnorm_scale);

/* The op slots of a SIMD variant's table, in header order. */
#define BNB_CPU_OP_SLOTS                                                                                           \
    .quantize_blockwise = bnb_cpu_quantize_blockwise, .dequantize_blockwise = bnb_cpu_dequantize_blockwise,        \
    .quantize_absmax_nested = bnb_cpu_quantize_absmax_nested, .quantize_4bit = bnb_cpu_quantize_4bit,              \
    .dequantize_4bit = bnb_cpu_dequantize_4bit, .weight_pack_size = bnb_cpu_weight_pack_size,                      \
    .weight_pack = bnb_cpu_weight_pack, .weight_unpack = bnb_cpu_weight_unpack, .gemv_4bit = bnb_cpu_gemv_4bit,    \
    .gemm_4bit = bnb_cpu_gemm_4bit, .int8_vectorwise_quant = bnb_cpu_int8_vectorwise_quant,                        \
    .int8_vectorwise_dequant = bnb_cpu_int8_vectorwise_dequant, .int8_linear_matmul = bnb_cpu_int8_linear_matmul,  \
    .int8_mm_dequant = bnb_cpu_int8_mm_dequant, .int8_double_quant = bnb_cpu_int8_double_quant,                    \
    .optimizer_update_32bit = bnb_cpu_optimizer_update_32bit,                                                      \
    .optimizer_update_8bit_blockwise = bnb_cpu_optimizer_update_8bit_blockwise,                                    \
    .optimizer_unorm = bnb_cpu_optimizer_unorm, .percentile_clipping = bnb_cpu_percentile_clipping

#ifdef __cplusplus
}
#endif

#endif /* BNB_CPU_OPS_H */
