/*
 * gpu_backend.h — host-side internals shared by the translation units of bnb_cuda / bnb_hip (never installed).
 *
 *   runtime.cu         device discovery, contexts, memory, streams, the function table and the two exports
 *   ops_quant.cu       8-bit blockwise and 4-bit quantize/dequantize, nested absmax, weight layouts
 *   ops_gemm4.cu       gemv_4bit / gemm_4bit
 *   ops_int8.cu        LLM.int8(): vectorwise quant/dequant, double quant, int8 matmul, mm dequant
 *   ops_optim.cu       32-bit and 8-bit blockwise optimizer steps, optimizer_unorm, percentile clipping
 *
 * How a slot works: (1) bnb_gpu_enter() checks that a device exists and that the context is alive, and makes the
 * context's device current; (2) the shared validators of native/common (bnb_validate_* / bnb_*_resolve_*) check
 * every argument exactly as the CPU backends do — but they run against a copy of the context whose NaN policy is
 * PROPAGATE, because their NaN/Inf scan reads tensor data on the host and our tensors live on the device; (3) code
 * tables the validators must read (sorted/finite checks) are first copied to the host (bnb_gpu_host_code_table),
 * so the validator sees a host tensor with the same shape; (4) under BNB_NONFINITE_ERROR the NaN/Inf scan then
 * runs on the device (bnb_gpu_check_finite) and produces the CPU backends' message; (5) kernels are launched on
 * the context's stream. Nothing is written before (4) has passed, so a failed call leaves outputs untouched.
 *
 * Pointers: tensor data are device pointers (cudaMalloc, managed memory, or pinned host memory the device can
 * address). Scalar out-parameters (float* out_gnorm, int64_t* out_outlier_count, double* out_update_sq, ...) may
 * be host or device pointers; they are written with a copy of kind Default and the call waits for its stream
 * before returning in that case. Everything else is asynchronous on the context's stream.
 */
#ifndef BNB_GPU_BACKEND_H
#define BNB_GPU_BACKEND_H

#include "bnb_common.h"
#include "gpu_vendor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bnb_stream {
    uint32_t magic;      /* BNB_GPU_STREAM_MAGIC while alive */
    int32_t owned;       /* 1: created here (destroyed with the stream); 0: wraps a caller's native stream */
    int32_t device;
    gpuStream_t stream;
};

/* Paging counters shared by a context and the PAGED buffers allocated through it (a buffer may outlive its context:
 * the record is freed with the last of them). GPU paging is the driver's (managed memory migrates on demand and on
 * paged_prefetch); the backend only records the budget and counts bytes. */
typedef struct bnb_gpu_pager bnb_gpu_pager;

struct bnb_context {
    bnb_context_common common;  /* must stay first: the shared validators read it */
    gpuStream_t stream;         /* where ops run: the context's own stream, or a bnb_stream set by the caller */
    gpuStream_t own_stream;     /* created with the context */
    void* scratch;              /* device scratch for reductions / flags; grows on demand (bnb_gpu_scratch) */
    size_t scratch_bytes;
    int32_t sm_count;
    int32_t cc;                 /* compute capability major*10+minor (CUDA); gfx major*10+minor on HIP */
    uint32_t disabled;          /* BNB_GPU_DISABLE_* paths turned off through the BNB_GPU_DISABLE variable */
    bnb_gpu_pager* pager;
};

/* BNB_GPU_DISABLE=mma,imma,gemv (comma-separated) turns off the bf16 tensor-core gemm, the int8 tensor-core matmul
 * or the gemv kernel, so the SIMT paths can be checked (and used) on a GPU that has the faster ones. */
#define BNB_GPU_DISABLE_MMA 1u
#define BNB_GPU_DISABLE_IMMA 2u
#define BNB_GPU_DISABLE_GEMV 4u

struct bnb_buffer {
    uint32_t magic;
    int32_t kind;
    int32_t device;
    int32_t maps;         /* open buffer_map / buffer_map_access calls */
    size_t bytes;
    void* data;
    bnb_gpu_pager* pager; /* PAGED buffers: the allocating context's counters */
};

/* Number of usable devices (cached after the first call; 0 on a machine without GPU or driver). When it is 0,
 * *why (may be NULL) receives the runtime's reason, e.g. "no CUDA-capable device is detected". */
int32_t bnb_gpu_device_count(const char** why);

