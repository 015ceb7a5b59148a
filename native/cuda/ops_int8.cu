/*
 * ops_int8.cu — LLM.int8() primitives (spec §2.8), bit-identical to ref/int8.c.
 *
 *   quant        outlier columns: flags[c] = any |a[r, c]| >= threshold (one pass), compacted in ascending order by
 *                one block; row pass: one block per row (row absmax over non-outlier elements, NaN propagating,
 *                then CA = round_half_even(a * f32(127 / row_max)) with outlier columns zeroed); double quant adds
 *                a column pass (one thread per column) and an element pass for CAt.
 *   matmul       exact int32 A·Bᵀ on a 64x64 tile per block, K step 64, int8 tiles in shared memory:
 *                  sm_80+  mma.sync m16n8k32 s8·s8 → s32 (CUDA)
 *                  sm_75   mma.sync m8n8k16 s8·s8 → s32 (CUDA)
 *                  else    __dp4a (sm_61+) / plain multiply-adds (older CUDA, HIP)
 *                int32 accumulation wraps modulo 2^32, so any sum whose final value fits int32 is exact; the
 *                validator rejects the others (K > 131071 gets a device-side overflow scan first).
 *   dequant ops  element-wise, the reference's formulas operation by operation.
 */
#include "gpu_backend.h"
#include "gpu_device.cuh"

#include "bnb_int8.h"

#include <string.h>

using namespace bnb_gpu;

namespace {

constexpr int kThreads = 256;

struct Matrix {
    const void* data;
    int32_t dtype;
    int64_t rows, cols, stride;
};
Matrix device_matrix(const bnb_matrix& m) { return Matrix{m.data, m.dtype, m.rows, m.cols, m.row_stride}; }

BNB_D float at(const Matrix& m, int64_t r, int64_t c) { return load_float(m.data, m.dtype, r * m.stride + c); }
BNB_D bool is_outlier(float v, float threshold) { return threshold > 0.0f && fabsf(v) >= threshold; }
BNB_D int8_t round_int8(float v) { /* bnb_int8_round */
    if (v != v) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return (int8_t)__float2int_rn(v);
}

/* ─── quantization ───────────────────────────────────────────────────────────────────────────────────────── */

__global__ void __launch_bounds__(kThreads) flag_outliers_kernel(const Matrix A, float threshold, int32_t* flags) {
    const int64_t total = A.rows * A.cols;
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        const int64_t r = i / A.cols, c = i - r * A.cols;
        if (is_outlier(at(A, r, c), threshold)) flags[c] = 1;
    }
}

/* One block of 1024 threads: ascending indices of the flagged columns → out (i64), count → *count. */
__global__ void __launch_bounds__(1024) compact_outliers_kernel(const int32_t* flags, int64_t cols, int64_t* out,
                                                                int64_t* count) {
    __shared__ int32_t scan[1024];
    int64_t base = 0;
    for (int64_t c0 = 0; c0 < cols; c0 += 1024) {
        const int64_t c = c0 + threadIdx.x;
        const int32_t flag = c < cols ? flags[c] : 0;
        scan[threadIdx.x] = flag;
        __syncthreads();
        for (int offset = 1; offset < 1024; offset <<= 1) { /* inclusive Hillis-Steele scan */
            const int32_t add = threadIdx.x >= (unsigned)offset ? scan[threadIdx.x - offset] : 0;
            __syncthreads();
            scan[threadIdx.x] += add;
            __syncthreads();
        }
        if (flag) out[base + scan[threadIdx.x] - 1] = c;
        base += scan[1023];
        __syncthreads();
    }
    if (threadIdx.x == 0) *count = base;
}

