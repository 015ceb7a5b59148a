/* 4-bit NF4/FP4 blockwise quantization: reference kernels and validation (spec §2.6).
 *
 * Quantization is bitsandbytes' default backend (what its CPU build runs), bit for bit: default-backend scaling
 * (as 8-bit BNB_ROUND_NEAREST) and bucketize against the midpoints of the sorted table. Two codes per byte, the
 * even element in the high nibble (layout drawn next to bnb_nibble_standard in bnb_quant.h).
 */
#include "bnb_quant.h"

#include <math.h>

/* ─── kernels ────────────────────────────────────────────────────────────────────────────────────────────── */

void bnb_ref_4bit_map_init(int32_t quant_type, bnb_4bit_map* map) {
    map->table = bnb_table_4bit(quant_type);
    /* stable insertion sort of the nibbles by value: FP4 has 0.0 at nibble 0 and +0.0 at nibble 8 and the stable
     * order (0 before 8) decides that s in (0, 0.0026] gets nibble 8 (§2.6.2) */
    for (int32_t j = 0; j < BNB_CODE4_SIZE; ++j) {
        int32_t pos = j;
        while (pos > 0 && map->table[map->order[pos - 1]] > map->table[j]) {
            map->order[pos] = map->order[pos - 1];
            --pos;
        }
        map->order[pos] = (uint8_t)j;
    }
    float sorted[BNB_CODE4_SIZE];
    for (int32_t j = 0; j < BNB_CODE4_SIZE; ++j) sorted[j] = map->table[map->order[j]];
    bnb_ref_code_midpoints(sorted, BNB_CODE4_SIZE, map->bounds);
}

void bnb_ref_quantize_block_4bit(const float* x, int64_t len, int32_t short_tail, const bnb_4bit_map* map,
                                 uint8_t* codes, float* absmax) {
    /* the same two torch code paths as 8-bit nearest rounding (§2.5.2): full blocks multiply by the reciprocal
     * of max(a, 1e-38) and store a; the short tail block divides by max(a, 1e-38) and stores that */
    const float a = bnb_ref_block_absmax(x, len);
    const float clamped = fmaxf(a, 1e-38f);
    const float inv = 1.0f / clamped;
    *absmax = short_tail ? clamped : a;
    for (int64_t i = 0; i < len; ++i) {
        float s = short_tail ? x[i] / clamped : x[i] * inv;
        if (s > 1.0f) s = 1.0f;
        else if (s < -1.0f) s = -1.0f;
        codes[i] = bnb_ref_4bit_code(map, s);
    }
}

/* ─── validation ─────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status bnb_validate_quantize_4bit(const char* op, bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                      int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax,
                                      bnb_quantize_4bit_args* out) {
    const bnb_context_common* ctx = NULL;
    bnb_quantize_4bit_args r = {0};
    BNB_TRY(bnb_check_context(op, context, &ctx));
    BNB_TRY(bnb_check_input(op, "A", A, BNB_FLOAT_DTYPES, 0, &r.n));
    BNB_TRY(bnb_check_quant_type(op, quant_type));
    BNB_TRY(bnb_check_blocksize(op, "blocksize", blocksize));
    r.blocks = bnb_ceil_div(r.n, blocksize);
    BNB_TRY(bnb_check_output(op, "out_packed", out_packed, BNB_DTYPE_BIT(BNB_DTYPE_U8), r.n / 2 + r.n % 2, NULL));
    BNB_TRY(bnb_check_output(op, "out_absmax", out_absmax, BNB_DTYPE_BIT(BNB_DTYPE_F32), r.blocks, NULL));
    BNB_TRY(bnb_check_finite(op, "A", ctx, A->data, A->dtype, r.n));
    r.A = A->data;
    r.A_dtype = A->dtype;
    r.quant_type = quant_type;
    r.blocksize = blocksize;
    r.out_packed = (uint8_t*)out_packed->data;
    r.out_absmax = (float*)out_absmax->data;
    *out = r;
    return BNB_OK;
}

bnb_status bnb_validate_dequantize_4bit(const char* op, bnb_context* context, const bnb_tensor* packed,
                                        const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                                        bnb_tensor* out, bnb_dequantize_4bit_args* resolved) {
    bnb_dequantize_4bit_args r = {0};
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_output(op, "out", out, BNB_FLOAT_DTYPES, 0, &r.n));
    BNB_TRY(bnb_check_input(op, "packed", packed, BNB_DTYPE_BIT(BNB_DTYPE_U8), r.n / 2 + r.n % 2, NULL));
    BNB_TRY(bnb_check_quant_type(op, quant_type));
    BNB_TRY(bnb_check_blocksize(op, "blocksize", blocksize));
    BNB_TRY(bnb_check_absmax(op, absmax, bnb_ceil_div(r.n, blocksize), &r.scales));
    r.packed = (const uint8_t*)packed->data;
    r.quant_type = quant_type;
    r.blocksize = blocksize;
    r.out = out->data;
    r.out_dtype = out->dtype;
    *resolved = r;
    return BNB_OK;
}

/* ─── reference slots ────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    bnb_quantize_4bit_args a;
    BNB_TRY(bnb_validate_quantize_4bit("quantize_4bit", context, A, quant_type, blocksize, out_packed, out_absmax,
                                       &a));
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(a.quant_type, &map);
    /* an odd element count pads one 0.0 after scaling; 0 scales to 0 in every block, so its nibble is fixed */
    const uint8_t pad = bnb_ref_4bit_code(&map, 0.0f);
    float x[BNB_MAX_BLOCKSIZE];
    uint8_t codes[BNB_MAX_BLOCKSIZE + 1];
    for (int64_t b = 0; b < a.blocks; ++b) {
        const int64_t start = b * a.blocksize; /* even: blocksize is a power of two >= 32 */
        const int64_t len = a.n - start < a.blocksize ? a.n - start : a.blocksize;
        for (int64_t i = 0; i < len; ++i) x[i] = bnb_load_float(a.A, a.A_dtype, start + i);
        bnb_ref_quantize_block_4bit(x, len, len < a.blocksize, &map, codes, a.out_absmax + b);
        codes[len] = pad; /* read only when len is odd (the last block of an odd n) */
        uint8_t* bytes = a.out_packed + start / 2;
        for (int64_t i = 0; i < len; i += 2) bytes[i / 2] = (uint8_t)((codes[i] << 4) | codes[i + 1]);
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    bnb_dequantize_4bit_args a;
    BNB_TRY(bnb_validate_dequantize_4bit("dequantize_4bit", context, packed, absmax, quant_type, blocksize, out, &a));
    const float* table = bnb_table_4bit(a.quant_type);
    /* flat block indexing i / blocksize for every shape (bitsandbytes' AVX512 path indexes per row: not copied) */
    for (int64_t i = 0; i < a.n; ++i) {
        const float v = table[bnb_nibble_standard(a.packed, i)] * bnb_scale_at(&a.scales, i / a.blocksize);
        bnb_store_float(a.out, a.out_dtype, i, v);
    }
    return BNB_OK;
}
