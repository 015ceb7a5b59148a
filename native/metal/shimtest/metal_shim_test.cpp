// metal_shim_test — runs bnb_metal's kernels on the CPU against bnb_cpu_ref's reference implementations.
//
// bnb_metal_kernels.metal is compiled here as C++ (after CMake strips the MSL-only words and attributes, see
// CMakeLists.txt) through the shim header `metal_stdlib` (next to this file); the
// kernels get their arguments from the same plans (native/metal/bnb_metal_plan.h) and validators the Objective-C++
// host uses. Threadgroups are emulated with one std::thread per GPU thread and a barrier, so the reductions and
// grid-stride loops run as written. Compared with the reference: quantize (8-bit both roundings, 4-bit NF4/FP4)
// and dequantize bit for bit, gemv bit for bit with one thread per group (same summation order as the reference)
// and within float32 rounding with the production group size.
//
// NOT checked here (no Apple toolchain): MSL compilation, GPU float behaviour, the Metal host. See metal_stdlib.
#include "bnb_metal_kernels_as_cpp.inc" // generated from ../bnb_metal_kernels.metal
#include "bnb_metal_plan.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" const char bnb_backend_name[] = "metal_shim";

// ─── threadgroup emulation ────────────────────────────────────────────────────────────────────────────────────

