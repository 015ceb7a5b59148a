/* LLM.int8() slots of the SIMD CPU variants (spec §2.8).
 *
 * Exactness: every output equals the reference (native/common/ref/int8.c) bit for bit. The matmul is exact int32
 * (int8_gemm.h). The quantizers and dequantizers repeat the reference's float operations lane by lane
 * (optim_vec.h): products and quotients round once, mm_dequant's bias step is the same single-rounding fma, int8
 * conversion is saturate-then-nearest-even with NaN → 0, and maxima are order-independent (a NaN in a row or
 * column sends that row/column through the reference's scalar loop, so even NaN payloads match).
 *
 * Threads: rows (quant, dequant) or column strips (outlier detection, column statistics) are split into tasks
 * whose outputs are disjoint; nothing depends on the thread count.
 */
#include "bnb_int8.h"
#include "cpu_ops.h"
#include "int8_gemm.h"
#include "optim_vec.h"

#include <math.h>

#define ROWS_PER_TASK 16
#define COLS_PER_TASK 256

static float load_at(const bnb_matrix* m, int64_t r, int64_t c) {
    return bnb_load_float(m->data, m->dtype, r * m->row_stride + c);
}
static int is_outlier(float v, float threshold) { return threshold > 0.0f && fabsf(v) >= threshold; }
static float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }
static float hmax(vf v) {
    float t[VW];
    vf_store(t, v);
    float m = t[0];
    for (int j = 1; j < VW; ++j) m = t[j] > m ? t[j] : m;
    return m;
}

/* ─── quantization ───────────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
    const bnb_int8_quant_args* a;
    int double_quant;
    int64_t outliers; /* compacted outlier columns in a->outlier_cols */
} qjob;

/* Column strip: outlier flags into outlier_cols[c] (0/1, as the reference uses that array) and, for double quant,
 * col_stats[c] = max |a| over non-outlier elements (NaN → the reference's own loop for that column). */
static void column_task(void* arg, int64_t t) {
    const qjob* j = (const qjob*)arg;
    const bnb_int8_quant_args* a = j->a;
    const int64_t c0 = t * COLS_PER_TASK, c1 = c0 + COLS_PER_TASK < a->A.cols ? c0 + COLS_PER_TASK : a->A.cols;
    const int flags = a->outlier_cols != NULL && a->threshold > 0.0f;
    const vf thr = vf_set1(a->threshold), zero = vf_set1(0.0f);
    float cmax[COLS_PER_TASK];
    uint8_t out[COLS_PER_TASK], nan[COLS_PER_TASK];
    const int64_t w = c1 - c0, wv = w / VW * VW;
    for (int64_t c = 0; c < w; ++c) {
        cmax[c] = 0.0f;
        out[c] = nan[c] = 0;
    }
    for (int64_t r = 0; r < a->A.rows; ++r) {
        const int64_t base = r * a->A.row_stride + c0;
        for (int64_t c = 0; c < wv; c += VW) {
            const vf v = vf_load_any(a->A.data, a->A.dtype, base + c);
            const vf av = vf_abs(v);
            const vm o = a->threshold > 0.0f ? vf_ge(av, thr) : vf_gt(zero, zero);
            const vm n = vf_nan(v);
            if (vm_any(vm_or(o, n))) { /* rare: record lane by lane */
                float tv[VW];
                vf_store(tv, v);
                for (int l = 0; l < VW; ++l) {
                    if (is_outlier(tv[l], a->threshold)) out[c + l] = 1;
                    if (tv[l] != tv[l]) nan[c + l] = 1;
                }
            }
            vf_store(cmax + c, vf_max_num(vf_sel(o, zero, av), vf_load(cmax + c)));
        }
        for (int64_t c = wv; c < w; ++c) {
            const float v = bnb_load_float(a->A.data, a->A.dtype, base + c);
            if (is_outlier(v, a->threshold)) out[c] = 1;
            else if (v != v) nan[c] = 1;
            else cmax[c] = fabsf(v) > cmax[c] ? fabsf(v) : cmax[c];
        }
    }
    for (int64_t c = 0; c < w; ++c) {
        if (flags) a->outlier_cols[c0 + c] = out[c];
        if (!j->double_quant) continue;
        if (nan[c]) { /* the reference's loop: max_nan keeps the last NaN's payload */
            float m = 0.0f;
            for (int64_t r = 0; r < a->A.rows; ++r) {
                const float v = load_at(&a->A, r, c0 + c);
                if (!is_outlier(v, a->threshold)) m = max_nan(m, fabsf(v));
            }
            a->col_stats[c0 + c] = m;
        } else {
            a->col_stats[c0 + c] = cmax[c];
        }
    }
}

