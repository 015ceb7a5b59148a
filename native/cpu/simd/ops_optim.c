/* Optimizer slots of the SIMD CPU variants (spec §3): 32-bit and 8-bit blockwise updates, optimizer_unorm,
 * percentile_clipping.
 *
 * Exactness. Every element-wise result (parameters, 32-bit states, 8-bit codes and absmax) is bit-identical to the
 * reference (native/common/ref/optim.c): the kernels below repeat its float operations in its order through
 * optim_vec.h (vector FMA where the reference writes fmaf, separate roundings everywhere else).
 * The reductions — ‖p‖², ‖update‖² of the trust-ratio kinds and optimizer_unorm, ‖g‖² of percentile_clipping — are
 * summed in double over a fixed partition of [0, n) into chunks (chunk_of(n), independent of the thread count),
 * per chunk in VW lane accumulators folded in lane order, then the chunk sums in chunk order. The result is
 * therefore identical for every thread count; it differs from the reference's serial double sum only by double
 * rounding (relative ~1e-16·√n), which can move a trust ratio — and through it a parameter — by one float ulp.
 *
 * Work split: chunks of whole 256-element blocks, one task each, over context->pool. 8-bit steps are fused: per
 * block, dequantize the states into registers/L1, update, requantize, one pass over memory.
 */
#include "bnb_optim.h"
#include "bnb_quant.h"
#include "cpu_ops.h"
#include "optim_vec.h"
#include "quant_vec.h"

#include <math.h>
#include <stdlib.h>

/* ─── chunking ───────────────────────────────────────────────────────────────────────────────────────────── */

#define OPT_MAX_CHUNKS 1024
#define OPT_MIN_CHUNK 16384 /* elements; a multiple of BNB_OPTIM_BLOCKSIZE */

/* Chunk length for n elements: a multiple of 256 and at most OPT_MAX_CHUNKS chunks. Depends on n only. */
static int64_t chunk_of(int64_t n) {
    int64_t c = OPT_MIN_CHUNK;
    if (bnb_ceil_div(n, c) > OPT_MAX_CHUNKS) c = bnb_ceil_div(bnb_ceil_div(n, OPT_MAX_CHUNKS), 256) * 256;
    return c;
}

/* Lane-wise double sum of squares, folded in lane order by sum_lanes. */
typedef struct { double l[VW]; } dsum;
static inline void dsum_add_sq(dsum* s, vf v, int count) {
    float t[VW];
    vf_store(t, v);
    for (int j = 0; j < count; ++j) s->l[j] += (double)t[j] * (double)t[j];
}
static inline double dsum_fold(const dsum* s) {
    double r = 0.0;
    for (int j = 0; j < VW; ++j) r += s->l[j];
    return r;
}

/* ─── element formulas (vector forms of ref/optim.c) ─────────────────────────────────────────────────────── */

typedef struct {
    vf beta1, beta2, beta3, omb1, omb2, omb3, alpha, eps, eps_c2, wd, gscale, c1, c2, neg_lr, neg_lr_c1, decay, one,
        zero, minus_one;
} hv;

static void hv_init(hv* v, const bnb_optim_hparams* h) {
    v->beta1 = vf_set1(h->beta1);
    v->beta2 = vf_set1(h->beta2);
    v->beta3 = vf_set1(h->beta3);
    v->omb1 = vf_set1(h->one_minus_beta1);
    v->omb2 = vf_set1(h->one_minus_beta2);
    v->omb3 = vf_set1(h->one_minus_beta3);
    v->alpha = vf_set1(h->alpha);
    v->eps = vf_set1(h->eps);
    v->eps_c2 = vf_set1(h->eps_c2);
    v->wd = vf_set1(h->weight_decay);
    v->gscale = vf_set1(h->gnorm_scale);
    v->c1 = vf_set1(h->correction1);
    v->c2 = vf_set1(h->correction2);
    v->neg_lr = vf_set1(h->neg_lr);
    v->neg_lr_c1 = vf_set1(h->neg_lr_over_c1);
    v->decay = vf_set1(h->decay);
    v->one = vf_set1(1.0f);
    v->zero = vf_set1(0.0f);
    v->minus_one = vf_set1(-1.0f);
}

