/* xpu_runtime.h — bnb_xpu's host side over OpenCL: devices, contexts, streams, buffers, the program cache and the
 * per-call machinery (Op) that turns bnb_tensor.data into kernel arguments. Internal to bnb_xpu.
 *
 * ─── What bnb_tensor.data is on bnb_xpu (docs/backends.md "XPU") ──────────────────────────────────────────
 *   1. A host-addressable pointer: ordinary host memory (wrapped per call in a CL_MEM_USE_HOST_PTR buffer: zero copy
 *      on CPU devices and integrated GPUs, a driver copy on discrete GPUs), or memory from buffer_alloc, which is
 *      fine-grained SVM where the device supports it (passed to kernels with clSetKernelArgSVMPointer).
 *   2. A cl_mem reference: BNB_XPU_CL_MEM_TAG | (uintptr_t)cl_mem. Bit 63 is never set in a user-space address on
 *      the 64-bit platforms bnb_xpu supports, so the tag is unambiguous and is never dereferenced. The buffer must
 *      belong to the OpenCL context of the stream the op runs on; there is no offset (use clCreateSubBuffer for a
 *      view into a larger buffer; pointer arithmetic on a reference is invalid). buffer_alloc(DEVICE) returns such
 *      a reference on devices without fine-grained SVM.
 * Host-side validation (the same validators as the CPU backends, so statuses and messages are identical) reads a
 * few inputs (NaN checks, code tables): a cl_mem reference is mapped for the validation (zero copy on CPU devices
 * and integrated GPUs) and unmapped before the kernels run.
 */
#ifndef BNB_XPU_RUNTIME_H
#define BNB_XPU_RUNTIME_H

#include "cl_loader.h"

#include "bnb_common.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#define BNB_XPU_CL_MEM_TAG (UINT64_C(1) << 63)

/* bnb_device_info.features bits of bnb_xpu (docs/backends.md). */
#define BNB_XPU_FEATURE_INTEL_GPU  (1ull << 0)
#define BNB_XPU_FEATURE_SUBGROUPS  (1ull << 1) /* cl_intel_subgroups: gemv_4bit sub-group kernel           */
#define BNB_XPU_FEATURE_FP16       (1ull << 2) /* cl_khr_fp16: half loads                                  */
#define BNB_XPU_FEATURE_INT8_DOT   (1ull << 3) /* cl_khr_integer_dot_product + OpenCL C 2.0: int8 dot      */
#define BNB_XPU_FEATURE_SVM_COARSE (1ull << 4)
#define BNB_XPU_FEATURE_SVM_FINE   (1ull << 5) /* paged memory and SVM device buffers                      */
#define BNB_XPU_FEATURE_FP64       (1ull << 6)

namespace bnb_xpu {

struct Device {
    cl_platform_id platform = nullptr;
    cl_device_id id = nullptr;
    std::string name, platform_name;
    int32_t kind = BNB_DEVICE_GPU;
    uint32_t compute_units = 0;
    uint64_t global_mem = 0;
    uint64_t max_alloc = 0;
    uint64_t features = 0;
    bool has(uint64_t feature) const { return (features & feature) != 0; }
};

struct Registry {
    const ClApi* cl = nullptr;
    std::string why; /* set when there are no devices */
    std::vector<Device> devices;
};
/* Every OpenCL device that can run bnb_xpu's kernels, Intel GPUs first (loaded once; thread-safe). */
const Registry& registry();
const Device* find_device(cl_device_id id);

/* Compiled programs for one (cl_context, cl_device_id), one per variant options string. Shared by every bnb_context
 * and stream on that pair and freed with the last of them; it retains the cl_context so the key cannot be reused. */
class ProgramCache {
  public:
    ProgramCache(cl_context context, const Device* device);
    ~ProgramCache();
    ProgramCache(const ProgramCache&) = delete;
    ProgramCache& operator=(const ProgramCache&) = delete;
    /* A new kernel object (the caller releases it) from the program for the device's variant; builds the program
     * on first use. Failures set the thread's message (op named) and return the status. */
    bnb_status kernel(const char* op, const char* name, cl_kernel* out);
    const Device* device() const { return device_; }