/* Entry of every op: NO_DEVICE when the machine has no usable device (message names the reason), the context
 * checks of the CPU backends otherwise, then the context's device is made current. */
bnb_status bnb_gpu_enter(const char* op, bnb_context* context);

/* A copy of the context's common part with nonfinite_policy = PROPAGATE, for the shared validators (see above). */
typedef struct bnb_gpu_validation_context {
    bnb_context_common common;
} bnb_gpu_validation_context;
bnb_context* bnb_gpu_validation(bnb_context* context, bnb_gpu_validation_context* storage);

/* Maps a failed runtime call to BNB_ERR_DEVICE (or OUT_OF_MEMORY) with "<what>: <runtime message>". */
bnb_status bnb_gpu_fail(const char* op, const char* what, gpuError_t err);
#define BNB_GPU_TRY(op, what, expr)                                                                                \
    do {                                                                                                           \
        const gpuError_t bnb_gpu_err_ = (expr);                                                                    \
        if (bnb_gpu_err_ != gpuSuccess) return bnb_gpu_fail((op), (what), bnb_gpu_err_);                           \
    } while (0)
/* After a kernel launch: reports a launch failure (bad configuration, no kernel image for this GPU). */
bnb_status bnb_gpu_check_launch(const char* op);

/* At least `bytes` of device scratch owned by the context (valid until the next call on the context). */
bnb_status bnb_gpu_scratch(const char* op, bnb_context* context, size_t bytes, void** out);

/* Copies a code-table tensor of exactly `count` f32 elements to `host` (count floats) and returns, in *shadow, the
 * same tensor pointing at the host copy. Any other shape/dtype/NULL is passed through unchanged (the validator then
 * fails on it without reading data). */
bnb_status bnb_gpu_host_code_table(const char* op, const bnb_tensor* code, int64_t count, float* host,
                                   bnb_tensor* shadow, const bnb_tensor** out);

/* Under BNB_NONFINITE_ERROR: scans the (rows x cols, row stride) float matrix on the device and fails with the CPU
 * backends' message naming the first NaN/Inf ("A[12] = NaN; ..." for a vector: rows == 1 and vector != 0; else
 * "A[r, c] = ..."). OK under PROPAGATE. */
bnb_status bnb_gpu_check_finite(const char* op, const char* arg, bnb_context* context, const void* data,
                                int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride, int vector);

/* Writes a scalar result to a host or device address and waits for it (see "Pointers" above). */
bnb_status bnb_gpu_write_scalar(const char* op, bnb_context* context, void* dst, const void* value, size_t bytes);
/* Copies a device value to the caller's host-or-device address, after the work queued on the context. */
bnb_status bnb_gpu_copy_out(const char* op, bnb_context* context, void* dst, const void* device_src, size_t bytes);

/* ─── slots implemented in the ops_*.cu translation units (exact ABI signatures) ─────────────────────────── */

bnb_status BNB_CALL bnb_gpu_get_code_table(int32_t table, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                               int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                               bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_gpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                 const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                                 bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                   const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                   const float* offset_in, bnb_tensor* out_codes,
                                                   bnb_tensor* out_nested_absmax, float* out_offset);
bnb_status BNB_CALL bnb_gpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                          int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_gpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                            int32_t quant_type, int64_t blocksize, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes);
bnb_status BNB_CALL bnb_gpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed);
bnb_status BNB_CALL bnb_gpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard);
bnb_status BNB_CALL bnb_gpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_gpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_gpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_gpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                   bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                   bnb_tensor* state2, float* out_unorm);
bnb_status BNB_CALL bnb_gpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                            bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                            bnb_tensor* state2, bnb_tensor* absmax1,
                                                            bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                            const bnb_tensor* qmap2);
bnb_status BNB_CALL bnb_gpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                            const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                            const bnb_tensor* state2, double* out_update_sq, double* out_param_sq);
bnb_status BNB_CALL bnb_gpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                                int32_t step, int32_t percentile, float* out_gnorm,
                                                float* out_gnorm_scale);

/* Grid size for a grid-stride loop over n items with `threads` per block (at least 1, at most ~32 per SM). */
static inline unsigned bnb_gpu_grid(const bnb_context* context, int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    const int64_t cap = (int64_t)(context->sm_count > 0 ? context->sm_count : 16) * 32;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

#ifdef __cplusplus
}
#endif

#endif /* BNB_GPU_BACKEND_H */