/* addcmul(self, a, b, value) = fma(value·a, b, self) */
static inline vf v_addcmul(vf self, vf a, vf b, vf value) { return vf_fma(vf_mul(value, a), b, self); }
/* torch.sign: ±1, and the input itself for ±0 and NaN */
static inline vf v_sign(const hv* c, vf u) {
    return vf_sel(vf_gt(u, c->zero), c->one, vf_sel(vf_lt(u, c->zero), c->minus_one, u));
}
static inline vf v_decoupled(const hv* c, const bnb_optim_hparams* h, vf p) {
    return h->weight_decay > 0.0f ? vf_mul(p, c->decay) : p;
}
static inline vf v_adam_m(const hv* c, vf s1, vf g) { return vf_fma(g, c->omb1, vf_mul(s1, c->beta1)); }
static inline vf v_adam_v(const hv* c, vf s2, vf g) { return v_addcmul(vf_mul(s2, c->beta2), g, g, c->omb2); }
static inline vf v_ademamix(const hv* c, vf g, vf* m1, vf* m2, vf* nu) {
    const vf k1 = vf_mul(*m1, c->beta1), k3 = vf_mul(*m2, c->beta3), k2 = vf_mul(*nu, c->beta2);
    *m1 = vf_fma(g, c->omb1, k1);
    *m2 = vf_fma(g, c->omb3, k3);
    *nu = v_addcmul(k2, g, g, c->omb2);
    const vf corrected = vf_div(*m1, c->c1);
    const vf slow = vf_mul(c->alpha, *m2);
    const vf mixed = vf_add(corrected, slow);
    const vf root = vf_div(vf_sqrt(*nu), c->c2);
    return vf_div(mixed, vf_add(root, c->eps));
}
static inline vf v_momentum(const hv* c, const bnb_optim_hparams* h, vf s1, vf gw) {
    return h->step == 1 ? gw : vf_add(vf_mul(s1, c->beta1), gw);
}
static inline vf v_rmsprop_state(const hv* c, vf s1, vf gw) { return v_addcmul(vf_mul(s1, c->beta1), gw, gw, c->omb1); }
static inline vf v_adagrad_state(const hv* c, vf s1, vf gw) { return v_addcmul(s1, gw, gw, c->one); }
static inline vf v_scaled_grad(const hv* c, vf gw, vf s1) { return vf_div(gw, vf_add(vf_sqrt(s1), c->eps)); }

/* ─── one vector of elements ─────────────────────────────────────────────────────────────────────────────── */

/* The operand pointers of VW consecutive elements: p/g in the tensor dtype, states as float. */
typedef struct {
    void* p;
    const void* g;
    float* s1;
    float* s2;
    float* s3; /* AdEMAMix second EMA */
} lanes;

enum {
    M32_FUSED,   /* 32-bit, one pass: states and p (every kind when no trust ratio is needed) */
    M32_STATES,  /* 32-bit trust-ratio first pass: states written, Σd² (and Σp²) returned   */
    M32_APPLY,   /* 32-bit trust-ratio second pass: p += alpha·d                           */
    M32_UNORM,   /* optimizer_unorm: Σd², Σp², nothing written                              */
    M8_UPDATE    /* 8-bit: float states (dequantized block), p written                      */
};

typedef struct {
    const bnb_optim_args* a;
    const bnb_optim_hparams* h;
    hv c;
    int mode;
    int decay_grad;
    vf alpha; /* M32_FUSED / M32_APPLY: the lr term (× trust scale) of adam/lamb/momentum/lars/rmsprop */
} kctx;

/* step_lanes and step_range_as are always inlined, so that a caller passing a constant mode, kind and dtype gets
 * straight-line code for them (the 8-bit update of f32 AdamW, below). */
#define OPT_INLINE static inline __attribute__((always_inline))

