/*
 * bnb_common.h — internal helpers shared by every backend (never installed, never part of the ABI).
 *
 *   errors      thread-local message + status: bnb_fail(status, op, fmt, ...) formats
 *               "<backend>: <op>: <message>" and returns the status, so validation reads
 *               `if (bad) return bnb_fail(BNB_ERR_..., op, "blocksize = %lld ...", ...);`
 *   tensors     numel / contiguity / dtype checks with messages that name the argument and its value
 *   numbers     f16 / bf16 <-> f32 conversions (RNE, portable), element sizes
 *   tables      NF4, FP4 and the two dynamic maps (one definition of every number)
 *   context     the part of a bnb_context every backend shares (first member of each backend's context)
 *   stubs       bnb_stub_<slot>: the NOT_SUPPORTED implementation of every slot
 *
 * Every backend library defines `const char bnb_backend_name[]` (e.g. "cpu_ref"); messages use it.
 */
#ifndef BNB_COMMON_H
#define BNB_COMMON_H

#include <bnb/bnb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ─── backend identity ───────────────────────────────────────────────────────────────────────────────────── */

extern const char bnb_backend_name[];

#ifndef BNB_VERSION_STRING
#define BNB_VERSION_STRING "0.1.0"
#endif

/* The body of every backend's backend_get_info: checks `out` and its struct_size, then copies `info` (whose
 * struct_size, abi_major/minor and name the helper fills in). */
bnb_status bnb_backend_info_copy(bnb_backend_info info, bnb_backend_info* out);

/* The body of every backend's bnb_get_api: ABI major check, NULL check, hand out the static table. */
bnb_status bnb_backend_get_api(const bnb_api* api, uint32_t abi_major, const bnb_api** out_api);

/* ─── errors ─────────────────────────────────────────────────────────────────────────────────────────────── */

#if defined(__MINGW32__)
/* mingw GCC checks plain `printf` formats against msvcrt's; we build with the C99 printf family (%zu, %lld) */
#define BNB_PRINTF(fmt_index, first_arg) __attribute__((format(gnu_printf, fmt_index, first_arg)))
#elif defined(__GNUC__) || defined(__clang__)
#define BNB_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define BNB_PRINTF(fmt_index, first_arg)
#endif

/* Sets the calling thread's message to "<backend>: <op>: <formatted>" and returns status. */
bnb_status bnb_fail(bnb_status status, const char* op, const char* fmt, ...) BNB_PRINTF(3, 4);
bnb_status bnb_failv(bnb_status status, const char* op, const char* fmt, va_list args);
/* The calling thread's message (never NULL). */
const char* bnb_last_error(void);
/* Sends a message to the installed log callback, if any. */
void bnb_log(int32_t level, const char* fmt, ...) BNB_PRINTF(2, 3);
bnb_status bnb_set_log_callback_impl(bnb_log_fn callback, void* user_data);

/* Propagate a non-OK status. */
#define BNB_TRY(expr)                                                                                              \
    do {                                                                                                           \
        bnb_status bnb_try_status_ = (expr);                                                                       \
        if (bnb_try_status_ != BNB_OK) return bnb_try_status_;                                                     \
    } while (0)

/* ─── dtypes and numbers ─────────────────────────────────────────────────────────────────────────────────── */

const char* bnb_dtype_name(int32_t dtype);    /* "f32", "f16", …, "invalid" */
size_t bnb_dtype_size(int32_t dtype);         /* 0 for an invalid dtype     */

#define BNB_FLOAT_DTYPES ((1u << BNB_DTYPE_F32) | (1u << BNB_DTYPE_F16) | (1u << BNB_DTYPE_BF16))
#define BNB_DTYPE_BIT(d) (1u << (d))

float bnb_f16_to_f32(uint16_t h);
uint16_t bnb_f32_to_f16(float f);   /* RNE, overflow → ±inf, NaN stays NaN */
float bnb_bf16_to_f32(uint16_t b);
uint16_t bnb_f32_to_bf16(float f);  /* RNE: (u + 0x7FFF + ((u >> 16) & 1)) >> 16, NaN kept quiet */

/* Element i (flat index into contiguous data) of a f32/f16/bf16 array, as float. */
static inline float bnb_load_float(const void* data, int32_t dtype, int64_t i) {
    switch (dtype) {
    case BNB_DTYPE_F16: return bnb_f16_to_f32(((const uint16_t*)data)[i]);
    case BNB_DTYPE_BF16: return bnb_bf16_to_f32(((const uint16_t*)data)[i]);
    default: return ((const float*)data)[i];
    }
}
/* Stores v (RNE) into element i of a f32/f16/bf16 array. */
static inline void bnb_store_float(void* data, int32_t dtype, int64_t i, float v) {
    switch (dtype) {
    case BNB_DTYPE_F16: ((uint16_t*)data)[i] = bnb_f32_to_f16(v); break;
    case BNB_DTYPE_BF16: ((uint16_t*)data)[i] = bnb_f32_to_bf16(v); break;
    default: ((float*)data)[i] = v; break;
    }
}

