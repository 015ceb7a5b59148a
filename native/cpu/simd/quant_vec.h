/* quant_vec.h — the vector primitives of ops_quant.c, one set per ISA (AVX-512, AVX2, NEON).
 *
 * Every primitive is exact: loads convert f16/bf16 to f32 exactly, stores round to nearest even exactly as
 * bnb_store_float, the code searches return the same index as bnb_ref_count_below (a branch-free binary search
 * over the sorted bounds, whose comparisons are the reference's `bound < s`), so the kernels built on them give
 * the reference's bytes. QV_W lanes per vector; QV_W divides every blocksize (>= 32).
 *
 *   qv_load(p, dtype)            QV_W elements of f32/f16/bf16 at p, as f32
 *   qv_store(p, dtype, v)        QV_W elements, RNE to the dtype
 *   qv_absmax_step(m, x)         max(m, |x|) ignoring NaN (m never NaN)
 *   qv_clamp1(s)                 s clamped to [-1, 1], NaN kept
 *   qv_search8(t, s)             number of the 255 midpoints < s (NaN → 0)
 *   qv_search4(t, s)             nibble of s (bnb_ref_4bit_code)
 *   qv_store_u8(p, c)            QV_W codes (int lanes) as bytes
 *   qv_store_nibbles(p, c)       QV_W codes packed two per byte, even element high
 *   qv_dequant8(t, p)            code[p[i]] for QV_W code bytes at p
 *   qv_dequant4(t, p)            table[nibble] for QV_W nibbles in QV_W/2 bytes at p
 */
#ifndef BNB_QUANT_VEC_H
#define BNB_QUANT_VEC_H

#include "bnb_quant.h"

#include <string.h>

/* The 256 midpoints padded with +Inf (never below any s), so an 8-step binary search covers 256 positions. */
typedef struct qv_mid8 {
    float ext[256];
} qv_mid8;

static inline void qv_mid8_init(const float mid[BNB_CODE8_SIZE - 1], qv_mid8* m) {
    memcpy(m->ext, mid, sizeof(float) * (BNB_CODE8_SIZE - 1));
    m->ext[255] = __builtin_inff();
}

/* The 4-bit map padded to 16 bounds (+Inf last) and its sorted-order → nibble table. */
typedef struct qv_map4 {
    float bounds[16];
    int32_t order[16];
} qv_map4;

static inline void qv_map4_init(const bnb_4bit_map* map, qv_map4* m) {
    memcpy(m->bounds, map->bounds, sizeof(float) * 15);
    m->bounds[15] = __builtin_inff();
    for (int j = 0; j < 16; ++j) m->order[j] = map->order[j];
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* ─── AVX-512 ───────────────────────────────────────────────────────────────────────────────────────────── */
#include <immintrin.h>
#define QV_W 16
#define QV_HAVE_VECTOR 1
typedef __m512 qv_f;
typedef __m512i qv_i;

static inline qv_f qv_load(const void* p, int32_t dtype) {
    switch (dtype) {
    case BNB_DTYPE_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
    case BNB_DTYPE_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
    default: return _mm512_loadu_ps(p);
    }
}
/* f32 → bf16 bits as bnb_f32_to_bf16: RNE on the integer, NaN → (u >> 16) | 0x40 */
static inline qv_i qv_bf16_bits(qv_f v) {
    const qv_i u = _mm512_castps_si512(v);
    const qv_i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const qv_i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    const qv_i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, q);
}
static inline void qv_store(void* p, int32_t dtype, qv_f v) {
    switch (dtype) {
    case BNB_DTYPE_F16:
        _mm256_storeu_si256((__m256i*)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        break;
    case BNB_DTYPE_BF16: _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(qv_bf16_bits(v))); break;
    default: _mm512_storeu_ps(p, v); break;
    }
}
static inline qv_f qv_zero(void) { return _mm512_setzero_ps(); }
static inline qv_f qv_set1(float v) { return _mm512_set1_ps(v); }
static inline qv_f qv_mul(qv_f a, qv_f b) { return _mm512_mul_ps(a, b); }
static inline qv_f qv_div(qv_f a, qv_f b) { return _mm512_div_ps(a, b); }
static inline qv_f qv_add(qv_f a, qv_f b) { return _mm512_add_ps(a, b); }
static inline qv_f qv_sub(qv_f a, qv_f b) { return _mm512_sub_ps(a, b); }
static inline qv_f qv_fma(qv_f a, qv_f b, qv_f c) { return _mm512_fmadd_ps(a, b, c); }
/* max_ps returns its second operand when either is NaN: m survives a NaN x */
static inline qv_f qv_absmax_step(qv_f m, qv_f x) { return _mm512_max_ps(_mm512_abs_ps(x), m); }
static inline float qv_hmax(qv_f m) { return _mm512_reduce_max_ps(m); }
static inline qv_f qv_clamp1(qv_f s) {
    return _mm512_max_ps(_mm512_set1_ps(-1.0f), _mm512_min_ps(_mm512_set1_ps(1.0f), s)); /* NaN: 2nd operand */
}
/* (int32) truncation; NaN → INT_MIN as the x86 cast the reference emulates */
static inline qv_i qv_lut_bin(qv_f f) {
    return _mm512_and_si512(_mm512_cvttps_epi32(f), _mm512_set1_epi32(0xFFFF));
}
static inline qv_f qv_i2f(qv_i i) { return _mm512_cvtepi32_ps(i); }

