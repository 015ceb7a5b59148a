// bnb_gpu_bench — the issue-7 targets of a GPU backend, side by side in one run on one GPU.
//
//   bnb_gpu_bench <libbnb_cuda.so> [--quick] [--json FILE]
//
// Loads the backend through the public ABI only (dlopen + bnb_get_api), allocates device memory through it, and
// times with the host clock around N iterations closed by a device synchronization (libcuda's cuCtxSynchronize,
// dlopen'ed: the driver is all a GPU machine is guaranteed to have). Rows:
//   copy      memory_copy device→device, 1 GiB: bytes read + written per second (the bandwidth reference)
//   gemv      NF4 gemv_4bit M = 1 (bf16 activations) on 8192x8192 and 8192x28672: weight bytes per second, % of copy
//             bandwidth; bf16 cuBLAS GEMV (cublasGemmEx, M = 1) on the same shape when libcublas is present
//   gemm      NF4 gemm_4bit M = 16 … 512, K = N = 8192 (bf16): TFLOP/s vs bf16 cuBLAS GEMM
//   int8      int8_linear_matmul M = 512 … 4096, K = N = 8192: TOPS vs bf16 cuBLAS on the same shape
//   adamw8    optimizer_update_8bit_blockwise AdamW, 64 M f32 params: bytes moved per second (16 B/element)
// cuBLAS is optional (dlopen libcublas.so.13/.12/.11/.so); rows say "cublas: absent" otherwise.
#include <bnb/bnb.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <string>
#include <vector>

namespace {

const bnb_api* g_api = nullptr;
bnb_context* g_ctx = nullptr;
int (*g_cuCtxSynchronize)() = nullptr;
bool g_quick = false;
std::string g_json;

void die(const char* what) {
    std::fprintf(stderr, "bnb_gpu_bench: %s: %s\n", what, g_api ? g_api->last_error_message() : "");
    std::exit(1);
}
#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        if ((call) != BNB_OK) die(#call);                                                                          \
    } while (0)

void sync() {
    if (g_cuCtxSynchronize && g_cuCtxSynchronize() != 0) die("cuCtxSynchronize");
}

// Seconds per call of fn: warm-up, then as many calls as fit ~0.3 s (at least 3).
double time_it(const std::function<void()>& fn) {
    fn();
    sync();
    int iters = 1;
    for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) fn();
        sync();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > (g_quick ? 0.05 : 0.3) || iters >= (1 << 16)) return s / iters;
        iters *= (s < 0.01 ? 10 : 2);
    }
}

void* device_alloc(size_t bytes) {
    bnb_buffer* b = nullptr;
    void* p = nullptr;
    CHECK(g_api->buffer_alloc(g_ctx, BNB_MEMORY_DEVICE, bytes, &b));
    CHECK(g_api->buffer_get_pointer(b, &p, nullptr));
    return p; // freed with the process: the benchmark is one short run
}

void upload(void* dst, const void* src, size_t bytes) {
    CHECK(g_api->memory_copy(g_ctx, dst, src, bytes, BNB_COPY_HOST_TO_DEVICE));
}

bnb_tensor t1(void* p, int32_t dt, int64_t n) {
    bnb_tensor t{};
    t.data = p;
    t.dtype = dt;
    t.ndim = 1;
    t.shape[0] = n;
    return t;
}
bnb_tensor t2(void* p, int32_t dt, int64_t r, int64_t c) {
    bnb_tensor t = t1(p, dt, r);
    t.ndim = 2;
    t.shape[1] = c;
    return t;
}

// ─── cuBLAS through dlopen (types written out: no CUDA headers needed) ─────────────────────────────────────
struct Cublas {
    void* lib = nullptr;
    void* handle = nullptr;
    int (*create)(void**) = nullptr;
    int (*gemm_ex)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                   const void*, void*, int, int, int, int) = nullptr;
    std::string name;
    bool ok() const { return handle != nullptr; }
};
Cublas g_cublas;

void load_cublas() {
    for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}) {
        g_cublas.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (g_cublas.lib) {
            g_cublas.name = n;
            break;
        }
    }
    if (!g_cublas.lib) return;
    g_cublas.create = reinterpret_cast<int (*)(void**)>(dlsym(g_cublas.lib, "cublasCreate_v2"));
    g_cublas.gemm_ex = reinterpret_cast<decltype(g_cublas.gemm_ex)>(dlsym(g_cublas.lib, "cublasGemmEx"));
    if (!g_cublas.create || !g_cublas.gemm_ex || g_cublas.create(&g_cublas.handle) != 0) g_cublas.handle = nullptr;
}

