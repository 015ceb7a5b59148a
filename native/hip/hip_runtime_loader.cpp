/*
 * hip_runtime_loader.cpp — bnb_hip finds the HIP runtime at run time instead of linking its soname.
 *
 * Why: ROCm 5.x ships libamdhip64.so.5 and ROCm 6.x libamdhip64.so.6. A library linked against one soname does not
 * load under the other, so a package built with Debian's ROCm 5.2 would be useless to ROCm 6 users. bnb_hip is
 * therefore linked WITHOUT libamdhip64: this file defines every HIP entry point the backend uses (the ones hipcc's
 * generated code calls — fat-binary registration and kernel launch — and the API calls of runtime.cu) as forwarders
 * to the first runtime that dlopen finds: libamdhip64.so.6, then libamdhip64.so.5, then libamdhip64.so. The symbols
 * stay private to bnb_hip (version script), so they never clash with a runtime the application loaded itself.
 *
 * Without a runtime the library still loads: registration is recorded and ignored, hipGetDeviceCount reports
 * hipErrorInsufficientDriver, and hipGetErrorString explains that no ROCm runtime was found — which becomes the
 * NO_DEVICE message of every op.
 *
 * Compatibility assumptions (from the HIP headers of ROCm 5.2; checked only by building here, not on ROCm 6
 * hardware): the signatures below, the hipError_t codes, hipMemcpyKind, the stream/host/managed allocation flags
 * and the hipDeviceAttribute_t values of the five attributes read by runtime.cu are identical in ROCm 5 and 6.
 * Calls that changed their ABI in ROCm 6 (hipGetDeviceProperties → hipGetDevicePropertiesR0600) are not used.
 */
#include <hip/hip_runtime_api.h>

#include <dlfcn.h>
#include <mutex>
#include <stddef.h>
#include <stdio.h>

namespace {

struct Runtime {
    void* handle = nullptr;
    const char* soname = nullptr;
    char why[512] = "";
};

Runtime g_runtime;
std::once_flag g_once;

void open_runtime() {
    static const char* const names[] = {"libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so"};
    size_t used = 0;
    for (const char* name : names) {
        g_runtime.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (g_runtime.handle != nullptr) {
            g_runtime.soname = name;
            return;
        }
        const char* err = dlerror();
        const int n = snprintf(g_runtime.why + used, sizeof g_runtime.why - used, "%s%s", used ? "; " : "",
                               err ? err : name);
        if (n > 0 && used + (size_t)n < sizeof g_runtime.why) used += (size_t)n;
    }
}

void* resolve(const char* symbol) {
    std::call_once(g_once, open_runtime);
    if (g_runtime.handle == nullptr) return nullptr;
    return dlsym(g_runtime.handle, symbol);
}

/* The runtime's function `name` with the type of our declaration, looked up once. */
#define BNB_HIP_FORWARD(name) reinterpret_cast<decltype(&name)>(resolve(#name))

/* A placeholder module handle for fat binaries registered while no runtime is present. */
void* g_no_runtime_module[1] = {nullptr};

} // namespace