/* Processes VW elements; returns the direction d (for the Σd² of M32_STATES / M32_UNORM) and p before the step. */
OPT_INLINE vf step_lanes(const kctx* k, int mode, int32_t kind, int32_t dtype, const lanes* L, vf* p_before) {
    const hv* c = &k->c;
    const bnb_optim_hparams* h = k->h;
    const vf g = vf_mul(vf_load_any(L->g, dtype, 0), c->gscale);
    vf p = vf_load_any(L->p, dtype, 0);
    *p_before = p;
    vf d = c->zero;
    int write_p = 1;
    if (mode == M8_UPDATE) {
        switch (kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            const vf s1 = v_adam_m(c, vf_load(L->s1), g), s2 = v_adam_v(c, vf_load(L->s2), g);
            vf_store(L->s1, s1);
            vf_store(L->s2, s2);
            const vf denom = vf_add(vf_div(vf_sqrt(s2), c->c2), c->eps);
            const vf numer = vf_mul(c->neg_lr_c1, s1);
            p = v_decoupled(c, h, p);
            p = vf_add(p, vf_div(numer, denom));
            break;
        }
        case BNB_OPTIM_ADEMAMIX: {
            vf m1 = vf_load(L->s1), m2 = vf_load(L->s3), nu = vf_load(L->s2);
            d = v_ademamix(c, g, &m1, &m2, &nu);
            vf_store(L->s1, m1);
            vf_store(L->s3, m2);
            vf_store(L->s2, nu);
            p = vf_fma(d, c->neg_lr, v_decoupled(c, h, p));
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            const vf gw = vf_fma(p, c->wd, g);
            const vf s1 = v_momentum(c, h, vf_load(L->s1), gw);
            vf_store(L->s1, s1);
            p = vf_fma(s1, c->neg_lr, p);
            break;
        }
        case BNB_OPTIM_LION: {
            const vf s1 = vf_load(L->s1);
            const vf u = vf_add(vf_mul(s1, c->beta1), vf_mul(g, c->omb1));
            p = vf_fma(v_sign(c, u), c->neg_lr, v_decoupled(c, h, p));
            vf_store(L->s1, vf_fma(g, c->omb2, vf_mul(s1, c->beta2)));
            break;
        }
        default: { /* rmsprop, adagrad */
            const vf gw = vf_fma(p, c->wd, g);
            const vf s1 = kind == BNB_OPTIM_RMSPROP ? v_rmsprop_state(c, vf_load(L->s1), gw)
                                                       : v_adagrad_state(c, vf_load(L->s1), gw);
            vf_store(L->s1, s1);
            const vf numer = vf_mul(c->neg_lr, gw);
            const vf denom = vf_add(vf_sqrt(s1), c->eps);
            p = vf_add(p, vf_div(numer, denom));
            break;
        }
        }
    } else {
        const int store = mode == M32_FUSED || mode == M32_STATES;
        const int apply = mode == M32_FUSED || mode == M32_APPLY;
        write_p = apply;
        switch (kind) {
        case BNB_OPTIM_ADAM:
        case BNB_OPTIM_LAMB: {
            vf s1, s2;
            if (mode == M32_APPLY) {
                s1 = vf_load(L->s1);
                s2 = vf_load(L->s2);
            } else {
                s1 = v_adam_m(c, vf_load(L->s1), g);
                s2 = v_adam_v(c, vf_load(L->s2), g);
            }
            d = vf_div(s1, vf_add(vf_sqrt(s2), c->eps_c2));
            if (store) {
                vf_store(L->s1, s1);
                vf_store(L->s2, s2);
            }
            if (apply) p = vf_fma(d, k->alpha, v_decoupled(c, h, p));
            break;
        }
        case BNB_OPTIM_MOMENTUM:
        case BNB_OPTIM_LARS: {
            if (mode == M32_APPLY) {
                d = vf_load(L->s1);
            } else {
                const vf gw = k->decay_grad ? vf_fma(p, c->wd, g) : g;
                d = v_momentum(c, h, vf_load(L->s1), gw);
                if (store) vf_store(L->s1, d);
            }
            if (apply) p = vf_fma(d, k->alpha, p);
            break;
        }
        case BNB_OPTIM_RMSPROP: {
            const vf gw = k->decay_grad ? vf_fma(p, c->wd, g) : g;
            const vf s1 = mode == M32_APPLY ? vf_load(L->s1) : v_rmsprop_state(c, vf_load(L->s1), gw);
            if (store) vf_store(L->s1, s1);
            d = v_scaled_grad(c, gw, s1);
            if (apply) p = vf_fma(d, k->alpha, p);
            break;
        }
        case BNB_OPTIM_ADAGRAD: {
            const vf gw = k->decay_grad ? vf_fma(p, c->wd, g) : g;
            const vf s1 = v_adagrad_state(c, vf_load(L->s1), gw);
            d = v_scaled_grad(c, gw, s1);
            if (store) vf_store(L->s1, s1);
            if (apply) p = vf_fma(d, c->neg_lr, p);
            break;
        }
        case BNB_OPTIM_LION: {
            const vf s1 = vf_load(L->s1);
            d = v_sign(c, vf_fma(g, c->omb1, vf_mul(s1, c->beta1)));
            if (apply) p = vf_fma(d, c->neg_lr, v_decoupled(c, h, p));
            if (store) vf_store(L->s1, vf_fma(g, c->omb2, vf_mul(s1, c->beta2)));
            break;
        }
        default: { /* AdEMAMix */
            vf m1 = vf_load(L->s1), m2 = vf_load(L->s3), nu = vf_load(L->s2);
            d = v_ademamix(c, g, &m1, &m2, &nu);
            if (store) {
                vf_store(L->s1, m1);
                vf_store(L->s3, m2);
                vf_store(L->s2, nu);
            }
            if (apply) p = vf_fma(d, c->neg_lr, v_decoupled(c, h, p));
            break;
        }
        }
    }
    if (write_p) vf_store_any(L->p, dtype, 0, p);
    return d;
}

