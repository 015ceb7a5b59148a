/*
 * bnb.h — the Bnb C ABI, version 1.
 *
 * This header is the contract between every Bnb backend library (bnb_cpu_ref, bnb_cpu_avx2, bnb_cuda, ...)
 * and every consumer (Bnb.Core, C/C++ engines, other language bindings). Nothing else is public.
 *
 * ─── How a consumer uses a backend ─────────────────────────────────────────────────────────────────────────
 *   1. dlopen/LoadLibrary the backend file (e.g. libbnb_cpu_ref.so).
 *   2. bnb_probe()            → 0 = cannot run on this machine; otherwise a score (higher = preferred).
 *   3. bnb_get_api(BNB_ABI_MAJOR, &api) → the backend's immutable function table, or BNB_ERR_ABI_MISMATCH.
 *   4. api->context_create(&opts, &ctx); call ops with ctx; api->context_destroy(ctx).
 *   Each library exports exactly these two symbols; everything else is reached through the table.
 *
 * ─── Rules that hold for every entry of the table ──────────────────────────────────────────────────────────
 *   * Every entry returns a bnb_status (except last_error_message). On failure the calling thread's error message
 *     (api->last_error_message()) names the backend, the op, the offending argument and its value, e.g.
 *     "bnb_cpu_ref: quantize_4bit: blocksize = 100 is not a power of two in [32, 4096]".
 *   * A failed call leaves every output untouched (validation happens before any write).
 *   * The caller owns all memory. Ops never allocate their outputs; sizes are implied by the documented shapes.
 *   * Nothing aborts, exits, prints or throws across the boundary.
 *   * Thread safety: the table and everything reached through backend_get_info/device_get_info are immutable and
 *     may be used from any thread. A bnb_context is externally synchronized: one thread at a time per context
 *     (use one context per thread for parallel callers). Ops on distinct contexts may run concurrently.
 *   * Sizes and element counts are int64_t; tensors with more than 2^31 elements are supported.
 *   * ABI types only: fixed-width integers, float, double, size_t (bytes), pointers, opaque handles; enums travel
 *     as int32_t. Structs that may grow start with `uint32_t struct_size` (set it to sizeof(the struct) you were
 *     compiled against; backends read only the fields that fit).
 *   * The table is append-only: new slots go at the end and bump BNB_ABI_MINOR; any change to an existing slot
 *     or struct field bumps BNB_ABI_MAJOR (see docs/abi.md).
 *
 * ─── Tensors ───────────────────────────────────────────────────────────────────────────────────────────────
 *   Every array crosses the boundary as a bnb_tensor {data, dtype, ndim, shape[4], stride[4]}. Strides are in
 *   elements; a stride of 0 in every dimension means "contiguous row-major". The declared shape is the buffer's
 *   capacity: an op whose output needs more elements than declared fails with BNB_ERR_BUFFER_TOO_SMALL and
 *   writes nothing. Unless an op says otherwise, inputs are read as their flattened row-major element sequence
 *   and must be contiguous; 2-D matrix operands accept a row stride >= the row length (stride[1] must be 1).
 *   An optional tensor argument is passed as NULL.
 */
#ifndef BNB_BNB_H
#define BNB_BNB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ─── Versions and export macros ─────────────────────────────────────────────────────────────────────────── */

#define BNB_ABI_MAJOR 1
#define BNB_ABI_MINOR 0

#if defined(_WIN32)
#define BNB_CALL __cdecl
#if defined(BNB_BUILDING_BACKEND)
#define BNB_EXPORT __declspec(dllexport)
#else
#define BNB_EXPORT __declspec(dllimport)
#endif
#else
#define BNB_CALL
#define BNB_EXPORT __attribute__((visibility("default")))
#endif

/* ─── Status codes ───────────────────────────────────────────────────────────────────────────────────────── */

typedef int32_t bnb_status;

#define BNB_OK 0
#define BNB_ERR_INVALID_ARGUMENT 1  /* an argument value is out of its documented range                      */
#define BNB_ERR_NULL_POINTER 2      /* a required pointer (tensor, data, out-parameter) is NULL               */
#define BNB_ERR_BUFFER_TOO_SMALL 3  /* an output tensor's declared size is smaller than the op needs          */
#define BNB_ERR_SHAPE_MISMATCH 4    /* operand shapes do not agree (e.g. gemm K, optimizer param vs grad)     */
#define BNB_ERR_UNSUPPORTED_DTYPE 5 /* a tensor has a dtype this op does not accept                           */
#define BNB_ERR_INVALID_BLOCKSIZE 6 /* blocksize not a power of two in the op's range                         */
#define BNB_ERR_NON_FINITE 7        /* NaN/Inf input rejected under BNB_NONFINITE_ERROR                        */
#define BNB_ERR_NOT_SUPPORTED 8     /* the op/feature is not implemented by this backend                      */
#define BNB_ERR_OUT_OF_MEMORY 9     /* an allocation (buffer_alloc, context scratch) failed                   */
#define BNB_ERR_ABI_MISMATCH 10     /* bnb_get_api was asked for an ABI major this library does not implement */
#define BNB_ERR_NO_DEVICE 11        /* the backend has no usable device on this machine                       */
#define BNB_ERR_DEVICE 12           /* a device/driver call failed                                            */
#define BNB_ERR_INTERNAL 13         /* a bug: please report with the message                                  */
#define BNB_ERR_IO 14               /* file I/O failed (the paging spill file); the message names file and OS error */

