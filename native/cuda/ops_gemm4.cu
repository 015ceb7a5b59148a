/*
 * ops_gemm4.cu — out[M, N] = A[M, K] · dequant(W)[N, K]^T (+ bias): gemv_4bit and gemm_4bit.
 *
 * Every weight is dequantized exactly as the reference does (w = f32(table[nibble] * absmax of its flat block)) and
 * products are float32, so results differ from bnb_cpu_ref only by summation order (NMSE bound in
 * tests/native/conformance_test.cpp). Three kernels:
 *
 *   gemv_kernel<MT, T>   M <= 16, standard layout, K % 32 == 0, W 16-byte aligned. Bandwidth-bound: a group of 32
 *                        lanes owns one weight row n; each lane streams 16 bytes (32 nibbles, one absmax block
 *                        since blocksize >= 32) per step and applies them to all M activation rows (MT = M rounded
 *                        up to 1, 4 or 16). The weight row is read once for every M.
 *
 *       W row n (K/2 bytes):  | lane 0: 16 B | lane 1: 16 B | ... | lane 31: 16 B | lane 0: 16 B | ...
 *                               k = 0..31      k = 32..63            k = 992..1023   k = 1024..
 *
 *   gemm_mma_bf16_kernel  bf16 activations on sm_80+ (CUDA only): 64x64 output tile per 4 warps, K step 32,
 *                        A and dequantized W staged as bf16 in shared memory, mma.sync.m16n8k16 bf16 → f32. The
 *                        weight rounded to bf16 is what the conformance bound for bf16 activations allows (f16 and
 *                        f32 activations must keep float32 weights, so they take the SIMT kernel).
 *   gemm_simt_kernel     everything else: 64x64 tile, 256 threads with 4x4 outputs each, K step 16, float32.
 *                        Reads any layout (standard or BNB_CPU) and any K.
 */
#include "gpu_backend.h"
#include "gpu_device.cuh"

#include "bnb_quant.h"

#include <string.h>

using namespace bnb_gpu;

namespace {

struct GemmParams {
    const void* A;
    int32_t a_dtype;
    int64_t a_stride;
    const uint8_t* W;
    int32_t layout;
    Scales scales;
    int32_t blocksize_log2;
    float table[BNB_CODE4_SIZE];
    const void* bias;
    int32_t bias_dtype;
    void* out;
    int32_t out_dtype;
    int64_t out_stride;
    int64_t M, N, K;
};

BNB_D uint8_t weight_nibble(const GemmParams& p, int64_t n, int64_t k) {
    if (p.layout == BNB_WEIGHT_BNB_CPU) {
        const int64_t byte_index = ((n / 32) * (p.K / 2) + k / 2) * 32 + 2 * (n % 16) + (k & 1);
        const uint8_t byte = p.W[byte_index];
        return (n % 32) >= 16 ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0x0F);
    }
    const int64_t e = n * p.K + k;
    const uint8_t byte = p.W[e >> 1];
    return (e & 1) ? (uint8_t)(byte & 0x0F) : (uint8_t)(byte >> 4);
}

BNB_D float weight_value(const GemmParams& p, int64_t n, int64_t k) {
    const float scale = scale_at(p.scales, (n * p.K + k) >> p.blocksize_log2);
    return p.table[weight_nibble(p, n, k)] * scale;
}

BNB_D void store_out(const GemmParams& p, int64_t m, int64_t n, float acc) {
    if (p.bias != nullptr) acc = acc + load_float(p.bias, p.bias_dtype, n);
    store_float(p.out, p.out_dtype, m * p.out_stride + n, acc);
}

/* ─── gemv ───────────────────────────────────────────────────────────────────────────────────────────────── */

constexpr int kGemvGroups = 8; /* rows of W per block: 8 groups of 32 lanes = 256 threads */

