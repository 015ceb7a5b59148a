/*
 * bnb_optim.h — optimizers: argument resolution shared by every backend and the scalar reference implementation of
 * the optimizer slots (spec §3). Internal; never installed.
 *
 * A backend calls bnb_optim_resolve_* first: it validates every argument (context, params struct, NULL pointers,
 * dtypes, element counts and state shapes, code tables, NaN/Inf policy on the gradient) and fills a small struct of
 * plain pointers plus the hyper-parameters and the constants derived from them. After a successful resolve nothing
 * can fail, so a failed call has written nothing.
 *
 * The semantics are bitsandbytes' CPU backend (see the comment at the top of ref/optim.c for the exact update rules
 * and where they differ from bitsandbytes' CUDA kernels).
 */
#ifndef BNB_OPTIM_H
#define BNB_OPTIM_H

#include "bnb_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BNB_OPTIM_BLOCKSIZE 256   /* 8-bit optimizer state blocks (hard-coded in bitsandbytes)              */
#define BNB_GNORM_HISTORY 100     /* entries of percentile_clipping's gradient-norm history                 */

/* The checked hyper-parameters of one step plus derived constants. bitsandbytes derives constants in double from
 * Python floats (1 - β, β^t, lr·wd, ...) and torch rounds the result to float32 where it meets a tensor; the ABI
 * carries the hyper-parameters as double for exactly that reason (f32(1 - 0.999) = 0.001f, while
 * f32(1 - (double)0.999f) is 1.3e-5 relatively off). The float fields are the f32 roundings torch would use. */
typedef struct bnb_optim_hparams {
    int32_t kind;            /* BNB_OPTIM_*                                                                  */
    int32_t step;            /* >= 1                                                                         */
    int32_t rounding;        /* BNB_ROUND_* (8-bit only)                                                     */
    int32_t trust_ratio;     /* 1: the 32-bit step scales its update by the trust ratio (max_unorm > 0 and   */
                             /*    kind adam, lamb, momentum, lars or rmsprop, as the CPU backend does)      */
    float lr, beta1, beta2, beta3, alpha, eps, weight_decay, gnorm_scale, max_unorm, param_norm;
    float one_minus_beta1;   /* f32(1 - β1)                                                                  */
    float one_minus_beta2;   /* f32(1 - β2)                                                                  */
    float one_minus_beta3;   /* f32(1 - β3)                                                                  */
    float correction1;       /* f32(1 - β1^t)          (adam, lamb, ademamix)                                */
    float correction2;       /* f32(sqrt(1 - β2^t))    (adam, lamb, ademamix)                                */
    double step_size;        /* -lr · c2 / c1 in double (32-bit adam/lamb; times the trust ratio, then f32)  */
    float eps_c2;            /* f32(eps · c2)           (32-bit adam/lamb)                                   */
    float neg_lr_over_c1;    /* f32(-lr / c1)           (8-bit adam/lamb)                                    */
    float neg_lr;            /* f32(-lr)                                                                     */
    double lr_wide;          /* lr as given (double)                                                         */
    double max_unorm_wide;   /* max_unorm as given (double)                                                  */
    float decay;             /* f32(1 - lr · weight_decay): decoupled decay of adam, lamb, ademamix, lion    */
} bnb_optim_hparams;

/* Checks a params struct for a 32-bit (eight_bit = 0) or 8-bit (eight_bit = 1) step. Only the fields the kind uses
 * are checked: finite, lr/eps/weight_decay/betas/max_unorm >= 0, β1 and β2 < 1 for the bias-corrected kinds, step
 * >= 1, rounding (8-bit). */
bnb_status bnb_optim_resolve_hparams(const char* op, const bnb_optimizer_params* params, int eight_bit,
                                     bnb_optim_hparams* out);

/* 1 for the kinds with a second state (adam, lamb, ademamix). */
int bnb_optim_is_two_state(int32_t kind);

typedef struct bnb_optim_args {
    bnb_optim_hparams hp;
    int32_t dtype;           /* of p and g: f32/f16/bf16                                                     */
    int64_t n;               /* elements of p and g                                                          */
    void* p;
    const void* g;
    /* 32-bit states (optimizer_update_32bit, optimizer_unorm) */
    float* state1;           /* [n], AdEMAMix [2, n] (m1 then m2)                                            */
    float* state2;           /* [n] for 2-state kinds, else NULL                                             */
    /* 8-bit states (optimizer_update_8bit_blockwise) */
    int64_t blocks;          /* ceil(n / 256)                                                                */
    uint8_t* codes1;         /* [n], AdEMAMix [2, n]                                                         */
    uint8_t* codes2;         /* [n] or NULL                                                                  */
    float* absmax1;          /* [blocks], AdEMAMix [2, blocks]: the second EMA's scales start at absmax1 + blocks */
    float* absmax2;          /* [blocks] or NULL                                                             */
    const float* qmap1;      /* 256 ascending (signed dynamic map)                                          */
    const float* qmap2;      /* 256 ascending (unsigned dynamic map) or NULL                                */
} bnb_optim_args;

/* optimizer_update_32bit and optimizer_unorm (which passes its const tensors; the resolve writes nothing). */
bnb_status bnb_optim_resolve_32bit(const char* op, bnb_context* context, const bnb_optimizer_params* params,
                                   const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                   const bnb_tensor* state2, bnb_optim_args* out);
bnb_status bnb_optim_resolve_8bit(const char* op, bnb_context* context, const bnb_optimizer_params* params,
                                  const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                  const bnb_tensor* state2, const bnb_tensor* absmax1, const bnb_tensor* absmax2,
                                  const bnb_tensor* qmap1, const bnb_tensor* qmap2, bnb_optim_args* out);

/* Trust ratio of the CPU backend: max_unorm·‖p‖/‖upd‖ when ‖upd‖ > max_unorm·‖p‖, else 1 (in double). */
double bnb_optim_trust_scale(double max_unorm, double param_norm, double update_norm);

typedef struct bnb_clip_args {
    const void* g;
    int32_t dtype;
    int64_t n;
    float* history;          /* f32 [100]                                                                    */
    int32_t step;            /* >= 1                                                                         */
    int32_t percentile;      /* [0, 99]                                                                      */
    float* out_gnorm;        /* may be NULL                                                                  */
    float* out_gnorm_scale;
} bnb_clip_args;
bnb_status bnb_clip_resolve(const char* op, bnb_context* context, const bnb_tensor* g, const bnb_tensor* history,
                            int32_t step, int32_t percentile, float* out_gnorm, float* out_gnorm_scale,
                            bnb_clip_args* out);

/* ─── reference slot implementations (exact ABI signatures) ─────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm);
bnb_status BNB_CALL bnb_ref_optimizer_update_8bit_blockwise(bnb_context* context,
                                                            const bnb_optimizer_params* params, bnb_tensor* p,
                                                            const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2);
bnb_status BNB_CALL bnb_ref_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq);
bnb_status BNB_CALL bnb_ref_percentile_clipping(bnb_context* context, const bnb_tensor* g,
                                                bnb_tensor* gnorm_history, int32_t step, int32_t percentile,
                                                float* out_gnorm, float* out_gnorm_scale);

#ifdef __cplusplus
}
#endif

#endif /* BNB_OPTIM_H */
