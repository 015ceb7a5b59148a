/*
 * bnb_xpu.cl — the OpenCL C kernels of bnb_xpu (OpenCL C 1.2 + optional extensions).
 *
 * Embedded into the library at build time (CMake turns this file into a string) and built at first use per
 * (cl_context, cl_device_id) by xpu_runtime.cpp; `ocloc` compiles every variant for Intel targets in CI.
 *
 * Variants (build options chosen from what the device reports; each has a plain fallback):
 *   BNB_XPU_SUBGROUPS  cl_intel_subgroups: bnb_gemv4_sg reduces a row of K across a 16-lane sub-group
 *   BNB_XPU_DOT8       cl_khr_integer_dot_product (4x8-bit packed; built as OpenCL C 2.0, which Intel's compiler
 *                      needs for it): bnb_int8_matmul_dot uses dot_acc_sat on char4
 *   BNB_XPU_FP16       cl_khr_fp16: f16 activations are read as half vectors (exact: every half is a float)
 * Everything else is plain OpenCL C 1.2 and runs on every device (PoCL's CPU device in CI).
 *
 * Numerics (spec/bnb-numerics.md §2) are the reference's (native/common/ref), operation for operation: no
 * contraction into FMA (pragma below; `fma` is written where the reference has one), correctly rounded division
 * (-cl-fp32-correctly-rounded-divide-sqrt), float32 accumulation in the reference's order except where a kernel
 * comment says otherwise (reductions within the documented NMSE).
 */
#pragma OPENCL FP_CONTRACT OFF
#ifdef BNB_XPU_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif

#define BNB_DT_F32 0
#define BNB_DT_F16 1
#define BNB_DT_BF16 2

/* ─── element conversions (bit-identical to native/common/numbers.c) ───────────────────────────────────── */

float bnb_f16_bits_to_f32(ushort h) {
    const uint sign = (uint)(h & 0x8000u) << 16;
    const uint exponent = (h >> 10) & 0x1Fu;
    const uint mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return as_float(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0u) return as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0u) return as_float(sign);
    const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
}

ushort bnb_f32_to_f16_bits(float f) {
    const uint u = as_uint(f);
    const ushort sign = (ushort)((u >> 16) & 0x8000u);
    const uint abs_bits = u & 0x7FFFFFFFu;
    if (abs_bits > 0x7F800000u) return (ushort)(sign | 0x7E00u | ((abs_bits >> 13) & 0x3FFu));
    if (abs_bits >= 0x477FF000u) return (ushort)(sign | 0x7C00u);
    if (abs_bits < 0x38800000u) {
        const float magnitude = as_float(abs_bits) * 16777216.0f;
        return (ushort)(sign | (ushort)rint(magnitude));
    }
    const uint rebased = abs_bits - (112u << 23);
    const uint rounded = rebased + 0x0FFFu + ((rebased >> 13) & 1u);
    return (ushort)(sign | (ushort)(rounded >> 13));
}

