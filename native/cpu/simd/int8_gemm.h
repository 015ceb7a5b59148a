/* int8_gemm.h — exact int8 GEMM C[M, N] = A[M, K] · B[N, K]ᵀ (int32) for ops_int8.c.
 *
 * Both operands are packed into k-grouped panels so the micro-kernels read them with unit stride:
 *   A panel (MR rows):  [Kp / g][MR] groups,  B panel (NR columns): [Kp / g][NR] groups,
 * where a group is the g consecutive k of one row (4 int8 for VNNI / sdot / plain NEON, 2 int16 for AVX2) and Kp
 * is K rounded up to the group with zeros (a zero B byte contributes nothing). The kernels:
 *   VNNI   vpdpbusd u8 × s8: A is stored as a + 128 (xor 0x80); every column then needs -128·Σ_k B[n, k], added
 *          once as the accumulator's initial value. All int32 arithmetic wraps, and the true result fits int32
 *          (the resolver rejects the rest), so the wrapped sum is exact.
 *   AVX2   vpmaddwd on sign-extended int16 pairs (no saturation possible: |a·b + c·d| <= 2^15).
 *   sdot   NEON vdotq_laneq_s32 (s8 × s8, no offset).
 *   NEON   vmull_s8 + vpadalq_s16 (plain ARMv8.0).
 * Tasks are (NR-column panel, MB-row block) tiles; the output tile is written once.
 */
#ifndef BNB_INT8_GEMM_H
#define BNB_INT8_GEMM_H

#include "bnb_int8.h"
#include "cpu_ops.h"

#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

enum { GEMM_VNNI, GEMM_AVX2, GEMM_SDOT, GEMM_NEON };

typedef struct gemm_plan {
    int isa;
    int mr, nr;        /* micro-tile */
    int group;         /* bytes of one packed group (4) */
    int64_t M, N, K;
    int64_t kg;        /* groups along K: ceil(K / k_per_group) */
    int64_t mpanels, npanels;
    int64_t mb_panels; /* A panels per task */
    int64_t mblocks;   /* row blocks per column panel */
    uint8_t* pa;       /* mpanels × kg × mr × group */
    uint8_t* pb;       /* npanels × kg × nr × group */
    int32_t* corr;     /* npanels × nr: accumulator initial value per column (VNNI: -128·Σ B) */
    const bnb_int8_matmul_args* args;
} gemm_plan;

/* ─── packing ────────────────────────────────────────────────────────────────────────────────────────────── */

/* Packs rows [r0, r0 + R) of an int8 matrix (rows >= nrows are zero) into [kg][R] groups of 4 bytes, each byte
 * xor `flip`; colsum (optional) receives Σ_k of each row. */
static void pack_k4(const int8_t* src, int64_t ld, int64_t nrows, int64_t K, int64_t r0, int R, int64_t kg,
                    uint8_t flip, uint8_t* dst, int32_t* rowsum) {
    for (int r = 0; r < R; ++r) {
        const int64_t row = r0 + r;
        int32_t sum = 0;
        uint8_t* d = dst + (size_t)r * 4;
        if (row < nrows) {
            const int8_t* s = src + row * ld;
            int64_t k = 0;
            for (int64_t q = 0; q < kg; ++q, d += (size_t)R * 4) {
                uint8_t b[4] = {0, 0, 0, 0};
                if (k + 4 <= K) {
                    memcpy(b, s + k, 4);
                } else {
                    for (int64_t j = 0; k + j < K; ++j) b[j] = (uint8_t)s[k + j];
                }
                for (int j = 0; j < 4; ++j) {
                    sum += (int8_t)b[j];
                    d[j] = (uint8_t)(b[j] ^ flip);
                }
                k += 4;
            }
        } else {
            for (int64_t q = 0; q < kg; ++q, d += (size_t)R * 4) memset(d, flip, 4);
        }
        if (rowsum) rowsum[r] = sum;
    }
}

/* AVX2 layout: [kg][R] groups of two int16 (k, k + 1). */
static void pack_k2_i16(const int8_t* src, int64_t ld, int64_t nrows, int64_t K, int64_t r0, int R, int64_t kg,
                        uint8_t* dst) {
    for (int r = 0; r < R; ++r) {
        const int64_t row = r0 + r;
        int16_t* d = (int16_t*)(void*)dst + (size_t)r * 2;
        const int8_t* s = row < nrows ? src + row * ld : NULL;
        for (int64_t q = 0; q < kg; ++q, d += (size_t)R * 2) {
            const int64_t k = 2 * q;
            d[0] = (s && k < K) ? s[k] : 0;
            d[1] = (s && k + 1 < K) ? s[k + 1] : 0;
        }
    }
}

/* ─── micro-kernels: C tile rows [0, mr) × cols [0, nv) ← full MR × NR product over kg groups ────────────────── */