/* Runs step_lanes over elements [i0, i1) of p/g; s1/s2/s3 point at the states of element i0. A short tail goes
 * through float bounce buffers: loads and stores of one element are exact in either form. */
OPT_INLINE void step_range_as(const kctx* k, int mode, int32_t kind, int32_t dt, int64_t i0, int64_t i1, float* s1,
                              float* s2, float* s3, dsum* dsq, dsum* psq) {
    const bnb_optim_args* a = k->a;
    const size_t es = bnb_dtype_size(dt);
    int64_t i = i0;
    for (; i + VW <= i1; i += VW) {
        const int64_t o = i - i0;
        lanes L = {(char*)a->p + i * es, (const char*)a->g + i * es, s1 ? s1 + o : NULL, s2 ? s2 + o : NULL,
                   s3 ? s3 + o : NULL};
        vf pb;
        const vf d = step_lanes(k, mode, kind, dt, &L, &pb);
        if (dsq) dsum_add_sq(dsq, d, VW);
        if (psq) dsum_add_sq(psq, pb, VW);
    }
    if (i < i1) {
        const int r = (int)(i1 - i);
        const int64_t o = i - i0;
        float bp[VW] = {0}, bg[VW] = {0}, b1[VW] = {0}, b2[VW] = {0}, b3[VW] = {0};
        for (int j = 0; j < r; ++j) {
            bp[j] = bnb_load_float(a->p, dt, i + j);
            bg[j] = bnb_load_float(a->g, dt, i + j);
            if (s1) b1[j] = s1[o + j];
            if (s2) b2[j] = s2[o + j];
            if (s3) b3[j] = s3[o + j];
        }
        lanes L = {bp, bg, b1, b2, b3};
        vf pb;
        const vf d = step_lanes(k, mode, kind, BNB_DTYPE_F32, &L, &pb);
        if (dsq) dsum_add_sq(dsq, d, r);
        if (psq) dsum_add_sq(psq, pb, r);
        const int write_p = mode != M32_STATES && mode != M32_UNORM;
        const int write_s = mode != M32_APPLY && mode != M32_UNORM;
        for (int j = 0; j < r; ++j) {
            if (write_p) bnb_store_float(a->p, dt, i + j, bp[j]);
            if (write_s) {
                if (s1) s1[o + j] = b1[j];
                if (s2) s2[o + j] = b2[j];
                if (s3) s3[o + j] = b3[j];
            }
        }
    }
}

/* step_range with the call's mode, kind and dtype. */
static void step_range(const kctx* k, int64_t i0, int64_t i1, float* s1, float* s2, float* s3, dsum* dsq, dsum* psq) {
    step_range_as(k, k->mode, k->h->kind, k->a->dtype, i0, i1, s1, s2, s3, dsq, psq);
}

/* ─── 32-bit ─────────────────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
    kctx k;
    int64_t chunk;
    double* upd_sq;   /* per chunk, or NULL */
    double* param_sq; /* per chunk, or NULL */
} job32;

static void task32(void* arg, int64_t t) {
    const job32* j = (const job32*)arg;
    const bnb_optim_args* a = j->k.a;
    const int64_t i0 = t * j->chunk, i1 = i0 + j->chunk < a->n ? i0 + j->chunk : a->n;
    dsum dsq = {{0}}, psq = {{0}};
    float* s3 = a->hp.kind == BNB_OPTIM_ADEMAMIX ? a->state1 + a->n + i0 : NULL;
    step_range(&j->k, i0, i1, a->state1 + i0, a->state2 ? a->state2 + i0 : NULL, s3, j->upd_sq ? &dsq : NULL,
               j->param_sq ? &psq : NULL);
    if (j->upd_sq) j->upd_sq[t] = dsum_fold(&dsq);
    if (j->param_sq) j->param_sq[t] = dsum_fold(&psq);
}