/* ─── Enumerations (passed as int32_t) ───────────────────────────────────────────────────────────────────── */

/* Element types. Bit i of a capability mask stands for dtype i. */
#define BNB_DTYPE_F32 0
#define BNB_DTYPE_F16 1  /* IEEE binary16                                         */
#define BNB_DTYPE_BF16 2 /* bfloat16 (upper half of a binary32)                   */
#define BNB_DTYPE_U8 3
#define BNB_DTYPE_I8 4
#define BNB_DTYPE_I32 5
#define BNB_DTYPE_I64 6
#define BNB_DTYPE_F64 7
#define BNB_DTYPE_COUNT 8

/* 4-bit data types. */
#define BNB_QUANT_FP4 1
#define BNB_QUANT_NF4 2

/* Rounding of 8-bit blockwise quantization (spec §2.5). */
#define BNB_ROUND_NEAREST 0     /* exact nearest code, ties to the lower index; bitsandbytes' default backend */
#define BNB_ROUND_BNB_CPU_LUT 1 /* bit-identical to bitsandbytes' CPU library (65 536-bin LUT)              */

/* What quantizers do with NaN/Inf inputs (context option). */
#define BNB_NONFINITE_ERROR 0     /* default: fail with BNB_ERR_NON_FINITE naming the first bad index          */
#define BNB_NONFINITE_PROPAGATE 1 /* encode as bitsandbytes does (NaN → code 0, Inf makes its block's absmax Inf) */

/* Code tables served by get_code_table (one definition of every number lives in the backend). */
#define BNB_TABLE_NF4 0              /* 16 entries                                                    */
#define BNB_TABLE_FP4 1              /* 16 entries (index 8 = +0.0, as bitsandbytes' Python table)     */
#define BNB_TABLE_DYNAMIC_SIGNED 2   /* 256 entries, create_dynamic_map(signed=True)                   */
#define BNB_TABLE_DYNAMIC_UNSIGNED 3 /* 256 entries, create_dynamic_map(signed=False)                  */

/* Packed 4-bit weight layouts (weight_pack / weight_unpack / gemm). */
#define BNB_WEIGHT_STANDARD 0   /* bitsandbytes layout: W[N,K] row-major codes, element 2i in the high nibble */
#define BNB_WEIGHT_BNB_CPU 1    /* bitsandbytes' _convert_weight_packed_for_cpu layout [N, K/2] (spec §2.10.4) */
#define BNB_WEIGHT_BACKEND 2    /* the backend's own fastest layout (may equal one of the above)              */

/* Memory kinds for buffer_alloc. */
#define BNB_MEMORY_DEVICE 0 /* device memory (host memory on CPU backends)                    */
#define BNB_MEMORY_HOST_PINNED 1
#define BNB_MEMORY_PAGED 2  /* managed / unified memory that migrates on demand            */

/* memcpy directions. */
#define BNB_COPY_HOST_TO_DEVICE 0
#define BNB_COPY_DEVICE_TO_HOST 1
#define BNB_COPY_DEVICE_TO_DEVICE 2
#define BNB_COPY_HOST_TO_HOST 3

/* paged_prefetch targets. CPU backends: "device" is the pager's fast-memory budget (RAM), "host" the spill file. */
#define BNB_PREFETCH_TO_DEVICE 0 /* make resident (load ahead) without mapping                               */
#define BNB_PREFETCH_TO_HOST 1   /* CPU: write back if dirty and release the fast memory (evict now)         */

/* buffer_map_access modes. */
#define BNB_MAP_READ_WRITE 0 /* the caller may write: a paged buffer is written back when it is evicted     */
#define BNB_MAP_READ 1       /* the caller only reads: a clean paged buffer is evicted without a write-back */

/* Device kinds. */
#define BNB_DEVICE_CPU 0
#define BNB_DEVICE_GPU 1
#define BNB_DEVICE_ACCELERATOR 2