extern "C" {

/* ─── what hipcc's generated host code calls ─────────────────────────────────────────────────────────────── */

void** __hipRegisterFatBinary(const void* data);
void __hipRegisterFunction(void** modules, const void* host_function, char* device_function, const char* device_name,
                           unsigned int thread_limit, void* tid, void* bid, dim3* block_dim, dim3* grid_dim,
                           int* w_size);
void __hipUnregisterFatBinary(void** modules);
hipError_t __hipPushCallConfiguration(dim3 grid_dim, dim3 block_dim, size_t shared_mem, hipStream_t stream);
hipError_t __hipPopCallConfiguration(dim3* grid_dim, dim3* block_dim, size_t* shared_mem, hipStream_t* stream);

void** __hipRegisterFatBinary(const void* data) {
    static const auto fn = BNB_HIP_FORWARD(__hipRegisterFatBinary);
    return fn ? fn(data) : g_no_runtime_module;
}

void __hipRegisterFunction(void** modules, const void* host_function, char* device_function, const char* device_name,
                           unsigned int thread_limit, void* tid, void* bid, dim3* block_dim, dim3* grid_dim,
                           int* w_size) {
    static const auto fn = BNB_HIP_FORWARD(__hipRegisterFunction);
    if (fn && modules != g_no_runtime_module)
        fn(modules, host_function, device_function, device_name, thread_limit, tid, bid, block_dim, grid_dim, w_size);
}

void __hipUnregisterFatBinary(void** modules) {
    static const auto fn = BNB_HIP_FORWARD(__hipUnregisterFatBinary);
    if (fn && modules != g_no_runtime_module) fn(modules);
}

hipError_t __hipPushCallConfiguration(dim3 grid_dim, dim3 block_dim, size_t shared_mem, hipStream_t stream) {
    static const auto fn = BNB_HIP_FORWARD(__hipPushCallConfiguration);
    return fn ? fn(grid_dim, block_dim, shared_mem, stream) : hipErrorInsufficientDriver;
}

hipError_t __hipPopCallConfiguration(dim3* grid_dim, dim3* block_dim, size_t* shared_mem, hipStream_t* stream) {
    static const auto fn = BNB_HIP_FORWARD(__hipPopCallConfiguration);
    return fn ? fn(grid_dim, block_dim, shared_mem, stream) : hipErrorInsufficientDriver;
}

hipError_t hipLaunchKernel(const void* function_address, dim3 num_blocks, dim3 dim_blocks, void** args,
                           size_t shared_mem_bytes, hipStream_t stream) {
    static const auto fn = BNB_HIP_FORWARD(hipLaunchKernel);
    return fn ? fn(function_address, num_blocks, dim_blocks, args, shared_mem_bytes, stream)
              : hipErrorInsufficientDriver;
}

/* ─── the API calls of runtime.cu and the ops ────────────────────────────────────────────────────────────── */

const char* hipGetErrorString(hipError_t error) {
    static const auto fn = BNB_HIP_FORWARD(hipGetErrorString);
    if (fn) return fn(error);
    static char message[600];
    snprintf(message, sizeof message, "no ROCm HIP runtime found (tried libamdhip64.so.6, .so.5, .so: %s)",
             g_runtime.why);
    return message;
}

const char* hipGetErrorName(hipError_t error) {
    static const auto fn = BNB_HIP_FORWARD(hipGetErrorName);
    if (fn) return fn(error);
    return error == hipErrorInsufficientDriver ? "hipErrorInsufficientDriver" : "hipError";
}

/* Each forwarder: the runtime's function, or hipErrorInsufficientDriver when there is none. */
#define BNB_HIP_API(name, params, args)                                                                            \
    hipError_t name params {                                                                                       \
        using function = hipError_t(*) params; /* explicit: the C++ header overloads some names */                 \
        static const auto fn = reinterpret_cast<function>(resolve(#name));                                         \
        return fn ? fn args : hipErrorInsufficientDriver;                                                          \
    }

BNB_HIP_API(hipGetLastError, (void), ())
BNB_HIP_API(hipGetDeviceCount, (int* count), (count))
BNB_HIP_API(hipSetDevice, (int device), (device))
BNB_HIP_API(hipGetDevice, (int* device), (device))
BNB_HIP_API(hipDeviceGetAttribute, (int* value, hipDeviceAttribute_t attr, int device), (value, attr, device))
BNB_HIP_API(hipDeviceGetName, (char* name, int len, hipDevice_t device), (name, len, device))
BNB_HIP_API(hipDeviceTotalMem, (size_t* bytes, hipDevice_t device), (bytes, device))
BNB_HIP_API(hipMemGetInfo, (size_t* free_bytes, size_t* total), (free_bytes, total))
BNB_HIP_API(hipMalloc, (void** ptr, size_t size), (ptr, size))
BNB_HIP_API(hipFree, (void* ptr), (ptr))
BNB_HIP_API(hipMallocManaged, (void** ptr, size_t size, unsigned int flags), (ptr, size, flags))
BNB_HIP_API(hipHostMalloc, (void** ptr, size_t size, unsigned int flags), (ptr, size, flags))
BNB_HIP_API(hipHostFree, (void* ptr), (ptr))
BNB_HIP_API(hipMemsetAsync, (void* dst, int value, size_t bytes, hipStream_t stream), (dst, value, bytes, stream))
BNB_HIP_API(hipMemcpy, (void* dst, const void* src, size_t bytes, hipMemcpyKind kind), (dst, src, bytes, kind))
BNB_HIP_API(hipMemcpyAsync, (void* dst, const void* src, size_t bytes, hipMemcpyKind kind, hipStream_t stream),
            (dst, src, bytes, kind, stream))
BNB_HIP_API(hipMemPrefetchAsync, (const void* ptr, size_t count, int device, hipStream_t stream),
            (ptr, count, device, stream))
BNB_HIP_API(hipStreamCreateWithFlags, (hipStream_t* stream, unsigned int flags), (stream, flags))
BNB_HIP_API(hipStreamDestroy, (hipStream_t stream), (stream))
BNB_HIP_API(hipStreamSynchronize, (hipStream_t stream), (stream))
BNB_HIP_API(hipDeviceSynchronize, (void), ())

} /* extern "C" */
