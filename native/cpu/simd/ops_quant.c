/* ops_quant.c — blockwise 8-bit and 4-bit quantize/dequantize of the SIMD CPU variants.
 *
 * Every slot validates with the shared validators (same messages as bnb_cpu_ref, nothing written on failure), then
 * splits the blocks over context->pool. Blocks are independent, so the bytes do not depend on the thread count.
 *
 * Exactness: the block kernels evaluate the reference's formulas operation by operation in float32 (one rounding
 * each, the LUT index with the same fused multiply-add), the code searches return the reference's index exactly
 * (quant_vec.h), and conversions are exact or RNE as bnb_load_float/bnb_store_float, so codes, nibbles, absmax and
 * dequantized values are the reference's bytes. Small 8-bit calls binary-search the midpoints (the LUT mode computes
 * the grid point v_i of the bin and searches there, which is LUT[i] by definition). Large calls build a table once:
 * where gathers are cheap (AVX2, NEON's scalar loads) the bucket table of qv_bucket8_build or bnb_ref_build_lut's LUT,
 * looked up once per element; on AVX-512 (Zen 4 gathers are slow) the LUT mode searches the integer bin among the
 * LUT's steps instead (bin_steps), which skips the grid point's division. Dequantization moves the table's bits with
 * permutes (no gather on AVX-512 and NEON) and multiplies once.
 *
 * ISAs without a vector path here (QV_HAVE_VECTOR unset) use the reference block kernels.
 */
#include "cpu_ops.h"

#include "bnb_quant.h"
#include "quant_vec.h"

#include <stdlib.h>
#include <string.h>

/* 8-bit quantize calls from this size on build a lookup table first (building costs about as much as searching
 * this many elements; the result is the same either way; tests may define it to 1 to cover the tables everywhere). */
#ifndef Q8_TABLE_MIN_ELEMS
#define Q8_TABLE_MIN_ELEMS ((int64_t)1 << 19)
#endif

/* Elements per task: large enough to amortize the pool hand-off, small enough to balance two or more threads. */
#define QUANT_TASK_ELEMS ((int64_t)1 << 16)

