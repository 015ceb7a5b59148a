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
 *   qv_bucket8(bkt, t, s)        the same by one bucket-table lookup (qv_bucket8_build), binary search as fallback
 *   qv_lut8(lut, bin)            lut[bin] for LUT bins (int lanes in 0..65535), lut padded by 3 bytes
 *                                (the quantizers use these two only where QV_GATHER_FAST: a gather or scalar loads
 *                                beat the search there; qv_bucket8 exists on every ISA, the optimizers use it)
 *   qv_search4(t, s)             nibble of s (bnb_ref_4bit_code)
 *   qv_store_u8(p, c)            QV_W codes (int lanes) as bytes
 *   qv_store_nibbles(p, c)       QV_W codes packed two per byte, even element high
 *   qv_dequant8_x4(t, p, v)      v[0..3] = code[p[i]] for 4*QV_W code bytes at p (QV_DQ_CHUNK elements)
 *   qv_dequant4_x4(t, p, v)      v[0..3] = table[nibble] for 4*QV_W nibbles in 2*QV_W bytes at p
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

/* ─── exact 8-bit search by bucket (large calls) ───────────────────────────────────────────────────────────
 * key(s) maps the float's bits to an unsigned integer in float order (-0 first made +0, so equal floats have equal
 * keys; s + 0.0f does that and keeps NaN). For s in [-1, 1] the top 16 key bits take QV_BKT_COUNT values, one bucket
 * each (sign, exponent, 7 mantissa bits). Entry of bucket b:
 *   bits 24..31  c0   midpoints whose key is below the bucket
 *   bits 16..23  m    midpoints inside the bucket when they are all one value (their low 16 key bits in 0..15)
 * so count(mid < s) = c0 + (low16(key(s)) > low16(key(mid)) ? m : 0), exactly the reference's count for every s in
 * the bucket (midpoints above the bucket are above s). A bucket holding two or more distinct midpoints is marked
 * QV_BKT_FALLBACK (m = 0, low bits 1: adds nothing) and its lanes take the binary search. Any sorted midpoints
 * work: duplicates are one value, ±Inf midpoints (overflowing sums) fall below or above every bucket. */
#define QV_BKT_FIRST 0x407Fu /* key(-1.0f) >> 16 */
#define QV_BKT_COUNT (0xBF80u - QV_BKT_FIRST + 1u) /* up to key(+1.0f) >> 16 */
#define QV_BKT_FALLBACK 1u

static inline uint32_t qv_key(float s) {
    s += 0.0f;
    uint32_t u;
    memcpy(&u, &s, 4);
    return u ^ ((uint32_t)-(int32_t)(u >> 31) | 0x80000000u);
}

static inline void qv_bucket8_build(const float mid[BNB_CODE8_SIZE - 1], uint32_t tab[QV_BKT_COUNT]) {
    enum { M = BNB_CODE8_SIZE - 1 };
    uint32_t keys[M];
    for (int j = 0; j < M; ++j) keys[j] = qv_key(mid[j]);
    uint32_t below = 0;
    for (uint32_t b = 0; b < QV_BKT_COUNT; ++b) {
        const uint32_t k0 = (b + QV_BKT_FIRST) << 16;
        while (below < M && keys[below] < k0) ++below;
        uint32_t end = below;
        while (end < M && (keys[end] >> 16) == (k0 >> 16)) ++end;
        uint32_t e = below << 24;
        if (end > below) /* one value (possibly repeated) or the fallback mark */
            e |= keys[end - 1] == keys[below] ? ((end - below) << 16) | (keys[below] & 0xFFFFu) : QV_BKT_FALLBACK;
        tab[b] = e;
    }
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

/* No bucket/LUT lookups in the quantizers here: they need a gather, which measured no faster than the permute
 * search on Zen 4 there. */
#define QV_GATHER_FAST 0

/* qv_bucket8 for callers that search many values of one table per call (the 8-bit optimizers, whose requantization
 * measured 1.3x faster with it on Zen 4): one gather from the bucket table, the permute search for fallback lanes. */
static inline qv_i qv_bucket8(const uint32_t* bkt, const qv_search8_tab* t, qv_f s) {
    const __m512i u = _mm512_castps_si512(_mm512_add_ps(s, _mm512_setzero_ps()));
    const __m512i key = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32(INT32_MIN)));
    __m512i b = _mm512_sub_epi32(_mm512_srli_epi32(key, 16), _mm512_set1_epi32(QV_BKT_FIRST));
    b = _mm512_min_epu32(b, _mm512_set1_epi32(QV_BKT_COUNT - 1)); /* only NaN leaves the range: not loaded */
    /* NaN lanes load nothing: entry 0 gives code 0 and no fallback */
    const __mmask16 ord = _mm512_cmp_ps_mask(s, s, _CMP_ORD_Q);
    const __m512i e = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), ord, b, (const int*)bkt, 4);
    const __m512i low = _mm512_set1_epi32(0xFFFF);
    const __mmask16 above = _mm512_cmpgt_epu32_mask(_mm512_and_si512(key, low), _mm512_and_si512(e, low));
    const __m512i c0 = _mm512_srli_epi32(e, 24);
    __m512i r = _mm512_mask_add_epi32(c0, above, c0, _mm512_and_si512(_mm512_srli_epi32(e, 16), _mm512_set1_epi32(0xFF)));
    const __mmask16 fb = _mm512_cmpeq_epi32_mask(_mm512_and_si512(e, _mm512_set1_epi32(0xFFFFFF)),
                                                 _mm512_set1_epi32(QV_BKT_FALLBACK));
    if (fb) r = _mm512_mask_mov_epi32(r, fb, qv_search8(t, s));
    return r;
}