#if defined(__AVX512F__)
#define VNNI_MR 6
#define VNNI_NR 64
__attribute__((target("avx512vnni"))) static void kern_vnni(const uint8_t* ap, const uint8_t* bp, int64_t kg,
                                                             const int32_t* init, int32_t* C, int64_t ldc, int mr,
                                                             int nv) {
    __m512i c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50,
        c51, c52, c53;
    const __m512i i0 = _mm512_loadu_si512(init), i1 = _mm512_loadu_si512(init + 16),
                  i2 = _mm512_loadu_si512(init + 32), i3 = _mm512_loadu_si512(init + 48);
    c00 = c10 = c20 = c30 = c40 = c50 = i0;
    c01 = c11 = c21 = c31 = c41 = c51 = i1;
    c02 = c12 = c22 = c32 = c42 = c52 = i2;
    c03 = c13 = c23 = c33 = c43 = c53 = i3;
    const int32_t* a = (const int32_t*)(const void*)ap;
    const __m512i* b = (const __m512i*)(const void*)bp;
    for (int64_t q = 0; q < kg; ++q, a += VNNI_MR, b += 4) {
        const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 1), b2 = _mm512_loadu_si512(b + 2),
                      b3 = _mm512_loadu_si512(b + 3);
        __m512i x;
#define VNNI_ROW(r)                                                                                                \
    x = _mm512_set1_epi32(a[r]);                                                                                   \
    c##r##0 = _mm512_dpbusd_epi32(c##r##0, x, b0);                                                                 \
    c##r##1 = _mm512_dpbusd_epi32(c##r##1, x, b1);                                                                 \
    c##r##2 = _mm512_dpbusd_epi32(c##r##2, x, b2);                                                                 \
    c##r##3 = _mm512_dpbusd_epi32(c##r##3, x, b3);
        VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3) VNNI_ROW(4) VNNI_ROW(5)
#undef VNNI_ROW
    }
    const __m512i rows[VNNI_MR][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                      {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
    for (int r = 0; r < mr; ++r) {
        int32_t* dst = C + r * ldc;
        for (int j = 0; j < 4; ++j) {
            const int left = nv - 16 * j;
            if (left <= 0) break;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            _mm512_mask_storeu_epi32(dst + 16 * j, m, rows[r][j]);
        }
    }
}
#endif

#if defined(__AVX2__)
#define AVX2_MR 6
#define AVX2_NR 16
static void kern_avx2(const uint8_t* ap, const uint8_t* bp, int64_t kg, int32_t* C, int64_t ldc, int mr, int nv) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
            c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const int32_t* a = (const int32_t*)(const void*)ap;
    const __m256i* b = (const __m256i*)(const void*)bp;
    for (int64_t q = 0; q < kg; ++q, a += AVX2_MR, b += 2) {
        const __m256i b0 = _mm256_loadu_si256(b), b1 = _mm256_loadu_si256(b + 1);
        __m256i x;
#define AVX2_ROW(r)                                                                                                \
    x = _mm256_set1_epi32(a[r]);                                                                                   \
    c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(x, b0));                                                 \
    c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(x, b1));
        AVX2_ROW(0) AVX2_ROW(1) AVX2_ROW(2) AVX2_ROW(3) AVX2_ROW(4) AVX2_ROW(5)
#undef AVX2_ROW
    }
    const __m256i rows[AVX2_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < mr; ++r) {
        int32_t* dst = C + r * ldc;
        if (nv == AVX2_NR) {
            _mm256_storeu_si256((__m256i*)(void*)dst, rows[r][0]);
            _mm256_storeu_si256((__m256i*)(void*)(dst + 8), rows[r][1]);
        } else {
            int32_t t[AVX2_NR];
            _mm256_storeu_si256((__m256i*)(void*)t, rows[r][0]);
            _mm256_storeu_si256((__m256i*)(void*)(t + 8), rows[r][1]);
            memcpy(dst, t, (size_t)nv * sizeof(int32_t));
        }
    }
}
#endif

#if defined(__ARM_NEON)
#define NEON_MR 4
#define NEON_NR 16
static void store_rows_neon(const int32x4_t acc[NEON_MR][4], int32_t* C, int64_t ldc, int mr, int nv) {
    for (int r = 0; r < mr; ++r) {
        int32_t t[NEON_NR];
        for (int j = 0; j < 4; ++j) vst1q_s32(t + 4 * j, acc[r][j]);
        memcpy(C + r * ldc, t, (size_t)nv * sizeof(int32_t));
    }
}

