/*
 * Optimizer steps — argument resolution and the scalar reference (spec §3.3–§3.5, §3.9).
 *
 * We implement bitsandbytes' CPU backend (backends/cpu/ops.py: _optimizer_update_32bit_cpu and
 * _optimizer_update_8bit_blockwise_cpu), which is torch float32 arithmetic. Notation: g = f32(grad · gnorm_scale),
 * c1 = 1 - β1^t, c2 = sqrt(1 - β2^t) (double, as Python), fma(a, b, c) = one rounding (torch's add(x, alpha=a)
 * is fma(x, a, self)), every other operation one float32 rounding, Python scalars rounded to float32 where torch
 * meets a tensor.
 *
 *   kind         32-bit                                                  8-bit (state dequantized, then requantized)
 *   adam/lamb    s1 = fma(g, 1-β1, s1·β1); s2 = s2·β2 + (1-β2)·g·g        same moments
 *                p ·= 1 - ηλ (decoupled decay BEFORE the step)            p ·= 1 - ηλ
 *                upd = s1 / (√s2 + ε·c2)                                  p += (-η/c1)·s1 / (√s2/c2 + ε)
 *                p = fma(upd, -η·c2/c1·us, p)                             (no trust ratio; LAMB = Adam)
 *   ademamix     m1 = fma(g, 1-β1, m1·β1); m2 = fma(g, 1-β3, m2·β3); ν = ν·β2 + (1-β2)·g·g; p ·= 1 - ηλ;
 *                p = fma((m1/c1 + α·m2) / (√ν/c2 + ε), -η, p)            (both widths; m2 not bias-corrected)
 *   momentum/    gw = fma(p, λ, g) (coupled decay; 32-bit only if λ > 0)  same (always)
 *   lars         s1 = gw at t == 1, else s1·β1 + gw; p = fma(s1, -η·us, p)  (no trust ratio; LARS = momentum)
 *   rmsprop      gw as momentum; s1 = s1·β1 + (1-β1)·gw·gw               same
 *                p = fma(gw / (√s1 + ε), -η·us, p)                        p += (-η·gw) / (√s1 + ε)
 *   adagrad      gw as momentum; s1 = s1 + gw·gw                         same
 *                p = fma(gw / (√s1 + ε), -η, p)                           p += (-η·gw) / (√s1 + ε)
 *   lion         p ·= 1 - ηλ; u = fma(g, 1-β1, s1·β1) (8-bit: s1·β1 + g·(1-β1)); p = fma(sign(u), -η, p);
 *                s1 = fma(g, 1-β2, s1·β2)
 * `x + v·a·b` (torch addcmul) is evaluated as fma(v·a, b, x): torch's vectorised CPU kernel is contracted by the
 * compiler into one FMA (this matches the golden trajectories more closely than two roundings).
 * Trust ratio (32-bit adam, lamb, momentum, lars, rmsprop when max_unorm > 0): us = max_unorm·‖p‖/‖upd‖ if
 * ‖upd‖ > max_unorm·‖p‖ else 1, with upd the actual update direction above (the new momentum buffer for lars) and
 * ‖p‖ = params->param_norm, or the norm of p before the step when param_norm < 0. out_unorm receives ‖upd‖.
 * Norms are summed in double. Params are read as float and written back in their dtype with RNE.
 *
 * Where this differs from bitsandbytes' CUDA kernels (deliberately — the CPU backend is our reference):
 *   * Adam/AdEMAMix/Lion decoupled decay is applied before the step (CUDA: after it for Adam/AdEMAMix).
 *   * No NaN/Inf gradient guard (CUDA 8-bit 2-state resets the state element); instead, under the context's
 *     BNB_NONFINITE_ERROR policy a non-finite gradient fails the call, naming its index.
 *   * skip_zeros is ignored (CUDA honours it in several kernels).
 *   * 8-bit: no sign fix of state1 codes, requantization with params->rounding (BNB_ROUND_BNB_CPU_LUT reproduces
 *     bitsandbytes' CPU library), RMSprop/Adagrad use the decayed gradient in the parameter update, LAMB/LARS run
 *     without trust ratio (CUDA has no 8-bit LAMB/LARS at all), and the AdEMAMix second EMA uses its own absmax
 *     row absmax1[blocks + b] (CUDA indexes (n + i)/256, which collides when n % 256 != 0).
 *   * The trust ratio uses the CPU definition above (CUDA: a fully bias-corrected Adam step, and a + ε variant
 *     for 1-state kinds).
 */
