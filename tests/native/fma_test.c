/* bnb_fmaf must be a correctly rounded fused multiply-add on every platform (mingw-w64's fmaf is not). Checked
 * against the hardware FMA instruction on x86-64 CPUs that have it, over random operands and over operands built
 * so that a*b + c lands exactly halfway between two floats in double (the double-rounding trap). */
#include "unit_check.h"

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
__attribute__((target("fma"))) static float hardware_fma(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
static int have_hardware_fma(void) { return __builtin_cpu_supports("fma"); }
#else
static float hardware_fma(float a, float b, float c) { return fmaf(a, b, c); } /* AArch64: fmaf is the instruction */
static int have_hardware_fma(void) {
#if defined(__aarch64__)
    return 1;
#else
    return 0;
#endif
}
#endif

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 32);
}
static float random_float(int exponent_span) {
    const float mantissa = 1.0f + (float)(next_u32() & 0x7FFFFF) / 8388608.0f;
    const int exponent = (int)(next_u32() % (uint32_t)(2 * exponent_span + 1)) - exponent_span;
    return ((next_u32() & 1) ? -1.0f : 1.0f) * ldexpf(mantissa, exponent);
}

static int same_bits(float x, float y) { return x == y ? (x != 0.0f || signbit(x) == signbit(y)) : (x != x && y != y); }

int main(void) {
    /* exact cases that need no hardware to check */
    CHECK(bnb_fmaf(2.0f, 3.0f, 1.0f) == 7.0f);
    CHECK(bnb_fmaf(0.5f, 65535.0f, 0.5f) == 32768.0f);
    CHECK(isnan(bnb_fmaf(NAN, 1.0f, 0.0f)));
    CHECK(isinf(bnb_fmaf(3e38f, 10.0f, 0.0f)));
    /* (2^-12 + 2^-30)(2^-12 - 2^-30) + (1 + 2^-23) = 1 + 3·2^-24 - 2^-60: in double it rounds onto the float
     * midpoint 1 + 3·2^-24, whose even neighbour is 1 + 2^-22; the true value lies below, so 1 + 2^-23 is right */
    CHECK(bnb_fmaf(0x1p-12f + 0x1p-30f, 0x1p-12f - 0x1p-30f, 1.0f + 0x1p-23f) == 1.0f + 0x1p-23f);

    if (!have_hardware_fma()) {
        printf("no hardware FMA on this CPU: random comparison skipped\n");
        return bnbt_finish("fma_test");
    }
    int mismatches = 0;
    for (int i = 0; i < 2000000; ++i) {
        float a, b, c;
        if (i % 2 == 0) {
            a = random_float(20), b = random_float(20), c = random_float(40);
        } else {
            /* LUT-index shaped operands, where bitsandbytes' quantizer lives: t in [0, 1], 65535, 0.5 */
            a = (float)(next_u32() & 0xFFFFFF) / 16777216.0f, b = 65535.0f, c = 0.5f;
        }
        const float want = hardware_fma(a, b, c), got = bnb_fmaf(a, b, c);
        if (!same_bits(want, got) && mismatches++ < 5)
            printf("FAIL fma(%a, %a, %a): hardware %a, bnb_fmaf %a\n", (double)a, (double)b, (double)c, (double)want,
                   (double)got);
    }
    CHECK(mismatches == 0);
    return bnbt_finish("fma_test");
}