/* a*127 rounded to A's dtype (PyTorch's A.mul(127) for fp16/bf16 A), lane-wise. */
static inline vf times127(vf v, int32_t dtype) {
    const vf p = vf_mul(v, vf_set1(127.0f));
    uint16_t t[VW];
    if (dtype == BNB_DTYPE_F16) {
        vf_store_f16(t, p);
        return vf_load_f16(t);
    }
    if (dtype == BNB_DTYPE_BF16) {
        vf_store_bf16(t, p);
        return vf_load_bf16(t);
    }
    return p;
}
static float times127_scalar(float v, int32_t dtype) {
    const float p = v * 127.0f;
    if (dtype == BNB_DTYPE_F16) return bnb_f16_to_f32(bnb_f32_to_f16(p));
    if (dtype == BNB_DTYPE_BF16) return bnb_bf16_to_f32(bnb_f32_to_bf16(p));
    return p;
}

static void row_task(void* arg, int64_t t) {
    const qjob* j = (const qjob*)arg;
    const bnb_int8_quant_args* a = j->a;
    const int64_t r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < a->A.rows ? r0 + ROWS_PER_TASK : a->A.rows;
    const int64_t cols = a->A.cols, cv = cols / VW * VW;
    const int32_t dt = a->A.dtype;
    const float thrs = a->threshold;
    const vf thr = vf_set1(thrs), zero = vf_set1(0.0f);
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = r * a->A.row_stride;
        /* row max over non-outlier elements */
        vf acc = zero;
        vm nan = vf_gt(zero, zero);
        for (int64_t c = 0; c < cv; c += VW) {
            const vf v = vf_load_any(a->A.data, dt, base + c);
            const vf av = vf_abs(v);
            nan = vm_or(nan, vf_nan(v));
            acc = vf_max_num(thrs > 0.0f ? vf_sel(vf_ge(av, thr), zero, av) : av, acc);
        }
        float row_max = hmax(acc);
        int has_nan = vm_any(nan);
        for (int64_t c = cv; c < cols; ++c) {
            const float v = bnb_load_float(a->A.data, dt, base + c);
            if (v != v) has_nan = 1;
            else if (!is_outlier(v, thrs) && fabsf(v) > row_max) row_max = fabsf(v);
        }
        if (has_nan) {
            row_max = 0.0f;
            for (int64_t c = 0; c < cols; ++c) {
                const float v = bnb_load_float(a->A.data, dt, base + c);
                if (!is_outlier(v, thrs)) row_max = max_nan(row_max, fabsf(v));
            }
        }
        a->row_stats[r] = row_max;

        int8_t* ca = (int8_t*)a->CA.data + r * a->CA.row_stride;
        if (row_max == 0.0f) {
            memset(ca, 0, (size_t)cols);
        } else {
            const float scale = 127.0f / row_max;
            const vf vs = vf_set1(scale);
            int64_t c = 0;
            for (; c < cv; c += VW) vi_store_i8(ca + c, vf_round_i8(vf_mul(vf_load_any(a->A.data, dt, base + c), vs)));
            for (; c < cols; ++c) ca[c] = bnb_int8_round(bnb_load_float(a->A.data, dt, base + c) * scale);
            for (int64_t k = 0; k < j->outliers; ++k) ca[a->outlier_cols[k]] = 0;
        }

        if (j->double_quant) {
            int8_t* cat = (int8_t*)a->CAt.data + r * a->CAt.row_stride;
            int64_t c = 0;
            for (; c < cv; c += VW) {
                const vf v = vf_load_any(a->A.data, dt, base + c);
                const vf q = vf_div(times127(v, dt), vf_load(a->col_stats + c)); /* 0/0 (zero column) → 0 */
                vf qo = q;
                if (thrs > 0.0f) qo = vf_sel(vf_ge(vf_abs(v), thr), zero, q);
                vi_store_i8(cat + c, vf_round_i8(qo));
            }
            for (; c < cols; ++c) {
                const float v = bnb_load_float(a->A.data, dt, base + c);
                cat[c] = is_outlier(v, thrs) ? 0 : bnb_int8_round(times127_scalar(v, dt) / a->col_stats[c]);
            }
        }
    }
}

static void quantize(bnb_context* context, const bnb_int8_quant_args* a, int double_quant) {
    qjob j = {a, double_quant, 0};
    const int flags = a->outlier_cols != NULL && a->threshold > 0.0f;
    if (flags || double_quant) {
        bnb_parallel_for(context->pool, bnb_ceil_div(a->A.cols, COLS_PER_TASK), column_task, &j);
        if (flags) { /* compact in place: index k <= c, so no flag is overwritten before it is read */
            int64_t count = 0;
            for (int64_t c = 0; c < a->A.cols; ++c)
                if (a->outlier_cols[c]) a->outlier_cols[count++] = c;
            j.outliers = count;
        }
    }
    bnb_parallel_for(context->pool, bnb_ceil_div(a->A.rows, ROWS_PER_TASK), row_task, &j);
    if (a->outlier_count != NULL) *a->outlier_count = j.outliers;
}