/* Blocks per task for a given blocksize (at least one block). */
static int64_t blocks_per_task(int64_t blocksize) {
    const int64_t b = QUANT_TASK_ELEMS / blocksize;
    return b > 0 ? b : 1;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static size_t elem_size(int32_t dtype) { return dtype == BNB_DTYPE_F32 ? 4 : 2; }

/* ─── NaN/Inf policy ─────────────────────────────────────────────────────────────────────────────────────── */

/* The shared validators scan inputs for NaN/Inf one scalar at a time, which would cost more than the op itself.
 * The slots validate against a copy of the context that says PROPAGATE (every other check, in the same order, same
 * messages), then, under BNB_NONFINITE_ERROR, scan with the vector kernel over the pool before anything is written;
 * only when that finds something does bnb_check_finite run, to produce the reference's message (first bad index). */
bnb_context* bnb_cpu_propagate_view(bnb_context* context, bnb_context* copy) {
    if (context == NULL) return NULL;
    *copy = *context; /* a dead context stays dead: its magic is copied too */
    copy->common.nonfinite_policy = BNB_NONFINITE_PROPAGATE;
    return copy;
}

typedef struct finite_job {
    const char* data;
    int32_t dtype;
    int64_t n, per_task;
    int32_t* bad; /* one flag per task: no shared writes */
} finite_job;

static void finite_task(void* arg, int64_t t) {
    const finite_job* j = (const finite_job*)arg;
    const int64_t start = t * j->per_task;
    const int64_t len = j->n - start < j->per_task ? j->n - start : j->per_task;
    j->bad[t] = qv_any_nonfinite(j->data + (size_t)start * elem_size(j->dtype), j->dtype, len);
}

bnb_status bnb_cpu_check_finite(const char* op, const char* arg, bnb_context* context, const void* data,
                                    int32_t dtype, int64_t n) {
    if (context->common.nonfinite_policy == BNB_NONFINITE_PROPAGATE || n == 0) return BNB_OK;
    enum { MAX_TASKS = 256 };
    int32_t bad[MAX_TASKS];
    finite_job j = {(const char*)data, dtype, n, 0, bad};
    j.per_task = (n + MAX_TASKS - 1) / MAX_TASKS;
    if (j.per_task < ((int64_t)1 << 16)) j.per_task = (int64_t)1 << 16;
    const int64_t tasks = (n + j.per_task - 1) / j.per_task;
    bnb_parallel_for(context->pool, tasks, finite_task, &j);
    for (int64_t t = 0; t < tasks; ++t)
        if (bad[t]) return bnb_check_finite(op, arg, &context->common, data, dtype, n);
    return BNB_OK;
}

/* ─── block kernels ─────────────────────────────────────────────────────────────────────────────────────── */

/* Scaling of a block (§2.5.2, §2.5.3). */
enum { SCALE_MUL = 0, SCALE_DIV = 1, SCALE_LUT = 2 };

#if QV_HAVE_VECTOR

/* The last rem < QV_W elements of a run, zero-padded to a full vector (padding never changes a result: |0| adds
 * nothing to the max, and padded lanes are not stored). */
static qv_f load_tail(const void* p, int32_t dtype, int64_t rem) {
    float buf[QV_W];
    memset(buf, 0, sizeof buf);
    memcpy(buf, p, (size_t)rem * elem_size(dtype));
    return qv_load(buf, dtype);
}

/* max |x| over len elements, NaN ignored (max is exact and order-free, so lanes may run in any order). */
static float block_absmax(const void* x, int32_t dtype, int64_t len) {
    const char* p = (const char*)x;
    const size_t es = elem_size(dtype);
    qv_f m0 = qv_zero(), m1 = qv_zero();
    int64_t i = 0;
    for (; i + 2 * QV_W <= len; i += 2 * QV_W) {
        m0 = qv_absmax_step(m0, qv_load(p + (size_t)i * es, dtype));
        m1 = qv_absmax_step(m1, qv_load(p + (size_t)(i + QV_W) * es, dtype));
    }
    for (; i + QV_W <= len; i += QV_W) m0 = qv_absmax_step(m0, qv_load(p + (size_t)i * es, dtype));
    if (i < len) m1 = qv_absmax_step(m1, load_tail(p + (size_t)i * es, dtype, len - i));
    const float a = qv_hmax(m0), b = qv_hmax(m1);
    return b > a ? b : a;
}

/* The value the code search sees for x (k = 1/absmax, the clamped absmax, or 1/absmax for the LUT). */
static inline qv_f scaled(qv_f x, qv_f k, int mode) {
    if (mode == SCALE_DIV) return qv_clamp1(qv_div(x, k));
    const qv_f v = qv_clamp1(qv_mul(x, k));
    if (mode == SCALE_MUL) return v;
    /* LUT bin i = (int)fmaf(f32(f32(v + 1) * 0.5), 65535, 0.5) & 0xFFFF, then its grid point
     * f32(f32(f32(i) + f32(i)) / 65535) - 1 (§2.5.3): LUT[i] is the nearest search there */
    const qv_f t = qv_mul(qv_add(v, qv_set1(1.0f)), qv_set1(0.5f));
    const qv_f g = qv_i2f(qv_lut_bin(qv_fma(t, qv_set1(65535.0f), qv_set1(0.5f))));
    return qv_sub(qv_div(qv_add(g, g), qv_set1(65535.0f)), qv_set1(1.0f));
}

/* The 8-bit search state of a call: the binary search always, and for large calls the tables built once. */
typedef struct q8_tabs {
    qv_search8_tab search;
    const uint32_t* bkt; /* NULL, or the bucket table (nearest rounding, QV_GATHER_FAST) */
    const uint8_t* lut;  /* NULL, or bnb_ref_build_lut's table + 3 pad bytes (LUT rounding, QV_GATHER_FAST) */
    int bin_search;      /* LUT rounding: search the bin among the LUT's steps (bin_tab) */
    qv_search8_tab bin_tab;
} q8_tabs;

/* LUT[bin] = #{j : T_j <= bin} for T_j the first bin whose LUT entry exceeds j (the LUT never decreases): the count
 * of "midpoints" T_j - 0.5 below the float bin, all exact in float. Searching the bin directly skips the grid point
 * and its division. */
static void bin_steps(const uint8_t lut[BNB_LUT_SIZE], float steps[BNB_CODE8_SIZE - 1]) {
    int32_t i = 0;
    for (int32_t j = 0; j < BNB_CODE8_SIZE - 1; ++j) {
        while (i < BNB_LUT_SIZE && lut[i] <= j) ++i;
        steps[j] = (float)i - 0.5f;
    }
}

static inline qv_i q8_encode(const q8_tabs* t, qv_f x, qv_f kv, int mode) {
    if (mode == SCALE_LUT && (t->lut != NULL || t->bin_search)) {
        /* the bin as in scaled(), then LUT[bin] */
        const qv_f v = qv_clamp1(qv_mul(x, kv));
        const qv_f h = qv_mul(qv_add(v, qv_set1(1.0f)), qv_set1(0.5f));
        const qv_i bin = qv_lut_bin(qv_fma(h, qv_set1(65535.0f), qv_set1(0.5f)));
#if QV_GATHER_FAST
        if (t->lut != NULL) return qv_lut8(t->lut, bin);
#endif
        return qv_search8(&t->bin_tab, qv_i2f(bin));
    }
    const qv_f s = scaled(x, kv, mode);
#if QV_GATHER_FAST
    if (t->bkt != NULL && mode != SCALE_LUT) return qv_bucket8(t->bkt, &t->search, s);
#endif
    return qv_search8(&t->search, s);
}

static void q8_codes(const q8_tabs* t, const void* x, int32_t dtype, int64_t len, float k, int mode,
                     uint8_t* codes) {
    const char* p = (const char*)x;
    const size_t es = elem_size(dtype);
    const qv_f kv = qv_set1(k);
    int64_t i = 0;
    for (; i + QV_W <= len; i += QV_W)
        qv_store_u8(codes + i, q8_encode(t, qv_load(p + (size_t)i * es, dtype), kv, mode));
    if (i < len) {
        uint8_t tmp[QV_W];
        qv_store_u8(tmp, q8_encode(t, load_tail(p + (size_t)i * es, dtype, len - i), kv, mode));
        memcpy(codes + i, tmp, (size_t)(len - i));
    }
}

/* One 8-bit block in either rounding mode (bnb_ref_quantize_block_lut / _nearest). */
static void q8_block(const q8_tabs* t, int32_t rounding, const void* x, int32_t dtype, int64_t len,
                     int short_tail, uint8_t* codes, float* absmax) {
    const float a = block_absmax(x, dtype, len);
    if (rounding == BNB_ROUND_BNB_CPU_LUT) {
        *absmax = a;
        if (a == 0.0f) { /* bitsandbytes writes code 0 for an all-zero block */
            memset(codes, 0, (size_t)len);
            return;
        }
        q8_codes(t, x, dtype, len, 1.0f / a, SCALE_LUT, codes);
        return;
    }
    const float clamped = a > 1e-38f ? a : 1e-38f; /* a is never NaN */
    *absmax = short_tail ? clamped : a;
    if (short_tail) q8_codes(t, x, dtype, len, clamped, SCALE_DIV, codes);
    else q8_codes(t, x, dtype, len, 1.0f / clamped, SCALE_MUL, codes);
}

/* One 4-bit block → packed bytes (len even, or odd for the last block: its pad lane holds +0.0, whose code is the
 * reference's padding nibble). */
static void q4_block(const qv_search4_tab* t, const void* x, int32_t dtype, int64_t len, int short_tail,
                     uint8_t* packed, float* absmax) {
    const char* p = (const char*)x;
    const size_t es = elem_size(dtype);
    const float a = block_absmax(x, dtype, len);
    const float clamped = a > 1e-38f ? a : 1e-38f;
    *absmax = short_tail ? clamped : a;
    const int mode = short_tail ? SCALE_DIV : SCALE_MUL;
    const qv_f kv = qv_set1(short_tail ? clamped : 1.0f / clamped);
    int64_t i = 0;
    for (; i + QV_W <= len; i += QV_W)
        qv_store_nibbles(packed + i / 2, qv_search4(t, scaled(qv_load(p + (size_t)i * es, dtype), kv, mode)));
    if (i < len) {
        uint8_t tmp[QV_W / 2];
        qv_store_nibbles(tmp, qv_search4(t, scaled(load_tail(p + (size_t)i * es, dtype, len - i), kv, mode)));
        memcpy(packed + i / 2, tmp, (size_t)(len - i + 1) / 2);
    }
}

#endif /* QV_HAVE_VECTOR */

/* ─── 8-bit blockwise quantize ──────────────────────────────────────────────────────────────────────────── */

typedef struct q8_job {
    const void* A;
    int32_t A_dtype;
    int64_t n, blocksize, blocks, per_task;
    int32_t rounding;
    const float* mid;
#if QV_HAVE_VECTOR
    q8_tabs tab;
#endif
    uint8_t* codes;
    float* absmax;
} q8_job;

static void q8_task(void* arg, int64_t t) {
    const q8_job* j = (const q8_job*)arg;
    const int64_t end = min64(j->blocks, (t + 1) * j->per_task);
    for (int64_t b = t * j->per_task; b < end; ++b) {
        const int64_t start = b * j->blocksize;
        const int64_t len = min64(j->n - start, j->blocksize);
#if QV_HAVE_VECTOR
        q8_block(&j->tab, j->rounding, (const char*)j->A + (size_t)start * elem_size(j->A_dtype), j->A_dtype, len,
                 len < j->blocksize, j->codes + start, j->absmax + b);
#else
        float buffer[BNB_MAX_BLOCKSIZE];
        const float* x = (const float*)j->A + start;
        if (j->A_dtype != BNB_DTYPE_F32) {
            for (int64_t i = 0; i < len; ++i) buffer[i] = bnb_load_float(j->A, j->A_dtype, start + i);
            x = buffer;
        }
        if (j->rounding == BNB_ROUND_BNB_CPU_LUT)
            bnb_ref_quantize_block_lut(x, len, j->mid, j->codes + start, j->absmax + b);
        else
            bnb_ref_quantize_block_nearest(x, len, len < j->blocksize, j->mid, j->codes + start, j->absmax + b);
#endif
    }
}

bnb_status BNB_CALL bnb_cpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax) {
    bnb_quantize_blockwise_args a;
    bnb_context view;
    BNB_TRY(bnb_validate_quantize_blockwise("quantize_blockwise", bnb_cpu_propagate_view(context, &view), A, code,
                                            blocksize, rounding, out_codes, out_absmax, &a));
    BNB_TRY(bnb_cpu_check_finite("quantize_blockwise", "A", context, a.A, a.A_dtype, a.n));
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    q8_job j;
    memset(&j, 0, sizeof j);
    j.A = a.A;
    j.A_dtype = a.A_dtype;
    j.n = a.n;
    j.blocksize = a.blocksize;
    j.blocks = a.blocks;
    j.per_task = blocks_per_task(a.blocksize);
    j.rounding = a.rounding;
    j.mid = mid;
    void* table = NULL;
#if QV_HAVE_VECTOR
    qv_mid8 m;
    qv_mid8_init(mid, &m);
    qv_search8_init(&m, &j.tab.search);
    /* large calls: a table built once beats the per-element binary search; if it cannot be allocated the search
     * gives the same bytes */
    if (a.n >= Q8_TABLE_MIN_ELEMS) {
        if (a.rounding == BNB_ROUND_BNB_CPU_LUT) {
            uint8_t* lut = (uint8_t*)malloc(BNB_LUT_SIZE + 3);
            if (lut != NULL) {
                bnb_ref_build_lut(a.code, lut);
                memset(lut + BNB_LUT_SIZE, 0, 3);
                if (QV_GATHER_FAST) j.tab.lut = lut;
                else {
                    qv_mid8 steps;
                    bin_steps(lut, steps.ext);
                    steps.ext[255] = __builtin_inff();
                    qv_search8_init(&steps, &j.tab.bin_tab);
                    j.tab.bin_search = 1;
                }
            }
            table = lut;
        } else if (QV_GATHER_FAST) {
            uint32_t* bkt = (uint32_t*)malloc(sizeof(uint32_t) * QV_BKT_COUNT);
            if (bkt != NULL) qv_bucket8_build(mid, bkt);
            j.tab.bkt = bkt;
            table = bkt;
        }
    }
#endif
    j.codes = a.out_codes;
    j.absmax = a.out_absmax;
    bnb_parallel_for(context->pool, bnb_ceil_div(a.blocks, j.per_task), q8_task, &j);
    free(table);
    return BNB_OK;
}