ushort bnb_f32_to_bf16_bits(float f) {
    const uint u = as_uint(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (ushort)((u >> 16) | 0x0040u);
    return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* Element i of a f32/f16/bf16 array. */
float bnb_load(const global uchar* p, int dtype, long i) {
    if (dtype == BNB_DT_F16) {
#ifdef BNB_XPU_FP16
        return (float)((const global half*)p)[i];
#else
        return bnb_f16_bits_to_f32(((const global ushort*)p)[i]);
#endif
    }
    if (dtype == BNB_DT_BF16) return as_float((uint)((const global ushort*)p)[i] << 16);
    return ((const global float*)p)[i];
}

void bnb_store(global uchar* p, int dtype, long i, float v) {
    if (dtype == BNB_DT_F16) ((global ushort*)p)[i] = bnb_f32_to_f16_bits(v);
    else if (dtype == BNB_DT_BF16) ((global ushort*)p)[i] = bnb_f32_to_bf16_bits(v);
    else ((global float*)p)[i] = v;
}

/* ─── block scales: plain float32 or nested (double quantization, spec §2.7) ────────────────────────────── */

float bnb_scale_at(int nested, const global float* absmax, const global uchar* codes, const global float* nested_absmax,
                   const global float* nested_code, long nested_blocksize, float nested_offset, long b) {
    if (!nested) return absmax[b];
    const float v = nested_code[codes[b]] * nested_absmax[b / nested_blocksize];
    return v + nested_offset;
}

#define BNB_SCALE_PARAMS                                                                                            \
    int nested, const global float *absmax, const global uchar *absmax_codes, const global float *nested_absmax,    \
        const global float *nested_code, long nested_blocksize, float nested_offset
#define BNB_SCALE_ARGS nested, absmax, absmax_codes, nested_absmax, nested_code, nested_blocksize, nested_offset

/* ─── block absmax (8-bit and 4-bit quantizers) ─────────────────────────────────────────────────────────── */

/* One work-item per block: max |x| ignoring NaN (a -0.0 never replaces the initial +0.0), then what the block
 * stores (spec §2.5.2/§2.5.3): mode 0 (nearest, 4-bit): full block a, short tail max(a, 1e-38); mode 1 (LUT): a. */
kernel void bnb_block_absmax(const global uchar* A, int dtype, long n, long blocksize, int mode,
                             global float* out_absmax) {
    const long b = get_global_id(0);
    const long start = b * blocksize;
    if (start >= n) return;
    const long len = min(blocksize, n - start);
    float a = 0.0f;
    for (long i = 0; i < len; ++i) {
        const float x = bnb_load(A, dtype, start + i);
        const float m = x < 0.0f ? -x : x;
        if (m > a) a = m;
    }
    out_absmax[b] = (mode == 0 && len < blocksize) ? fmax(a, 1e-38f) : a;
}

/* Scaled value of x in its block for the nearest-code quantizers: full blocks multiply by f32(1 / max(a, 1e-38)),
 * the short tail divides by its stored (already clamped) absmax; then clamp to [-1, 1] (NaN stays NaN). */
float bnb_scaled(float x, float stored, int short_tail) {
    float s;
    if (short_tail) {
        s = x / stored;
    } else {
        const float inv = 1.0f / fmax(stored, 1e-38f);
        s = x * inv;
    }
    if (s > 1.0f) s = 1.0f;
    else if (s < -1.0f) s = -1.0f;
    return s;
}

/* ─── 8-bit blockwise ───────────────────────────────────────────────────────────────────────────────────── */

/* Number of mid[j] strictly below s (255 ascending midpoints): the nearest code, ties to the lower index; NaN → 0. */
uint bnb_count_below_255(const global float* mid, float s) {
    uint lo = 0, hi = 255;
    while (lo < hi) {
        const uint m = (lo + hi) >> 1;
        if (mid[m] < s) lo = m + 1;
        else hi = m;
    }
    return lo;
}

/* LUT bin of x with reciprocal absmax inv (spec §2.5.3; bnb_ref_lut_index). */
uint bnb_lut_index(float x, float inv) {
    float v = x * inv;
    if (v > 1.0f) v = 1.0f;
    else if (v < -1.0f) v = -1.0f;
    const float t = (v + 1.0f) * 0.5f;
    const float f = fma(t, 65535.0f, 0.5f);
    if (isnan(f)) return 0u;
    return (uint)(int)f & 0xFFFFu;
}

/* One work-item per element, after bnb_block_absmax. mode 0: nearest code against `mid`; mode 1: `lut`. */
kernel void bnb_quantize8_encode(const global uchar* A, int dtype, long n, long blocksize, int mode,
                                 const global float* absmax, const global float* mid, const global uchar* lut,
                                 global uchar* out_codes) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const long b = i / blocksize;
    const float x = bnb_load(A, dtype, i);
    const float a = absmax[b];
    if (mode == 1) {
        if (a == 0.0f) {
            out_codes[i] = 0; /* bitsandbytes writes code 0 for an all-zero block */
            return;
        }
        out_codes[i] = lut[bnb_lut_index(x, 1.0f / a)];
        return;
    }
    const int short_tail = (b + 1) * blocksize > n;
    out_codes[i] = (uchar)bnb_count_below_255(mid, bnb_scaled(x, a, short_tail));
}

kernel void bnb_dequantize8(const global uchar* codes, const global float* code, BNB_SCALE_PARAMS, long n,
                            long blocksize, global uchar* out, int out_dtype) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const float v = code[codes[i]] * bnb_scale_at(BNB_SCALE_ARGS, i / blocksize);
    bnb_store(out, out_dtype, i, v);
}

/* ─── 4-bit NF4/FP4 ─────────────────────────────────────────────────────────────────────────────────────── */

/* Nibble of a scaled s: count of the 15 sorted-table midpoints below s, mapped back through the stable order. */
uchar bnb_4bit_code(float16 bounds, uchar16 order, float s) {
    if (isnan(s)) return 0;
    float bnd[16];
    uchar ord[16];
    vstore16(bounds, 0, bnd);
    vstore16(order, 0, ord);
    uint c = 0;
    for (int j = 0; j < 15; ++j) c += bnd[j] < s ? 1u : 0u;
    return ord[c];
}

/* One work-item per output byte: elements 2i (high nibble) and 2i+1 (low nibble; `pad` past an odd n).
 *   byte i:  bit 7 6 5 4 | 3 2 1 0
 *            element 2i  | element 2i+1
 */
