/* Optimizer slots of the SIMD CPU variants (spec §3). First cut: the reference kernels, so the variants link. */
#include "bnb_optim.h"
#include "cpu_ops.h"

bnb_status BNB_CALL bnb_cpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm) {
    return bnb_ref_optimizer_update_32bit(context, params, p, g, state1, state2, out_unorm);
}

bnb_status BNB_CALL bnb_cpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                            bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2) {
    return bnb_ref_optimizer_update_8bit_blockwise(context, params, p, g, state1, state2, absmax1, absmax2, qmap1,
                                                   qmap2);
}

bnb_status BNB_CALL bnb_cpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq) {
    return bnb_ref_optimizer_unorm(context, params, p, g, state1, state2, out_update_sq, out_param_sq);
}

bnb_status BNB_CALL bnb_cpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                int32_t step, int32_t percentile, float* out_gnorm,
                                                float* out_gnorm_scale) {
    return bnb_ref_percentile_clipping(context, g, gnorm_history, step, percentile, out_gnorm, out_gnorm_scale);
}