/* 8-bit dequant without a gather. With AVX-512 VBMI (chosen at run time): the 256-entry table as four byte planes
 * (byte k of every value), each looked up for 64 codes at once by two vpermi2b over 128 entries and a blend on the
 * code's bit 7, then interleaved back into floats. The codes are first transposed as 4x4 groups of four so that the
 * in-lane unpacks deliver 16 consecutive elements per vector. Without VBMI: eight vpermi2ps over 32-entry slices and
 * a blend tree on bits 5..7. Both only move the table's bits: the values are code[q] exactly. */
#define QV_DQ_CHUNK 64
#define QV_HAVE_VBMI_PATH 1
#define QV_VBMI_TARGET __attribute__((target("avx512vbmi")))
typedef struct qv_dq8_tab {
    __m512i planes[4][4]; /* [byte k][entries 0-63, 64-127, 128-191, 192-255] */
    __m512 slices[16];    /* 16 entries each */
    int vbmi;
} qv_dq8_tab;
static inline void qv_dq8_init(const float* table, qv_dq8_tab* t) {
    uint8_t bytes[4][256];
    for (int j = 0; j < 256; ++j) {
        uint32_t u;
        memcpy(&u, table + j, 4);
        for (int k = 0; k < 4; ++k) bytes[k][j] = (uint8_t)(u >> (8 * k));
    }
    for (int k = 0; k < 4; ++k)
        for (int q = 0; q < 4; ++q) t->planes[k][q] = _mm512_loadu_si512(bytes[k] + 64 * q);
    for (int q = 0; q < 16; ++q) t->slices[q] = _mm512_loadu_ps(table + 16 * q);
#ifdef QV_NO_VBMI /* tests: cover the permute tree on a VBMI machine */
    t->vbmi = 0;
#else
    t->vbmi = __builtin_cpu_supports("avx512vbmi");
#endif
}
QV_VBMI_TARGET static inline void qv_dequant8_x4_vbmi(const qv_dq8_tab* t, const uint8_t* p, qv_f v[4]) {
    /* element 16q + 4l + r moves to byte 16l + 4q + r (a transpose: its own inverse) */
    const __m512i tr = _mm512_set_epi32(0x3f3e3d3c, 0x2f2e2d2c, 0x1f1e1d1c, 0x0f0e0d0c, 0x3b3a3938, 0x2b2a2928,
                                        0x1b1a1918, 0x0b0a0908, 0x37363534, 0x27262524, 0x17161514, 0x07060504,
                                        0x33323130, 0x23222120, 0x13121110, 0x03020100);
    const __m512i c = _mm512_permutexvar_epi8(tr, _mm512_loadu_si512(p));
    const __mmask64 hi = _mm512_movepi8_mask(c);
    __m512i b[4];
    for (int k = 0; k < 4; ++k)
        b[k] = _mm512_mask_blend_epi8(hi, _mm512_permutex2var_epi8(t->planes[k][0], c, t->planes[k][1]),
                                      _mm512_permutex2var_epi8(t->planes[k][2], c, t->planes[k][3]));
    const __m512i w01l = _mm512_unpacklo_epi8(b[0], b[1]), w01h = _mm512_unpackhi_epi8(b[0], b[1]);
    const __m512i w23l = _mm512_unpacklo_epi8(b[2], b[3]), w23h = _mm512_unpackhi_epi8(b[2], b[3]);
    v[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01l, w23l));
    v[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01l, w23l));
    v[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01h, w23h));
    v[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01h, w23h));
}
static inline void qv_dequant8_x4(const qv_dq8_tab* t, const uint8_t* p, qv_f v[4]) {
    for (int q = 0; q < 4; ++q) {
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p + 16 * q)));
        __m512 s[8];
        for (int h = 0; h < 8; ++h) s[h] = _mm512_permutex2var_ps(t->slices[2 * h], idx, t->slices[2 * h + 1]);
        const __mmask16 b5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
        const __mmask16 b6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
        const __mmask16 b7 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(128));
        for (int h = 0; h < 4; ++h) s[h] = _mm512_mask_blend_ps(b5, s[2 * h], s[2 * h + 1]);
        for (int h = 0; h < 2; ++h) s[h] = _mm512_mask_blend_ps(b6, s[2 * h], s[2 * h + 1]);
        v[q] = _mm512_mask_blend_ps(b7, s[0], s[1]);
    }
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
static inline void qv_dequant4_x4(const qv_dq4_tab* t, const uint8_t* p, qv_f v[4]) {
    for (int q = 0; q < 4; ++q) v[q] = qv_dequant4(t, p + 8 * q);
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
/* 8-bit search of large calls: one gather from the bucket table (see qv_bucket8_build) instead of eight */
#define QV_GATHER_FAST 1
static inline qv_i qv_bucket8(const uint32_t* bkt, const qv_search8_tab* t, qv_f s) {
    const __m256i u = _mm256_castps_si256(_mm256_add_ps(s, _mm256_setzero_ps()));
    const __m256i key = _mm256_xor_si256(u, _mm256_or_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32(INT32_MIN)));
    __m256i b = _mm256_sub_epi32(_mm256_srli_epi32(key, 16), _mm256_set1_epi32(QV_BKT_FIRST));
    b = _mm256_min_epu32(b, _mm256_set1_epi32(QV_BKT_COUNT - 1)); /* only NaN leaves the range: masked below */
    const __m256i e = _mm256_i32gather_epi32((const int*)bkt, b, 4);
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    /* both sides < 2^16: the signed compare is the unsigned one */
    const __m256i above = _mm256_cmpgt_epi32(_mm256_and_si256(key, low), _mm256_and_si256(e, low));
    __m256i r = _mm256_add_epi32(_mm256_srli_epi32(e, 24),
                                 _mm256_and_si256(above, _mm256_srli_epi32(_mm256_slli_epi32(e, 8), 24)));
    const __m256i fb = _mm256_cmpeq_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0xFFFFFF)),
                                          _mm256_set1_epi32(QV_BKT_FALLBACK));
    if (!_mm256_testz_si256(fb, fb))
        r = _mm256_castps_si256(
            _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(qv_search8(t, s)), _mm256_castsi256_ps(fb)));
    return _mm256_and_si256(r, _mm256_castps_si256(_mm256_cmp_ps(s, s, _CMP_ORD_Q))); /* NaN → 0 */
}
static inline qv_i qv_lut8(const uint8_t* lut, qv_i bin) {
    return _mm256_and_si256(_mm256_i32gather_epi32((const int*)lut, bin, 1), _mm256_set1_epi32(0xFF));
}