// out[M, N] = A[M, K] · W[N, K]^T in bf16 with f32 accumulation (row-major), i.e. column-major
// C^T[N, M] = W[N, K] (op T of the [K, N] col-major view) · A^T.
void cublas_bf16(int M, int N, int K, const void* A, const void* W, void* C) {
    const float one = 1.0f, zero = 0.0f;
    const int CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, OP_N = 0, OP_T = 1, ALGO_DEFAULT = -1;
    if (g_cublas.gemm_ex(g_cublas.handle, OP_T, OP_N, N, M, K, &one, W, CUDA_R_16BF, K, A, CUDA_R_16BF, K, &zero, C,
                         CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, ALGO_DEFAULT) != 0)
        die("cublasGemmEx");
}

FILE* g_out = nullptr;
void row(const char* group, const std::string& shape, const std::string& what, double value, const char* unit,
         const std::string& note) {
    std::printf("%-7s %-28s %-22s %10.2f %-8s %s\n", group, shape.c_str(), what.c_str(), value, unit, note.c_str());
    if (g_out)
        std::fprintf(g_out, "%s{\"group\":\"%s\",\"shape\":\"%s\",\"what\":\"%s\",\"value\":%.4f,\"unit\":\"%s\"}",
                     std::ftell(g_out) > 2 ? ",\n" : "", group, shape.c_str(), what.c_str(), value, unit);
}

std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
    std::vector<uint16_t> v(n);
    for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        const float f = ((seed >> 8) * (1.0f / 16777216.0f) - 0.5f) * 2.0f;
        uint32_t u;
        std::memcpy(&u, &f, 4);
        v[i] = static_cast<uint16_t>(u >> 16);
    }
    return v;
}

// NF4 weights W[N, K] quantized on the device from random bf16 values.
struct Nf4 {
    void* packed;
    void* absmax;
    int64_t N, K;
};
Nf4 make_nf4(int64_t N, int64_t K) {
    const auto w = random_bf16(static_cast<size_t>(N * K), 7u);
    void* wd = device_alloc(w.size() * 2);
    upload(wd, w.data(), w.size() * 2);
    Nf4 q{device_alloc(static_cast<size_t>(N * K / 2)), device_alloc(static_cast<size_t>(N * K / 64 * 4)), N, K};
    bnb_tensor a = t1(wd, BNB_DTYPE_BF16, N * K), p = t1(q.packed, BNB_DTYPE_U8, N * K / 2),
               m = t1(q.absmax, BNB_DTYPE_F32, N * K / 64);
    CHECK(g_api->quantize_4bit(g_ctx, &a, BNB_QUANT_NF4, 64, &p, &m));
    sync();
    return q;
}

double copy_bandwidth() {
    const size_t bytes = g_quick ? (256u << 20) : (1u << 30);
    void* a = device_alloc(bytes);
    void* b = device_alloc(bytes);
    const double s = time_it([&] { CHECK(g_api->memory_copy(g_ctx, b, a, bytes, BNB_COPY_DEVICE_TO_DEVICE)); });
    const double gbs = 2.0 * static_cast<double>(bytes) / s / 1e9;
    row("copy", std::to_string(bytes >> 20) + " MiB d2d", "read+write", gbs, "GB/s", "reference bandwidth");
    return gbs;
}

void bench_gemv(double copy_gbs) {
    for (int64_t N : {8192LL, 28672LL}) {
        const int64_t K = 8192;
        const Nf4 q = make_nf4(N, K);
        const auto a = random_bf16(static_cast<size_t>(K), 3u);
        void* ad = device_alloc(static_cast<size_t>(K) * 2);
        upload(ad, a.data(), a.size() * 2);
        void* out = device_alloc(static_cast<size_t>(N) * 2);
        bnb_tensor A = t2(ad, BNB_DTYPE_BF16, 1, K), W = t1(q.packed, BNB_DTYPE_U8, N * K / 2),
                   O = t2(out, BNB_DTYPE_BF16, 1, N), am = t1(q.absmax, BNB_DTYPE_F32, N * K / 64);
        bnb_absmax abs{};
        abs.struct_size = sizeof abs;
        abs.values = &am;
        const double s = time_it(
            [&] { CHECK(g_api->gemv_4bit(g_ctx, &A, &W, BNB_WEIGHT_STANDARD, &abs, BNB_QUANT_NF4, 64, nullptr, &O)); });
        const double weight_bytes = static_cast<double>(N * K / 2 + N * K / 64 * 4);
        const double gbs = weight_bytes / s / 1e9;
        const std::string shape = "M=1 K=" + std::to_string(K) + " N=" + std::to_string(N);
        char note[96];
        std::snprintf(note, sizeof note, "%.1f %% of copy read+write, %.1f us", 100.0 * gbs / copy_gbs, s * 1e6);
        row("gemv", shape, "bnb NF4 gemv_4bit", gbs, "GB/s", note);
        if (g_cublas.ok()) {
            const auto wb = random_bf16(static_cast<size_t>(N * K), 5u);
            void* wd = device_alloc(wb.size() * 2);
            upload(wd, wb.data(), wb.size() * 2);
            const double sb = time_it([&] { cublas_bf16(1, static_cast<int>(N), static_cast<int>(K), ad, wd, out); });
            std::snprintf(note, sizeof note, "%.1f us; NF4 speed-up %.2fx", sb * 1e6, sb / s);
            row("gemv", shape, "cuBLAS bf16 GEMV", static_cast<double>(N * K * 2) / sb / 1e9, "GB/s", note);
        }
    }
}