__global__ void __launch_bounds__(kThreads)
    quantize_rows_kernel(const Matrix A, float threshold, const int32_t* flags, int8_t* CA, int64_t ca_stride,
                         float* row_stats) {
    __shared__ float red[kThreads];
    const int64_t r = blockIdx.x;
    float local = 0.0f;
    for (int64_t c = threadIdx.x; c < A.cols; c += blockDim.x) {
        const float v = at(A, r, c);
        if (!is_outlier(v, threshold)) local = MaxPropagateNaN()(local, fabsf(v));
    }
    const float row_max = block_reduce(local, red, MaxPropagateNaN());
    if (threadIdx.x == 0) row_stats[r] = row_max;
    const float scale = 127.0f / row_max;
    for (int64_t c = threadIdx.x; c < A.cols; c += blockDim.x) {
        const bool outlier_column = flags != nullptr && flags[c] != 0;
        int8_t q = 0;
        if (!outlier_column && row_max != 0.0f) {
            const float scaled = at(A, r, c) * scale;
            q = round_int8(scaled);
        }
        CA[r * ca_stride + c] = q;
    }
}

__global__ void __launch_bounds__(kThreads) column_stats_kernel(const Matrix A, float threshold, float* col_stats) {
    for (int64_t c = global_thread(); c < A.cols; c += grid_threads()) {
        float m = 0.0f;
        for (int64_t r = 0; r < A.rows; ++r) {
            const float v = at(A, r, c);
            if (!is_outlier(v, threshold)) m = MaxPropagateNaN()(m, fabsf(v));
        }
        col_stats[c] = m;
    }
}

BNB_D float times127_in_dtype(float v, int32_t dtype) {
    const float p = v * 127.0f;
    if (dtype == BNB_DTYPE_F16) return f16_to_f32(f32_to_f16(p));
    if (dtype == BNB_DTYPE_BF16) return bf16_to_f32(f32_to_bf16(p));
    return p;
}

__global__ void __launch_bounds__(kThreads)
    quantize_columns_kernel(const Matrix A, float threshold, const float* col_stats, int8_t* CAt, int64_t stride) {
    const int64_t total = A.rows * A.cols;
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        const int64_t r = i / A.cols, c = i - r * A.cols;
        const float v = at(A, r, c);
        int8_t q = 0;
        if (!is_outlier(v, threshold)) q = round_int8(times127_in_dtype(v, A.dtype) / col_stats[c]);
        CAt[r * stride + c] = q;
    }
}

bnb_status quantize(const char* op, bnb_context* ctx, const bnb_int8_quant_args& a, int double_quant) {
    BNB_TRY(bnb_gpu_check_finite(op, "A", ctx, a.A.data, a.A.dtype, a.A.rows, a.A.cols, a.A.row_stride, 0));
    const Matrix A = device_matrix(a.A);
    const int64_t rows = A.rows, cols = A.cols;
    const bool outliers = a.outlier_cols != NULL && a.threshold > 0.0f;
    void* scratch = NULL;
    BNB_TRY(bnb_gpu_scratch(op, ctx, sizeof(int64_t) + (size_t)(cols > 0 ? cols : 1) * sizeof(int32_t), &scratch));
    int64_t* count = (int64_t*)scratch;
    int32_t* flags = (int32_t*)(count + 1);
    int64_t zero = 0;
    if (outliers) {
        BNB_GPU_TRY(op, "clear flags", gpuMemsetAsync(scratch, 0, sizeof(int64_t) + (size_t)cols * 4, ctx->stream));
        if (rows > 0 && cols > 0) {
            flag_outliers_kernel<<<bnb_gpu_grid(ctx, rows * cols, kThreads), kThreads, 0, ctx->stream>>>(
                A, a.threshold, flags);
            BNB_TRY(bnb_gpu_check_launch(op));
            compact_outliers_kernel<<<1, 1024, 0, ctx->stream>>>(flags, cols, a.outlier_cols, count);
            BNB_TRY(bnb_gpu_check_launch(op));
        }
    }
    if (rows > 0) {
        quantize_rows_kernel<<<(unsigned)rows, kThreads, 0, ctx->stream>>>(
            A, a.threshold, outliers ? flags : nullptr, (int8_t*)a.CA.data, a.CA.row_stride, a.row_stats);
        BNB_TRY(bnb_gpu_check_launch(op));
    }
    if (double_quant && cols > 0) {
        column_stats_kernel<<<bnb_gpu_grid(ctx, cols, kThreads), kThreads, 0, ctx->stream>>>(A, a.threshold,
                                                                                             a.col_stats);
        BNB_TRY(bnb_gpu_check_launch(op));
        if (rows > 0) {
            quantize_columns_kernel<<<bnb_gpu_grid(ctx, rows * cols, kThreads), kThreads, 0, ctx->stream>>>(
                A, a.threshold, a.col_stats, (int8_t*)a.CAt.data, a.CAt.row_stride);
            BNB_TRY(bnb_gpu_check_launch(op));
        }
    }
    if (a.outlier_count != NULL) {
        if (outliers) return bnb_gpu_copy_out(op, ctx, a.outlier_count, count, sizeof(int64_t));
        return bnb_gpu_write_scalar(op, ctx, a.outlier_count, &zero, sizeof zero);
    }
    return BNB_OK;
}

