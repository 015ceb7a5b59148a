/*
 * gpu_device.cuh — device-side helpers shared by the kernels (CUDA and HIP).
 *
 * Numerics: every kernel reproduces the reference math of native/common/ref operation by operation. The build
 * turns off implicit FMA contraction (nvcc --fmad=false, hipcc -ffp-contract=off), so `a * b + c` rounds twice as
 * in the reference; where the reference has an fma, bnb_fma() below is the IEEE fused operation. Divisions and
 * square roots are IEEE (no fast-math). f16/bf16 conversions are bit-exact RNE in plain integer code (identical to
 * bnb_f32_to_f16 / bnb_f32_to_bf16), so results do not depend on a vendor's intrinsics.
 */
#ifndef BNB_GPU_DEVICE_CUH
#define BNB_GPU_DEVICE_CUH

#include "gpu_vendor.h"

#include <bnb/bnb.h>
#include <stdint.h>

#define BNB_D __device__ __forceinline__

namespace bnb_gpu {

BNB_D float bits_f32(uint32_t u) { return __uint_as_float(u); }
BNB_D uint32_t f32_bits(float f) { return __float_as_uint(f); }

BNB_D float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }

BNB_D float bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }
BNB_D uint16_t f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays quiet */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
BNB_D float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1Fu;
    const uint32_t m = h & 0x3FFu;
    if (e == 0x1F) return bits_f32(sign | 0x7F800000u | (m << 13));
    if (e == 0) { /* subnormal: m * 2^-24 is exact in float32 */
        const float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}
BNB_D uint16_t f32_to_f16(float f) { /* RNE; overflow → ±inf; NaN → quiet NaN */
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
    if (a < 0x38800000u) { /* result is subnormal (or zero): round a * 2^24 to an integer, ties to even */
        const float units = bits_f32(a) * 16777216.0f; /* exact: a power-of-two scale of a normal-range value */
        return (uint16_t)(sign | (uint16_t)__float2uint_rn(units));
    }
    const uint32_t e = (a >> 23) - 112u;
    const uint32_t m = a & 0x7FFFFFu;
    uint32_t h = (e << 10) | (m >> 13);
    const uint32_t rest = m & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return (uint16_t)(sign | h);
}

/* Element i of a contiguous f32/f16/bf16 array as float, and the RNE store. */
BNB_D float load_float(const void* data, int32_t dtype, int64_t i) {
    if (dtype == BNB_DTYPE_F16) return f16_to_f32(((const uint16_t*)data)[i]);
    if (dtype == BNB_DTYPE_BF16) return bf16_to_f32(((const uint16_t*)data)[i]);
    return ((const float*)data)[i];
}
BNB_D void store_float(void* data, int32_t dtype, int64_t i, float v) {
    if (dtype == BNB_DTYPE_F16) ((uint16_t*)data)[i] = f32_to_f16(v);
    else if (dtype == BNB_DTYPE_BF16) ((uint16_t*)data)[i] = f32_to_bf16(v);
    else ((float*)data)[i] = v;
}

BNB_D bool is_finite(float v) { return (f32_bits(v) & 0x7F800000u) != 0x7F800000u; }
BNB_D bool is_nan(float v) { return v != v; }

/* Number of bounds[j] strictly below s (bounds ascending); NaN → 0. Same search as bnb_ref_count_below. */
BNB_D int32_t count_below(const float* bounds, int32_t count, float s) {
    int32_t lo = 0, hi = count;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < s) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The LUT bin of x (bnb_ref_lut_index) and the grid point of a bin (bnb_ref_lut_entry's argument). */
BNB_D uint32_t lut_index(float x, float inv) {
    float v = x * inv;
    if (v > 1.0f) v = 1.0f;
    else if (v < -1.0f) v = -1.0f;
    const float t = (v + 1.0f) * 0.5f;
    const float f = fma_rn(t, 65535.0f, 0.5f);
    if (f != f) return 0;
    return (uint32_t)(int32_t)f & 0xFFFFu;
}
BNB_D float lut_grid_point(uint32_t i) {
    const float twice = (float)i + (float)i;
    const float scaled = twice / 65535.0f;
    return scaled - 1.0f;
}

/* One element of 8-bit blockwise quantization in a block with absmax a (block_reduce(MaxIgnoreNaN) of |x|) and
 * `mid` the 255 midpoints of the code table: the code (bnb_ref_quantize_block_nearest / _lut). */
BNB_D uint8_t quantize8_value(float x, float a, bool short_tail, int32_t rounding, const float* mid) {
    if (rounding == BNB_ROUND_BNB_CPU_LUT) {
        if (a == 0.0f) return 0;
        const float inv = 1.0f / a;
        return (uint8_t)count_below(mid, 255, lut_grid_point(lut_index(x, inv)));
    }
    const float clamped = fmaxf(a, 1e-38f);
    float s;
    if (short_tail) {
        s = x / clamped;
    } else {
        const float inv = 1.0f / clamped;
        s = x * inv;
    }
    if (s > 1.0f) s = 1.0f;
    else if (s < -1.0f) s = -1.0f;
    return (uint8_t)count_below(mid, 255, s);
}
/* The absmax stored for that block. */
BNB_D float quantize8_absmax(float a, bool short_tail, int32_t rounding) {
    if (rounding == BNB_ROUND_BNB_CPU_LUT) return a;
    return short_tail ? fmaxf(a, 1e-38f) : a;
}

/* Per-block scales (bnb_scales on the device): plain f32 or nested codes + stats. */
struct Scales {
    const float* absmax;
    const uint8_t* codes;
    const float* nested_absmax;
    const float* nested_code;
    int64_t nested_blocksize;
    float nested_offset;
    int32_t nested;
};
BNB_D float scale_at(const Scales& s, int64_t b) {
    if (!s.nested) return s.absmax[b];
    const float v = s.nested_code[s.codes[b]] * s.nested_absmax[b / s.nested_blocksize];
    return v + s.nested_offset;
}

/* Block-wide reductions through shared memory (any block size that is a power of two <= 1024; every thread of
 * the block must call them). `shared` holds blockDim.x values. Independent of the warp/wavefront size. */
template <class T, class Op>
BNB_D T block_reduce(T v, T* shared, Op op) {
    const unsigned t = threadIdx.x;
    shared[t] = v;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half >>= 1) {
        if (t < half) shared[t] = op(shared[t], shared[t + half]);
        __syncthreads();
    }
    const T result = shared[0];
    __syncthreads(); /* shared[] may be reused right after */
    return result;
}
struct MaxIgnoreNaN { /* bnb_ref_block_absmax: NaN never wins */
    BNB_D float operator()(float a, float b) const { return b > a ? b : a; }
};
struct MaxPropagateNaN { /* torch.max: NaN wins */
    BNB_D float operator()(float a, float b) const { return (b > a || b != b) ? b : a; }
};
struct SumD {
    BNB_D double operator()(double a, double b) const { return a + b; }
};

/* Grid-stride loop helper. */
BNB_D int64_t global_thread() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
BNB_D int64_t grid_threads() { return (int64_t)gridDim.x * blockDim.x; }

/* 64-bit atomics used by reductions (double add exists natively on sm_60+ and on AMD). */
BNB_D void atomic_add_double(double* address, double v) { atomicAdd(address, v); }
BNB_D void atomic_min_u64(unsigned long long* address, unsigned long long v) { atomicMin(address, v); }

} // namespace bnb_gpu

#endif /* BNB_GPU_DEVICE_CUH */
