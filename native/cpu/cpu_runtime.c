/* Contexts, the host device, host buffers and synchronous streams shared by every CPU backend variant. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* posix_memalign, sysconf */
#endif

#include "cpu_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <malloc.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define BNB_CPU_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static const char op_context_create[] = "context_create";

/* ─── CPU features ───────────────────────────────────────────────────────────────────────────────────────── */

#if defined(BNB_CPU_X86)
static void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
#if defined(_MSC_VER)
    int r[4];
    __cpuidex(r, (int)leaf, (int)subleaf);
    for (int i = 0; i < 4; ++i) regs[i] = (uint32_t)r[i];
#else
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#endif
}

static uint64_t xgetbv0(void) {
#if defined(_MSC_VER)
    return _xgetbv(0);
#else
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#endif
}
#endif

static uint64_t detect_features(void) {
    uint64_t features = 0;
#if defined(BNB_CPU_X86)
    uint32_t r[4];
    cpuid(0, 0, r);
    const uint32_t max_leaf = r[0];
    if (max_leaf < 7) return 0;
    cpuid(1, 0, r);
    const uint32_t ecx1 = r[2];
    const int osxsave = (ecx1 >> 27) & 1;
    if (!osxsave) return 0;
    const uint64_t xcr0 = xgetbv0();
    const int os_avx = (xcr0 & 0x6) == 0x6;         /* XMM and YMM state enabled by the OS */
    const int os_avx512 = (xcr0 & 0xE6) == 0xE6;    /* plus opmask and ZMM state           */
    cpuid(7, 0, r);
    const uint32_t ebx7 = r[1], ecx7 = r[2];
    cpuid(7, 1, r);
    const uint32_t eax7_1 = r[0];
    if (os_avx) {
        if ((ebx7 >> 5) & 1) features |= BNB_CPU_FEATURE_AVX2;
        if ((ecx1 >> 12) & 1) features |= BNB_CPU_FEATURE_FMA;
        if ((ecx1 >> 29) & 1) features |= BNB_CPU_FEATURE_F16C;
    }
    if (os_avx512) {
        if ((ebx7 >> 16) & 1) features |= BNB_CPU_FEATURE_AVX512F;
        if ((ebx7 >> 30) & 1) features |= BNB_CPU_FEATURE_AVX512BW;
        if ((ebx7 >> 31) & 1) features |= BNB_CPU_FEATURE_AVX512VL;
        if ((ecx7 >> 11) & 1) features |= BNB_CPU_FEATURE_AVX512VNNI;
        if ((eax7_1 >> 5) & 1) features |= BNB_CPU_FEATURE_AVX512BF16;
    }
#elif defined(__aarch64__)
    features |= BNB_CPU_FEATURE_NEON; /* Advanced SIMD is mandatory on AArch64 */
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) features |= BNB_CPU_FEATURE_DOTPROD;
#endif
#endif
    return features;
}

/* BNB_CPU_DISABLE=name[,name…] hides features from every CPU backend (probe and run-time dispatch alike), e.g.
 * "avx512bf16,avx512vnni" to run the AVX-512 variant's plain-FMA and AVX2-style int8 paths on a CPU that has both,
 * or "avx512f" to make the AVX-512 variant report that it cannot run. Unknown names are ignored. */
static const struct {
    const char* name;
    uint64_t bit;
} feature_names[] = {
    {"avx2", BNB_CPU_FEATURE_AVX2},           {"fma", BNB_CPU_FEATURE_FMA},
    {"f16c", BNB_CPU_FEATURE_F16C},           {"avx512f", BNB_CPU_FEATURE_AVX512F},
    {"avx512bw", BNB_CPU_FEATURE_AVX512BW},   {"avx512vl", BNB_CPU_FEATURE_AVX512VL},
    {"avx512vnni", BNB_CPU_FEATURE_AVX512VNNI}, {"avx512bf16", BNB_CPU_FEATURE_AVX512BF16},
    {"neon", BNB_CPU_FEATURE_NEON},           {"dotprod", BNB_CPU_FEATURE_DOTPROD},
};

