/*
 * Percentile clipping (spec §3.6, historical bitsandbytes <= 0.49 semantics of kPercentileClipping):
 *   history[step % 100] += ‖g‖² (at step 1 the norm is added to all 100 slots; slots are never reset, so values
 *   accumulate across laps), current = sqrt(history[step % 100]), clip = sqrt(sorted(history)[percentile]),
 *   gnorm_scale = clip / current if current > clip else 1.
 * ‖g‖² is summed in double and added to the float32 history as one float32 value (the CUDA kernel sums in float).
 */
#include "../bnb_optim.h"

#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

bnb_status bnb_clip_resolve(const char* op, bnb_context* context, const bnb_tensor* g, const bnb_tensor* history,
                            int32_t step, int32_t percentile, float* out_gnorm, float* out_gnorm_scale,
                            bnb_clip_args* out) {
    const bnb_context_common* ctx = NULL;
    BNB_TRY(bnb_check_context(op, context, &ctx));
    bnb_clip_args a = {0};
    BNB_TRY(bnb_check_input(op, "g", g, BNB_FLOAT_DTYPES, 0, &a.n));
    int64_t entries = 0;
    BNB_TRY(bnb_check_output(op, "gnorm_history", history, BNB_DTYPE_BIT(BNB_DTYPE_F32), BNB_GNORM_HISTORY, &entries));
    if (entries != BNB_GNORM_HISTORY)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "gnorm_history has %lld elements, expected %d", (long long)entries,
                        BNB_GNORM_HISTORY);
    if (step < 1)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "step = %d must be >= 1", (int)step);
    if (percentile < 0 || percentile >= BNB_GNORM_HISTORY)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "percentile = %d is outside [0, %d]", (int)percentile,
                        BNB_GNORM_HISTORY - 1);
    BNB_TRY(bnb_check_not_null(op, "out_gnorm_scale", out_gnorm_scale));
    BNB_TRY(bnb_check_finite(op, "g", ctx, g->data, g->dtype, a.n));
    a.g = g->data;
    a.dtype = g->dtype;
    a.history = (float*)history->data;
    a.step = step;
    a.percentile = percentile;
    a.out_gnorm = out_gnorm;
    a.out_gnorm_scale = out_gnorm_scale;
    *out = a;
    return BNB_OK;
}

/* Ascending order with NaN last (torch.sort). */
static int sorts_before(float x, float y) { return x < y || (y != y && x == x); }

bnb_status BNB_CALL bnb_ref_percentile_clipping(bnb_context* context, const bnb_tensor* g,
                                                bnb_tensor* gnorm_history, int32_t step, int32_t percentile,
                                                float* out_gnorm, float* out_gnorm_scale) {
    bnb_clip_args a;
    BNB_TRY(bnb_clip_resolve("percentile_clipping", context, g, gnorm_history, step, percentile, out_gnorm,
                             out_gnorm_scale, &a));
    double sq = 0.0;
    for (int64_t i = 0; i < a.n; ++i) {
        const double v = bnb_load_float(a.g, a.dtype, i);
        sq += v * v;
    }
    const float norm_sq = (float)sq;
    const int32_t slot = a.step % BNB_GNORM_HISTORY;
    if (a.step == 1) {
        for (int32_t j = 0; j < BNB_GNORM_HISTORY; ++j) a.history[j] += norm_sq;
    } else {
        a.history[slot] += norm_sq;
    }

    float sorted[BNB_GNORM_HISTORY];
    for (int32_t j = 0; j < BNB_GNORM_HISTORY; ++j) { /* insertion sort: 100 entries */
        const float v = a.history[j];
        int32_t k = j;
        while (k > 0 && sorts_before(v, sorted[k - 1])) {
            sorted[k] = sorted[k - 1];
            --k;
        }
        sorted[k] = v;
    }
    const float current = sqrtf(a.history[slot]);
    const float clip = sqrtf(sorted[a.percentile]);
    *a.out_gnorm_scale = current > clip ? clip / current : 1.0f;
    if (a.out_gnorm != NULL) *a.out_gnorm = current;
    return BNB_OK;
}
