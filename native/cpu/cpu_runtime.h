/* cpu_runtime.h — what every CPU backend variant (ref, avx2, avx512, neon) shares: contexts, the host device,
 * host buffers and synchronous streams. The variants differ only in their kernels and their probe. */
#ifndef BNB_CPU_RUNTIME_H
#define BNB_CPU_RUNTIME_H

#include "bnb_common.h"
#include "pager.h"
#include "thread_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CPU feature bits reported in bnb_device_info.features (docs/backends.md). Set only when the OS supports the
 * state the feature needs (XGETBV for AVX/AVX-512 on x86). */
#define BNB_CPU_FEATURE_AVX2 (1ull << 0)
#define BNB_CPU_FEATURE_FMA (1ull << 1)
#define BNB_CPU_FEATURE_F16C (1ull << 2)
#define BNB_CPU_FEATURE_AVX512F (1ull << 3)
#define BNB_CPU_FEATURE_AVX512BW (1ull << 4)
#define BNB_CPU_FEATURE_AVX512VL (1ull << 5)
#define BNB_CPU_FEATURE_AVX512VNNI (1ull << 6)
#define BNB_CPU_FEATURE_AVX512BF16 (1ull << 7)
#define BNB_CPU_FEATURE_NEON (1ull << 16)
#define BNB_CPU_FEATURE_DOTPROD (1ull << 17)

struct bnb_context {
    bnb_context_common common; /* must stay first: shared validation reads it */
    bnb_stream* stream;        /* informational on CPU: every op completes before it returns */
    bnb_thread_pool* pool;     /* NULL when the backend runs single-threaded (bnb_cpu_ref) or num_threads == 1 */
    uint64_t features;         /* BNB_CPU_FEATURE_* of this machine, for run-time sub-dispatch (VNNI, BF16, …) */
    bnb_pager* pager;          /* BNB_MEMORY_PAGED buffers: budget, spill file, LRU (native/common/pager.h) */
};

/* Set by each CPU backend: 1 if its ops use the context's thread pool (SIMD variants), 0 for the reference, which
 * then never starts threads whatever num_threads says. */
extern const int bnb_cpu_backend_uses_threads;

/* Features of this CPU that the OS supports, minus those named in BNB_CPU_DISABLE (comma-separated: avx2, fma,
 * f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, neon, dotprod). */
uint64_t bnb_cpu_features(void);

bnb_status BNB_CALL bnb_cpu_device_count(int32_t* out_count);
bnb_status BNB_CALL bnb_cpu_device_get_info(int32_t index, bnb_device_info* out);
bnb_status BNB_CALL bnb_cpu_context_create(const bnb_context_options* options, bnb_context** out_context);
bnb_status BNB_CALL bnb_cpu_context_destroy(bnb_context* context);
const char* BNB_CALL bnb_cpu_last_error_message(void);
bnb_status BNB_CALL bnb_cpu_set_log_callback(bnb_log_fn callback, void* user_data);
bnb_status BNB_CALL bnb_cpu_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer);
bnb_status BNB_CALL bnb_cpu_buffer_free(bnb_buffer* buffer);
bnb_status BNB_CALL bnb_cpu_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes);
bnb_status BNB_CALL bnb_cpu_buffer_map(bnb_buffer* buffer, void** out_host_pointer);
bnb_status BNB_CALL bnb_cpu_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes,
                                        int32_t direction);
bnb_status BNB_CALL bnb_cpu_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                           int32_t target);
bnb_status BNB_CALL bnb_cpu_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream);
bnb_status BNB_CALL bnb_cpu_stream_destroy(bnb_stream* stream);
bnb_status BNB_CALL bnb_cpu_stream_synchronize(bnb_stream* stream);
bnb_status BNB_CALL bnb_cpu_context_set_stream(bnb_context* context, bnb_stream* stream);
bnb_status BNB_CALL bnb_cpu_pager_configure(bnb_context* context, const bnb_pager_config* config);
bnb_status BNB_CALL bnb_cpu_memory_stats(bnb_context* context, bnb_memory_stats* out);
bnb_status BNB_CALL bnb_cpu_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer);
bnb_status BNB_CALL bnb_cpu_buffer_unmap(bnb_buffer* buffer);

/* The runtime and memory slots of a CPU backend's table, in header order (backend_get_info is the variant's). */
#define BNB_CPU_RUNTIME_SLOTS                                                                                      \
    .device_count = bnb_cpu_device_count, .device_get_info = bnb_cpu_device_get_info,                              \
    .context_create = bnb_cpu_context_create, .context_destroy = bnb_cpu_context_destroy,                          \
    .last_error_message = bnb_cpu_last_error_message, .set_log_callback = bnb_cpu_set_log_callback,                \
    .get_code_table = bnb_common_get_code_table, .buffer_alloc = bnb_cpu_buffer_alloc,                             \
    .buffer_free = bnb_cpu_buffer_free, .buffer_get_pointer = bnb_cpu_buffer_get_pointer,                          \
    .buffer_map = bnb_cpu_buffer_map, .memory_copy = bnb_cpu_memory_copy,                                          \
    .paged_prefetch = bnb_cpu_paged_prefetch, .stream_create = bnb_cpu_stream_create,                              \
    .stream_destroy = bnb_cpu_stream_destroy, .stream_synchronize = bnb_cpu_stream_synchronize,                    \
    .context_set_stream = bnb_cpu_context_set_stream

/* The paging slots (appended at the end of the table; every CPU variant serves them through native/common/pager). */
#define BNB_CPU_PAGING_SLOTS                                                                                       \
    .pager_configure = bnb_cpu_pager_configure, .memory_stats = bnb_cpu_memory_stats,                              \
    .buffer_map_access = bnb_cpu_buffer_map_access, .buffer_unmap = bnb_cpu_buffer_unmap

#ifdef __cplusplus
}
#endif

#endif /* BNB_CPU_RUNTIME_H */