static uint64_t disabled_features(void) {
    const char* list = getenv("BNB_CPU_DISABLE");
    uint64_t disabled = 0;
    while (list != NULL && *list != '\0') {
        const char* end = strchr(list, ',');
        const size_t length = end ? (size_t)(end - list) : strlen(list);
        for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; ++i) {
            if (strlen(feature_names[i].name) == length && strncmp(list, feature_names[i].name, length) == 0)
                disabled |= feature_names[i].bit;
        }
        list = end ? end + 1 : NULL;
    }
    return disabled;
}

uint64_t bnb_cpu_features(void) { return detect_features() & ~disabled_features(); }

/* ─── the host device ────────────────────────────────────────────────────────────────────────────────────── */

static void cpu_name(char* dst, size_t capacity) {
    snprintf(dst, capacity, "%s", "CPU");
#if defined(BNB_CPU_X86)
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    if (r[0] < 0x80000004u) return;
    char brand[49];
    for (uint32_t i = 0; i < 3; ++i) {
        cpuid(0x80000002u + i, 0, r);
        memcpy(brand + 16 * i, r, 16);
    }
    brand[48] = '\0';
    const char* start = brand;
    while (*start == ' ') ++start;
    snprintf(dst, capacity, "%s", start);
#elif defined(__aarch64__)
    snprintf(dst, capacity, "%s", "AArch64 CPU");
#endif
}

static void host_memory(uint64_t* total, uint64_t* available, int32_t* cores) {
#if defined(_WIN32)
    MEMORYSTATUSEX status;
    status.dwLength = sizeof status;
    if (GlobalMemoryStatusEx(&status)) {
        *total = status.ullTotalPhys;
        *available = status.ullAvailPhys;
    }
#else
    const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page_size > 0) *total = (uint64_t)pages * (uint64_t)page_size;
#if defined(_SC_AVPHYS_PAGES)
    const long free_pages = sysconf(_SC_AVPHYS_PAGES);
    if (free_pages > 0 && page_size > 0) *available = (uint64_t)free_pages * (uint64_t)page_size;
#endif
#endif
    *cores = bnb_cpu_online_count();
}

bnb_status BNB_CALL bnb_cpu_device_count(int32_t* out_count) {
    BNB_TRY(bnb_check_not_null("device_count", "out_count", out_count));
    *out_count = 1;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_device_get_info(int32_t index, bnb_device_info* out) {
    static const char op[] = "device_get_info";
    BNB_TRY(bnb_check_not_null(op, "out", out));
    if (index != 0) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "index = %d is outside [0, 1)", (int)index);
    if (out->struct_size < sizeof(bnb_device_info))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)out->struct_size, (unsigned)sizeof(bnb_device_info));
    bnb_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    info.index = 0;
    info.kind = BNB_DEVICE_CPU;
    cpu_name(info.name, sizeof info.name);
    host_memory(&info.total_memory, &info.free_memory, &info.compute_units);
    info.features = bnb_cpu_features();
    *out = info;
    return BNB_OK;
}

/* ─── contexts ───────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_cpu_context_create(const bnb_context_options* options, bnb_context** out_context) {
    BNB_TRY(bnb_check_not_null(op_context_create, "out_context", out_context));
    bnb_context_common common;
    /* A variant loaded on a CPU without its ISA would fault in its first kernel: refuse here instead. */
    if (bnb_probe() == 0)
        return bnb_fail(BNB_ERR_NO_DEVICE, op_context_create,
                        "this CPU or OS lacks the instruction set this backend was built for (see `bnb info`)");
    BNB_TRY(bnb_context_options_resolve(op_context_create, options, 1, &common));
    bnb_context* context = (bnb_context*)calloc(1, sizeof *context);
    if (context == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op_context_create, "cannot allocate a context");
    if (common.num_threads == 0) common.num_threads = bnb_cpu_online_count();
    if (bnb_cpu_backend_uses_threads && common.num_threads > 1) {
        const bnb_status status = bnb_thread_pool_create(op_context_create, common.num_threads, &context->pool);
        if (status != BNB_OK) {
            free(context);
            return status;
        }
    } else {
        common.num_threads = 1; /* the reference runs on the caller's thread only */
    }
    const bnb_status pager_status = bnb_pager_create(op_context_create, &context->pager);
    if (pager_status != BNB_OK) {
        bnb_thread_pool_destroy(context->pool);
        free(context);
        return pager_status;
    }
    context->common = common;
    context->stream = NULL;
    context->features = bnb_cpu_features();
    *out_context = context;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_context_destroy(bnb_context* context) {
    if (context == NULL) return BNB_OK;
    BNB_TRY(bnb_check_context("context_destroy", context, NULL));
    context->common.magic = 0; /* a use after destroy then fails validation instead of reading freed state */
    bnb_thread_pool_destroy(context->pool);
    bnb_pager_destroy(context->pager); /* its live PAGED buffers become handles that can only be unmapped and freed */
    free(context);
    return BNB_OK;
}

