/* xpu_runtime.cpp — devices, contexts, streams, buffers, the program cache and Op (see xpu_runtime.h). */
#include "xpu_runtime.h"

#include "bnb_xpu_kernels.h" /* generated from kernels/bnb_xpu.cl: bnb_xpu_kernel_source */

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

using namespace bnb_xpu;

namespace {

const char op_context_create[] = "context_create";

template <class T> bool device_info(const ClApi* cl, cl_device_id d, cl_device_info what, T* out) {
    return cl->clGetDeviceInfo(d, what, sizeof(T), out, nullptr) == CL_SUCCESS;
}

std::string device_string(const ClApi* cl, cl_device_id d, cl_device_info what) {
    size_t size = 0;
    if (cl->clGetDeviceInfo(d, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return std::string();
    std::string s(size, '\0');
    if (cl->clGetDeviceInfo(d, what, size, &s[0], nullptr) != CL_SUCCESS) return std::string();
    s.resize(std::strlen(s.c_str()));
    return s;
}

std::string platform_string(const ClApi* cl, cl_platform_id p, cl_platform_info what) {
    size_t size = 0;
    if (cl->clGetPlatformInfo(p, what, 0, nullptr, &size) != CL_SUCCESS || size == 0) return std::string();
    std::string s(size, '\0');
    if (cl->clGetPlatformInfo(p, what, size, &s[0], nullptr) != CL_SUCCESS) return std::string();
    s.resize(std::strlen(s.c_str()));
    return s;
}

bool has_word(const std::string& list, const char* word) {
    const std::string w(word);
    size_t pos = 0;
    while ((pos = list.find(w, pos)) != std::string::npos) {
        const bool start = pos == 0 || list[pos - 1] == ' ';
        const bool end = pos + w.size() == list.size() || list[pos + w.size()] == ' ';
        if (start && end) return true;
        pos += w.size();
    }
    return false;
}

/* "OpenCL C 2.0 …" → 20; OpenCL 3.0 devices may report 1.2 here and list 2.0 in CL_DEVICE_OPENCL_C_ALL_VERSIONS. */
bool supports_opencl_c_20(const ClApi* cl, cl_device_id d) {
    const std::string v = device_string(cl, d, CL_DEVICE_OPENCL_C_VERSION);
    int major = 0, minor = 0;
    if (std::sscanf(v.c_str(), "OpenCL C %d.%d", &major, &minor) == 2 && major == 2) return true;
    size_t size = 0;
    if (cl->clGetDeviceInfo(d, CL_DEVICE_OPENCL_C_ALL_VERSIONS, 0, nullptr, &size) != CL_SUCCESS) return false;
    std::vector<cl_name_version> all(size / sizeof(cl_name_version));
    if (all.empty() || cl->clGetDeviceInfo(d, CL_DEVICE_OPENCL_C_ALL_VERSIONS, size, all.data(), nullptr) != CL_SUCCESS)
        return false;
    for (const cl_name_version& nv : all)
        if (CL_VERSION_MAJOR(nv.version) == 2) return true;
    return false;
}

/* BNB_XPU_DISABLE=subgroups,fp16,dot8,svm hides features (tests of the fallbacks on hardware that has them). */
uint64_t disabled_features() {
    const char* env = std::getenv("BNB_XPU_DISABLE");
    if (env == nullptr) return 0;
    const std::string s(env);
    uint64_t off = 0;
    if (s.find("subgroups") != std::string::npos) off |= BNB_XPU_FEATURE_SUBGROUPS;
    if (s.find("fp16") != std::string::npos) off |= BNB_XPU_FEATURE_FP16;
    if (s.find("dot8") != std::string::npos) off |= BNB_XPU_FEATURE_INT8_DOT;
    if (s.find("svm") != std::string::npos) off |= BNB_XPU_FEATURE_SVM_FINE | BNB_XPU_FEATURE_SVM_COARSE;
    return off;
}

Registry load_registry() {
    Registry r;
    std::string why;
    r.cl = cl_api(&why);
    if (r.cl == nullptr) {
        r.why = why;
        return r;
    }
    const ClApi* cl = r.cl;
    cl_uint nplatforms = 0;
    if (cl->clGetPlatformIDs(0, nullptr, &nplatforms) != CL_SUCCESS || nplatforms == 0) {
        r.why = "the OpenCL loader reports no platform (no OpenCL driver/ICD is installed)";
        return r;
    }
    std::vector<cl_platform_id> platforms(nplatforms);
    cl->clGetPlatformIDs(nplatforms, platforms.data(), nullptr);
    const uint64_t off = disabled_features();
    for (cl_platform_id p : platforms) {
        cl_uint ndevices = 0;
        if (cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &ndevices) != CL_SUCCESS || ndevices == 0) continue;
        std::vector<cl_device_id> ids(ndevices);
        cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, ndevices, ids.data(), nullptr);
        for (cl_device_id id : ids) {
            cl_bool available = CL_FALSE, compiler = CL_FALSE;
            if (!device_info(cl, id, CL_DEVICE_AVAILABLE, &available) || !available) continue;
            if (!device_info(cl, id, CL_DEVICE_COMPILER_AVAILABLE, &compiler) || !compiler) continue;
            Device d;
            d.platform = p;
            d.id = id;
            d.name = device_string(cl, id, CL_DEVICE_NAME);
            d.platform_name = platform_string(cl, p, CL_PLATFORM_NAME);
            cl_device_type type = 0;
            device_info(cl, id, CL_DEVICE_TYPE, &type);
            d.kind = (type & CL_DEVICE_TYPE_GPU)   ? BNB_DEVICE_GPU
                     : (type & CL_DEVICE_TYPE_CPU) ? BNB_DEVICE_CPU
                                                   : BNB_DEVICE_ACCELERATOR;
            cl_uint units = 0;
            device_info(cl, id, CL_DEVICE_MAX_COMPUTE_UNITS, &units);
            d.compute_units = units;
            cl_ulong mem = 0, max_alloc = 0;
            device_info(cl, id, CL_DEVICE_GLOBAL_MEM_SIZE, &mem);
            device_info(cl, id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, &max_alloc);
            d.global_mem = mem;
            d.max_alloc = max_alloc;
            const std::string ext = device_string(cl, id, CL_DEVICE_EXTENSIONS);
            cl_uint vendor_id = 0;
            device_info(cl, id, CL_DEVICE_VENDOR_ID, &vendor_id);
            const bool intel_gpu = d.kind == BNB_DEVICE_GPU && vendor_id == 0x8086;
            const bool c20 = supports_opencl_c_20(cl, id);
            uint64_t f = 0;
            if (intel_gpu) f |= BNB_XPU_FEATURE_INTEL_GPU;
            if (has_word(ext, "cl_intel_subgroups")) f |= BNB_XPU_FEATURE_SUBGROUPS;
            if (has_word(ext, "cl_khr_fp16")) f |= BNB_XPU_FEATURE_FP16;
            if (has_word(ext, "cl_khr_integer_dot_product") && c20) f |= BNB_XPU_FEATURE_INT8_DOT;
            if (has_word(ext, "cl_khr_fp64")) f |= BNB_XPU_FEATURE_FP64;
            cl_device_svm_capabilities svm = 0;
            if (cl->has_svm() && device_info(cl, id, CL_DEVICE_SVM_CAPABILITIES, &svm)) {
                if (svm & CL_DEVICE_SVM_COARSE_GRAIN_BUFFER) f |= BNB_XPU_FEATURE_SVM_COARSE;
                if (svm & CL_DEVICE_SVM_FINE_GRAIN_BUFFER) f |= BNB_XPU_FEATURE_SVM_FINE;
            }
            d.features = f & ~off;
            r.devices.push_back(d);
        }
    }
    /* Intel GPUs first, then other GPUs, accelerators, CPUs (stable within a group: platform order). */
    auto rank = [](const Device& d) {
        if (d.has(BNB_XPU_FEATURE_INTEL_GPU)) return 0;
        return d.kind == BNB_DEVICE_GPU ? 1 : d.kind == BNB_DEVICE_ACCELERATOR ? 2 : 3;
    };
    std::stable_sort(r.devices.begin(), r.devices.end(),
                     [&](const Device& a, const Device& b) { return rank(a) < rank(b); });
    if (r.devices.empty()) r.why = "no available OpenCL device with a compiler on any of the OpenCL platforms";
    return r;
}

/* The build options of a device's variant (kernels/bnb_xpu.cl documents each define). */
std::string build_options(const Device& d) {
    std::string o = d.has(BNB_XPU_FEATURE_INT8_DOT) ? "-cl-std=CL2.0" : "-cl-std=CL1.2";
    o += " -cl-fp32-correctly-rounded-divide-sqrt";
    if (d.has(BNB_XPU_FEATURE_SUBGROUPS)) o += " -D BNB_XPU_SUBGROUPS";
    if (d.has(BNB_XPU_FEATURE_FP16)) o += " -D BNB_XPU_FP16";
    if (d.has(BNB_XPU_FEATURE_INT8_DOT)) o += " -D BNB_XPU_DOT8";
    return o;
}

bnb_status cl_fail(const char* op, const char* what, cl_int err) {
    return bnb_fail(err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? BNB_ERR_OUT_OF_MEMORY
                                                                                            : BNB_ERR_DEVICE,
                    op, "%s failed: %s", what, cl_error_name(err).c_str());
}

} // namespace

