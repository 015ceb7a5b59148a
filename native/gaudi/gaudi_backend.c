/* bnb_gaudi — the Intel Gaudi (HPU) stub. A real backend would need Habana's TPC-C compiler and SynapseAI runtime
 * (see README "Gaudi"); neither ships for Debian, so this library keeps the slot table complete and honest:
 * bnb_probe() says it cannot run, and every op reports BNB_ERR_NOT_SUPPORTED naming the op and the backend. */
#include "bnb_common.h"

const char bnb_backend_name[] = "gaudi";

static bnb_status BNB_CALL gaudi_backend_get_info(bnb_backend_info* out) {
    bnb_backend_info info = {0}; /* no ops, dtypes, formats or memory kinds */
    info.device_kind = BNB_DEVICE_ACCELERATOR;
    info.description = "Intel Gaudi TPC stub: loads everywhere, runs nothing (no TPC toolchain)";
    return bnb_backend_info_copy(info, out);
}

static bnb_status BNB_CALL gaudi_device_count(int32_t* out_count) {
    BNB_TRY(bnb_check_not_null("device_count", "out_count", out_count));
    *out_count = 0;
    return BNB_OK;
}

static bnb_status BNB_CALL gaudi_device_get_info(int32_t index, bnb_device_info* out) {
    (void)out;
    return bnb_fail(BNB_ERR_INVALID_ARGUMENT, "device_get_info", "index = %d is outside [0, 0): no Gaudi devices",
                    (int)index);
}

static bnb_status BNB_CALL gaudi_context_create(const bnb_context_options* options, bnb_context** out_context) {
    (void)options;
    (void)out_context;
    return bnb_fail(BNB_ERR_NO_DEVICE, "context_create", "no Gaudi device: this backend is a stub");
}

static bnb_status BNB_CALL gaudi_context_destroy(bnb_context* context) {
    if (context == NULL) return BNB_OK;
    return bnb_fail(BNB_ERR_INVALID_ARGUMENT, "context_destroy", "context was not created by this backend");
}

static const char* BNB_CALL gaudi_last_error_message(void) { return bnb_last_error(); }

static bnb_status BNB_CALL gaudi_set_log_callback(bnb_log_fn callback, void* user_data) {
    return bnb_set_log_callback_impl(callback, user_data);
}

static const bnb_api gaudi_api = {
    .abi_major = BNB_ABI_MAJOR,
    .abi_minor = BNB_ABI_MINOR,
    .struct_size = sizeof(bnb_api),
    .backend_get_info = gaudi_backend_get_info,
    .device_count = gaudi_device_count,
    .device_get_info = gaudi_device_get_info,
    .context_create = gaudi_context_create,
    .context_destroy = gaudi_context_destroy,
    .last_error_message = gaudi_last_error_message,
    .set_log_callback = gaudi_set_log_callback,
    .get_code_table = bnb_common_get_code_table,
    .buffer_alloc = bnb_stub_buffer_alloc,
    .buffer_free = bnb_stub_buffer_free,
    .buffer_get_pointer = bnb_stub_buffer_get_pointer,
    .buffer_map = bnb_stub_buffer_map,
    .memory_copy = bnb_stub_memory_copy,
    .paged_prefetch = bnb_stub_paged_prefetch,
    .stream_create = bnb_stub_stream_create,
    .stream_destroy = bnb_stub_stream_destroy,
    .stream_synchronize = bnb_stub_stream_synchronize,
    .context_set_stream = bnb_stub_context_set_stream,
    .quantize_blockwise = bnb_stub_quantize_blockwise,
    .dequantize_blockwise = bnb_stub_dequantize_blockwise,
    .quantize_absmax_nested = bnb_stub_quantize_absmax_nested,
    .quantize_4bit = bnb_stub_quantize_4bit,
    .dequantize_4bit = bnb_stub_dequantize_4bit,
    .weight_pack_size = bnb_stub_weight_pack_size,
    .weight_pack = bnb_stub_weight_pack,
    .weight_unpack = bnb_stub_weight_unpack,
    .gemv_4bit = bnb_stub_gemv_4bit,
    .gemm_4bit = bnb_stub_gemm_4bit,
    .int8_vectorwise_quant = bnb_stub_int8_vectorwise_quant,
    .int8_vectorwise_dequant = bnb_stub_int8_vectorwise_dequant,
    .int8_linear_matmul = bnb_stub_int8_linear_matmul,
    .int8_mm_dequant = bnb_stub_int8_mm_dequant,
    .int8_double_quant = bnb_stub_int8_double_quant,
    .optimizer_update_32bit = bnb_stub_optimizer_update_32bit,
    .optimizer_update_8bit_blockwise = bnb_stub_optimizer_update_8bit_blockwise,
    .optimizer_unorm = bnb_stub_optimizer_unorm,
    .percentile_clipping = bnb_stub_percentile_clipping,
    .pager_configure = bnb_stub_pager_configure,
    .memory_stats = bnb_stub_memory_stats,
    .buffer_map_access = bnb_stub_buffer_map_access,
    .buffer_unmap = bnb_stub_buffer_unmap,
};

BNB_EXPORT int32_t BNB_CALL bnb_probe(void) { return 0; }

BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api) {
    return bnb_backend_get_api(&gaudi_api, abi_major, out_api);
}