/* ─── element-wise dequantization ────────────────────────────────────────────────────────────────────────── */

__global__ void __launch_bounds__(kThreads)
    vectorwise_dequant_kernel(const int8_t* CA, int64_t ca_stride, const float* row_stats, int64_t rows,
                              int64_t cols, float* out, int64_t out_stride) {
    for (int64_t i = global_thread(); i < rows * cols; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        const float scaled = (float)CA[r * ca_stride + c] * row_stats[r];
        out[r * out_stride + c] = scaled * BNB_INT8_INV127;
    }
}

__global__ void __launch_bounds__(kThreads)
    mm_dequant_kernel(const int32_t* C, int64_t c_stride, const float* row_stats, const float* col_stats,
                      const void* bias, int32_t bias_dtype, int64_t rows, int64_t cols, void* out, int32_t out_dtype,
                      int64_t out_stride) {
    for (int64_t i = global_thread(); i < rows * cols; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        const float scaled_row = (float)C[r * c_stride + c] * row_stats[r];
        const float scaled = scaled_row * col_stats[c];
        float v;
        if (bias == nullptr) v = scaled * BNB_INT8_INV127SQ;
        else v = fma_rn(scaled, BNB_INT8_INV127SQ, load_float(bias, bias_dtype, c));
        store_float(out, out_dtype, r * out_stride + c, v);
    }
}

/* ─── int8 matmul ────────────────────────────────────────────────────────────────────────────────────────── */

constexpr int kTile = 64;
constexpr int kTileK = 64;
constexpr int kPadK = 16; /* bytes of padding per shared row (keeps 4-byte alignment, spreads banks) */

struct MatmulParams {
    const int8_t* A;
    int64_t a_stride;
    const int8_t* B;
    int64_t b_stride;
    int32_t* out;
    int64_t out_stride;
    int64_t M, N, K;
    int32_t path; /* 0 SIMT, 1 m8n8k16, 2 m16n8k32 */
};

BNB_D int32_t dot4(uint32_t a, uint32_t b, int32_t acc) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    return __dp4a((int)a, (int)b, acc);
#else
    for (int i = 0; i < 4; ++i) acc += (int32_t)(int8_t)(a >> (8 * i)) * (int32_t)(int8_t)(b >> (8 * i));
    return acc;
#endif
}

BNB_D void mma_s8_m8n8k16(int32_t (&c)[2], uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750 && !defined(BNB_GPU_HIP)
    asm volatile("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%0,%1};\n"
                 : "+r"(c[0]), "+r"(c[1])
                 : "r"(a), "r"(b));
#else
    (void)c;
    (void)a;
    (void)b;
#endif
}

BNB_D void mma_s8_m16n8k32(int32_t (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(BNB_GPU_HIP)
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)c;
    (void)a;
    (void)b;
#endif
}

/* 256 threads, 64x64 outputs. SIMT: 16x16 threads with 4x4 outputs each. Tensor cores: 8 warps as 2 (M) x 4 (N),
 * each warp 32 rows x 16 columns. */