namespace bnb_xpu {

const Registry& registry() {
    static const Registry r = load_registry(); /* thread-safe static initialisation */
    return r;
}

const Device* find_device(cl_device_id id) {
    for (const Device& d : registry().devices)
        if (d.id == id) return &d;
    return nullptr;
}

/* ─── program cache ──────────────────────────────────────────────────────────────────────────────────────── */

ProgramCache::ProgramCache(cl_context context, const Device* device) : context_(context), device_(device) {
    registry().cl->clRetainContext(context_);
}

ProgramCache::~ProgramCache() {
    const ClApi* cl = registry().cl;
    if (program_ != nullptr) cl->clReleaseProgram(program_);
    cl->clReleaseContext(context_);
}

bnb_status ProgramCache::kernel(const char* op, const char* name, cl_kernel* out) {
    const ClApi* cl = registry().cl;
    std::lock_guard<std::mutex> lock(mutex_);
    if (program_ == nullptr) {
        const char* source = bnb_xpu_kernel_source;
        const size_t length = std::strlen(source);
        cl_int err = CL_SUCCESS;
        cl_program program = cl->clCreateProgramWithSource(context_, 1, &source, &length, &err);
        if (err != CL_SUCCESS) return cl_fail(op, "clCreateProgramWithSource", err);
        const std::string options = build_options(*device_);
        err = cl->clBuildProgram(program, 1, &device_->id, options.c_str(), nullptr, nullptr);
        if (err != CL_SUCCESS) {
            size_t size = 0;
            cl->clGetProgramBuildInfo(program, device_->id, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size);
            std::string log(size, '\0');
            if (size > 0) cl->clGetProgramBuildInfo(program, device_->id, CL_PROGRAM_BUILD_LOG, size, &log[0], nullptr);
            cl->clReleaseProgram(program);
            if (log.size() > 600) log.resize(600);
            return bnb_fail(BNB_ERR_DEVICE, op, "building the kernels for %s with '%s' failed: %s: %s",
                            device_->name.c_str(), options.c_str(), cl_error_name(err).c_str(), log.c_str());
        }
        program_ = program;
        bnb_log(BNB_LOG_INFO, "xpu: kernels built for %s (%s)", device_->name.c_str(), options.c_str());
    }
    cl_int err = CL_SUCCESS;
    cl_kernel k = cl->clCreateKernel(program_, name, &err);
    if (err != CL_SUCCESS) return cl_fail(op, name, err);
    *out = k;
    return BNB_OK;
}

std::shared_ptr<ProgramCache> program_cache(cl_context context, const Device* device) {
    static std::mutex mutex;
    static std::map<std::pair<cl_context, cl_device_id>, std::weak_ptr<ProgramCache>> caches;
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = caches.begin(); it != caches.end();) it = it->second.expired() ? caches.erase(it) : std::next(it);
    auto& slot = caches[{context, device->id}];
    std::shared_ptr<ProgramCache> cache = slot.lock();
    if (!cache) {
        cache = std::make_shared<ProgramCache>(context, device);
        slot = cache;
    }
    return cache;
}