#include "../bnb_optim.h"
#include "../bnb_quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__clang__)
/* every float operation rounds on its own unless an fmaf is written out (torch's arithmetic) */
#pragma STDC FP_CONTRACT OFF
#endif

#define F32_BIT BNB_DTYPE_BIT(BNB_DTYPE_F32)
#define U8_BIT BNB_DTYPE_BIT(BNB_DTYPE_U8)

static const char* const kind_names[BNB_OPTIM_COUNT] = {"adam",    "momentum", "rmsprop", "adagrad",
                                                        "lion",    "lamb",     "lars",    "ademamix"};

int bnb_optim_is_two_state(int32_t kind) {
    return kind == BNB_OPTIM_ADAM || kind == BNB_OPTIM_LAMB || kind == BNB_OPTIM_ADEMAMIX;
}

/* ─── validation ─────────────────────────────────────────────────────────────────────────────────────────── */

/* A hyper-parameter the kind uses: finite, >= 0 and (when below_one) < 1. */
static bnb_status check_hparam(const char* op, const char* name, double v, int32_t kind, int below_one) {
    if (!isfinite(v) || v < 0.0 || (below_one && v >= 1.0))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.%s = %g is not %s for %s", name, v,
                        below_one ? "in [0, 1)" : "finite and >= 0", kind_names[kind]);
    return BNB_OK;
}