/* 8-bit dequant: a gather (a 256-entry permute tree would take 32 ymm tables) */
#define QV_DQ_CHUNK 32
typedef struct qv_dq8_tab {
    const float* code;
} qv_dq8_tab;
static inline void qv_dq8_init(const float* table, qv_dq8_tab* t) { t->code = table; }
static inline void qv_dequant8_x4(const qv_dq8_tab* t, const uint8_t* p, qv_f v[4]) {
    for (int q = 0; q < 4; ++q)
        v[q] = _mm256_i32gather_ps(t->code, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(p + 8 * q))), 4);
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
static inline void qv_dequant4_x4(const qv_dq4_tab* t, const uint8_t* p, qv_f v[4]) {
    for (int q = 0; q < 4; ++q) v[q] = qv_dequant4(t, p + 4 * q);
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
#elif defined(__aarch64__) && defined(__ARM_NEON)
/* ─── NEON (aarch64) ────────────────────────────────────────────────────────────────────────────────────── */
#include <arm_neon.h>
#define QV_W 4
#define QV_HAVE_VECTOR 1
typedef float32x4_t qv_f;
typedef uint32x4_t qv_i;

static inline qv_f qv_load(const void* p, int32_t dtype) {
    switch (dtype) {
    case BNB_DTYPE_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t*)p)));
    case BNB_DTYPE_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t*)p), 16));
    default: return vld1q_f32((const float*)p);
    }
}
static inline qv_i qv_bf16_bits(qv_f v) {
    const qv_i u = vreinterpretq_u32_f32(v);
    const qv_i lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    const qv_i r = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), lsb), 16);
    const qv_i q = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40));
    return vbslq_u32(vceqq_f32(v, v), r, q); /* NaN: quiet, upper half kept */
}
/* f16: FCVT rounds by FPCR (nearest even), overflow → inf, NaN quieted with the payload's top bits, as
 * bnb_f32_to_f16 */