__global__ void __launch_bounds__(256) int8_matmul_kernel(const MatmulParams p) {
    __shared__ __align__(16) int8_t As[kTile][kTileK + kPadK];
    __shared__ __align__(16) int8_t Bs[kTile][kTileK + kPadK];
    const int64_t m0 = (int64_t)blockIdx.y * kTile, n0 = (int64_t)blockIdx.x * kTile;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3;
    const int wm = warp / 4, wn = warp % 4;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int32_t acc[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) acc[i] = 0;
    for (int64_t k0 = 0; k0 < p.K; k0 += kTileK) {
        for (int e = threadIdx.x; e < kTile * kTileK; e += 256) {
            const int r = e / kTileK, kk = e % kTileK;
            const int64_t m = m0 + r, n = n0 + r, k = k0 + kk;
            As[r][kk] = (m < p.M && k < p.K) ? p.A[m * p.a_stride + k] : (int8_t)0;
            Bs[r][kk] = (n < p.N && k < p.K) ? p.B[n * p.b_stride + k] : (int8_t)0;
        }
        __syncthreads();
        if (p.path == 2) {
            /* m16n8k32: acc[(i*2 + j)*4 + r], i = m16 tile (2), j = n8 tile (2) */
#pragma unroll
            for (int ks = 0; ks < kTileK; ks += 32) {
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int row = wm * 32 + i * 16 + g;
                    const uint32_t a[4] = {*(const uint32_t*)&As[row][ks + 4 * t],
                                           *(const uint32_t*)&As[row + 8][ks + 4 * t],
                                           *(const uint32_t*)&As[row][ks + 16 + 4 * t],
                                           *(const uint32_t*)&As[row + 8][ks + 16 + 4 * t]};
#pragma unroll
                    for (int j = 0; j < 2; ++j) {
                        const int col = wn * 16 + j * 8 + g;
                        const uint32_t b[2] = {*(const uint32_t*)&Bs[col][ks + 4 * t],
                                               *(const uint32_t*)&Bs[col][ks + 16 + 4 * t]};
                        int32_t(&c)[4] = *reinterpret_cast<int32_t(*)[4]>(&acc[(i * 2 + j) * 4]);
                        mma_s8_m16n8k32(c, a, b);
                    }
                }
            }
        } else if (p.path == 1) {
            /* m8n8k16: acc[(i*2 + j)*2 + r], i = m8 tile (4), j = n8 tile (2) */
#pragma unroll
            for (int ks = 0; ks < kTileK; ks += 16) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const uint32_t a = *(const uint32_t*)&As[wm * 32 + i * 8 + g][ks + 4 * t];
#pragma unroll
                    for (int j = 0; j < 2; ++j) {
                        const uint32_t b = *(const uint32_t*)&Bs[wn * 16 + j * 8 + g][ks + 4 * t];
                        int32_t(&c)[2] = *reinterpret_cast<int32_t(*)[2]>(&acc[(i * 2 + j) * 2]);
                        mma_s8_m8n8k16(c, a, b);
                    }
                }
            }
        } else {
#pragma unroll 4
            for (int kk = 0; kk < kTileK; kk += 4) {
                uint32_t a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) a[i] = *(const uint32_t*)&As[ty + 16 * i][kk];
#pragma unroll
                for (int j = 0; j < 4; ++j) b[j] = *(const uint32_t*)&Bs[tx + 16 * j][kk];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i * 4 + j] = dot4(a[i], b[j], acc[i * 4 + j]);
            }
        }
        __syncthreads();
    }
    /* write-out; accumulator fragments: (row g [+8], cols 2t, 2t+1) */
    for (int q = 0; q < 16; ++q) {
        int64_t m, n;
        if (p.path == 2) {
            const int tile = q / 4, r = q % 4, i = tile / 2, j = tile % 2;
            m = m0 + wm * 32 + i * 16 + g + (r >= 2 ? 8 : 0);
            n = n0 + wn * 16 + j * 8 + 2 * t + (r & 1);
        } else if (p.path == 1) {
            const int tile = q / 2, r = q % 2, i = tile / 2, j = tile % 2;
            m = m0 + wm * 32 + i * 8 + g;
            n = n0 + wn * 16 + j * 8 + 2 * t + r;
        } else {
            m = m0 + ty + 16 * (q / 4);
            n = n0 + tx + 16 * (q % 4);
        }
        if (m < p.M && n < p.N) p.out[m * p.out_stride + n] = acc[q];
    }
}

