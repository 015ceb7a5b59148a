/* cl_loader.h — the OpenCL ICD loader, opened at run time (internal to bnb_xpu).
 *
 * bnb_xpu never links libOpenCL: the library loads on machines without OpenCL, where bnb_probe() says 0 and
 * context_create fails with BNB_ERR_NO_DEVICE naming what was missing. The loader is looked up as
 *   $BNB_XPU_OPENCL_LIBRARY (tests use it to simulate an absent loader), then libOpenCL.so.1 / libOpenCL.so
 *   (Linux), OpenCL.dll (Windows), the OpenCL framework (macOS).
 * The prototypes come from the Khronos headers (decltype only: nothing is linked). */
#ifndef BNB_XPU_CL_LOADER_H
#define BNB_XPU_CL_LOADER_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <string>

namespace bnb_xpu {

// Functions every OpenCL 1.2 loader has.
#define BNB_CL_REQUIRED(X)                                                                                             \
    X(clGetPlatformIDs)                                                                                                \
    X(clGetPlatformInfo)                                                                                               \
    X(clGetDeviceIDs)                                                                                                  \
    X(clGetDeviceInfo)                                                                                                 \
    X(clCreateContext)                                                                                                 \
    X(clRetainContext)                                                                                                 \
    X(clReleaseContext)                                                                                                \
    X(clCreateCommandQueue)                                                                                            \
    X(clRetainCommandQueue)                                                                                            \
    X(clReleaseCommandQueue)                                                                                           \
    X(clGetCommandQueueInfo)                                                                                           \
    X(clFinish)                                                                                                        \
    X(clCreateBuffer)                                                                                                  \
    X(clRetainMemObject)                                                                                               \
    X(clReleaseMemObject)                                                                                              \
    X(clGetMemObjectInfo)                                                                                              \
    X(clEnqueueMapBuffer)                                                                                              \
    X(clEnqueueUnmapMemObject)                                                                                         \
    X(clEnqueueReadBuffer)                                                                                             \
    X(clEnqueueWriteBuffer)                                                                                            \
    X(clEnqueueCopyBuffer)                                                                                             \
    X(clEnqueueFillBuffer)                                                                                             \
    X(clCreateProgramWithSource)                                                                                       \
    X(clBuildProgram)                                                                                                  \
    X(clGetProgramBuildInfo)                                                                                           \
    X(clReleaseProgram)                                                                                                \
    X(clCreateKernel)                                                                                                  \
    X(clReleaseKernel)                                                                                                 \
    X(clSetKernelArg)                                                                                                  \
    X(clGetKernelWorkGroupInfo)                                                                                        \
    X(clEnqueueNDRangeKernel)

// OpenCL 2.0+ entry points (shared virtual memory); NULL when the loader is older.
#define BNB_CL_OPTIONAL(X)                                                                                             \
    X(clSVMAlloc)                                                                                                      \
    X(clSVMFree)                                                                                                       \
    X(clSetKernelArgSVMPointer)                                                                                        \
    X(clEnqueueSVMMap)                                                                                                 \
    X(clEnqueueSVMUnmap)                                                                                               \
    X(clEnqueueSVMMemcpy)                                                                                              \
    X(clEnqueueSVMMigrateMem)

struct ClApi {
#define BNB_CL_FIELD(name) decltype(&::name) name = nullptr;
    BNB_CL_REQUIRED(BNB_CL_FIELD)
    BNB_CL_OPTIONAL(BNB_CL_FIELD)
#undef BNB_CL_FIELD
    bool has_svm() const {
        return clSVMAlloc && clSVMFree && clSetKernelArgSVMPointer && clEnqueueSVMMap && clEnqueueSVMUnmap;
    }
};

// The loaded API, or nullptr with *why set (loaded once per process; thread-safe).
const ClApi* cl_api(std::string* why);

// "CL_OUT_OF_RESOURCES (-5)" etc.
std::string cl_error_name(cl_int code);

} // namespace bnb_xpu

#endif
