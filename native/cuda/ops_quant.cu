/*
 * ops_quant.cu — 8-bit blockwise and 4-bit NF4/FP4 quantization, dequantization, nested absmax, weight layouts.
 *
 * Quantizers: one thread block per quantization block (blockDim = min(blocksize, 256), a power of two), so the
 * block's absmax is one shared-memory reduction and every element's code is computed with exactly the reference's
 * float32 operations (ref/quant8.c, ref/quant4.c): codes and absmax are bit-identical to bnb_cpu_ref. The code
 * search is the reference's bucketize over the midpoints, done in shared memory. Dequantizers are element-wise
 * grid-stride loops (bandwidth-bound).
 */
#include "gpu_backend.h"
#include "gpu_device.cuh"
#include "gpu_reduce.cuh"

#include "bnb_quant.h"

#include <string.h>

using namespace bnb_gpu;

namespace {

constexpr int kElementThreads = 256;

Scales device_scales(const bnb_scales& s) {
    Scales d;
    d.absmax = s.absmax;
    d.codes = s.codes;
    d.nested_absmax = s.nested_absmax;
    d.nested_code = s.nested_code;
    d.nested_blocksize = s.nested_blocksize;
    d.nested_offset = s.nested_offset;
    d.nested = s.nested;
    return d;
}

/* ─── 8-bit blockwise quantization ───────────────────────────────────────────────────────────────────────── */

struct Quant8Params {
    float mid[BNB_CODE8_SIZE - 1]; /* midpoints of the ascending code table */
    const void* x;                 /* f32/f16/bf16 [n] */
    int32_t dtype;
    int32_t rounding;
    int64_t n;
    int64_t blocksize;
    const float* subtract;         /* nested absmax: x - *subtract (the mean), else NULL */
    uint8_t* codes;
    float* absmax;
};

BNB_D float quant8_input(const Quant8Params& p, int64_t i) {
    const float v = load_float(p.x, p.dtype, i);
    if (p.subtract == nullptr) return v;
    return v - *p.subtract;
}

__global__ void __launch_bounds__(256) quantize_blockwise_kernel(const Quant8Params p) {
    __shared__ float mid[BNB_CODE8_SIZE - 1];
    __shared__ float red[256];
    for (int j = threadIdx.x; j < BNB_CODE8_SIZE - 1; j += blockDim.x) mid[j] = p.mid[j];
    const int64_t start = (int64_t)blockIdx.x * p.blocksize;
    const int64_t len = p.n - start < p.blocksize ? p.n - start : p.blocksize;
    float local = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        const float x = quant8_input(p, start + i);
        const float m = x < 0.0f ? -x : x;
        local = m > local ? m : local; /* NaN ignored, as bnb_ref_block_absmax */
    }
    const float a = block_reduce(local, red, MaxIgnoreNaN()); /* also orders the mid[] fill before its use */
    const bool short_tail = len < p.blocksize;
    if (threadIdx.x == 0) p.absmax[blockIdx.x] = quantize8_absmax(a, short_tail, p.rounding);
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
        p.codes[start + i] = quantize8_value(quant8_input(p, start + i), a, short_tail, p.rounding, mid);
}

bnb_status launch_quantize8(const char* op, bnb_context* ctx, Quant8Params& p, const float* code, int64_t blocks) {
    bnb_ref_code_midpoints(code, BNB_CODE8_SIZE, p.mid);
    const int threads = p.blocksize < 256 ? (int)p.blocksize : 256;
    /* gridDim.x is limited to 2^31 - 1 blocks; blocksize >= 32 keeps that out of reach below 64 G elements */
    quantize_blockwise_kernel<<<(unsigned)blocks, threads, 0, ctx->stream>>>(p);
    return bnb_gpu_check_launch(op);
}

/* ─── dequantization ─────────────────────────────────────────────────────────────────────────────────────── */