static void kctx_init(kctx* k, const bnb_optim_args* a, int mode) {
    k->a = a;
    k->h = &a->hp;
    hv_init(&k->c, &a->hp);
    k->mode = mode;
    k->decay_grad = a->hp.weight_decay > 0.0f;
    k->alpha = vf_set1(0.0f);
}

/* Runs one pass over all chunks; sums the per-chunk partials in chunk order. */
static void run32(bnb_context* context, job32* j, double* upd_sq, double* param_sq) {
    const int64_t chunks = bnb_ceil_div(j->k.a->n, j->chunk);
    double u[OPT_MAX_CHUNKS], q[OPT_MAX_CHUNKS];
    j->upd_sq = upd_sq ? u : NULL;
    j->param_sq = param_sq ? q : NULL;
    bnb_parallel_for(context->pool, chunks, task32, j);
    double su = 0.0, sp = 0.0;
    for (int64_t t = 0; t < chunks; ++t) {
        if (upd_sq) su += u[t];
        if (param_sq) sp += q[t];
    }
    if (upd_sq) *upd_sq = su;
    if (param_sq) *param_sq = sp;
}

bnb_status BNB_CALL bnb_cpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm) {
    bnb_optim_args a;
    bnb_context view; /* the gradient's NaN/Inf scan: vector kernel over the pool (cpu_ops.h) */
    BNB_TRY(bnb_optim_resolve_32bit("optimizer_update_32bit", bnb_cpu_propagate_view(context, &view), params, p, g,
                                    state1, state2, &a));
    BNB_TRY(bnb_cpu_check_finite("optimizer_update_32bit", "g", context, a.g, a.dtype, a.n));
    const bnb_optim_hparams* h = &a.hp;
    float unorm = 0.0f;
    job32 j;
    j.chunk = chunk_of(a.n);
    if (h->kind == BNB_OPTIM_ADEMAMIX || h->kind == BNB_OPTIM_ADAGRAD || h->kind == BNB_OPTIM_LION) {
        kctx_init(&j.k, &a, M32_FUSED);
        run32(context, &j, NULL, NULL);
    } else {
        const double lr_term = (h->kind == BNB_OPTIM_ADAM || h->kind == BNB_OPTIM_LAMB) ? h->step_size : -h->lr_wide;
        if (!h->trust_ratio) {
            /* without a trust ratio the second pass's factor is known up front: one fused pass, same bits */
            kctx_init(&j.k, &a, M32_FUSED);
            j.k.alpha = vf_set1((float)lr_term);
            run32(context, &j, NULL, NULL);
        } else {
            double upd_sq = 0.0, param_sq = 0.0;
            kctx_init(&j.k, &a, M32_STATES);
            const int own_norm = !(h->param_norm >= 0.0f);
            run32(context, &j, &upd_sq, own_norm ? &param_sq : NULL); /* p is read, not written: norm "before" */
            const double param_norm = own_norm ? sqrt(param_sq) : (double)h->param_norm;
            const double update_norm = sqrt(upd_sq);
            const double scale = bnb_optim_trust_scale(h->max_unorm_wide, param_norm, update_norm);
            unorm = (float)update_norm;
            kctx_init(&j.k, &a, M32_APPLY);
            j.k.alpha = vf_set1((float)(lr_term * scale));
            run32(context, &j, NULL, NULL);
        }
    }
    if (out_unorm != NULL) *out_unorm = unorm;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq) {
    static const char op[] = "optimizer_unorm";
    bnb_optim_args a;
    bnb_context view;
    BNB_TRY(bnb_optim_resolve_32bit(op, bnb_cpu_propagate_view(context, &view), params, p, g, state1, state2, &a));
    BNB_TRY(bnb_cpu_check_finite(op, "g", context, a.g, a.dtype, a.n));
    BNB_TRY(bnb_check_not_null(op, "out_update_sq", out_update_sq));
    BNB_TRY(bnb_check_not_null(op, "out_param_sq", out_param_sq));
    job32 j;
    j.chunk = chunk_of(a.n);
    kctx_init(&j.k, &a, M32_UNORM);
    double upd_sq = 0.0, param_sq = 0.0;
    run32(context, &j, &upd_sq, &param_sq);
    *out_update_sq = upd_sq;
    *out_param_sq = param_sq;
    return BNB_OK;
}

/* ─── 8-bit blockwise ────────────────────────────────────────────────────────────────────────────────────── */

/* bnb_ref_lut_index then the LUT's grid point: LUT[i] = count_below(mid, grid(i)) (§2.5.3), so the 64 Ki LUT
 * never has to be built. */