kernel void bnb_quantize4_encode(const global uchar* A, int dtype, long n, long blocksize, const global float* absmax,
                                 float16 bounds, uchar16 order, uchar pad, global uchar* out_packed) {
    const long byte = get_global_id(0);
    const long e = byte * 2;
    if (e >= n) return;
    const long b = e / blocksize; /* blocksize is even: both elements share the block */
    const int short_tail = (b + 1) * blocksize > n;
    const float a = absmax[b];
    const uchar hi = bnb_4bit_code(bounds, order, bnb_scaled(bnb_load(A, dtype, e), a, short_tail));
    const uchar lo = e + 1 < n ? bnb_4bit_code(bounds, order, bnb_scaled(bnb_load(A, dtype, e + 1), a, short_tail))
                               : pad;
    out_packed[byte] = (uchar)((hi << 4) | lo);
}

float bnb_table16(float16 table, uint nibble) {
    float t[16];
    vstore16(table, 0, t);
    return t[nibble];
}

kernel void bnb_dequantize4(const global uchar* packed, float16 table, BNB_SCALE_PARAMS, long n, long blocksize,
                            global uchar* out, int out_dtype) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const uchar byte = packed[i >> 1];
    const uint nibble = (i & 1) ? (byte & 0x0Fu) : (uint)(byte >> 4);
    const float v = bnb_table16(table, nibble) * bnb_scale_at(BNB_SCALE_ARGS, i / blocksize);
    bnb_store(out, out_dtype, i, v);
}

/* ─── 4-bit matmul: out[m, n] = A[m, :] · dequant(W)[n, :] (+ bias[n]) ─────────────────────────────────── */

/* layout 0 = BNB_WEIGHT_STANDARD (element n*K + k, even element high), 1 = BNB_WEIGHT_BNB_CPU ([N/32][K/2][32]:
 * byte (nb*(K/2) + k/2)*32 + 2*(n%16) + (k&1), rows n%32 >= 16 in the high nibble). */
uint bnb_weight_nibble(const global uchar* W, int layout, long K, long n, long k) {
    if (layout == 1) {
        const uchar byte = W[((n / 32) * (K / 2) + k / 2) * 32 + 2 * (n % 16) + (k & 1)];
        return (n % 32) >= 16 ? (uint)(byte >> 4) : (uint)(byte & 0x0F);
    }
    const long e = n * K + k;
    const uchar byte = W[e >> 1];
    return (e & 1) ? (uint)(byte & 0x0F) : (uint)(byte >> 4);
}

/* One work-item per output (n = dim 0, m = dim 1): the reference's float32 sum over k in order (bit-identical). */
kernel void bnb_gemm4(const global uchar* A, int a_dtype, long a_stride, const global uchar* W, int layout,
                      float16 table, BNB_SCALE_PARAMS, long blocksize, const global uchar* bias, int bias_dtype,
                      int has_bias, global uchar* out, int out_dtype, long out_stride, long M, long N, long K) {
    const long n = get_global_id(0);
    const long m = get_global_id(1);
    if (n >= N || m >= M) return;
    float t[16];
    vstore16(table, 0, t);
    float acc = 0.0f;
    for (long k = 0; k < K; ++k) {
        const float w = t[bnb_weight_nibble(W, layout, K, n, k)] * bnb_scale_at(BNB_SCALE_ARGS, (n * K + k) / blocksize);
        const float product = bnb_load(A, a_dtype, m * a_stride + k) * w;
        acc += product;
    }
    if (has_bias) acc += bnb_load(bias, bias_dtype, n);
    bnb_store(out, out_dtype, m * out_stride + n, acc);
}

#ifdef BNB_XPU_SUBGROUPS
#pragma OPENCL EXTENSION cl_intel_subgroups : enable
/* One sub-group of 16 lanes per output (the host launches work-groups of 16): lanes take k = lane, lane + 16, …
 * and sub_group_reduce_add sums their partial sums. The order differs from the reference (within the gemm NMSE
 * bound of the conformance suite). */
__attribute__((intel_reqd_sub_group_size(16))) kernel void bnb_gemv4_sg(const global uchar* A, int a_dtype, long a_stride, const global uchar* W, int layout,
                         float16 table, BNB_SCALE_PARAMS, long blocksize, const global uchar* bias, int bias_dtype,
                         int has_bias, global uchar* out, int out_dtype, long out_stride, long M, long N, long K) {
    const long n = get_group_id(0);
    const long m = get_group_id(1);
    if (n >= N || m >= M) return;
    const uint lane = get_sub_group_local_id();
    const uint width = get_sub_group_size();
    float t[16];
    vstore16(table, 0, t);
    float acc = 0.0f;
    for (long k = lane; k < K; k += width) {
        const float w = t[bnb_weight_nibble(W, layout, K, n, k)] * bnb_scale_at(BNB_SCALE_ARGS, (n * K + k) / blocksize);
        const float product = bnb_load(A, a_dtype, m * a_stride + k) * w;
        acc += product;
    }
    acc = sub_group_reduce_add(acc);
    if (lane == 0) {
        if (has_bias) acc += bnb_load(bias, bias_dtype, n);
        bnb_store(out, out_dtype, m * out_stride + n, acc);
    }
}
#endif

