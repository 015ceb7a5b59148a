/* bnb_cpu_ref — the portable scalar reference backend and test oracle. It runs on every CPU and implements every
 * op with the plain reference math of native/common/ref; faster variants are checked against it. */
#include "bnb_int8.h"
#include "bnb_optim.h"
#include "bnb_quant.h"
#include "cpu_runtime.h"

const char bnb_backend_name[] = "cpu_ref";
/* The oracle stays single-threaded: it never starts threads, whatever num_threads says. */
const int bnb_cpu_backend_uses_threads = 0;

/* The reference runs everywhere but should lose to any variant built for the machine's ISA. */
#define CPU_REF_PROBE_SCORE 1

static bnb_status BNB_CALL cpu_ref_backend_get_info(bnb_backend_info* out) {
    bnb_backend_info info = {0};
    info.device_kind = BNB_DEVICE_CPU;
    info.description = "portable scalar reference (test oracle; no SIMD requirement)";
    info.ops = (1ull << BNB_OP_COUNT) - 1; /* every op */
    info.float_dtypes = BNB_FLOAT_DTYPES;
    info.quant_types = (1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4);
    info.weight_formats = (1u << BNB_WEIGHT_STANDARD) | (1u << BNB_WEIGHT_BNB_CPU) | (1u << BNB_WEIGHT_BACKEND);
    info.memory_kinds = (1u << BNB_MEMORY_DEVICE) | (1u << BNB_MEMORY_HOST_PINNED) | (1u << BNB_MEMORY_PAGED);
    info.optimizers = (1u << BNB_OPTIM_COUNT) - 1;
    return bnb_backend_info_copy(info, out);
}

static const bnb_api cpu_ref_api = {
    .abi_major = BNB_ABI_MAJOR,
    .abi_minor = BNB_ABI_MINOR,
    .struct_size = sizeof(bnb_api),
    .backend_get_info = cpu_ref_backend_get_info,
    BNB_CPU_RUNTIME_SLOTS,
    .quantize_blockwise = bnb_ref_quantize_blockwise,
    .dequantize_blockwise = bnb_ref_dequantize_blockwise,
    .quantize_absmax_nested = bnb_ref_quantize_absmax_nested,
    .quantize_4bit = bnb_ref_quantize_4bit,
    .dequantize_4bit = bnb_ref_dequantize_4bit,
    .weight_pack_size = bnb_ref_weight_pack_size,
    .weight_pack = bnb_ref_weight_pack,
    .weight_unpack = bnb_ref_weight_unpack,
    .gemv_4bit = bnb_ref_gemv_4bit,
    .gemm_4bit = bnb_ref_gemm_4bit,
    .int8_vectorwise_quant = bnb_ref_int8_vectorwise_quant,
    .int8_vectorwise_dequant = bnb_ref_int8_vectorwise_dequant,
    .int8_linear_matmul = bnb_ref_int8_linear_matmul,
    .int8_mm_dequant = bnb_ref_int8_mm_dequant,
    .int8_double_quant = bnb_ref_int8_double_quant,
    .optimizer_update_32bit = bnb_ref_optimizer_update_32bit,
    .optimizer_update_8bit_blockwise = bnb_ref_optimizer_update_8bit_blockwise,
    .optimizer_unorm = bnb_ref_optimizer_unorm,
    .percentile_clipping = bnb_ref_percentile_clipping,
    BNB_CPU_PAGING_SLOTS,
};

BNB_EXPORT int32_t BNB_CALL bnb_probe(void) { return CPU_REF_PROBE_SCORE; }

BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api) {
    return bnb_backend_get_api(&cpu_ref_api, abi_major, out_api);
}