/* ─── Op ─────────────────────────────────────────────────────────────────────────────────────────────────── */

Op::~Op() {
    const ClApi* c = cl();
    if (c == nullptr) return;
    if (views_open_) end_views();
    for (cl_kernel k : kernels_) c->clReleaseKernel(k);
    if (!temps_.empty() && exec_ != nullptr) c->clFinish(exec_->queue); /* never free what a kernel may still read */
    for (const Temp& t : temps_) c->clReleaseMemObject(t.mem);
}

bnb_status Op::check(cl_int err, const char* what) {
    if (err == CL_SUCCESS) return BNB_OK;
    return cl_fail(name_, what, err);
}

bnb_status Op::begin() {
    BNB_TRY(bnb_check_context(name_, ctx_, nullptr));
    exec_ = &exec_of(ctx_);
    return BNB_OK;
}

bnb_status Op::sync() {
    if (synced_) return BNB_OK;
    synced_ = true;
    return check(cl()->clFinish(exec_->queue), "clFinish");
}

bnb_status Op::view(const char* arg, const bnb_tensor* t, bnb_tensor** out, bool host_read) {
    *out = const_cast<bnb_tensor*>(t);
    if (t == nullptr || t->data == nullptr) return BNB_OK;
    if (!is_cl_mem_ref(t->data)) {
        /* SVM memory may still be written by queued kernels; plain host memory was synchronised by the op that
         * wrote it. Either way one clFinish before the host reads is cheap and always right. */
        return sync();
    }
    const cl_mem mem = cl_mem_of(t->data);
    for (const Mapping& m : maps_)
        if (m.mem == mem) {
            tensors_.push_back(*t);
            tensors_.back().data = m.host;
            *out = &tensors_.back();
            return BNB_OK;
        }
    cl_context owner = nullptr;
    size_t size = 0;
    if (cl()->clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof owner, &owner, nullptr) != CL_SUCCESS ||
        cl()->clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, nullptr) != CL_SUCCESS)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, name_, "%s.data is tagged as a cl_mem but %p is not a valid cl_mem",
                        arg, static_cast<void*>(mem));
    if (owner != exec_->context)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, name_,
                        "%s.data is a cl_mem of another OpenCL context than the stream's (wrap that context's queue "
                        "with stream_create and make it current with context_set_stream)",
                        arg);
    const int64_t numel = bnb_tensor_numel(t);
    const size_t elem = bnb_dtype_size(t->dtype);
    if (numel > 0 && elem > 0 && static_cast<uint64_t>(numel) > size / elem)
        return bnb_fail(BNB_ERR_BUFFER_TOO_SMALL, name_,
                        "%s declares %lld elements of %zu bytes but its cl_mem holds %zu bytes", arg,
                        static_cast<long long>(numel), elem, size);
    if (!host_read) return BNB_OK; /* *out = t: the reference goes to the kernel as it is (Op::arg) */
    tensors_.push_back(*t);
    bnb_tensor* shadow = &tensors_.back();
    *out = shadow;
    cl_int err = CL_SUCCESS;
    void* host = cl()->clEnqueueMapBuffer(exec_->queue, mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, size, 0, nullptr,
                                          nullptr, &err);
    if (err != CL_SUCCESS) return check(err, "clEnqueueMapBuffer (host-side argument validation)");
    maps_.push_back(Mapping{mem, static_cast<char*>(host), size});
    shadow->data = host;
    return BNB_OK;
}

bnb_status Op::view_absmax(const bnb_absmax* absmax, const bnb_absmax** out, bool host_read) {
    *out = absmax;
    if (absmax == nullptr) return BNB_OK;
    absmaxes_.push_back(*absmax);
    bnb_absmax* shadow = &absmaxes_.back();
    bnb_tensor* t = nullptr;
    BNB_TRY(view("absmax.values", absmax->values, &t, host_read));
    shadow->values = t;
    if (absmax->struct_size >= offsetof(bnb_absmax, nested_offset) + sizeof(float) && absmax->nested) {
        BNB_TRY(view("absmax.nested_absmax", absmax->nested_absmax, &t, host_read));
        shadow->nested_absmax = t;
        BNB_TRY(view("absmax.nested_code", absmax->nested_code, &t, host_read));
        shadow->nested_code = t;
    }
    *out = shadow;
    return BNB_OK;
}

bnb_status Op::end_views() {
    views_open_ = false;
    bnb_status status = BNB_OK;
    for (const Mapping& m : maps_) {
        const cl_int err = cl()->clEnqueueUnmapMemObject(exec_->queue, m.mem, m.host, 0, nullptr, nullptr);
        if (err != CL_SUCCESS && status == BNB_OK) status = check(err, "clEnqueueUnmapMemObject");
    }
    return status;
}