namespace {

class GroupBarrier {
public:
    explicit GroupBarrier(unsigned count) : count_(count) {}

    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        const unsigned generation = generation_;
        if (++arrived_ == count_) {
            arrived_ = 0;
            ++generation_;
            cv_.notify_all();
            return;
        }
        cv_.wait(lock, [&] { return generation_ != generation; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    unsigned count_;
    unsigned arrived_ = 0;
    unsigned generation_ = 0;
};

thread_local GroupBarrier* t_barrier = nullptr;

// Runs `groups` threadgroups of `threads` threads. The threads of a group run concurrently (one std::thread each);
// groups run one after another on the same team, which the kernels allow (no state crosses a group boundary).
// body(scratch, tid, threads, group, groups).
template <typename Body>
void launch_groups(uint groups, uint threads, Body body) {
    GroupBarrier barrier(threads);
    std::vector<float> scratch(threads);
    std::vector<std::thread> team;
    team.reserve(threads);
    for (uint tid = 0; tid < threads; ++tid) {
        team.emplace_back([&, tid] {
            t_barrier = &barrier;
            for (uint g = 0; g < groups; ++g) body(scratch.data(), tid, threads, g, groups);
        });
    }
    for (auto& t : team) t.join();
}

// Element-wise kernels have no barriers: every grid thread runs in turn.
template <typename Body>
void launch_threads(uint threads, Body body) {
    for (uint gid = 0; gid < threads; ++gid) body(gid, threads);
}

} // namespace

void metal::threadgroup_barrier(metal::mem_flags) { t_barrier->wait(); }

// ─── test plumbing ───────────────────────────────────────────────────────────────────────────────────────────

namespace {

struct FakeContext {
    bnb_context_common common;
};
// Propagate: NaN/Inf inputs take the bitsandbytes path through the kernels instead of being rejected.
FakeContext g_context = {{BNB_CONTEXT_MAGIC, 0, 1, BNB_NONFINITE_PROPAGATE}};
bnb_context* context() { return reinterpret_cast<bnb_context*>(&g_context); }

int g_failures = 0;
int g_checks = 0;

void check(bool ok, const std::string& what) {
    ++g_checks;
    if (!ok) {
        ++g_failures;
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

void check_status(bnb_status status, const char* what) {
    if (status != BNB_OK) {
        std::fprintf(stderr, "FAIL: %s returned %d: %s\n", what, status, bnb_last_error());
        ++g_failures;
    }
}

bnb_tensor tensor1d(void* data, int32_t dtype, int64_t n) {
    bnb_tensor t;
    std::memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 1;
    t.shape[0] = n;
    return t;
}

bnb_tensor tensor2d(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride) {
    bnb_tensor t = tensor1d(data, dtype, 0);
    t.ndim = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.stride[0] = row_stride;
    t.stride[1] = 1;
    return t;
}

const char* dtype_name(int32_t dtype) { return bnb_dtype_name(dtype); }

// n values in `dtype` (raw bytes), normal data with special values sprinkled in: exact zeros, a whole zero block,
// ±Inf, NaN, subnormals, values beyond every code. Deterministic per seed.
std::vector<uint8_t> make_input(int32_t dtype, int64_t n, int64_t blocksize, unsigned seed, bool specials) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x((size_t)n);
    for (auto& v : x) v = normal(rng);
    if (specials && n > 0) {
        for (int64_t i = 0; i < n && i < blocksize; ++i) x[(size_t)i] = 0.0f; // an all-zero first block
        const float picks[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-39f, -3e-42f, 1e30f, 0.5f, -1.0f};
        for (size_t j = 0; j < sizeof picks / sizeof picks[0]; ++j) x[(size_t)((j * 7919 + 13) % (uint64_t)n)] = picks[j];
    }
    std::vector<uint8_t> bytes((size_t)n * bnb_dtype_size(dtype));
    for (int64_t i = 0; i < n; ++i) bnb_store_float(bytes.data(), dtype, i, x[(size_t)i]);
    return bytes;
}

std::string describe(const char* op, int32_t dtype, int64_t n, int64_t blocksize, const char* extra) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s dtype=%s n=%lld blocksize=%lld %s", op, dtype_name(dtype), (long long)n,
                  (long long)blocksize, extra);
    return buf;
}

// ─── 8-bit blockwise ─────────────────────────────────────────────────────────────────────────────────────────

// Threads per emulated threadgroup for the block kernels: the production size costs 256 OS threads per launch, so
// most cases use 32 (the reductions work for any power of two) and one case per kernel uses the real size.
uint g_block_threads = 32;

void test_quantize_blockwise(int32_t dtype, int32_t rounding, int64_t blocksize, int64_t n, bool specials) {
    const std::string what = describe("quantize_blockwise", dtype, n, blocksize,
                                      rounding == BNB_ROUND_BNB_CPU_LUT ? "lut" : "nearest");
    std::vector<uint8_t> input = make_input(dtype, n, blocksize, (unsigned)(n * 31 + blocksize), specials);
    const int64_t blocks = bnb_ceil_div(n, blocksize);
    std::vector<uint8_t> ref_codes((size_t)n + 1, 0xEE), got_codes((size_t)n + 1, 0xEE);
    std::vector<float> ref_absmax((size_t)blocks + 1, -1.0f), got_absmax((size_t)blocks + 1, -1.0f);
    bnb_tensor A = tensor1d(input.data(), dtype, n);
    bnb_tensor code = tensor1d(const_cast<float*>(bnb_table_dynamic_signed), BNB_DTYPE_F32, 256);
    bnb_tensor rc = tensor1d(ref_codes.data(), BNB_DTYPE_U8, n), ra = tensor1d(ref_absmax.data(), BNB_DTYPE_F32, blocks);
    bnb_tensor gc = tensor1d(got_codes.data(), BNB_DTYPE_U8, n), ga = tensor1d(got_absmax.data(), BNB_DTYPE_F32, blocks);
    check_status(bnb_ref_quantize_blockwise(context(), &A, &code, blocksize, rounding, &rc, &ra), "reference");

    bnb_quantize_blockwise_args args;
    check_status(bnb_validate_quantize_blockwise("quantize_blockwise", context(), &A, &code, blocksize, rounding, &gc,
                                                 &ga, &args),
                 "validate");
    bnb_metal::QuantizeBlockwisePlan plan;
    bnb_metal::plan_quantize_blockwise(args, &plan);
    // at most 3 groups: the kernel's grid-stride loop covers the other blocks
    launch_groups((uint)bnb_metal::min_u64(plan.groups, 3), g_block_threads,
                  [&](float* scratch, uint tid, uint threads, uint g, uint groups) {
                      bnb_quantize_blockwise((const uchar*)args.A, plan.mid, plan.lut.data(), args.out_codes,
                                             args.out_absmax, plan.params, scratch, tid, threads, g, groups);
                  });
    check(ref_codes == got_codes, what + ": codes");
    check(std::memcmp(ref_absmax.data(), got_absmax.data(), ref_absmax.size() * sizeof(float)) == 0, what + ": absmax bits");
}

void test_dequantize_blockwise(int32_t out_dtype, int64_t blocksize, int64_t n, bool nested) {
    const std::string what = describe("dequantize_blockwise", out_dtype, n, blocksize, nested ? "nested" : "plain");
    std::mt19937 rng((unsigned)(n + blocksize));
    const int64_t blocks = bnb_ceil_div(n, blocksize);
    std::vector<uint8_t> codes((size_t)n), qabsmax((size_t)blocks);
    std::vector<float> absmax((size_t)blocks);
    for (auto& c : codes) c = (uint8_t)(rng() & 0xFF);
    for (auto& a : absmax) a = (float)(rng() % 1000) / 97.0f;
    for (auto& q : qabsmax) q = (uint8_t)(rng() & 0xFF);
    const int64_t nested_blocksize = 32;
    std::vector<float> nested_absmax((size_t)bnb_ceil_div(blocks, nested_blocksize));
    for (auto& a : nested_absmax) a = (float)(rng() % 100) / 7.0f;

    bnb_tensor codes_t = tensor1d(codes.data(), BNB_DTYPE_U8, n);
    bnb_tensor code = tensor1d(const_cast<float*>(bnb_table_dynamic_signed), BNB_DTYPE_F32, 256);
    bnb_tensor values = nested ? tensor1d(qabsmax.data(), BNB_DTYPE_U8, blocks) : tensor1d(absmax.data(), BNB_DTYPE_F32, blocks);
    bnb_tensor nested_absmax_t = tensor1d(nested_absmax.data(), BNB_DTYPE_F32, (int64_t)nested_absmax.size());
    bnb_absmax scales = {sizeof(bnb_absmax), nested ? 1 : 0, &values, nested ? &nested_absmax_t : nullptr,
                         nested ? &code : nullptr, nested ? nested_blocksize : 0, nested ? 0.125f : 0.0f};
    const size_t out_bytes = (size_t)n * bnb_dtype_size(out_dtype);
    std::vector<uint8_t> ref((size_t)out_bytes + 4, 0xAB), got((size_t)out_bytes + 4, 0xAB);
    bnb_tensor ro = tensor1d(ref.data(), out_dtype, n), go = tensor1d(got.data(), out_dtype, n);
    check_status(bnb_ref_dequantize_blockwise(context(), &codes_t, &scales, &code, blocksize, &ro), "reference");

    bnb_dequantize_blockwise_args args;
    check_status(bnb_validate_dequantize_blockwise("dequantize_blockwise", context(), &codes_t, &scales, &code,
                                                   blocksize, &go, &args),
                 "validate");
    bnb_metal::DequantizePlan plan;
    bnb_metal::plan_dequantize_blockwise(args, &plan);
    check(plan.out_bytes == out_bytes, what + ": planned output size");
    launch_threads((uint)bnb_metal::min_u64(plan.threads, 97), [&](uint gid, uint threads) {
        bnb_dequantize_blockwise((const uchar*)plan.input.data, (const float*)plan.table.data,
                                 (const uchar*)plan.scales.scales.data, (const float*)plan.scales.nested_absmax.data,
                                 (const float*)plan.scales.nested_code.data, (uchar*)args.out, plan.params, gid, threads);
    });
    check(ref == got, what + ": output bytes");
}

// ─── 4-bit ───────────────────────────────────────────────────────────────────────────────────────────────────

void test_quantize_4bit(int32_t dtype, int32_t quant_type, int64_t blocksize, int64_t n, bool specials) {
    const std::string what = describe("quantize_4bit", dtype, n, blocksize, quant_type == BNB_QUANT_NF4 ? "nf4" : "fp4");
    std::vector<uint8_t> input = make_input(dtype, n, blocksize, (unsigned)(n * 17 + blocksize + quant_type), specials);
    const int64_t blocks = bnb_ceil_div(n, blocksize), bytes = n / 2 + n % 2;
    std::vector<uint8_t> ref_packed((size_t)bytes + 1, 0xEE), got_packed((size_t)bytes + 1, 0xEE);
    std::vector<float> ref_absmax((size_t)blocks + 1, -1.0f), got_absmax((size_t)blocks + 1, -1.0f);
    bnb_tensor A = tensor1d(input.data(), dtype, n);
    bnb_tensor rp = tensor1d(ref_packed.data(), BNB_DTYPE_U8, bytes), ra = tensor1d(ref_absmax.data(), BNB_DTYPE_F32, blocks);
    bnb_tensor gp = tensor1d(got_packed.data(), BNB_DTYPE_U8, bytes), ga = tensor1d(got_absmax.data(), BNB_DTYPE_F32, blocks);
    check_status(bnb_ref_quantize_4bit(context(), &A, quant_type, blocksize, &rp, &ra), "reference");

    bnb_quantize_4bit_args args;
    check_status(bnb_validate_quantize_4bit("quantize_4bit", context(), &A, quant_type, blocksize, &gp, &ga, &args), "validate");
    bnb_metal::Quantize4bitPlan plan;
    bnb_metal::plan_quantize_4bit(args, &plan);
    launch_groups((uint)bnb_metal::min_u64(plan.groups, 3), g_block_threads,
                  [&](float* scratch, uint tid, uint threads, uint g, uint groups) {
                      bnb_quantize_4bit((const uchar*)args.A, plan.bounds, plan.order, args.out_packed,
                                        args.out_absmax, plan.params, scratch, tid, threads, g, groups);
                  });
    check(ref_packed == got_packed, what + ": packed bytes");
    check(std::memcmp(ref_absmax.data(), got_absmax.data(), ref_absmax.size() * sizeof(float)) == 0, what + ": absmax bits");
}

void test_dequantize_4bit(int32_t out_dtype, int32_t quant_type, int64_t blocksize, int64_t n, bool nested) {
    const std::string what = describe("dequantize_4bit", out_dtype, n, blocksize, nested ? "nested" : "plain");
    std::mt19937 rng((unsigned)(n * 3 + blocksize));
    const int64_t blocks = bnb_ceil_div(n, blocksize), bytes = n / 2 + n % 2;
    std::vector<uint8_t> packed((size_t)bytes), qabsmax((size_t)blocks);
    std::vector<float> absmax((size_t)blocks);
    for (auto& c : packed) c = (uint8_t)(rng() & 0xFF);
    for (auto& a : absmax) a = (float)(rng() % 1000) / 37.0f;
    for (auto& q : qabsmax) q = (uint8_t)(rng() & 0xFF);
    std::vector<float> nested_absmax((size_t)bnb_ceil_div(blocks, 256));
    for (auto& a : nested_absmax) a = (float)(rng() % 100) / 3.0f;

    bnb_tensor packed_t = tensor1d(packed.data(), BNB_DTYPE_U8, bytes);
    bnb_tensor nested_code = tensor1d(const_cast<float*>(bnb_table_dynamic_signed), BNB_DTYPE_F32, 256);
    bnb_tensor values = nested ? tensor1d(qabsmax.data(), BNB_DTYPE_U8, blocks) : tensor1d(absmax.data(), BNB_DTYPE_F32, blocks);
    bnb_tensor nested_absmax_t = tensor1d(nested_absmax.data(), BNB_DTYPE_F32, (int64_t)nested_absmax.size());
    bnb_absmax scales = {sizeof(bnb_absmax), nested ? 1 : 0, &values, nested ? &nested_absmax_t : nullptr,
                         nested ? &nested_code : nullptr, nested ? 256 : 0, nested ? 0.75f : 0.0f};
    const size_t out_bytes = (size_t)n * bnb_dtype_size(out_dtype);
    std::vector<uint8_t> ref(out_bytes + 4, 0xAB), got(out_bytes + 4, 0xAB);
    bnb_tensor ro = tensor1d(ref.data(), out_dtype, n), go = tensor1d(got.data(), out_dtype, n);
    check_status(bnb_ref_dequantize_4bit(context(), &packed_t, &scales, quant_type, blocksize, &ro), "reference");

    bnb_dequantize_4bit_args args;
    check_status(bnb_validate_dequantize_4bit("dequantize_4bit", context(), &packed_t, &scales, quant_type, blocksize, &go, &args), "validate");
    bnb_metal::DequantizePlan plan;
    bnb_metal::plan_dequantize_4bit(args, &plan);
    launch_threads((uint)bnb_metal::min_u64(plan.threads, 61), [&](uint gid, uint threads) {
        bnb_dequantize_4bit((const uchar*)plan.input.data, (const float*)plan.table.data,
                            (const uchar*)plan.scales.scales.data, (const float*)plan.scales.nested_absmax.data,
                            (const float*)plan.scales.nested_code.data, (uchar*)args.out, plan.params, gid, threads);
    });
    check(ref == got, what + ": output bytes");
}

// ─── gemv ────────────────────────────────────────────────────────────────────────────────────────────────────

struct GemvCase {
    int64_t M, N, K, blocksize;
    int32_t a_dtype, out_dtype, bias_dtype; // bias_dtype < 0: no bias
    bool nested;
    int64_t a_pad, out_pad; // extra elements per row (row stride = cols + pad)
};

void test_gemv(const GemvCase& c) {
    char extra[120];
    std::snprintf(extra, sizeof extra, "M=%lld N=%lld K=%lld out=%s bias=%d nested=%d pads=%lld/%lld", (long long)c.M,
                  (long long)c.N, (long long)c.K, dtype_name(c.out_dtype), c.bias_dtype, c.nested ? 1 : 0,
                  (long long)c.a_pad, (long long)c.out_pad);
    const std::string what = describe("gemv_4bit", c.a_dtype, c.M * c.K, c.blocksize, extra);

    // W: quantize a random [N, K] with the reference, as a user would.
    std::vector<uint8_t> wsrc = make_input(BNB_DTYPE_F32, c.N * c.K, c.blocksize, (unsigned)(c.N * c.K), false);
    const int64_t wblocks = bnb_ceil_div(c.N * c.K, c.blocksize);
    std::vector<uint8_t> W((size_t)((c.N * c.K + 1) / 2));
    std::vector<float> wabsmax((size_t)wblocks);
    bnb_tensor wsrc_t = tensor1d(wsrc.data(), BNB_DTYPE_F32, c.N * c.K), W_t = tensor1d(W.data(), BNB_DTYPE_U8, (int64_t)W.size());
    bnb_tensor wabsmax_t = tensor1d(wabsmax.data(), BNB_DTYPE_F32, wblocks);
    check_status(bnb_ref_quantize_4bit(context(), &wsrc_t, BNB_QUANT_NF4, c.blocksize, &W_t, &wabsmax_t), "quantize W");
    // nested: codes over the absmax (any bytes do; the kernels only read them)
    std::vector<uint8_t> qabsmax((size_t)wblocks);
    for (size_t i = 0; i < qabsmax.size(); ++i) qabsmax[i] = (uint8_t)((i * 37 + 200) & 0xFF);
    std::vector<float> nested_absmax((size_t)bnb_ceil_div(wblocks, 256), 0.02f);
    bnb_tensor q_t = tensor1d(qabsmax.data(), BNB_DTYPE_U8, wblocks);
    bnb_tensor na_t = tensor1d(nested_absmax.data(), BNB_DTYPE_F32, (int64_t)nested_absmax.size());
    bnb_tensor nc_t = tensor1d(const_cast<float*>(bnb_table_dynamic_signed), BNB_DTYPE_F32, 256);
    bnb_absmax absmax = c.nested ? bnb_absmax{sizeof(bnb_absmax), 1, &q_t, &na_t, &nc_t, 256, 0.01f}
                                 : bnb_absmax{sizeof(bnb_absmax), 0, &wabsmax_t, nullptr, nullptr, 0, 0.0f};

    const int64_t a_stride = c.K + c.a_pad, out_stride = c.N + c.out_pad;
    std::vector<uint8_t> A = make_input(c.a_dtype, c.M * a_stride, 64, (unsigned)(c.M * 7 + c.K), false);
    std::vector<uint8_t> bias = make_input(c.bias_dtype < 0 ? BNB_DTYPE_F32 : c.bias_dtype, c.N, 64, 99u, false);
    const size_t out_bytes = (size_t)(c.M * out_stride) * bnb_dtype_size(c.out_dtype);
    std::vector<uint8_t> ref(out_bytes, 0xCD), got1(out_bytes, 0xCD), got64(out_bytes, 0xCD);
    bnb_tensor A_t = tensor2d(A.data(), c.a_dtype, c.M, c.K, a_stride);
    bnb_tensor bias_t = tensor1d(bias.data(), c.bias_dtype < 0 ? BNB_DTYPE_F32 : c.bias_dtype, c.N);
    const bnb_tensor* bias_p = c.bias_dtype < 0 ? nullptr : &bias_t;
    bnb_tensor ro = tensor2d(ref.data(), c.out_dtype, c.M, c.N, out_stride);
    check_status(bnb_ref_gemv_4bit(context(), &A_t, &W_t, BNB_WEIGHT_STANDARD, &absmax, BNB_QUANT_NF4, c.blocksize, bias_p, &ro), "reference");

    for (uint threads : {1u, (uint)BNB_MTL_GEMV_THREADS}) {
        std::vector<uint8_t>& got = threads == 1 ? got1 : got64;
        bnb_tensor go = tensor2d(got.data(), c.out_dtype, c.M, c.N, out_stride);
        bnb_gemm_4bit_args args;
        check_status(bnb_validate_gemm_4bit("gemv_4bit", context(), &A_t, &W_t, BNB_WEIGHT_STANDARD, BNB_WEIGHT_STANDARD,
                                            &absmax, BNB_QUANT_NF4, c.blocksize, bias_p, &go, &args),
                     "validate");
        bnb_metal::GemvPlan plan;
        bnb_metal::plan_gemv_4bit(args, &plan);
        check(plan.out_bytes == (size_t)((c.M - 1) * out_stride + c.N) * bnb_dtype_size(c.out_dtype), what + ": planned out span");
        launch_groups((uint)bnb_metal::min_u64(plan.groups, 5), threads, [&](float* scratch, uint tid, uint n, uint g, uint groups) {
            bnb_gemv_4bit((const uchar*)plan.A.data, (const uchar*)plan.W.data, (const uchar*)plan.scales.scales.data,
                          (const float*)plan.scales.nested_absmax.data, (const float*)plan.scales.nested_code.data,
                          (const float*)plan.table.data, (const uchar*)plan.bias.data, (uchar*)args.out.data,
                          plan.params, scratch, tid, n, g, groups);
        });
    }
    // One thread per group sums in the reference's order: identical bytes (row gaps untouched as well).
    check(ref == got1, what + ": 1 thread/group, bytes");
    // The production group size reorders the float32 sum: compare against the reference within its rounding.
    bool close = true;
    for (int64_t m = 0; m < c.M; ++m) {
        for (int64_t n = 0; n < c.N; ++n) {
            const int64_t i = m * out_stride + n;
            const float r = bnb_load_float(ref.data(), c.out_dtype, i), g = bnb_load_float(got64.data(), c.out_dtype, i);
            const float ulp = c.out_dtype == BNB_DTYPE_F16 ? 1.0f / 1024 : c.out_dtype == BNB_DTYPE_BF16 ? 1.0f / 128 : 0.0f;
            if (!(std::fabs(r - g) <= 1e-4f * (std::fabs(r) + 1.0f) + ulp * std::fabs(r))) close = false;
        }
        for (int64_t n = c.N; n < out_stride; ++n) { // gaps between rows stay as they were
            const size_t e = (size_t)(m * out_stride + n) * bnb_dtype_size(c.out_dtype);
            if (got64[e] != 0xCD) close = false;
        }
    }
    check(close, what + ": 64 threads/group, within float32 rounding");
}

// ─── per-element helpers against the reference, over many inputs (rare rounding cases the kernels' data may miss) ─

float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

void test_helpers() {
    std::mt19937 rng(2024);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    int lut_bad = 0, bf16_bad = 0, scaled_bad = 0, search_bad = 0;
    // LUT bins: uniform values and values within a few ulps of the bin edges t * 65535 + 0.5 = k, plus NaN / ±Inf /
    // out-of-range through the reciprocal. (An exhaustive scan of every float v in [-1, 1] found no v whose bin
    // changes if the multiply-add is not fused; the kernel keeps fma() to follow the reference formula.)
    for (int i = 0; i < 400000; ++i) {
        float x;
        float inv = 1.0f;
        if (i % 2 == 0) {
            x = unit(rng);
            inv = 1.0f + (float)(rng() % 1000) / 3000.0f;
        } else {
            const float k = (float)(rng() % 65535) + 0.5f; // t = k / 65535 lands exactly on a bin edge
            x = 2.0f * (k / 65535.0f) - 1.0f;
            for (int step = (int)(rng() % 7) - 3; step != 0; step += step > 0 ? -1 : 1)
                x = std::nextafter(x, step > 0 ? 2.0f : -2.0f);
        }
        if (bnb_lut_index(x, inv) != bnb_ref_lut_index(x, inv)) ++lut_bad;
    }
    for (float x : {NAN, INFINITY, -INFINITY, 3.0f, -3.0f, 0.0f, -0.0f})
        if (bnb_lut_index(x, 0.5f) != bnb_ref_lut_index(x, 0.5f)) ++lut_bad;
    check(lut_bad == 0, "bnb_lut_index == bnb_ref_lut_index (fused multiply-add, truncation, NaN)");

    // bf16 stores: random bit patterns (NaNs, subnormals, infinities, ties included).
    for (int i = 0; i < 1000000; ++i) {
        const uint32_t u = (uint32_t)rng();
        if (bnb_bf16_bits(f32_from_bits(u)) != bnb_f32_to_bf16(f32_from_bits(u))) ++bf16_bad;
    }
    check(bf16_bad == 0, "bnb_bf16_bits == bnb_f32_to_bf16");

    // Scaling of §2.5.2: full blocks multiply by f32(1 / max(a, 1e-38)), the short tail divides by max(a, 1e-38).
    for (int i = 0; i < 400000; ++i) {
        const float a = i % 1000 == 0 ? 3e-39f : std::fabs(unit(rng)) * 10.0f + 1e-3f;
        const float x = unit(rng) * a;
        const float clamped = std::fmax(a, 1e-38f);
        const bool tail = (i & 1) != 0;
        float expected = tail ? x / clamped : x * (1.0f / clamped);
        expected = expected > 1.0f ? 1.0f : expected < -1.0f ? -1.0f : expected;
        const float got = bnb_scaled(x, a, bnb_clamped_absmax(a), 1.0f / bnb_clamped_absmax(a), tail);
        if (std::memcmp(&got, &expected, sizeof got) != 0) ++scaled_bad;
    }
    check(scaled_bad == 0, "bnb_scaled: reciprocal multiply (full block) and division (tail), clamp");

    // Code search: the signed dynamic map's midpoints, at and around every midpoint.
    float mid[255];
    bnb_ref_code_midpoints(bnb_table_dynamic_signed, 256, mid);
    for (int j = 0; j < 255; ++j) {
        for (float s : {mid[j], std::nextafter(mid[j], 2.0f), std::nextafter(mid[j], -2.0f)})
            if (bnb_count_below(mid, 255, s) != bnb_ref_count_below(mid, 255, s)) ++search_bad;
    }
    if (bnb_count_below(mid, 255, NAN) != 0) ++search_bad;
    check(search_bad == 0, "bnb_count_below == bnb_ref_count_below (ties to the lower index, NaN → 0)");
}

} // namespace

int main() {
    test_helpers();

    g_block_threads = BNB_MTL_BLOCK_THREADS; // the production group size, once per kernel
    test_quantize_blockwise(BNB_DTYPE_F32, BNB_ROUND_NEAREST, 4096, 5000, true);
    test_quantize_blockwise(BNB_DTYPE_F16, BNB_ROUND_BNB_CPU_LUT, 256, 700, true);
    test_quantize_4bit(BNB_DTYPE_BF16, BNB_QUANT_NF4, 2048, 4097, true);
    g_block_threads = 32;

    const int32_t float_dtypes[] = {BNB_DTYPE_F32, BNB_DTYPE_F16, BNB_DTYPE_BF16};
    for (int32_t dtype : float_dtypes) {
        for (int32_t rounding : {BNB_ROUND_NEAREST, BNB_ROUND_BNB_CPU_LUT}) {
            test_quantize_blockwise(dtype, rounding, 64, 1000, true);   // tail block of 40
            test_quantize_blockwise(dtype, rounding, 256, 4096, true);  // whole blocks, > 3 groups
            test_quantize_blockwise(dtype, rounding, 4096, 4100, false); // blocks larger than the group
            test_quantize_blockwise(dtype, rounding, 32, 33, true);     // a 1-element tail
        }
        for (int32_t qt : {BNB_QUANT_NF4, BNB_QUANT_FP4}) {
            test_quantize_4bit(dtype, qt, 64, 1001, true); // odd n: padded low nibble
            test_quantize_4bit(dtype, qt, 32, 4096, true);
            test_quantize_4bit(dtype, qt, 1024, 3000, false);
            test_quantize_4bit(dtype, qt, 64, 1, false);
        }
        for (bool nested : {false, true}) {
            test_dequantize_blockwise(dtype, 64, 777, nested);
            test_dequantize_blockwise(dtype, 4096, 9000, nested);
            test_dequantize_4bit(dtype, BNB_QUANT_NF4, 64, 1001, nested);
            test_dequantize_4bit(dtype, BNB_QUANT_FP4, 128, 20000, nested);
        }
    }
    test_gemv({1, 33, 256, 64, BNB_DTYPE_F32, BNB_DTYPE_F32, -1, false, 0, 0});
    test_gemv({3, 16, 200, 64, BNB_DTYPE_F16, BNB_DTYPE_F16, BNB_DTYPE_F32, true, 5, 3});
    test_gemv({2, 8, 1024, 256, BNB_DTYPE_BF16, BNB_DTYPE_BF16, BNB_DTYPE_BF16, false, 0, 1});
    test_gemv({4, 7, 96, 32, BNB_DTYPE_F32, BNB_DTYPE_F16, BNB_DTYPE_F16, true, 2, 0});

    std::printf("metal_shim_test: %d checks, %d failed\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
