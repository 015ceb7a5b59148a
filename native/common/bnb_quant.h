/*
 * bnb_quant.h — scalar reference math and argument validation for the k-bit quantization slots (internal).
 *
 * Three layers, so that SIMD and GPU backends can reuse what fits them:
 *   1. bnb_validate_<slot>   checks every argument of a slot (context, pointers, dtypes, shapes, blocksize, enums,
 *                            capacities, NaN/Inf policy) and resolves them into a small args struct. Nothing is
 *                            written on failure; the thread's message names the op, the argument and its value.
 *   2. kernels               pure functions on already-validated arguments (block quantizers, code search, LUT,
 *                            nibble layouts). They never fail and never allocate.
 *   3. bnb_ref_<slot>        the reference implementations with exactly the ABI slot signatures: validate, then
 *                            compute with the kernels (single thread, no allocation).
 *
 * Numerics follow spec/bnb-numerics.md; section numbers below refer to it. Every formula is float32 with one
 * rounding per operation unless an FMA or double is stated, so the library must be built with
 * -ffp-contract=off (GCC/Clang) to keep the two-rounding formulas (e.g. §2.7 nested absmax) exact.
 */
#ifndef BNB_QUANT_H
#define BNB_QUANT_H

#include "bnb_common.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "bnb reference math needs float arithmetic evaluated in float (FLT_EVAL_METHOD == 0, e.g. SSE2 not x87)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ─── shared kernels ─────────────────────────────────────────────────────────────────────────────────────── */

#define BNB_CODE8_SIZE 256  /* entries of an 8-bit code table                                    */
#define BNB_CODE4_SIZE 16   /* entries of a 4-bit code table                                     */
#define BNB_LUT_SIZE 65536  /* bins of bitsandbytes' CPU quantization LUT (§2.5.3)              */
#define BNB_MAX_BLOCKSIZE 4096

/* Number of bounds[j] strictly below s, for ascending bounds (= torch.bucketize(s, bounds, right=False)): the index
 * of the nearest code with ties going to the lower index (§2.5.2). NaN compares false everywhere and gives 0. */
