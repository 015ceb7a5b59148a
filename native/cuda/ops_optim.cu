/*
 * ops_optim.cu — optimizer steps, optimizer_unorm and percentile clipping (spec §3), bit-identical to ref/optim.c
 * and ref/clip.c element by element (the formulas are copied operation by operation; see the table at the top of
 * ref/optim.c). Norms are sums in double over a fixed two-stage tree (gpu_reduce.cuh), so they differ from the
 * reference only by summation order (the conformance NMSE bound for trust-ratio steps and norms).
 *
 *   32-bit, no trust ratio (adagrad, lion, ademamix)    one element-wise pass
 *   32-bit adam, lamb, momentum, lars, rmsprop           pass 1 updates the states and sums the update direction²
 *                                                        (and ‖p‖² when the op computes it); a one-thread kernel
 *                                                        turns the norms into the step factor; pass 2 moves p
 *   8-bit blockwise                                      one block of 256 threads per 256-element state block:
 *                                                        dequantize, update, block absmax, requantize
 */
#include "gpu_backend.h"
#include "gpu_device.cuh"
#include "gpu_reduce.cuh"

#include "bnb_optim.h"
#include "bnb_quant.h"

#include <math.h>

using namespace bnb_gpu;

namespace {

/* ─── element formulas (ref/optim.c) ─────────────────────────────────────────────────────────────────────── */

using H = bnb_optim_hparams;

BNB_D float addcmul(float self, float a, float b, float value) {
    const float va = value * a;
    return fma_rn(va, b, self);
}
BNB_D float sign_of(float v) { return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v; }
BNB_D float adam_m(const H& h, float s1, float g) {
    const float kept = s1 * h.beta1;
    return fma_rn(g, h.one_minus_beta1, kept);
}
BNB_D float adam_v(const H& h, float s2, float g) {
    const float kept = s2 * h.beta2;
    return addcmul(kept, g, g, h.one_minus_beta2);
}
BNB_D float adam_direction(const H& h, float s1, float s2) {
    const float denom = sqrtf(s2) + h.eps_c2;
    return s1 / denom;
}
BNB_D float ademamix_step(const H& h, float g, float* m1, float* m2, float* nu) {
    const float k1 = *m1 * h.beta1, k3 = *m2 * h.beta3, k2 = *nu * h.beta2;
    *m1 = fma_rn(g, h.one_minus_beta1, k1);
    *m2 = fma_rn(g, h.one_minus_beta3, k3);
    *nu = addcmul(k2, g, g, h.one_minus_beta2);
    const float corrected = *m1 / h.correction1;
    const float slow = h.alpha * *m2;
    const float mixed = corrected + slow;
    const float root = sqrtf(*nu) / h.correction2;
    const float adaptive = root + h.eps;
    return mixed / adaptive;
}
BNB_D float decayed_grad(const H& h, float g, float p) { return fma_rn(p, h.weight_decay, g); }
BNB_D float momentum_buffer(const H& h, float s1, float gw) {
    if (h.step == 1) return gw;
    const float kept = s1 * h.beta1;
    return kept + gw;
}
BNB_D float rmsprop_state(const H& h, float s1, float gw) {
    const float kept = s1 * h.beta1;
    return addcmul(kept, gw, gw, h.one_minus_beta1);
}
BNB_D float adagrad_state(float s1, float gw) { return addcmul(s1, gw, gw, 1.0f); }
BNB_D float scaled_grad(const H& h, float gw, float s1) {
    const float denom = sqrtf(s1) + h.eps;
    return gw / denom;
}
BNB_D float decoupled_decay(const H& h, float p) { return h.weight_decay > 0.0f ? p * h.decay : p; }

struct OptimData {
    H h;
    int32_t dtype;
    int64_t n;
    void* p;
    const void* g;
    float* state1;
    float* state2;
};

BNB_D float grad_at(const OptimData& d, int64_t i) {
    const float g = load_float(d.g, d.dtype, i);
    return g * d.h.gnorm_scale;
}
BNB_D float param_at(const OptimData& d, int64_t i) { return load_float(d.p, d.dtype, i); }

/* The 32-bit update direction of element i with the NEW states (update_states of ref/optim.c); stores the states
 * when `store`. Returns d² in double. */
struct UpdateTerm {
    OptimData d;
    int store;
    __device__ double operator()(int64_t i) const {
        const H& h = d.h;
        const int decay_grad = h.weight_decay > 0.0f;
        const float g = grad_at(d, i);
        float dir;
        switch (h.kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            const float s1 = adam_m(h, d.state1[i], g), s2 = adam_v(h, d.state2[i], g);
            dir = adam_direction(h, s1, s2);
            if (store) {
                d.state1[i] = s1;
                d.state2[i] = s2;
            }
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            const float gw = decay_grad ? decayed_grad(h, g, param_at(d, i)) : g;
            dir = momentum_buffer(h, d.state1[i], gw);
            if (store) d.state1[i] = dir;
            break;
        }
        case BNB_OPTIM_RMSPROP: {
            const float gw = decay_grad ? decayed_grad(h, g, param_at(d, i)) : g;
            const float s1 = rmsprop_state(h, d.state1[i], gw);
            dir = scaled_grad(h, gw, s1);
            if (store) d.state1[i] = s1;
            break;
        }
        case BNB_OPTIM_ADAGRAD: {
            const float gw = decay_grad ? decayed_grad(h, g, param_at(d, i)) : g;
            dir = scaled_grad(h, gw, adagrad_state(d.state1[i], gw));
            break;
        }
        case BNB_OPTIM_LION: {
            const float kept = d.state1[i] * h.beta1;
            dir = sign_of(fma_rn(g, h.one_minus_beta1, kept));
            break;
        }
        default: {
            float m1 = d.state1[i], m2 = d.state1[d.n + i], nu = d.state2[i];
            dir = ademamix_step(h, g, &m1, &m2, &nu);
            break;
        }
        }
        return (double)dir * (double)dir;
    }
};