/* ─── LLM.int8() ────────────────────────────────────────────────────────────────────────────────────────── */

/* out[m, n] = sum_k A[m, k] * B[n, k], exact: the host rejected inputs whose true value leaves int32, and int32
 * wrap-around of partial sums is harmless modulo 2^32. */
kernel void bnb_int8_matmul(const global char* A, long a_stride, const global char* B, long b_stride,
                            global int* out, long out_stride, long M, long N, long K) {
    const long n = get_global_id(0);
    const long m = get_global_id(1);
    if (n >= N || m >= M) return;
    const global char* a = A + m * a_stride;
    const global char* b = B + n * b_stride;
    uint acc = 0;
    for (long k = 0; k < K; ++k) acc += (uint)((int)a[k] * (int)b[k]);
    out[m * out_stride + n] = (int)acc;
}

#ifdef BNB_XPU_DOT8
/* The same with 4x8-bit dot products (cl_khr_integer_dot_product); the tail runs scalar. No saturation: partial
 * sums wrap like the plain kernel's. */
kernel void bnb_int8_matmul_dot(const global char* A, long a_stride, const global char* B, long b_stride,
                                global int* out, long out_stride, long M, long N, long K) {
    const long n = get_global_id(0);
    const long m = get_global_id(1);
    if (n >= N || m >= M) return;
    const global char* a = A + m * a_stride;
    const global char* b = B + n * b_stride;
    uint acc = 0;
    long k = 0;
    for (; k + 4 <= K; k += 4) {
        const char4 va = (char4)(a[k], a[k + 1], a[k + 2], a[k + 3]);
        const char4 vb = (char4)(b[k], b[k + 1], b[k + 2], b[k + 3]);
        acc += (uint)dot_acc_sat(va, vb, 0); /* accumulating into 0 never saturates: |sum| <= 4·128² */
    }
    for (; k < K; ++k) acc += (uint)((int)a[k] * (int)b[k]);
    out[m * out_stride + n] = (int)acc;
}
#endif

/* out[r, c] = f32(f32(CA[r, c] * row_stats[r]) * f32(1/127)). */
kernel void bnb_int8_vectorwise_dequant(const global char* CA, long ca_stride, const global float* row_stats,
                                        global float* out, long out_stride, long rows, long cols, float inv127) {
    const long c = get_global_id(0);
    const long r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    const float scaled = (float)CA[r * ca_stride + c] * row_stats[r];
    out[r * out_stride + c] = scaled * inv127;
}

/* out = T(fma(f32(f32(C * row) * col), 1/127², bias)) or T(f32(f32(C * row) * col) * 1/127²) (spec §2.8.4). */
kernel void bnb_int8_mm_dequant(const global int* C, long c_stride, const global float* row_stats,
                                const global float* col_stats, const global uchar* bias, int bias_dtype, int has_bias,
                                global uchar* out, int out_dtype, long out_stride, long M, long N, float inv127sq) {
    const long n = get_global_id(0);
    const long m = get_global_id(1);
    if (n >= N || m >= M) return;
    const float scaled_row = (float)C[m * c_stride + n] * row_stats[m];
    const float scaled = scaled_row * col_stats[n];
    const float v = has_bias ? fma(scaled, inv127sq, bnb_load(bias, bias_dtype, n)) : scaled * inv127sq;
    bnb_store(out, out_dtype, m * out_stride + n, v);
}

/* ─── optimizers (spec §3.3/§3.4; the formulas of native/common/ref/optim.c, operation for operation) ────── */

#define BNB_OPT_ADAM 0
#define BNB_OPT_MOMENTUM 1
#define BNB_OPT_RMSPROP 2
#define BNB_OPT_ADAGRAD 3
#define BNB_OPT_LION 4
#define BNB_OPT_LAMB 5
#define BNB_OPT_LARS 6
#define BNB_OPT_ADEMAMIX 7

/* The float32 hyper-parameters the host derived (bnb_optim_hparams), packed in a float16 kernel argument. */
typedef struct {
    float beta1, beta2, beta3, alpha, eps, wd, gscale, omb1, omb2, omb3, c1, c2, eps_c2, neg_lr_over_c1, neg_lr, decay;
    int kind, step;
} bnb_hp;