/* Log levels for the log callback. */
#define BNB_LOG_ERROR 0
#define BNB_LOG_WARNING 1
#define BNB_LOG_INFO 2
#define BNB_LOG_DEBUG 3

/* Optimizer kinds (bitsandbytes kernel names). */
#define BNB_OPTIM_ADAM 0     /* Adam/AdamW: decoupled weight decay (bitsandbytes semantics)                  */
#define BNB_OPTIM_MOMENTUM 1 /* SGD with momentum; coupled weight decay                                       */
#define BNB_OPTIM_RMSPROP 2
#define BNB_OPTIM_ADAGRAD 3
#define BNB_OPTIM_LION 4
#define BNB_OPTIM_LAMB 5     /* Adam + trust ratio (max_unorm)                                                */
#define BNB_OPTIM_LARS 6     /* momentum + trust ratio (max_unorm)                                            */
#define BNB_OPTIM_ADEMAMIX 7 /* state1 holds two EMAs: [2, n] (m1 then m2); absmax1 [2, blocks] in 8-bit     */
#define BNB_OPTIM_COUNT 8

/* Operation ids: bit i of bnb_backend_info.ops says the backend implements op i natively. */
#define BNB_OP_QUANTIZE_BLOCKWISE 0
#define BNB_OP_DEQUANTIZE_BLOCKWISE 1
#define BNB_OP_QUANTIZE_ABSMAX_NESTED 2
#define BNB_OP_QUANTIZE_4BIT 3
#define BNB_OP_DEQUANTIZE_4BIT 4
#define BNB_OP_WEIGHT_PACK 5
#define BNB_OP_GEMV_4BIT 6
#define BNB_OP_GEMM_4BIT 7
#define BNB_OP_INT8_VECTORWISE_QUANT 8
#define BNB_OP_INT8_VECTORWISE_DEQUANT 9
#define BNB_OP_INT8_LINEAR_MATMUL 10
#define BNB_OP_INT8_MM_DEQUANT 11
#define BNB_OP_INT8_DOUBLE_QUANT 12
#define BNB_OP_OPTIMIZER_32BIT 13
#define BNB_OP_OPTIMIZER_8BIT_BLOCKWISE 14
#define BNB_OP_OPTIMIZER_UNORM 15
#define BNB_OP_PERCENTILE_CLIPPING 16
#define BNB_OP_BUFFERS 17
#define BNB_OP_STREAMS 18
#define BNB_OP_PAGER 19 /* pager_configure / memory_stats / buffer_map_access / buffer_unmap (budget, spill, LRU) */
#define BNB_OP_COUNT 20

/* ─── Plain data structs ─────────────────────────────────────────────────────────────────────────────────── */

#define BNB_MAX_DIMS 4

/* A view of caller-owned memory. `data` is a host pointer on CPU backends and a device pointer on GPU backends. */
typedef struct bnb_tensor {
    void* data;
    int32_t dtype;                  /* BNB_DTYPE_*                                                  */
    int32_t ndim;                   /* 0 (scalar) … BNB_MAX_DIMS                                    */
    int64_t shape[BNB_MAX_DIMS];    /* shape[i] >= 0; entries >= ndim are ignored                   */
    int64_t stride[BNB_MAX_DIMS];   /* in elements; all zero = contiguous row-major                 */
} bnb_tensor;

/* Per-block scales of a blockwise-quantized tensor: plain float32, or 8-bit codes with nested statistics
 * ("double quantization", spec §2.7): absmax[i] = nested_code[codes[i]] * nested_absmax[i / nested_blocksize]
 * + nested_offset. */
typedef struct bnb_absmax {
    uint32_t struct_size;
    int32_t nested;             /* 0: `values` is float32 [blocks]; 1: `values` is uint8 codes [blocks]  */
    const bnb_tensor* values;
    const bnb_tensor* nested_absmax; /* float32 [ceil(blocks / nested_blocksize)]   (nested only) */
    const bnb_tensor* nested_code;   /* float32 [256], usually BNB_TABLE_DYNAMIC_SIGNED (nested only) */
    int64_t nested_blocksize;        /* power of two in [32, 4096]; 256 for 4-bit weights (nested only) */
    float nested_offset;             /* mean of the original absmax (nested only)                */
} bnb_absmax;