const char* BNB_CALL bnb_cpu_last_error_message(void) { return bnb_last_error(); }

bnb_status BNB_CALL bnb_cpu_set_log_callback(bnb_log_fn callback, void* user_data) {
    return bnb_set_log_callback_impl(callback, user_data);
}

/* ─── buffers: host memory; PAGED buffers live in the context's pager (budget, spill file, LRU) ──────────── */

#define BNB_BUFFER_MAGIC 0x424E4242u /* "BNBB" */
#define BNB_BUFFER_ALIGNMENT 64

struct bnb_buffer {
    uint32_t magic;
    int32_t kind;
    size_t bytes;
    void* data;              /* DEVICE / HOST_PINNED: the memory; PAGED: NULL (ask the pager)      */
    bnb_paged_block* paged;  /* PAGED only                                                        */
    int32_t maps;            /* open buffer_map calls of a non-paged buffer (the pager counts its own) */
};

static void* aligned_zeroed(size_t bytes) {
#if defined(_WIN32)
    void* p = _aligned_malloc(bytes, BNB_BUFFER_ALIGNMENT);
#else
    void* p = NULL;
    if (posix_memalign(&p, BNB_BUFFER_ALIGNMENT, bytes) != 0) p = NULL;
#endif
    if (p != NULL) memset(p, 0, bytes);
    return p;
}

static void aligned_free(void* p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

static bnb_status check_buffer(const char* op, bnb_buffer* buffer) {
    BNB_TRY(bnb_check_not_null(op, "buffer", buffer));
    if (buffer->magic != BNB_BUFFER_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not a live buffer of this backend (freed?)");
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer) {
    static const char op[] = "buffer_alloc";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_not_null(op, "out_buffer", out_buffer));
    BNB_TRY(bnb_check_memory_kind(op, kind));
    if (bytes == 0) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "bytes = 0: nothing to allocate");
    if (bytes > SIZE_MAX - BNB_BUFFER_ALIGNMENT)
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "bytes = %zu cannot be allocated", bytes);
    if (kind == BNB_MEMORY_PAGED) {
        bnb_buffer* buffer = (bnb_buffer*)calloc(1, sizeof *buffer);
        if (buffer == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a buffer record");
        const bnb_status status = bnb_pager_alloc(context->pager, op, bytes, &buffer->paged);
        if (status != BNB_OK) {
            free(buffer);
            return status;
        }
        buffer->magic = BNB_BUFFER_MAGIC;
        buffer->kind = kind;
        buffer->bytes = bytes;
        *out_buffer = buffer;
        return BNB_OK;
    }
    bnb_buffer* buffer = (bnb_buffer*)calloc(1, sizeof *buffer);
    void* data = buffer ? aligned_zeroed(bytes) : NULL;
    if (data == NULL) {
        free(buffer);
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate %zu bytes of host memory", bytes);
    }
    buffer->magic = BNB_BUFFER_MAGIC;
    buffer->kind = kind;
    buffer->bytes = bytes;
    buffer->data = data;
    *out_buffer = buffer;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_buffer_free(bnb_buffer* buffer) {
    if (buffer == NULL) return BNB_OK;
    BNB_TRY(check_buffer("buffer_free", buffer));
    if (buffer->paged != NULL) BNB_TRY(bnb_pager_free(buffer->paged, "buffer_free")); /* refuses a mapped one */
    buffer->magic = 0;
    aligned_free(buffer->data);
    free(buffer);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes) {
    static const char op[] = "buffer_get_pointer";
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_pointer", out_pointer));
    void* data = buffer->data;
    if (buffer->paged != NULL) {
        data = bnb_pager_mapped_pointer(buffer->paged, NULL);
        if (data == NULL)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                            "buffer is PAGED and not mapped: map it first (paging may move or evict its memory)");
    }
    *out_pointer = data;
    if (out_bytes) *out_bytes = buffer->bytes;
    return BNB_OK;
}

