/*
 * bnb_metal_kernels.metal — Metal compute kernels of bnb_metal (spec/bnb-numerics.md §2.4–§2.7, §2.10).
 *
 * UNTESTED ON APPLE HARDWARE: no Apple toolchain exists on the project's machines. CI compiles this file as C++
 * against a shim of the MSL builtins it uses and runs every kernel on the CPU with emulated threadgroups against
 * bnb_cpu_ref (native/metal/shimtest); that checks the C++-expressible logic (indexing, block structure,
 * reductions, code search, rounding formulas), not MSL compilation, GPU float behaviour or the host code.
 *
 * Kernels (all 1-D grids; every loop strides by the grid so any n works with any launch size):
 *   bnb_quantize_blockwise    one threadgroup per block: absmax reduction, then nearest-code search or the
 *                             bitsandbytes CPU LUT (§2.5.2 / §2.5.3)
 *   bnb_quantize_4bit         one threadgroup per block: absmax, NF4/FP4 code search, two codes per byte (§2.6)
 *   bnb_dequantize_blockwise  one thread per element: code[q] * scale(block) (§2.5.4), plain or nested scales (§2.7)
 *   bnb_dequantize_4bit       one thread per element: table[nibble] * scale(block) (§2.6.3)
 *   bnb_gemv_4bit             one threadgroup per output element: strided float32 dot product + tree reduction
 *
 * Numerics: the host compiles this source with fast math off (IEEE division, no reassociation). Products and
 * sums are separate roundings unless fma() is written (contraction off below), as in the C reference.
 * Inputs are f32/f16/bf16 read as float; outputs are stored with round-to-nearest-even.
 */
#pragma clang fp contract(off)

#ifndef BNB_METAL_SHARED_H
#include "bnb_metal_shared.h"
#endif

#include <metal_stdlib>
using namespace metal;

// ─── element access ───────────────────────────────────────────────────────────────────────────────────────────

// Element i of an f32/f16/bf16 array as float (bf16 = the upper half of a binary32: exact).
static inline float bnb_load(device const uchar* data, int dtype, ulong i) {
    if (dtype == BNB_MTL_F16) return float(((device const half*)data)[i]);
    if (dtype == BNB_MTL_BF16) return as_type<float>(uint(((device const ushort*)data)[i]) << 16);
    return ((device const float*)data)[i];
}