static inline void qv_store(void* p, int32_t dtype, qv_f v) {
    switch (dtype) {
    case BNB_DTYPE_F16: vst1_u16((uint16_t*)p, vreinterpret_u16_f16(vcvt_f16_f32(v))); break;
    case BNB_DTYPE_BF16: vst1_u16((uint16_t*)p, vmovn_u32(qv_bf16_bits(v))); break;
    default: vst1q_f32((float*)p, v); break;
    }
}
static inline qv_f qv_zero(void) { return vdupq_n_f32(0.0f); }
static inline qv_f qv_set1(float v) { return vdupq_n_f32(v); }
static inline qv_f qv_mul(qv_f a, qv_f b) { return vmulq_f32(a, b); }
static inline qv_f qv_div(qv_f a, qv_f b) { return vdivq_f32(a, b); }
static inline qv_f qv_add(qv_f a, qv_f b) { return vaddq_f32(a, b); }
static inline qv_f qv_sub(qv_f a, qv_f b) { return vsubq_f32(a, b); }
static inline qv_f qv_fma(qv_f a, qv_f b, qv_f c) { return vfmaq_f32(c, a, b); } /* one rounding */
/* a select on |x| > m (false for NaN): FMAXNM would turn a signaling NaN into NaN */
static inline qv_f qv_absmax_step(qv_f m, qv_f x) {
    const qv_f a = vabsq_f32(x);
    return vbslq_f32(vcgtq_f32(a, m), a, m);
}
static inline float qv_hmax(qv_f m) { return vmaxvq_f32(m); }
/* FMIN/FMAX propagate NaN, and keep -0 (min(1, -0) = -0) as the reference's comparisons do */
static inline qv_f qv_clamp1(qv_f s) { return vmaxq_f32(vdupq_n_f32(-1.0f), vminq_f32(vdupq_n_f32(1.0f), s)); }
/* FCVTZS truncates and gives 0 for NaN, which is bin 0 as the reference's x86 emulation */
static inline qv_i qv_lut_bin(qv_f f) {
    return vandq_u32(vreinterpretq_u32_s32(vcvtq_s32_f32(f)), vdupq_n_u32(0xFFFF));
}
static inline qv_f qv_i2f(qv_i i) { return vcvtq_f32_s32(vreinterpretq_s32_u32(i)); }

/* Float lookup by byte shuffles: lanes hold indices k < 16 * ntab (ntab <= 4, so 4k + 3 fits a byte) into ntab
 * 64-byte tables of 16 floats. Byte index 4k + r (r = byte of the lane) through TBX: an index past a table's 64 bytes
 * leaves the lane as it was. */
static inline qv_f qv_tblf(const uint8x16x4_t* tabs, int ntab, qv_i k) {
    const uint8x16_t idx = vreinterpretq_u8_u32(vmlaq_u32(vdupq_n_u32(0x03020100), k, vdupq_n_u32(0x04040404)));
    uint8x16_t r = vqtbl4q_u8(tabs[0], idx);
    for (int q = 1; q < ntab; ++q) r = vqtbx4q_u8(r, tabs[q], vsubq_u8(idx, vdupq_n_u8((uint8_t)(64 * q))));
    return vreinterpretq_f32_u8(r);
}
static inline uint8x16x4_t qv_tab64(const float* v16) {
    uint8x16x4_t t;
    t.val[0] = vreinterpretq_u8_f32(vld1q_f32(v16));
    t.val[1] = vreinterpretq_u8_f32(vld1q_f32(v16 + 4));
    t.val[2] = vreinterpretq_u8_f32(vld1q_f32(v16 + 8));
    t.val[3] = vreinterpretq_u8_f32(vld1q_f32(v16 + 12));
    return t;
}