bnb_status bnb_optim_resolve_hparams(const char* op, const bnb_optimizer_params* params, int eight_bit,
                                     bnb_optim_hparams* out) {
    BNB_TRY(bnb_check_not_null(op, "params", params));
    if (params->struct_size < sizeof(bnb_optimizer_params))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)params->struct_size, (unsigned)sizeof(bnb_optimizer_params));
    const int32_t kind = params->kind;
    if (kind < 0 || kind >= BNB_OPTIM_COUNT)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.kind = %d is not a BNB_OPTIM_* value (0…%d)",
                        (int)kind, BNB_OPTIM_COUNT - 1);
    if (params->reserved != 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.reserved = %d must be 0", (int)params->reserved);
    if (params->step < 1)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.step = %d must be >= 1 (1-based, incremented before "
                        "each update)", (int)params->step);
    const int bias_corrected = bnb_optim_is_two_state(kind);
    const int trust_kind = !eight_bit && (kind == BNB_OPTIM_ADAM || kind == BNB_OPTIM_LAMB ||
                                          kind == BNB_OPTIM_MOMENTUM || kind == BNB_OPTIM_LARS ||
                                          kind == BNB_OPTIM_RMSPROP);
    BNB_TRY(check_hparam(op, "lr", params->lr, kind, 0));
    BNB_TRY(check_hparam(op, "weight_decay", params->weight_decay, kind, 0));
    BNB_TRY(check_hparam(op, "gnorm_scale", params->gnorm_scale, kind, 0));
    if (kind != BNB_OPTIM_ADAGRAD) BNB_TRY(check_hparam(op, "beta1", params->beta1, kind, bias_corrected));
    if (bias_corrected || kind == BNB_OPTIM_LION)
        BNB_TRY(check_hparam(op, "beta2", params->beta2, kind, bias_corrected));
    if (kind == BNB_OPTIM_ADEMAMIX) {
        BNB_TRY(check_hparam(op, "beta3", params->beta3, kind, 0));
        BNB_TRY(check_hparam(op, "alpha", params->alpha, kind, 0));
    }
    if (kind != BNB_OPTIM_MOMENTUM && kind != BNB_OPTIM_LARS && kind != BNB_OPTIM_LION)
        BNB_TRY(check_hparam(op, "eps", params->eps, kind, 0));
    if (trust_kind) {
        BNB_TRY(check_hparam(op, "max_unorm", params->max_unorm, kind, 0));
        if (!isfinite(params->param_norm))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "params.param_norm = %g is not finite (< 0 = computed)",
                            (double)params->param_norm);
    }
    if (eight_bit) {
        BNB_TRY(bnb_check_rounding(op, params->rounding));
    }

    bnb_optim_hparams h = {0};
    h.kind = kind;
    h.step = params->step;
    h.rounding = params->rounding;
    h.trust_ratio = trust_kind && params->max_unorm > 0.0;
    h.lr = (float)params->lr;
    h.beta1 = (float)params->beta1;
    h.beta2 = (float)params->beta2;
    h.beta3 = (float)params->beta3;
    h.alpha = (float)params->alpha;
    h.eps = (float)params->eps;
    h.weight_decay = (float)params->weight_decay;
    h.gnorm_scale = (float)params->gnorm_scale;
    h.max_unorm = (float)params->max_unorm;
    h.param_norm = (float)params->param_norm;
    const double lr = params->lr, wd = params->weight_decay;
    const double beta1 = params->beta1, beta2 = params->beta2;
    h.one_minus_beta1 = (float)(1.0 - beta1);
    h.one_minus_beta2 = (float)(1.0 - beta2);
    h.one_minus_beta3 = (float)(1.0 - params->beta3);
    h.neg_lr = (float)-lr;
    h.lr_wide = lr;
    h.max_unorm_wide = params->max_unorm;
    h.decay = (float)(1.0 - lr * wd);
    if (bias_corrected) {
        const double c1 = 1.0 - pow(beta1, (double)h.step);
        const double c2 = sqrt(1.0 - pow(beta2, (double)h.step));
        h.correction1 = (float)c1;
        h.correction2 = (float)c2;
        h.step_size = -lr * c2 / c1;
        h.eps_c2 = (float)(params->eps * c2);
        h.neg_lr_over_c1 = (float)(-lr / c1);
    }
    *out = h;
    return BNB_OK;
}

/* p and g: same float dtype, same element count. */
static bnb_status resolve_p_g(const char* op, const bnb_tensor* p, const bnb_tensor* g, bnb_optim_args* a) {
    int64_t np = 0, ng = 0;
    BNB_TRY(bnb_check_output(op, "p", p, BNB_FLOAT_DTYPES, 0, &np));
    BNB_TRY(bnb_check_input(op, "g", g, BNB_FLOAT_DTYPES, 0, &ng));
    if (g->dtype != p->dtype)
        return bnb_fail(BNB_ERR_UNSUPPORTED_DTYPE, op, "g.dtype = %s differs from p.dtype = %s", bnb_dtype_name(g->dtype),
                        bnb_dtype_name(p->dtype));
    if (ng != np)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "p has %lld elements but g has %lld", (long long)np,
                        (long long)ng);
    a->dtype = p->dtype;
    a->n = np;
    a->p = p->data;
    a->g = g->data;
    return BNB_OK;
}

/* A state tensor of `rows` x n elements (rows 2 = AdEMAMix's [2, n]); a 2-D or higher view must lead with rows. */
static bnb_status check_state(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask, int64_t n,
                              int64_t rows, const char* kind) {
    int64_t numel = 0;
    BNB_TRY(bnb_check_input(op, arg, t, dtype_mask, 0, &numel));
    if (numel != rows * n || (rows > 1 && t->ndim >= 2 && t->shape[0] != rows))
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "%s has %lld elements (ndim %d); %s with p of %lld elements needs "
                        "%s%lld%s", arg, (long long)numel, (int)t->ndim, kind, (long long)n, rows > 1 ? "[2, " : "",
                        (long long)n, rows > 1 ? "]" : "");
    return BNB_OK;
}