bnb_hp bnb_hp_unpack(float16 v, int kind, int step) {
    bnb_hp h;
    h.beta1 = v.s0; h.beta2 = v.s1; h.beta3 = v.s2; h.alpha = v.s3;
    h.eps = v.s4; h.wd = v.s5; h.gscale = v.s6; h.omb1 = v.s7;
    h.omb2 = v.s8; h.omb3 = v.s9; h.c1 = v.sa; h.c2 = v.sb;
    h.eps_c2 = v.sc; h.neg_lr_over_c1 = v.sd; h.neg_lr = v.se; h.decay = v.sf;
    h.kind = kind;
    h.step = step;
    return h;
}

/* torch addcmul self + value·a·b, contracted into one fma as torch's compiled CPU kernel does. */
float bnb_addcmul(float self, float a, float b, float value) {
    const float va = value * a;
    return fma(va, b, self);
}
float bnb_sign(float v) { return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v; }
float bnb_adam_m(const bnb_hp* h, float s1, float g) {
    const float kept = s1 * h->beta1;
    return fma(g, h->omb1, kept);
}
float bnb_adam_v(const bnb_hp* h, float s2, float g) {
    const float kept = s2 * h->beta2;
    return bnb_addcmul(kept, g, g, h->omb2);
}
float bnb_ademamix(const bnb_hp* h, float g, float* m1, float* m2, float* nu) {
    const float k1 = *m1 * h->beta1, k3 = *m2 * h->beta3, k2 = *nu * h->beta2;
    *m1 = fma(g, h->omb1, k1);
    *m2 = fma(g, h->omb3, k3);
    *nu = bnb_addcmul(k2, g, g, h->omb2);
    const float corrected = *m1 / h->c1;
    const float slow = h->alpha * *m2;
    const float mixed = corrected + slow;
    const float root = sqrt(*nu) / h->c2;
    const float adaptive = root + h->eps;
    return mixed / adaptive;
}
float bnb_decayed_grad(const bnb_hp* h, float g, float p) { return fma(p, h->wd, g); }
float bnb_momentum(const bnb_hp* h, float s1, float gw) {
    if (h->step == 1) return gw;
    const float kept = s1 * h->beta1;
    return kept + gw;
}
float bnb_rmsprop(const bnb_hp* h, float s1, float gw) {
    const float kept = s1 * h->beta1;
    return bnb_addcmul(kept, gw, gw, h->omb1);
}
float bnb_adagrad(float s1, float gw) { return bnb_addcmul(s1, gw, gw, 1.0f); }
float bnb_scaled_grad(const bnb_hp* h, float gw, float s1) {
    const float denom = sqrt(s1) + h->eps;
    return gw / denom;
}
float bnb_decoupled(const bnb_hp* h, float p) { return h->wd > 0.0f ? p * h->decay : p; }

/* One 32-bit step per element, for every kind without a trust ratio (the host runs the trust-ratio case, which
 * needs two passes and norms). apply = f32(step_size) for adam/lamb, f32(-lr) for momentum/lars/rmsprop: the
 * reference's second pass with a scale of 1, fused with the first (each element depends only on itself). */
kernel void bnb_optim32(global uchar* p, const global uchar* g, int dtype, global float* state1, global float* state2,
                        long n, float16 hpv, int kind, int step, float apply) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const bnb_hp h = bnb_hp_unpack(hpv, kind, step);
    const float gr = bnb_load(g, dtype, i) * h.gscale;
    float pv = bnb_load(p, dtype, i);
    const int decay_grad = h.wd > 0.0f;
    switch (kind) {
    case BNB_OPT_ADAM:
    case BNB_OPT_LAMB: {
        const float s1 = bnb_adam_m(&h, state1[i], gr), s2 = bnb_adam_v(&h, state2[i], gr);
        state1[i] = s1;
        state2[i] = s2;
        const float denom = sqrt(s2) + h.eps_c2;
        const float d = s1 / denom;
        pv = fma(d, apply, bnb_decoupled(&h, pv));
        break;
    }
    case BNB_OPT_MOMENTUM:
    case BNB_OPT_LARS: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, pv) : gr;
        const float s1 = bnb_momentum(&h, state1[i], gw);
        state1[i] = s1;
        pv = fma(s1, apply, pv);
        break;
    }
    case BNB_OPT_RMSPROP: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, pv) : gr;
        const float s1 = bnb_rmsprop(&h, state1[i], gw);
        state1[i] = s1;
        pv = fma(bnb_scaled_grad(&h, gw, s1), apply, pv);
        break;
    }
    case BNB_OPT_ADAGRAD: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, pv) : gr;
        const float s1 = bnb_adagrad(state1[i], gw);
        state1[i] = s1;
        pv = fma(bnb_scaled_grad(&h, gw, s1), h.neg_lr, pv);
        break;
    }
    case BNB_OPT_LION: { /* the sign uses the state before its update */
        const float kept = state1[i] * h.beta1;
        const float u = fma(gr, h.omb1, kept);
        pv = fma(bnb_sign(u), h.neg_lr, bnb_decoupled(&h, pv));
        const float kept2 = state1[i] * h.beta2;
        state1[i] = fma(gr, h.omb2, kept2);
        break;
    }
    default: { /* AdEMAMix: state1 is [2, n] (m1 then m2) */
        float m1 = state1[i], m2 = state1[n + i], nu = state2[i];
        const float d = bnb_ademamix(&h, gr, &m1, &m2, &nu);
        state1[i] = m1;
        state1[n + i] = m2;
        state2[i] = nu;
        pv = fma(d, h.neg_lr, bnb_decoupled(&h, pv));
        break;
    }
    }
    bnb_store(p, dtype, i, pv);
}