/* ─── dequantize (8-bit and 4-bit) ──────────────────────────────────────────────────────────────────────── */

typedef struct dq_job {
    int bits;                /* 8 or 4 */
    const uint8_t* src;      /* codes or packed nibbles */
    const bnb_scales* scales;
    const float* table;      /* 256 or 16 values */
    int64_t n, blocksize, blocks, per_task;
    int log2_blocksize;
    void* out;
    int32_t out_dtype;
#if QV_HAVE_VECTOR
    qv_dq8_tab t8;
    qv_dq4_tab t4;
#endif
} dq_job;

#if QV_HAVE_VECTOR
/* Elements [lo, hi) (lo a multiple of QV_DQ_CHUNK): QV_DQ_CHUNK at a time, each vector times the absmax of its block
 * (out = f32(code * absmax): one exact product, then the store's RNE). A chunk may span blocks, a vector never does
 * (QV_W divides the blocksize). The short end goes through zero-padded buffers. */
#define DQ_RANGE_BODY(LOOKUP8)                                                                                     \
    const size_t es = elem_size(j->out_dtype);                                                                     \
    char* out = (char*)j->out;                                                                                     \
    int64_t cur = -1;                                                                                              \
    qv_f scale = qv_zero();                                                                                        \
    for (int64_t i = lo; i < hi; i += QV_DQ_CHUNK) {                                                               \
        const int64_t rem = hi - i < QV_DQ_CHUNK ? hi - i : QV_DQ_CHUNK;                                           \
        uint8_t pad[QV_DQ_CHUNK];                                                                                  \
        const uint8_t* src = j->bits == 8 ? j->src + i : j->src + i / 2;                                           \
        if (rem < QV_DQ_CHUNK) {                                                                                   \
            memset(pad, 0, sizeof pad);                                                                            \
            memcpy(pad, src, (size_t)(j->bits == 8 ? rem : (rem + 1) / 2));                                        \
            src = pad;                                                                                             \
        }                                                                                                          \
        qv_f v[4];                                                                                                 \
        if (j->bits == 8) LOOKUP8(&j->t8, src, v);                                                                 \
        else qv_dequant4_x4(&j->t4, src, v);                                                                       \
        for (int q = 0; q < 4 && q * QV_W < rem; ++q) {                                                            \
            const int64_t e = i + q * QV_W, b = e >> j->log2_blocksize;                                            \
            if (b != cur) {                                                                                        \
                cur = b;                                                                                           \
                scale = qv_set1(bnb_scale_at(j->scales, b));                                                       \
            }                                                                                                      \
            const qv_f y = qv_mul(v[q], scale);                                                                    \
            if (rem - q * QV_W >= QV_W) qv_store(out + (size_t)e * es, j->out_dtype, y);                           \
            else {                                                                                                 \
                float tmp[QV_W];                                                                                   \
                qv_store(tmp, j->out_dtype, y);                                                                    \
                memcpy(out + (size_t)e * es, tmp, (size_t)(rem - q * QV_W) * es);                                  \
            }                                                                                                      \
        }                                                                                                          \
    }