static inline int32_t bnb_ref_count_below(const float* bounds, int32_t count, float s) {
    int32_t lo = 0, hi = count; /* invariant: bounds[<lo] < s, bounds[>=hi] not < s */
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < s) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* max |x_i| over a block, ignoring NaN (as bitsandbytes' CPU library observes); 0 for an all-NaN block. */
static inline float bnb_ref_block_absmax(const float* x, int64_t len) {
    float a = 0.0f;
    for (int64_t i = 0; i < len; ++i) {
        const float m = x[i] < 0.0f ? -x[i] : x[i];
        if (m > a) a = m;
    }
    return a;
}

/* Midpoints of `count` ascending code values: mid[j] = f32(0.5f * f32(code[j] + code[j+1])), j < count - 1.
 * (Identical to torch's f32((code[:-1] + code[1:]) / 2): halving rounds the same as multiplying by 0.5.) */
void bnb_ref_code_midpoints(const float* code, int32_t count, float* mid);

/* ─── 8-bit blockwise (§2.5) ─────────────────────────────────────────────────────────────────────────────── */

/* BNB_ROUND_BNB_CPU_LUT, one block (any len >= 1): a = max|x| (NaN ignored); a == 0 → codes 0, absmax 0; else
 * absmax a and code = LUT[bnb_ref_lut_index(x, 1/a)], where LUT[i] = bnb_ref_lut_entry(mid, i). */
void bnb_ref_quantize_block_lut(const float* x, int64_t len, const float mid[BNB_CODE8_SIZE - 1], uint8_t* codes,
                                float* absmax);

/* BNB_ROUND_NEAREST, one block: bitsandbytes' default backend (§2.5.2). A full block stores a = max|x| and scales
 * s = x * f32(1 / max(a, 1e-38)); a short tail block (short_tail != 0) stores a' = max(a, 1e-38) and scales
 * s = x / a'. Then s is clamped to [-1, 1] and code = number of midpoints < s (ties → lower index, NaN → 0). */
void bnb_ref_quantize_block_nearest(const float* x, int64_t len, int32_t short_tail,
                                    const float mid[BNB_CODE8_SIZE - 1], uint8_t* codes, float* absmax);

/* The LUT bin of x in a block with reciprocal absmax inv (§2.5.3):
 *   v = clamp(f32(x * inv), -1, 1); t = f32(f32(v + 1) * 0.5f); i = (int32)trunc(fmaf(t, 65535, 0.5)) & 0xFFFF.
 * NaN: the C++ cast (int)NaN yields INT_MIN on x86, so bin 0; emulated explicitly here (no undefined behaviour). */
uint32_t bnb_ref_lut_index(float x, float inv);

/* LUT[i] = number of midpoints < v_i with v_i = f32(f32(f32(i) + f32(i)) / 65535.0f) - 1.0f (§2.5.3). */
uint8_t bnb_ref_lut_entry(const float mid[BNB_CODE8_SIZE - 1], uint32_t i);

/* Fills the whole 64 KiB LUT for an ascending 256-entry code (monotone walk; equals bnb_ref_lut_entry for every i). */
void bnb_ref_build_lut(const float code[BNB_CODE8_SIZE], uint8_t lut[BNB_LUT_SIZE]);

/* Blockwise 8-bit quantization of a float32 vector (used by the 8-bit optimizers for their state):
 *   x [n]; code [256] ascending and finite; blocksize >= 1 (any, 256 for optimizer state); rounding BNB_ROUND_*;
 *   out_codes [n]; out_absmax [ceil(n / blocksize)]. Arguments must be valid; never fails, never allocates. */
void bnb_ref_requantize_blockwise_f32(const float* x, int64_t n, const float* code, int64_t blocksize,
                                      int32_t rounding, uint8_t* out_codes, float* out_absmax);

/* out[i] = f32(code[codes[i]] * absmax[i / blocksize]) for i < n (§2.5.4). blocksize >= 1. Never fails. */
void bnb_ref_dequantize_blockwise_f32(const uint8_t* codes, const float* absmax, int64_t n, const float* code,
                                      int64_t blocksize, float* out);

/* ─── 4-bit NF4/FP4 (§2.6) ───────────────────────────────────────────────────────────────────────────────── */

/* The default-backend code search of a 4-bit table: bucketize against the midpoints of the ascending-sorted table,
 * then map back to the nibble (§2.6.2). For FP4 the stable order is [11,10,13,12,15,14,9,0,8,1,6,7,4,5,2,3]. */
typedef struct bnb_4bit_map {
    const float* table;                /* 16 values indexed by nibble (bnb_table_4bit)          */
    uint8_t order[BNB_CODE4_SIZE];     /* order[j] = nibble of the j-th smallest value (stable) */
    float bounds[BNB_CODE4_SIZE - 1];  /* midpoints of the sorted values                        */
} bnb_4bit_map;

/* quant_type must be BNB_QUANT_FP4 or BNB_QUANT_NF4. */
void bnb_ref_4bit_map_init(int32_t quant_type, bnb_4bit_map* map);

/* Nibble of a scaled value s in [-1, 1]; NaN → nibble 0 (as bitsandbytes' CUDA threshold trees). */
static inline uint8_t bnb_ref_4bit_code(const bnb_4bit_map* map, float s) {
    if (s != s) return 0;
    return map->order[bnb_ref_count_below(map->bounds, BNB_CODE4_SIZE - 1, s)];
}

/* One block → one nibble per element (unpacked, codes[i] in 0..15); scaling as bnb_ref_quantize_block_nearest. */
void bnb_ref_quantize_block_4bit(const float* x, int64_t len, int32_t short_tail, const bnb_4bit_map* map,
                                 uint8_t* codes, float* absmax);

/* ─── packed 4-bit layouts ───────────────────────────────────────────────────────────────────────────────── */

/* BNB_WEIGHT_STANDARD (bitsandbytes): W[N, K] flattened row-major, element e = n*K + k in byte e / 2:
 *
 *     byte e/2:   bit 7 6 5 4 | 3 2 1 0
 *                 element 2i  | element 2i+1       (even element in the HIGH nibble)
 */
static inline uint8_t bnb_nibble_standard(const uint8_t* packed, int64_t e) {
    const uint8_t byte = packed[e >> 1];
    return (e & 1) ? (uint8_t)(byte & 0x0F) : (uint8_t)(byte >> 4);
}

/* BNB_WEIGHT_BNB_CPU (bitsandbytes' _convert_weight_packed_for_cpu, §2.10.4): [N, K/2] bytes, N % 32 == 0, K even,
 * seen as [N/32][K/2][32]. For row block nb, column pair k2, m = 0..15 and e = 0..1:
 *
 *     byte (nb*(K/2) + k2)*32 + 2m + e:   bit 7 6 5 4          | 3 2 1 0
 *                                         w[32nb+16+m, 2k2+e]  | w[32nb+m, 2k2+e]
 */
static inline int64_t bnb_cpu_layout_byte(int64_t K, int64_t n, int64_t k) {
    return ((n / 32) * (K / 2) + k / 2) * 32 + 2 * (n % 16) + (k & 1);
}
static inline uint8_t bnb_nibble_cpu_layout(const uint8_t* packed, int64_t K, int64_t n, int64_t k) {
    const uint8_t byte = packed[bnb_cpu_layout_byte(K, n, k)];
    return (n % 32) >= 16 ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0x0F);
}