/* Level tables of the 8-step search: at step s the candidate is ext[pos + s - 1] with pos a multiple of 2s, so
 * level s needs the 128/s values ext[k*2s + s - 1] indexed by k = pos / 2s: one vpermps up to 16 candidates,
 * vpermt2ps for 32, two/four of them for 64/128. */
typedef struct qv_search8_tab {
    __m512 l1, l2, l4, l8, l16; /* steps 128, 64, 32, 16, 8 */
    __m512 l32[2];              /* step 4                   */
    __m512 l64[4];              /* step 2                   */
    __m512 l128[8];             /* step 1                   */
} qv_search8_tab;

static inline void qv_search8_init(const qv_mid8* m, qv_search8_tab* t) {
    float tmp[128];
    __m512* const small[5] = {&t->l1, &t->l2, &t->l4, &t->l8, &t->l16};
    for (int level = 0; level < 8; ++level) {
        const int step = 128 >> level, count = 128 / step;
        for (int k = 0; k < 128; ++k) tmp[k] = k < count ? m->ext[k * 2 * step + step - 1] : 0.0f;
        if (level == 0) t->l1 = _mm512_set1_ps(tmp[0]); /* compared directly, without a permute */
        else if (level < 5) *small[level] = _mm512_loadu_ps(tmp);
        else {
            __m512* dst = level == 5 ? t->l32 : level == 6 ? t->l64 : t->l128;
            for (int r = 0; r < count / 16; ++r) dst[r] = _mm512_loadu_ps(tmp + 16 * r);
        }
    }
}

#define QV_STEP(cand, s, pos, step)                                                                                \
    pos = _mm512_mask_or_epi32(pos, _mm512_cmp_ps_mask(cand, s, _CMP_LT_OQ), pos, _mm512_set1_epi32(step))

static inline qv_i qv_search8(const qv_search8_tab* t, qv_f s) {
    qv_i pos = _mm512_setzero_si512();
    QV_STEP(t->l1, s, pos, 128);
    QV_STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(pos, 7), t->l2), s, pos, 64);
    QV_STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(pos, 6), t->l4), s, pos, 32);
    QV_STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(pos, 5), t->l8), s, pos, 16);
    QV_STEP(_mm512_permutexvar_ps(_mm512_srli_epi32(pos, 4), t->l16), s, pos, 8);
    qv_i k = _mm512_srli_epi32(pos, 3); /* 0..31 */
    QV_STEP(_mm512_permutex2var_ps(t->l32[0], k, t->l32[1]), s, pos, 4);
    k = _mm512_srli_epi32(pos, 2); /* 0..63: bit 5 picks the pair */
    {
        const __m512 lo = _mm512_permutex2var_ps(t->l64[0], k, t->l64[1]);
        const __m512 hi = _mm512_permutex2var_ps(t->l64[2], k, t->l64[3]);
        QV_STEP(_mm512_mask_blend_ps(_mm512_test_epi32_mask(k, _mm512_set1_epi32(32)), lo, hi), s, pos, 2);
    }
    k = _mm512_srli_epi32(pos, 1); /* 0..127: bits 5 and 6 pick one of four pairs */
    {
        const __mmask16 b5 = _mm512_test_epi32_mask(k, _mm512_set1_epi32(32));
        const __mmask16 b6 = _mm512_test_epi32_mask(k, _mm512_set1_epi32(64));
        const __m512 q0 = _mm512_permutex2var_ps(t->l128[0], k, t->l128[1]);
        const __m512 q1 = _mm512_permutex2var_ps(t->l128[2], k, t->l128[3]);
        const __m512 q2 = _mm512_permutex2var_ps(t->l128[4], k, t->l128[5]);
        const __m512 q3 = _mm512_permutex2var_ps(t->l128[6], k, t->l128[7]);
        const __m512 lo = _mm512_mask_blend_ps(b5, q0, q1), hi = _mm512_mask_blend_ps(b5, q2, q3);
        QV_STEP(_mm512_mask_blend_ps(b6, lo, hi), s, pos, 1);
    }
    return pos; /* NaN s: every comparison false → 0 */
}

