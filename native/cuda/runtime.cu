/*
 * runtime.cu — bnb_cuda / bnb_hip: device discovery, contexts, memory, streams, shared host helpers, the function
 * table and the two exported symbols. See gpu_backend.h for how every op slot is structured.
 *
 * No device: the runtime is linked statically (cudart_static) and only needs the driver at run time, so the library
 * loads on any machine. bnb_probe() returns 0 when there is no driver or no device, and every slot that needs a
 * device (all but backend_get_info, last_error_message and set_log_callback) then fails with BNB_ERR_NO_DEVICE and
 * a message carrying the runtime's reason.
 */
#include "gpu_backend.h"
#include "gpu_device.cuh"

#include "bnb_int8.h"
#include "bnb_optim.h"
#include "bnb_quant.h"

#include <mutex>
#include <new>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(BNB_GPU_HIP)
const char bnb_backend_name[] = "hip";
#define BNB_GPU_DESCRIPTION "AMD GPUs through HIP/ROCm (hand-written kernels; gfx90a, gfx940, gfx1030)"
#else
const char bnb_backend_name[] = "cuda";
#define BNB_GPU_DESCRIPTION "NVIDIA GPUs through CUDA (hand-written kernels; sm_60 and newer, static cudart)"
#endif

/* A GPU backend beats every CPU variant when a device is present. */
#define BNB_GPU_PROBE_SCORE 1000

#define BNB_GPU_BUFFER_MAGIC 0x42474255u /* "BGBU" */
#define BNB_GPU_STREAM_MAGIC 0x42475354u /* "BGST" */

/* ─── devices ────────────────────────────────────────────────────────────────────────────────────────────── */

static std::once_flag g_devices_once;
static int32_t g_device_count = 0;
static char g_no_device_reason[256] = "";

static void discover_devices(void) {
    int count = 0;
    const gpuError_t err = gpuGetDeviceCount(&count);
    if (err != gpuSuccess) {
        snprintf(g_no_device_reason, sizeof g_no_device_reason, "%s (%s)", gpuGetErrorString(err),
                 gpuGetErrorName(err));
        (void)gpuGetLastError(); /* clear the sticky-free error so later calls start clean */
        count = 0;
    } else if (count == 0) {
        snprintf(g_no_device_reason, sizeof g_no_device_reason, "the %s runtime reports 0 devices",
                 BNB_GPU_VENDOR_NAME);
    }
    g_device_count = count;
}

int32_t bnb_gpu_device_count(const char** why) {
    std::call_once(g_devices_once, discover_devices);
    if (why != NULL) *why = g_no_device_reason;
    return g_device_count;
}

static bnb_status no_device(const char* op) {
    const char* why = NULL;
    bnb_gpu_device_count(&why);
    return bnb_fail(BNB_ERR_NO_DEVICE, op, "no usable %s device on this machine: %s", BNB_GPU_VENDOR_NAME, why);
}

bnb_status bnb_gpu_fail(const char* op, const char* what, gpuError_t err) {
    const bnb_status status = err == gpuErrorMemoryAllocation ? BNB_ERR_OUT_OF_MEMORY : BNB_ERR_DEVICE;
    return bnb_fail(status, op, "%s failed: %s (%s)", what, gpuGetErrorString(err), gpuGetErrorName(err));
}

bnb_status bnb_gpu_check_launch(const char* op) {
    const gpuError_t err = gpuGetLastError();
    if (err != gpuSuccess) return bnb_gpu_fail(op, "kernel launch", err);
    return BNB_OK;
}

bnb_status bnb_gpu_enter(const char* op, bnb_context* context) {
    if (bnb_gpu_device_count(NULL) == 0) return no_device(op);
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_GPU_TRY(op, "set device", gpuSetDevice(context->common.device));
    return BNB_OK;
}

bnb_context* bnb_gpu_validation(bnb_context* context, bnb_gpu_validation_context* storage) {
    storage->common = context->common;
    storage->common.nonfinite_policy = BNB_NONFINITE_PROPAGATE;
    return (bnb_context*)(void*)storage;
}