/* Σ x² of a f32/f16/bf16 vector (‖p‖² of the trust ratio, ‖g‖² of percentile clipping). */
struct SquareTerm {
    const void* x;
    int32_t dtype;
    __device__ double operator()(int64_t i) const {
        const double v = load_float(x, dtype, i);
        return v * v;
    }
};

/* scalars[0] = update Σd², scalars[1] = param Σp² (when computed); out: factor (float) and unorm (float). */
__global__ void step_factor_kernel(const H h, const double* update_sq, const double* param_sq, float* factor,
                                   float* unorm) {
    const double update_norm = sqrt(*update_sq);
    double scale = 1.0;
    float u = 0.0f;
    if (h.trust_ratio) {
        const double param_norm = h.param_norm >= 0.0f ? (double)h.param_norm : sqrt(*param_sq);
        const double bound = h.max_unorm_wide * param_norm; /* bnb_optim_trust_scale */
        scale = update_norm > bound ? bound / update_norm : 1.0;
        u = (float)update_norm;
    }
    const double lr_term = (h.kind == BNB_OPTIM_ADAM || h.kind == BNB_OPTIM_LAMB) ? h.step_size : -h.lr_wide;
    *factor = (float)(lr_term * scale);
    *unorm = u;
}

__global__ void __launch_bounds__(256) apply_direction_kernel(const OptimData d, const float* factor) {
    const H& h = d.h;
    const float alpha = *factor;
    const int decay_grad = h.weight_decay > 0.0f;
    for (int64_t i = global_thread(); i < d.n; i += grid_threads()) {
        float p = param_at(d, i);
        float dir;
        if (h.kind == BNB_OPTIM_ADAM || h.kind == BNB_OPTIM_LAMB) {
            dir = adam_direction(h, d.state1[i], d.state2[i]);
            p = decoupled_decay(h, p);
        } else if (h.kind == BNB_OPTIM_RMSPROP) {
            const float g = grad_at(d, i);
            const float gw = decay_grad ? decayed_grad(h, g, p) : g;
            dir = scaled_grad(h, gw, d.state1[i]);
        } else {
            dir = d.state1[i];
        }
        store_float(d.p, d.dtype, i, fma_rn(dir, alpha, p));
    }
}

__global__ void __launch_bounds__(256) single_pass_kernel(const OptimData d) {
    const H& h = d.h;
    const int decay_grad = h.weight_decay > 0.0f;
    for (int64_t i = global_thread(); i < d.n; i += grid_threads()) {
        const float g = grad_at(d, i);
        float p = param_at(d, i);
        if (h.kind == BNB_OPTIM_ADEMAMIX) {
            const float dir = ademamix_step(h, g, &d.state1[i], &d.state1[d.n + i], &d.state2[i]);
            p = fma_rn(dir, h.neg_lr, decoupled_decay(h, p));
        } else if (h.kind == BNB_OPTIM_ADAGRAD) {
            const float gw = decay_grad ? decayed_grad(h, g, p) : g;
            d.state1[i] = adagrad_state(d.state1[i], gw);
            p = fma_rn(scaled_grad(h, gw, d.state1[i]), h.neg_lr, p);
        } else { /* lion: the sign uses the state before its update */
            const float kept = d.state1[i] * h.beta1;
            const float u = fma_rn(g, h.one_minus_beta1, kept);
            p = fma_rn(sign_of(u), h.neg_lr, decoupled_decay(h, p));
            const float kept2 = d.state1[i] * h.beta2;
            d.state1[i] = fma_rn(g, h.one_minus_beta2, kept2);
        }
        store_float(d.p, d.dtype, i, p);
    }
}

