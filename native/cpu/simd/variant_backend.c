/* The table, probe and info of a SIMD CPU variant. This file is compiled WITHOUT the variant's ISA flags (see
 * native/cpu/CMakeLists.txt): bnb_probe and bnb_get_api must run on any CPU, to say "not here" on one that lacks
 * the ISA instead of faulting on an illegal instruction.
 *
 * The variant is chosen by one of BNB_CPU_VARIANT_AVX2, BNB_CPU_VARIANT_AVX512, BNB_CPU_VARIANT_NEON. */
#include "cpu_ops.h"

#if defined(BNB_CPU_VARIANT_AVX512)
const char bnb_backend_name[] = "cpu_avx512";
#define VARIANT_DESCRIPTION "AVX-512 F/BW/VL (+VNNI, BF16 at run time)"
#define VARIANT_REQUIRED                                                                                           \
    (BNB_CPU_FEATURE_AVX2 | BNB_CPU_FEATURE_FMA | BNB_CPU_FEATURE_F16C | BNB_CPU_FEATURE_AVX512F |                 \
     BNB_CPU_FEATURE_AVX512BW | BNB_CPU_FEATURE_AVX512VL)
#define VARIANT_SCORE 30
#elif defined(BNB_CPU_VARIANT_AVX2)
const char bnb_backend_name[] = "cpu_avx2";
#define VARIANT_DESCRIPTION "AVX2 + FMA + F16C"
#define VARIANT_REQUIRED (BNB_CPU_FEATURE_AVX2 | BNB_CPU_FEATURE_FMA | BNB_CPU_FEATURE_F16C)
#define VARIANT_SCORE 20
#elif defined(BNB_CPU_VARIANT_NEON)
const char bnb_backend_name[] = "cpu_neon";
#define VARIANT_DESCRIPTION "AArch64 NEON (+dot product at run time)"
#define VARIANT_REQUIRED BNB_CPU_FEATURE_NEON
#define VARIANT_SCORE 20
#else
#error "define one of BNB_CPU_VARIANT_AVX2, BNB_CPU_VARIANT_AVX512, BNB_CPU_VARIANT_NEON"
#endif

const int bnb_cpu_backend_uses_threads = 1;

static bnb_status BNB_CALL variant_backend_get_info(bnb_backend_info* out) {
    bnb_backend_info info = {0};
    info.device_kind = BNB_DEVICE_CPU;
    info.description = VARIANT_DESCRIPTION;
    info.ops = (1ull << BNB_OP_COUNT) - 1;
    info.float_dtypes = BNB_FLOAT_DTYPES;
    info.quant_types = (1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4);
    info.weight_formats = (1u << BNB_WEIGHT_STANDARD) | (1u << BNB_WEIGHT_BNB_CPU) | (1u << BNB_WEIGHT_BACKEND);
    info.memory_kinds = (1u << BNB_MEMORY_DEVICE) | (1u << BNB_MEMORY_HOST_PINNED) | (1u << BNB_MEMORY_PAGED);
    info.optimizers = (1u << BNB_OPTIM_COUNT) - 1;
    return bnb_backend_info_copy(info, out);
}

static const bnb_api variant_api = {
    .abi_major = BNB_ABI_MAJOR,
    .abi_minor = BNB_ABI_MINOR,
    .struct_size = sizeof(bnb_api),
    .backend_get_info = variant_backend_get_info,
    BNB_CPU_RUNTIME_SLOTS,
    BNB_CPU_OP_SLOTS,
    BNB_CPU_PAGING_SLOTS,
};

/* The CPU and the OS must both support every feature the variant was compiled for. */
BNB_EXPORT int32_t BNB_CALL bnb_probe(void) {
    return (bnb_cpu_features() & VARIANT_REQUIRED) == VARIANT_REQUIRED ? VARIANT_SCORE : 0;
}

BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api) {
    return bnb_backend_get_api(&variant_api, abi_major, out_api);
}
