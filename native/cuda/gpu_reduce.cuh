/*
 * gpu_reduce.cuh — deterministic sums in double over n elements: stage 1 gives each of G blocks a fixed slice and
 * writes one partial per block; stage 2 (one block) adds the G partials in a fixed tree. The same input always
 * gives the same bits (no atomics), so repeated calls and different contexts agree exactly.
 *
 *   Term:   struct with `__device__ double operator()(int64_t i) const` — the value of element i.
 *   Result: *out (device) = Σ term(i), i < n.
 */
#ifndef BNB_GPU_REDUCE_CUH
#define BNB_GPU_REDUCE_CUH

#include "gpu_backend.h"
#include "gpu_device.cuh"

namespace bnb_gpu {

constexpr int kReduceThreads = 256;
constexpr int kReduceMaxBlocks = 1024;

template <class Term>
__global__ void __launch_bounds__(kReduceThreads) reduce_partials_kernel(Term term, int64_t n, double* partials) {
    __shared__ double shared[kReduceThreads];
    double acc = 0.0;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) acc += term(i);
    acc = block_reduce(acc, shared, SumD());
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* One block adds `count` partials in a fixed order (each TU has its own copy: no relocatable device code). */
static __global__ void __launch_bounds__(kReduceThreads) reduce_final_kernel(const double* partials, int count,
                                                                             double* out) {
    __shared__ double shared[kReduceThreads];
    double acc = 0.0;
    for (int i = (int)threadIdx.x; i < count; i += kReduceThreads) acc += partials[i];
    acc = block_reduce(acc, shared, SumD());
    if (threadIdx.x == 0) *out = acc;
}

/* Launches both stages on the context's stream. `scratch` needs (blocks + 1) doubles; *out may alias
 * scratch[blocks]. Returns the launch status. */
template <class Term>
bnb_status sum_double(const char* op, bnb_context* context, Term term, int64_t n, double* scratch, double* out) {
    int blocks = (int)((n + kReduceThreads - 1) / kReduceThreads);
    const int cap = context->sm_count > 0 ? context->sm_count * 4 : 64;
    if (blocks > cap) blocks = cap;
    if (blocks > kReduceMaxBlocks) blocks = kReduceMaxBlocks;
    if (blocks < 1) blocks = 1;
    reduce_partials_kernel<Term><<<blocks, kReduceThreads, 0, context->stream>>>(term, n, scratch);
    BNB_TRY(bnb_gpu_check_launch(op));
    reduce_final_kernel<<<1, kReduceThreads, 0, context->stream>>>(scratch, blocks, out);
    return bnb_gpu_check_launch(op);
}

/* Doubles of scratch that sum_double needs at most (partials + one result). */
constexpr size_t kReduceScratchDoubles = kReduceMaxBlocks + 1;

} // namespace bnb_gpu

#endif /* BNB_GPU_REDUCE_CUH */