static void dq_range(const dq_job* j, int64_t lo, int64_t hi) { DQ_RANGE_BODY(qv_dequant8_x4) }
#if QV_HAVE_VBMI_PATH
QV_VBMI_TARGET static void dq_range_vbmi(const dq_job* j, int64_t lo, int64_t hi) {
    DQ_RANGE_BODY(qv_dequant8_x4_vbmi)
}
#endif
#endif

static void dq_task(void* arg, int64_t t) {
    const dq_job* j = (const dq_job*)arg;
    const int64_t end = min64(j->blocks, (t + 1) * j->per_task);
    const int64_t lo = t * j->per_task * j->blocksize, hi = min64(j->n, end * j->blocksize);
#if QV_HAVE_VECTOR
#if QV_HAVE_VBMI_PATH
    if (j->bits == 8 && j->t8.vbmi) {
        dq_range_vbmi(j, lo, hi);
        return;
    }
#endif
    dq_range(j, lo, hi);
#else
    for (int64_t i = lo; i < hi; ++i) {
        const uint8_t c = j->bits == 8 ? j->src[i] : bnb_nibble_standard(j->src, i);
        bnb_store_float(j->out, j->out_dtype, i, j->table[c] * bnb_scale_at(j->scales, i / j->blocksize));
    }
#endif
}