__attribute__((target("arch=armv8.2-a+dotprod"))) static void kern_sdot(const uint8_t* ap, const uint8_t* bp,
                                                                         int64_t kg, int32_t* C, int64_t ldc, int mr,
                                                                         int nv) {
    int32x4_t c[NEON_MR][4];
    for (int r = 0; r < NEON_MR; ++r)
        for (int j = 0; j < 4; ++j) c[r][j] = vdupq_n_s32(0);
    const int8_t* a = (const int8_t*)ap;
    const int8_t* b = (const int8_t*)bp;
    for (int64_t q = 0; q < kg; ++q, a += 16, b += 64) {
        const int8x16_t x = vld1q_s8(a);
        const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
#define SDOT_ROW(r)                                                                                                \
    c[r][0] = vdotq_laneq_s32(c[r][0], b0, x, r);                                                                  \
    c[r][1] = vdotq_laneq_s32(c[r][1], b1, x, r);                                                                  \
    c[r][2] = vdotq_laneq_s32(c[r][2], b2, x, r);                                                                  \
    c[r][3] = vdotq_laneq_s32(c[r][3], b3, x, r);
        SDOT_ROW(0) SDOT_ROW(1) SDOT_ROW(2) SDOT_ROW(3)
#undef SDOT_ROW
    }
    store_rows_neon((const int32x4_t(*)[4])c, C, ldc, mr, nv);
}

/* Plain ARMv8.0: a 4-byte group of one row times 4 columns' groups: vmull_s8 gives the 16 products as int16,
 * vpadalq_s16 folds pairs into int32 (k0+k1, k2+k3 per column), a final pairwise add gives the column sums. Rows
 * go two at a time to keep the accumulators in registers. */
static void kern_neon(const uint8_t* ap, const uint8_t* bp, int64_t kg, int32_t* C, int64_t ldc, int mr, int nv) {
    int32x4_t out[NEON_MR][4];
    for (int r0 = 0; r0 < NEON_MR; r0 += 2) {
        int32x4_t lo[2][4], hi[2][4];
        for (int r = 0; r < 2; ++r)
            for (int j = 0; j < 4; ++j) lo[r][j] = hi[r][j] = vdupq_n_s32(0);
        const uint8_t* a = ap;
        const int8_t* b = (const int8_t*)bp;
        for (int64_t q = 0; q < kg; ++q, a += 16, b += 64) {
            for (int r = 0; r < 2; ++r) {
                uint32_t w;
                memcpy(&w, a + 4 * (r0 + r), 4);
                const int8x8_t x = vreinterpret_s8_u32(vdup_n_u32(w));
                for (int j = 0; j < 4; ++j) {
                    const int8x16_t bj = vld1q_s8(b + 16 * j);
                    lo[r][j] = vpadalq_s16(lo[r][j], vmull_s8(vget_low_s8(bj), x));
                    hi[r][j] = vpadalq_s16(hi[r][j], vmull_s8(vget_high_s8(bj), x));
                }
            }
        }
        for (int r = 0; r < 2; ++r)
            for (int j = 0; j < 4; ++j) out[r0 + r][j] = vpaddq_s32(lo[r][j], hi[r][j]);
    }
    store_rows_neon((const int32x4_t(*)[4])out, C, ldc, mr, nv);
}
#endif

/* ─── driver ─────────────────────────────────────────────────────────────────────────────────────────────── */

static size_t gemm_panel_bytes(const gemm_plan* p, int rows) { return (size_t)p->kg * (size_t)rows * 4u; }

static void gemm_pack_task(void* arg, int64_t t) {
    const gemm_plan* p = (const gemm_plan*)arg;
    const bnb_int8_matmul_args* a = p->args;
    const int8_t* A = (const int8_t*)a->A.data;
    const int8_t* B = (const int8_t*)a->B.data;
    if (t < p->mpanels) {
        uint8_t* dst = p->pa + (size_t)t * gemm_panel_bytes(p, p->mr);
        if (p->isa == GEMM_AVX2) pack_k2_i16(A, a->A.row_stride, p->M, p->K, t * p->mr, p->mr, p->kg, dst);
        else pack_k4(A, a->A.row_stride, p->M, p->K, t * p->mr, p->mr, p->kg, p->isa == GEMM_VNNI ? 0x80 : 0, dst,
                     NULL);
    } else {
        const int64_t np = t - p->mpanels;
        uint8_t* dst = p->pb + (size_t)np * gemm_panel_bytes(p, p->nr);
        int32_t* corr = p->corr + np * p->nr;
        if (p->isa == GEMM_AVX2) {
            pack_k2_i16(B, a->B.row_stride, p->N, p->K, np * p->nr, p->nr, p->kg, dst);
        } else {
            pack_k4(B, a->B.row_stride, p->N, p->K, np * p->nr, p->nr, p->kg, 0, dst, corr);
            for (int j = 0; j < p->nr; ++j) corr[j] = p->isa == GEMM_VNNI ? (int32_t)(-128 * corr[j]) : 0;
        }
    }
}

