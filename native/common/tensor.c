/* Tensor descriptors and argument validation shared by every backend. Each check names the op, the argument and
 * the offending value, and runs before an op writes anything, so a failed call leaves outputs untouched. */
#include "bnb_common.h"

#include <math.h>

int64_t bnb_tensor_numel(const bnb_tensor* t) {
    if (t->ndim < 0 || t->ndim > BNB_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int32_t d = 0; d < t->ndim; ++d) {
        const int64_t extent = t->shape[d];
        if (extent < 0) return -1;
        if (extent != 0 && n > INT64_MAX / extent) return -1;
        n *= extent;
    }
    return n;
}

int bnb_tensor_is_contiguous(const bnb_tensor* t) {
    int all_zero = 1;
    for (int32_t d = 0; d < t->ndim; ++d) all_zero &= t->stride[d] == 0;
    if (all_zero) return 1;
    int64_t expected = 1;
    for (int32_t d = t->ndim - 1; d >= 0; --d) {
        /* a dimension of extent 1 may carry any stride: it is never stepped over */
        if (t->shape[d] != 1 && t->stride[d] != expected) return 0;
        expected *= t->shape[d];
    }
    return 1;
}

bnb_status bnb_check_not_null(const char* op, const char* arg, const void* p) {
    if (p == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s is NULL", arg);
    return BNB_OK;
}

bnb_status bnb_check_memory_kind(const char* op, int32_t kind) {
    if (kind != BNB_MEMORY_DEVICE && kind != BNB_MEMORY_HOST_PINNED && kind != BNB_MEMORY_PAGED)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "kind = %d is not a BNB_MEMORY_* value (0…2)", (int)kind);
    return BNB_OK;
}

bnb_status bnb_check_copy_direction(const char* op, int32_t direction) {
    if (direction < BNB_COPY_HOST_TO_DEVICE || direction > BNB_COPY_HOST_TO_HOST)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "direction = %d is not a BNB_COPY_* value (0…3)",
                        (int)direction);
    return BNB_OK;
}

bnb_status bnb_check_prefetch(const char* op, int32_t target, size_t offset, size_t bytes, size_t buffer_bytes) {
    if (target != BNB_PREFETCH_TO_DEVICE && target != BNB_PREFETCH_TO_HOST)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "target = %d is not a BNB_PREFETCH_* value (0, 1)",
                        (int)target);
    if (offset > buffer_bytes || bytes > buffer_bytes - offset)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "range [%zu, %zu + %zu) exceeds the buffer's %zu bytes", offset,
                        offset, bytes, buffer_bytes);
    return BNB_OK;
}

/* The checks common to inputs and outputs; `role` is "input" or "output" for messages. */
static bnb_status check_tensor(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                               int64_t min_numel, int64_t* out_numel) {
    if (t == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s is NULL", arg);
    if (t->ndim < 0 || t->ndim > BNB_MAX_DIMS)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s.ndim = %d is outside [0, %d]", arg, (int)t->ndim,
                        BNB_MAX_DIMS);
    for (int32_t d = 0; d < t->ndim; ++d) {
        if (t->shape[d] < 0)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s.shape[%d] = %lld is negative", arg, (int)d,
                            (long long)t->shape[d]);
    }
    const int64_t n = bnb_tensor_numel(t);
    if (n < 0) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s: element count overflows int64", arg);
    if (t->dtype < 0 || t->dtype >= BNB_DTYPE_COUNT || !(dtype_mask & BNB_DTYPE_BIT(t->dtype)))
        return bnb_fail(BNB_ERR_UNSUPPORTED_DTYPE, op, "%s.dtype = %s (%d) is not accepted here", arg,
                        bnb_dtype_name(t->dtype), (int)t->dtype);
    if (n > 0 && t->data == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s.data is NULL", arg);
    if (!bnb_tensor_is_contiguous(t))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s must be contiguous (row-major, no gaps)", arg);
    if (n < min_numel)
        return bnb_fail(BNB_ERR_BUFFER_TOO_SMALL, op, "%s holds %lld elements but %lld are needed", arg,
                        (long long)n, (long long)min_numel);
    if (out_numel) *out_numel = n;
    return BNB_OK;
}

bnb_status bnb_check_input(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                           int64_t min_numel, int64_t* out_numel) {
    return check_tensor(op, arg, t, dtype_mask, min_numel, out_numel);
}

bnb_status bnb_check_output(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                            int64_t min_numel, int64_t* out_numel) {
    return check_tensor(op, arg, t, dtype_mask, min_numel, out_numel);
}