/* Absmax of `rows` x blocks scales: at least rows·blocks elements; a 2-D view must be exactly [rows, blocks]. */
static bnb_status check_absmax(const char* op, const char* arg, const bnb_tensor* t, int64_t blocks, int64_t rows) {
    BNB_TRY(bnb_check_input(op, arg, t, F32_BIT, rows * blocks, NULL));
    if (rows > 1 && t->ndim == 2 && (t->shape[0] != rows || t->shape[1] != blocks))
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "%s is [%lld, %lld], expected [%lld, %lld] (ceil(n / 256) = %lld)",
                        arg, (long long)t->shape[0], (long long)t->shape[1], (long long)rows, (long long)blocks,
                        (long long)blocks);
    return BNB_OK;
}

static bnb_status check_gradient_finite(const char* op, bnb_context* context, const bnb_optim_args* a) {
    const bnb_context_common* ctx = NULL;
    BNB_TRY(bnb_check_context(op, context, &ctx));
    return bnb_check_finite(op, "g", ctx, a->g, a->dtype, a->n);
}

bnb_status bnb_optim_resolve_32bit(const char* op, bnb_context* context, const bnb_optimizer_params* params,
                                   const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                   const bnb_tensor* state2, bnb_optim_args* out) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    bnb_optim_args a = {0};
    BNB_TRY(bnb_optim_resolve_hparams(op, params, 0, &a.hp));
    BNB_TRY(resolve_p_g(op, p, g, &a));
    const char* kind = kind_names[a.hp.kind];
    const int64_t rows1 = a.hp.kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
    BNB_TRY(check_state(op, "state1", state1, F32_BIT, a.n, rows1, kind));
    a.state1 = (float*)state1->data;
    if (bnb_optim_is_two_state(a.hp.kind)) {
        if (state2 == NULL)
            return bnb_fail(BNB_ERR_NULL_POINTER, op, "state2 is NULL but %s keeps two states", kind);
        BNB_TRY(check_state(op, "state2", state2, F32_BIT, a.n, 1, kind));
        a.state2 = (float*)state2->data;
    }
    BNB_TRY(check_gradient_finite(op, context, &a));
    *out = a;
    return BNB_OK;
}

bnb_status bnb_optim_resolve_8bit(const char* op, bnb_context* context, const bnb_optimizer_params* params,
                                  const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                  const bnb_tensor* state2, const bnb_tensor* absmax1, const bnb_tensor* absmax2,
                                  const bnb_tensor* qmap1, const bnb_tensor* qmap2, bnb_optim_args* out) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    bnb_optim_args a = {0};
    BNB_TRY(bnb_optim_resolve_hparams(op, params, 1, &a.hp));
    BNB_TRY(resolve_p_g(op, p, g, &a));
    const char* kind = kind_names[a.hp.kind];
    const int64_t rows1 = a.hp.kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
    a.blocks = bnb_ceil_div(a.n, BNB_OPTIM_BLOCKSIZE);
    BNB_TRY(check_state(op, "state1", state1, U8_BIT, a.n, rows1, kind));
    BNB_TRY(check_absmax(op, "absmax1", absmax1, a.blocks, rows1));
    BNB_TRY(bnb_check_code_table(op, "qmap1", qmap1, 256, 1, &a.qmap1));
    a.codes1 = (uint8_t*)state1->data;
    a.absmax1 = (float*)absmax1->data;
    if (bnb_optim_is_two_state(a.hp.kind)) {
        if (state2 == NULL || absmax2 == NULL || qmap2 == NULL)
            return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s is NULL but %s keeps two states",
                            state2 == NULL ? "state2" : absmax2 == NULL ? "absmax2" : "qmap2", kind);
        BNB_TRY(check_state(op, "state2", state2, U8_BIT, a.n, 1, kind));
        BNB_TRY(check_absmax(op, "absmax2", absmax2, a.blocks, 1));
        BNB_TRY(bnb_check_code_table(op, "qmap2", qmap2, 256, 1, &a.qmap2));
        a.codes2 = (uint8_t*)state2->data;
        a.absmax2 = (float*)absmax2->data;
    }
    BNB_TRY(check_gradient_finite(op, context, &a));
    *out = a;
    return BNB_OK;
}