bnb_status Op::arg(const void* key, size_t bytes, bool write, DevArg* out) {
    *out = DevArg{};
    if (key == nullptr || bytes == 0) return BNB_OK;
    if (is_cl_mem_ref(key)) { /* passed through by view(…, host_read = false), checked there */
        out->mem = cl_mem_of(key);
        return BNB_OK;
    }
    const char* p = static_cast<const char*>(key);
    for (const Mapping& m : maps_) {
        if (p >= m.host && p < m.host + m.bytes) {
            if (p != m.host)
                return bnb_fail(BNB_ERR_INTERNAL, name_, "a cl_mem argument resolved to an offset of %zu bytes",
                                static_cast<size_t>(p - m.host));
            out->mem = m.mem;
            return BNB_OK;
        }
    }
    {
        std::lock_guard<std::mutex> lock(ctx_->svm_mutex);
        const uintptr_t u = reinterpret_cast<uintptr_t>(key);
        auto it = ctx_->svm.upper_bound(u);
        if (it != ctx_->svm.begin()) {
            --it;
            if (u >= it->first && u < it->first + it->second.bytes) {
                if (exec_->context != ctx_->own.context)
                    return bnb_fail(BNB_ERR_INVALID_ARGUMENT, name_,
                                    "memory from this context's buffer_alloc cannot be used on a stream of another "
                                    "OpenCL context");
                out->svm = const_cast<void*>(key);
                return BNB_OK;
            }
        }
    }
    /* One buffer per host range and op: a second wrapper of the same memory (an in-place operand, or a state a
     * first kernel wrote and a second reads) would see stale data on devices that copy USE_HOST_PTR memory. */
    for (Temp& t : temps_) {
        if (t.host == key && t.bytes >= bytes) {
            t.write = t.write || write;
            out->mem = t.mem;
            return BNB_OK;
        }
    }
    cl_int err = CL_SUCCESS;
    cl_mem mem = cl()->clCreateBuffer(exec_->context, CL_MEM_USE_HOST_PTR | CL_MEM_READ_WRITE, bytes,
                                      const_cast<void*>(key), &err);
    if (err != CL_SUCCESS) return check(err, "clCreateBuffer(CL_MEM_USE_HOST_PTR)");
    temps_.push_back(Temp{mem, write, bytes, key});
    out->mem = mem;
    return BNB_OK;
}

bnb_status Op::constant(const void* data, size_t bytes, DevArg* out) {
    *out = DevArg{};
    cl_int err = CL_SUCCESS;
    cl_mem mem = cl()->clCreateBuffer(exec_->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                                      const_cast<void*>(data), &err);
    if (err != CL_SUCCESS) return check(err, "clCreateBuffer(CL_MEM_COPY_HOST_PTR)");
    temps_.push_back(Temp{mem, false, bytes, nullptr});
    out->mem = mem;
    return BNB_OK;
}

bnb_status Op::scratch(size_t bytes, DevArg* out) {
    *out = DevArg{};
    cl_int err = CL_SUCCESS;
    cl_mem mem = cl()->clCreateBuffer(exec_->context, CL_MEM_READ_WRITE, bytes, nullptr, &err);
    if (err != CL_SUCCESS) return check(err, "clCreateBuffer (scratch)");
    temps_.push_back(Temp{mem, false, bytes, nullptr});
    out->mem = mem;
    return BNB_OK;
}

bnb_status Op::read(const DevArg& from, void* to, size_t bytes) {
    return check(cl()->clEnqueueReadBuffer(exec_->queue, from.mem, CL_TRUE, 0, bytes, to, 0, nullptr, nullptr),
                 "clEnqueueReadBuffer");
}

bnb_status Op::kernel(const char* kernel_name, cl_kernel* out) {
    cl_kernel k = nullptr;
    BNB_TRY(exec_->cache->kernel(name_, kernel_name, &k));
    kernels_.push_back(k);
    *out = k;
    return BNB_OK;
}

bnb_status Op::set(cl_kernel k, cl_uint index, const DevArg& a) {
    if (a.svm != nullptr) return check(cl()->clSetKernelArgSVMPointer(k, index, a.svm), "clSetKernelArgSVMPointer");
    if (a.mem != nullptr) return check(cl()->clSetKernelArg(k, index, sizeof(cl_mem), &a.mem), "clSetKernelArg");
    return check(cl()->clSetKernelArg(k, index, sizeof(cl_mem), nullptr), "clSetKernelArg");
}

bnb_status Op::launch(cl_kernel k, cl_uint dims, const size_t* global, const size_t* local) {
    for (cl_uint i = 0; i < dims; ++i)
        if (global[i] == 0) return BNB_OK;
    /* Without an explicit local size a driver picks one from the global size, and PoCL then compiles a kernel
     * specialisation for every new shape (seconds each). A fixed work-group of up to 64 work-items along dim 0,
     * with the global size rounded up (every kernel bounds-checks its ids), keeps one specialisation per kernel. */
    size_t g[2] = {global[0], dims > 1 ? global[1] : 1};
    size_t l[2] = {1, 1};
    if (local != nullptr) {
        l[0] = local[0];
        if (dims > 1) l[1] = local[1];
    } else {
        size_t limit = 0;
        if (cl()->clGetKernelWorkGroupInfo(k, exec_->device->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof limit, &limit,
                                           nullptr) != CL_SUCCESS ||
            limit == 0)
            limit = 1;
        l[0] = limit < 64 ? limit : 64;
        g[0] = (g[0] + l[0] - 1) / l[0] * l[0];
    }
    return check(cl()->clEnqueueNDRangeKernel(exec_->queue, k, dims, nullptr, g, l, 0, nullptr, nullptr),
                 "clEnqueueNDRangeKernel");
}

bnb_status Op::finish() {
    /* USE_HOST_PTR buffers: a blocking map makes the host memory current (a no-op on devices that used it in
     * place), and the queue must be done with every wrapped host input before the caller gets control back. */
    for (const Temp& t : temps_) {
        if (!t.write) continue;
        cl_int err = CL_SUCCESS;
        void* host =
            cl()->clEnqueueMapBuffer(exec_->queue, t.mem, CL_TRUE, CL_MAP_READ, 0, t.bytes, 0, nullptr, nullptr, &err);
        BNB_TRY(check(err, "clEnqueueMapBuffer (result write-back)"));
        BNB_TRY(check(cl()->clEnqueueUnmapMemObject(exec_->queue, t.mem, host, 0, nullptr, nullptr),
                      "clEnqueueUnmapMemObject"));
    }
    if (!temps_.empty()) BNB_TRY(check(cl()->clFinish(exec_->queue), "clFinish"));
    return BNB_OK;
}

} // namespace bnb_xpu

/* ─── runtime slots ──────────────────────────────────────────────────────────────────────────────────────── */