bnb_status bnb_check_matrix(const char* op, const char* arg, const bnb_tensor* t, uint32_t dtype_mask,
                            bnb_matrix* out) {
    if (t == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s is NULL", arg);
    if (t->ndim != 2)
        return bnb_fail(BNB_ERR_SHAPE_MISMATCH, op, "%s must be a 2-D matrix, got ndim = %d", arg, (int)t->ndim);
    if (t->shape[0] < 0 || t->shape[1] < 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s.shape = [%lld, %lld] has a negative extent", arg,
                        (long long)t->shape[0], (long long)t->shape[1]);
    if (t->dtype < 0 || t->dtype >= BNB_DTYPE_COUNT || !(dtype_mask & BNB_DTYPE_BIT(t->dtype)))
        return bnb_fail(BNB_ERR_UNSUPPORTED_DTYPE, op, "%s.dtype = %s (%d) is not accepted here", arg,
                        bnb_dtype_name(t->dtype), (int)t->dtype);
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const int contiguous_default = t->stride[0] == 0 && t->stride[1] == 0;
    const int64_t row_stride = contiguous_default ? cols : t->stride[0];
    if (!contiguous_default && t->stride[1] != 1 && cols > 1)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s.stride[1] = %lld: columns must be contiguous (1)", arg,
                        (long long)t->stride[1]);
    if (rows > 1 && row_stride < cols)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s.stride[0] = %lld is smaller than its %lld columns", arg,
                        (long long)row_stride, (long long)cols);
    if (rows > 0 && cols > 0) {
        if (row_stride > 0 && rows - 1 > (INT64_MAX - cols) / row_stride)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s: extent overflows int64", arg);
        if (t->data == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "%s.data is NULL", arg);
    }
    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = rows;
    out->cols = cols;
    out->row_stride = row_stride;
    return BNB_OK;
}

bnb_status bnb_check_blocksize(const char* op, const char* arg, int64_t blocksize) {
    if (blocksize < 32 || blocksize > 4096 || (blocksize & (blocksize - 1)) != 0)
        return bnb_fail(BNB_ERR_INVALID_BLOCKSIZE, op, "%s = %lld is not a power of two in [32, 4096]", arg,
                        (long long)blocksize);
    return BNB_OK;
}

bnb_status bnb_check_quant_type(const char* op, int32_t quant_type) {
    if (quant_type != BNB_QUANT_FP4 && quant_type != BNB_QUANT_NF4)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "quant_type = %d is not BNB_QUANT_FP4 (%d) or BNB_QUANT_NF4 (%d)", (int)quant_type,
                        BNB_QUANT_FP4, BNB_QUANT_NF4);
    return BNB_OK;
}

bnb_status bnb_check_absmax(const char* op, const bnb_absmax* absmax, int64_t blocks, bnb_scales* out) {
    if (absmax == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "absmax is NULL");
    if (absmax->struct_size < sizeof(uint32_t) + sizeof(int32_t) + sizeof(void*))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "absmax.struct_size = %u is too small",
                        (unsigned)absmax->struct_size);
    bnb_scales s = {0};
    if (absmax->nested == 0) {
        BNB_TRY(bnb_check_input(op, "absmax.values", absmax->values, BNB_DTYPE_BIT(BNB_DTYPE_F32), blocks, NULL));
        s.absmax = (const float*)absmax->values->data;
    } else if (absmax->nested == 1) {
        if (absmax->struct_size < sizeof(bnb_absmax))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "absmax.struct_size = %u is too small for nested stats",
                            (unsigned)absmax->struct_size);
        BNB_TRY(bnb_check_blocksize(op, "absmax.nested_blocksize", absmax->nested_blocksize));
        BNB_TRY(bnb_check_input(op, "absmax.values", absmax->values, BNB_DTYPE_BIT(BNB_DTYPE_U8), blocks, NULL));
        BNB_TRY(bnb_check_input(op, "absmax.nested_absmax", absmax->nested_absmax, BNB_DTYPE_BIT(BNB_DTYPE_F32),
                                bnb_ceil_div(blocks, absmax->nested_blocksize), NULL));
        BNB_TRY(bnb_check_input(op, "absmax.nested_code", absmax->nested_code, BNB_DTYPE_BIT(BNB_DTYPE_F32), 256,
                                NULL));
        if (!bnb_is_finite_f32(absmax->nested_offset))
            return bnb_fail(BNB_ERR_NON_FINITE, op, "absmax.nested_offset = %g is not finite",
                            (double)absmax->nested_offset);
        s.nested = 1;
        s.codes = (const uint8_t*)absmax->values->data;
        s.nested_absmax = (const float*)absmax->nested_absmax->data;
        s.nested_code = (const float*)absmax->nested_code->data;
        s.nested_blocksize = absmax->nested_blocksize;
        s.nested_offset = absmax->nested_offset;
    } else {
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "absmax.nested = %d is not 0 or 1", (int)absmax->nested);
    }
    *out = s;
    return BNB_OK;
}

const float* bnb_table_get(int32_t table, int64_t* out_count) {
    switch (table) {
    case BNB_TABLE_NF4: *out_count = 16; return bnb_table_nf4;
    case BNB_TABLE_FP4: *out_count = 16; return bnb_table_fp4;
    case BNB_TABLE_DYNAMIC_SIGNED: *out_count = 256; return bnb_table_dynamic_signed;
    case BNB_TABLE_DYNAMIC_UNSIGNED: *out_count = 256; return bnb_table_dynamic_unsigned;
    default: *out_count = 0; return NULL;
    }
}