#define BNB_OPT_BLOCK 256

/* Requantizes one block of `len` <= 256 state values (bnb_ref_requantize_blockwise_f32 for one block; len < 256 is
 * the tail): rounding 0 = nearest against the 255 midpoints, 1 = bitsandbytes' CPU LUT. */
void bnb_requantize_block(const float* x, long len, int rounding, const global float* mid, const global uchar* lut,
                          global uchar* codes, global float* absmax) {
    float a = 0.0f;
    for (long j = 0; j < len; ++j) {
        const float m = x[j] < 0.0f ? -x[j] : x[j];
        if (m > a) a = m;
    }
    if (rounding == 1) {
        *absmax = a;
        if (a == 0.0f) {
            for (long j = 0; j < len; ++j) codes[j] = 0;
            return;
        }
        const float inv = 1.0f / a;
        for (long j = 0; j < len; ++j) codes[j] = lut[bnb_lut_index(x[j], inv)];
        return;
    }
    const int short_tail = len < BNB_OPT_BLOCK;
    const float stored = short_tail ? fmax(a, 1e-38f) : a;
    *absmax = stored;
    for (long j = 0; j < len; ++j) codes[j] = (uchar)bnb_count_below_255(mid, bnb_scaled(x[j], stored, short_tail));
}

/* One 8-bit blockwise step: one work-item per 256-element block (dequantize, update, requantize; blocks are
 * independent). state1 codes are [n] ([2, n] AdEMAMix) with absmax1 [blocks] ([2, blocks]). */
kernel void bnb_optim8(global uchar* p, const global uchar* g, int dtype, global uchar* codes1, global uchar* codes2,
                       global float* absmax1, global float* absmax2, const global float* qmap1,
                       const global float* qmap2, const global float* mid1, const global float* mid2,
                       const global uchar* lut1, const global uchar* lut2, int rounding, long n, long blocks,
                       float16 hpv, int kind, int step) {
    const long b = get_global_id(0);
    if (b >= blocks) return;
    const bnb_hp h = bnb_hp_unpack(hpv, kind, step);
    const long start = b * BNB_OPT_BLOCK;
    const long len = min((long)BNB_OPT_BLOCK, n - start);
    const int two = codes2 != 0;
    const int ademamix = kind == BNB_OPT_ADEMAMIX;
    float s1[BNB_OPT_BLOCK], s2[BNB_OPT_BLOCK], s3[BNB_OPT_BLOCK];
    for (long j = 0; j < len; ++j) {
        s1[j] = qmap1[codes1[start + j]] * absmax1[b];
        if (two) s2[j] = qmap2[codes2[start + j]] * absmax2[b];
        if (ademamix) s3[j] = qmap1[codes1[n + start + j]] * absmax1[blocks + b];
    }
    for (long j = 0; j < len; ++j) {
        const long i = start + j;
        const float gr = bnb_load(g, dtype, i) * h.gscale;
        float pv = bnb_load(p, dtype, i);
        switch (kind) {
        case BNB_OPT_ADAM:
        case BNB_OPT_LAMB: {
            s1[j] = bnb_adam_m(&h, s1[j], gr);
            s2[j] = bnb_adam_v(&h, s2[j], gr);
            const float root = sqrt(s2[j]) / h.c2;
            const float denom = root + h.eps;
            const float numer = h.neg_lr_over_c1 * s1[j];
            pv = bnb_decoupled(&h, pv);
            pv = pv + numer / denom;
            break;
        }
        case BNB_OPT_ADEMAMIX: {
            float m1 = s1[j], m2 = s3[j], nu = s2[j];
            const float d = bnb_ademamix(&h, gr, &m1, &m2, &nu);
            s1[j] = m1;
            s3[j] = m2;
            s2[j] = nu;
            pv = fma(d, h.neg_lr, bnb_decoupled(&h, pv));
            break;
        }
        case BNB_OPT_MOMENTUM:
        case BNB_OPT_LARS: {
            const float gw = bnb_decayed_grad(&h, gr, pv);
            s1[j] = bnb_momentum(&h, s1[j], gw);
            pv = fma(s1[j], h.neg_lr, pv);
            break;
        }
        case BNB_OPT_LION: {
            const float kept = s1[j] * h.beta1;
            const float fresh = gr * h.omb1;
            const float u = kept + fresh;
            pv = fma(bnb_sign(u), h.neg_lr, bnb_decoupled(&h, pv));
            const float kept2 = s1[j] * h.beta2;
            s1[j] = fma(gr, h.omb2, kept2);
            break;
        }
        default: { /* rmsprop, adagrad */
            const float gw = bnb_decayed_grad(&h, gr, pv);
            s1[j] = kind == BNB_OPT_RMSPROP ? bnb_rmsprop(&h, s1[j], gw) : bnb_adagrad(s1[j], gw);
            const float numer = h.neg_lr * gw;
            const float denom = sqrt(s1[j]) + h.eps;
            pv = pv + numer / denom;
            break;
        }
        }
        bnb_store(p, dtype, i, pv);
    }
    bnb_requantize_block(s1, len, rounding, mid1, lut1, codes1 + start, absmax1 + b);
    if (two) bnb_requantize_block(s2, len, rounding, mid2, lut2, codes2 + start, absmax2 + b);
    if (ademamix) bnb_requantize_block(s3, len, rounding, mid1, lut1, codes1 + n + start, absmax1 + blocks + b);
}