bnb_status bnb_gpu_scratch(const char* op, bnb_context* context, size_t bytes, void** out) {
    if (bytes < 256) bytes = 256;
    if (context->scratch_bytes < bytes) {
        if (context->scratch != NULL) {
            BNB_GPU_TRY(op, "synchronize before growing scratch", gpuStreamSynchronize(context->stream));
            (void)gpuFree(context->scratch);
            context->scratch = NULL;
            context->scratch_bytes = 0;
        }
        size_t grown = bytes + bytes / 2;
        BNB_GPU_TRY(op, "allocate scratch", gpuMalloc(&context->scratch, grown));
        context->scratch_bytes = grown;
    }
    *out = context->scratch;
    return BNB_OK;
}

bnb_status bnb_gpu_host_code_table(const char* op, const bnb_tensor* code, int64_t count, float* host,
                                   bnb_tensor* shadow, const bnb_tensor** out) {
    *out = code;
    if (code == NULL || code->data == NULL || code->dtype != BNB_DTYPE_F32 || code->ndim < 0 ||
        code->ndim > BNB_MAX_DIMS || bnb_tensor_numel(code) != count || !bnb_tensor_is_contiguous(code))
        return BNB_OK; /* the validator rejects it without reading data */
    BNB_GPU_TRY(op, "read code table", gpuMemcpy(host, code->data, (size_t)count * sizeof(float), gpuMemcpyDefault));
    *shadow = *code;
    shadow->data = host;
    *out = shadow;
    return BNB_OK;
}

/* First (lowest linear index r*cols + c) NaN/Inf element of a float matrix → *first (initialised to ~0). */
__global__ void find_nonfinite_kernel(const void* data, int32_t dtype, int64_t rows, int64_t cols,
                                      int64_t row_stride, unsigned long long* first) {
    const int64_t total = rows * cols;
    for (int64_t i = bnb_gpu::global_thread(); i < total; i += bnb_gpu::grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        const float v = bnb_gpu::load_float(data, dtype, r * row_stride + c);
        if (!bnb_gpu::is_finite(v)) {
            bnb_gpu::atomic_min_u64(first, (unsigned long long)i);
            return; /* later indices of this thread cannot be smaller */
        }
    }
}

bnb_status bnb_gpu_check_finite(const char* op, const char* arg, bnb_context* context, const void* data,
                                int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride, int vector) {
    if (context->common.nonfinite_policy == BNB_NONFINITE_PROPAGATE || rows <= 0 || cols <= 0) return BNB_OK;
    void* scratch = NULL;
    BNB_TRY(bnb_gpu_scratch(op, context, sizeof(unsigned long long), &scratch));
    unsigned long long* first = (unsigned long long*)scratch;
    BNB_GPU_TRY(op, "clear scratch", gpuMemsetAsync(first, 0xFF, sizeof *first, context->stream));
    find_nonfinite_kernel<<<bnb_gpu_grid(context, rows * cols, 256), 256, 0, context->stream>>>(
        data, dtype, rows, cols, row_stride, first);
    BNB_TRY(bnb_gpu_check_launch(op));
    unsigned long long index = 0;
    BNB_GPU_TRY(op, "read NaN/Inf scan result",
                gpuMemcpyAsync(&index, first, sizeof index, gpuMemcpyDeviceToHost, context->stream));
    BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(context->stream));
    if (index == ~0ull) return BNB_OK;
    const int64_t r = (int64_t)index / cols, c = (int64_t)index - r * cols;
    const size_t width = bnb_dtype_size(dtype);
    uint32_t raw = 0;
    BNB_GPU_TRY(op, "read the non-finite element",
                gpuMemcpy(&raw, (const char*)data + (size_t)(r * row_stride + c) * width, width, gpuMemcpyDefault));
    float v;
    if (dtype == BNB_DTYPE_F16) v = bnb_f16_to_f32((uint16_t)raw);
    else if (dtype == BNB_DTYPE_BF16) v = bnb_bf16_to_f32((uint16_t)raw);
    else memcpy(&v, &raw, sizeof v);
    const char* what = v != v ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
    if (vector)
        return bnb_fail(BNB_ERR_NON_FINITE, op,
                        "%s[%lld] = %s; NaN/Inf inputs are rejected (set nonfinite_policy = "
                        "BNB_NONFINITE_PROPAGATE for bitsandbytes' behaviour)",
                        arg, (long long)c, what);
    return bnb_fail(BNB_ERR_NON_FINITE, op,
                    "%s[%lld, %lld] = %s; NaN/Inf inputs are rejected (set nonfinite_policy = "
                    "BNB_NONFINITE_PROPAGATE for bitsandbytes' behaviour)",
                    arg, (long long)r, (long long)c, what);
}

