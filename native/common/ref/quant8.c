/* 8-bit blockwise quantization: reference kernels and validation (spec §2.5, §2.7).
 *
 * Two rounding modes share the block structure (blocks of `blocksize` consecutive elements of the flattened
 * tensor, the last one possibly short) and differ in scaling and code search:
 *   BNB_ROUND_NEAREST      bitsandbytes' default backend: exact nearest code, ties → lower index (§2.5.2)
 *   BNB_ROUND_BNB_CPU_LUT  bitsandbytes' CPU library: 65 536-bin lookup table (§2.5.3), bit for bit
 */
#include "bnb_quant.h"

#include <math.h>

/* ─── kernels ────────────────────────────────────────────────────────────────────────────────────────────── */

void bnb_ref_code_midpoints(const float* code, int32_t count, float* mid) {
    for (int32_t j = 0; j + 1 < count; ++j) {
        const float sum = code[j] + code[j + 1];
        mid[j] = 0.5f * sum;
    }
}

uint32_t bnb_ref_lut_index(float x, float inv) {
    float v = x * inv;
    if (v > 1.0f) v = 1.0f; /* comparisons leave NaN as it is */
    else if (v < -1.0f) v = -1.0f;
    const float t = (v + 1.0f) * 0.5f;
    const float f = bnb_fmaf(t, 65535.0f, 0.5f); /* bitsandbytes' GCC build contracts t*65535+0.5 into one FMA */
    if (f != f) return 0;                    /* (int32_t)NaN is INT_MIN on x86; INT_MIN & 0xFFFF = 0 */
    return (uint32_t)(int32_t)f & 0xFFFFu;   /* f in [0.5, 65535.5]: the cast truncates, no overflow */
}

/* Grid point of LUT bin i: f32(f32(f32(i) + f32(i)) / 65535.0f) - 1.0f (f32(i) + f32(i) is exact). */
static float lut_grid_point(uint32_t i) {
    const float twice = (float)i + (float)i;
    const float scaled = twice / 65535.0f;
    return scaled - 1.0f;
}

uint8_t bnb_ref_lut_entry(const float mid[BNB_CODE8_SIZE - 1], uint32_t i) {
    return (uint8_t)bnb_ref_count_below(mid, BNB_CODE8_SIZE - 1, lut_grid_point(i));
}

void bnb_ref_build_lut(const float code[BNB_CODE8_SIZE], uint8_t lut[BNB_LUT_SIZE]) {
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(code, BNB_CODE8_SIZE, mid);
    /* grid points ascend with i, so the count of midpoints below them only moves forward */
    int32_t below = 0;
    for (uint32_t i = 0; i < BNB_LUT_SIZE; ++i) {
        const float v = lut_grid_point(i);
        while (below < BNB_CODE8_SIZE - 1 && mid[below] < v) ++below;
        lut[i] = (uint8_t)below;
    }
}

void bnb_ref_quantize_block_lut(const float* x, int64_t len, const float mid[BNB_CODE8_SIZE - 1], uint8_t* codes,
                                float* absmax) {
    const float a = bnb_ref_block_absmax(x, len);
    *absmax = a;
    if (a == 0.0f) { /* bitsandbytes writes code 0 (not the code of 0.0) for an all-zero block */
        for (int64_t i = 0; i < len; ++i) codes[i] = 0;
        return;
    }
    const float inv = 1.0f / a; /* a = +Inf gives inv = 0: finite x → the bin of 0, ±Inf → NaN → bin 0 */
    for (int64_t i = 0; i < len; ++i) codes[i] = bnb_ref_lut_entry(mid, bnb_ref_lut_index(x[i], inv));
}

void bnb_ref_quantize_block_nearest(const float* x, int64_t len, int32_t short_tail,
                                    const float mid[BNB_CODE8_SIZE - 1], uint8_t* codes, float* absmax) {
    const float a = bnb_ref_block_absmax(x, len);
    const float clamped = fmaxf(a, 1e-38f); /* torch clamp(min=1e-38): keeps zero blocks finite */
    const float inv = 1.0f / clamped;
    /* full blocks store the unclamped max and multiply by the reciprocal; the short tail block stores the clamped
     * max and divides (two torch code paths, §2.5.2) */
    *absmax = short_tail ? clamped : a;
    for (int64_t i = 0; i < len; ++i) {
        float s = short_tail ? x[i] / clamped : x[i] * inv;
        if (s > 1.0f) s = 1.0f;
        else if (s < -1.0f) s = -1.0f;
        codes[i] = (uint8_t)bnb_ref_count_below(mid, BNB_CODE8_SIZE - 1, s); /* NaN → 0 */
    }
}

/* One block in either rounding mode; a block shorter than blocksize is the tail. */
static void quantize_block(const float* x, int64_t len, int64_t blocksize, int32_t rounding,
                           const float mid[BNB_CODE8_SIZE - 1], uint8_t* codes, float* absmax) {
    if (rounding == BNB_ROUND_BNB_CPU_LUT) bnb_ref_quantize_block_lut(x, len, mid, codes, absmax);
    else bnb_ref_quantize_block_nearest(x, len, len < blocksize, mid, codes, absmax);
}

