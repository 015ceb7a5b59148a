/* optim_vec.h — a thin float/int32 vector layer over AVX-512, AVX2 and NEON for the int8 and optimizer kernels.
 *
 * Every operation is the IEEE single-precision operation of the scalar reference, lane by lane: add, mul, div,
 * sqrt round once; vf_fma is fmaf (one rounding); conversions round to nearest even like the reference's
 * nearbyintf and bnb_f32_to_f16/bf16 (NaN payloads included). Nothing here reassociates or contracts, so a kernel
 * written with these calls in the reference's order gives the reference's bits.
 *
 * VW lanes per vector: 16 (AVX-512), 8 (AVX2), 4 (NEON).
 */
#ifndef BNB_OPTIM_VEC_H
#define BNB_OPTIM_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VW 16
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_load(const float* p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float* p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
/* max/min of (a, b) returning b when either is NaN (x86 semantics; vf_max_num below ignores NaN in a) */
static inline vf vf_max_num(vf x, vf acc) { return _mm512_max_ps(x, acc); }
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_nan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline vf vf_sel(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); } /* m ? a : b */
static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline vm vm_andnot(vm a, vm b) { return (vm)(~a & b); } /* !a && b */
static inline int vm_any(vm m) { return m != 0; }
static inline vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sel(vm m, vi a, vi b) { return _mm512_mask_blend_epi32(m, b, a); }
static inline vi vi_inc(vm m, vi a) { return _mm512_mask_add_epi32(a, m, a, _mm512_set1_epi32(1)); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_srl(vi a, int s) { return _mm512_srlv_epi32(a, _mm512_set1_epi32(s)); }
static inline vi vi_xor(vi a, vi b) { return _mm512_xor_si512(a, b); }
static inline vi vf_bits(vf a) { return _mm512_castps_si512(a); }
static inline vf vi_as_f(vi a) { return _mm512_castsi512_ps(a); }
static inline vf vi_to_f(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vi vf_to_i_rne(vf a) { return _mm512_cvtps_epi32(a); }    /* MXCSR default: nearest even */
static inline vi vf_to_i_trunc(vf a) { return _mm512_cvttps_epi32(a); }
static inline vf vf_gather(const float* t, vi idx) { return _mm512_i32gather_ps(idx, t, 4); }
static inline vi vi_gather(const int32_t* t, vi idx) { return _mm512_i32gather_epi32(idx, t, 4); }
static inline vi vi_load_u8(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)); }
static inline vi vi_load_i8(const int8_t* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)); }
static inline void vi_store_u8(uint8_t* p, vi v) { _mm_storeu_si128((__m128i*)p, _mm512_cvtepi32_epi8(v)); }
/* values already in [-128, 127] */
static inline void vi_store_i8(int8_t* p, vi v) { _mm_storeu_si128((__m128i*)p, _mm512_cvtepi32_epi8(v)); }
static inline vi vi_load(const int32_t* p) { return _mm512_loadu_si512((const void*)p); }
static inline vf vf_load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
static inline vf vf_load_bf16(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}
static inline void vf_store_f16(uint16_t* p, vf v) {
    _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline void vf_store_bf16_bits(uint16_t* p, vi r) { _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(r)); }