__global__ void __launch_bounds__(kElementThreads)
    dequantize_blockwise_kernel(const uint8_t* codes, const Scales scales, const float* code, int64_t blocksize,
                                int64_t n, void* out, int32_t out_dtype) {
    __shared__ float table[BNB_CODE8_SIZE];
    for (int j = threadIdx.x; j < BNB_CODE8_SIZE; j += blockDim.x) table[j] = code[j];
    __syncthreads();
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const float v = table[codes[i]] * scale_at(scales, i / blocksize);
        store_float(out, out_dtype, i, v);
    }
}

struct Table4 {
    float v[BNB_CODE4_SIZE];
};

__global__ void __launch_bounds__(kElementThreads)
    dequantize_4bit_kernel(const uint8_t* packed, const Scales scales, const Table4 table, int64_t blocksize,
                           int64_t n, void* out, int32_t out_dtype) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const uint8_t byte = packed[i >> 1];
        const uint8_t nibble = (i & 1) ? (uint8_t)(byte & 0x0F) : (uint8_t)(byte >> 4);
        const float v = table.v[nibble] * scale_at(scales, i / blocksize);
        store_float(out, out_dtype, i, v);
    }
}

/* ─── 4-bit quantization ─────────────────────────────────────────────────────────────────────────────────── */

struct Quant4Params {
    uint8_t order[BNB_CODE4_SIZE];
    float bounds[BNB_CODE4_SIZE - 1];
    const void* x;
    int32_t dtype;
    int64_t n;
    int64_t blocksize;
    uint8_t* packed;
    float* absmax;
};

BNB_D uint8_t code4(const Quant4Params& p, float s) {
    if (s != s) return 0;
    return p.order[count_below(p.bounds, BNB_CODE4_SIZE - 1, s)];
}

__global__ void __launch_bounds__(256) quantize_4bit_kernel(const Quant4Params p) {
    __shared__ float red[256];
    const int64_t start = (int64_t)blockIdx.x * p.blocksize; /* even: blocksize >= 32 */
    const int64_t len = p.n - start < p.blocksize ? p.n - start : p.blocksize;
    float local = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        const float x = load_float(p.x, p.dtype, start + i);
        const float m = x < 0.0f ? -x : x;
        local = m > local ? m : local;
    }
    const float a = block_reduce(local, red, MaxIgnoreNaN());
    const bool short_tail = len < p.blocksize;
    const float clamped = fmaxf(a, 1e-38f);
    const float inv = 1.0f / clamped;
    if (threadIdx.x == 0) p.absmax[blockIdx.x] = short_tail ? clamped : a;
    const uint8_t pad = code4(p, 0.0f); /* an odd n pads one scaled 0.0 */
    for (int64_t i = 2 * (int64_t)threadIdx.x; i < len; i += 2 * (int64_t)blockDim.x) {
        uint8_t c[2];
        for (int e = 0; e < 2; ++e) {
            if (i + e >= len) {
                c[e] = pad;
                continue;
            }
            const float x = load_float(p.x, p.dtype, start + i + e);
            float s = short_tail ? x / clamped : x * inv;
            if (s > 1.0f) s = 1.0f;
            else if (s < -1.0f) s = -1.0f;
            c[e] = code4(p, s);
        }
        p.packed[(start + i) / 2] = (uint8_t)((c[0] << 4) | c[1]);
    }
}

/* ─── weight layouts (bnb_quant.h has the byte diagrams) ─────────────────────────────────────────────────── */

BNB_D uint8_t nibble_standard(const uint8_t* packed, int64_t e) {
    const uint8_t byte = packed[e >> 1];
    return (e & 1) ? (uint8_t)(byte & 0x0F) : (uint8_t)(byte >> 4);
}

/* standard → BNB_CPU: output byte j = (nb*(K/2) + k2)*32 + 2m + e holds rows 32nb+m (low) and 32nb+16+m (high) of
 * column 2*k2+e. */