/* Filled by backend_get_info. Strings are static, UTF-8, and live as long as the library is loaded. */
typedef struct bnb_backend_info {
    uint32_t struct_size;       /* in: sizeof(bnb_backend_info) of the caller                                 */
    uint32_t abi_major;
    uint32_t abi_minor;
    int32_t device_kind;        /* BNB_DEVICE_*                                                               */
    const char* name;           /* "cpu_ref", "cpu_avx2", "cuda", …  (device strings are "<name>:<index>")   */
    const char* description;    /* human readable, e.g. "portable scalar reference (test oracle)"            */
    const char* version;        /* library version, e.g. "0.1.0"                                             */
    uint64_t ops;               /* bit BNB_OP_* set = implemented natively (else BNB_ERR_NOT_SUPPORTED)      */
    uint32_t float_dtypes;      /* bit BNB_DTYPE_* set = accepted as float activation/weight dtype            */
    uint32_t quant_types;       /* bit BNB_QUANT_* set = 4-bit types supported                                */
    uint32_t weight_formats;    /* bit BNB_WEIGHT_* set = accepted by weight_pack / gemm                      */
    uint32_t memory_kinds;      /* bit BNB_MEMORY_* set = accepted by buffer_alloc                            */
    uint32_t optimizers;        /* bit BNB_OPTIM_* set                                                       */
    uint32_t reserved;
} bnb_backend_info;

typedef struct bnb_device_info {
    uint32_t struct_size;       /* in: sizeof(bnb_device_info) of the caller                                  */
    int32_t index;
    int32_t kind;               /* BNB_DEVICE_*                                                               */
    int32_t compute_units;      /* cores / SMs / CUs                                                          */
    char name[128];             /* UTF-8, NUL-terminated                                                      */
    uint64_t total_memory;      /* bytes                                                                      */
    uint64_t free_memory;       /* bytes, 0 if unknown                                                        */
    uint64_t features;          /* backend-specific feature bits (CPU: see docs/backends.md)                  */
    int32_t compute_capability; /* GPUs: major*10+minor; else 0                                               */
    int32_t warp_size;          /* GPUs: 32 or 64; else 0                                                     */
} bnb_device_info;

typedef struct bnb_context_options {
    uint32_t struct_size;
    int32_t device;             /* device index, 0 … device_count-1                                           */
    int32_t num_threads;        /* CPU backends: 0 = backend default, 1 = run on the caller's thread only     */
    int32_t nonfinite_policy;   /* BNB_NONFINITE_*                                                            */
} bnb_context_options;

/* Hyper-parameters of one optimizer step (spec §3). Unused fields are ignored by kinds that do not need them.
 * Scalars are double, like the Python floats bitsandbytes derives its constants from (1 - beta, beta^t, lr * wd are
 * computed in double and rounded to float32 where they meet a tensor); float32 would shift them by up to 1e-5. */
typedef struct bnb_optimizer_params {
    uint32_t struct_size;
    int32_t kind;               /* BNB_OPTIM_*                                                                */
    int32_t step;               /* 1-based step number (incremented by the caller before each update)       */
    int32_t rounding;           /* 8-bit state requantization: BNB_ROUND_*                                    */
    int32_t skip_zeros;         /* accepted for compatibility; bitsandbytes' CPU semantics ignore it          */
    int32_t reserved;           /* must be 0                                                                  */
    double lr;
    double beta1;
    double beta2;
    double beta3;               /* AdEMAMix slow EMA                                                          */
    double alpha;               /* AdEMAMix mixing coefficient                                                */
    double eps;
    double weight_decay;
    double gnorm_scale;         /* gradient multiplier (from percentile_clipping), 1.0 = none                 */
    double max_unorm;           /* LAMB/LARS trust-ratio bound; 0 = off                                      */
    double param_norm;          /* ||p||2 before the step for max_unorm; < 0 = let the op compute it        */
} bnb_optimizer_params;

/* Paging allocator settings of a context (pager_configure). */
typedef struct bnb_pager_config {
    uint32_t struct_size;
    uint32_t reserved;          /* must be 0                                                                  */
    uint64_t budget_bytes;      /* fast memory for PAGED buffers (CPU: RAM; GPU: device memory); 0 = unlimited */
    const char* spill_directory; /* UTF-8 directory of the spill file; NULL or "" = the system temp directory  */
} bnb_pager_config;

/* Counters of a context's paging allocator (memory_stats). Sizes are bytes, rounded up to 64 per buffer. Counters
 * marked "cumulative" only grow over the context's life. */
typedef struct bnb_memory_stats {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t budget_bytes;        /* the configured budget (0 = unlimited)                                     */
    uint64_t paged_bytes;         /* live PAGED buffers, resident or not                                        */
    uint64_t resident_bytes;      /* PAGED buffers currently in fast memory                                     */
    uint64_t pinned_bytes;        /* of which mapped (cannot be evicted)                                        */
    uint64_t peak_resident_bytes; /* high-water mark of resident_bytes                                          */
    uint64_t evicted_bytes;       /* cumulative: bytes moved out of fast memory                                 */
    uint64_t written_bytes;       /* cumulative: bytes written to the spill (dirty write-backs only)             */
    uint64_t loaded_bytes;        /* cumulative: bytes read back from the spill                                 */
    uint64_t evictions;           /* cumulative: buffers evicted                                                */
    uint64_t loads;               /* cumulative: buffers read back from the spill                               */
    uint64_t spill_file_bytes;    /* current size of the spill file (0 until the first write-back)              */
} bnb_memory_stats;