/* K > 131071: the first (row-major) output whose exact value leaves int32, in int64 (rare and slow by design). */
__global__ void __launch_bounds__(kThreads) int8_overflow_kernel(const MatmulParams p, unsigned long long* first) {
    for (int64_t i = global_thread(); i < p.M * p.N; i += grid_threads()) {
        const int64_t m = i / p.N, n = i - m * p.N;
        int64_t acc = 0;
        for (int64_t k = 0; k < p.K; ++k) acc += (int64_t)p.A[m * p.a_stride + k] * (int64_t)p.B[n * p.b_stride + k];
        if (acc > INT32_MAX || acc < INT32_MIN) atomic_min_u64(first, (unsigned long long)i);
    }
}
__global__ void int8_dot_kernel(const MatmulParams p, const unsigned long long* index, long long* value) {
    const int64_t m = (int64_t)(*index / (unsigned long long)p.N), n = (int64_t)(*index % (unsigned long long)p.N);
    int64_t acc = 0;
    for (int64_t k = 0; k < p.K; ++k) acc += (int64_t)p.A[m * p.a_stride + k] * (int64_t)p.B[n * p.b_stride + k];
    *value = acc;
}

} // namespace

/* ─── slots ──────────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_gpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                                  bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                                  bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    static const char op[] = "int8_vectorwise_quant";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant(op, bnb_gpu_validation(context, &vc), A, threshold, out_CA, NULL, out_row_stats,
                                   NULL, out_outlier_cols, out_outlier_count, 0, &a));
    return quantize(op, context, a, 0);
}

bnb_status BNB_CALL bnb_gpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                              int64_t* out_outlier_count) {
    static const char op[] = "int8_double_quant";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gpu_validation_context vc;
    bnb_int8_quant_args a;
    BNB_TRY(bnb_int8_resolve_quant(op, bnb_gpu_validation(context, &vc), A, threshold, out_CA, out_CAt,
                                   out_row_stats, out_col_stats, out_outlier_cols, out_outlier_count, 1, &a));
    return quantize(op, context, a, 1);
}

bnb_status BNB_CALL bnb_gpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA,
                                                    const bnb_tensor* row_stats, bnb_tensor* out) {
    static const char op[] = "int8_vectorwise_dequant";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_int8_dequant_args a;
    BNB_TRY(bnb_int8_resolve_vectorwise_dequant(op, context, CA, row_stats, out, &a));
    const int64_t total = a.CA.rows * a.CA.cols;
    if (total == 0) return BNB_OK;
    vectorwise_dequant_kernel<<<bnb_gpu_grid(context, total, kThreads), kThreads, 0, context->stream>>>(
        (const int8_t*)a.CA.data, a.CA.row_stride, a.row_stats, a.CA.rows, a.CA.cols, (float*)a.out.data,
        a.out.row_stride);
    return bnb_gpu_check_launch(op);
}

bnb_status BNB_CALL bnb_gpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                            const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    static const char op[] = "int8_mm_dequant";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_int8_mm_dequant_args a;
    BNB_TRY(bnb_int8_resolve_mm_dequant(op, context, C, row_stats, col_stats, bias, out, &a));
    const int64_t total = a.C.rows * a.C.cols;
    if (total == 0) return BNB_OK;
    mm_dequant_kernel<<<bnb_gpu_grid(context, total, kThreads), kThreads, 0, context->stream>>>(
        (const int32_t*)a.C.data, a.C.row_stride, a.row_stats, a.col_stats, a.bias, a.bias_dtype, a.C.rows,
        a.C.cols, a.out.data, a.out.dtype, a.out.row_stride);
    return bnb_gpu_check_launch(op);
}

/* The shared resolver's overflow dry run for K > 131071 reads A and B on the host. For such K the shapes are
 * checked by the resolver on views narrowed to K = 131071 (same pointers and row strides) and the overflow scan runs
 * on the device afterwards, with the reference's message. */