/* 8-step binary search with the AVX-512 level tables (level s: the 128/s candidates ext[k*2s + s - 1]), looked up
 * by TBL/TBX: one table for up to 16 candidates, 2, 4, 8 tables for the last three levels. */
typedef struct qv_search8_tab {
    float l1;
    uint8x16x4_t lv[4];  /* steps 64, 32, 16, 8 (2, 4, 8, 16 candidates) */
    uint8x16x4_t l32[2]; /* step 4 */
    uint8x16x4_t l64[4]; /* step 2 */
    uint8x16x4_t l128[8]; /* step 1 */
} qv_search8_tab;
static inline void qv_search8_init(const qv_mid8* m, qv_search8_tab* t) {
    float tmp[128];
    for (int level = 0; level < 8; ++level) {
        const int step = 128 >> level, count = 128 / step;
        for (int k = 0; k < 128; ++k) tmp[k] = k < count ? m->ext[k * 2 * step + step - 1] : 0.0f;
        if (level == 0) t->l1 = tmp[0];
        else if (level < 5) t->lv[level - 1] = qv_tab64(tmp);
        else {
            uint8x16x4_t* dst = level == 5 ? t->l32 : level == 6 ? t->l64 : t->l128;
            for (int r = 0; r < count / 16; ++r) dst[r] = qv_tab64(tmp + 16 * r);
        }
    }
}
#define QV_STEP(cand, s, pos, step) pos = vorrq_u32(pos, vandq_u32(vcltq_f32(cand, s), vdupq_n_u32(step)))
static inline qv_i qv_search8(const qv_search8_tab* t, qv_f s) {
    qv_i pos = vdupq_n_u32(0);
    QV_STEP(vdupq_n_f32(t->l1), s, pos, 128);
    QV_STEP(qv_tblf(&t->lv[0], 1, vshrq_n_u32(pos, 7)), s, pos, 64);
    QV_STEP(qv_tblf(&t->lv[1], 1, vshrq_n_u32(pos, 6)), s, pos, 32);
    QV_STEP(qv_tblf(&t->lv[2], 1, vshrq_n_u32(pos, 5)), s, pos, 16);
    QV_STEP(qv_tblf(&t->lv[3], 1, vshrq_n_u32(pos, 4)), s, pos, 8);
    QV_STEP(qv_tblf(t->l32, 2, vshrq_n_u32(pos, 3)), s, pos, 4);
    QV_STEP(qv_tblf(t->l64, 4, vshrq_n_u32(pos, 2)), s, pos, 2);
    {
        /* 128 candidates: two halves of 64 (byte indices must stay below 256), bit 6 picks */
        const qv_i k = vshrq_n_u32(pos, 1), k6 = vandq_u32(k, vdupq_n_u32(63));
        const qv_f lo = qv_tblf(t->l128, 4, k6), hi = qv_tblf(t->l128 + 4, 4, k6);
        QV_STEP(vbslq_f32(vtstq_u32(k, vdupq_n_u32(64)), hi, lo), s, pos, 1);
    }
    return pos; /* NaN s: every comparison false → 0 */
}
/* bucket lookup (see qv_bucket8_build); NEON has no gather: four scalar loads, still far fewer than the TBL search */
#define QV_GATHER_FAST 1
static inline qv_i qv_bucket8(const uint32_t* bkt, const qv_search8_tab* t, qv_f s) {
    const qv_i u = vreinterpretq_u32_f32(vaddq_f32(s, vdupq_n_f32(0.0f)));
    const qv_i key = veorq_u32(u, vorrq_u32(vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_u32(u), 31)),
                                            vdupq_n_u32(0x80000000u)));
    const qv_i b =
        vminq_u32(vsubq_u32(vshrq_n_u32(key, 16), vdupq_n_u32(QV_BKT_FIRST)), vdupq_n_u32(QV_BKT_COUNT - 1));
    const uint32_t e4[4] = {bkt[vgetq_lane_u32(b, 0)], bkt[vgetq_lane_u32(b, 1)], bkt[vgetq_lane_u32(b, 2)],
                            bkt[vgetq_lane_u32(b, 3)]};
    const qv_i e = vld1q_u32(e4);
    const qv_i low = vdupq_n_u32(0xFFFF);
    const qv_i above = vcgtq_u32(vandq_u32(key, low), vandq_u32(e, low));
    qv_i r = vaddq_u32(vshrq_n_u32(e, 24), vandq_u32(above, vshrq_n_u32(vshlq_n_u32(e, 8), 24)));
    const qv_i fb = vceqq_u32(vandq_u32(e, vdupq_n_u32(0xFFFFFF)), vdupq_n_u32(QV_BKT_FALLBACK));
    if (vmaxvq_u32(fb)) r = vbslq_u32(fb, qv_search8(t, s), r);
    return vandq_u32(r, vceqq_f32(s, s)); /* NaN → 0 */
}
static inline qv_i qv_lut8(const uint8_t* lut, qv_i bin) {
    const uint32_t c[4] = {lut[vgetq_lane_u32(bin, 0)], lut[vgetq_lane_u32(bin, 1)], lut[vgetq_lane_u32(bin, 2)],
                           lut[vgetq_lane_u32(bin, 3)]};
    return vld1q_u32(c);
}