double bnb_optim_trust_scale(double max_unorm, double param_norm, double update_norm) {
    const double bound = max_unorm * param_norm;
    return update_norm > bound ? bound / update_norm : 1.0;
}

/* ─── element formulas ───────────────────────────────────────────────────────────────────────────────────── */

/* torch addcmul: self + value·a·b, contracted into one fma by torch's compiled CPU kernel. */
static float addcmul(float self, float a, float b, float value) {
    const float va = value * a;
    return bnb_fmaf(va, b, self);
}

/* torch.sign: -1, 0 or 1 (NaN stays NaN). */
static float sign_of(float v) { return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v; }

static float grad_at(const bnb_optim_args* a, int64_t i) {
    const float g = bnb_load_float(a->g, a->dtype, i);
    return g * a->hp.gnorm_scale;
}

static float param_at(const bnb_optim_args* a, int64_t i) { return bnb_load_float(a->p, a->dtype, i); }

/* Adam's first and second moment updates (both widths). */
static float adam_m(const bnb_optim_hparams* h, float s1, float g) {
    const float kept = s1 * h->beta1;
    return bnb_fmaf(g, h->one_minus_beta1, kept);
}
static float adam_v(const bnb_optim_hparams* h, float s2, float g) {
    const float kept = s2 * h->beta2;
    return addcmul(kept, g, g, h->one_minus_beta2);
}
/* 32-bit Adam/LAMB direction. */
static float adam_direction(const bnb_optim_hparams* h, float s1, float s2) {
    const float denom = sqrtf(s2) + h->eps_c2;
    return s1 / denom;
}

/* AdEMAMix: updates m1, m2, nu and returns the direction (m1/c1 + α·m2) / (√ν/c2 + ε). */
static float ademamix_step(const bnb_optim_hparams* h, float g, float* m1, float* m2, float* nu) {
    const float k1 = *m1 * h->beta1, k3 = *m2 * h->beta3, k2 = *nu * h->beta2;
    *m1 = bnb_fmaf(g, h->one_minus_beta1, k1);
    *m2 = bnb_fmaf(g, h->one_minus_beta3, k3);
    *nu = addcmul(k2, g, g, h->one_minus_beta2);
    const float corrected = *m1 / h->correction1;
    const float slow = h->alpha * *m2;
    const float mixed = corrected + slow;
    const float root = sqrtf(*nu) / h->correction2;
    const float adaptive = root + h->eps;
    return mixed / adaptive;
}

/* Coupled weight decay g + λ·p (torch g.add(p, alpha=λ) = one fma). */
static float decayed_grad(const bnb_optim_hparams* h, float g, float p) { return bnb_fmaf(p, h->weight_decay, g); }

static float momentum_buffer(const bnb_optim_hparams* h, float s1, float gw) {
    if (h->step == 1) return gw;
    const float kept = s1 * h->beta1;
    return kept + gw;
}

static float rmsprop_state(const bnb_optim_hparams* h, float s1, float gw) {
    const float kept = s1 * h->beta1;
    return addcmul(kept, gw, gw, h->one_minus_beta1);
}

static float adagrad_state(float s1, float gw) { return addcmul(s1, gw, gw, 1.0f); }

/* gw / (√s + ε): RMSprop/Adagrad 32-bit direction. */
static float scaled_grad(const bnb_optim_hparams* h, float gw, float s1) {
    const float denom = sqrtf(s1) + h->eps;
    return gw / denom;
}