typedef struct qv_search4_tab {
    __m512 bounds;
    __m512i order;
} qv_search4_tab;
static inline void qv_search4_init(const qv_map4* m, qv_search4_tab* t) {
    t->bounds = _mm512_loadu_ps(m->bounds);
    t->order = _mm512_loadu_si512(m->order);
}
static inline qv_i qv_search4(const qv_search4_tab* t, qv_f s) {
    qv_i pos = _mm512_setzero_si512();
    for (int step = 8; step >= 1; step >>= 1) {
        const __m512 cand = _mm512_permutexvar_ps(_mm512_add_epi32(pos, _mm512_set1_epi32(step - 1)), t->bounds);
        QV_STEP(cand, s, pos, step);
    }
    const qv_i nib = _mm512_permutexvar_epi32(pos, t->order);
    return _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(s, s, _CMP_ORD_Q), nib); /* NaN → nibble 0 */
}
static inline void qv_store_u8(uint8_t* p, qv_i c) { _mm_storeu_si128((__m128i*)p, _mm512_cvtepi32_epi8(c)); }
static inline void qv_store_nibbles(uint8_t* p, qv_i c) {
    /* low dword of each qword becomes (even << 4) | odd; vpmovqb keeps its low byte */
    const qv_i v = _mm512_or_si512(_mm512_slli_epi64(c, 4), _mm512_srli_epi64(c, 32));
    _mm_storel_epi64((__m128i*)p, _mm512_cvtepi64_epi8(v));
}

typedef struct qv_dq8_tab {
    const float* code;
} qv_dq8_tab;
static inline qv_f qv_dequant8(const qv_dq8_tab* t, const uint8_t* p) {
    const qv_i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p));
    return _mm512_i32gather_ps(idx, t->code, 4);
}
typedef struct qv_dq4_tab {
    __m512 table;
} qv_dq4_tab;
static inline void qv_dq4_init(const float* table, qv_dq4_tab* t) { t->table = _mm512_loadu_ps(table); }
static inline qv_f qv_dequant4(const qv_dq4_tab* t, const uint8_t* p) {
    const qv_i b = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)p));
    /* qword i = byte i → dwords (high nibble, low nibble) = elements 2i, 2i+1 */
    const qv_i e = _mm512_or_si512(_mm512_srli_epi64(b, 4),
                                   _mm512_slli_epi64(_mm512_and_si512(b, _mm512_set1_epi64(0xF)), 32));
    return _mm512_permutexvar_ps(e, t->table);
}

/* Any NaN/Inf among n elements: the magnitude bits reach the exponent-all-ones pattern (unsigned max over lanes). */
static inline int qv_any_nonfinite(const void* data, int32_t dtype, int64_t n) {
    const char* p = (const char*)data;
    int64_t i = 0;
    if (dtype == BNB_DTYPE_F32) {
        const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
        __m512i m = _mm512_setzero_si512();
        for (; i + 16 <= n; i += 16)
            m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_loadu_si512(p + 4 * i), mag));
        if (_mm512_cmpge_epu32_mask(m, _mm512_set1_epi32(0x7F800000))) return 1;
        for (; i < n; ++i) {
            uint32_t u;
            memcpy(&u, p + 4 * i, 4);
            if ((u & 0x7FFFFFFFu) >= 0x7F800000u) return 1;
        }
        return 0;
    }
    const uint16_t inf = dtype == BNB_DTYPE_F16 ? 0x7C00 : 0x7F80;
    const __m512i mag = _mm512_set1_epi16(0x7FFF);
    __m512i m = _mm512_setzero_si512();
    for (; i + 32 <= n; i += 32) m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_loadu_si512(p + 2 * i), mag));
    if (_mm512_cmpge_epu16_mask(m, _mm512_set1_epi16((short)inf))) return 1;
    for (; i < n; ++i) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        if ((h & 0x7FFF) >= inf) return 1;
    }
    return 0;
}

#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
/* ─── AVX2 + FMA + F16C ─────────────────────────────────────────────────────────────────────────────────── */
#include <immintrin.h>
#define QV_W 8
#define QV_HAVE_VECTOR 1
typedef __m256 qv_f;
typedef __m256i qv_i;