template <int MT, int DT>
__global__ void __launch_bounds__(256) gemv_kernel(const GemmParams p) {
    __shared__ float table[BNB_CODE4_SIZE];
    if (threadIdx.x < BNB_CODE4_SIZE) table[threadIdx.x] = p.table[threadIdx.x];
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const int64_t n = (int64_t)blockIdx.x * kGemvGroups + (threadIdx.x >> 5);
    if (n >= p.N) return; /* whole groups leave together: the shuffles below stay within complete groups */
    const uint4* row = (const uint4*)(p.W + n * (p.K / 2));
    const int64_t chunks = p.K / 32; /* 16 bytes = 32 weights each */
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
    for (int64_t c = lane; c < chunks; c += 32) {
        const uint4 bytes = __ldg(row + c);
        const int64_t k0 = c * 32;
        const float scale = scale_at(p.scales, (n * p.K + k0) >> p.blocksize_log2);
        const uint32_t words[4] = {bytes.x, bytes.y, bytes.z, bytes.w};
        float w[32];
#pragma unroll
        for (int q = 0; q < 4; ++q)
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                const uint32_t byte = (words[q] >> (8 * b)) & 0xFFu; /* little-endian: byte b of the word */
                w[8 * q + 2 * b] = table[byte >> 4] * scale;         /* element 2i: high nibble */
                w[8 * q + 2 * b + 1] = table[byte & 0x0F] * scale;
            }
#pragma unroll
        for (int m = 0; m < MT; ++m) {
            if (m < p.M) {
                const int64_t base = m * p.a_stride + k0;
                float sum = acc[m];
#pragma unroll 8
                for (int j = 0; j < 32; ++j) {
                    const float prod = load_float(p.A, DT, base + j) * w[j];
                    sum = sum + prod;
                }
                acc[m] = sum;
            }
        }
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
        float v = acc[m];
        for (int o = 16; o > 0; o >>= 1) v += bnb_shfl_xor32(v, o);
        acc[m] = v;
    }
    if (lane == 0) {
#pragma unroll
        for (int m = 0; m < MT; ++m)
            if (m < p.M) store_out(p, m, n, acc[m]);
    }
}

template <int MT>
bnb_status launch_gemv_dt(const char* op, bnb_context* ctx, const GemmParams& p) {
    const unsigned blocks = (unsigned)((p.N + kGemvGroups - 1) / kGemvGroups);
    if (p.a_dtype == BNB_DTYPE_F16) gemv_kernel<MT, BNB_DTYPE_F16><<<blocks, 256, 0, ctx->stream>>>(p);
    else if (p.a_dtype == BNB_DTYPE_BF16) gemv_kernel<MT, BNB_DTYPE_BF16><<<blocks, 256, 0, ctx->stream>>>(p);
    else gemv_kernel<MT, BNB_DTYPE_F32><<<blocks, 256, 0, ctx->stream>>>(p);
    return bnb_gpu_check_launch(op);
}

bnb_status launch_gemv(const char* op, bnb_context* ctx, const GemmParams& p) {
    /* three register budgets keep the build small: M = 1, 2…4, 5…16 */
    if (p.M <= 1) return launch_gemv_dt<1>(op, ctx, p);
    if (p.M <= 4) return launch_gemv_dt<4>(op, ctx, p);
    return launch_gemv_dt<16>(op, ctx, p);
}

bool gemv_applies(const GemmParams& p) {
    return p.M >= 1 && p.M <= 16 && p.layout == BNB_WEIGHT_STANDARD && p.K % 32 == 0 &&
           ((uintptr_t)p.W % 16) == 0;
}

/* ─── SIMT gemm ──────────────────────────────────────────────────────────────────────────────────────────── */

constexpr int kTile = 64;
constexpr int kTileK = 16;