static inline vf v_lut_grid_value(vf x, vf inv) {
    vf v = vf_mul(x, inv);
    v = vf_sel(vf_gt(v, vf_set1(1.0f)), vf_set1(1.0f), v);
    v = vf_sel(vf_lt(v, vf_set1(-1.0f)), vf_set1(-1.0f), v);
    const vf t = vf_mul(vf_add(v, vf_set1(1.0f)), vf_set1(0.5f));
    const vf f = vf_fma(t, vf_set1(65535.0f), vf_set1(0.5f));
    const vi i = vi_sel(vf_nan(f), vi_set1(0), vi_and(vf_to_i_trunc(f), vi_set1(0xFFFF)));
    const vf fi = vi_to_f(i);
    const vf twice = vf_add(fi, fi);
    return vf_sub(vf_div(twice, vf_set1(65535.0f)), vf_set1(1.0f));
}

/* One code table of an 8-bit state (qmap1 or qmap2) in the forms the quant_vec.h primitives want: the dequant
 * lookup (AVX-512: the table in registers, VBMI byte planes or a vpermi2ps tree; AVX2: a gather; NEON: tbl planes)
 * and the requantization search over its 255 midpoints: one bucket-table gather (qv_bucket8) for large calls, else
 * the binary search (AVX-512: 8 permute levels from registers). Both give the reference's exact values:
 * the lookups move table bits, and the search counts the midpoints below s like bnb_ref_count_below. */
typedef struct {
    const float* qmap;
    qv_dq8_tab dq;
    qv_search8_tab search;
    uint32_t* bkt; /* bucket table (large calls) or NULL */
} qmap_tab;

#define Q8_BUCKET_MIN_ELEMS (1 << 16) /* below this, building the 128 KiB bucket table costs more than it saves */

/* midpoints must outlive the table (qv_search8_tab may point into them) */
static void qmap_tab_init(qmap_tab* t, const float* qmap, qv_mid8* mid, int64_t n) {
    float m[256];
    bnb_ref_code_midpoints(qmap, 256, m);
    qv_mid8_init(m, mid);
    t->qmap = qmap;
    qv_dq8_init(qmap, &t->dq);
    qv_search8_init(mid, &t->search);
    t->bkt = NULL;
    if (n >= Q8_BUCKET_MIN_ELEMS) {
        t->bkt = (uint32_t*)malloc(sizeof(uint32_t) * QV_BKT_COUNT);
        if (t->bkt != NULL) qv_bucket8_build(m, t->bkt); /* if it cannot be allocated, the search gives the same codes */
    }
}

/* Codes of nv vectors of scaled values s in [-1, 1] (or NaN → 0). */
static void search_block(const qmap_tab* t, const float* s, int64_t nv, uint8_t* codes) {
    if (t->bkt != NULL) {
        for (int64_t v = 0; v < nv; ++v) qv_store_u8(codes + v * VW, qv_bucket8(t->bkt, &t->search, vf_load(s + v * VW)));
        return;
    }
    for (int64_t v = 0; v < nv; ++v) qv_store_u8(codes + v * VW, qv_search8(&t->search, vf_load(s + v * VW)));
}

/* Block buffers are padded to whole vectors so the kernels may read and write past len. */
#define BLK_PAD (BNB_OPTIM_BLOCKSIZE + VW)

/* Requantizes one block of len <= 256 floats x (padded to BLK_PAD) exactly as bnb_ref_requantize_blockwise_f32
 * does for a block of that length. */