bnb_status bnb_gpu_write_scalar(const char* op, bnb_context* context, void* dst, const void* value, size_t bytes) {
    BNB_GPU_TRY(op, "write result", gpuMemcpyAsync(dst, value, bytes, gpuMemcpyDefault, context->stream));
    BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(context->stream));
    return BNB_OK;
}

bnb_status bnb_gpu_copy_out(const char* op, bnb_context* context, void* dst, const void* device_src, size_t bytes) {
    BNB_GPU_TRY(op, "copy result", gpuMemcpyAsync(dst, device_src, bytes, gpuMemcpyDefault, context->stream));
    BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(context->stream));
    return BNB_OK;
}

/* ─── paging counters ────────────────────────────────────────────────────────────────────────────────────── */

struct bnb_gpu_pager {
    std::mutex lock;
    int32_t references = 1;
    uint64_t budget = 0, paged = 0, pinned = 0, peak = 0;
};

static void pager_release(bnb_gpu_pager* pager) {
    if (pager == NULL) return;
    bool last;
    {
        std::lock_guard<std::mutex> guard(pager->lock);
        last = --pager->references == 0;
    }
    if (last) delete pager;
}

/* ─── runtime slots ──────────────────────────────────────────────────────────────────────────────────────── */

/* Feature bits of bnb_device_info.features for GPU backends (docs/backends.md). */
#define BNB_GPU_FEATURE_MANAGED_CONCURRENT (1ull << 0) /* managed memory migrates on demand; prefetch works */
#define BNB_GPU_FEATURE_DP4A (1ull << 1)               /* int8 dot products (sm_61+, AMD sdot4)           */
#define BNB_GPU_FEATURE_IMMA (1ull << 2)               /* int8 tensor-core mma.sync (sm_75+)              */
#define BNB_GPU_FEATURE_BF16_MMA (1ull << 3)           /* bf16 tensor-core mma.sync (sm_80+)              */

static bnb_status BNB_CALL gpu_backend_get_info(bnb_backend_info* out) {
    bnb_backend_info info;
    memset(&info, 0, sizeof info);
    info.device_kind = BNB_DEVICE_GPU;
    info.description = BNB_GPU_DESCRIPTION;
    /* every op; the paging slots work (budget + counters) but the driver does the paging: no BNB_OP_PAGER bit */
    info.ops = ((1ull << BNB_OP_COUNT) - 1) & ~(1ull << BNB_OP_PAGER);
    info.float_dtypes = BNB_FLOAT_DTYPES;
    info.quant_types = (1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4);
    info.weight_formats = (1u << BNB_WEIGHT_STANDARD) | (1u << BNB_WEIGHT_BNB_CPU) | (1u << BNB_WEIGHT_BACKEND);
    info.memory_kinds = (1u << BNB_MEMORY_DEVICE) | (1u << BNB_MEMORY_HOST_PINNED) | (1u << BNB_MEMORY_PAGED);
    info.optimizers = (1u << BNB_OPTIM_COUNT) - 1;
    return bnb_backend_info_copy(info, out);
}

static bnb_status BNB_CALL gpu_device_count(int32_t* out_count) {
    static const char op[] = "device_count";
    BNB_TRY(bnb_check_not_null(op, "out_count", out_count));
    *out_count = bnb_gpu_device_count(NULL); /* 0 without a driver or device: an answer, not an error (bnb.h) */
    return BNB_OK;
}

static int32_t device_attribute(int device, int attribute_id) {
    int value = 0;
    if (gpuDeviceGetAttribute(&value, (decltype(gpuDevAttrWarpSize))attribute_id, device) != gpuSuccess) {
        (void)gpuGetLastError();
        return 0;
    }
    return value;
}

static bnb_status BNB_CALL gpu_device_get_info(int32_t index, bnb_device_info* out) {
    static const char op[] = "device_get_info";
    BNB_TRY(bnb_check_not_null(op, "out", out));
    const int32_t count = bnb_gpu_device_count(NULL);
    if (count == 0) return no_device(op);
    if (index < 0 || index >= count)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "index = %d is outside [0, %d)", (int)index, (int)count);
    if (out->struct_size < sizeof(bnb_device_info))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)out->struct_size, (unsigned)sizeof(bnb_device_info));
    bnb_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    info.index = index;
    info.kind = BNB_DEVICE_GPU;
    info.compute_units = device_attribute(index, gpuDevAttrMultiProcessorCount);
    const int32_t major = device_attribute(index, gpuDevAttrComputeCapabilityMajor);
    const int32_t minor = device_attribute(index, gpuDevAttrComputeCapabilityMinor);
    info.compute_capability = major * 10 + minor;
    info.warp_size = device_attribute(index, gpuDevAttrWarpSize);
