// Exercises bindings/cpp/bnb.hpp against a real backend: RAII lifetimes, status → bnb::error with the backend's
// message, and a 4-bit round trip. Usage: bnb_hpp_test <backend-library>
#include "bnb.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        ++failures;
        std::fprintf(stderr, "FAIL: %s\n", what);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <backend-library>\n", argv[0]);
        return 2;
    }

    // A missing file is an error, not a crash.
    try {
        bnb::backend missing("/nonexistent/libbnb_nothing.so");
        expect(false, "loading a missing library must throw");
    } catch (const bnb::error& e) {
        expect(std::string(e.what()).find("libbnb_nothing") != std::string::npos, "message names the file");
    }

    bnb::backend lib(argv[1]);
    expect(lib.probe_score() > 0, "reference backend runs everywhere");
    const bnb_backend_info info = lib.info();
    expect(info.abi_major == BNB_ABI_MAJOR, "ABI major");
    bnb::context ctx(lib, 1);

    // The NF4 table comes from the backend (one definition of every number); its widest gap bounds the error.
    float nf4[16];
    bnb_tensor T = bnb::tensor_1d(nf4, BNB_DTYPE_F32, 16);
    lib.check(lib.api().get_code_table(BNB_TABLE_NF4, &T), "get_code_table");
    double widest_gap = 0.0;
    for (int i = 0; i < 15; ++i) widest_gap = std::fmax(widest_gap, static_cast<double>(nf4[i + 1] - nf4[i]));

    // 4-bit round trip: every element within half the widest NF4 gap times its block's absmax.
    const int64_t n = 1000, blocksize = 64, blocks = (n + blocksize - 1) / blocksize;
    std::vector<float> x(n), back(n), absmax(blocks);
    std::vector<uint8_t> packed((n + 1) / 2);
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
    bnb_tensor A = bnb::tensor_1d(x.data(), BNB_DTYPE_F32, n);
    bnb_tensor P = bnb::tensor_1d(packed.data(), BNB_DTYPE_U8, static_cast<int64_t>(packed.size()));
    bnb_tensor M = bnb::tensor_1d(absmax.data(), BNB_DTYPE_F32, blocks);
    bnb_tensor B = bnb::tensor_1d(back.data(), BNB_DTYPE_F32, n);
    lib.check(lib.api().quantize_4bit(ctx, &A, BNB_QUANT_NF4, blocksize, &P, &M), "quantize_4bit");
    bnb_absmax scales{};
    scales.struct_size = sizeof scales;
    scales.values = &M;
    lib.check(lib.api().dequantize_4bit(ctx, &P, &scales, BNB_QUANT_NF4, blocksize, &B), "dequantize_4bit");
    double worst = 0.0;
    for (int64_t i = 0; i < n; ++i)
        worst = std::fmax(worst, std::fabs(x[i] - back[i]) / absmax[i / blocksize]);
    expect(worst > 0.0 && worst <= 0.5 * widest_gap + 1e-6, "NF4 round trip within half the widest code gap");

    // A bad blocksize becomes bnb::error with the specific status and a message naming the value.
    try {
        lib.check(lib.api().quantize_4bit(ctx, &A, BNB_QUANT_NF4, 100, &P, &M), "quantize_4bit");
        expect(false, "blocksize 100 must fail");
    } catch (const bnb::error& e) {
        expect(e.status() == BNB_ERR_INVALID_BLOCKSIZE, "status is INVALID_BLOCKSIZE");
        const std::string message = e.what();
        expect(message.find("blocksize") != std::string::npos && message.find("100") != std::string::npos,
               "message names blocksize and 100");
    }

    if (failures == 0) std::printf("bnb.hpp: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
