/*
 * bnb_metal_plan.h — the platform-independent half of the Metal host: from validated slot arguments (native/common
 * validators) to the kernels' parameter blocks, auxiliary tables and buffer sizes. metal_backend.mm only adds the
 * Metal API calls (buffers, encoders, dispatch); the shim test (native/metal/shimtest) runs the kernels on the CPU
 * from the same plans, so this file is compiled and exercised in CI even though the .mm is not.
 *
 * Every table comes from native/common (code midpoints, the bitsandbytes CPU LUT, the 4-bit search order): the
 * numbers have one definition for all backends.
 */
#ifndef BNB_METAL_PLAN_H
#define BNB_METAL_PLAN_H

#include "bnb_common.h"
#include "bnb_metal_shared.h"
#include "bnb_quant.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <vector>

static_assert(BNB_MTL_F32 == BNB_DTYPE_F32 && BNB_MTL_F16 == BNB_DTYPE_F16 && BNB_MTL_BF16 == BNB_DTYPE_BF16,
              "kernel dtype ids must equal bnb.h's");
static_assert(BNB_MTL_ROUND_NEAREST == BNB_ROUND_NEAREST && BNB_MTL_ROUND_LUT == BNB_ROUND_BNB_CPU_LUT,
              "kernel rounding ids must equal bnb.h's");
static_assert(sizeof(bnb_mtl_quant_params) == 40 && sizeof(bnb_mtl_scale_params) == 16 &&
                  sizeof(bnb_mtl_dequant_params) == 40 && sizeof(bnb_mtl_gemv_params) == 80,
              "parameter blocks must keep the layout the kernels were written for");

namespace bnb_metal {

/* Most threadgroups (or threads, for element-wise kernels) one dispatch launches; kernels stride over the rest. */
constexpr uint64_t kMaxGroups = 65535;
constexpr uint64_t kMaxElementThreads = 1u << 22;

inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* A read-only range of host memory to stage into a device buffer. */
struct HostRange {
    const void* data;
    size_t bytes;
};

/* Per-block scales as the kernels take them: buffer(2) plain f32 absmax or u8 codes, buffer(3) nested absmax,
 * buffer(4) nested code (the last two are 4-byte placeholders for plain scales). */
struct ScaleBuffers {
    bnb_mtl_scale_params params;
    HostRange scales, nested_absmax, nested_code;
};

inline ScaleBuffers plan_scales(const bnb_scales& s, int64_t blocks) {
    static const float placeholder = 0.0f;
    ScaleBuffers r;
    memset(&r, 0, sizeof r);
    r.params.nested = s.nested;
    if (!s.nested) {
        r.scales = HostRange{s.absmax, (size_t)blocks * sizeof(float)};
        r.nested_absmax = HostRange{&placeholder, sizeof placeholder};
        r.nested_code = HostRange{&placeholder, sizeof placeholder};
        return r;
    }
    r.params.nested_blocksize = (uint64_t)s.nested_blocksize;
    r.params.nested_offset = s.nested_offset;
    r.scales = HostRange{s.codes, (size_t)blocks};
    r.nested_absmax = HostRange{s.nested_absmax, (size_t)bnb_ceil_div(blocks, s.nested_blocksize) * sizeof(float)};
    r.nested_code = HostRange{s.nested_code, BNB_CODE8_SIZE * sizeof(float)};
    return r;
}

/* quantize_blockwise: the 255 code midpoints, and the 64 KiB LUT for BNB_ROUND_BNB_CPU_LUT (1 byte otherwise). */
struct QuantizeBlockwisePlan {
    bnb_mtl_quant_params params;
    float mid[BNB_CODE8_SIZE - 1];
    std::vector<uint8_t> lut;
    uint64_t groups;
};

inline void plan_quantize_blockwise(const bnb_quantize_blockwise_args& a, QuantizeBlockwisePlan* plan) {
    memset(&plan->params, 0, sizeof plan->params);
    plan->params.n = (uint64_t)a.n;
    plan->params.blocksize = (uint64_t)a.blocksize;
    plan->params.blocks = (uint64_t)a.blocks;
    plan->params.dtype = a.A_dtype;
    plan->params.rounding = a.rounding;
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, plan->mid);
    if (a.rounding == BNB_ROUND_BNB_CPU_LUT) {
        plan->lut.assign(BNB_LUT_SIZE, 0);
        bnb_ref_build_lut(a.code, plan->lut.data());
    } else {
        plan->lut.assign(1, 0);
    }
    plan->groups = min_u64((uint64_t)a.blocks, kMaxGroups);
}

/* quantize_4bit: search bounds and order of the table (bnb_ref_4bit_map_init) and the padding nibble. */
struct Quantize4bitPlan {
    bnb_mtl_quant_params params;
    float bounds[BNB_CODE4_SIZE - 1];
    uint8_t order[BNB_CODE4_SIZE];
    uint64_t groups;
};