/* p · (1 - ηλ) when λ > 0 (decoupled decay of adam, lamb, ademamix, lion). */
static float decoupled_decay(const bnb_optim_hparams* h, float p) {
    return h->weight_decay > 0.0f ? p * h->decay : p;
}

/* ─── 32-bit ─────────────────────────────────────────────────────────────────────────────────────────────── */

static double param_norm_of(const bnb_optim_args* a) {
    if (a->hp.param_norm >= 0.0f) return a->hp.param_norm;
    double sq = 0.0;
    for (int64_t i = 0; i < a->n; ++i) {
        const double v = param_at(a, i);
        sq += v * v;
    }
    return sqrt(sq);
}

/* Σ upd² (upd as the kinds' 32-bit direction with the NEW states) and, when store != 0, the states written. Used
 * by the trust-ratio kinds' first pass and by optimizer_unorm (store = 0). */
static double update_states(const bnb_optim_args* a, int store) {
    const bnb_optim_hparams* h = &a->hp;
    const int64_t n = a->n;
    const int decay_grad = h->weight_decay > 0.0f;
    double sq = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad_at(a, i);
        float d = 0.0f;
        switch (h->kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            const float s1 = adam_m(h, a->state1[i], g), s2 = adam_v(h, a->state2[i], g);
            d = adam_direction(h, s1, s2);
            if (store) {
                a->state1[i] = s1;
                a->state2[i] = s2;
            }
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            const float gw = decay_grad ? decayed_grad(h, g, param_at(a, i)) : g;
            d = momentum_buffer(h, a->state1[i], gw);
            if (store) a->state1[i] = d;
            break;
        }
        case BNB_OPTIM_RMSPROP: {
            const float gw = decay_grad ? decayed_grad(h, g, param_at(a, i)) : g;
            const float s1 = rmsprop_state(h, a->state1[i], gw);
            d = scaled_grad(h, gw, s1);
            if (store) a->state1[i] = s1;
            break;
        }
        case BNB_OPTIM_ADAGRAD: { /* only reached from optimizer_unorm */
            const float gw = decay_grad ? decayed_grad(h, g, param_at(a, i)) : g;
            d = scaled_grad(h, gw, adagrad_state(a->state1[i], gw));
            break;
        }
        case BNB_OPTIM_LION: { /* only reached from optimizer_unorm */
            const float kept = a->state1[i] * h->beta1;
            d = sign_of(bnb_fmaf(g, h->one_minus_beta1, kept));
            break;
        }
        default: { /* AdEMAMix, only reached from optimizer_unorm */
            float m1 = a->state1[i], m2 = a->state1[n + i], nu = a->state2[i];
            d = ademamix_step(h, g, &m1, &m2, &nu);
            break;
        }
        }
        sq += (double)d * (double)d;
    }
    return sq;
}

/* Second pass of the trust-ratio kinds: p += alpha·direction, with the states already updated. */
static void apply_direction(const bnb_optim_args* a, float alpha) {
    const bnb_optim_hparams* h = &a->hp;
    const int decay_grad = h->weight_decay > 0.0f;
    for (int64_t i = 0; i < a->n; ++i) {
        float p = param_at(a, i);
        float d;
        switch (h->kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB:
            d = adam_direction(h, a->state1[i], a->state2[i]);
            p = decoupled_decay(h, p);
            break;
        case BNB_OPTIM_RMSPROP: {
            const float g = grad_at(a, i);
            const float gw = decay_grad ? decayed_grad(h, g, p) : g;
            d = scaled_grad(h, gw, a->state1[i]);
            break;
        }
        default: /* momentum, lars */
            d = a->state1[i];
            break;
        }
        bnb_store_float(a->p, a->dtype, i, bnb_fmaf(d, alpha, p));
    }
}