OptimData optim_data(const bnb_optim_args& a) {
    OptimData d;
    d.h = a.hp;
    d.dtype = a.dtype;
    d.n = a.n;
    d.p = a.p;
    d.g = a.g;
    d.state1 = a.state1;
    d.state2 = a.state2;
    return d;
}

/* ─── 8-bit blockwise ────────────────────────────────────────────────────────────────────────────────────── */

struct Optim8Data {
    OptimData d;
    uint8_t* codes1;
    uint8_t* codes2;
    float* absmax1;
    float* absmax2;
    const float* qmap1;
    const float* qmap2;
    int64_t blocks;
};

/* Dequantized state of one element, its update and requantization: one thread per element, one block per
 * 256-element state block (BNB_OPTIM_BLOCKSIZE). */
__device__ void requantize(float s, int64_t len, const float* mid, int32_t rounding, float* red, uint8_t* codes,
                           float* absmax) {
    const int j = threadIdx.x;
    const float m = j < len ? (s < 0.0f ? -s : s) : 0.0f;
    const float a = block_reduce(m > 0.0f ? m : 0.0f, red, MaxIgnoreNaN());
    const bool short_tail = len < BNB_OPTIM_BLOCKSIZE;
    if (j == 0) *absmax = quantize8_absmax(a, short_tail, rounding);
    if (j < len) codes[j] = quantize8_value(s, a, short_tail, rounding, mid);
}

__global__ void __launch_bounds__(BNB_OPTIM_BLOCKSIZE) optimizer_8bit_kernel(const Optim8Data o) {
    __shared__ float q1[256], q2[256], mid1[255], mid2[255], red[BNB_OPTIM_BLOCKSIZE];
    const OptimData& d = o.d;
    const H& h = d.h;
    const int j = threadIdx.x;
    q1[j] = o.qmap1[j];
    if (o.qmap2 != nullptr) q2[j] = o.qmap2[j];
    __syncthreads();
    if (j < 255) { /* midpoints as bnb_ref_code_midpoints */
        const float sum1 = q1[j] + q1[j + 1];
        mid1[j] = 0.5f * sum1;
        if (o.qmap2 != nullptr) {
            const float sum2 = q2[j] + q2[j + 1];
            mid2[j] = 0.5f * sum2;
        }
    }
    __syncthreads();
    const int64_t b = blockIdx.x, start = b * BNB_OPTIM_BLOCKSIZE;
    const int64_t len = d.n - start < BNB_OPTIM_BLOCKSIZE ? d.n - start : BNB_OPTIM_BLOCKSIZE;
    const int64_t i = start + j;
    const bool active = j < len;
    const bool ademamix = h.kind == BNB_OPTIM_ADEMAMIX;
    float s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    if (active) {
        s1 = q1[o.codes1[i]] * o.absmax1[b];
        if (o.codes2 != nullptr) s2 = q2[o.codes2[i]] * o.absmax2[b];
        if (ademamix) s3 = q1[o.codes1[d.n + i]] * o.absmax1[o.blocks + b];
        const float g = grad_at(d, i);
        float p = param_at(d, i);
        switch (h.kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            s1 = adam_m(h, s1, g);
            s2 = adam_v(h, s2, g);
            const float root = sqrtf(s2) / h.correction2;
            const float denom = root + h.eps;
            const float numer = h.neg_lr_over_c1 * s1;
            p = decoupled_decay(h, p);
            p = p + numer / denom;
            break;
        }
        case BNB_OPTIM_ADEMAMIX: {
            const float dir = ademamix_step(h, g, &s1, &s3, &s2);
            p = fma_rn(dir, h.neg_lr, decoupled_decay(h, p));
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            const float gw = decayed_grad(h, g, p);
            s1 = momentum_buffer(h, s1, gw);
            p = fma_rn(s1, h.neg_lr, p);
            break;
        }
        case BNB_OPTIM_LION: {
            const float kept = s1 * h.beta1;
            const float fresh = g * h.one_minus_beta1;
            const float u = kept + fresh;
            p = fma_rn(sign_of(u), h.neg_lr, decoupled_decay(h, p));
            const float kept2 = s1 * h.beta2;
            s1 = fma_rn(g, h.one_minus_beta2, kept2);
            break;
        }
        default: { /* rmsprop, adagrad */
            const float gw = decayed_grad(h, g, p);
            s1 = h.kind == BNB_OPTIM_RMSPROP ? rmsprop_state(h, s1, gw) : adagrad_state(s1, gw);
            const float numer = h.neg_lr * gw;
            const float denom = sqrtf(s1) + h.eps;
            p = p + numer / denom;
            break;
        }
        }
        store_float(d.p, d.dtype, i, p);
    }
    requantize(s1, len, mid1, h.rounding, red, o.codes1 + start, o.absmax1 + b);
    if (o.codes2 != nullptr) requantize(s2, len, mid2, h.rounding, red, o.codes2 + start, o.absmax2 + b);
    if (ademamix) requantize(s3, len, mid1, h.rounding, red, o.codes1 + d.n + start, o.absmax1 + o.blocks + b);
}