const float* bnb_table_4bit(int32_t quant_type) {
    if (quant_type == BNB_QUANT_NF4) return bnb_table_nf4;
    if (quant_type == BNB_QUANT_FP4) return bnb_table_fp4;
    return NULL;
}

bnb_status bnb_context_options_resolve(const char* op, const bnb_context_options* options, int32_t device_count,
                                       bnb_context_common* out) {
    bnb_context_common c = {BNB_CONTEXT_MAGIC, 0, 0, BNB_NONFINITE_ERROR};
    if (options != NULL) {
        if (options->struct_size < sizeof(uint32_t) + 3 * sizeof(int32_t))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "options.struct_size = %u is smaller than ABI 1's %u",
                            (unsigned)options->struct_size, (unsigned)sizeof(bnb_context_options));
        c.device = options->device;
        c.num_threads = options->num_threads;
        c.nonfinite_policy = options->nonfinite_policy;
    }
    if (device_count <= 0) return bnb_fail(BNB_ERR_NO_DEVICE, op, "no usable device on this machine");
    if (c.device < 0 || c.device >= device_count)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "options.device = %d is outside [0, %d)", (int)c.device,
                        (int)device_count);
    if (c.num_threads < 0 || c.num_threads > 4096)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "options.num_threads = %d is outside [0, 4096]",
                        (int)c.num_threads);
    if (c.nonfinite_policy != BNB_NONFINITE_ERROR && c.nonfinite_policy != BNB_NONFINITE_PROPAGATE)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "options.nonfinite_policy = %d is not BNB_NONFINITE_ERROR (0) or BNB_NONFINITE_PROPAGATE (1)",
                        (int)c.nonfinite_policy);
    *out = c;
    return BNB_OK;
}

bnb_status bnb_check_context(const char* op, bnb_context* ctx, const bnb_context_common** out) {
    if (ctx == NULL) return bnb_fail(BNB_ERR_NULL_POINTER, op, "context is NULL");
    const bnb_context_common* common = (const bnb_context_common*)(const void*)ctx;
    if (common->magic != BNB_CONTEXT_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "context is not a live context of this backend (destroyed?)");
    if (out) *out = common;
    return BNB_OK;
}

bnb_status bnb_check_finite(const char* op, const char* arg, const bnb_context_common* ctx, const void* data,
                            int32_t dtype, int64_t n) {
    if (ctx->nonfinite_policy == BNB_NONFINITE_PROPAGATE) return BNB_OK;
    for (int64_t i = 0; i < n; ++i) {
        const float v = bnb_load_float(data, dtype, i);
        if (!bnb_is_finite_f32(v))
            return bnb_fail(BNB_ERR_NON_FINITE, op,
                            "%s[%lld] = %s; NaN/Inf inputs are rejected (set nonfinite_policy = "
                            "BNB_NONFINITE_PROPAGATE for bitsandbytes' behaviour)",
                            arg, (long long)i, isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_common_get_code_table(int32_t table, bnb_tensor* out) {
    static const char op[] = "get_code_table";
    int64_t count = 0;
    const float* values = bnb_table_get(table, &count);
    if (values == NULL)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "table = %d is not a BNB_TABLE_* id (0…3)", (int)table);
    BNB_TRY(bnb_check_output(op, "out", out, BNB_DTYPE_BIT(BNB_DTYPE_F32), count, NULL));
    float* dst = (float*)out->data;
    for (int64_t i = 0; i < count; ++i) dst[i] = values[i];
    return BNB_OK;
}

bnb_status bnb_backend_info_copy(bnb_backend_info info, bnb_backend_info* out) {
    static const char op[] = "backend_get_info";
    BNB_TRY(bnb_check_not_null(op, "out", out));
    if (out->struct_size < sizeof(bnb_backend_info))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)out->struct_size, (unsigned)sizeof(bnb_backend_info));
    info.struct_size = (uint32_t)sizeof info;
    info.abi_major = BNB_ABI_MAJOR;
    info.abi_minor = BNB_ABI_MINOR;
    info.name = bnb_backend_name;
    if (info.version == NULL) info.version = BNB_VERSION_STRING;
    *out = info;
    return BNB_OK;
}

bnb_status bnb_backend_get_api(const bnb_api* api, uint32_t abi_major, const bnb_api** out_api) {
    static const char op[] = "bnb_get_api";
    BNB_TRY(bnb_check_not_null(op, "out_api", out_api));
    if (abi_major != BNB_ABI_MAJOR)
        return bnb_fail(BNB_ERR_ABI_MISMATCH, op, "caller wants ABI major %u but this library implements %u",
                        (unsigned)abi_major, (unsigned)BNB_ABI_MAJOR);
    *out_api = api;
    return BNB_OK;
}