static void requant_block(const float* x, int64_t len, const qmap_tab* tab, int32_t rounding, uint8_t* codes,
                          float* absmax) {
    /* max |x| ignoring NaN: vf_max_num(x, acc) keeps acc when x is NaN */
    vf acc = vf_set1(0.0f);
    int64_t i = 0;
    for (; i + VW <= len; i += VW) acc = vf_max_num(vf_abs(vf_load(x + i)), acc);
    float lane[VW];
    vf_store(lane, acc);
    float a = 0.0f;
    for (int j = 0; j < VW; ++j)
        if (lane[j] > a) a = lane[j];
    for (; i < len; ++i) {
        const float m = x[i] < 0.0f ? -x[i] : x[i];
        if (m > a) a = m;
    }
    const int64_t nv = bnb_ceil_div(len, VW);
    float s[BLK_PAD];
    uint8_t out[BLK_PAD];
    if (rounding == BNB_ROUND_BNB_CPU_LUT) {
        *absmax = a;
        if (a == 0.0f) {
            memset(codes, 0, (size_t)len);
            return;
        }
        const vf inv = vf_set1(1.0f / a);
        for (int64_t v = 0; v < nv; ++v) vf_store(s + v * VW, v_lut_grid_value(vf_load(x + v * VW), inv));
    } else {
        const int short_tail = len < BNB_OPTIM_BLOCKSIZE;
        const float clamped = fmaxf(a, 1e-38f);
        const float inv = 1.0f / clamped;
        *absmax = short_tail ? clamped : a;
        /* qv_clamp1: the reference's clamp to [-1, 1], NaN kept (a min and a max instead of compare-and-blends) */
        if (short_tail) {
            const vf vcl = vf_set1(clamped);
            for (int64_t v = 0; v < nv; ++v) vf_store(s + v * VW, qv_clamp1(vf_div(vf_load(x + v * VW), vcl)));
        } else {
            const vf vinv = vf_set1(inv);
            for (int64_t v = 0; v < nv; ++v) vf_store(s + v * VW, qv_clamp1(vf_mul(vf_load(x + v * VW), vinv)));
        }
    }
    search_block(tab, s, nv, out);
    memcpy(codes, out, (size_t)len);
}

/* out[i] = qmap[codes[i]] * absmax for i < len (the reference's product), zeros up to BLK_PAD. */
#define DEQUANT_BLOCK_BODY(lookup)                                                                                 \
    const vf am = vf_set1(absmax);                                                                                 \
    int64_t i = 0;                                                                                                 \
    for (; i + QV_DQ_CHUNK <= len; i += QV_DQ_CHUNK) {                                                             \
        qv_f v[4];                                                                                                 \
        lookup(&t->dq, codes + i, v);                                                                              \
        for (int q = 0; q < 4; ++q) vf_store(out + i + q * VW, vf_mul(v[q], am));                                  \
    }                                                                                                              \
    for (; i < len; ++i) out[i] = t->qmap[codes[i]] * absmax;                                                      \
    for (; i < BLK_PAD; ++i) out[i] = 0.0f;

typedef void (*dequant_fn)(const qmap_tab* t, const uint8_t* codes, float absmax, int64_t len, float* out);
static void dequant_block(const qmap_tab* t, const uint8_t* codes, float absmax, int64_t len, float* out) {
    DEQUANT_BLOCK_BODY(qv_dequant8_x4)
}
#if QV_HAVE_VBMI_PATH
QV_VBMI_TARGET static void dequant_block_vbmi(const qmap_tab* t, const uint8_t* codes, float absmax, int64_t len,
                                              float* out) {
    DEQUANT_BLOCK_BODY(qv_dequant8_x4_vbmi)
}
#endif

typedef struct {
    kctx k;
    int64_t chunk; /* elements, multiple of 256 */
    dequant_fn dequant;
    qmap_tab tab1, tab2;
} job8;

static void task8(void* arg, int64_t t) {
    const job8* j = (const job8*)arg;
    const bnb_optim_args* a = j->k.a;
    const int64_t bs = BNB_OPTIM_BLOCKSIZE;
    const int ademamix = a->hp.kind == BNB_OPTIM_ADEMAMIX;
    float s1[BLK_PAD], s2[BLK_PAD], s3[BLK_PAD];
    const int64_t e0 = t * j->chunk, e1 = e0 + j->chunk < a->n ? e0 + j->chunk : a->n;
    for (int64_t start = e0; start < e1; start += bs) {
        const int64_t b = start / bs;
        const int64_t len = a->n - start < bs ? a->n - start : bs;
        j->dequant(&j->tab1, a->codes1 + start, a->absmax1[b], len, s1);
        if (a->codes2) j->dequant(&j->tab2, a->codes2 + start, a->absmax2[b], len, s2);
        if (ademamix) j->dequant(&j->tab1, a->codes1 + a->n + start, a->absmax1[a->blocks + b], len, s3);
        if (a->hp.kind == BNB_OPTIM_ADAM && a->dtype == BNB_DTYPE_F32) /* the common case, specialized */
            step_range_as(&j->k, M8_UPDATE, BNB_OPTIM_ADAM, BNB_DTYPE_F32, start, start + len, s1, s2, NULL, NULL, NULL);
        else step_range(&j->k, start, start + len, s1, a->codes2 ? s2 : NULL, ademamix ? s3 : NULL, NULL, NULL);
        requant_block(s1, len, &j->tab1, a->hp.rounding, a->codes1 + start, a->absmax1 + b);
        if (a->codes2) requant_block(s2, len, &j->tab2, a->hp.rounding, a->codes2 + start, a->absmax2 + b);
        if (ademamix)
            requant_block(s3, len, &j->tab1, a->hp.rounding, a->codes1 + a->n + start, a->absmax1 + a->blocks + b);
    }
}