/* ─── LLM.int8() quantization (spec §2.8.1/§2.8.2; native/common/ref/int8.c) ────────────────────────────── */

/* round-half-even to int8, saturating; NaN → 0 (bnb_int8_round) */
char bnb_int8_round(float v) {
    if (isnan(v)) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return (char)rint(v);
}

int bnb_is_outlier(float v, float threshold) { return threshold > 0.0f && fabs(v) >= threshold; }

/* max that propagates NaN, as torch.max/amax */
float bnb_max_nan(float m, float v) { return (v > m || isnan(v)) ? v : m; }

/* One work-item per column: flags[c] = 1 when any row has |a| >= threshold, else 0. The flags are written into the
 * outlier-column list itself (i64 [cols]) and compacted in place afterwards, exactly as the reference does, so the
 * list's tail holds the same leftover flags. */
kernel void bnb_int8_outlier_flags(const global uchar* A, int dtype, long a_stride, long rows, long cols,
                                   float threshold, global long* flags) {
    const long c = get_global_id(0);
    if (c >= cols) return;
    long flag = 0;
    for (long r = 0; r < rows; ++r)
        if (bnb_is_outlier(bnb_load(A, dtype, r * a_stride + c), threshold)) flag = 1;
    flags[c] = flag;
}

/* One work-item: compacts the flags into the ascending outlier-column list and writes the count. */
kernel void bnb_int8_outlier_compact(global long* cols_list, long cols, global long* count) {
    if (get_global_id(0) != 0) return;
    long k = 0;
    for (long c = 0; c < cols; ++c)
        if (cols_list[c]) cols_list[k++] = c;
    *count = k;
}

/* One work-item per row: row_stats[r] = max |a| over the row's non-outlier elements (NaN propagates). */
kernel void bnb_int8_row_stats(const global uchar* A, int dtype, long a_stride, long rows, long cols, float threshold,
                               global float* row_stats) {
    const long r = get_global_id(0);
    if (r >= rows) return;
    float m = 0.0f;
    for (long c = 0; c < cols; ++c) {
        const float v = bnb_load(A, dtype, r * a_stride + c);
        if (!bnb_is_outlier(v, threshold)) m = bnb_max_nan(m, fabs(v));
    }
    row_stats[r] = m;
}

/* One work-item per element: CA[r, c] = round(a · f32(127 / row_max)); 0 in outlier columns (flags, before the
 * compaction) and in zero rows. */
kernel void bnb_int8_quant_rows(const global uchar* A, int dtype, long a_stride, const global float* row_stats,
                                const global long* flags, int has_flags, global char* CA, long ca_stride, long rows,
                                long cols) {
    const long c = get_global_id(0);
    const long r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    const float row_max = row_stats[r];
    if ((has_flags && flags[c]) || row_max == 0.0f) {
        CA[r * ca_stride + c] = 0;
        return;
    }
    const float scale = 127.0f / row_max;
    const float scaled = bnb_load(A, dtype, r * a_stride + c) * scale;
    CA[r * ca_stride + c] = bnb_int8_round(scaled);
}

/* One work-item per column: col_stats[c] = max |a| over the column's non-outlier elements (NaN propagates). */
kernel void bnb_int8_col_stats(const global uchar* A, int dtype, long a_stride, long rows, long cols, float threshold,
                               global float* col_stats) {
    const long c = get_global_id(0);
    if (c >= cols) return;
    float m = 0.0f;
    for (long r = 0; r < rows; ++r) {
        const float v = bnb_load(A, dtype, r * a_stride + c);
        if (!bnb_is_outlier(v, threshold)) m = bnb_max_nan(m, fabs(v));
    }
    col_stats[c] = m;
}