void bench_gemm() {
    const int64_t K = 8192, N = 8192;
    const Nf4 q = make_nf4(N, K);
    const auto wb = g_cublas.ok() ? random_bf16(static_cast<size_t>(N * K), 5u) : std::vector<uint16_t>();
    void* wd = nullptr;
    if (g_cublas.ok()) {
        wd = device_alloc(wb.size() * 2);
        upload(wd, wb.data(), wb.size() * 2);
    }
    for (int64_t M : {16LL, 32LL, 64LL, 128LL, 256LL, 512LL}) {
        if (g_quick && M > 64 && M != 512) continue;
        const auto a = random_bf16(static_cast<size_t>(M * K), 3u);
        void* ad = device_alloc(a.size() * 2);
        upload(ad, a.data(), a.size() * 2);
        void* out = device_alloc(static_cast<size_t>(M * N) * 2);
        bnb_tensor A = t2(ad, BNB_DTYPE_BF16, M, K), W = t1(q.packed, BNB_DTYPE_U8, N * K / 2),
                   O = t2(out, BNB_DTYPE_BF16, M, N), am = t1(q.absmax, BNB_DTYPE_F32, N * K / 64);
        bnb_absmax abs{};
        abs.struct_size = sizeof abs;
        abs.values = &am;
        const double s = time_it(
            [&] { CHECK(g_api->gemm_4bit(g_ctx, &A, &W, BNB_WEIGHT_STANDARD, &abs, BNB_QUANT_NF4, 64, nullptr, &O)); });
        const double flops = 2.0 * static_cast<double>(M * N * K);
        const std::string shape = "M=" + std::to_string(M) + " K=N=8192";
        char note[96] = "";
        if (g_cublas.ok()) {
            const double sb = time_it(
                [&] { cublas_bf16(static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), ad, wd, out); });
            row("gemm", shape, "cuBLAS bf16", flops / sb / 1e12, "TFLOP/s", "");
            std::snprintf(note, sizeof note, "bnb / cuBLAS time %.2f", s / sb);
        }
        row("gemm", shape, "bnb NF4 gemm_4bit", flops / s / 1e12, "TFLOP/s", note);
    }
}

void bench_int8() {
    const int64_t K = 8192, N = 8192;
    std::vector<int8_t> host(static_cast<size_t>(4096 * K));
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<int8_t>((i * 2654435761u) >> 24);
    void* bd = device_alloc(static_cast<size_t>(N * K));
    upload(bd, host.data(), static_cast<size_t>(N * K) < host.size() ? static_cast<size_t>(N * K) : host.size());
    for (int64_t M : {512LL, 1024LL, 4096LL}) {
        if (g_quick && M != 512) continue;
        void* ad = device_alloc(static_cast<size_t>(M * K));
        upload(ad, host.data(), static_cast<size_t>(M * K));
        void* out = device_alloc(static_cast<size_t>(M * N) * 4);
        bnb_tensor A = t2(ad, BNB_DTYPE_I8, M, K), B = t2(bd, BNB_DTYPE_I8, N, K), O = t2(out, BNB_DTYPE_I32, M, N);
        const double s = time_it([&] { CHECK(g_api->int8_linear_matmul(g_ctx, &A, &B, &O)); });
        const double ops = 2.0 * static_cast<double>(M * N * K);
        const std::string shape = "M=" + std::to_string(M) + " K=N=8192";
        char note[96] = "";
        if (g_cublas.ok()) {
            void* ab = device_alloc(static_cast<size_t>(M * K) * 2);
            void* wb = device_alloc(static_cast<size_t>(N * K) * 2);
            void* ob = device_alloc(static_cast<size_t>(M * N) * 2);
            const double sb = time_it(
                [&] { cublas_bf16(static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), ab, wb, ob); });
            row("int8", shape, "cuBLAS bf16", ops / sb / 1e12, "TFLOP/s", "");
            std::snprintf(note, sizeof note, "%.2fx the bf16 cuBLAS throughput", sb / s);
        }
        row("int8", shape, "bnb int8_linear_matmul", ops / s / 1e12, "TOPS", note);
    }
}