  private:
    cl_context context_;
    const Device* device_;
    std::mutex mutex_;
    cl_program program_ = nullptr;
};
std::shared_ptr<ProgramCache> program_cache(cl_context context, const Device* device);

/* Where an op runs: a queue on a context and device, with its program cache. */
struct Exec {
    cl_context context = nullptr;
    cl_command_queue queue = nullptr;
    const Device* device = nullptr;
    std::shared_ptr<ProgramCache> cache;
};

} // namespace bnb_xpu

struct SvmAlloc {
    size_t bytes;
};

struct bnb_context {
    bnb_context_common common; /* must stay first: shared validation reads it */
    bnb_xpu::Exec own;         /* the context's own OpenCL context and in-order queue */
    bnb_stream* stream = nullptr;
    std::mutex svm_mutex;
    std::map<uintptr_t, SvmAlloc> svm; /* fine-grained SVM allocations from buffer_alloc, by base address */
    /* memory_stats of PAGED (SVM) buffers, under svm_mutex */
    uint64_t paged_bytes = 0, pinned_bytes = 0, peak_paged_bytes = 0;
};

struct bnb_stream {
    uint32_t magic;
    bnb_context* owner;
    bool wrapped; /* a caller's queue: retained while wrapped, never finished or released beyond that */
    bnb_xpu::Exec exec;
};

namespace bnb_xpu {

/* The queue an op on `ctx` uses (its current stream or its own). */
inline Exec& exec_of(bnb_context* ctx) {
    return ctx->stream ? ctx->stream->exec : ctx->own;
}

/* A kernel argument: a buffer, an SVM pointer or NULL. */
struct DevArg {
    cl_mem mem = nullptr;
    void* svm = nullptr;
};

/* One call of an op: host views for validation, then kernel arguments, launches and write-back. Everything it
 * created is released by the destructor, on success and failure alike. */
class Op {
  public:
    Op(const char* name, bnb_context* context) : name_(name), ctx_(context) {}
    ~Op();
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;

    /* Validates the context (same message as every backend) and picks the queue. */
    bnb_status begin();
    const char* name() const { return name_; }
    bnb_context* context() const { return ctx_; }
    const Exec& exec() const { return *exec_; }

    /* The tensor the validators see: t itself for host pointers and NULL; for a cl_mem reference a host-readable
     * stand-in (the buffer mapped) when host_read, else t itself after the context and size checks (validators
     * never read outputs or the inputs of most ops: only NaN checks, code tables and a few host-side reductions
     * do, so kernel ops map only those; everything else stays on the device). */
    bnb_status view(const char* arg, const bnb_tensor* t, bnb_tensor** out, bool host_read = true);
    bnb_status view_absmax(const bnb_absmax* absmax, const bnb_absmax** out, bool host_read = true);
    /* Waits for queued work (before the host reads or writes memory the device may touch). */
    bnb_status sync();
    /* Ends the validation phase: unmaps every mapped cl_mem. Views may then serve only as lookup keys. */
    bnb_status end_views();

    /* The kernel argument for a host view address (as the validators resolved it) covering `bytes`. */
    bnb_status arg(const void* key, size_t bytes, bool write, DevArg* out);
    /* A read-only device copy of small host data (tables, midpoints, LUT). */
    bnb_status constant(const void* data, size_t bytes, DevArg* out);
    /* A device scratch buffer (read-write, uninitialised) that lives until the op ends. */
    bnb_status scratch(size_t bytes, DevArg* out);
    /* Blocking read of `bytes` from a scratch/constant buffer into host memory. */
    bnb_status read(const DevArg& from, void* to, size_t bytes);