/* ─── Opaque handles ─────────────────────────────────────────────────────────────────────────────────────── */

typedef struct bnb_context bnb_context;
typedef struct bnb_buffer bnb_buffer;
typedef struct bnb_stream bnb_stream;

typedef void(BNB_CALL* bnb_log_fn)(void* user_data, int32_t level, const char* message);

/* ─── The function table ─────────────────────────────────────────────────────────────────────────────────── */

typedef struct bnb_api {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(bnb_api) in the backend; slots beyond what the caller knows are ignored */
    uint32_t reserved;

    /* ── runtime ─────────────────────────────────────────────────────────────────────────────────────────── */

    /* Fills *out (up to out->struct_size bytes). Never fails on a valid pointer. Thread-safe. */
    bnb_status(BNB_CALL* backend_get_info)(bnb_backend_info* out);

    /* Number of usable devices (0 on a machine without the backend's hardware; CPU backends report 1). */
    bnb_status(BNB_CALL* device_count)(int32_t* out_count);

    /* Describes device `index`. BNB_ERR_INVALID_ARGUMENT for an index outside [0, device_count). Thread-safe. */
    bnb_status(BNB_CALL* device_get_info)(int32_t index, bnb_device_info* out);

    /* Creates a context (device, thread count, NaN policy). options may be NULL for defaults. The context owns its
     * worker threads and scratch memory; CPU backends start no threads when num_threads == 1.
     * Statuses: OK, INVALID_ARGUMENT (device/threads/policy), NO_DEVICE, OUT_OF_MEMORY. */
    bnb_status(BNB_CALL* context_create)(const bnb_context_options* options, bnb_context** out_context);

    /* Destroys a context and joins its threads. NULL is accepted (no-op). */
    bnb_status(BNB_CALL* context_destroy)(bnb_context* context);

    /* The calling thread's message for the last failed call into this backend ("" if none). The pointer stays
     * valid until the next failing call on the same thread. Never NULL. */
    const char*(BNB_CALL* last_error_message)(void);

    /* Installs a process-wide log sink (NULL removes it). The callback may be called from any thread. */
    bnb_status(BNB_CALL* set_log_callback)(bnb_log_fn callback, void* user_data);

    /* Copies code table `table` (BNB_TABLE_*) into out (float32, at least 16 or 256 elements). */
    bnb_status(BNB_CALL* get_code_table)(int32_t table, bnb_tensor* out);

    /* ── memory ──────────────────────────────────────────────────────────────────────────────────────────── */

    /* Allocates `bytes` of memory of `kind` (BNB_MEMORY_*) on the context's device, 64-byte aligned, zeroed.
     * PAGED memory belongs to the context's pager (pager_configure) and is committed lazily, at the first map.
     * Statuses: OK, INVALID_ARGUMENT (kind, bytes == 0), NOT_SUPPORTED (kind), OUT_OF_MEMORY. */
    bnb_status(BNB_CALL* buffer_alloc)(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer);

    /* Frees a buffer. NULL is accepted. The buffer must not be in use by a pending op. A mapped PAGED buffer is
     * INVALID_ARGUMENT (unmap it first). A PAGED buffer outlives its context only as a handle to free. */
    bnb_status(BNB_CALL* buffer_free)(bnb_buffer* buffer);

    /* The address to put into bnb_tensor.data for ops on this backend, and the buffer's size in bytes. A PAGED
     * buffer has an address only while it is mapped (else INVALID_ARGUMENT): paging may move it. */
    bnb_status(BNB_CALL* buffer_get_pointer)(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes);

    /* A host-accessible view of the buffer (host memory, pinned, or paged) = buffer_map_access(BNB_MAP_READ_WRITE):
     * a PAGED buffer stays resident and pinned until buffer_unmap. NOT_SUPPORTED for device memory that the host
     * cannot address. */
    bnb_status(BNB_CALL* buffer_map)(bnb_buffer* buffer, void** out_host_pointer);

    /* Copies `bytes` between host and device addresses (BNB_COPY_*); ordered on the context's stream. */
    bnb_status(BNB_CALL* memory_copy)(bnb_context* context, void* dst, const void* src, size_t bytes, int32_t direction);

    /* Hints that [offset, offset+bytes) of a paged buffer is needed on the device or on the host soon. CPU
     * backends act on the whole buffer: TO_DEVICE loads it into the budget (evicting LRU unmapped buffers; no pin;
     * OUT_OF_MEMORY if the mapped buffers leave no room), TO_HOST writes it back if dirty and releases its fast
     * memory (INVALID_ARGUMENT while it is mapped). Validates the range; a no-op for other kinds. */
    bnb_status(BNB_CALL* paged_prefetch)(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                         int32_t target);

    /* Creates a stream. native_stream != NULL wraps a stream created elsewhere (cudaStream_t, hipStream_t,
     * cl_command_queue) without taking ownership. CPU backends: streams are synchronous. */
    bnb_status(BNB_CALL* stream_create)(bnb_context* context, void* native_stream, bnb_stream** out_stream);

    /* Destroys a stream (not a wrapped native one). NULL is accepted. */
    bnb_status(BNB_CALL* stream_destroy)(bnb_stream* stream);

    /* Waits until all work queued on the stream has finished. */
    bnb_status(BNB_CALL* stream_synchronize)(bnb_stream* stream);

    /* Makes ops on this context run on `stream` (NULL = the context's default stream). */
    bnb_status(BNB_CALL* context_set_stream)(bnb_context* context, bnb_stream* stream);

    /* ── 8-bit blockwise ─────────────────────────────────────────────────────────────────────────────────── */

    /* Blockwise 8-bit quantization with a 256-entry code table (spec §2.5).
     *   A       f32/f16/bf16, n elements (contiguous)
     *   code    f32 [256], finite and ascending (else INVALID_ARGUMENT)
     *   blocksize  power of two in [32, 4096]
     *   rounding   BNB_ROUND_NEAREST or BNB_ROUND_BNB_CPU_LUT
     *   out_codes  u8 >= n;  out_absmax f32 >= ceil(n / blocksize)
     * Statuses: NULL_POINTER, UNSUPPORTED_DTYPE, INVALID_BLOCKSIZE, INVALID_ARGUMENT (rounding, code size),
     * BUFFER_TOO_SMALL, NON_FINITE. n == 0 is a no-op. */
    bnb_status(BNB_CALL* quantize_blockwise)(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                             int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                             bnb_tensor* out_absmax);

    /* out[i] = T(code[codes[i]] * absmax[i / blocksize]); n = numel(out) elements are produced.
     *   codes u8 >= n; absmax plain or nested (>= ceil(n / blocksize) blocks); code f32 [256]; out f32/f16/bf16. */
    bnb_status(BNB_CALL* dequantize_blockwise)(bnb_context* context, const bnb_tensor* codes,
                                               const bnb_absmax* absmax, const bnb_tensor* code, int64_t blocksize,
                                               bnb_tensor* out);

    /* Double quantization of a float32 absmax vector (spec §2.7, §2.5.5):
     *   offset = mean(absmax) (or *offset_in when offset_in != NULL); (absmax - offset) is 8-bit blockwise
     *   quantized with `code` and nested_blocksize.
     *   out_codes u8 >= blocks; out_nested_absmax f32 >= ceil(blocks / nested_blocksize); *out_offset = offset.
     *   blocks == 0 is a no-op that writes nothing (not even *out_offset). */
    bnb_status(BNB_CALL* quantize_absmax_nested)(bnb_context* context, const bnb_tensor* absmax,
                                                 const bnb_tensor* code, int64_t nested_blocksize, int32_t rounding,
                                                 const float* offset_in, bnb_tensor* out_codes,
                                                 bnb_tensor* out_nested_absmax, float* out_offset);

    /* ── 4-bit ───────────────────────────────────────────────────────────────────────────────────────────── */

    /* NF4/FP4 blockwise quantization, bitsandbytes' default-backend semantics (spec §2.6), bit-identical.
     *   A f32/f16/bf16, n elements; quant_type BNB_QUANT_*; blocksize power of two in [32, 4096]
     *   out_packed u8 >= (n + 1) / 2   (element 2i → high nibble of byte i; odd n pads a quantized 0)
     *   out_absmax f32 >= ceil(n / blocksize) */
    bnb_status(BNB_CALL* quantize_4bit)(bnb_context* context, const bnb_tensor* A, int32_t quant_type,
                                        int64_t blocksize, bnb_tensor* out_packed, bnb_tensor* out_absmax);

    /* out[i] = T(table[nibble i] * absmax[i / blocksize]) for n = numel(out) elements (flat block indexing). */
    bnb_status(BNB_CALL* dequantize_4bit)(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                          int32_t quant_type, int64_t blocksize, bnb_tensor* out);

    /* Bytes needed to hold W[N, K] (standard packed input) in `format` (BNB_WEIGHT_*). */
    bnb_status(BNB_CALL* weight_pack_size)(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                           int64_t blocksize, size_t* out_bytes);

    /* Converts a standard packed W[N, K] into `format` (u8 tensor of weight_pack_size bytes). Reversible. */
    bnb_status(BNB_CALL* weight_pack)(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                      int64_t K, int64_t blocksize, bnb_tensor* out_packed);

    /* Inverse of weight_pack: `format` layout → standard packed W[N, K] (u8 >= (N*K+1)/2). */
    bnb_status(BNB_CALL* weight_unpack)(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_standard);

    /* ── 4-bit matmul: out[M, N] = A[M, K] · dequant(W)[N, K]^T (+ bias[N]) ─────────────────────────────── */

    /* gemv_4bit is tuned for M = 1…16, gemm_4bit for any M; both accept the same arguments and agree within the
     * documented NMSE. A f32/f16/bf16 [M, K] (row stride allowed); N = out.shape[1], K = A.shape[1]; W u8 in
     * `weight_format`: 1-D (or [bytes, 1]) holding at least weight_pack_size bytes, or 2-D [N, K/2] (a 2-D W that
     * disagrees with A and out is SHAPE_MISMATCH); absmax covers N*K
     * elements in flat blocks (as quantize_4bit produced for W[N, K]); bias NULL or [N] of any float dtype;
     * out f32/f16/bf16 [M, N] (row stride allowed). Accumulation is float32. */
    bnb_status(BNB_CALL* gemv_4bit)(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                    int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                    int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);
    bnb_status(BNB_CALL* gemm_4bit)(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                    int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                    int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out);

    /* ── LLM.int8() ──────────────────────────────────────────────────────────────────────────────────────── */

    /* Row-wise absmax int8 quantization (spec §2.8.1). A f32/f16/bf16 [rows, cols].
     *   threshold > 0: columns with any |a| >= threshold are outlier columns: excluded from row_stats, zeroed in
     *   out_CA (whole columns when rows > 1), their indices written ascending to out_outlier_cols (i64 >= cols
     *   capacity, may be NULL when threshold == 0) and their count to *out_outlier_count (may be NULL).
     *   out_CA i8 [rows, cols]; out_row_stats f32 [rows]. A zero row gives row_stats 0 and CA 0. */
    bnb_status(BNB_CALL* int8_vectorwise_quant)(bnb_context* context, const bnb_tensor* A, float threshold,
                                                bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                bnb_tensor* out_outlier_cols, int64_t* out_outlier_count);

    /* out[r, c] = float(CA[r, c]) * row_stats[r] * (1/127) as float32. CA i8 [rows, cols]; out f32 [rows, cols]. */
    bnb_status(BNB_CALL* int8_vectorwise_dequant)(bnb_context* context, const bnb_tensor* CA,
                                                  const bnb_tensor* row_stats, bnb_tensor* out);

    /* out[M, N] = A[M, K] · B[N, K]^T exactly in int32 (A, B i8; out i32). */
    bnb_status(BNB_CALL* int8_linear_matmul)(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                             bnb_tensor* out);

    /* out = T(fma(f32(f32(C * row_stats[m]) * col_stats[n]), f32(1/127^2), bias[n])) — CUDA's formula (spec
     * §2.8.4); C i32 [M, N]; row_stats f32 [M]; col_stats f32 [N]; bias NULL or [N] f32/f16/bf16; out f32/f16/bf16. */
    bnb_status(BNB_CALL* int8_mm_dequant)(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                          const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out);

    /* Row-wise and column-wise int8 quantization in one pass (spec §2.8.2): out_CA/out_row_stats as
     * int8_vectorwise_quant; out_CAt i8 [rows, cols] quantized per column with out_col_stats f32 [cols]
     * (only outlier elements zeroed); outlier outputs as int8_vectorwise_quant. */
    bnb_status(BNB_CALL* int8_double_quant)(bnb_context* context, const bnb_tensor* A, float threshold,
                                            bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                            bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                            int64_t* out_outlier_count);

    /* ── optimizers (bitsandbytes CPU-backend semantics, spec §3.3/§3.4) ─────────────────────────────────── */

    /* One 32-bit step in place. p f32/f16/bf16 [n]; g same dtype and numel as p; state1 f32 [n] ([2, n] for
     * AdEMAMix); state2 f32 [n] for adam/lamb/ademamix, else NULL. *out_unorm (may be NULL) receives the update
     * norm used by the trust ratio when max_unorm > 0 (else 0). */
    bnb_status(BNB_CALL* optimizer_update_32bit)(bnb_context* context, const bnb_optimizer_params* params,
                                                 bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                 bnb_tensor* state2, float* out_unorm);

    /* One 8-bit blockwise step in place (blocksize 256): states are dequantized with qmap/absmax, updated in
     * float32 as optimizer_update_32bit, and requantized (params->rounding) with new per-block absmax.
     *   state1 u8 [n] ([2, n] AdEMAMix), absmax1 f32 [ceil(n/256)] ([2, blocks] AdEMAMix), qmap1 f32 [256] signed;
     *   state2/absmax2/qmap2 (unsigned map) for 2-state kinds, else NULL. LAMB/LARS: no trust ratio in 8-bit. */
    bnb_status(BNB_CALL* optimizer_update_8bit_blockwise)(bnb_context* context, const bnb_optimizer_params* params,
                                                          bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                          bnb_tensor* state2, bnb_tensor* absmax1,
                                                          bnb_tensor* absmax2, const bnb_tensor* qmap1,
                                                          const bnb_tensor* qmap2);

    /* Sum of squares of the update direction the next 32-bit step would take (LAMB: s1/(sqrt(s2)+eps*c2) with the
     * new moments; LARS: the new momentum buffer) and of p, without modifying anything. For callers that shard a
     * parameter and all-reduce the norms before passing param_norm and max_unorm. */
    bnb_status(BNB_CALL* optimizer_unorm)(bnb_context* context, const bnb_optimizer_params* params,
                                          const bnb_tensor* p, const bnb_tensor* g, const bnb_tensor* state1,
                                          const bnb_tensor* state2, double* out_update_sq, double* out_param_sq);

    /* Percentile clipping (spec §3.6): adds ||g||² to gnorm_history[step % 100] (to all 100 slots at step 1),
     * then *out_gnorm_scale = clip/current if current > clip else 1, where current = sqrt(history[step % 100]) and
     * clip = sqrt(sorted(history)[percentile]). g f32/f16/bf16; gnorm_history f32 [100]; percentile in [0, 99];
     * *out_gnorm (may be NULL) receives current. */
    bnb_status(BNB_CALL* percentile_clipping)(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                              int32_t step, int32_t percentile, float* out_gnorm,
                                              float* out_gnorm_scale);

    /* ── paging (appended; see docs/memory.md "Paging") ──────────────────────────────────────────────────── */

    /* Sets the context's paging budget and spill directory (config NULL = defaults: unlimited, temp dir). A smaller
     * budget evicts unpinned buffers (LRU first) down to it. Statuses: INVALID_ARGUMENT (struct_size, reserved,
     * spill_directory not an existing directory, or changing the directory while data lives in the spill file),
     * OUT_OF_MEMORY (the mapped buffers alone exceed the new budget; nothing changes), IO (a write-back failed;
     * the data stays resident). */
    bnb_status(BNB_CALL* pager_configure)(bnb_context* context, const bnb_pager_config* config);

    /* Fills *out (up to out->struct_size bytes) with the context's paging counters. */
    bnb_status(BNB_CALL* memory_stats)(bnb_context* context, bnb_memory_stats* out);

    /* buffer_map with an access mode (BNB_MAP_*). For a PAGED buffer: makes it resident (reloads it from the spill
     * if it was evicted, evicting least-recently-used unmapped buffers to stay within the budget) and pins it until
     * the matching buffer_unmap; maps nest (a counter). Only mapped PAGED buffers may be handed to ops, and the
     * address may differ from one mapping to the next. A buffer never written (BNB_MAP_READ only since alloc) reads
     * as zeros. Statuses: OUT_OF_MEMORY (the mapped buffers plus this one exceed the budget; the message names
     * budget, request and pinned bytes), IO (spill read/write failed; every buffer keeps its data). Other kinds:
     * the host address (a counter only). */
    bnb_status(BNB_CALL* buffer_map_access)(bnb_buffer* buffer, int32_t access, void** out_host_pointer);

    /* Ends one buffer_map / buffer_map_access. INVALID_ARGUMENT if the buffer is not mapped. */
    bnb_status(BNB_CALL* buffer_unmap)(bnb_buffer* buffer);
} bnb_api;

/* ─── The two exported symbols ───────────────────────────────────────────────────────────────────────────── */

/* 0 = this library cannot run on this machine (missing ISA, driver or device); otherwise a preference score. */
BNB_EXPORT int32_t BNB_CALL bnb_probe(void);

/* *out_api = the backend's static table if abi_major == the library's major; else BNB_ERR_ABI_MISMATCH (the
 * thread's last_error_message cannot be read then, so the status alone tells). NULL out_api → NULL_POINTER. */
BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api);

typedef int32_t(BNB_CALL* bnb_probe_fn)(void);
typedef bnb_status(BNB_CALL* bnb_get_api_fn)(uint32_t abi_major, const bnb_api** out_api);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BNB_BNB_H */