bnb_status BNB_CALL bnb_cpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant("int8_vectorwise_quant", context, A, threshold, out_CA, NULL, out_row_stats, NULL,
                                   out_outlier_cols, out_outlier_count, 0, &a));
    quantize(context, &a, 0);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count) {
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant("int8_double_quant", context, A, threshold, out_CA, out_CAt, out_row_stats,
                                   out_col_stats, out_outlier_cols, out_outlier_count, 1, &a));
    quantize(context, &a, 1);
    return BNB_OK;
}

/* ─── dequantization ─────────────────────────────────────────────────────────────────────────────────────── */

static void dequant_task(void* arg, int64_t t) {
    const bnb_int8_dequant_args* a = (const bnb_int8_dequant_args*)arg;
    const int64_t r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < a->CA.rows ? r0 + ROWS_PER_TASK : a->CA.rows;
    const int64_t cols = a->CA.cols, cv = cols / VW * VW;
    const vf k = vf_set1(BNB_INT8_INV127);
    for (int64_t r = r0; r < r1; ++r) {
        const int8_t* src = (const int8_t*)a->CA.data + r * a->CA.row_stride;
        float* dst = (float*)a->out.data + r * a->out.row_stride;
        const float rs = a->row_stats[r];
        const vf vrs = vf_set1(rs);
        int64_t c = 0;
        for (; c < cv; c += VW) vf_store(dst + c, vf_mul(vf_mul(vi_to_f(vi_load_i8(src + c)), vrs), k));
        for (; c < cols; ++c) {
            const float scaled = (float)src[c] * rs;
            dst[c] = scaled * BNB_INT8_INV127;
        }
    }
}

bnb_status BNB_CALL bnb_cpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out) {
    bnb_int8_dequant_args a;
    BNB_TRY(bnb_int8_resolve_vectorwise_dequant("int8_vectorwise_dequant", context, CA, row_stats, out, &a));
    bnb_parallel_for(context->pool, bnb_ceil_div(a.CA.rows, ROWS_PER_TASK), dequant_task, &a);
    return BNB_OK;
}

static void mm_dequant_task(void* arg, int64_t t) {
    const bnb_int8_mm_dequant_args* a = (const bnb_int8_mm_dequant_args*)arg;
    const int64_t r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < a->C.rows ? r0 + ROWS_PER_TASK : a->C.rows;
    const int64_t cols = a->C.cols, cv = cols / VW * VW;
    const vf k = vf_set1(BNB_INT8_INV127SQ);
    for (int64_t m = r0; m < r1; ++m) {
        const int32_t* src = (const int32_t*)a->C.data + m * a->C.row_stride;
        const int64_t off = m * a->out.row_stride;
        const float row = a->row_stats[m];
        const vf vrow = vf_set1(row);
        int64_t n = 0;
        for (; n < cv; n += VW) {
            const vf scaled = vf_mul(vf_mul(vi_to_f(vi_load(src + n)), vrow), vf_load(a->col_stats + n));
            const vf v = a->bias == NULL ? vf_mul(scaled, k) : vf_fma(scaled, k, vf_load_any(a->bias, a->bias_dtype, n));
            vf_store_any(a->out.data, a->out.dtype, off + n, v);
        }
        for (; n < cols; ++n) {
            float b = 0.0f;
            if (a->bias != NULL) b = bnb_load_float(a->bias, a->bias_dtype, n);
            const float v = bnb_int8_mm_dequant_value(src[n], row, a->col_stats[n], a->bias ? &b : NULL);
            bnb_store_float(a->out.data, a->out.dtype, off + n, v);
        }
    }
}

bnb_status BNB_CALL bnb_cpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_int8_mm_dequant_args a;
    BNB_TRY(bnb_int8_resolve_mm_dequant("int8_mm_dequant", context, C, row_stats, col_stats, bias, out, &a));
    bnb_parallel_for(context->pool, bnb_ceil_div(a.C.rows, ROWS_PER_TASK), mm_dequant_task, &a);
    return BNB_OK;
}

/* ─── matmul ─────────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_cpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out) {
    static const char op[] = "int8_linear_matmul";
    bnb_int8_matmul_args a;
    BNB_TRY(bnb_int8_resolve_linear_matmul(op, context, A, B, out, &a)); /* incl. the int32 overflow rejection */
    return gemm_int8_run(op, context, &a);
}