int32_t xpu_probe_score(void) {
    const Registry& r = registry();
    if (r.devices.empty()) return 0;
    /* Intel GPUs beat every CPU backend (CPU SIMD variants score 20–30); other OpenCL devices only the scalar
     * reference's level, so a CPU OpenCL driver such as PoCL never becomes the default. */
    if (r.devices.front().has(BNB_XPU_FEATURE_INTEL_GPU)) return 50;
    return r.devices.front().kind == BNB_DEVICE_GPU ? 10 : 1;
}

bnb_status BNB_CALL xpu_device_count(int32_t* out_count) {
    BNB_TRY(bnb_check_not_null("device_count", "out_count", out_count));
    *out_count = static_cast<int32_t>(registry().devices.size());
    return BNB_OK;
}

bnb_status BNB_CALL xpu_device_get_info(int32_t index, bnb_device_info* out) {
    static const char op[] = "device_get_info";
    BNB_TRY(bnb_check_not_null(op, "out", out));
    if (out->struct_size < sizeof(bnb_device_info))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        static_cast<unsigned>(out->struct_size), static_cast<unsigned>(sizeof(bnb_device_info)));
    const Registry& r = registry();
    if (index < 0 || static_cast<size_t>(index) >= r.devices.size())
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "index = %d is outside [0, %d)", static_cast<int>(index),
                        static_cast<int>(r.devices.size()));
    const Device& d = r.devices[static_cast<size_t>(index)];
    bnb_device_info info;
    std::memset(&info, 0, sizeof info);
    info.struct_size = static_cast<uint32_t>(sizeof info);
    info.index = index;
    info.kind = d.kind;
    info.compute_units = static_cast<int32_t>(d.compute_units);
    std::snprintf(info.name, sizeof info.name, "%s (%s)", d.name.c_str(), d.platform_name.c_str());
    info.total_memory = d.global_mem;
    info.features = d.features;
    info.warp_size = d.has(BNB_XPU_FEATURE_SUBGROUPS) ? 16 : 0;
    *out = info;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_context_create(const bnb_context_options* options, bnb_context** out_context) {
    BNB_TRY(bnb_check_not_null(op_context_create, "out_context", out_context));
    const Registry& r = registry();
    if (r.devices.empty()) return bnb_fail(BNB_ERR_NO_DEVICE, op_context_create, "%s", r.why.c_str());
    bnb_context_common common;
    BNB_TRY(bnb_context_options_resolve(op_context_create, options, static_cast<int32_t>(r.devices.size()), &common));
    if (common.num_threads == 0) common.num_threads = 1; /* the device schedules its own work */
    const Device& d = r.devices[static_cast<size_t>(common.device)];
    const ClApi* cl = r.cl;
    cl_int err = CL_SUCCESS;
    const cl_context_properties props[] = {CL_CONTEXT_PLATFORM, reinterpret_cast<cl_context_properties>(d.platform), 0};
    cl_context context = cl->clCreateContext(props, 1, &d.id, nullptr, nullptr, &err);
    if (err != CL_SUCCESS) return cl_fail(op_context_create, "clCreateContext", err);
    cl_command_queue queue = cl->clCreateCommandQueue(context, d.id, 0, &err); /* in order */
    if (err != CL_SUCCESS) {
        cl->clReleaseContext(context);
        return cl_fail(op_context_create, "clCreateCommandQueue", err);
    }
    bnb_context* ctx = new (std::nothrow) bnb_context();
    std::shared_ptr<ProgramCache> cache;
    if (ctx != nullptr) {
        try {
            cache = program_cache(context, &d);
        } catch (...) {
            delete ctx;
            ctx = nullptr;
        }
    }
    if (ctx == nullptr) {
        cl->clReleaseCommandQueue(queue);
        cl->clReleaseContext(context);
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op_context_create, "cannot allocate a context");
    }
    ctx->common = common;
    ctx->own.context = context;
    ctx->own.queue = queue;
    ctx->own.device = &d;
    ctx->own.cache = std::move(cache);
    *out_context = ctx;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_context_destroy(bnb_context* context) {
    if (context == nullptr) return BNB_OK;
    BNB_TRY(bnb_check_context("context_destroy", context, nullptr));
    const ClApi* cl = registry().cl;
    context->common.magic = 0;
    cl->clFinish(context->own.queue);
    {
        std::lock_guard<std::mutex> lock(context->svm_mutex);
        for (auto& entry : context->svm) cl->clSVMFree(context->own.context, reinterpret_cast<void*>(entry.first));
    }
    context->own.cache.reset();
    cl->clReleaseCommandQueue(context->own.queue);
    cl->clReleaseContext(context->own.context);
    delete context;
    return BNB_OK;
}

const char* BNB_CALL xpu_last_error_message(void) {
    return bnb_last_error();
}

bnb_status BNB_CALL xpu_set_log_callback(bnb_log_fn callback, void* user_data) {
    return bnb_set_log_callback_impl(callback, user_data);
}

/* ─── buffers ────────────────────────────────────────────────────────────────────────────────────────────── *
 *   DEVICE       fine-grained SVM where the device has it (host-addressable, usable as bnb_tensor.data directly),
 *                else a cl_mem whose pointer is a cl_mem reference (BNB_XPU_CL_MEM_TAG; buffer_map NOT_SUPPORTED)
 *   HOST_PINNED  64-byte aligned host memory (wrapped zero-copy per call on CPU devices and integrated GPUs)
 *   PAGED        fine-grained SVM (migrates on demand; paged_prefetch → clEnqueueSVMMigrateMem), else NOT_SUPPORTED.
 *                The driver pages SVM: pager_configure accepts only the defaults (no budget, no spill file) and
 *                memory_stats reports PAGED bytes as resident. As on every backend, a PAGED buffer has an address
 *                only while mapped (buffer_map / buffer_map_access … buffer_unmap). */

#define XPU_BUFFER_MAGIC     0x424E4258u /* "BNBX" */
#define XPU_BUFFER_ALIGNMENT 64

