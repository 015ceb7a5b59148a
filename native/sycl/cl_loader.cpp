/* cl_loader.cpp — opens the OpenCL ICD loader at run time (see cl_loader.h). */
#include "cl_loader.h"

#include <cstdlib>
#include <mutex>

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace bnb_xpu {

namespace {

void* open_library(const char* path) {
#if defined(_WIN32)
    return reinterpret_cast<void*>(LoadLibraryA(path));
#else
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
#endif
}

void* find_symbol(void* library, const char* name) {
#if defined(_WIN32)
    return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(library), name));
#else
    return dlsym(library, name);
#endif
}

struct Loaded {
    ClApi api;
    bool ok = false;
    std::string why;
};

Loaded load() {
    Loaded out;
    std::string tried;
    void* library = nullptr;
    const char* override_path = std::getenv("BNB_XPU_OPENCL_LIBRARY");
    if (override_path != nullptr && override_path[0] != '\0') {
        library = open_library(override_path);
        tried = override_path;
    } else {
#if defined(_WIN32)
        const char* candidates[] = {"OpenCL.dll"};
#elif defined(__APPLE__)
        const char* candidates[] = {"/System/Library/Frameworks/OpenCL.framework/OpenCL"};
#else
        const char* candidates[] = {"libOpenCL.so.1", "libOpenCL.so"};
#endif
        for (const char* candidate : candidates) {
            if (!tried.empty()) tried += ", ";
            tried += candidate;
            library = open_library(candidate);
            if (library != nullptr) break;
        }
    }
    if (library == nullptr) {
        out.why = "no OpenCL ICD loader could be opened (tried " + tried +
                  "); install one (Debian: ocl-icd-libopencl1 plus a driver such as intel-opencl-icd or "
                  "pocl-opencl-icd)";
        return out;
    }
    // The library stays loaded for the life of the process: drivers keep threads and handles alive.
#define BNB_CL_LOAD_REQUIRED(name)                                                                                     \
    out.api.name = reinterpret_cast<decltype(out.api.name)>(find_symbol(library, #name));                              \
    if (out.api.name == nullptr) {                                                                                     \
        out.why = "the OpenCL loader " + tried + " lacks " #name " (an OpenCL 1.2 loader is required)";                \
        return out;                                                                                                    \
    }
#define BNB_CL_LOAD_OPTIONAL(name) out.api.name = reinterpret_cast<decltype(out.api.name)>(find_symbol(library, #name));
    BNB_CL_REQUIRED(BNB_CL_LOAD_REQUIRED)
    BNB_CL_OPTIONAL(BNB_CL_LOAD_OPTIONAL)
#undef BNB_CL_LOAD_REQUIRED
#undef BNB_CL_LOAD_OPTIONAL
    out.ok = true;
    return out;
}

} // namespace

const ClApi* cl_api(std::string* why) {
    static std::once_flag once;
    static Loaded loaded;
    std::call_once(once, [] { loaded = load(); });
    if (!loaded.ok) {
        if (why != nullptr) *why = loaded.why;
        return nullptr;
    }
    return &loaded.api;
}

std::string cl_error_name(cl_int code) {
    const char* name = "unknown OpenCL error";
    switch (code) {
    case CL_DEVICE_NOT_FOUND:
        name = "CL_DEVICE_NOT_FOUND";
        break;
    case CL_DEVICE_NOT_AVAILABLE:
        name = "CL_DEVICE_NOT_AVAILABLE";
        break;
    case CL_COMPILER_NOT_AVAILABLE:
        name = "CL_COMPILER_NOT_AVAILABLE";
        break;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
        name = "CL_MEM_OBJECT_ALLOCATION_FAILURE";
        break;
    case CL_OUT_OF_RESOURCES:
        name = "CL_OUT_OF_RESOURCES";
        break;
    case CL_OUT_OF_HOST_MEMORY:
        name = "CL_OUT_OF_HOST_MEMORY";
        break;
    case CL_BUILD_PROGRAM_FAILURE:
        name = "CL_BUILD_PROGRAM_FAILURE";
        break;
    case CL_MAP_FAILURE:
        name = "CL_MAP_FAILURE";
        break;
    case CL_INVALID_VALUE:
        name = "CL_INVALID_VALUE";
        break;
    case CL_INVALID_DEVICE:
        name = "CL_INVALID_DEVICE";
        break;
    case CL_INVALID_CONTEXT:
        name = "CL_INVALID_CONTEXT";
        break;
    case CL_INVALID_COMMAND_QUEUE:
        name = "CL_INVALID_COMMAND_QUEUE";
        break;
    case CL_INVALID_HOST_PTR:
        name = "CL_INVALID_HOST_PTR";
        break;
    case CL_INVALID_MEM_OBJECT:
        name = "CL_INVALID_MEM_OBJECT";
        break;
    case CL_INVALID_BUILD_OPTIONS:
        name = "CL_INVALID_BUILD_OPTIONS";
        break;
    case CL_INVALID_PROGRAM:
        name = "CL_INVALID_PROGRAM";
        break;
    case CL_INVALID_KERNEL_NAME:
        name = "CL_INVALID_KERNEL_NAME";
        break;
    case CL_INVALID_KERNEL_ARGS:
        name = "CL_INVALID_KERNEL_ARGS";
        break;
    case CL_INVALID_ARG_INDEX:
        name = "CL_INVALID_ARG_INDEX";
        break;
    case CL_INVALID_ARG_VALUE:
        name = "CL_INVALID_ARG_VALUE";
        break;
    case CL_INVALID_ARG_SIZE:
        name = "CL_INVALID_ARG_SIZE";
        break;
    case CL_INVALID_WORK_GROUP_SIZE:
        name = "CL_INVALID_WORK_GROUP_SIZE";
        break;
    case CL_INVALID_WORK_ITEM_SIZE:
        name = "CL_INVALID_WORK_ITEM_SIZE";
        break;
    case CL_INVALID_GLOBAL_WORK_SIZE:
        name = "CL_INVALID_GLOBAL_WORK_SIZE";
        break;
    case CL_INVALID_BUFFER_SIZE:
        name = "CL_INVALID_BUFFER_SIZE";
        break;
    case CL_INVALID_OPERATION:
        name = "CL_INVALID_OPERATION";
        break;
    case -1001:
        name = "CL_PLATFORM_NOT_FOUND_KHR";
        break;
    default:
        break;
    }
    return std::string(name) + " (" + std::to_string(code) + ")";
}

} // namespace bnb_xpu
