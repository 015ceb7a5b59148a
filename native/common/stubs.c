/* NOT_SUPPORTED implementations of every slot. A backend points each slot it does not implement at the matching
 * stub, so every slot is non-NULL and callers always get a status and a message naming the op and the backend. */
#include "bnb_common.h"

#define BNB_UNSUPPORTED(op)                                                                                            \
    bnb_fail(BNB_ERR_NOT_SUPPORTED, op, "not implemented by this backend (see backend_get_info ops bits)")

bnb_status BNB_CALL bnb_stub_get_code_table(int32_t table, bnb_tensor* out) {
    (void)table;
    (void)out;
    return BNB_UNSUPPORTED("get_code_table");
}

bnb_status BNB_CALL bnb_stub_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out) {
    (void)context;
    (void)kind;
    (void)bytes;
    (void)out;
    return BNB_UNSUPPORTED("buffer_alloc");
}

bnb_status BNB_CALL bnb_stub_buffer_free(bnb_buffer* buffer) {
    if (buffer == NULL)
        return BNB_OK; /* free/destroy accept NULL on every backend */
    return BNB_UNSUPPORTED("buffer_free");
}

bnb_status BNB_CALL bnb_stub_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes) {
    (void)buffer;
    (void)out_pointer;
    (void)out_bytes;
    return BNB_UNSUPPORTED("buffer_get_pointer");
}

bnb_status BNB_CALL bnb_stub_buffer_map(bnb_buffer* buffer, void** out_host_pointer) {
    (void)buffer;
    (void)out_host_pointer;
    return BNB_UNSUPPORTED("buffer_map");
}

bnb_status BNB_CALL bnb_stub_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes,
                                         int32_t direction) {
    (void)context;
    (void)dst;
    (void)src;
    (void)bytes;
    (void)direction;
    return BNB_UNSUPPORTED("memory_copy");
}

bnb_status BNB_CALL bnb_stub_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                            int32_t target) {
    (void)context;
    (void)buffer;
    (void)offset;
    (void)bytes;
    (void)target;
    return BNB_UNSUPPORTED("paged_prefetch");
}

bnb_status BNB_CALL bnb_stub_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream) {
    (void)context;
    (void)native_stream;
    (void)out_stream;
    return BNB_UNSUPPORTED("stream_create");
}

bnb_status BNB_CALL bnb_stub_stream_destroy(bnb_stream* stream) {
    if (stream == NULL)
        return BNB_OK; /* free/destroy accept NULL on every backend */
    return BNB_UNSUPPORTED("stream_destroy");
}

bnb_status BNB_CALL bnb_stub_stream_synchronize(bnb_stream* stream) {
    (void)stream;
    return BNB_UNSUPPORTED("stream_synchronize");
}

bnb_status BNB_CALL bnb_stub_context_set_stream(bnb_context* context, bnb_stream* stream) {
    (void)context;
    (void)stream;
    return BNB_UNSUPPORTED("context_set_stream");
}

bnb_status BNB_CALL bnb_stub_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                                int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                                bnb_tensor* out_absmax) {
    (void)context;
    (void)A;
    (void)code;
    (void)blocksize;
    (void)rounding;
    (void)out_codes;
    (void)out_absmax;
    return BNB_UNSUPPORTED("quantize_blockwise");
}

bnb_status BNB_CALL bnb_stub_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                  const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                  bnb_tensor* out) {
    (void)context;
    (void)codes;
    (void)absmax;
    (void)code;
    (void)blocksize;
    (void)out;
    return BNB_UNSUPPORTED("dequantize_blockwise");
}

bnb_status BNB_CALL bnb_stub_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                    const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                    const float* offset_in, bnb_tensor* out_codes,
                                                    bnb_tensor* out_nested_absmax, float* out_offset) {
    (void)context;
    (void)absmax;
    (void)code;
    (void)nested_blocksize;
    (void)rounding;
    (void)offset_in;
    (void)out_codes;
    (void)out_nested_absmax;
    (void)out_offset;
    return BNB_UNSUPPORTED("quantize_absmax_nested");
}

bnb_status BNB_CALL bnb_stub_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                           int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    (void)context;
    (void)A;
    (void)quant_type;
    (void)blocksize;
    (void)out_packed;
    (void)out_absmax;
    return BNB_UNSUPPORTED("quantize_4bit");
}

bnb_status BNB_CALL bnb_stub_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                             int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    (void)context;
    (void)packed;
    (void)absmax;
    (void)quant_type;
    (void)blocksize;
    (void)out;
    return BNB_UNSUPPORTED("dequantize_4bit");
}

bnb_status BNB_CALL bnb_stub_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                              int64_t blocksize, size_t* out_bytes) {
    (void)context;
    (void)format;
    (void)N;
    (void)K;
    (void)blocksize;
    (void)out_bytes;
    return BNB_UNSUPPORTED("weight_pack_size");
}