int bnb_is_finite_f32(float v);

/* a*b + c with one rounding (IEEE fusedMultiplyAdd). libm's fmaf is not always fused: mingw-w64's rounds twice,
 * which moves bitsandbytes' LUT index and optimizer moments by an ulp. Where the compiler guarantees the hardware
 * instruction (__FMA__ on x86, every AArch64) this is fmaf; elsewhere an exact emulation in double. */
float bnb_fmaf(float a, float b, float c);

/* ─── tensors ────────────────────────────────────────────────────────────────────────────────────────────── */

/* Product of shape[0..ndim); -1 if ndim is out of range, a dimension is negative or the product overflows. */
int64_t bnb_tensor_numel(const bnb_tensor* t);
/* 1 if strides are all zero or equal the row-major strides of the shape. */
int bnb_tensor_is_contiguous(const bnb_tensor* t);

/* Validation helpers. Each returns BNB_OK or a failure (message set) naming `op` and `arg`.
 *   dtype_mask: BNB_DTYPE_BIT(...) | … of accepted dtypes.
 *   bnb_check_input:  t and t->data non-NULL (data may be NULL when numel == 0), well-formed, contiguous,
 *                     dtype accepted, numel >= min_numel (BUFFER_TOO_SMALL otherwise). *out_numel receives numel.
 *   bnb_check_output: same, for a tensor the op writes. */
bnb_status bnb_check_input(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                           int64_t min_numel, int64_t* out_numel);
bnb_status bnb_check_output(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                            int64_t min_numel, int64_t* out_numel);

/* A 2-D matrix operand: ndim == 2, stride[1] is 0 or 1, row stride (stride[0], or cols when 0) >= cols.
 * Fills rows, cols and row_stride (elements). */
typedef struct bnb_matrix {
    void* data;
    int32_t dtype;
    int64_t rows;
    int64_t cols;
    int64_t row_stride;
} bnb_matrix;
bnb_status bnb_check_matrix(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                            bnb_matrix* out);

/* blocksize must be a power of two in [32, 4096]. */
bnb_status bnb_check_blocksize(const char* op, const char* arg, int64_t blocksize);
bnb_status bnb_check_quant_type(const char* op, int32_t quant_type);
bnb_status bnb_check_not_null(const char* op, const char* arg, const void* p);

/* Argument checks of the memory slots, shared so that every backend rejects the same values with the same message. */
bnb_status bnb_check_memory_kind(const char* op, int32_t kind);           /* BNB_MEMORY_*                      */
bnb_status bnb_check_copy_direction(const char* op, int32_t direction);   /* BNB_COPY_*                        */
/* A BNB_PREFETCH_* target and [offset, offset + bytes) inside a buffer of buffer_bytes. */
bnb_status bnb_check_prefetch(const char* op, int32_t target, size_t offset, size_t bytes, size_t buffer_bytes);

static inline int64_t bnb_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Resolved per-block scales: plain f32 or nested (codes + stats). Checked against the number of blocks. */
typedef struct bnb_scales {
    int32_t nested;
    const float* absmax;         /* plain                          */
    const uint8_t* codes;        /* nested                         */
    const float* nested_absmax;  /* nested                         */
    const float* nested_code;    /* nested, 256 entries            */
    int64_t nested_blocksize;    /* nested                         */
    float nested_offset;         /* nested                         */
} bnb_scales;
bnb_status bnb_check_absmax(const char* op, const bnb_absmax* absmax, int64_t blocks, bnb_scales* out);
/* absmax of block b: plain value or f32(f32(nested_code[codes[b]] * nested_absmax[b / nbs]) + offset). */
static inline float bnb_scale_at(const bnb_scales* s, int64_t b) {
    if (!s->nested) return s->absmax[b];
    const float v = s->nested_code[s->codes[b]] * s->nested_absmax[b / s->nested_blocksize];
    return v + s->nested_offset;
}

/* ─── code tables (spec §2.2, §2.3, Appendix A) ─────────────────────────────────────────────────────────── */

extern const float bnb_table_nf4[16];
extern const float bnb_table_fp4[16];          /* index 8 = +0.0 (bitsandbytes' Python table) */
extern const float bnb_table_dynamic_signed[256];
extern const float bnb_table_dynamic_unsigned[256];
/* NULL and 0 for an unknown table id. */
const float* bnb_table_get(int32_t table, int64_t* out_count);
/* The 16-entry table for BNB_QUANT_FP4 / BNB_QUANT_NF4 (NULL otherwise). */
const float* bnb_table_4bit(int32_t quant_type);
/* The get_code_table slot: tables are data, identical on every backend. */
bnb_status BNB_CALL bnb_common_get_code_table(int32_t table, bnb_tensor* out);

/* ─── contexts ───────────────────────────────────────────────────────────────────────────────────────────── */