/* ─── validation: resolved arguments ─────────────────────────────────────────────────────────────────────── */

/* Checks a code-table argument: f32 with exactly `count` elements (INVALID_ARGUMENT otherwise); with
 * require_sorted also finite and ascending (quantizers search it). */
bnb_status bnb_check_code_table(const char* op, const char* arg, const bnb_tensor* code, int64_t count,
                                int require_sorted, const float** out_code);
/* BNB_ROUND_NEAREST or BNB_ROUND_BNB_CPU_LUT, else INVALID_ARGUMENT. */
bnb_status bnb_check_rounding(const char* op, int32_t rounding);

typedef struct bnb_quantize_blockwise_args {
    const void* A;      /* f32/f16/bf16 [n] */
    int32_t A_dtype;
    int64_t n;
    const float* code;  /* [256] ascending, finite */
    int64_t blocksize;
    int64_t blocks;     /* ceil(n / blocksize) */
    int32_t rounding;
    uint8_t* out_codes;
    float* out_absmax;
} bnb_quantize_blockwise_args;
bnb_status bnb_validate_quantize_blockwise(const char* op, bnb_context* context, const bnb_tensor* A,
                                           const bnb_tensor* code, int64_t blocksize, int32_t rounding,
                                           bnb_tensor* out_codes, bnb_tensor* out_absmax,
                                           bnb_quantize_blockwise_args* out);

typedef struct bnb_dequantize_blockwise_args {
    const uint8_t* codes;
    bnb_scales scales;
    const float* code;  /* [256] */
    int64_t blocksize;
    int64_t n;          /* numel(out) */
    void* out;
    int32_t out_dtype;
} bnb_dequantize_blockwise_args;
bnb_status bnb_validate_dequantize_blockwise(const char* op, bnb_context* context, const bnb_tensor* codes,
                                             const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                             bnb_tensor* out, bnb_dequantize_blockwise_args* resolved);

typedef struct bnb_quantize_absmax_nested_args {
    const float* absmax;  /* [n] */
    int64_t n;
    const float* code;    /* [256] ascending, finite */
    int64_t nested_blocksize;
    int64_t nested_blocks;
    int32_t rounding;
    int32_t has_offset;   /* offset_in was given */
    float offset_in;
    uint8_t* out_codes;
    float* out_nested_absmax;
    float* out_offset;
} bnb_quantize_absmax_nested_args;
bnb_status bnb_validate_quantize_absmax_nested(const char* op, bnb_context* context, const bnb_tensor* absmax,
                                               const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                               const float* offset_in, bnb_tensor* out_codes,
                                               bnb_tensor* out_nested_absmax, float* out_offset,
                                               bnb_quantize_absmax_nested_args* out);

typedef struct bnb_quantize_4bit_args {
    const void* A;  /* f32/f16/bf16 [n] */
    int32_t A_dtype;
    int64_t n;
    int32_t quant_type;
    int64_t blocksize;
    int64_t blocks;
    uint8_t* out_packed;  /* [(n + 1) / 2] */
    float* out_absmax;    /* [blocks] */
} bnb_quantize_4bit_args;
bnb_status bnb_validate_quantize_4bit(const char* op, bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                      int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax,
                                      bnb_quantize_4bit_args* out);