/* ─── percentile clipping (ref/clip.c) ───────────────────────────────────────────────────────────────────── */

BNB_D bool sorts_before(float x, float y) { return x < y || (y != y && x == x); }

__global__ void __launch_bounds__(128) clip_kernel(const double* sq, float* history, int32_t step, int32_t percentile,
                                                   float* results) { /* [scale, current] */
    __shared__ float sorted[BNB_GNORM_HISTORY];
    const int t = threadIdx.x;
    const float norm_sq = (float)*sq;
    const int32_t slot = step % BNB_GNORM_HISTORY;
    if (t < BNB_GNORM_HISTORY && (step == 1 || t == slot)) history[t] += norm_sq;
    __syncthreads();
    if (t < BNB_GNORM_HISTORY) { /* stable rank: the insertion sort's order */
        const float v = history[t];
        int rank = 0;
        for (int j = 0; j < BNB_GNORM_HISTORY; ++j) {
            const float u = history[j];
            if (sorts_before(u, v) || (j < t && !sorts_before(v, u))) ++rank;
        }
        sorted[rank] = v;
    }
    __syncthreads();
    if (t == 0) {
        const float current = sqrtf(history[slot]);
        const float clip = sqrtf(sorted[percentile]);
        results[0] = current > clip ? clip / current : 1.0f;
        results[1] = current;
    }
}

} // namespace

/* ─── slots ──────────────────────────────────────────────────────────────────────────────────────────────── */

/* Scratch layout of the 32-bit steps: reduction partials, Σd², Σp², then two floats. */
struct StepScratch {
    double* partials;
    double* update_sq;
    double* param_sq;
    float* factor;
    float* unorm;
};
static bnb_status step_scratch(const char* op, bnb_context* ctx, StepScratch* s) {
    void* raw = NULL;
    BNB_TRY(bnb_gpu_scratch(op, ctx, (kReduceScratchDoubles + 3) * sizeof(double), &raw));
    double* base = (double*)raw;
    s->partials = base;
    s->update_sq = base + kReduceScratchDoubles;
    s->param_sq = base + kReduceScratchDoubles + 1;
    s->factor = (float*)(base + kReduceScratchDoubles + 2);
    s->unorm = s->factor + 1;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_gpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm) {
    static const char op[] = "optimizer_update_32bit";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_32bit(op, bnb_gpu_validation(context, &vc), params, p, g, state1, state2, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "g", context, a.g, a.dtype, 1, a.n, a.n, 1));
    const H& h = a.hp;
    const OptimData d = optim_data(a);
    const float zero = 0.0f;
    if (h.kind == BNB_OPTIM_ADEMAMIX || h.kind == BNB_OPTIM_ADAGRAD || h.kind == BNB_OPTIM_LION) {
        if (a.n > 0) {
            single_pass_kernel<<<bnb_gpu_grid(context, a.n, 256), 256, 0, context->stream>>>(d);
            BNB_TRY(bnb_gpu_check_launch(op));
        }
        return out_unorm != NULL ? bnb_gpu_write_scalar(op, context, out_unorm, &zero, sizeof zero) : BNB_OK;
    }
    StepScratch s;
    BNB_TRY(step_scratch(op, context, &s));
    if (h.trust_ratio && h.param_norm < 0.0f) /* ‖p‖ before p changes */
        BNB_TRY(sum_double(op, context, SquareTerm{a.p, a.dtype}, a.n, s.partials, s.param_sq));
    BNB_TRY(sum_double(op, context, UpdateTerm{d, 1}, a.n, s.partials, s.update_sq));
    step_factor_kernel<<<1, 1, 0, context->stream>>>(h, s.update_sq, s.param_sq, s.factor, s.unorm);
    BNB_TRY(bnb_gpu_check_launch(op));
    if (a.n > 0) {
        apply_direction_kernel<<<bnb_gpu_grid(context, a.n, 256), 256, 0, context->stream>>>(d, s.factor);
        BNB_TRY(bnb_gpu_check_launch(op));
    }
    return out_unorm != NULL ? bnb_gpu_copy_out(op, context, out_unorm, s.unorm, sizeof(float)) : BNB_OK;
}

