/* ops_quant.c — blockwise 8-bit and 4-bit quantize/dequantize of the SIMD CPU variants.
 *
 * Every slot validates with the shared validators (same messages as bnb_cpu_ref, nothing written on failure), then
 * splits the blocks over context->pool. Blocks are independent, so the bytes do not depend on the thread count.
 * This first version computes each block with the reference kernels; the vector kernels replace them block by block.
 */
#include "cpu_ops.h"

#include "bnb_quant.h"

#include <string.h>

/* Elements per task: large enough to amortize the pool hand-off, small enough to balance two or more threads. */
#define QUANT_TASK_ELEMS ((int64_t)1 << 16)

/* Blocks per task for a given blocksize (at least one block). */
static int64_t blocks_per_task(int64_t blocksize) {
    const int64_t b = QUANT_TASK_ELEMS / blocksize;
    return b > 0 ? b : 1;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ─── 8-bit blockwise quantize ──────────────────────────────────────────────────────────────────────────── */

typedef struct q8_job {
    const void* A;
    int32_t A_dtype;
    int64_t n, blocksize, blocks, per_task;
    int32_t rounding;
    const float* mid;
    uint8_t* codes;
    float* absmax;
} q8_job;

static void q8_block(const q8_job* j, int64_t b) {
    float buffer[BNB_MAX_BLOCKSIZE];
    const int64_t start = b * j->blocksize;
    const int64_t len = min64(j->n - start, j->blocksize);
    const float* x = (const float*)j->A + start;
    if (j->A_dtype != BNB_DTYPE_F32) {
        for (int64_t i = 0; i < len; ++i) buffer[i] = bnb_load_float(j->A, j->A_dtype, start + i);
        x = buffer;
    }
    if (j->rounding == BNB_ROUND_BNB_CPU_LUT) bnb_ref_quantize_block_lut(x, len, j->mid, j->codes + start, j->absmax + b);
    else bnb_ref_quantize_block_nearest(x, len, len < j->blocksize, j->mid, j->codes + start, j->absmax + b);
}

static void q8_task(void* arg, int64_t t) {
    const q8_job* j = (const q8_job*)arg;
    const int64_t end = min64(j->blocks, (t + 1) * j->per_task);
    for (int64_t b = t * j->per_task; b < end; ++b) q8_block(j, b);
}

bnb_status BNB_CALL bnb_cpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax) {
    bnb_quantize_blockwise_args a;
    BNB_TRY(bnb_validate_quantize_blockwise("quantize_blockwise", context, A, code, blocksize, rounding, out_codes,
                                            out_absmax, &a));
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    q8_job j = {a.A, a.A_dtype, a.n, a.blocksize, a.blocks, blocks_per_task(a.blocksize), a.rounding, mid,
                a.out_codes, a.out_absmax};
    bnb_parallel_for(context->pool, bnb_ceil_div(a.blocks, j.per_task), q8_task, &j);
    return BNB_OK;
}

/* ─── 8-bit blockwise dequantize ────────────────────────────────────────────────────────────────────────── */

typedef struct dq8_job {
    const uint8_t* codes;
    const bnb_scales* scales;
    const float* code;
    int64_t n, blocksize, blocks, per_task;
    void* out;
    int32_t out_dtype;
} dq8_job;

static void dq8_task(void* arg, int64_t t) {
    const dq8_job* j = (const dq8_job*)arg;
    const int64_t end = min64(j->n, min64(j->blocks, (t + 1) * j->per_task) * j->blocksize);
    for (int64_t i = t * j->per_task * j->blocksize; i < end; ++i) {
        const float v = j->code[j->codes[i]] * bnb_scale_at(j->scales, i / j->blocksize);
        bnb_store_float(j->out, j->out_dtype, i, v);
    }
}

bnb_status BNB_CALL bnb_cpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out) {
    bnb_dequantize_blockwise_args a;
    BNB_TRY(bnb_validate_dequantize_blockwise("dequantize_blockwise", context, codes, absmax, code, blocksize, out,
                                              &a));
    const int64_t blocks = bnb_ceil_div(a.n, a.blocksize);
    dq8_job j = {a.codes, &a.scales, a.code, a.n, a.blocksize, blocks, blocks_per_task(a.blocksize), a.out,
                 a.out_dtype};
    bnb_parallel_for(context->pool, bnb_ceil_div(blocks, j.per_task), dq8_task, &j);
    return BNB_OK;
}