static void run_dequant(bnb_context* context, int bits, const uint8_t* src, const bnb_scales* scales,
                        const float* table, int64_t n, int64_t blocksize, void* out, int32_t out_dtype) {
    dq_job j;
    memset(&j, 0, sizeof j);
    j.bits = bits;
    j.src = src;
    j.scales = scales;
    j.table = table;
    j.n = n;
    j.blocksize = blocksize;
    j.blocks = bnb_ceil_div(n, blocksize);
    j.per_task = blocks_per_task(blocksize);
    while (((int64_t)1 << j.log2_blocksize) < blocksize) ++j.log2_blocksize; /* a power of two */
    j.out = out;
    j.out_dtype = out_dtype;
#if QV_HAVE_VECTOR
    if (bits == 8) qv_dq8_init(table, &j.t8);
    else qv_dq4_init(table, &j.t4);
#endif
    bnb_parallel_for(context->pool, bnb_ceil_div(j.blocks, j.per_task), dq_task, &j);
}

bnb_status BNB_CALL bnb_cpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out) {
    bnb_dequantize_blockwise_args a;
    BNB_TRY(bnb_validate_dequantize_blockwise("dequantize_blockwise", context, codes, absmax, code, blocksize, out,
                                              &a));
    run_dequant(context, 8, a.codes, &a.scales, a.code, a.n, a.blocksize, a.out, a.out_dtype);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    bnb_dequantize_4bit_args a;
    BNB_TRY(bnb_validate_dequantize_4bit("dequantize_4bit", context, packed, absmax, quant_type, blocksize, out, &a));
    run_dequant(context, 4, a.packed, &a.scales, bnb_table_4bit(a.quant_type), a.n, a.blocksize, a.out,
                a.out_dtype);
    return BNB_OK;
}