bnb_status BNB_CALL bnb_gpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq) {
    static const char op[] = "optimizer_unorm";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_32bit(op, bnb_gpu_validation(context, &vc), params, p, g, state1, state2, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "g", context, a.g, a.dtype, 1, a.n, a.n, 1));
    BNB_TRY(bnb_check_not_null(op, "out_update_sq", out_update_sq));
    BNB_TRY(bnb_check_not_null(op, "out_param_sq", out_param_sq));
    StepScratch s;
    BNB_TRY(step_scratch(op, context, &s));
    BNB_TRY(sum_double(op, context, SquareTerm{a.p, a.dtype}, a.n, s.partials, s.param_sq));
    BNB_TRY(sum_double(op, context, UpdateTerm{optim_data(a), 0}, a.n, s.partials, s.update_sq));
    BNB_TRY(bnb_gpu_copy_out(op, context, out_update_sq, s.update_sq, sizeof(double)));
    return bnb_gpu_copy_out(op, context, out_param_sq, s.param_sq, sizeof(double));
}

bnb_status BNB_CALL bnb_gpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                            bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2) {
    static const char op[] = "optimizer_update_8bit_blockwise";
    BNB_TRY(bnb_gpu_enter(op, context));
    /* the validator checks that both maps are finite and ascending: it reads them from host copies */
    float host_q1[256], host_q2[256];
    bnb_tensor shadow1, shadow2;
    const bnb_tensor *q1 = NULL, *q2 = NULL;
    BNB_TRY(bnb_gpu_host_code_table(op, qmap1, 256, host_q1, &shadow1, &q1));
    BNB_TRY(bnb_gpu_host_code_table(op, qmap2, 256, host_q2, &shadow2, &q2));
    bnb_gpu_validation_context vc;
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_8bit(op, bnb_gpu_validation(context, &vc), params, p, g, state1, state2, absmax1, absmax2,
                                   q1, q2, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "g", context, a.g, a.dtype, 1, a.n, a.n, 1));
    if (a.n == 0) return BNB_OK;
    Optim8Data o;
    o.d = optim_data(a);
    o.codes1 = a.codes1;
    o.codes2 = a.codes2;
    o.absmax1 = a.absmax1;
    o.absmax2 = a.absmax2;
    o.qmap1 = (const float*)qmap1->data; /* device copies for the kernel */
    o.qmap2 = a.codes2 != NULL ? (const float*)qmap2->data : nullptr;
    o.blocks = a.blocks;
    optimizer_8bit_kernel<<<(unsigned)a.blocks, BNB_OPTIM_BLOCKSIZE, 0, context->stream>>>(o);
    return bnb_gpu_check_launch(op);
}

bnb_status BNB_CALL bnb_gpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                int32_t step, int32_t percentile, float* out_gnorm,
                                                float* out_gnorm_scale) {
    static const char op[] = "percentile_clipping";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_clip_args a;
    BNB_TRY(bnb_clip_resolve(op, bnb_gpu_validation(context, &vc), g, gnorm_history, step, percentile, out_gnorm,
                             out_gnorm_scale, &a));
    BNB_TRY(bnb_gpu_check_finite(op, "g", context, a.g, a.dtype, 1, a.n, a.n, 1));
    StepScratch s;
    BNB_TRY(step_scratch(op, context, &s));
    BNB_TRY(sum_double(op, context, SquareTerm{a.g, a.dtype}, a.n, s.partials, s.update_sq));
    clip_kernel<<<1, 128, 0, context->stream>>>(s.update_sq, a.history, a.step, a.percentile, s.factor);
    BNB_TRY(bnb_gpu_check_launch(op));
    BNB_TRY(bnb_gpu_copy_out(op, context, a.out_gnorm_scale, s.factor, sizeof(float)));
    return a.out_gnorm != NULL ? bnb_gpu_copy_out(op, context, a.out_gnorm, s.unorm, sizeof(float)) : BNB_OK;
}
