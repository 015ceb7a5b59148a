/* dtype names/sizes and portable float16 / bfloat16 conversions (round to nearest even, as F16C and bitsandbytes). */
#include "bnb_common.h"

#include <math.h>
#include <string.h>

const char* bnb_dtype_name(int32_t dtype) {
    switch (dtype) {
    case BNB_DTYPE_F32: return "f32";
    case BNB_DTYPE_F16: return "f16";
    case BNB_DTYPE_BF16: return "bf16";
    case BNB_DTYPE_U8: return "u8";
    case BNB_DTYPE_I8: return "i8";
    case BNB_DTYPE_I32: return "i32";
    case BNB_DTYPE_I64: return "i64";
    case BNB_DTYPE_F64: return "f64";
    default: return "invalid";
    }
}

size_t bnb_dtype_size(int32_t dtype) {
    switch (dtype) {
    case BNB_DTYPE_F32: return 4;
    case BNB_DTYPE_F16: return 2;
    case BNB_DTYPE_BF16: return 2;
    case BNB_DTYPE_U8: return 1;
    case BNB_DTYPE_I8: return 1;
    case BNB_DTYPE_I32: return 4;
    case BNB_DTYPE_I64: return 8;
    case BNB_DTYPE_F64: return 8;
    default: return 0;
    }
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int bnb_is_finite_f32(float v) { return (f32_bits(v) & 0x7F800000u) != 0x7F800000u; }

/* binary16: 1 sign | 5 exponent (bias 15) | 10 mantissa. */
float bnb_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) return bits_f32(sign | 0x7F800000u | (mantissa << 13)); /* inf / NaN */
    if (exponent != 0) return bits_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return bits_f32(sign);
    /* subnormal: value = mantissa * 2^-24, exact in binary32 */
    const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
}

uint16_t bnb_f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t abs_bits = u & 0x7FFFFFFFu;
    if (abs_bits > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((abs_bits >> 13) & 0x3FFu)); /* NaN, quiet */
    if (abs_bits >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to >= 65520 → inf */
    if (abs_bits < 0x38800000u) {
        /* result is subnormal (or zero): scale to units of 2^-24 and round half to even on the integer */
        const float magnitude = bits_f32(abs_bits) * 16777216.0f; /* exact: power-of-two scaling */
        const float rounded = nearbyintf(magnitude);              /* default FP environment: ties to even */
        return (uint16_t)(sign | (uint16_t)rounded);
    }
    /* normal: drop 13 mantissa bits with round-half-even; a carry into the exponent is the correct result */
    const uint32_t rebased = abs_bits - (112u << 23);
    const uint32_t rounded = rebased + 0x0FFFu + ((rebased >> 13) & 1u);
    return (uint16_t)(sign | (uint16_t)(rounded >> 13));
}

float bnb_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t bnb_f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN stays NaN, quiet */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float bnb_fmaf(float a, float b, float c) {
#if defined(__FMA__) || defined(__aarch64__) || defined(_M_ARM64)
    return fmaf(a, b, c);
#else
    /* The product of two floats is exact in double (48 significant bits); the sum rounds once to double, and the
     * error of that rounding is recovered exactly (Knuth's TwoSum). Converting the double to float rounds again:
     * that second rounding is wrong only when the double lands exactly halfway between two floats while the true
     * value is not there — then the recovered error says which neighbour is nearer. */
    const double product = (double)a * (double)b;
    const double sum = product + (double)c;
    if (!isfinite(sum)) return (float)sum;
    const double c_part = sum - product;
    const double error = (product - (sum - c_part)) + ((double)c - c_part); /* exact: sum + error = a*b + c */
    const float rounded = (float)sum;
    if (error == 0.0 || (double)rounded == sum) return rounded;
    /* the float on the other side of `sum` from `rounded`, and the midpoint between the two */
    const float other = nextafterf(rounded, sum > (double)rounded ? INFINITY : -INFINITY);
    const double midpoint = ((double)rounded + (double)other) * 0.5; /* exact in double */
    if (sum != midpoint) return rounded; /* not a tie: the first rounding cannot have changed the float result */
    /* A tie in double that is not a tie in reals: the true value lies on the side the error points to. */
    const int true_above = error > 0.0;
    const int other_above = (double)other > sum;
    return true_above == other_above ? other : rounded;
#endif
}