struct bnb_buffer {
    uint32_t magic;
    int32_t kind;
    size_t bytes;
    bnb_context* owner;
    void* host;   /* HOST_PINNED */
    void* svm;    /* DEVICE or PAGED on fine-grained SVM devices */
    cl_mem mem;   /* DEVICE elsewhere */
    int32_t maps; /* open buffer_map / buffer_map_access calls */
};

static bnb_status check_buffer(const char* op, bnb_buffer* buffer) {
    BNB_TRY(bnb_check_not_null(op, "buffer", buffer));
    if (buffer->magic != XPU_BUFFER_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not a live buffer of this backend (freed?)");
    return BNB_OK;
}

bnb_status BNB_CALL xpu_buffer_alloc(bnb_context* context, int32_t kind, size_t bytes, bnb_buffer** out_buffer) {
    static const char op[] = "buffer_alloc";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    BNB_TRY(bnb_check_not_null(op, "out_buffer", out_buffer));
    BNB_TRY(bnb_check_memory_kind(op, kind));
    if (bytes == 0) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "bytes = 0: nothing to allocate");
    const Device& d = *context->own.device;
    const ClApi* cl = registry().cl;
    const bool fine = d.has(BNB_XPU_FEATURE_SVM_FINE);
    if (kind == BNB_MEMORY_PAGED && !fine)
        return bnb_fail(BNB_ERR_NOT_SUPPORTED, op,
                        "kind = BNB_MEMORY_PAGED needs fine-grained buffer SVM, which %s does not report",
                        d.name.c_str());
    if (bytes > SIZE_MAX - XPU_BUFFER_ALIGNMENT || (kind != BNB_MEMORY_HOST_PINNED && bytes > d.max_alloc))
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "bytes = %zu cannot be allocated (device maximum %llu)", bytes,
                        static_cast<unsigned long long>(d.max_alloc));
    bnb_buffer* buffer = static_cast<bnb_buffer*>(std::calloc(1, sizeof(bnb_buffer)));
    if (buffer == nullptr) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a buffer record");
    buffer->kind = kind;
    buffer->bytes = bytes;
    buffer->owner = context;
    if (kind == BNB_MEMORY_HOST_PINNED) {
        void* p = nullptr;
#if defined(_WIN32)
        p = _aligned_malloc(bytes, XPU_BUFFER_ALIGNMENT);
#else
        if (posix_memalign(&p, XPU_BUFFER_ALIGNMENT, bytes) != 0) p = nullptr;
#endif
        if (p == nullptr) {
            std::free(buffer);
            return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate %zu bytes of host memory", bytes);
        }
        std::memset(p, 0, bytes);
        buffer->host = p;
    } else if (fine) {
        void* p = cl->clSVMAlloc(context->own.context, CL_MEM_READ_WRITE | CL_MEM_SVM_FINE_GRAIN_BUFFER, bytes,
                                 XPU_BUFFER_ALIGNMENT);
        if (p == nullptr) {
            std::free(buffer);
            return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "clSVMAlloc of %zu bytes failed on %s", bytes, d.name.c_str());
        }
        std::memset(p, 0, bytes); /* fine-grained: the host writes it directly */
        buffer->svm = p;
        std::lock_guard<std::mutex> lock(context->svm_mutex);
        context->svm[reinterpret_cast<uintptr_t>(p)] = SvmAlloc{bytes};
        if (kind == BNB_MEMORY_PAGED) {
            context->paged_bytes += bytes;
            if (context->paged_bytes > context->peak_paged_bytes) context->peak_paged_bytes = context->paged_bytes;
        }
    } else {
        cl_int err = CL_SUCCESS;
        cl_mem mem = cl->clCreateBuffer(context->own.context, CL_MEM_READ_WRITE, bytes, nullptr, &err);
        if (err == CL_SUCCESS) {
            const cl_uchar zero = 0;
            err = cl->clEnqueueFillBuffer(context->own.queue, mem, &zero, 1, 0, bytes, 0, nullptr, nullptr);
            if (err == CL_SUCCESS) err = cl->clFinish(context->own.queue);
            if (err != CL_SUCCESS) cl->clReleaseMemObject(mem);
        }
        if (err != CL_SUCCESS) {
            std::free(buffer);
            return cl_fail(op, "clCreateBuffer", err);
        }
        buffer->mem = mem;
    }
    buffer->magic = XPU_BUFFER_MAGIC;
    *out_buffer = buffer;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_buffer_free(bnb_buffer* buffer) {
    if (buffer == nullptr) return BNB_OK;
    BNB_TRY(check_buffer("buffer_free", buffer));
    if (buffer->kind == BNB_MEMORY_PAGED && buffer->maps > 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, "buffer_free",
                        "buffer is PAGED and mapped %d time(s): unmap it first", static_cast<int>(buffer->maps));
    const ClApi* cl = registry().cl;
    buffer->magic = 0;
    bnb_context* ctx = buffer->owner;
    if (buffer->host != nullptr) {
#if defined(_WIN32)
        _aligned_free(buffer->host);
#else
        std::free(buffer->host);
#endif
    }
    if (buffer->svm != nullptr) {
        cl->clFinish(ctx->own.queue);
        {
            std::lock_guard<std::mutex> lock(ctx->svm_mutex);
            ctx->svm.erase(reinterpret_cast<uintptr_t>(buffer->svm));
            if (buffer->kind == BNB_MEMORY_PAGED) ctx->paged_bytes -= buffer->bytes;
        }
        cl->clSVMFree(ctx->own.context, buffer->svm);
    }
    if (buffer->mem != nullptr) cl->clReleaseMemObject(buffer->mem);
    std::free(buffer);
    return BNB_OK;
}

bnb_status BNB_CALL xpu_buffer_get_pointer(bnb_buffer* buffer, void** out_pointer, size_t* out_bytes) {
    static const char op[] = "buffer_get_pointer";
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_pointer", out_pointer));
    if (buffer->kind == BNB_MEMORY_PAGED && buffer->maps == 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "buffer is PAGED and not mapped: map it first (paging may move or evict its memory)");
    *out_pointer = buffer->host ? buffer->host : buffer->svm ? buffer->svm : cl_mem_ref(buffer->mem);
    if (out_bytes) *out_bytes = buffer->bytes;
    return BNB_OK;
}