#if defined(BNB_GPU_HIP)
    if (hipDeviceGetName(info.name, (int)sizeof info.name, index) != hipSuccess) {
        (void)hipGetLastError();
        snprintf(info.name, sizeof info.name, "AMD GPU %d", (int)index);
    }
    size_t total = 0;
    if (hipDeviceTotalMem(&total, index) == hipSuccess) info.total_memory = total;
    else (void)hipGetLastError();
    info.features |= BNB_GPU_FEATURE_DP4A;
#else
    cudaDeviceProp prop;
    BNB_GPU_TRY(op, "cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, index));
    size_t name_length = strnlen(prop.name, sizeof prop.name);
    if (name_length >= sizeof info.name) name_length = sizeof info.name - 1;
    memcpy(info.name, prop.name, name_length);
    info.name[name_length] = '\0';
    info.total_memory = prop.totalGlobalMem;
    if (info.compute_capability >= 61) info.features |= BNB_GPU_FEATURE_DP4A;
    if (info.compute_capability >= 75) info.features |= BNB_GPU_FEATURE_IMMA;
    if (info.compute_capability >= 80) info.features |= BNB_GPU_FEATURE_BF16_MMA;
#endif
    if (device_attribute(index, gpuDevAttrConcurrentManagedAccess)) info.features |= BNB_GPU_FEATURE_MANAGED_CONCURRENT;
    /* free memory needs the device current; the caller's current device is restored */
    int previous = 0;
    if (gpuGetDevice(&previous) == gpuSuccess && gpuSetDevice(index) == gpuSuccess) {
        size_t free_bytes = 0, total_bytes = 0;
        if (gpuMemGetInfo(&free_bytes, &total_bytes) == gpuSuccess) info.free_memory = free_bytes;
        (void)gpuSetDevice(previous);
    }
    (void)gpuGetLastError();
    *out = info;
    return BNB_OK;
}

static uint32_t disabled_paths(void) {
    const char* list = getenv("BNB_GPU_DISABLE");
    uint32_t bits = 0;
    if (list == NULL) return 0;
    if (strstr(list, "imma") != NULL) bits |= BNB_GPU_DISABLE_IMMA;
    /* "mma" alone (not only as part of "imma") */
    for (const char* s = strstr(list, "mma"); s != NULL; s = strstr(s + 1, "mma"))
        if (s == list || s[-1] != 'i') bits |= BNB_GPU_DISABLE_MMA;
    if (strstr(list, "gemv") != NULL) bits |= BNB_GPU_DISABLE_GEMV;
    return bits;
}