/* ─── nested absmax ─────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_cpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset) {
    bnb_quantize_absmax_nested_args a;
    BNB_TRY(bnb_validate_quantize_absmax_nested("quantize_absmax_nested", context, absmax, code, nested_blocksize,
                                                rounding, offset_in, out_codes, out_nested_absmax, out_offset, &a));
    if (a.n == 0) return BNB_OK;
    float offset = a.offset_in;
    if (!a.has_offset) {
        /* the reference's serial double sum, in the same order: the offset must be bit-identical */
        double sum = 0.0;
        for (int64_t i = 0; i < a.n; ++i) sum += (double)a.absmax[i];
        offset = (float)(sum / (double)a.n);
    }
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    float centered[BNB_MAX_BLOCKSIZE];
    for (int64_t b = 0; b < a.nested_blocks; ++b) {
        const int64_t start = b * a.nested_blocksize;
        const int64_t len = min64(a.n - start, a.nested_blocksize);
        for (int64_t i = 0; i < len; ++i) centered[i] = a.absmax[start + i] - offset;
        if (a.rounding == BNB_ROUND_BNB_CPU_LUT)
            bnb_ref_quantize_block_lut(centered, len, mid, a.out_codes + start, a.out_nested_absmax + b);
        else
            bnb_ref_quantize_block_nearest(centered, len, len < a.nested_blocksize, mid, a.out_codes + start,
                                           a.out_nested_absmax + b);
    }
    *a.out_offset = offset;
    return BNB_OK;
}

/* ─── 4-bit quantize ────────────────────────────────────────────────────────────────────────────────────── */

typedef struct q4_job {
    const void* A;
    int32_t A_dtype;
    int64_t n, blocksize, blocks, per_task;
    const bnb_4bit_map* map;
    uint8_t pad;
    uint8_t* packed;
    float* absmax;
} q4_job;

static void q4_task(void* arg, int64_t t) {
    const q4_job* j = (const q4_job*)arg;
    float x[BNB_MAX_BLOCKSIZE];
    uint8_t codes[BNB_MAX_BLOCKSIZE + 1];
    const int64_t end = min64(j->blocks, (t + 1) * j->per_task);
    for (int64_t b = t * j->per_task; b < end; ++b) {
        const int64_t start = b * j->blocksize;
        const int64_t len = min64(j->n - start, j->blocksize);
        for (int64_t i = 0; i < len; ++i) x[i] = bnb_load_float(j->A, j->A_dtype, start + i);
        bnb_ref_quantize_block_4bit(x, len, len < j->blocksize, j->map, codes, j->absmax + b);
        codes[len] = j->pad; /* odd n: the last byte's low nibble is the code of a padded 0.0 */
        uint8_t* bytes = j->packed + start / 2;
        for (int64_t i = 0; i < len; i += 2) bytes[i / 2] = (uint8_t)((codes[i] << 4) | codes[i + 1]);
    }
}

bnb_status BNB_CALL bnb_cpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    bnb_quantize_4bit_args a;
    BNB_TRY(bnb_validate_quantize_4bit("quantize_4bit", context, A, quant_type, blocksize, out_packed, out_absmax,
                                       &a));
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(a.quant_type, &map);
    q4_job j = {a.A, a.A_dtype, a.n, a.blocksize, a.blocks, blocks_per_task(a.blocksize), &map,
                bnb_ref_4bit_code(&map, 0.0f), a.out_packed, a.out_absmax};
    bnb_parallel_for(context->pool, bnb_ceil_div(a.blocks, j.per_task), q4_task, &j);
    return BNB_OK;
}

/* ─── 4-bit dequantize ──────────────────────────────────────────────────────────────────────────────────── */

typedef struct dq4_job {
    const uint8_t* packed;
    const bnb_scales* scales;
    const float* table;
    int64_t n, blocksize, blocks, per_task;
    void* out;
    int32_t out_dtype;
} dq4_job;

static void dq4_task(void* arg, int64_t t) {
    const dq4_job* j = (const dq4_job*)arg;
    const int64_t end = min64(j->n, min64(j->blocks, (t + 1) * j->per_task) * j->blocksize);
    for (int64_t i = t * j->per_task * j->blocksize; i < end; ++i) {
        const float v = j->table[bnb_nibble_standard(j->packed, i)] * bnb_scale_at(j->scales, i / j->blocksize);
        bnb_store_float(j->out, j->out_dtype, i, v);
    }
}

bnb_status BNB_CALL bnb_cpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    bnb_dequantize_4bit_args a;
    BNB_TRY(bnb_validate_dequantize_4bit("dequantize_4bit", context, packed, absmax, quant_type, blocksize, out, &a));
    const int64_t blocks = bnb_ceil_div(a.n, a.blocksize);
    dq4_job j = {a.packed, &a.scales, bnb_table_4bit(a.quant_type), a.n, a.blocksize, blocks,
                 blocks_per_task(a.blocksize), a.out, a.out_dtype};
    bnb_parallel_for(context->pool, bnb_ceil_div(blocks, j.per_task), dq4_task, &j);
    return BNB_OK;
}