static bnb_status map_buffer(const char* op, bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_not_null(op, "out_host_pointer", out_host_pointer));
    if (access != BNB_MAP_READ_WRITE && access != BNB_MAP_READ)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "access = %d is not a BNB_MAP_* value (0, 1)", (int)access);
    if (buffer->mem != nullptr)
        return bnb_fail(BNB_ERR_NOT_SUPPORTED, op,
                        "device memory without fine-grained SVM is not host-addressable; use memory_copy");
    if (buffer->maps == INT32_MAX) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped 2^31-1 times");
    if (buffer->svm != nullptr) registry().cl->clFinish(buffer->owner->own.queue); /* kernels may still write it */
    if (buffer->kind == BNB_MEMORY_PAGED && buffer->maps == 0) {
        std::lock_guard<std::mutex> lock(buffer->owner->svm_mutex);
        buffer->owner->pinned_bytes += buffer->bytes;
    }
    buffer->maps += 1;
    *out_host_pointer = buffer->host ? buffer->host : buffer->svm;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_buffer_map(bnb_buffer* buffer, void** out_host_pointer) {
    return map_buffer("buffer_map", buffer, BNB_MAP_READ_WRITE, out_host_pointer);
}

bnb_status BNB_CALL xpu_buffer_map_access(bnb_buffer* buffer, int32_t access, void** out_host_pointer) {
    return map_buffer("buffer_map_access", buffer, access, out_host_pointer);
}

bnb_status BNB_CALL xpu_buffer_unmap(bnb_buffer* buffer) {
    static const char op[] = "buffer_unmap";
    BNB_TRY(check_buffer(op, buffer));
    if (buffer->maps == 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not mapped (buffer_unmap without buffer_map)");
    buffer->maps -= 1;
    if (buffer->kind == BNB_MEMORY_PAGED && buffer->maps == 0) {
        std::lock_guard<std::mutex> lock(buffer->owner->svm_mutex);
        buffer->owner->pinned_bytes -= buffer->bytes;
    }
    return BNB_OK;
}

bnb_status BNB_CALL xpu_pager_configure(bnb_context* context, const bnb_pager_config* config) {
    static const char op[] = "pager_configure";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    if (config == nullptr) return BNB_OK; /* the defaults (unlimited, no spill) are what SVM paging is */
    if (config->struct_size < sizeof(bnb_pager_config))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.struct_size = %u is smaller than ABI 1's %u",
                        static_cast<unsigned>(config->struct_size), static_cast<unsigned>(sizeof(bnb_pager_config)));
    if (config->reserved != 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.reserved = %u must be 0",
                        static_cast<unsigned>(config->reserved));
    if (config->budget_bytes != 0 || (config->spill_directory != nullptr && config->spill_directory[0] != '\0'))
        return bnb_fail(
            BNB_ERR_NOT_SUPPORTED, op,
            "budget_bytes = %llu%s: PAGED buffers on this backend are OpenCL fine-grained SVM that the "
            "driver migrates; there is no budget or spill file (only the defaults are accepted)",
            static_cast<unsigned long long>(config->budget_bytes),
            config->spill_directory != nullptr && config->spill_directory[0] != '\0' ? ", spill_directory set" : "");
    return BNB_OK;
}

bnb_status BNB_CALL xpu_memory_stats(bnb_context* context, bnb_memory_stats* out) {
    static const char op[] = "memory_stats";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    BNB_TRY(bnb_check_not_null(op, "out", out));
    if (out->struct_size < sizeof(bnb_memory_stats))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        static_cast<unsigned>(out->struct_size), static_cast<unsigned>(sizeof(bnb_memory_stats)));
    bnb_memory_stats s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = static_cast<uint32_t>(sizeof s);
    {
        std::lock_guard<std::mutex> lock(context->svm_mutex);
        s.paged_bytes = context->paged_bytes;
        s.resident_bytes = context->paged_bytes; /* SVM: addressable by host and device alike */
        s.pinned_bytes = context->pinned_bytes;
        s.peak_resident_bytes = context->peak_paged_bytes;
    }
    std::memcpy(out, &s, sizeof s); /* callers with a larger struct keep their extra fields */
    return BNB_OK;
}

bnb_status BNB_CALL xpu_memory_copy(bnb_context* context, void* dst, const void* src, size_t bytes, int32_t direction) {
    static const char op[] = "memory_copy";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    BNB_TRY(bnb_check_copy_direction(op, direction));
    if (bytes == 0) return BNB_OK;
    BNB_TRY(bnb_check_not_null(op, "dst", dst));
    BNB_TRY(bnb_check_not_null(op, "src", src));
    const ClApi* cl = registry().cl;
    const Exec& e = exec_of(context);
    /* cl_mem references by value (offset 0); everything else is host-addressable (host memory or SVM). */
    const bool dst_mem = is_cl_mem_ref(dst), src_mem = is_cl_mem_ref(src);
    cl_int err = CL_SUCCESS;
    for (int side = 0; side < 2; ++side) {
        const void* p = side == 0 ? dst : src;
        if (!is_cl_mem_ref(p)) continue;
        size_t size = 0;
        if (cl->clGetMemObjectInfo(cl_mem_of(p), CL_MEM_SIZE, sizeof size, &size, nullptr) != CL_SUCCESS)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "%s is tagged as a cl_mem but is not a valid cl_mem",
                            side == 0 ? "dst" : "src");
        if (size < bytes)
            return bnb_fail(BNB_ERR_BUFFER_TOO_SMALL, op, "bytes = %zu exceeds %s's cl_mem of %zu bytes", bytes,
                            side == 0 ? "dst" : "src", size);
    }
    if (dst_mem && src_mem) {
        err = cl->clEnqueueCopyBuffer(e.queue, cl_mem_of(src), cl_mem_of(dst), 0, 0, bytes, 0, nullptr, nullptr);
    } else if (dst_mem) {
        err = cl->clEnqueueWriteBuffer(e.queue, cl_mem_of(dst), CL_TRUE, 0, bytes, src, 0, nullptr, nullptr);
    } else if (src_mem) {
        err = cl->clEnqueueReadBuffer(e.queue, cl_mem_of(src), CL_TRUE, 0, bytes, dst, 0, nullptr, nullptr);
    } else {
        err = cl->clFinish(e.queue); /* SVM memory may still be in use by queued kernels */
        if (err == CL_SUCCESS) std::memmove(dst, src, bytes);
    }
    if (err != CL_SUCCESS) return cl_fail(op, "the copy", err);
    return BNB_OK;
}