static bnb_status BNB_CALL gpu_context_create(const bnb_context_options* options, bnb_context** out_context) {
    static const char op[] = "context_create";
    BNB_TRY(bnb_check_not_null(op, "out_context", out_context));
    const int32_t count = bnb_gpu_device_count(NULL);
    if (count == 0) return no_device(op);
    bnb_context_common common;
    BNB_TRY(bnb_context_options_resolve(op, options, count, &common));
    BNB_GPU_TRY(op, "set device", gpuSetDevice(common.device));
    bnb_context* context = (bnb_context*)calloc(1, sizeof *context);
    if (context == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a context");
    const gpuError_t err = gpuStreamCreateNonBlocking(&context->own_stream);
    if (err != gpuSuccess) {
        free(context);
        return bnb_gpu_fail(op, "create the context's stream", err);
    }
    common.num_threads = 1; /* host threads are not used by GPU backends */
    context->common = common;
    context->stream = context->own_stream;
    context->sm_count = device_attribute(common.device, gpuDevAttrMultiProcessorCount);
    context->cc = device_attribute(common.device, gpuDevAttrComputeCapabilityMajor) * 10 +
                  device_attribute(common.device, gpuDevAttrComputeCapabilityMinor);
    context->disabled = disabled_paths();
    context->pager = new (std::nothrow) bnb_gpu_pager();
    if (context->pager == NULL) {
        (void)gpuStreamDestroy(context->own_stream);
        free(context);
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate the context's paging record");
    }
    *out_context = context;
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_context_destroy(bnb_context* context) {
    static const char op[] = "context_destroy";
    if (context == NULL) return BNB_OK;
    BNB_TRY(bnb_gpu_enter(op, context));
    (void)gpuStreamSynchronize(context->stream);
    if (context->scratch != NULL) (void)gpuFree(context->scratch);
    (void)gpuStreamDestroy(context->own_stream);
    (void)gpuGetLastError();
    pager_release(context->pager);
    context->common.magic = 0;
    free(context);
    return BNB_OK;
}

static const char* BNB_CALL gpu_last_error_message(void) { return bnb_last_error(); }

static bnb_status BNB_CALL gpu_set_log_callback(bnb_log_fn callback, void* user_data) {
    return bnb_set_log_callback_impl(callback, user_data);
}

bnb_status BNB_CALL bnb_gpu_get_code_table(int32_t table, bnb_tensor* out) {
    static const char op[] = "get_code_table";
    if (bnb_gpu_device_count(NULL) == 0) return no_device(op);
    int64_t count = 0;
    const float* values = bnb_table_get(table, &count);
    if (values == NULL)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "table = %d is not a BNB_TABLE_* id (0…3)", (int)table);
    BNB_TRY(bnb_check_output(op, "out", out, BNB_DTYPE_BIT(BNB_DTYPE_F32), count, NULL));
    /* out may be host or device memory */
    BNB_GPU_TRY(op, "copy the table", gpuMemcpy(out->data, values, (size_t)count * sizeof(float), gpuMemcpyDefault));
    return BNB_OK;
}

/* ─── buffers ────────────────────────────────────────────────────────────────────────────────────────────── */

static bnb_status check_buffer(const char* op, bnb_buffer* buffer) {
    if (bnb_gpu_device_count(NULL) == 0) return no_device(op);
    BNB_TRY(bnb_check_not_null(op, "buffer", buffer));
    if (buffer->magic != BNB_GPU_BUFFER_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not a live buffer of this backend (freed?)");
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer) {
    static const char op[] = "buffer_alloc";
    BNB_TRY(bnb_gpu_enter(op, context));
    BNB_TRY(bnb_check_not_null(op, "out_buffer", out_buffer));
    BNB_TRY(bnb_check_memory_kind(op, kind));
    if (bytes == 0) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "bytes = 0: nothing to allocate");
    bnb_buffer* buffer = (bnb_buffer*)calloc(1, sizeof *buffer);
    if (buffer == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a buffer record");
    void* data = NULL;
    gpuError_t err;
    const char* what;
    if (kind == BNB_MEMORY_DEVICE) {
        what = "device allocation";
        err = gpuMalloc(&data, bytes);
    } else if (kind == BNB_MEMORY_HOST_PINNED) {
        what = "pinned host allocation";
        err = gpuHostAlloc(&data, bytes);
    } else {
        what = "managed (paged) allocation";
        err = gpuMallocManaged(&data, bytes);
    }
    if (err != gpuSuccess) {
        free(buffer);
        (void)gpuGetLastError();
        if (err == gpuErrorMemoryAllocation)
            return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "%s of %zu bytes failed: %s", what, bytes, gpuGetErrorString(err));
        return bnb_gpu_fail(op, what, err);
    }
    /* zeroed, and finished before the caller's next op on any stream */
    if (kind == BNB_MEMORY_HOST_PINNED) {
        memset(data, 0, bytes);
    } else {
        err = gpuMemsetAsync(data, 0, bytes, context->stream);
        if (err == gpuSuccess) err = gpuStreamSynchronize(context->stream);
        if (err != gpuSuccess) {
            (void)gpuFree(data);
            free(buffer);
            return bnb_gpu_fail(op, "zero the new buffer", err);
        }
    }
    if (kind == BNB_MEMORY_PAGED) {
        bnb_gpu_pager* pager = context->pager;
        std::lock_guard<std::mutex> guard(pager->lock);
        pager->references += 1;
        pager->paged += bytes;
        if (pager->paged > pager->peak) pager->peak = pager->paged;
        buffer->pager = pager;
    }
    buffer->magic = BNB_GPU_BUFFER_MAGIC;
    buffer->kind = kind;
    buffer->device = context->common.device;
    buffer->bytes = bytes;
    buffer->data = data;
    *out_buffer = buffer;
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_buffer_free(bnb_buffer* buffer) {
    static const char op[] = "buffer_free";
    if (buffer == NULL) return BNB_OK;
    BNB_TRY(check_buffer(op, buffer));
    if (buffer->maps > 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped %d time(s): buffer_unmap it first",
                        (int)buffer->maps);
    BNB_GPU_TRY(op, "set device", gpuSetDevice(buffer->device));
    const gpuError_t err = buffer->kind == BNB_MEMORY_HOST_PINNED ? gpuFreeHost(buffer->data) : gpuFree(buffer->data);
    if (err != gpuSuccess) return bnb_gpu_fail(op, "free", err);
    if (buffer->pager != NULL) {
        {
            std::lock_guard<std::mutex> guard(buffer->pager->lock);
            buffer->pager->paged -= buffer->bytes;
        }
        pager_release(buffer->pager);
    }
    buffer->magic = 0;
    free(buffer);
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes) {
    static const char op[] = "buffer_get_pointer";
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_pointer", out_pointer));
    *out_pointer = buffer->data;
    if (out_bytes) *out_bytes = buffer->bytes;
    return BNB_OK;
}

/* buffer_map / buffer_map_access: pinned and managed memory are host-addressable at the same address and never
 * move, so a map only counts (buffer_free refuses a mapped buffer, as on CPU backends). Mapping a PAGED buffer waits
 * for the buffer's device, so the host never reads managed memory a kernel is still writing. */
static bnb_status map_buffer(const char* op, bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_host_pointer", out_host_pointer));
    if (access != BNB_MAP_READ_WRITE && access != BNB_MAP_READ)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "access = %d is not a BNB_MAP_* value (0, 1)", (int)access);
    if (buffer->kind == BNB_MEMORY_DEVICE)
        return bnb_fail(BNB_ERR_NOT_SUPPORTED, op,
                        "a BNB_MEMORY_DEVICE buffer is not host-addressable; use memory_copy, or allocate "
                        "BNB_MEMORY_PAGED / BNB_MEMORY_HOST_PINNED");
    if (buffer->maps == INT32_MAX) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped 2^31-1 times");
    if (buffer->kind == BNB_MEMORY_PAGED) {
        BNB_GPU_TRY(op, "set device", gpuSetDevice(buffer->device));
        BNB_GPU_TRY(op, "synchronize the device before host access", gpuDeviceSynchronize());
        std::lock_guard<std::mutex> guard(buffer->pager->lock);
        if (buffer->maps == 0) buffer->pager->pinned += buffer->bytes;
    }
    buffer->maps += 1;
    *out_host_pointer = buffer->data;
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_buffer_map(bnb_buffer* buffer, void** out_host_pointer) {
    return map_buffer("buffer_map", buffer, BNB_MAP_READ_WRITE, out_host_pointer);
}

static bnb_status BNB_CALL gpu_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    return map_buffer("buffer_map_access", buffer, access, out_host_pointer);
}

static bnb_status BNB_CALL gpu_buffer_unmap(bnb_buffer* buffer) {
    static const char op[] = "buffer_unmap";
    BNB_TRY(check_buffer(op, buffer));
    if (buffer->maps == 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not mapped (buffer_unmap without buffer_map)");
    buffer->maps -= 1;
    if (buffer->maps == 0 && buffer->pager != NULL) {
        std::lock_guard<std::mutex> guard(buffer->pager->lock);
        buffer->pager->pinned -= buffer->bytes;
    }
    return BNB_OK;
}

/* The budget is recorded and reported; the driver pages managed memory itself (oversubscription, prefetch), so
 * there is no spill file on GPUs: spill_directory is checked like on CPU backends and otherwise unused. */
static bnb_status BNB_CALL gpu_pager_configure(bnb_context* context, const bnb_pager_config* config) {
    static const char op[] = "pager_configure";
    BNB_TRY(bnb_gpu_enter(op, context));
    uint64_t budget = 0;
    if (config != NULL) {
        if (config->struct_size < sizeof(bnb_pager_config))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.struct_size = %u is smaller than ABI 1's %u",
                            (unsigned)config->struct_size, (unsigned)sizeof(bnb_pager_config));
        if (config->reserved != 0)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.reserved = %u must be 0", (unsigned)config->reserved);
        struct stat info;
        if (config->spill_directory != NULL && config->spill_directory[0] != '\0' &&
            (stat(config->spill_directory, &info) != 0 || !S_ISDIR(info.st_mode)))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.spill_directory = '%s' is not an existing directory",
                            config->spill_directory);
        budget = config->budget_bytes;
    }
    std::lock_guard<std::mutex> guard(context->pager->lock);
    context->pager->budget = budget;
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_memory_stats(bnb_context* context, bnb_memory_stats* out) {
    static const char op[] = "memory_stats";
    BNB_TRY(bnb_gpu_enter(op, context));
    BNB_TRY(bnb_check_not_null(op, "out", out));
    if (out->struct_size < sizeof(bnb_memory_stats))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)out->struct_size, (unsigned)sizeof(bnb_memory_stats));
    bnb_memory_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = (uint32_t)sizeof s;
    {
        std::lock_guard<std::mutex> guard(context->pager->lock);
        s.budget_bytes = context->pager->budget;
        s.paged_bytes = context->pager->paged;
        s.pinned_bytes = context->pager->pinned;
        /* residency of managed memory is the driver's business: resident/peak follow the allocated bytes */
        s.resident_bytes = context->pager->paged;
        s.peak_resident_bytes = context->pager->peak;
    }
    memcpy(out, &s, sizeof s);
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes,
                                           int32_t direction) {
    static const char op[] = "memory_copy";
    BNB_TRY(bnb_gpu_enter(op, context));
    BNB_TRY(bnb_check_copy_direction(op, direction));
    if (bytes == 0) return BNB_OK;
    BNB_TRY(bnb_check_not_null(op, "dst", dst));
    BNB_TRY(bnb_check_not_null(op, "src", src));
    static const char* const names[4] = {"host-to-device copy", "device-to-host copy", "device-to-device copy",
                                         "host-to-host copy"};
    const auto kind = direction == BNB_COPY_HOST_TO_DEVICE   ? gpuMemcpyHostToDevice
                      : direction == BNB_COPY_DEVICE_TO_HOST ? gpuMemcpyDeviceToHost
                      : direction == BNB_COPY_DEVICE_TO_DEVICE ? gpuMemcpyDeviceToDevice
                                                               : gpuMemcpyHostToHost;
    BNB_GPU_TRY(op, names[direction], gpuMemcpyAsync(dst, src, bytes, kind, context->stream));
    /* copies that land in host memory are complete when the call returns (as on CPU backends) */
    if (direction == BNB_COPY_DEVICE_TO_HOST || direction == BNB_COPY_HOST_TO_HOST)
        BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(context->stream));
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                              int32_t target) {
    static const char op[] = "paged_prefetch";
    BNB_TRY(bnb_gpu_enter(op, context));
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_prefetch(op, target, offset, bytes, buffer->bytes));
    /* Only managed memory migrates; device and pinned memory stay where they are. Devices without concurrent
     * managed access (Windows, pre-Pascal) migrate at kernel launch instead: the hint is a no-op there. */
    if (buffer->kind != BNB_MEMORY_PAGED || bytes == 0 ||
        !device_attribute(context->common.device, gpuDevAttrConcurrentManagedAccess))
        return BNB_OK;
    const int where = target == BNB_PREFETCH_TO_DEVICE ? context->common.device : gpuCpuDeviceId;
    BNB_GPU_TRY(op, "prefetch",
                gpuMemPrefetchAsync((char*)buffer->data + offset, bytes, where, context->stream));
    return BNB_OK;
}