void bnb_ref_requantize_blockwise_f32(const float* x, int64_t n, const float* code, int64_t blocksize,
                                      int32_t rounding, uint8_t* out_codes, float* out_absmax) {
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(code, BNB_CODE8_SIZE, mid);
    for (int64_t start = 0, b = 0; start < n; start += blocksize, ++b) {
        const int64_t len = n - start < blocksize ? n - start : blocksize;
        quantize_block(x + start, len, blocksize, rounding, mid, out_codes + start, out_absmax + b);
    }
}

void bnb_ref_dequantize_blockwise_f32(const uint8_t* codes, const float* absmax, int64_t n, const float* code,
                                      int64_t blocksize, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = code[codes[i]] * absmax[i / blocksize];
}

/* ─── validation ─────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status bnb_check_code_table(const char* op, const char* arg, const bnb_tensor* code, int64_t count,
                                int require_sorted, const float** out_code) {
    int64_t numel = 0;
    BNB_TRY(bnb_check_input(op, arg, code, BNB_DTYPE_BIT(BNB_DTYPE_F32), 0, &numel));
    if (numel != count)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s has %lld elements; a code table has exactly %lld", arg,
                        (long long)numel, (long long)count);
    const float* values = (const float*)code->data;
    if (require_sorted) {
        for (int64_t j = 0; j < count; ++j) {
            if (!bnb_is_finite_f32(values[j]))
                return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s[%lld] = %g is not finite", arg, (long long)j,
                                (double)values[j]);
            if (j > 0 && values[j] < values[j - 1])
                return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                                "%s is not sorted ascending: %s[%lld] = %g < %s[%lld] = %g", arg, arg, (long long)j,
                                (double)values[j], arg, (long long)(j - 1), (double)values[j - 1]);
        }
    }
    *out_code = values;
    return BNB_OK;
}

bnb_status bnb_check_rounding(const char* op, int32_t rounding) {
    if (rounding != BNB_ROUND_NEAREST && rounding != BNB_ROUND_BNB_CPU_LUT)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "rounding = %d is not BNB_ROUND_NEAREST (%d) or BNB_ROUND_BNB_CPU_LUT (%d)", (int)rounding,
                        BNB_ROUND_NEAREST, BNB_ROUND_BNB_CPU_LUT);
    return BNB_OK;
}

bnb_status bnb_validate_quantize_blockwise(const char* op, bnb_context* context, const bnb_tensor* A,
                                           const bnb_tensor* code, int64_t blocksize, int32_t rounding,
                                           bnb_tensor* out_codes, bnb_tensor* out_absmax,
                                           bnb_quantize_blockwise_args* out) {
    const bnb_context_common* ctx = NULL;
    bnb_quantize_blockwise_args r = {0};
    BNB_TRY(bnb_check_context(op, context, &ctx));
    BNB_TRY(bnb_check_input(op, "A", A, BNB_FLOAT_DTYPES, 0, &r.n));
    BNB_TRY(bnb_check_code_table(op, "code", code, BNB_CODE8_SIZE, 1, &r.code));
    BNB_TRY(bnb_check_blocksize(op, "blocksize", blocksize));
    BNB_TRY(bnb_check_rounding(op, rounding));
    r.blocks = bnb_ceil_div(r.n, blocksize);
    BNB_TRY(bnb_check_output(op, "out_codes", out_codes, BNB_DTYPE_BIT(BNB_DTYPE_U8), r.n, NULL));
    BNB_TRY(bnb_check_output(op, "out_absmax", out_absmax, BNB_DTYPE_BIT(BNB_DTYPE_F32), r.blocks, NULL));
    BNB_TRY(bnb_check_finite(op, "A", ctx, A->data, A->dtype, r.n));
    r.A = A->data;
    r.A_dtype = A->dtype;
    r.blocksize = blocksize;
    r.rounding = rounding;
    r.out_codes = (uint8_t*)out_codes->data;
    r.out_absmax = (float*)out_absmax->data;
    *out = r;
    return BNB_OK;
}

bnb_status bnb_validate_dequantize_blockwise(const char* op, bnb_context* context, const bnb_tensor* codes,
                                             const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                             bnb_tensor* out, bnb_dequantize_blockwise_args* resolved) {
    bnb_dequantize_blockwise_args r = {0};
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_output(op, "out", out, BNB_FLOAT_DTYPES, 0, &r.n));
    BNB_TRY(bnb_check_input(op, "codes", codes, BNB_DTYPE_BIT(BNB_DTYPE_U8), r.n, NULL));
    BNB_TRY(bnb_check_code_table(op, "code", code, BNB_CODE8_SIZE, 0, &r.code));
    BNB_TRY(bnb_check_blocksize(op, "blocksize", blocksize));
    BNB_TRY(bnb_check_absmax(op, absmax, bnb_ceil_div(r.n, blocksize), &r.scales));
    r.codes = (const uint8_t*)codes->data;
    r.blocksize = blocksize;
    r.out = out->data;
    r.out_dtype = out->dtype;
    *resolved = r;
    return BNB_OK;
}

bnb_status bnb_validate_quantize_absmax_nested(const char* op, bnb_context* context, const bnb_tensor* absmax,
                                               const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                               const float* offset_in, bnb_tensor* out_codes,
                                               bnb_tensor* out_nested_absmax, float* out_offset,
                                               bnb_quantize_absmax_nested_args* out) {
    const bnb_context_common* ctx = NULL;
    bnb_quantize_absmax_nested_args r = {0};
    BNB_TRY(bnb_check_context(op, context, &ctx));
    BNB_TRY(bnb_check_input(op, "absmax", absmax, BNB_DTYPE_BIT(BNB_DTYPE_F32), 0, &r.n));
    BNB_TRY(bnb_check_code_table(op, "code", code, BNB_CODE8_SIZE, 1, &r.code));
    BNB_TRY(bnb_check_blocksize(op, "nested_blocksize", nested_blocksize));
    BNB_TRY(bnb_check_rounding(op, rounding));
    r.nested_blocks = bnb_ceil_div(r.n, nested_blocksize);
    BNB_TRY(bnb_check_output(op, "out_codes", out_codes, BNB_DTYPE_BIT(BNB_DTYPE_U8), r.n, NULL));
    BNB_TRY(bnb_check_output(op, "out_nested_absmax", out_nested_absmax, BNB_DTYPE_BIT(BNB_DTYPE_F32),
                             r.nested_blocks, NULL));
    BNB_TRY(bnb_check_not_null(op, "out_offset", out_offset));
    BNB_TRY(bnb_check_finite(op, "absmax", ctx, absmax->data, BNB_DTYPE_F32, r.n));
    if (offset_in != NULL) {
        BNB_TRY(bnb_check_finite(op, "offset_in", ctx, offset_in, BNB_DTYPE_F32, 1));
        r.has_offset = 1;
        r.offset_in = *offset_in;
    }
    r.absmax = (const float*)absmax->data;
    r.nested_blocksize = nested_blocksize;
    r.rounding = rounding;
    r.out_codes = (uint8_t*)out_codes->data;
    r.out_nested_absmax = (float*)out_nested_absmax->data;
    r.out_offset = out_offset;
    *out = r;
    return BNB_OK;
}

/* ─── reference slots ────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax) {
    bnb_quantize_blockwise_args a;
    BNB_TRY(bnb_validate_quantize_blockwise("quantize_blockwise", context, A, code, blocksize, rounding, out_codes,
                                            out_absmax, &a));
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    float buffer[BNB_MAX_BLOCKSIZE]; /* one block converted to float32 (f16/bf16 inputs) */
    for (int64_t b = 0; b < a.blocks; ++b) {
        const int64_t start = b * a.blocksize;
        const int64_t len = a.n - start < a.blocksize ? a.n - start : a.blocksize;
        const float* x = (const float*)a.A + start;
        if (a.A_dtype != BNB_DTYPE_F32) {
            for (int64_t i = 0; i < len; ++i) buffer[i] = bnb_load_float(a.A, a.A_dtype, start + i);
            x = buffer;
        }
        quantize_block(x, len, a.blocksize, a.rounding, mid, a.out_codes + start, a.out_absmax + b);
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out) {
    bnb_dequantize_blockwise_args a;
    BNB_TRY(bnb_validate_dequantize_blockwise("dequantize_blockwise", context, codes, absmax, code, blocksize, out,
                                              &a));
    for (int64_t i = 0; i < a.n; ++i) {
        const float v = a.code[a.codes[i]] * bnb_scale_at(&a.scales, i / a.blocksize);
        bnb_store_float(a.out, a.out_dtype, i, v);
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset) {
    bnb_quantize_absmax_nested_args a;
    BNB_TRY(bnb_validate_quantize_absmax_nested("quantize_absmax_nested", context, absmax, code, nested_blocksize,
                                                rounding, offset_in, out_codes, out_nested_absmax, out_offset, &a));
    if (a.n == 0) return BNB_OK;
    float offset = a.offset_in;
    if (!a.has_offset) {
        /* mean in double, rounded once: within an ulp of torch's float32 cascade mean (pass offset_in for bits) */
        double sum = 0.0;
        for (int64_t i = 0; i < a.n; ++i) sum += (double)a.absmax[i];
        offset = (float)(sum / (double)a.n);
    }
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    float centered[BNB_MAX_BLOCKSIZE]; /* f32(absmax - offset) of one nested block */
    for (int64_t b = 0; b < a.nested_blocks; ++b) {
        const int64_t start = b * a.nested_blocksize;
        const int64_t len = a.n - start < a.nested_blocksize ? a.n - start : a.nested_blocksize;
        for (int64_t i = 0; i < len; ++i) centered[i] = a.absmax[start + i] - offset;
        quantize_block(centered, len, a.nested_blocksize, a.rounding, mid, a.out_codes + start,
                       a.out_nested_absmax + b);
    }
    *a.out_offset = offset;
    return BNB_OK;
}