static bnb_status map_buffer(const char* op, bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_host_pointer", out_host_pointer));
    if (buffer->paged != NULL) return bnb_pager_map(buffer->paged, op, access, out_host_pointer);
    if (access != BNB_MAP_READ_WRITE && access != BNB_MAP_READ)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "access = %d is not a BNB_MAP_* value (0, 1)", (int)access);
    if (buffer->maps == INT32_MAX) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped 2^31-1 times");
    buffer->maps += 1;
    *out_host_pointer = buffer->data;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_buffer_map(bnb_buffer* buffer, void** out_host_pointer) {
    return map_buffer("buffer_map", buffer, BNB_MAP_READ_WRITE, out_host_pointer);
}

bnb_status BNB_CALL bnb_cpu_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    return map_buffer("buffer_map_access", buffer, access, out_host_pointer);
}

bnb_status BNB_CALL bnb_cpu_buffer_unmap(bnb_buffer* buffer) {
    static const char op[] = "buffer_unmap";
    BNB_TRY(check_buffer(op, buffer));
    if (buffer->paged != NULL) return bnb_pager_unmap(buffer->paged, op);
    if (buffer->maps == 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not mapped (buffer_unmap without buffer_map)");
    buffer->maps -= 1;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_pager_configure(bnb_context* context, const bnb_pager_config* config) {
    static const char op[] = "pager_configure";
    BNB_TRY(bnb_check_context(op, context, NULL));
    return bnb_pager_configure(context->pager, op, config);
}

bnb_status BNB_CALL bnb_cpu_memory_stats(bnb_context* context, bnb_memory_stats* out) {
    static const char op[] = "memory_stats";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_not_null(op, "out", out));
    return bnb_pager_stats(context->pager, op, out);
}

bnb_status BNB_CALL bnb_cpu_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes,
                                        int32_t direction) {
    static const char op[] = "memory_copy";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_copy_direction(op, direction));
    if (bytes == 0) return BNB_OK;
    BNB_TRY(bnb_check_not_null(op, "dst", dst));
    BNB_TRY(bnb_check_not_null(op, "src", src));
    memmove(dst, src, bytes); /* host and "device" are the same memory on CPU backends */
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                           int32_t target) {
    static const char op[] = "paged_prefetch";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_prefetch(op, target, offset, bytes, buffer->bytes));
    if (buffer->paged == NULL || bytes == 0) return BNB_OK; /* plain host memory is always resident */
    return bnb_pager_prefetch(buffer->paged, op, target);     /* whole-buffer granularity */
}

/* ─── streams: CPU ops complete before they return, so a stream only records identity ───────────────────── */

#define BNB_STREAM_MAGIC 0x424E4253u /* "BNBS" */

struct bnb_stream {
    uint32_t magic;
    void* native; /* what the caller wrapped, if anything (unused on CPU) */
};

static bnb_status check_stream(const char* op, bnb_stream* stream) {
    BNB_TRY(bnb_check_not_null(op, "stream", stream));
    if (stream->magic != BNB_STREAM_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "stream is not a live stream of this backend (destroyed?)");
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream) {
    static const char op[] = "stream_create";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_not_null(op, "out_stream", out_stream));
    bnb_stream* stream = (bnb_stream*)malloc(sizeof *stream);
    if (stream == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a stream");
    stream->magic = BNB_STREAM_MAGIC;
    stream->native = native_stream;
    *out_stream = stream;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_stream_destroy(bnb_stream* stream) {
    if (stream == NULL) return BNB_OK;
    BNB_TRY(check_stream("stream_destroy", stream));
    stream->magic = 0;
    free(stream);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_stream_synchronize(bnb_stream* stream) { return check_stream("stream_synchronize", stream); }

bnb_status BNB_CALL bnb_cpu_context_set_stream(bnb_context* context, bnb_stream* stream) {
    static const char op[] = "context_set_stream";
    BNB_TRY(bnb_check_context(op, context, NULL));
    if (stream != NULL) BNB_TRY(check_stream(op, stream));
    context->stream = stream;
    return BNB_OK;
}