typedef struct qv_search4_tab {
    uint8x16x4_t bounds;
    uint8x16_t order;
} qv_search4_tab;
static inline void qv_search4_init(const qv_map4* m, qv_search4_tab* t) {
    t->bounds = qv_tab64(m->bounds);
    uint8_t o[16];
    for (int j = 0; j < 16; ++j) o[j] = (uint8_t)m->order[j];
    t->order = vld1q_u8(o);
}
static inline qv_i qv_search4(const qv_search4_tab* t, qv_f s) {
    qv_i pos = vdupq_n_u32(0);
    for (int step = 8; step >= 1; step >>= 1) {
        const qv_f cand = qv_tblf(&t->bounds, 1, vaddq_u32(pos, vdupq_n_u32((uint32_t)step - 1)));
        pos = vorrq_u32(pos, vandq_u32(vcltq_f32(cand, s), vdupq_n_u32((uint32_t)step)));
    }
    /* order[pos] into byte 0 of each lane; the other bytes index 0xFF (out of range → 0) */
    const qv_i nib = vreinterpretq_u32_u8(
        vqtbl1q_u8(t->order, vreinterpretq_u8_u32(vorrq_u32(pos, vdupq_n_u32(0xFFFFFF00u)))));
    return vandq_u32(nib, vceqq_f32(s, s)); /* NaN → nibble 0 */
}
static inline void qv_store_u8(uint8_t* p, qv_i c) {
    const uint16x4_t h = vmovn_u32(c);
    const uint32_t w = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(h, h))), 0);
    memcpy(p, &w, 4);
}
static inline void qv_store_nibbles(uint8_t* p, qv_i c) {
    /* each qword (even, odd) → low byte (even << 4) | odd */
    const uint64x2_t x = vreinterpretq_u64_u32(c);
    const uint64x2_t v = vorrq_u64(vshlq_n_u64(x, 4), vshrq_n_u64(x, 32));
    p[0] = (uint8_t)vgetq_lane_u64(v, 0);
    p[1] = (uint8_t)vgetq_lane_u64(v, 1);
}

/* Dequant lookups as byte planes (byte k of every table value) through TBL/TBX, 16 elements at a time, then zipped
 * back into floats: only the table's bits move, so the values are table[q] exactly. */