__global__ void __launch_bounds__(256) gemm_simt_kernel(const GemmParams p) {
    __shared__ float As[kTileK][kTile + 1];
    __shared__ float Ws[kTileK][kTile + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int64_t m0 = (int64_t)blockIdx.y * kTile, n0 = (int64_t)blockIdx.x * kTile;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int64_t k0 = 0; k0 < p.K; k0 += kTileK) {
        for (int e = threadIdx.x; e < kTile * kTileK; e += 256) {
            const int r = e / kTileK, kk = e % kTileK;
            const int64_t m = m0 + r, n = n0 + r, k = k0 + kk;
            As[kk][r] = (m < p.M && k < p.K) ? load_float(p.A, p.a_dtype, m * p.a_stride + k) : 0.0f;
            Ws[kk][r] = (n < p.N && k < p.K) ? weight_value(p, n, k) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kTileK; ++kk) {
            float a[4], w[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) w[j] = Ws[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const float prod = a[i] * w[j];
                    acc[i][j] = acc[i][j] + prod;
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < p.M && n < p.N) store_out(p, m, n, acc[i][j]);
        }
}

/* ─── bf16 tensor-core gemm (sm_80+) ─────────────────────────────────────────────────────────────────────── */

#if !defined(BNB_GPU_HIP) /* NVIDIA tensor cores only; HIP builds use the SIMT kernel */
__global__ void __launch_bounds__(128) gemm_mma_bf16_kernel(const GemmParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int kMmaTileK = 32;
    constexpr int kMmaPad = 8; /* bf16 elements of padding per shared row: spreads fragment loads over banks */
    __shared__ __align__(16) uint16_t As[kTile][kMmaTileK + kMmaPad];
    __shared__ __align__(16) uint16_t Ws[kTile][kMmaTileK + kMmaPad];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / 2, wn = warp % 2; /* each warp: 32 rows x 32 columns of the 64x64 tile */
    const int g = lane >> 2, t = lane & 3;   /* mma fragment coordinates (PTX ISA, m16n8k16 layouts) */
    const int64_t m0 = (int64_t)blockIdx.y * kTile, n0 = (int64_t)blockIdx.x * kTile;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;
    const uint16_t* A = (const uint16_t*)p.A;
    for (int64_t k0 = 0; k0 < p.K; k0 += kMmaTileK) {
        for (int e = threadIdx.x; e < kTile * kMmaTileK; e += 128) {
            const int r = e / kMmaTileK, kk = e % kMmaTileK;
            const int64_t m = m0 + r, n = n0 + r, k = k0 + kk;
            As[r][kk] = (m < p.M && k < p.K) ? A[m * p.a_stride + k] : (uint16_t)0;
            Ws[r][kk] = (n < p.N && k < p.K) ? f32_to_bf16(weight_value(p, n, k)) : (uint16_t)0;
        }
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < kMmaTileK / 16; ++ks) {
            const int kc = ks * 16 + t * 2;
            uint32_t a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int row = wm * 32 + i * 16 + g;
                a[i][0] = *(const uint32_t*)&As[row][kc];
                a[i][1] = *(const uint32_t*)&As[row + 8][kc];
                a[i][2] = *(const uint32_t*)&As[row][kc + 8];
                a[i][3] = *(const uint32_t*)&As[row + 8][kc + 8];
            }
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int col = wn * 32 + j * 8 + g;
                b[j][0] = *(const uint32_t*)&Ws[col][kc];
                b[j][1] = *(const uint32_t*)&Ws[col][kc + 8];
            }
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                                 : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]), "+f"(acc[i][j][3])
                                 : "r"(a[i][0]), "r"(a[i][1]), "r"(a[i][2]), "r"(a[i][3]), "r"(b[j][0]),
                                   "r"(b[j][1]));
        }
        __syncthreads();
    }
    /* accumulator fragment: c0, c1 → (row g, cols 2t, 2t+1); c2, c3 → (row g + 8, same cols) */
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int64_t m = m0 + wm * 32 + i * 16 + g + (r >= 2 ? 8 : 0);
                const int64_t n = n0 + wn * 32 + j * 8 + 2 * t + (r & 1);
                if (m < p.M && n < p.N) store_out(p, m, n, acc[i][j][r]);
            }
#else
    (void)p; /* never launched below sm_80 (launch_gemm checks the device) */