static inline qv_f qv_load(const void* p, int32_t dtype) {
    switch (dtype) {
    case BNB_DTYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
    case BNB_DTYPE_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
    default: return _mm256_loadu_ps(p);
    }
}
static inline qv_i qv_bf16_bits(qv_f v) {
    const qv_i u = _mm256_castps_si256(v);
    const qv_i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const qv_i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const qv_i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
}
static inline void qv_store(void* p, int32_t dtype, qv_f v) {
    switch (dtype) {
    case BNB_DTYPE_F16: _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); break;
    case BNB_DTYPE_BF16: {
        const qv_i b = qv_bf16_bits(v); /* <= 0xFFFF: the signed→unsigned saturating pack keeps it */
        const qv_i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(b, b), 0x08);
        _mm_storeu_si128((__m128i*)p, _mm256_castsi256_si128(packed));
        break;
    }
    default: _mm256_storeu_ps(p, v); break;
    }
}
static inline qv_f qv_zero(void) { return _mm256_setzero_ps(); }
static inline qv_f qv_set1(float v) { return _mm256_set1_ps(v); }
static inline qv_f qv_mul(qv_f a, qv_f b) { return _mm256_mul_ps(a, b); }
static inline qv_f qv_div(qv_f a, qv_f b) { return _mm256_div_ps(a, b); }
static inline qv_f qv_add(qv_f a, qv_f b) { return _mm256_add_ps(a, b); }
static inline qv_f qv_sub(qv_f a, qv_f b) { return _mm256_sub_ps(a, b); }
static inline qv_f qv_fma(qv_f a, qv_f b, qv_f c) { return _mm256_fmadd_ps(a, b, c); }
static inline qv_f qv_absmax_step(qv_f m, qv_f x) {
    const qv_f a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_max_ps(a, m); /* NaN a: m */
}
static inline float qv_hmax(qv_f m) {
    float v[8];
    _mm256_storeu_ps(v, m);
    float a = v[0];
    for (int i = 1; i < 8; ++i) a = v[i] > a ? v[i] : a;
    return a;
}
static inline qv_f qv_clamp1(qv_f s) {
    return _mm256_max_ps(_mm256_set1_ps(-1.0f), _mm256_min_ps(_mm256_set1_ps(1.0f), s));
}
static inline qv_i qv_lut_bin(qv_f f) {
    return _mm256_and_si256(_mm256_cvttps_epi32(f), _mm256_set1_epi32(0xFFFF));
}
static inline qv_f qv_i2f(qv_i i) { return _mm256_cvtepi32_ps(i); }

/* 8-bit search: 8 gathers from the padded midpoints (AVX2 has no 32-entry permute) */
typedef struct qv_search8_tab {
    const float* ext;
} qv_search8_tab;
static inline void qv_search8_init(const qv_mid8* m, qv_search8_tab* t) { t->ext = m->ext; }
#define QV_STEP(cand, s, pos, step)                                                                                \
    pos = _mm256_or_si256(pos, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(cand, s, _CMP_LT_OQ)),         \
                                                _mm256_set1_epi32(step)))