#define QV_DQ_CHUNK 16
typedef struct qv_dq8_tab {
    uint8x16x4_t planes[4][4]; /* [byte k][entries 0-63, 64-127, 128-191, 192-255] */
} qv_dq8_tab;
static inline void qv_planes(const float* table, int count, uint8_t bytes[4][256]) {
    for (int j = 0; j < count; ++j) {
        uint32_t u;
        memcpy(&u, table + j, 4);
        for (int k = 0; k < 4; ++k) bytes[k][j] = (uint8_t)(u >> (8 * k));
    }
}
static inline void qv_dq8_init(const float* table, qv_dq8_tab* t) {
    uint8_t bytes[4][256];
    qv_planes(table, 256, bytes);
    for (int k = 0; k < 4; ++k)
        for (int q = 0; q < 4; ++q) t->planes[k][q] = vld1q_u8_x4(bytes[k] + 64 * q);
}
/* v[0..3] = the float bytes (b0, b1, b2, b3) of 16 elements, in order */
static inline void qv_zip_planes(uint8x16_t b0, uint8x16_t b1, uint8x16_t b2, uint8x16_t b3, qv_f v[4]) {
    const uint16x8_t w01l = vreinterpretq_u16_u8(vzip1q_u8(b0, b1)), w01h = vreinterpretq_u16_u8(vzip2q_u8(b0, b1));
    const uint16x8_t w23l = vreinterpretq_u16_u8(vzip1q_u8(b2, b3)), w23h = vreinterpretq_u16_u8(vzip2q_u8(b2, b3));
    v[0] = vreinterpretq_f32_u16(vzip1q_u16(w01l, w23l));
    v[1] = vreinterpretq_f32_u16(vzip2q_u16(w01l, w23l));
    v[2] = vreinterpretq_f32_u16(vzip1q_u16(w01h, w23h));
    v[3] = vreinterpretq_f32_u16(vzip2q_u16(w01h, w23h));
}
static inline void qv_dequant8_x4(const qv_dq8_tab* t, const uint8_t* p, qv_f v[4]) {
    const uint8x16_t c = vld1q_u8(p);
    uint8x16_t b[4];
    for (int k = 0; k < 4; ++k) {
        uint8x16_t r = vqtbl4q_u8(t->planes[k][0], c);
        for (int q = 1; q < 4; ++q) r = vqtbx4q_u8(r, t->planes[k][q], vsubq_u8(c, vdupq_n_u8((uint8_t)(64 * q))));
        b[k] = r;
    }
    qv_zip_planes(b[0], b[1], b[2], b[3], v);
}
typedef struct qv_dq4_tab {
    uint8x16_t planes[4];
} qv_dq4_tab;
static inline void qv_dq4_init(const float* table, qv_dq4_tab* t) {
    uint8_t bytes[4][256];
    qv_planes(table, 16, bytes);
    for (int k = 0; k < 4; ++k) t->planes[k] = vld1q_u8(bytes[k]);
}
static inline void qv_dequant4_x4(const qv_dq4_tab* t, const uint8_t* p, qv_f v[4]) {
    const uint8x8_t b = vld1_u8(p);
    const uint8x8_t hi = vshr_n_u8(b, 4), lo = vand_u8(b, vdup_n_u8(0xF));
    const uint8x16_t nib = vcombine_u8(vzip1_u8(hi, lo), vzip2_u8(hi, lo)); /* even element = high nibble */
    qv_zip_planes(vqtbl1q_u8(t->planes[0], nib), vqtbl1q_u8(t->planes[1], nib), vqtbl1q_u8(t->planes[2], nib),
                  vqtbl1q_u8(t->planes[3], nib), v);
}

/* Any NaN/Inf among n elements: unsigned max of the magnitude bits against the infinity pattern. */
static inline int qv_any_nonfinite(const void* data, int32_t dtype, int64_t n) {
    int64_t i = 0;
    if (dtype == BNB_DTYPE_F32) {
        const uint32_t* p = (const uint32_t*)data;
        uint32x4_t m = vdupq_n_u32(0);
        for (; i + 4 <= n; i += 4) m = vmaxq_u32(m, vandq_u32(vld1q_u32(p + i), vdupq_n_u32(0x7FFFFFFF)));
        uint32_t r = vmaxvq_u32(m);
        for (; i < n; ++i) r = (p[i] & 0x7FFFFFFFu) > r ? (p[i] & 0x7FFFFFFFu) : r;
        return r >= 0x7F800000u;
    }
    const uint16_t* p = (const uint16_t*)data;
    const uint16_t inf = dtype == BNB_DTYPE_F16 ? 0x7C00 : 0x7F80;
    uint16x8_t m = vdupq_n_u16(0);
    for (; i + 8 <= n; i += 8) m = vmaxq_u16(m, vandq_u16(vld1q_u16(p + i), vdupq_n_u16(0x7FFF)));
    uint16_t r = vmaxvq_u16(m);
    for (; i < n; ++i) r = (uint16_t)((p[i] & 0x7FFF) > r ? (p[i] & 0x7FFF) : r);
    return r >= inf;
}
#else
/* Portable scan: ISAs without a vector path. */
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