__global__ void __launch_bounds__(kElementThreads)
    pack_cpu_layout_kernel(const uint8_t* standard, int64_t K, int64_t bytes, uint8_t* out) {
    const int64_t per_row_block = (K / 2) * 32;
    for (int64_t j = global_thread(); j < bytes; j += grid_threads()) {
        const int64_t nb = j / per_row_block, rem = j - nb * per_row_block;
        const int64_t k2 = rem / 32, w = rem % 32;
        const int64_t m = w / 2, k = 2 * k2 + (w & 1);
        const uint8_t lo = nibble_standard(standard, (32 * nb + m) * K + k);
        const uint8_t hi = nibble_standard(standard, (32 * nb + 16 + m) * K + k);
        out[j] = (uint8_t)((hi << 4) | lo);
    }
}

BNB_D uint8_t nibble_cpu_layout(const uint8_t* packed, int64_t K, int64_t n, int64_t k) {
    const int64_t byte_index = ((n / 32) * (K / 2) + k / 2) * 32 + 2 * (n % 16) + (k & 1);
    const uint8_t byte = packed[byte_index];
    return (n % 32) >= 16 ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0x0F);
}

/* BNB_CPU → standard: output byte j holds elements 2j and 2j+1 of row n = 2j / K (K even). */
__global__ void __launch_bounds__(kElementThreads)
    unpack_cpu_layout_kernel(const uint8_t* cpu, int64_t K, int64_t bytes, uint8_t* out) {
    for (int64_t j = global_thread(); j < bytes; j += grid_threads()) {
        const int64_t e = 2 * j, n = e / K, k = e - n * K;
        const uint8_t even = nibble_cpu_layout(cpu, K, n, k);
        const uint8_t odd = nibble_cpu_layout(cpu, K, n, k + 1);
        out[j] = (uint8_t)((even << 4) | odd);
    }
}

/* The 4-bit table's stable sort order and midpoints (bnb_ref_4bit_map_init) into the kernel's parameters. */
void fill_4bit_map(int32_t quant_type, Quant4Params& p) {
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(quant_type, &map);
    memcpy(p.order, map.order, sizeof p.order);
    memcpy(p.bounds, map.bounds, sizeof p.bounds);
}

Table4 table4(int32_t quant_type) {
    Table4 t;
    memcpy(t.v, bnb_table_4bit(quant_type), sizeof t.v);
    return t;
}

} // namespace