/* ─── nested absmax ─────────────────────────────────────────────────────────────────────────────────────── */

/* Serial: the input is one float per block of the weights (tiny), and the mean must be the reference's
 * left-to-right double sum bit for bit. */
bnb_status BNB_CALL bnb_cpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset) {
    bnb_quantize_absmax_nested_args a;
    bnb_context view;
    BNB_TRY(bnb_validate_quantize_absmax_nested("quantize_absmax_nested", bnb_cpu_propagate_view(context, &view), absmax,
                                                code, nested_blocksize, rounding, offset_in, out_codes,
                                                out_nested_absmax, out_offset, &a));
    BNB_TRY(bnb_cpu_check_finite("quantize_absmax_nested", "absmax", context, a.absmax, BNB_DTYPE_F32, a.n));
    if (a.has_offset)
        BNB_TRY(bnb_cpu_check_finite("quantize_absmax_nested", "offset_in", context, offset_in, BNB_DTYPE_F32, 1));
    if (a.n == 0) return BNB_OK;
    float offset = a.offset_in;
    if (!a.has_offset) {
        double sum = 0.0;
        for (int64_t i = 0; i < a.n; ++i) sum += (double)a.absmax[i];
        offset = (float)(sum / (double)a.n);
    }
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
#if QV_HAVE_VECTOR
    qv_mid8 m;
    q8_tabs tab;
    memset(&tab, 0, sizeof tab);
    qv_mid8_init(mid, &m);
    qv_search8_init(&m, &tab.search);
#endif
    float centered[BNB_MAX_BLOCKSIZE]; /* f32(absmax - offset) of one nested block */
    for (int64_t b = 0; b < a.nested_blocks; ++b) {
        const int64_t start = b * a.nested_blocksize;
        const int64_t len = min64(a.n - start, a.nested_blocksize);
        for (int64_t i = 0; i < len; ++i) centered[i] = a.absmax[start + i] - offset;
#if QV_HAVE_VECTOR
        q8_block(&tab, a.rounding, centered, BNB_DTYPE_F32, len, len < a.nested_blocksize, a.out_codes + start,
                 a.out_nested_absmax + b);
#else
        if (a.rounding == BNB_ROUND_BNB_CPU_LUT)
            bnb_ref_quantize_block_lut(centered, len, mid, a.out_codes + start, a.out_nested_absmax + b);
        else
            bnb_ref_quantize_block_nearest(centered, len, len < a.nested_blocksize, mid, a.out_codes + start,
                                           a.out_nested_absmax + b);
#endif
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
#if QV_HAVE_VECTOR
    qv_search4_tab tab;
#endif
    uint8_t* packed;
    float* absmax;
} q4_job;

static void q4_task(void* arg, int64_t t) {
    const q4_job* j = (const q4_job*)arg;
    const int64_t end = min64(j->blocks, (t + 1) * j->per_task);
    for (int64_t b = t * j->per_task; b < end; ++b) {
        const int64_t start = b * j->blocksize; /* even: blocksize is a power of two >= 32 */
        const int64_t len = min64(j->n - start, j->blocksize);
#if QV_HAVE_VECTOR
        q4_block(&j->tab, (const char*)j->A + (size_t)start * elem_size(j->A_dtype), j->A_dtype, len,
                 len < j->blocksize, j->packed + start / 2, j->absmax + b);
#else
        float x[BNB_MAX_BLOCKSIZE];
        uint8_t codes[BNB_MAX_BLOCKSIZE + 1];
        for (int64_t i = 0; i < len; ++i) x[i] = bnb_load_float(j->A, j->A_dtype, start + i);
        bnb_ref_quantize_block_4bit(x, len, len < j->blocksize, j->map, codes, j->absmax + b);
        codes[len] = bnb_ref_4bit_code(j->map, 0.0f); /* odd n: the padded 0.0 */
        uint8_t* bytes = j->packed + start / 2;
        for (int64_t i = 0; i < len; i += 2) bytes[i / 2] = (uint8_t)((codes[i] << 4) | codes[i + 1]);
#endif
    }
}

bnb_status BNB_CALL bnb_cpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    bnb_quantize_4bit_args a;
    bnb_context view;
    BNB_TRY(bnb_validate_quantize_4bit("quantize_4bit", bnb_cpu_propagate_view(context, &view), A, quant_type,
                                       blocksize, out_packed, out_absmax, &a));
    BNB_TRY(bnb_cpu_check_finite("quantize_4bit", "A", context, a.A, a.A_dtype, a.n));
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(a.quant_type, &map);
    q4_job j;
    memset(&j, 0, sizeof j);
    j.A = a.A;
    j.A_dtype = a.A_dtype;
    j.n = a.n;
    j.blocksize = a.blocksize;
    j.blocks = a.blocks;
    j.per_task = blocks_per_task(a.blocksize);
    j.map = &map;
#if QV_HAVE_VECTOR
    qv_map4 m;
    qv_map4_init(&map, &m);
    qv_search4_init(&m, &j.tab);
#endif
    j.packed = a.out_packed;
    j.absmax = a.out_absmax;
    bnb_parallel_for(context->pool, bnb_ceil_div(a.blocks, j.per_task), q4_task, &j);
    return BNB_OK;
}