#endif
}
#endif /* !BNB_GPU_HIP */

bnb_status launch_gemm(const char* op, bnb_context* ctx, const GemmParams& p) {
    const dim3 grid((unsigned)((p.N + kTile - 1) / kTile), (unsigned)((p.M + kTile - 1) / kTile));
#if !defined(BNB_GPU_HIP)
    if (p.a_dtype == BNB_DTYPE_BF16 && ctx->cc >= 80 && !(ctx->disabled & BNB_GPU_DISABLE_MMA)) {
        gemm_mma_bf16_kernel<<<grid, 128, 0, ctx->stream>>>(p);
        return bnb_gpu_check_launch(op);
    }
#endif
    gemm_simt_kernel<<<grid, 256, 0, ctx->stream>>>(p);
    return bnb_gpu_check_launch(op);
}

bnb_status resolve(const char* op, bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                   int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                   const bnb_tensor* bias, bnb_tensor* out, GemmParams* p) {
    BNB_TRY(bnb_gpu_enter(op, context));
    bnb_gemm_4bit_args a;
    BNB_TRY(bnb_validate_gemm_4bit(op, context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, &a));
    memset(p, 0, sizeof *p);
    p->A = a.A.data;
    p->a_dtype = a.A.dtype;
    p->a_stride = a.A.row_stride;
    p->W = a.W;
    p->layout = a.layout;
    p->scales.absmax = a.scales.absmax;
    p->scales.codes = a.scales.codes;
    p->scales.nested_absmax = a.scales.nested_absmax;
    p->scales.nested_code = a.scales.nested_code;
    p->scales.nested_blocksize = a.scales.nested_blocksize;
    p->scales.nested_offset = a.scales.nested_offset;
    p->scales.nested = a.scales.nested;
    int32_t log2 = 0;
    while ((int64_t)1 << log2 < a.blocksize) ++log2;
    p->blocksize_log2 = log2;
    memcpy(p->table, bnb_table_4bit(a.quant_type), sizeof p->table);
    p->bias = a.bias;
    p->bias_dtype = a.bias_dtype;
    p->out = a.out.data;
    p->out_dtype = a.out.dtype;
    p->out_stride = a.out.row_stride;
    p->M = a.M;
    p->N = a.N;
    p->K = a.K;
    return BNB_OK;
}

/* K == 0: out = bias (or 0), as the reference's empty sum. */
__global__ void gemm_empty_k_kernel(const GemmParams p) {
    for (int64_t i = global_thread(); i < p.M * p.N; i += grid_threads()) store_out(p, i / p.N, i % p.N, 0.0f);
}

bnb_status dispatch(const char* op, bnb_context* ctx, const GemmParams& p, bool prefer_gemv) {
    if (p.M == 0 || p.N == 0) return BNB_OK;
    if (p.K == 0) {
        gemm_empty_k_kernel<<<bnb_gpu_grid(ctx, p.M * p.N, 256), 256, 0, ctx->stream>>>(p);
        return bnb_gpu_check_launch(op);
    }
    /* the gemv kernel wins for every small M (it reads W once); gemm_4bit uses it too for M <= 4 */
    if (gemv_applies(p) && (prefer_gemv || p.M <= 4) && !(ctx->disabled & BNB_GPU_DISABLE_GEMV))
        return launch_gemv(op, ctx, p);
    return launch_gemm(op, ctx, p);
}

} // namespace

bnb_status BNB_CALL bnb_gpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    static const char op[] = "gemv_4bit";
    GemmParams p;
    BNB_TRY(resolve(op, context, A, W, weight_format, absmax, quant_type, blocksize, bias, out, &p));
    return dispatch(op, context, p, true);
}

bnb_status BNB_CALL bnb_gpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    static const char op[] = "gemm_4bit";
    GemmParams p;
    BNB_TRY(resolve(op, context, A, W, weight_format, absmax, quant_type, blocksize, bias, out, &p));
    return dispatch(op, context, p, false);
}