// float → bfloat16 bits, round to nearest even; NaN stays NaN (quiet bit set), as bnb_f32_to_bf16.
static inline ushort bnb_bf16_bits(float v) {
    const uint u = as_type<uint>(v);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return ushort((u >> 16) | 0x0040u);
    return ushort((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Stores v into element i (float → half conversion in MSL rounds to nearest even; overflow gives ±inf).
static inline void bnb_store(device uchar* data, int dtype, ulong i, float v) {
    if (dtype == BNB_MTL_F16) ((device half*)data)[i] = half(v);
    else if (dtype == BNB_MTL_BF16) ((device ushort*)data)[i] = bnb_bf16_bits(v);
    else ((device float*)data)[i] = v;
}

// ─── searches and scales ──────────────────────────────────────────────────────────────────────────────────────

// Number of bounds strictly below s (ascending bounds): nearest code, ties to the lower index; NaN gives 0.
static inline int bnb_count_below(device const float* bounds, int count, float s) {
    int lo = 0, hi = count;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (bounds[mid] < s) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// The bin of bitsandbytes' CPU LUT for x in a block with reciprocal absmax inv (§2.5.3): one fused multiply-add,
// truncation, NaN → bin 0.
static inline uint bnb_lut_index(float x, float inv) {
    float v = x * inv;
    if (v > 1.0f) v = 1.0f;
    else if (v < -1.0f) v = -1.0f;
    const float t = (v + 1.0f) * 0.5f;
    const float f = fma(t, 65535.0f, 0.5f);
    if (isnan(f)) return 0u;
    return uint(int(f)) & 0xFFFFu;
}

// Scale of block b: plain float32 absmax, or nested 8-bit codes (§2.7; two roundings, no FMA).
static inline float bnb_block_scale(device const uchar* scales, device const float* nested_absmax,
                                    device const float* nested_code, constant bnb_mtl_scale_params& p, ulong b) {
    if (p.nested == 0) return ((device const float*)scales)[b];
    const float v = nested_code[scales[b]] * nested_absmax[b / p.nested_blocksize];
    return v + p.nested_offset;
}

// Nibble of element e of a standard packed 4-bit array: element 2i in the high nibble of byte i.
static inline uint bnb_nibble(device const uchar* packed, ulong e) {
    const uint byte = packed[e >> 1];
    return (e & 1ul) ? (byte & 0x0Fu) : (byte >> 4);
}

// ─── threadgroup reductions (every thread of the group must call them) ─────────────────────────────────────────

static inline float bnb_group_max(threadgroup float* scratch, float v, uint tid, uint nthreads) {
    scratch[tid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint half_count = nthreads / 2; half_count > 0; half_count /= 2) {
        if (tid < half_count && scratch[tid + half_count] > scratch[tid]) scratch[tid] = scratch[tid + half_count];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const float result = scratch[0];
    threadgroup_barrier(mem_flags::mem_threadgroup); // scratch is reused by the next call
    return result;
}

static inline float bnb_group_sum(threadgroup float* scratch, float v, uint tid, uint nthreads) {
    scratch[tid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint half_count = nthreads / 2; half_count > 0; half_count /= 2) {
        if (tid < half_count) scratch[tid] = scratch[tid] + scratch[tid + half_count];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const float result = scratch[0];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return result;
}

// max |x| over block elements [start, start + len); NaN is ignored (it never compares greater), as the reference.
static inline float bnb_block_absmax(device const uchar* A, int dtype, ulong start, ulong len,
                                     threadgroup float* scratch, uint tid, uint nthreads) {
    float a = 0.0f;
    for (ulong i = tid; i < len; i += nthreads) {
        const float m = fabs(bnb_load(A, dtype, start + i));
        if (m > a) a = m;
    }
    return bnb_group_max(scratch, a, tid, nthreads);
}

// f32(1e-38): the absmax clamp of bitsandbytes' default backend (§2.5.2), built from its bits (a subnormal).
static inline float bnb_absmax_clamp() { return as_type<float>(BNB_MTL_ABSMAX_CLAMP_BITS); }

// The divisor of a "nearest"-rounding block (§2.5.2): max(a, 1e-38), chosen by comparison, not by arithmetic.
static inline float bnb_clamped_absmax(float a) { return (a == 0.0f || a < bnb_absmax_clamp()) ? bnb_absmax_clamp() : a; }

// Scaled value: full blocks multiply by inv = f32(1 / clamped), the short tail block divides by clamped; then clamp
// to [-1, 1]. An all-zero block returns x itself (±0, or NaN under the propagate policy), which is what the scaling
// gives on IEEE hardware; it avoids 0 * f32(1 / 1e-38) on GPUs that flush the subnormal 1e-38 to zero.
static inline float bnb_scaled(float x, float a, float clamped, float inv, bool short_tail) {
    if (a == 0.0f) return x;
    float s = short_tail ? precise::divide(x, clamped) : x * inv;
    if (s > 1.0f) s = 1.0f;
    else if (s < -1.0f) s = -1.0f;
    return s;
}

// Stores a block's absmax: the unclamped max, but a short tail block stores the clamped value (bits of 1e-38 when
// the clamp applies, so no subnormal passes through arithmetic).
static inline void bnb_store_absmax(device float* out_absmax, ulong b, float a, bool short_tail) {
    if (short_tail && (a == 0.0f || a < bnb_absmax_clamp())) ((device uint*)out_absmax)[b] = BNB_MTL_ABSMAX_CLAMP_BITS;
    else out_absmax[b] = a;
}

// Elements of block b: blocksize, or fewer for the last block.
static inline ulong bnb_block_len(constant bnb_mtl_quant_params& p, ulong start) {
    return p.n - start < p.blocksize ? p.n - start : p.blocksize;
}

// ─── kernels ──────────────────────────────────────────────────────────────────────────────────────────────────

// 8-bit blockwise quantization. mid: the 255 midpoints of the ascending code; lut: 65 536 bins (LUT rounding only).
kernel void bnb_quantize_blockwise(device const uchar* A [[buffer(0)]],
                                   device const float* mid [[buffer(1)]],
                                   device const uchar* lut [[buffer(2)]],
                                   device uchar* out_codes [[buffer(3)]],
                                   device float* out_absmax [[buffer(4)]],
                                   constant bnb_mtl_quant_params& p [[buffer(5)]],
                                   threadgroup float* scratch [[threadgroup(0)]],
                                   uint tid [[thread_index_in_threadgroup]],
                                   uint nthreads [[threads_per_threadgroup]],
                                   uint group [[threadgroup_position_in_grid]],
                                   uint ngroups [[threadgroups_per_grid]]) {
    for (ulong b = group; b < p.blocks; b += ngroups) {
        const ulong start = b * p.blocksize;
        const ulong len = bnb_block_len(p, start);
        const float a = bnb_block_absmax(A, p.dtype, start, len, scratch, tid, nthreads);
        if (p.rounding == BNB_MTL_ROUND_LUT) {
            // bitsandbytes' CPU library: absmax stored as is; an all-zero block gets code 0 (§2.5.3)
            if (tid == 0) out_absmax[b] = a;
            const float inv = precise::divide(1.0f, a); // a = +inf → 0, as on the CPU
            for (ulong i = tid; i < len; i += nthreads)
                out_codes[start + i] = a == 0.0f ? uchar(0) : lut[bnb_lut_index(bnb_load(A, p.dtype, start + i), inv)];
        } else {
            const bool short_tail = len < p.blocksize;
            const float clamped = bnb_clamped_absmax(a);
            const float inv = precise::divide(1.0f, clamped);
            if (tid == 0) bnb_store_absmax(out_absmax, b, a, short_tail);
            for (ulong i = tid; i < len; i += nthreads) {
                const float s = bnb_scaled(bnb_load(A, p.dtype, start + i), a, clamped, inv, short_tail);
                out_codes[start + i] = uchar(bnb_count_below(mid, 255, s));
            }
        }
    }
}

// NF4/FP4 quantization. bounds: 15 midpoints of the ascending-sorted table; order[j]: nibble of the j-th smallest.
// Packing: byte i = (code of element 2i) << 4 | (code of element 2i+1); blocks hold an even count (blocksize >= 32),
// so a byte never straddles two blocks; an odd n pads the last low nibble with pad_code (the code of 0.0).
kernel void bnb_quantize_4bit(device const uchar* A [[buffer(0)]],
                              device const float* bounds [[buffer(1)]],
                              device const uchar* order [[buffer(2)]],
                              device uchar* out_packed [[buffer(3)]],
                              device float* out_absmax [[buffer(4)]],
                              constant bnb_mtl_quant_params& p [[buffer(5)]],
                              threadgroup float* scratch [[threadgroup(0)]],
                              uint tid [[thread_index_in_threadgroup]],
                              uint nthreads [[threads_per_threadgroup]],
                              uint group [[threadgroup_position_in_grid]],
                              uint ngroups [[threadgroups_per_grid]]) {
    for (ulong b = group; b < p.blocks; b += ngroups) {
        const ulong start = b * p.blocksize;
        const ulong len = bnb_block_len(p, start);
        const float a = bnb_block_absmax(A, p.dtype, start, len, scratch, tid, nthreads);
        const bool short_tail = len < p.blocksize;
        const float clamped = bnb_clamped_absmax(a);
        const float inv = precise::divide(1.0f, clamped);
        if (tid == 0) bnb_store_absmax(out_absmax, b, a, short_tail);
        for (ulong j = tid; j < (len + 1) / 2; j += nthreads) {
            const float s0 = bnb_scaled(bnb_load(A, p.dtype, start + 2 * j), a, clamped, inv, short_tail);
            const uint hi = isnan(s0) ? 0u : uint(order[bnb_count_below(bounds, 15, s0)]);
            uint lo = uint(p.pad_code);
            if (2 * j + 1 < len) {
                const float s1 = bnb_scaled(bnb_load(A, p.dtype, start + 2 * j + 1), a, clamped, inv, short_tail);
                lo = isnan(s1) ? 0u : uint(order[bnb_count_below(bounds, 15, s1)]);
            }
            out_packed[start / 2 + j] = uchar((hi << 4) | lo);
        }
    }
}

// out[i] = T(f32(code[codes[i]] * scale(i / blocksize))).
kernel void bnb_dequantize_blockwise(device const uchar* codes [[buffer(0)]],
                                     device const float* code [[buffer(1)]],
                                     device const uchar* scales [[buffer(2)]],
                                     device const float* nested_absmax [[buffer(3)]],
                                     device const float* nested_code [[buffer(4)]],
                                     device uchar* out [[buffer(5)]],
                                     constant bnb_mtl_dequant_params& p [[buffer(6)]],
                                     uint gid [[thread_position_in_grid]],
                                     uint nthreads [[threads_per_grid]]) {
    for (ulong i = gid; i < p.n; i += nthreads) {
        const float v = code[codes[i]] * bnb_block_scale(scales, nested_absmax, nested_code, p.scales, i / p.blocksize);
        bnb_store(out, p.out_dtype, i, v);
    }
}

// out[i] = T(f32(table[nibble i] * scale(i / blocksize))), flat block indexing for every shape.
kernel void bnb_dequantize_4bit(device const uchar* packed [[buffer(0)]],
                                device const float* table [[buffer(1)]],
                                device const uchar* scales [[buffer(2)]],
                                device const float* nested_absmax [[buffer(3)]],
                                device const float* nested_code [[buffer(4)]],
                                device uchar* out [[buffer(5)]],
                                constant bnb_mtl_dequant_params& p [[buffer(6)]],
                                uint gid [[thread_position_in_grid]],
                                uint nthreads [[threads_per_grid]]) {
    for (ulong i = gid; i < p.n; i += nthreads) {
        const float v = table[bnb_nibble(packed, i)] * bnb_block_scale(scales, nested_absmax, nested_code, p.scales, i / p.blocksize);
        bnb_store(out, p.out_dtype, i, v);
    }
}

// out[m, n] = T(f32(sum_k f32(A[m, k] * w[n, k]) + bias[n])), w = f32(table[nibble] * scale), float32 accumulation.
// Threadgroup t computes output t = m * N + n; its threads take k = tid, tid + nthreads, ... and the partial sums
// meet in a tree, so the summation order (not the terms) differs from the C reference: agreement within NMSE.
kernel void bnb_gemv_4bit(device const uchar* A [[buffer(0)]],
                          device const uchar* W [[buffer(1)]],
                          device const uchar* scales [[buffer(2)]],
                          device const float* nested_absmax [[buffer(3)]],
                          device const float* nested_code [[buffer(4)]],
                          device const float* table [[buffer(5)]],
                          device const uchar* bias [[buffer(6)]],
                          device uchar* out [[buffer(7)]],
                          constant bnb_mtl_gemv_params& p [[buffer(8)]],
                          threadgroup float* scratch [[threadgroup(0)]],
                          uint tid [[thread_index_in_threadgroup]],
                          uint nthreads [[threads_per_threadgroup]],
                          uint group [[threadgroup_position_in_grid]],
                          uint ngroups [[threadgroups_per_grid]]) {
    for (ulong t = group; t < p.M * p.N; t += ngroups) {
        const ulong m = t / p.N, n = t % p.N;
        float acc = 0.0f;
        for (ulong k = tid; k < p.K; k += nthreads) {
            const ulong e = n * p.K + k;
            const float w = table[bnb_nibble(W, e)] * bnb_block_scale(scales, nested_absmax, nested_code, p.scales, e / p.blocksize);
            const float prod = bnb_load(A, p.a_dtype, m * p.a_row_stride + k) * w;
            acc = acc + prod;
        }
        acc = bnb_group_sum(scratch, acc, tid, nthreads);
        if (tid == 0) {
            const float v = p.bias_dtype == BNB_MTL_NO_BIAS ? acc : acc + bnb_load(bias, p.bias_dtype, n);
            bnb_store(out, p.out_dtype, m * p.out_row_stride + n, v);
        }
    }
}