/* a·127 rounded to A's dtype (PyTorch's A.mul(127.0)), as float. */
float bnb_times127_in_dtype(float v, int dtype) {
    const float p = v * 127.0f;
    if (dtype == BNB_DT_F16) return bnb_f16_bits_to_f32(bnb_f32_to_f16_bits(p));
    if (dtype == BNB_DT_BF16) return as_float((uint)bnb_f32_to_bf16_bits(p) << 16);
    return p;
}

/* One work-item per element: CAt[r, c] = round(f(a·127) / col_stats[c]); outlier elements 0 (0/0 → NaN → 0). */
kernel void bnb_int8_quant_cols(const global uchar* A, int dtype, long a_stride, const global float* col_stats,
                                float threshold, global char* CAt, long cat_stride, long rows, long cols) {
    const long c = get_global_id(0);
    const long r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    const float v = bnb_load(A, dtype, r * a_stride + c);
    if (bnb_is_outlier(v, threshold)) {
        CAt[r * cat_stride + c] = 0;
        return;
    }
    const float q = bnb_times127_in_dtype(v, dtype) / col_stats[c];
    CAt[r * cat_stride + c] = bnb_int8_round(q);
}

/* The update direction of one 32-bit element with the NEW states (the reference's update_states), into d[i]; the
 * host sums d² in double in index order (bit-identical to the reference's norm). store != 0 also writes the new
 * states (first pass of a trust-ratio step); store == 0 changes nothing (optimizer_unorm). */
kernel void bnb_optim32_direction(const global uchar* p, const global uchar* g, int dtype, global float* state1,
                                  global float* state2, long n, float16 hpv, int kind, int step, int store,
                                  global float* d_out) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const bnb_hp h = bnb_hp_unpack(hpv, kind, step);
    const float gr = bnb_load(g, dtype, i) * h.gscale;
    const int decay_grad = h.wd > 0.0f;
    float d;
    switch (kind) {
    case BNB_OPT_ADAM:
    case BNB_OPT_LAMB: {
        const float s1 = bnb_adam_m(&h, state1[i], gr), s2 = bnb_adam_v(&h, state2[i], gr);
        const float denom = sqrt(s2) + h.eps_c2;
        d = s1 / denom;
        if (store) {
            state1[i] = s1;
            state2[i] = s2;
        }
        break;
    }
    case BNB_OPT_MOMENTUM:
    case BNB_OPT_LARS: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, bnb_load(p, dtype, i)) : gr;
        d = bnb_momentum(&h, state1[i], gw);
        if (store) state1[i] = d;
        break;
    }
    case BNB_OPT_RMSPROP: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, bnb_load(p, dtype, i)) : gr;
        const float s1 = bnb_rmsprop(&h, state1[i], gw);
        d = bnb_scaled_grad(&h, gw, s1);
        if (store) state1[i] = s1;
        break;
    }
    case BNB_OPT_ADAGRAD: {
        const float gw = decay_grad ? bnb_decayed_grad(&h, gr, bnb_load(p, dtype, i)) : gr;
        d = bnb_scaled_grad(&h, gw, bnb_adagrad(state1[i], gw));
        break;
    }
    case BNB_OPT_LION: {
        const float kept = state1[i] * h.beta1;
        d = bnb_sign(fma(gr, h.omb1, kept));
        break;
    }
    default: {
        float m1 = state1[i], m2 = state1[n + i], nu = state2[i];
        d = bnb_ademamix(&h, gr, &m1, &m2, &nu);
        break;
    }
    }
    d_out[i] = d;
}

/* Second pass of a trust-ratio step (the reference's apply_direction): p += alpha · direction, with the states the
 * first pass wrote. */
kernel void bnb_optim32_apply(global uchar* p, const global uchar* g, int dtype, const global float* state1,
                              const global float* state2, long n, float16 hpv, int kind, int step, float alpha) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const bnb_hp h = bnb_hp_unpack(hpv, kind, step);
    float pv = bnb_load(p, dtype, i);
    float d;
    if (kind == BNB_OPT_ADAM || kind == BNB_OPT_LAMB) {
        const float denom = sqrt(state2[i]) + h.eps_c2;
        d = state1[i] / denom;
        pv = bnb_decoupled(&h, pv);
    } else if (kind == BNB_OPT_RMSPROP) {
        const float gr = bnb_load(g, dtype, i) * h.gscale;
        const float gw = h.wd > 0.0f ? bnb_decayed_grad(&h, gr, pv) : gr;
        d = bnb_scaled_grad(&h, gw, state1[i]);
    } else {
        d = state1[i]; /* momentum, lars */
    }
    bnb_store(p, dtype, i, fma(d, alpha, pv));
}