void bench_adamw8(double copy_gbs) {
    const int64_t n = g_quick ? (16LL << 20) : (64LL << 20);
    const int64_t blocks = (n + 255) / 256;
    void* p = device_alloc(static_cast<size_t>(n) * 4);
    void* g = device_alloc(static_cast<size_t>(n) * 4);
    void* s1 = device_alloc(static_cast<size_t>(n));
    void* s2 = device_alloc(static_cast<size_t>(n));
    void* a1 = device_alloc(static_cast<size_t>(blocks) * 4);
    void* a2 = device_alloc(static_cast<size_t>(blocks) * 4);
    void* q1 = device_alloc(256 * 4);
    void* q2 = device_alloc(256 * 4);
    bnb_tensor tq1 = t1(q1, BNB_DTYPE_F32, 256), tq2 = t1(q2, BNB_DTYPE_F32, 256);
    CHECK(g_api->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &tq1));
    CHECK(g_api->get_code_table(BNB_TABLE_DYNAMIC_UNSIGNED, &tq2));
    bnb_tensor tp = t1(p, BNB_DTYPE_F32, n), tg = t1(g, BNB_DTYPE_F32, n), ts1 = t1(s1, BNB_DTYPE_U8, n),
               ts2 = t1(s2, BNB_DTYPE_U8, n), ta1 = t1(a1, BNB_DTYPE_F32, blocks), ta2 = t1(a2, BNB_DTYPE_F32, blocks);
    bnb_optimizer_params prm{};
    prm.struct_size = sizeof prm;
    prm.kind = BNB_OPTIM_ADAM;
    prm.step = 1;
    prm.lr = 1e-3;
    prm.beta1 = 0.9;
    prm.beta2 = 0.999;
    prm.eps = 1e-8;
    prm.weight_decay = 0.01;
    prm.gnorm_scale = 1.0;
    prm.param_norm = -1.0;
    const double s = time_it([&] {
        CHECK(g_api->optimizer_update_8bit_blockwise(g_ctx, &prm, &tp, &tg, &ts1, &ts2, &ta1, &ta2, &tq1, &tq2));
        ++prm.step;
    });
    const double bytes = 16.0 * static_cast<double>(n) + 16.0 * static_cast<double>(blocks);
    char note[96];
    std::snprintf(note, sizeof note, "%.1f %% of copy read+write (16 B/param)", 100.0 * bytes / s / 1e9 / copy_gbs);
    row("adamw8", std::to_string(n >> 20) + " M f32 params", "8-bit blockwise AdamW", bytes / s / 1e9, "GB/s", note);
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <libbnb_cuda.so> [--quick] [--json FILE]\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) g_quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) g_json = argv[++i];
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    auto probe = reinterpret_cast<bnb_probe_fn>(dlsym(lib, "bnb_probe"));
    auto get_api = reinterpret_cast<bnb_get_api_fn>(dlsym(lib, "bnb_get_api"));
    if (!probe || !get_api || get_api(BNB_ABI_MAJOR, &g_api) != BNB_OK) {
        std::fprintf(stderr, "%s is not a Bnb backend\n", argv[1]);
        return 2;
    }
    if (probe() == 0) {
        std::printf("SKIP: %s has no usable device here\n", argv[1]);
        return 77;
    }
    CHECK(g_api->context_create(nullptr, &g_ctx));
    if (void* cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL))
        g_cuCtxSynchronize = reinterpret_cast<int (*)()>(dlsym(cu, "cuCtxSynchronize"));
    if (!g_cuCtxSynchronize) std::printf("warning: no libcuda.so.1 cuCtxSynchronize; timings use D2H round trips\n");
    bnb_device_info dev{};
    dev.struct_size = sizeof dev;
    CHECK(g_api->device_get_info(0, &dev));
    load_cublas();
    std::printf("device: %s (cc %d, %d SMs, %.1f GiB); cuBLAS: %s\n", dev.name, dev.compute_capability,
                dev.compute_units, static_cast<double>(dev.total_memory) / (1 << 30),
                g_cublas.ok() ? g_cublas.name.c_str() : "absent");
    if (!g_json.empty()) {
        g_out = std::fopen(g_json.c_str(), "w");
        if (g_out) std::fprintf(g_out, "[\n");
    }
    // ops run on the context's own stream; cuBLAS on the legacy default stream, which waits for it
    const double copy_gbs = copy_bandwidth();
    bench_gemv(copy_gbs);
    bench_gemm();
    bench_int8();
    bench_adamw8(copy_gbs);
    if (g_out) {
        std::fprintf(g_out, "\n]\n");
        std::fclose(g_out);
    }
    g_api->context_destroy(g_ctx);
    return 0;
}