#elif defined(__AVX2__)
#include <immintrin.h>
#define VW 8
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_load(const float* p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float* p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_max_num(vf x, vf acc) { return _mm256_max_ps(x, acc); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_nan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline vf vf_sel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm vm_andnot(vm a, vm b) { return _mm256_andnot_ps(a, b); }
static inline int vm_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sel(vm m, vi a, vi b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
}
static inline vi vi_inc(vm m, vi a) { return _mm256_sub_epi32(a, _mm256_castps_si256(m)); } /* mask lane = -1 */
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_srl(vi a, int s) { return _mm256_srlv_epi32(a, _mm256_set1_epi32(s)); }
static inline vi vi_xor(vi a, vi b) { return _mm256_xor_si256(a, b); }
static inline vi vf_bits(vf a) { return _mm256_castps_si256(a); }
static inline vf vi_as_f(vi a) { return _mm256_castsi256_ps(a); }
static inline vf vi_to_f(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vi vf_to_i_rne(vf a) { return _mm256_cvtps_epi32(a); }
static inline vi vf_to_i_trunc(vf a) { return _mm256_cvttps_epi32(a); }
static inline vf vf_gather(const float* t, vi idx) { return _mm256_i32gather_ps(t, idx, 4); }
static inline vi vi_gather(const int32_t* t, vi idx) { return _mm256_i32gather_epi32((const int*)t, idx, 4); }
static inline vi vi_load_u8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
static inline vi vi_load_i8(const int8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
/* lanes hold values of one byte: pack 32 → 16 → 8 bits (saturation never triggers) */
static inline __m128i vi_pack8(vi v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return w;
}
static inline void vi_store_u8(uint8_t* p, vi v) { _mm_storel_epi64((__m128i*)p, _mm_packus_epi16(vi_pack8(v), vi_pack8(v))); }
static inline void vi_store_i8(int8_t* p, vi v) { _mm_storel_epi64((__m128i*)p, _mm_packs_epi16(vi_pack8(v), vi_pack8(v))); }
static inline vi vi_load(const int32_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
static inline vf vf_load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
static inline vf vf_load_bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
static inline void vf_store_f16(uint16_t* p, vf v) {
    _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline void vf_store_bf16_bits(uint16_t* p, vi r) {
    /* r holds 16-bit values in 32-bit lanes: packus keeps them (all < 65536) */
    const __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128((__m128i*)p, _mm_packus_epi32(lo, hi));
}

#elif defined(__ARM_NEON)
#include <arm_neon.h>
#define VW 4
typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vm;
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_load(const float* p) { return vld1q_f32(p); }
static inline void vf_store(float* p, vf v) { vst1q_f32(p, v); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
/* x86 max semantics (NaN in x → acc): maxnm ignores a NaN operand, and acc is never NaN where it is used */
static inline vf vf_max_num(vf x, vf acc) { return vmaxnmq_f32(x, acc); }
static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm vf_ge(vf a, vf b) { return vcgeq_f32(a, b); }
static inline vm vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vf_nan(vf a) { return vmvnq_u32(vceqq_f32(a, a)); }
static inline vf vf_sel(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline vm vm_andnot(vm a, vm b) { return vbicq_u32(b, a); }
static inline int vm_any(vm m) { return vmaxvq_u32(m) != 0; }
static inline vi vi_set1(int32_t x) { return vdupq_n_s32(x); }
static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline vi vi_sel(vm m, vi a, vi b) { return vbslq_s32(m, a, b); }
static inline vi vi_inc(vm m, vi a) { return vsubq_s32(a, vreinterpretq_s32_u32(m)); }
static inline vi vi_and(vi a, vi b) { return vandq_s32(a, b); }
static inline vi vi_srl(vi a, int s) {
    return vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a), vdupq_n_s32(-s)));
}
static inline vi vi_xor(vi a, vi b) { return veorq_s32(a, b); }
static inline vi vf_bits(vf a) { return vreinterpretq_s32_f32(a); }
static inline vf vi_as_f(vi a) { return vreinterpretq_f32_s32(a); }
static inline vf vi_to_f(vi a) { return vcvtq_f32_s32(a); }
static inline vi vf_to_i_rne(vf a) { return vcvtnq_s32_f32(a); }
static inline vi vf_to_i_trunc(vf a) { return vcvtq_s32_f32(a); }
static inline vf vf_gather(const float* t, vi idx) {
    int32_t i[4];
    vst1q_s32(i, idx);
    const float v[4] = {t[i[0]], t[i[1]], t[i[2]], t[i[3]]};
    return vld1q_f32(v);
}
static inline vi vi_gather(const int32_t* t, vi idx) {
    int32_t i[4];
    vst1q_s32(i, idx);
    const int32_t v[4] = {t[i[0]], t[i[1]], t[i[2]], t[i[3]]};
    return vld1q_s32(v);
}
static inline vi vi_load_u8(const uint8_t* p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(w)))));
}
static inline vi vi_load_i8(const int8_t* p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return vmovl_s16(vget_low_s16(vmovl_s8(vcreate_s8(w))));
}
static inline void vi_store_u8(uint8_t* p, vi v) {
    const uint16x4_t h = vmovn_u32(vreinterpretq_u32_s32(v));
    const uint8x8_t b = vmovn_u16(vcombine_u16(h, h));
    const uint32_t w = vget_lane_u32(vreinterpret_u32_u8(b), 0);
    memcpy(p, &w, 4);
}
static inline void vi_store_i8(int8_t* p, vi v) { vi_store_u8((uint8_t*)p, v); }
static inline vi vi_load(const int32_t* p) { return vld1q_s32(p); }
static inline vf vf_load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline vf vf_load_bf16(const uint16_t* p) {
    return vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16(p)), 16));
}
static inline void vf_store_f16(uint16_t* p, vf v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
static inline void vf_store_bf16_bits(uint16_t* p, vi r) { vst1_u16(p, vmovn_u32(vreinterpretq_u32_s32(r))); }
#else
#error "optim_vec.h needs AVX-512, AVX2 or NEON"
#endif

/* bnb_f32_to_bf16, lane-wise: RNE on the bits; NaN → (u >> 16) | 0x40. */
static inline void vf_store_bf16(uint16_t* p, vf v) {
    const vi u = vf_bits(v);
    const vi lsb = vi_and(vi_srl(u, 16), vi_set1(1));
    const vi rounded = vi_srl(vi_add(vi_add(u, vi_set1(0x7FFF)), lsb), 16);
    const vi high = vi_srl(u, 16);
    const vi quiet = vi_xor(vi_and(high, vi_set1(~0x40)), vi_set1(0x40)); /* high | 0x40 */
    const vi nan_bits = vi_sel(vf_nan(v), quiet, rounded);
    vf_store_bf16_bits(p, nan_bits);
}

/* Float load/store of VW elements of a f32/f16/bf16 array at element offset i. */
static inline vf vf_load_any(const void* data, int32_t dtype, int64_t i) {
    if (dtype == BNB_DTYPE_F16) return vf_load_f16((const uint16_t*)data + i);
    if (dtype == BNB_DTYPE_BF16) return vf_load_bf16((const uint16_t*)data + i);
    return vf_load((const float*)data + i);
}
static inline void vf_store_any(void* data, int32_t dtype, int64_t i, vf v) {
    if (dtype == BNB_DTYPE_F16) vf_store_f16((uint16_t*)data + i, v);
    else if (dtype == BNB_DTYPE_BF16) vf_store_bf16((uint16_t*)data + i, v);
    else vf_store((float*)data + i, v);
}

/* bnb_int8_round lane-wise: NaN → 0, saturate to [-128, 127], nearest even. */
static inline vi vf_round_i8(vf v) {
    vf c = vf_sel(vf_gt(v, vf_set1(127.0f)), vf_set1(127.0f), v);
    c = vf_sel(vf_lt(c, vf_set1(-128.0f)), vf_set1(-128.0f), c);
    return vi_sel(vf_nan(v), vi_set1(0), vf_to_i_rne(c));
}

#endif /* BNB_OPTIM_VEC_H */