/* ─── streams ────────────────────────────────────────────────────────────────────────────────────────────── */

static bnb_status check_stream(const char* op, bnb_stream* stream) {
    if (bnb_gpu_device_count(NULL) == 0) return no_device(op);
    BNB_TRY(bnb_check_not_null(op, "stream", stream));
    if (stream->magic != BNB_GPU_STREAM_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "stream is not a live stream of this backend (destroyed?)");
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream) {
    static const char op[] = "stream_create";
    BNB_TRY(bnb_gpu_enter(op, context));
    BNB_TRY(bnb_check_not_null(op, "out_stream", out_stream));
    bnb_stream* stream = (bnb_stream*)calloc(1, sizeof *stream);
    if (stream == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a stream record");
    stream->device = context->common.device;
    if (native_stream != NULL) {
        stream->owned = 0; /* a cudaStream_t / hipStream_t made elsewhere: used, never destroyed here */
        stream->stream = (gpuStream_t)native_stream;
    } else {
        const gpuError_t err = gpuStreamCreateNonBlocking(&stream->stream);
        if (err != gpuSuccess) {
            free(stream);
            return bnb_gpu_fail(op, "create stream", err);
        }
        stream->owned = 1;
    }
    stream->magic = BNB_GPU_STREAM_MAGIC;
    *out_stream = stream;
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_stream_destroy(bnb_stream* stream) {
    static const char op[] = "stream_destroy";
    if (stream == NULL) return BNB_OK;
    BNB_TRY(check_stream(op, stream));
    if (stream->owned) {
        BNB_GPU_TRY(op, "set device", gpuSetDevice(stream->device));
        BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(stream->stream));
        BNB_GPU_TRY(op, "destroy stream", gpuStreamDestroy(stream->stream));
    }
    stream->magic = 0;
    free(stream);
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_stream_synchronize(bnb_stream* stream) {
    static const char op[] = "stream_synchronize";
    BNB_TRY(check_stream(op, stream));
    BNB_GPU_TRY(op, "set device", gpuSetDevice(stream->device));
    BNB_GPU_TRY(op, "synchronize", gpuStreamSynchronize(stream->stream));
    return BNB_OK;
}

static bnb_status BNB_CALL gpu_context_set_stream(bnb_context* context, bnb_stream* stream) {
    static const char op[] = "context_set_stream";
    BNB_TRY(bnb_gpu_enter(op, context));
    if (stream != NULL) BNB_TRY(check_stream(op, stream));
    /* the context's scratch may still be in use by work queued on the old stream */
    BNB_GPU_TRY(op, "synchronize the previous stream", gpuStreamSynchronize(context->stream));
    if (stream == NULL) {
        context->stream = context->own_stream;
        return BNB_OK;
    }
    if (stream->device != context->common.device)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "stream belongs to device %d but the context to device %d",
                        (int)stream->device, (int)context->common.device);
    context->stream = stream->stream;
    return BNB_OK;
}

/* ─── the table and the two exports ──────────────────────────────────────────────────────────────────────── */

static const bnb_api gpu_api = {
    /* .abi_major = */ BNB_ABI_MAJOR,
    /* .abi_minor = */ BNB_ABI_MINOR,
    /* .struct_size = */ (uint32_t)sizeof(bnb_api),
    /* .reserved = */ 0,
    gpu_backend_get_info,
    gpu_device_count,
    gpu_device_get_info,
    gpu_context_create,
    gpu_context_destroy,
    gpu_last_error_message,
    gpu_set_log_callback,
    bnb_gpu_get_code_table,
    gpu_buffer_alloc,
    gpu_buffer_free,
    gpu_buffer_get_pointer,
    gpu_buffer_map,
    gpu_memory_copy,
    gpu_paged_prefetch,
    gpu_stream_create,
    gpu_stream_destroy,
    gpu_stream_synchronize,
    gpu_context_set_stream,
    bnb_gpu_quantize_blockwise,
    bnb_gpu_dequantize_blockwise,
    bnb_gpu_quantize_absmax_nested,
    bnb_gpu_quantize_4bit,
    bnb_gpu_dequantize_4bit,
    bnb_gpu_weight_pack_size,
    bnb_gpu_weight_pack,
    bnb_gpu_weight_unpack,
    bnb_gpu_gemv_4bit,
    bnb_gpu_gemm_4bit,
    bnb_gpu_int8_vectorwise_quant,
    bnb_gpu_int8_vectorwise_dequant,
    bnb_gpu_int8_linear_matmul,
    bnb_gpu_int8_mm_dequant,
    bnb_gpu_int8_double_quant,
    bnb_gpu_optimizer_update_32bit,
    bnb_gpu_optimizer_update_8bit_blockwise,
    bnb_gpu_optimizer_unorm,
    bnb_gpu_percentile_clipping,
    gpu_pager_configure,
    gpu_memory_stats,
    gpu_buffer_map_access,
    gpu_buffer_unmap,
};

extern "C" {

BNB_EXPORT int32_t BNB_CALL bnb_probe(void) { return bnb_gpu_device_count(NULL) > 0 ? BNB_GPU_PROBE_SCORE : 0; }

BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api) {
    return bnb_backend_get_api(&gpu_api, abi_major, out_api);
}

} /* extern "C" */