bnb_status BNB_CALL xpu_paged_prefetch(bnb_context* context, bnb_buffer* buffer, size_t offset, size_t bytes,
                                       int32_t target) {
    static const char op[] = "paged_prefetch";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    BNB_TRY(check_buffer(op, buffer));
    BNB_TRY(bnb_check_prefetch(op, target, offset, bytes, buffer->bytes));
    const ClApi* cl = registry().cl;
    if (buffer->svm == nullptr || bytes == 0 || cl->clEnqueueSVMMigrateMem == nullptr) return BNB_OK; /* a hint */
    if (buffer->owner->own.context != exec_of(context).context) return BNB_OK;
    const void* start = static_cast<const char*>(buffer->svm) + offset;
    const cl_mem_migration_flags flags = target == BNB_PREFETCH_TO_HOST ? CL_MIGRATE_MEM_OBJECT_HOST : 0;
    const cl_int err =
        cl->clEnqueueSVMMigrateMem(exec_of(context).queue, 1, &start, &bytes, flags, 0, nullptr, nullptr);
    /* Migration is a hint: drivers without it answer CL_INVALID_OPERATION; that is not the caller's error. */
    if (err != CL_SUCCESS && err != CL_INVALID_OPERATION && err != CL_INVALID_VALUE)
        return cl_fail(op, "clEnqueueSVMMigrateMem", err);
    return BNB_OK;
}

/* ─── streams: each wraps an in-order cl_command_queue ───────────────────────────────────────────────────── */

#define XPU_STREAM_MAGIC 0x424E4253u /* "BNBS" */

static bnb_status check_stream(const char* op, bnb_stream* stream) {
    BNB_TRY(bnb_check_not_null(op, "stream", stream));
    if (stream->magic != XPU_STREAM_MAGIC)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "stream is not a live stream of this backend (destroyed?)");
    return BNB_OK;
}

bnb_status BNB_CALL xpu_stream_create(bnb_context* context, void* native_stream, bnb_stream** out_stream) {
    static const char op[] = "stream_create";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    BNB_TRY(bnb_check_not_null(op, "out_stream", out_stream));
    const ClApi* cl = registry().cl;
    Exec e;
    cl_int err = CL_SUCCESS;
    if (native_stream == nullptr) {
        e.context = context->own.context;
        e.device = context->own.device;
        e.cache = context->own.cache;
        e.queue = cl->clCreateCommandQueue(e.context, e.device->id, 0, &err);
        if (err != CL_SUCCESS) return cl_fail(op, "clCreateCommandQueue", err);
    } else {
        cl_command_queue queue = static_cast<cl_command_queue>(native_stream);
        cl_device_id device = nullptr;
        cl_command_queue_properties props = 0;
        if (cl->clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof e.context, &e.context, nullptr) != CL_SUCCESS ||
            cl->clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device, &device, nullptr) != CL_SUCCESS ||
            cl->clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, nullptr) != CL_SUCCESS)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "native_stream %p is not a valid cl_command_queue",
                            native_stream);
        if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                            "native_stream is an out-of-order queue; bnb_xpu orders its work by queue order and needs "
                            "an in-order queue");
        e.device = find_device(device);
        if (e.device == nullptr)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                            "native_stream's device is not one of this backend's devices (see device_get_info)");
        e.queue = queue;
        try {
            e.cache = e.context == context->own.context && e.device == context->own.device
                          ? context->own.cache
                          : program_cache(e.context, e.device);
        } catch (...) {
            return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a program cache");
        }
        cl->clRetainCommandQueue(queue);
    }
    bnb_stream* stream = new (std::nothrow) bnb_stream();
    if (stream == nullptr) {
        cl->clReleaseCommandQueue(e.queue);
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a stream");
    }
    stream->magic = XPU_STREAM_MAGIC;
    stream->owner = context;
    stream->wrapped = native_stream != nullptr;
    stream->exec = std::move(e);
    *out_stream = stream;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_stream_destroy(bnb_stream* stream) {
    if (stream == nullptr) return BNB_OK;
    BNB_TRY(check_stream("stream_destroy", stream));
    const ClApi* cl = registry().cl;
    stream->magic = 0;
    if (stream->owner->common.magic == BNB_CONTEXT_MAGIC && stream->owner->stream == stream)
        stream->owner->stream = nullptr; /* the context falls back to its own queue */
    if (!stream->wrapped) cl->clFinish(stream->exec.queue);
    cl->clReleaseCommandQueue(stream->exec.queue); /* a wrapped queue: our retain only */
    delete stream;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_stream_synchronize(bnb_stream* stream) {
    static const char op[] = "stream_synchronize";
    BNB_TRY(check_stream(op, stream));
    const cl_int err = registry().cl->clFinish(stream->exec.queue);
    if (err != CL_SUCCESS) return cl_fail(op, "clFinish", err);
    return BNB_OK;
}

bnb_status BNB_CALL xpu_context_set_stream(bnb_context* context, bnb_stream* stream) {
    static const char op[] = "context_set_stream";
    BNB_TRY(bnb_check_context(op, context, nullptr));
    if (stream != nullptr) {
        BNB_TRY(check_stream(op, stream));
        if (stream->owner != context)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "stream was created on another context");
    }
    context->stream = stream;
    return BNB_OK;
}