/* ─── slots ──────────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_gpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax) {
    static const char op[] = "quantize_blockwise";
    BNB_TRY(bnb_gpu_enter(op, context));
    float host_code[BNB_CODE8_SIZE];
    bnb_tensor shadow;
    const bnb_tensor* code_arg = NULL;
    BNB_TRY(bnb_gpu_host_code_table(op, code, BNB_CODE8_SIZE, host_code, &shadow, &code_arg));
    bnb_gpu_validation_context vc;
    bnb_quantize_blockwise_args a;
    BNB_TRY(bnb_validate_quantize_blockwise(op, bnb_gpu_validation(context, &vc), A, code_arg, blocksize, rounding,
                                            out_codes, out_absmax, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "A", context, a.A, a.A_dtype, 1, a.n, a.n, 1));
    if (a.n == 0) return BNB_OK;
    Quant8Params p;
    p.x = a.A;
    p.dtype = a.A_dtype;
    p.rounding = a.rounding;
    p.n = a.n;
    p.blocksize = a.blocksize;
    p.subtract = nullptr;
    p.codes = a.out_codes;
    p.absmax = a.out_absmax;
    return launch_quantize8(op, context, p, a.code, a.blocks);
}

bnb_status BNB_CALL bnb_gpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out) {
    static const char op[] = "dequantize_blockwise";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_dequantize_blockwise_args a;
    BNB_TRY(bnb_validate_dequantize_blockwise(op, context, codes, absmax, code, blocksize, out, &a));
    if (a.n == 0) return BNB_OK;
    dequantize_blockwise_kernel<<<bnb_gpu_grid(context, a.n, kElementThreads), kElementThreads, 0,
                                  context->stream>>>(a.codes, device_scales(a.scales), a.code, a.blocksize, a.n,
                                                     a.out, a.out_dtype);
    return bnb_gpu_check_launch(op);
}

namespace {
struct AbsmaxTerm {
    const float* x;
    __device__ double operator()(int64_t i) const { return (double)x[i]; }
};
__global__ void mean_to_float_kernel(const double* sum, int64_t n, float* out) { *out = (float)(*sum / (double)n); }
} // namespace

bnb_status BNB_CALL bnb_gpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset) {
    static const char op[] = "quantize_absmax_nested";
    BNB_TRY(bnb_gpu_enter(op, context));
    float host_code[BNB_CODE8_SIZE];
    bnb_tensor shadow;
    const bnb_tensor* code_arg = NULL;
    BNB_TRY(bnb_gpu_host_code_table(op, code, BNB_CODE8_SIZE, host_code, &shadow, &code_arg));
    bnb_gpu_validation_context vc;
    bnb_quantize_absmax_nested_args a;
    /* offset_in and out_offset are host pointers (scalars of the call), as on every backend */
    BNB_TRY(bnb_validate_quantize_absmax_nested(op, bnb_gpu_validation(context, &vc), absmax, code_arg,
                                                nested_blocksize, rounding, offset_in, out_codes, out_nested_absmax,
                                                out_offset, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "absmax", context, a.absmax, BNB_DTYPE_F32, 1, a.n, a.n, 1));
    if (a.has_offset && context->common.nonfinite_policy == BNB_NONFINITE_ERROR && !bnb_is_finite_f32(a.offset_in))
        return bnb_fail(BNB_ERR_NON_FINITE, op,
                        "offset_in[0] = %s; NaN/Inf inputs are rejected (set nonfinite_policy = "
                        "BNB_NONFINITE_PROPAGATE for bitsandbytes' behaviour)",
                        a.offset_in != a.offset_in ? "NaN" : (a.offset_in > 0 ? "+Inf" : "-Inf"));
    if (a.n == 0) return BNB_OK;
    void* scratch = NULL;
    BNB_TRY(bnb_gpu_scratch(op, context, (kReduceScratchDoubles + 1) * sizeof(double), &scratch));
    double* sums = (double*)scratch;
    float* offset = (float*)(sums + kReduceScratchDoubles);
    if (a.has_offset) {
        BNB_GPU_TRY(op, "upload offset_in",
                    gpuMemcpyAsync(offset, &a.offset_in, sizeof(float), gpuMemcpyHostToDevice, context->stream));
    } else {
        /* mean in double, rounded once (the reference's definition; summation order differs) */
        BNB_TRY(sum_double(op, context, AbsmaxTerm{a.absmax}, a.n, sums, sums + kReduceMaxBlocks));
        mean_to_float_kernel<<<1, 1, 0, context->stream>>>(sums + kReduceMaxBlocks, a.n, offset);
        BNB_TRY(bnb_gpu_check_launch(op));
    }
    Quant8Params p;
    p.x = a.absmax;
    p.dtype = BNB_DTYPE_F32;
    p.rounding = a.rounding;
    p.n = a.n;
    p.blocksize = a.nested_blocksize;
    p.subtract = offset;
    p.codes = a.out_codes;
    p.absmax = a.out_nested_absmax;
    BNB_TRY(launch_quantize8(op, context, p, a.code, a.nested_blocks));
    return bnb_gpu_copy_out(op, context, a.out_offset, offset, sizeof(float));
}