static void gemm_tile_task(void* arg, int64_t t) {
    const gemm_plan* p = (const gemm_plan*)arg;
    const bnb_int8_matmul_args* a = p->args;
    const int64_t np = t / p->mblocks, mb = t % p->mblocks;
    const int64_t n0 = np * p->nr;
    const int nv = (int)(p->N - n0 < p->nr ? p->N - n0 : p->nr);
    const uint8_t* bpan = p->pb + (size_t)np * gemm_panel_bytes(p, p->nr);
    const int64_t mp_end = (mb + 1) * p->mb_panels < p->mpanels ? (mb + 1) * p->mb_panels : p->mpanels;
    int32_t* out = (int32_t*)a->out.data;
    for (int64_t mp = mb * p->mb_panels; mp < mp_end; ++mp) {
        const int64_t m0 = mp * p->mr;
        const int mr = (int)(p->M - m0 < p->mr ? p->M - m0 : p->mr);
        const uint8_t* apan = p->pa + (size_t)mp * gemm_panel_bytes(p, p->mr);
        int32_t* C = out + m0 * a->out.row_stride + n0;
        switch (p->isa) {
#if defined(__AVX512F__)
        case GEMM_VNNI: kern_vnni(apan, bpan, p->kg, p->corr + n0, C, a->out.row_stride, mr, nv); break;
#endif
#if defined(__AVX2__)
        case GEMM_AVX2: kern_avx2(apan, bpan, p->kg, C, a->out.row_stride, mr, nv); break;
#endif
#if defined(__ARM_NEON)
        case GEMM_SDOT: kern_sdot(apan, bpan, p->kg, C, a->out.row_stride, mr, nv); break;
        case GEMM_NEON: kern_neon(apan, bpan, p->kg, C, a->out.row_stride, mr, nv); break;
#endif
        default: break;
        }
    }
}

/* Runs the product; OUT_OF_MEMORY (nothing written) if the packing buffers cannot be allocated. */
static bnb_status gemm_int8_run(const char* op, bnb_context* context, const bnb_int8_matmul_args* args) {
    gemm_plan p;
    memset(&p, 0, sizeof p);
    p.args = args;
    p.M = args->A.rows;
    p.N = args->B.rows;
    p.K = args->A.cols;
    if (p.M == 0 || p.N == 0) return BNB_OK;
#if defined(__AVX512F__)
    if (context->features & BNB_CPU_FEATURE_AVX512VNNI) {
        p.isa = GEMM_VNNI;
        p.mr = VNNI_MR;
        p.nr = VNNI_NR;
    } else {
        p.isa = GEMM_AVX2;
        p.mr = AVX2_MR;
        p.nr = AVX2_NR;
    }
#elif defined(__AVX2__)
    p.isa = GEMM_AVX2;
    p.mr = AVX2_MR;
    p.nr = AVX2_NR;
#elif defined(__ARM_NEON)
    p.isa = (context->features & BNB_CPU_FEATURE_DOTPROD) ? GEMM_SDOT : GEMM_NEON;
    p.mr = NEON_MR;
    p.nr = NEON_NR;
#endif
    p.kg = p.isa == GEMM_AVX2 ? bnb_ceil_div(p.K, 2) : bnb_ceil_div(p.K, 4);
    if (p.kg == 0) p.kg = 1; /* K == 0: one zero group gives the empty sums */
    p.mpanels = bnb_ceil_div(p.M, p.mr);
    p.npanels = bnb_ceil_div(p.N, p.nr);
    /* row blocks of ~96 rows: enough tasks for every thread while a B panel stays hot in L2 across its blocks */
    p.mb_panels = 96 / p.mr;
    p.mblocks = bnb_ceil_div(p.mpanels, p.mb_panels);
    const size_t a_bytes = (size_t)p.mpanels * gemm_panel_bytes(&p, p.mr);
    const size_t b_bytes = (size_t)p.npanels * gemm_panel_bytes(&p, p.nr);
    const size_t c_bytes = (size_t)(p.npanels * p.nr) * sizeof(int32_t);
    uint8_t* mem = (uint8_t*)malloc(a_bytes + b_bytes + c_bytes + 64);
    if (mem == NULL)
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate %zu bytes of packing buffers",
                        a_bytes + b_bytes + c_bytes);
    p.pa = mem;
    p.pb = mem + a_bytes;
    p.corr = (int32_t*)(void*)(mem + a_bytes + b_bytes);
    bnb_parallel_for(context->pool, p.mpanels + p.npanels, gemm_pack_task, &p);
    bnb_parallel_for(context->pool, p.npanels * p.mblocks, gemm_tile_task, &p);
    free(mem);
    return BNB_OK;
}

#endif /* BNB_INT8_GEMM_H */