    bnb_status kernel(const char* kernel_name, cl_kernel* out);
    bnb_status set(cl_kernel k, cl_uint index, const DevArg& a);
    template <class T> bnb_status set(cl_kernel k, cl_uint index, const T& value) {
        return check(cl()->clSetKernelArg(k, index, sizeof(T), &value), "clSetKernelArg");
    }
    /* Sets consecutive arguments first, first + 1, … (stops at the first failure). */
    template <class... T> bnb_status args_at(cl_kernel k, cl_uint first, const T&... values) {
        bnb_status status = BNB_OK;
        cl_uint index = first;
        ((status = status == BNB_OK ? set(k, index++, values) : status), ...);
        return status;
    }
    /* 1-D or 2-D launch; local may be NULL. Zero-sized launches are skipped. */
    bnb_status launch(cl_kernel k, cl_uint dims, const size_t* global, const size_t* local);
    /* Makes host outputs current and waits when host memory is involved. */
    bnb_status finish();

    bnb_status check(cl_int err, const char* what);
    const ClApi* cl() const { return registry().cl; }

  private:
    struct Mapping {
        cl_mem mem;
        char* host;
        size_t bytes;
    };
    struct Temp {
        cl_mem mem;
        bool write;
        size_t bytes;
        const void* host; /* the wrapped host memory (USE_HOST_PTR temps), else NULL */
    };
    const char* name_;
    bnb_context* ctx_;
    Exec* exec_ = nullptr;
    std::vector<Mapping> maps_;
    std::vector<Temp> temps_;
    std::vector<cl_kernel> kernels_;
    std::deque<bnb_tensor> tensors_;
    std::deque<bnb_absmax> absmaxes_;
    bool views_open_ = true;
    bool synced_ = false;
};

inline bool is_cl_mem_ref(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) & BNB_XPU_CL_MEM_TAG) != 0;
}
inline cl_mem cl_mem_of(const void* p) {
    return reinterpret_cast<cl_mem>(reinterpret_cast<uintptr_t>(p) & ~static_cast<uintptr_t>(BNB_XPU_CL_MEM_TAG));
}
inline void* cl_mem_ref(cl_mem m) {
    return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(m) | BNB_XPU_CL_MEM_TAG);
}

} // namespace bnb_xpu

/* Runtime and memory slots (xpu_runtime.cpp). */
bnb_status BNB_CALL xpu_device_count(int32_t* out_count);
bnb_status BNB_CALL xpu_device_get_info(int32_t index, bnb_device_info* out);
bnb_status BNB_CALL xpu_context_create(const bnb_context_options* options, bnb_context** out_context);
bnb_status BNB_CALL xpu_context_destroy(bnb_context* context);
const char* BNB_CALL xpu_last_error_message(void);
bnb_status BNB_CALL xpu_set_log_callback(bnb_log_fn callback, void* user_data);
bnb_status BNB_CALL xpu_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer);
bnb_status BNB_CALL xpu_buffer_free(bnb_buffer* buffer);
bnb_status BNB_CALL xpu_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes);
bnb_status BNB_CALL xpu_buffer_map(bnb_buffer* buffer, void** out_host_pointer);
bnb_status BNB_CALL xpu_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes, int32_t direction);
bnb_status BNB_CALL xpu_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                       int32_t target);
bnb_status BNB_CALL xpu_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream);
bnb_status BNB_CALL xpu_stream_destroy(bnb_stream* stream);
bnb_status BNB_CALL xpu_stream_synchronize(bnb_stream* stream);
bnb_status BNB_CALL xpu_context_set_stream(bnb_context* context, bnb_stream* stream);
bnb_status BNB_CALL xpu_pager_configure(bnb_context* context, const bnb_pager_config* config);
bnb_status BNB_CALL xpu_memory_stats(bnb_context* context, bnb_memory_stats* out);
bnb_status BNB_CALL xpu_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer);
bnb_status BNB_CALL xpu_buffer_unmap(bnb_buffer* buffer);
int32_t xpu_probe_score(void);

#endif
