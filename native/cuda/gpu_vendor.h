/*
 * gpu_vendor.h — the one place where CUDA and HIP differ. Every other file of native/cuda (kernels and host code)
 * is written against the gpu* names below, so native/hip compiles the very same sources with hipcc.
 *
 *   BNB_GPU_HIP defined    → HIP (AMD, hipcc, HIP_PLATFORM=amd); otherwise CUDA (nvcc).
 *
 * Warp size: CUDA warps are 32 lanes; AMD CDNA (gfx90a, gfx940) wavefronts are 64 and RDNA (gfx1030) runs wave32.
 * Kernels never assume either: cross-lane reductions work on fixed 32-lane groups (bnb_shfl_xor32 with width 32,
 * valid on both vendors and every wave size) or go through shared memory, and launch shapes are multiples of 64
 * threads so a group of 32 never straddles a wavefront. BNB_WAVE_SIZE is the device compiler's value (device code
 * only) for code that wants it; host code reads the real value from the device (bnb_device_info.warp_size).
 */
#ifndef BNB_GPU_VENDOR_H
#define BNB_GPU_VENDOR_H

#if defined(BNB_GPU_HIP)
#include <hip/hip_runtime.h>

typedef hipError_t gpuError_t;
typedef hipStream_t gpuStream_t;
#define gpuSuccess hipSuccess
#define gpuErrorNoDevice hipErrorNoDevice
#define gpuErrorMemoryAllocation hipErrorOutOfMemory
#define gpuGetErrorString hipGetErrorString
#define gpuGetErrorName hipGetErrorName
#define gpuGetLastError hipGetLastError
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuSetDevice hipSetDevice
#define gpuGetDevice hipGetDevice
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuMallocManaged(p, n) hipMallocManaged((p), (n), hipMemAttachGlobal)
#define gpuHostAlloc(p, n) hipHostMalloc((p), (n), hipHostMallocDefault)
#define gpuFreeHost hipHostFree
#define gpuMemset hipMemset
#define gpuMemsetAsync hipMemsetAsync
#define gpuMemcpy hipMemcpy
#define gpuMemcpyAsync hipMemcpyAsync
#define gpuMemcpyDefault hipMemcpyDefault
#define gpuMemcpyHostToDevice hipMemcpyHostToDevice
#define gpuMemcpyDeviceToHost hipMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define gpuMemcpyHostToHost hipMemcpyHostToHost
#define gpuMemPrefetchAsync hipMemPrefetchAsync
#define gpuCpuDeviceId hipCpuDeviceId
#define gpuStreamCreateNonBlocking(s) hipStreamCreateWithFlags((s), hipStreamNonBlocking)
#define gpuStreamDestroy hipStreamDestroy
#define gpuStreamSynchronize hipStreamSynchronize
#define gpuDeviceSynchronize hipDeviceSynchronize
#define gpuDeviceGetAttribute hipDeviceGetAttribute
#define gpuMemGetInfo hipMemGetInfo
#define gpuDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define gpuDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor
#define gpuDevAttrComputeCapabilityMinor hipDeviceAttributeComputeCapabilityMinor
#define gpuDevAttrWarpSize hipDeviceAttributeWarpSize
#define gpuDevAttrConcurrentManagedAccess hipDeviceAttributeConcurrentManagedAccess
#define gpuDeviceGetName hipDeviceGetName
#define gpuDriverGetVersion hipDriverGetVersion
#define BNB_GPU_VENDOR_NAME "HIP"

#define bnb_shfl_xor32(v, mask) __shfl_xor((v), (mask), 32)
#if defined(__HIP_DEVICE_COMPILE__)
#define BNB_WAVE_SIZE __AMDGCN_WAVEFRONT_SIZE
#endif

#else /* CUDA */
#include <cuda_runtime.h>

typedef cudaError_t gpuError_t;
typedef cudaStream_t gpuStream_t;
#define gpuSuccess cudaSuccess
#define gpuErrorNoDevice cudaErrorNoDevice
#define gpuErrorMemoryAllocation cudaErrorMemoryAllocation
#define gpuGetErrorString cudaGetErrorString
#define gpuGetErrorName cudaGetErrorName
#define gpuGetLastError cudaGetLastError
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuSetDevice cudaSetDevice
#define gpuGetDevice cudaGetDevice
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuMallocManaged(p, n) cudaMallocManaged((p), (n), cudaMemAttachGlobal)
#define gpuHostAlloc(p, n) cudaHostAlloc((p), (n), cudaHostAllocDefault)
#define gpuFreeHost cudaFreeHost
#define gpuMemset cudaMemset
#define gpuMemsetAsync cudaMemsetAsync
#define gpuMemcpy cudaMemcpy
#define gpuMemcpyAsync cudaMemcpyAsync
#define gpuMemcpyDefault cudaMemcpyDefault
#define gpuMemcpyHostToDevice cudaMemcpyHostToDevice
#define gpuMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define gpuMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define gpuMemcpyHostToHost cudaMemcpyHostToHost
#define gpuMemPrefetchAsync cudaMemPrefetchAsync
#define gpuCpuDeviceId cudaCpuDeviceId
#define gpuStreamCreateNonBlocking(s) cudaStreamCreateWithFlags((s), cudaStreamNonBlocking)
#define gpuStreamDestroy cudaStreamDestroy
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuDeviceSynchronize cudaDeviceSynchronize
#define gpuDeviceGetAttribute cudaDeviceGetAttribute
#define gpuMemGetInfo cudaMemGetInfo
#define gpuDevAttrMultiProcessorCount cudaDevAttrMultiProcessorCount
#define gpuDevAttrComputeCapabilityMajor cudaDevAttrComputeCapabilityMajor
#define gpuDevAttrComputeCapabilityMinor cudaDevAttrComputeCapabilityMinor
#define gpuDevAttrWarpSize cudaDevAttrWarpSize
#define gpuDevAttrConcurrentManagedAccess cudaDevAttrConcurrentManagedAccess
#define gpuDriverGetVersion cudaDriverGetVersion
#define BNB_GPU_VENDOR_NAME "CUDA"

#define bnb_shfl_xor32(v, mask) __shfl_xor_sync(0xFFFFFFFFu, (v), (mask), 32)
#if defined(__CUDA_ARCH__)
#define BNB_WAVE_SIZE 32
#endif

#endif /* vendor */

#endif /* BNB_GPU_VENDOR_H */