typedef struct bnb_dequantize_4bit_args {
    const uint8_t* packed;
    bnb_scales scales;
    int32_t quant_type;
    int64_t blocksize;
    int64_t n;  /* numel(out) */
    void* out;
    int32_t out_dtype;
} bnb_dequantize_4bit_args;
bnb_status bnb_validate_dequantize_4bit(const char* op, bnb_context* context, const bnb_tensor* packed,
                                        const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                                        bnb_tensor* out, bnb_dequantize_4bit_args* resolved);

/* Weight layouts. `backend_format` is what BNB_WEIGHT_BACKEND means for the calling backend (STANDARD or
 * BNB_CPU); `layout` in the args is the resolved concrete layout. */
typedef struct bnb_weight_pack_args {
    int32_t layout;      /* BNB_WEIGHT_STANDARD or BNB_WEIGHT_BNB_CPU */
    int64_t N, K, blocksize;
    int64_t bytes;       /* size of `layout` for W[N, K] */
    int64_t std_bytes;   /* (N*K + 1) / 2, the standard size */
    const uint8_t* src;  /* pack/unpack only */
    uint8_t* dst;        /* pack/unpack only */
} bnb_weight_pack_args;
/* Resolves format/N/K/blocksize only (the part shared by weight_pack_size, weight_pack, weight_unpack, gemm). */
bnb_status bnb_validate_weight_layout(const char* op, int32_t format, int32_t backend_format, int64_t N, int64_t K,
                                      int64_t blocksize, bnb_weight_pack_args* out);
bnb_status bnb_validate_weight_pack_size(const char* op, bnb_context* context, int32_t format,
                                         int32_t backend_format, int64_t N, int64_t K, int64_t blocksize,
                                         size_t* out_bytes, bnb_weight_pack_args* out);
/* unpack == 0: standard `packed` → `format` in `out_packed`; unpack != 0: `format` → standard. */
bnb_status bnb_validate_weight_pack(const char* op, bnb_context* context, int32_t format, int32_t backend_format,
                                    int unpack, const bnb_tensor* packed, int64_t N, int64_t K, int64_t blocksize,
                                    bnb_tensor* out_packed, bnb_weight_pack_args* out);

typedef struct bnb_gemm_4bit_args {
    bnb_matrix A;         /* [M, K] f32/f16/bf16 */
    const uint8_t* W;     /* in `layout` */
    int32_t layout;       /* BNB_WEIGHT_STANDARD or BNB_WEIGHT_BNB_CPU */
    bnb_scales scales;    /* ceil(N*K / blocksize) flat blocks of W[N, K] */
    int32_t quant_type;
    int64_t blocksize;
    const void* bias;     /* NULL or [N] */
    int32_t bias_dtype;
    bnb_matrix out;       /* [M, N] f32/f16/bf16 */
    int64_t M, N, K;
} bnb_gemm_4bit_args;
/* W: u8; either 1-D/[bytes, 1] holding at least the layout's bytes, or 2-D [N, K/2] (K even). N is out's column
 * count, K is A's column count. */
bnb_status bnb_validate_gemm_4bit(const char* op, bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                  int32_t weight_format, int32_t backend_format, const bnb_absmax* absmax,
                                  int32_t quant_type, int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out,
                                  bnb_gemm_4bit_args* resolved);

/* ─── reference slot implementations (ABI signatures; BNB_WEIGHT_BACKEND = BNB_WEIGHT_STANDARD) ──────────── */

bnb_status BNB_CALL bnb_ref_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_ref_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset);
bnb_status BNB_CALL bnb_ref_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_ref_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes);
bnb_status BNB_CALL bnb_ref_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed);
bnb_status BNB_CALL bnb_ref_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard);
/* gemv and gemm share one implementation: out[m, n] = T(f32(acc + bias[n])), where acc is a float32 running sum over
 * k = 0, 1, …, K-1 of f32(A[m, k] * w[n, k]) and w[n, k] = f32(table[nibble] * absmax of its flat block). */
bnb_status BNB_CALL bnb_ref_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_ref_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);

#ifdef __cplusplus
}
#endif

#endif /* BNB_QUANT_H */