/* Kinds without a trust ratio: one pass, state and parameter together. */
static void update_single_pass(const bnb_optim_args* a) {
    const bnb_optim_hparams* h = &a->hp;
    const int64_t n = a->n;
    const int decay_grad = h->weight_decay > 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad_at(a, i);
        float p = param_at(a, i);
        switch (h->kind) {
        case BNB_OPTIM_ADEMAMIX: {
            const float d = ademamix_step(h, g, &a->state1[i], &a->state1[n + i], &a->state2[i]);
            p = bnb_fmaf(d, h->neg_lr, decoupled_decay(h, p));
            break;
        }
        case BNB_OPTIM_ADAGRAD: {
            const float gw = decay_grad ? decayed_grad(h, g, p) : g;
            a->state1[i] = adagrad_state(a->state1[i], gw);
            p = bnb_fmaf(scaled_grad(h, gw, a->state1[i]), h->neg_lr, p);
            break;
        }
        default: { /* lion: the sign uses the state before its update */
            const float kept = a->state1[i] * h->beta1;
            const float u = bnb_fmaf(g, h->one_minus_beta1, kept);
            p = bnb_fmaf(sign_of(u), h->neg_lr, decoupled_decay(h, p));
            const float kept2 = a->state1[i] * h->beta2;
            a->state1[i] = bnb_fmaf(g, h->one_minus_beta2, kept2);
            break;
        }
        }
        bnb_store_float(a->p, a->dtype, i, p);
    }
}

bnb_status BNB_CALL bnb_ref_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm) {
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_32bit("optimizer_update_32bit", context, params, p, g, state1, state2, &a));
    const bnb_optim_hparams* h = &a.hp;
    float unorm = 0.0f;
    if (h->kind == BNB_OPTIM_ADEMAMIX || h->kind == BNB_OPTIM_ADAGRAD || h->kind == BNB_OPTIM_LION) {
        update_single_pass(&a);
    } else {
        const double param_norm = h->trust_ratio ? param_norm_of(&a) : 0.0; /* before p changes */
        const double update_norm = sqrt(update_states(&a, 1));
        double scale = 1.0;
        if (h->trust_ratio) {
            scale = bnb_optim_trust_scale(h->max_unorm_wide, param_norm, update_norm);
            unorm = (float)update_norm;
        }
        const double lr_term = (h->kind == BNB_OPTIM_ADAM || h->kind == BNB_OPTIM_LAMB) ? h->step_size
                                                                                          : -h->lr_wide;
        apply_direction(&a, (float)(lr_term * scale));
    }
    if (out_unorm != NULL) *out_unorm = unorm;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq) {
    static const char op[] = "optimizer_unorm";
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_32bit(op, context, params, p, g, state1, state2, &a));
    BNB_TRY(bnb_check_not_null(op, "out_update_sq", out_update_sq));
    BNB_TRY(bnb_check_not_null(op, "out_param_sq", out_param_sq));
    double param_sq = 0.0;
    for (int64_t i = 0; i < a.n; ++i) {
        const double v = param_at(&a, i);
        param_sq += v * v;
    }
    *out_update_sq = update_states(&a, 0);
    *out_param_sq = param_sq;
    return BNB_OK;
}

/* ─── 8-bit blockwise ────────────────────────────────────────────────────────────────────────────────────── */

/* One block of `len` elements starting at `start`: s1/s2/s3 hold the dequantized states and are updated in place;
 * p is written. Formulas of _optimizer_update_8bit_blockwise_cpu. */