static bnb_status resolve_matmul(const char* op, bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                 bnb_tensor* out, bnb_int8_matmul_args* a, int* needs_overflow_scan) {
    *needs_overflow_scan = 0;
    const int64_t kLimit = 131071;
    bnb_matrix ma, mb;
    if (A != NULL && B != NULL && A->ndim == 2 && B->ndim == 2 && A->shape[1] > kLimit && B->shape[1] == A->shape[1]) {
        BNB_TRY(bnb_check_context(op, context, NULL));
        BNB_TRY(bnb_check_matrix(op, "A", A, BNB_DTYPE_BIT(BNB_DTYPE_I8), &ma));
        BNB_TRY(bnb_check_matrix(op, "B", B, BNB_DTYPE_BIT(BNB_DTYPE_I8), &mb));
        bnb_tensor na = *A, nb = *B;
        na.shape[1] = nb.shape[1] = kLimit;
        na.stride[0] = ma.row_stride;
        nb.stride[0] = mb.row_stride;
        na.stride[1] = nb.stride[1] = 1;
        BNB_TRY(bnb_int8_resolve_linear_matmul(op, context, &na, &nb, out, a));
        a->A.cols = a->B.cols = A->shape[1];
        *needs_overflow_scan = 1;
        return BNB_OK;
    }
    return bnb_int8_resolve_linear_matmul(op, context, A, B, out, a);
}

bnb_status BNB_CALL bnb_gpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                               bnb_tensor* out) {
    static const char op[] = "int8_linear_matmul";
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_int8_matmul_args a;
    int scan = 0;
    BNB_TRY(resolve_matmul(op, context, A, B, out, &a, &scan));
    MatmulParams p;
    p.A = (const int8_t*)a.A.data;
    p.a_stride = a.A.row_stride;
    p.B = (const int8_t*)a.B.data;
    p.b_stride = a.B.row_stride;
    p.out = (int32_t*)a.out.data;
    p.out_stride = a.out.row_stride;
    p.M = a.A.rows;
    p.N = a.B.rows;
    p.K = a.A.cols;
    p.path = 0;
#if !defined(BNB_GPU_HIP)
    if (!(context->disabled & BNB_GPU_DISABLE_IMMA)) p.path = context->cc >= 80 ? 2 : context->cc >= 75 ? 1 : 0;
#endif
    if (p.M == 0 || p.N == 0) return BNB_OK;
    if (scan) {
        void* scratch = NULL;
        BNB_TRY(bnb_gpu_scratch(op, context, 2 * sizeof(unsigned long long), &scratch));
        unsigned long long* first = (unsigned long long*)scratch;
        BNB_GPU_TRY(op, "clear scratch", gpuMemsetAsync(first, 0xFF, sizeof *first, context->stream));
        int8_overflow_kernel<<<bnb_gpu_grid(context, p.M * p.N, kThreads), kThreads, 0, context->stream>>>(p, first);
        BNB_TRY(bnb_gpu_check_launch(op));
        unsigned long long index = 0;
        BNB_TRY(bnb_gpu_copy_out(op, context, &index, first, sizeof index));
        if (index != ~0ull) {
            int8_dot_kernel<<<1, 1, 0, context->stream>>>(p, first, (long long*)(first + 1));
            BNB_TRY(bnb_gpu_check_launch(op));
            long long value = 0;
            BNB_TRY(bnb_gpu_copy_out(op, context, &value, first + 1, sizeof value));
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out[%lld, %lld] = %lld does not fit int32 (K = %lld)",
                            (long long)(index / (unsigned long long)p.N), (long long)(index % (unsigned long long)p.N),
                            value, (long long)p.K);
        }
    }
    const dim3 grid((unsigned)((p.N + kTile - 1) / kTile), (unsigned)((p.M + kTile - 1) / kTile));
    int8_matmul_kernel<<<grid, 256, 0, context->stream>>>(p);
    return bnb_gpu_check_launch(op);
}