static inline qv_i qv_search8(const qv_search8_tab* t, qv_f s) {
    qv_i pos = _mm256_setzero_si256();
    for (int step = 128; step >= 1; step >>= 1) {
        const qv_f cand = _mm256_i32gather_ps(t->ext, _mm256_add_epi32(pos, _mm256_set1_epi32(step - 1)), 4);
        QV_STEP(cand, s, pos, step);
    }
    return pos;
}
/* 16-entry lookup from two 8-entry halves; bit 3 of the index (moved to the sign) picks the half */
static inline qv_f qv_lookup16(qv_f lo, qv_f hi, qv_i idx) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                            _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}
typedef struct qv_search4_tab {
    __m256 b_lo, b_hi, o_lo, o_hi;
} qv_search4_tab;
static inline void qv_search4_init(const qv_map4* m, qv_search4_tab* t) {
    t->b_lo = _mm256_loadu_ps(m->bounds);
    t->b_hi = _mm256_loadu_ps(m->bounds + 8);
    t->o_lo = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i*)m->order));
    t->o_hi = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i*)(m->order + 8)));
}
static inline qv_i qv_search4(const qv_search4_tab* t, qv_f s) {
    qv_i pos = _mm256_setzero_si256();
    for (int step = 8; step >= 1; step >>= 1) {
        const qv_f cand = qv_lookup16(t->b_lo, t->b_hi, _mm256_add_epi32(pos, _mm256_set1_epi32(step - 1)));
        QV_STEP(cand, s, pos, step);
    }
    const qv_i nib = _mm256_castps_si256(qv_lookup16(t->o_lo, t->o_hi, pos));
    return _mm256_and_si256(nib, _mm256_castps_si256(_mm256_cmp_ps(s, s, _CMP_ORD_Q))); /* NaN → 0 */
}
static inline void qv_store_u8(uint8_t* p, qv_i c) {
    /* byte 0 of each dword: lane 0 to bytes 0-3, lane 1 to bytes 4-7, then OR the lanes */
    const qv_i sh = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0,
                                     4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1);
    const qv_i b = _mm256_shuffle_epi8(c, sh);
    _mm_storel_epi64((__m128i*)p, _mm_or_si128(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
}
static inline void qv_store_nibbles(uint8_t* p, qv_i c) {
    const qv_i v = _mm256_or_si256(_mm256_slli_epi64(c, 4), _mm256_srli_epi64(c, 32));
    const qv_i sh = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 8, -1,
                                     -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const qv_i b = _mm256_shuffle_epi8(v, sh);
    const int32_t w = _mm_cvtsi128_si32(_mm_or_si128(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
    memcpy(p, &w, 4);
}
typedef struct qv_dq8_tab {
    const float* code;
} qv_dq8_tab;
static inline qv_f qv_dequant8(const qv_dq8_tab* t, const uint8_t* p) {
    const qv_i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p));
    return _mm256_i32gather_ps(t->code, idx, 4);
}
typedef struct qv_dq4_tab {
    __m256 lo, hi;
} qv_dq4_tab;
static inline void qv_dq4_init(const float* table, qv_dq4_tab* t) {
    t->lo = _mm256_loadu_ps(table);
    t->hi = _mm256_loadu_ps(table + 8);
}
static inline qv_f qv_dequant4(const qv_dq4_tab* t, const uint8_t* p) {
    int32_t w;
    memcpy(&w, p, 4);
    const qv_i b = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w));
    const qv_i e = _mm256_or_si256(_mm256_srli_epi64(b, 4),
                                   _mm256_slli_epi64(_mm256_and_si256(b, _mm256_set1_epi64x(0xF)), 32));
    return qv_lookup16(t->lo, t->hi, e);
}
static inline int qv_any_nonfinite(const void* data, int32_t dtype, int64_t n) {
    const char* p = (const char*)data;
    int64_t i = 0;
    if (dtype == BNB_DTYPE_F32) {
        const __m256i mag = _mm256_set1_epi32(0x7FFFFFFF);
        __m256i m = _mm256_setzero_si256();
        for (; i + 8 <= n; i += 8)
            m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(p + 4 * i)), mag));
        /* m >= inf  <=>  max(m, inf) == m */
        const __m256i inf = _mm256_set1_epi32(0x7F800000);
        if (!_mm256_testz_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(m, inf), m), _mm256_set1_epi32(-1))) return 1;
        for (; i < n; ++i) {
            uint32_t u;
            memcpy(&u, p + 4 * i, 4);
            if ((u & 0x7FFFFFFFu) >= 0x7F800000u) return 1;
        }
        return 0;
    }
    const uint16_t inf = dtype == BNB_DTYPE_F16 ? 0x7C00 : 0x7F80;
    const __m256i mag = _mm256_set1_epi16(0x7FFF);
    __m256i m = _mm256_setzero_si256();
    for (; i + 16 <= n; i += 16)
        m = _mm256_max_epu16(m, _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(p + 2 * i)), mag));
    const __m256i infv = _mm256_set1_epi16((short)inf);
    if (!_mm256_testz_si256(_mm256_cmpeq_epi16(_mm256_max_epu16(m, infv), m), _mm256_set1_epi32(-1))) return 1;
    for (; i < n; ++i) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        if ((h & 0x7FFF) >= inf) return 1;
    }
    return 0;
}
#else
/* Portable scan (NEON builds auto-vectorize the integer max). */
static inline int qv_any_nonfinite(const void* data, int32_t dtype, int64_t n) {
    if (dtype == BNB_DTYPE_F32) {
        const uint32_t* p = (const uint32_t*)data;
        uint32_t m = 0;
        for (int64_t i = 0; i < n; ++i) m = (p[i] & 0x7FFFFFFFu) > m ? (p[i] & 0x7FFFFFFFu) : m;
        return m >= 0x7F800000u;
    }
    const uint16_t* p = (const uint16_t*)data;
    const uint16_t inf = dtype == BNB_DTYPE_F16 ? 0x7C00 : 0x7F80;
    uint16_t m = 0;
    for (int64_t i = 0; i < n; ++i) m = (uint16_t)((p[i] & 0x7FFF) > m ? (p[i] & 0x7FFF) : m);
    return m >= inf;
}
#endif

#endif /* BNB_QUANT_VEC_H */