#define BNB_CONTEXT_MAGIC 0x424E4243u /* "BNBC" */

/* First member of every backend's struct bnb_context. */
typedef struct bnb_context_common {
    uint32_t magic;          /* BNB_CONTEXT_MAGIC while alive, 0 after destroy */
    int32_t device;
    int32_t num_threads;
    int32_t nonfinite_policy;
} bnb_context_common;

/* Validates options (NULL = defaults) into `out`; max_device = device_count. */
bnb_status bnb_context_options_resolve(const char* op, const bnb_context_options* options, int32_t device_count,
                                       bnb_context_common* out);
/* Checks that ctx is non-NULL and alive; returns its common part through *out. */
bnb_status bnb_check_context(const char* op, bnb_context* ctx, const bnb_context_common** out);

/* Scans n floats of `data` for NaN/Inf. Under BNB_NONFINITE_ERROR returns BNB_ERR_NON_FINITE naming the first
 * bad index and value; under PROPAGATE returns OK. */
bnb_status bnb_check_finite(const char* op, const char* arg, const bnb_context_common* ctx, const void* data,
                            int32_t dtype, int64_t n);

/* ─── stubs: one per slot, each returns BNB_ERR_NOT_SUPPORTED naming the op and the backend ─────────────── */

bnb_status BNB_CALL bnb_stub_get_code_table(int32_t table, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out);
bnb_status BNB_CALL bnb_stub_buffer_free(bnb_buffer* buffer);
bnb_status BNB_CALL bnb_stub_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes);
bnb_status BNB_CALL bnb_stub_buffer_map(bnb_buffer* buffer, void** out_host_pointer);
bnb_status BNB_CALL bnb_stub_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes,
                                         int32_t direction);
bnb_status BNB_CALL bnb_stub_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                            int32_t target);
bnb_status BNB_CALL bnb_stub_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream);
bnb_status BNB_CALL bnb_stub_stream_destroy(bnb_stream* stream);
bnb_status BNB_CALL bnb_stub_stream_synchronize(bnb_stream* stream);
bnb_status BNB_CALL bnb_stub_context_set_stream(bnb_context* context, bnb_stream* stream);
bnb_status BNB_CALL bnb_stub_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                                int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                                bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_stub_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes,
                                                  const bnb_absmax* absmax, const bnb_tensor* code,
                                                  int64_t blocksize, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax,
                                                    const bnb_tensor* code, int64_t nested_blocksize,
                                                    int32_t rounding, const float* offset_in, bnb_tensor* out_codes,
                                                    bnb_tensor* out_nested_absmax, float* out_offset);
bnb_status BNB_CALL bnb_stub_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                           int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax);
bnb_status BNB_CALL bnb_stub_dequantize_4bit(bnb_context* context, const bnb_tensor* packed,
                                             const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                                             bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                              int64_t blocksize, size_t* out_bytes);
bnb_status BNB_CALL bnb_stub_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                         int64_t K, int64_t blocksize, bnb_tensor* out_packed);
bnb_status BNB_CALL bnb_stub_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed,
                                           int64_t N, int64_t K, int64_t blocksize, bnb_tensor* out_standard);
bnb_status BNB_CALL bnb_stub_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                       int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                       int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                       int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                       int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                   bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                   bnb_tensor* out_outlier_cols, int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_stub_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                     const bnb_tensor* row_stats, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                                bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                             const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out);
bnb_status BNB_CALL bnb_stub_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                               bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                               bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                               int64_t* out_outlier_count);
bnb_status BNB_CALL bnb_stub_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params,
                                                    bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                    bnb_tensor* state2, float* out_unorm);
bnb_status BNB_CALL bnb_stub_optimizer_update_8bit_blockwise(bnb_context* context,
                                                             const bnb_optimizer_params* params, bnb_tensor* p,
                                                             const bnb_tensor* g, bnb_tensor* state1,
                                                             bnb_tensor* state2, bnb_tensor* absmax1,
                                                             bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                             const bnb_tensor* qmap2);
bnb_status BNB_CALL bnb_stub_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params,
                                             const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                             const bnb_tensor* state2, double* out_update_sq, double* out_param_sq);
bnb_status BNB_CALL bnb_stub_percentile_clipping(bnb_context* context, const bnb_tensor* g,
                                                 bnb_tensor* gnorm_history, int32_t step, int32_t percentile,
                                                 float* out_gnorm, float* out_gnorm_scale);
bnb_status BNB_CALL bnb_stub_pager_configure(bnb_context* context, const bnb_pager_config* config);
bnb_status BNB_CALL bnb_stub_memory_stats(bnb_context* context, bnb_memory_stats* out);
bnb_status BNB_CALL bnb_stub_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer);
bnb_status BNB_CALL bnb_stub_buffer_unmap(bnb_buffer* buffer);

#ifdef __cplusplus
}
#endif

#endif /* BNB_COMMON_H */