static void update_block_8bit(const bnb_optim_args* a, int64_t start, int64_t len, float* s1, float* s2, float* s3) {
    const bnb_optim_hparams* h = &a->hp;
    for (int64_t j = 0; j < len; ++j) {
        const int64_t i = start + j;
        const float g = grad_at(a, i);
        float p = param_at(a, i);
        switch (h->kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            s1[j] = adam_m(h, s1[j], g);
            s2[j] = adam_v(h, s2[j], g);
            const float root = sqrtf(s2[j]) / h->correction2;
            const float denom = root + h->eps;
            const float numer = h->neg_lr_over_c1 * s1[j];
            p = decoupled_decay(h, p);
            p = p + numer / denom;
            break;
        }
        case BNB_OPTIM_ADEMAMIX: {
            const float d = ademamix_step(h, g, &s1[j], &s3[j], &s2[j]);
            p = bnb_fmaf(d, h->neg_lr, decoupled_decay(h, p));
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            const float gw = decayed_grad(h, g, p);
            s1[j] = momentum_buffer(h, s1[j], gw);
            p = bnb_fmaf(s1[j], h->neg_lr, p);
            break;
        }
        case BNB_OPTIM_LION: {
            const float kept = s1[j] * h->beta1;
            const float fresh = g * h->one_minus_beta1;
            const float u = kept + fresh;
            p = bnb_fmaf(sign_of(u), h->neg_lr, decoupled_decay(h, p));
            const float kept2 = s1[j] * h->beta2;
            s1[j] = bnb_fmaf(g, h->one_minus_beta2, kept2);
            break;
        }
        default: { /* rmsprop, adagrad */
            const float gw = decayed_grad(h, g, p);
            s1[j] = h->kind == BNB_OPTIM_RMSPROP ? rmsprop_state(h, s1[j], gw) : adagrad_state(s1[j], gw);
            const float numer = h->neg_lr * gw;
            const float denom = sqrtf(s1[j]) + h->eps;
            p = p + numer / denom;
            break;
        }
        }
        bnb_store_float(a->p, a->dtype, i, p);
    }
}

bnb_status BNB_CALL bnb_ref_optimizer_update_8bit_blockwise(bnb_context* context,
                                                            const bnb_optimizer_params* params, bnb_tensor* p,
                                                            const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2) {
    bnb_optim_args a;
    BNB_TRY(bnb_optim_resolve_8bit("optimizer_update_8bit_blockwise", context, params, p, g, state1, state2, absmax1,
                                   absmax2, qmap1, qmap2, &a));
    const int64_t bs = BNB_OPTIM_BLOCKSIZE;
    const int ademamix = a.hp.kind == BNB_OPTIM_ADEMAMIX;
    float s1[BNB_OPTIM_BLOCKSIZE], s2[BNB_OPTIM_BLOCKSIZE], s3[BNB_OPTIM_BLOCKSIZE];
    /* Blocks are independent (each owns its 256 elements and its absmax entries): dequantize, update, requantize. */
    for (int64_t b = 0; b < a.blocks; ++b) {
        const int64_t start = b * bs;
        const int64_t len = a.n - start < bs ? a.n - start : bs;
        bnb_ref_dequantize_blockwise_f32(a.codes1 + start, a.absmax1 + b, len, a.qmap1, bs, s1);
        if (a.codes2) bnb_ref_dequantize_blockwise_f32(a.codes2 + start, a.absmax2 + b, len, a.qmap2, bs, s2);
        if (ademamix)
            bnb_ref_dequantize_blockwise_f32(a.codes1 + a.n + start, a.absmax1 + a.blocks + b, len, a.qmap1, bs, s3);
        update_block_8bit(&a, start, len, s1, s2, s3);
        /* `len` < 256 marks the tail block for the requantizer, exactly as a whole-tensor call would */
        bnb_ref_requantize_blockwise_f32(s1, len, a.qmap1, bs, a.hp.rounding, a.codes1 + start, a.absmax1 + b);
        if (a.codes2)
            bnb_ref_requantize_blockwise_f32(s2, len, a.qmap2, bs, a.hp.rounding, a.codes2 + start, a.absmax2 + b);
        if (ademamix)
            bnb_ref_requantize_blockwise_f32(s3, len, a.qmap1, bs, a.hp.rounding, a.codes1 + a.n + start,
                                             a.absmax1 + a.blocks + b);
    }
    return BNB_OK;
}