bnb_status BNB_CALL bnb_stub_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                         int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    (void)context;
    (void)format;
    (void)packed;
    (void)N;
    (void)K;
    (void)blocksize;
    (void)out_packed;
    return BNB_UNSUPPORTED("weight_pack");
}

bnb_status BNB_CALL bnb_stub_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                           int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    (void)context;
    (void)format;
    (void)packed;
    (void)N;
    (void)K;
    (void)blocksize;
    (void)out_standard;
    return BNB_UNSUPPORTED("weight_unpack");
}

bnb_status BNB_CALL bnb_stub_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                       int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                       int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    (void)context;
    (void)A;
    (void)W;
    (void)weight_format;
    (void)absmax;
    (void)quant_type;
    (void)blocksize;
    (void)bias;
    (void)out;
    return BNB_UNSUPPORTED("gemv_4bit");
}

bnb_status BNB_CALL bnb_stub_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                       int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                       int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    (void)context;
    (void)A;
    (void)W;
    (void)weight_format;
    (void)absmax;
    (void)quant_type;
    (void)blocksize;
    (void)bias;
    (void)out;
    return BNB_UNSUPPORTED("gemm_4bit");
}

bnb_status BNB_CALL bnb_stub_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                   bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                   bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    (void)context;
    (void)A;
    (void)threshold;
    (void)out_CA;
    (void)out_row_stats;
    (void)out_outlier_cols;
    (void)out_outlier_count;
    return BNB_UNSUPPORTED("int8_vectorwise_quant");
}

bnb_status BNB_CALL bnb_stub_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                     const bnb_tensor* row_stats, bnb_tensor* out) {
    (void)context;
    (void)CA;
    (void)row_stats;
    (void)out;
    return BNB_UNSUPPORTED("int8_vectorwise_dequant");
}

bnb_status BNB_CALL bnb_stub_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                                bnb_tensor* out) {
    (void)context;
    (void)A;
    (void)B;
    (void)out;
    return BNB_UNSUPPORTED("int8_linear_matmul");
}

bnb_status BNB_CALL bnb_stub_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                             const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    (void)context;
    (void)C;
    (void)row_stats;
    (void)col_stats;
    (void)bias;
    (void)out;
    return BNB_UNSUPPORTED("int8_mm_dequant");
}

bnb_status BNB_CALL bnb_stub_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                               bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                               bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                               int64_t* out_outlier_count) {
    (void)context;
    (void)A;
    (void)threshold;
    (void)out_CA;
    (void)out_CAt;
    (void)out_row_stats;
    (void)out_col_stats;
    (void)out_outlier_cols;
    (void)out_outlier_count;
    return BNB_UNSUPPORTED("int8_double_quant");
}

bnb_status BNB_CALL bnb_stub_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                    bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                    bnb_tensor* state2, float* out_unorm) {
    (void)context;
    (void)params;
    (void)p;
    (void)g;
    (void)state1;
    (void)state2;
    (void)out_unorm;
    return BNB_UNSUPPORTED("optimizer_update_32bit");
}

bnb_status BNB_CALL bnb_stub_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                             bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                             bnb_tensor* state2, bnb_tensor* absmax1,
                                                             bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                             const bnb_tensor* qmap2) {
    (void)context;
    (void)params;
    (void)p;
    (void)g;
    (void)state1;
    (void)state2;
    (void)absmax1;
    (void)absmax2;
    (void)qmap1;
    (void)qmap2;
    return BNB_UNSUPPORTED("optimizer_update_8bit_blockwise");
}

bnb_status BNB_CALL bnb_stub_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                             const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                             const bnb_tensor* state2, double* out_update_sq, double* out_param_sq) {
    (void)context;
    (void)params;
    (void)p;
    (void)g;
    (void)state1;
    (void)state2;
    (void)out_update_sq;
    (void)out_param_sq;
    return BNB_UNSUPPORTED("optimizer_unorm");
}

bnb_status BNB_CALL bnb_stub_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                 int32_t step, int32_t percentile, float* out_gnorm,
                                                 float* out_gnorm_scale) {
    (void)context;
    (void)g;
    (void)gnorm_history;
    (void)step;
    (void)percentile;
    (void)out_gnorm;
    (void)out_gnorm_scale;
    return BNB_UNSUPPORTED("percentile_clipping");
}

bnb_status BNB_CALL bnb_stub_pager_configure(bnb_context* context, const bnb_pager_config* config) {
    (void)context;
    (void)config;
    return BNB_UNSUPPORTED("pager_configure");
}

bnb_status BNB_CALL bnb_stub_memory_stats(bnb_context* context, bnb_memory_stats* out) {
    (void)context;
    (void)out;
    return BNB_UNSUPPORTED("memory_stats");
}

bnb_status BNB_CALL bnb_stub_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    (void)buffer;
    (void)access;
    (void)out_host_pointer;
    return BNB_UNSUPPORTED("buffer_map_access");
}

bnb_status BNB_CALL bnb_stub_buffer_unmap(bnb_buffer* buffer) {
    (void)buffer;
    return BNB_UNSUPPORTED("buffer_unmap");
}