bnb_status BNB_CALL bnb_cpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                            bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2) {
    job8 j;
    bnb_optim_args a;
    bnb_context view;
    BNB_TRY(bnb_optim_resolve_8bit("optimizer_update_8bit_blockwise", bnb_cpu_propagate_view(context, &view), params,
                                   p, g, state1, state2, absmax1, absmax2, qmap1, qmap2, &a));
    BNB_TRY(bnb_cpu_check_finite("optimizer_update_8bit_blockwise", "g", context, a.g, a.dtype, a.n));
    kctx_init(&j.k, &a, M8_UPDATE);
    j.chunk = chunk_of(a.n);
    qv_mid8 mid1, mid2;
    qmap_tab_init(&j.tab1, a.qmap1, &mid1, a.n);
    if (a.qmap2) qmap_tab_init(&j.tab2, a.qmap2, &mid2, a.n);
    else j.tab2.bkt = NULL;
    j.dequant = dequant_block;
#if QV_HAVE_VBMI_PATH
    if (j.tab1.dq.vbmi) j.dequant = dequant_block_vbmi;
#endif
    bnb_parallel_for(context->pool, bnb_ceil_div(a.n, j.chunk), task8, &j);
    free(j.tab1.bkt);
    free(j.tab2.bkt);
    return BNB_OK;
}

/* ─── percentile clipping ────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
    const bnb_clip_args* a;
    int64_t chunk;
    double* part;
} jobclip;

static void task_clip(void* arg, int64_t t) {
    const jobclip* j = (const jobclip*)arg;
    const int64_t i0 = t * j->chunk, i1 = i0 + j->chunk < j->a->n ? i0 + j->chunk : j->a->n;
    const size_t es = bnb_dtype_size(j->a->dtype);
    dsum s = {{0}};
    int64_t i = i0;
    for (; i + VW <= i1; i += VW) dsum_add_sq(&s, vf_load_any((const char*)j->a->g + i * es, j->a->dtype, 0), VW);
    double tail = 0.0;
    for (; i < i1; ++i) {
        const double v = bnb_load_float(j->a->g, j->a->dtype, i);
        tail += v * v;
    }
    j->part[t] = dsum_fold(&s) + tail;
}

/* Ascending order with NaN last (torch.sort). */
static int sorts_before(float x, float y) { return x < y || (y != y && x == x); }

bnb_status BNB_CALL bnb_cpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                int32_t step, int32_t percentile, float* out_gnorm,
                                                float* out_gnorm_scale) {
    bnb_clip_args a;
    bnb_context view;
    BNB_TRY(bnb_clip_resolve("percentile_clipping", bnb_cpu_propagate_view(context, &view), g, gnorm_history, step,
                             percentile, out_gnorm, out_gnorm_scale, &a));
    BNB_TRY(bnb_cpu_check_finite("percentile_clipping", "g", context, a.g, a.dtype, a.n));
    double part[OPT_MAX_CHUNKS];
    jobclip j = {&a, chunk_of(a.n), part};
    const int64_t chunks = bnb_ceil_div(a.n, j.chunk);
    bnb_parallel_for(context->pool, chunks, task_clip, &j);
    double sq = 0.0;
    for (int64_t t = 0; t < chunks; ++t) sq += part[t];

    /* the rest is the reference's scalar code on 100 entries */
    const float norm_sq = (float)sq;
    const int32_t slot = a.step % BNB_GNORM_HISTORY;
    if (a.step == 1) {
        for (int32_t k = 0; k < BNB_GNORM_HISTORY; ++k) a.history[k] += norm_sq;
    } else {
        a.history[slot] += norm_sq;
    }
    float sorted[BNB_GNORM_HISTORY];
    for (int32_t k = 0; k < BNB_GNORM_HISTORY; ++k) {
        const float v = a.history[k];
        int32_t m = k;
        while (m > 0 && sorts_before(v, sorted[m - 1])) {
            sorted[m] = sorted[m - 1];
            --m;
        }
        sorted[m] = v;
    }
    const float current = sqrtf(a.history[slot]);
    const float clip = sqrtf(sorted[a.percentile]);
    *a.out_gnorm_scale = current > clip ? clip / current : 1.0f;
    if (a.out_gnorm != NULL) *a.out_gnorm = current;
    return BNB_OK;
}