inline void plan_quantize_4bit(const bnb_quantize_4bit_args& a, Quantize4bitPlan* plan) {
    memset(&plan->params, 0, sizeof plan->params);
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(a.quant_type, &map);
    memcpy(plan->bounds, map.bounds, sizeof plan->bounds);
    memcpy(plan->order, map.order, sizeof plan->order);
    plan->params.n = (uint64_t)a.n;
    plan->params.blocksize = (uint64_t)a.blocksize;
    plan->params.blocks = (uint64_t)a.blocks;
    plan->params.dtype = a.A_dtype;
    plan->params.pad_code = bnb_ref_4bit_code(&map, 0.0f); /* odd n: bitsandbytes pads one 0.0 */
    plan->groups = min_u64((uint64_t)a.blocks, kMaxGroups);
}

/* dequantize_blockwise / dequantize_4bit. */
struct DequantizePlan {
    bnb_mtl_dequant_params params;
    ScaleBuffers scales;
    HostRange input;    /* codes (n bytes) or packed nibbles ((n + 1) / 2 bytes) */
    HostRange table;    /* 256 or 16 floats */
    size_t out_bytes;
    uint64_t threads;
};

/* What both dequantize plans share: element count, blocks, scales, output. */
inline void plan_dequantize_common(int64_t n, int64_t blocksize, const bnb_scales& scales, int32_t out_dtype,
                                   DequantizePlan* plan) {
    memset(&plan->params, 0, sizeof plan->params);
    plan->scales = plan_scales(scales, bnb_ceil_div(n, blocksize));
    plan->params.n = (uint64_t)n;
    plan->params.blocksize = (uint64_t)blocksize;
    plan->params.scales = plan->scales.params;
    plan->params.out_dtype = out_dtype;
    plan->out_bytes = (size_t)n * bnb_dtype_size(out_dtype);
    plan->threads = min_u64((uint64_t)n, kMaxElementThreads);
}

inline void plan_dequantize_blockwise(const bnb_dequantize_blockwise_args& a, DequantizePlan* plan) {
    plan_dequantize_common(a.n, a.blocksize, a.scales, a.out_dtype, plan);
    plan->input = HostRange{a.codes, (size_t)a.n};
    plan->table = HostRange{a.code, BNB_CODE8_SIZE * sizeof(float)};
}

inline void plan_dequantize_4bit(const bnb_dequantize_4bit_args& a, DequantizePlan* plan) {
    plan_dequantize_common(a.n, a.blocksize, a.scales, a.out_dtype, plan);
    plan->input = HostRange{a.packed, (size_t)(a.n / 2 + a.n % 2)};
    plan->table = HostRange{bnb_table_4bit(a.quant_type), BNB_CODE4_SIZE * sizeof(float)};
}

/* gemv_4bit over the standard layout. A and out are staged as the whole span their rows cover (row strides kept);
 * out is staged with its current contents so the gaps between rows come back unchanged. */
struct GemvPlan {
    bnb_mtl_gemv_params params;
    ScaleBuffers scales;
    HostRange A, W, table, bias;
    size_t out_bytes; /* span of out's rows, in bytes */
    uint64_t groups;
};

inline void plan_gemv_4bit(const bnb_gemm_4bit_args& a, GemvPlan* plan) {
    static const float no_bias = 0.0f;
    memset(&plan->params, 0, sizeof plan->params);
    const int64_t blocks = bnb_ceil_div(a.N * a.K, a.blocksize);
    plan->scales = plan_scales(a.scales, blocks);
    plan->params.M = (uint64_t)a.M;
    plan->params.N = (uint64_t)a.N;
    plan->params.K = (uint64_t)a.K;
    plan->params.a_row_stride = (uint64_t)a.A.row_stride;
    plan->params.out_row_stride = (uint64_t)a.out.row_stride;
    plan->params.blocksize = (uint64_t)a.blocksize;
    plan->params.scales = plan->scales.params;
    plan->params.a_dtype = a.A.dtype;
    plan->params.out_dtype = a.out.dtype;
    plan->params.bias_dtype = a.bias ? a.bias_dtype : BNB_MTL_NO_BIAS;
    plan->A = HostRange{a.A.data, (size_t)((a.M - 1) * a.A.row_stride + a.K) * bnb_dtype_size(a.A.dtype)};
    plan->W = HostRange{a.W, (size_t)((a.N * a.K + 1) / 2)};
    plan->table = HostRange{bnb_table_4bit(a.quant_type), BNB_CODE4_SIZE * sizeof(float)};
    plan->bias = a.bias ? HostRange{a.bias, (size_t)a.N * bnb_dtype_size(a.bias_dtype)} : HostRange{&no_bias, sizeof no_bias};
    plan->out_bytes = (size_t)((a.M - 1) * a.out.row_stride + a.N) * bnb_dtype_size(a.out.dtype);
    plan->groups = min_u64((uint64_t)(a.M * a.N), kMaxGroups);
}

} /* namespace bnb_metal */

#endif /* BNB_METAL_PLAN_H */