bnb_status BNB_CALL bnb_gpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    static const char op[] = "quantize_4bit";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_quantize_4bit_args a;
    BNB_TRY(bnb_validate_quantize_4bit(op, bnb_gpu_validation(context, &vc), A, quant_type, blocksize, out_packed,
                                       out_absmax, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "A", context, a.A, a.A_dtype, 1, a.n, a.n, 1));
    if (a.n == 0) return BNB_OK;
    Quant4Params p;
    fill_4bit_map(a.quant_type, p);
    p.x = a.A;
    p.dtype = a.A_dtype;
    p.n = a.n;
    p.blocksize = a.blocksize;
    p.packed = a.out_packed;
    p.absmax = a.out_absmax;
    const int threads = a.blocksize < 512 ? (int)a.blocksize / 2 : 256;
    quantize_4bit_kernel<<<(unsigned)a.blocks, threads, 0, context->stream>>>(p);
    return bnb_gpu_check_launch(op);
}

bnb_status BNB_CALL bnb_gpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    static const char op[] = "dequantize_4bit";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_dequantize_4bit_args a;
    BNB_TRY(bnb_validate_dequantize_4bit(op, context, packed, absmax, quant_type, blocksize, out, &a));
    if (a.n == 0) return BNB_OK;
    dequantize_4bit_kernel<<<bnb_gpu_grid(context, a.n, kElementThreads), kElementThreads, 0, context->stream>>>(
        a.packed, device_scales(a.scales), table4(a.quant_type), a.blocksize, a.n, a.out, a.out_dtype);
    return bnb_gpu_check_launch(op);
}

/* BNB_WEIGHT_BACKEND is the standard layout on GPUs: the gemv/gemm kernels read it directly. */
bnb_status BNB_CALL bnb_gpu_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes) {
    static const char op[] = "weight_pack_size";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack_size(op, context, format, BNB_WEIGHT_STANDARD, N, K, blocksize, out_bytes, &a));
    *out_bytes = (size_t)a.bytes;
    return BNB_OK;
}

static bnb_status copy_bytes(const char* op, bnb_context* context, uint8_t* dst, const uint8_t* src, int64_t bytes) {
    if (bytes <= 0 || dst == src) return BNB_OK;
    const bool overlap = dst < src + bytes && src < dst + bytes;
    if (!overlap) {
        BNB_GPU_TRY(op, "copy", gpuMemcpyAsync(dst, src, (size_t)bytes, gpuMemcpyDefault, context->stream));
        return BNB_OK;
    }
    void* staging = NULL; /* overlapping ranges (memmove semantics): through scratch */
    BNB_TRY(bnb_gpu_scratch(op, context, (size_t)bytes, &staging));
    BNB_GPU_TRY(op, "copy", gpuMemcpyAsync(staging, src, (size_t)bytes, gpuMemcpyDefault, context->stream));
    BNB_GPU_TRY(op, "copy", gpuMemcpyAsync(dst, staging, (size_t)bytes, gpuMemcpyDefault, context->stream));
    return BNB_OK;
}

bnb_status BNB_CALL bnb_gpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    static const char op[] = "weight_pack";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack(op, context, format, BNB_WEIGHT_STANDARD, 0, packed, N, K, blocksize, out_packed,
                                     &a));
    if (a.layout != BNB_WEIGHT_BNB_CPU) return copy_bytes(op, context, a.dst, a.src, a.bytes);
    if (a.bytes == 0) return BNB_OK;
    pack_cpu_layout_kernel<<<bnb_gpu_grid(context, a.bytes, kElementThreads), kElementThreads, 0, context->stream>>>(
        a.src, a.K, a.bytes, a.dst);
    return bnb_gpu_check_launch(op);
}

bnb_status BNB_CALL bnb_gpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    static const char op[] = "weight_unpack";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack(op, context, format, BNB_WEIGHT_STANDARD, 1, packed, N, K, blocksize,
                                     out_standard, &a));
    if (a.layout != BNB_WEIGHT_BNB_CPU) return copy_bytes(op, context, a.dst, a.src, a.std_bytes);
    if (a.std_bytes == 0) return BNB_OK;
    unpack_cpu_layout_kernel<<<bnb_gpu_grid(context, a.std_bytes, kElementThreads), kElementThreads, 0,
                               context->stream>>>(a.src, a.K, a.std_bytes, a.dst);
    return bnb_gpu_check_launch(op);
}
