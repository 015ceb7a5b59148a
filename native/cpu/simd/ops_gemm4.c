/* ops_gemm4.c — 4-bit weight layouts and matmul (gemv_4bit, gemm_4bit) of the SIMD CPU variants.
 *
 * Formats: BNB_WEIGHT_STANDARD and BNB_WEIGHT_BNB_CPU behave exactly as in the reference (pack/unpack are the
 * reference kernels, byte for byte); BNB_WEIGHT_BACKEND is the interleaved layout drawn below (G4 layout).
 *
 * Matmul scheme (every variant): out[m, n] = sum_k A[m, k] * w[n, k] with "lanes along k": a vector register holds
 * consecutive k of one row of A and of one weight row, a dot kernel keeps MR x NC such accumulators and reduces
 * each one horizontally at the end. Hence
 *   - A is converted once per call into a zero-padded scratch [M, Kp] (f32, or bf16 on the BF16 path);
 *   - weights are dequantized per panel of columns into a per-thread tile [NP, Kp] (w = f32(table[q] * absmax),
 *     exactly the reference value, then rounded to bf16 on the BF16 path) and the tile is reused by every row of A
 *     (gemm, gemv with M > 4, the BNB_CPU format, and shapes with K % blocksize != 0); AVX-512 and AVX2 (M > 4)
 *     transpose the panel and run "lanes along n" kernels instead (A broadcast, see g4_panel_nk / g4_panel_nk_avx2);
 *   - gemv with M <= 4 on the G4 layout decodes straight from the packed bytes into registers with a per-block
 *     scaled lookup table (AVX-512: vpermw / vpermps on the low bits of each 16-bit word; AVX2: vpermps on both
 *     8-entry halves + vblendvps on bit 3; NEON: vqtbl1q_u8 on the 4 byte planes of the scaled table) and streams
 *     the weights once, prefetching 8 KiB ahead into L2;
 *   - gemv with M <= 4 on STANDARD rows (K % blocksize == 0) is fused too: the high nibbles (even k) and low nibbles
 *     (odd k) of a run of bytes are decoded as two vectors and dotted with a copy of A whose runs are permuted the
 *     same way (even k, then odd k), so rows stream once in memory order with no weight shuffles.
 * Work is split by output columns (panels / groups); every output element is reduced in one fixed order by one
 * task, so the bytes do not depend on the thread count or on which thread ran which panel.
 *
 * Numerics (bounds for the conformance test; NMSE = sum (x - ref)^2 / sum ref^2 against bnb_cpu_ref, per output):
 *   - F32 path (f32/f16 activations on every variant; bf16 activations on AVX2, NEON and AVX-512 without
 *     AVX512_BF16): weights exactly the reference values, A exact, FMA and a lane-split sum: NMSE <= 1e-10 for out
 *     f32 (observed <= 6e-12 for K <= 8192, i.e. ~u^2 K).
 *   - BF16 path (bf16 activations with AVX512_BF16, chosen at run time; the STANDARD fused gemv needs blocksize
 *     >= 64, else it takes the F32 path): A is exact, weights rounded to bf16 (gemm: bf16(f32(code * absmax)); fused
 *     gemv: bf16(code) with the absmax applied in f32 per block), exact products, f32 sums. Per element
 *     |out - ref| <= 2^-8 * sum_k |a_k w_k| (+ f32 terms), so NMSE <= 3e-5 on random data
 *     (observed ~2e-6 on long rows); a single output with heavy cancellation can go higher (5e-5 seen, N=1 K=32).
 *   - out f16 / bf16 add the output rounding (a last-bit flip: 1e-6 / 6.2e-5).
 *   - Every output is one sum in a fixed order whatever the thread count: identical bytes for 1, 2, 3 … threads.
 */
#include "bnb_quant.h"
#include "cpu_ops.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#if defined(__AVX512F__)
#define G4_AVX512 1
#define G4_BF16_TARGET __attribute__((target("avx512bf16")))
#elif defined(__AVX2__)
#define G4_AVX2 1
#elif defined(__ARM_NEON)
#define G4_NEON 1
#endif

#define G4_INLINE static inline __attribute__((always_inline))

/* ─── the G4 layout (BNB_WEIGHT_BACKEND) ────────────────────────────────────────────────────────────────────
 *
 * W[N, K] is cut into groups of G = 8 output rows (N padded to a multiple of 8) and chunks of 128 k (K padded to
 * Kp, a multiple of 128). Each (row, chunk) is 64 bytes = 32 little-endian 16-bit words; the chunks of the 8 rows of
 * a group follow each other, so a group streams as one sequential run:
 *
 *   offset ((g * (Kp/128) + j) * 8 + r) * 64:   row n = 8g + r, k = 128j .. 128j + 127
 *
 *   word i (i = 0..31):  bits 15..12      | 11..8           | 7..4           | 3..0
 *                        w[n, 128j+96+i]  | w[n, 128j+64+i] | w[n, 128j+32+i]| w[n, 128j+i]
 *
 * so (word >> 4t) & 15 for the 32 words gives k = 128j + 32t + 0..31 in order: one shift and one 32-entry table
 * lookup (vpermw on the low 5 bits with the 16-entry table duplicated; vpermps on the low 4 bits) decode a vector
 * of 32 (bf16) or 16 (f32) consecutive weights, no unpacking, no activation shuffle. Padding codes are 0 (their
 * activations are zero-padded; an odd N*K keeps the standard pad nibble at (N-1, K)). Any N and K pack; the fast kernels need K % blocksize == 0, so that no absmax
 * block straddles two rows (blocksize >= 32, so one 32-k run always lies in one block); other shapes run through
 * the portable decoder.
 * Size: ceil(N/8) * (Kp/128) * 512 bytes. The scales stay in the caller's absmax (the ABI passes them apart);
 * kernels resolve them (plain or nested) once per block into a small per-group table.
 */
#define G4_GROUP 8
#define G4_CHUNK 128
#define G4_CHUNK_BYTES 64 /* per row */

static int64_t g4_kp(int64_t K) { return bnb_ceil_div(K, G4_CHUNK) * G4_CHUNK; }
static int64_t g4_bytes(int64_t N, int64_t K) { return bnb_ceil_div(N, G4_GROUP) * (g4_kp(K) / 2) * G4_GROUP; }

/* Byte offset of (n, k) in the G4 layout and the shift of its nibble in that byte. */
static inline int64_t g4_byte(int64_t Kp, int64_t n, int64_t k, int* shift) {
    const int64_t j = k / G4_CHUNK, r = k % G4_CHUNK, t = r / 32, i = r % 32;
    *shift = (int)(t & 1) * 4;
    return (((n / G4_GROUP) * (Kp / G4_CHUNK) + j) * G4_GROUP + n % G4_GROUP) * G4_CHUNK_BYTES + 2 * i + (t >> 1);
}

static bnb_status g4_check_shape(const char* op, int64_t N, int64_t K) {
    if (N > INT64_MAX / 2 / (g4_kp(K) + G4_CHUNK) || (uint64_t)g4_bytes(N, K) > (uint64_t)SIZE_MAX)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "N = %lld, K = %lld: the packed size overflows", (long long)N,
                        (long long)K);
    return BNB_OK;
}

typedef struct g4_pack_job {
    const uint8_t* src; /* pack: standard; unpack: G4 */
    uint8_t* dst;
    int64_t N, K, Kp;
} g4_pack_job;

/* One group of 8 rows: every destination byte of the group is written by this task only. */
static void g4_pack_group(void* arg, int64_t g) {
    const g4_pack_job* j = (const g4_pack_job*)arg;
    const int64_t K = j->K, Kp = j->Kp, nch = Kp / G4_CHUNK;
    for (int64_t r = 0; r < G4_GROUP; ++r) {
        const int64_t n = g * G4_GROUP + r;
        for (int64_t c = 0; c < nch; ++c) {
            uint8_t* out = j->dst + ((g * nch + c) * G4_GROUP + r) * G4_CHUNK_BYTES;
            for (int64_t i = 0; i < 32; ++i) {
                unsigned word = 0;
                for (int t = 0; t < 4; ++t) {
                    const int64_t k = c * G4_CHUNK + 32 * t + i;
                    if (n < j->N && k < K) word |= (unsigned)bnb_nibble_standard(j->src, n * K + k) << (4 * t);
                }
                out[2 * i] = (uint8_t)word;
                out[2 * i + 1] = (uint8_t)(word >> 8);
            }
        }
    }
    /* odd N*K: the standard layout's last low nibble (bitsandbytes' padding code) is kept at (N - 1, K), a padding
     * slot (K is odd, so K < Kp), for a byte-exact round trip; its activation is zero-padded */
    const int64_t nk = j->N * K;
    if ((nk & 1) && g == (j->N - 1) / G4_GROUP) {
        int s;
        const int64_t b = g4_byte(Kp, j->N - 1, K, &s);
        j->dst[b] = (uint8_t)(j->dst[b] | ((j->src[nk / 2] & 15u) << s));
    }
}

/* Unpack: task t writes standard bytes [t * G4_UNPACK_BYTES, ...), each byte from its two elements (any K). */
#define G4_UNPACK_BYTES 4096
static void g4_unpack_bytes(void* arg, int64_t task) {
    const g4_pack_job* j = (const g4_pack_job*)arg;
    const int64_t K = j->K, Kp = j->Kp, nk = j->N * K;
    const int64_t i1 = (task + 1) * G4_UNPACK_BYTES < (nk + 1) / 2 ? (task + 1) * G4_UNPACK_BYTES : (nk + 1) / 2;
    int64_t n = (task * G4_UNPACK_BYTES * 2) / K, k = (task * G4_UNPACK_BYTES * 2) % K;
    for (int64_t i = task * G4_UNPACK_BYTES; i < i1; ++i) {
        unsigned byte = 0;
        for (int h = 0; h < 2; ++h) { /* element 2i (high nibble), then 2i + 1 */
            int s;
            const int64_t b = n < j->N ? g4_byte(Kp, n, k, &s) : g4_byte(Kp, j->N - 1, K, &s); /* pad nibble */
            byte |= ((j->src[b] >> s) & 15u) << (h ? 0 : 4);
            if (++k == K) k = 0, ++n;
        }
        j->dst[i] = (uint8_t)byte;
    }
}

/* ─── weight layout slots ────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_cpu_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes) {
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack_size("weight_pack_size", context, format, BNB_WEIGHT_STANDARD, N, K, blocksize,
                                          out_bytes, &a));
    if (format != BNB_WEIGHT_BACKEND) {
        *out_bytes = (size_t)a.bytes;
        return BNB_OK;
    }
    BNB_TRY(g4_check_shape("weight_pack_size", N, K));
    *out_bytes = (size_t)g4_bytes(N, K);
    return BNB_OK;
}

/* The checks of bnb_validate_weight_pack with the G4 size in place of the standard one. */
static bnb_status g4_validate_pack(const char* op, bnb_context* context, int unpack, const bnb_tensor* packed,
                                   int64_t N, int64_t K, int64_t blocksize, bnb_tensor* out, g4_pack_job* job) {
    bnb_weight_pack_args r;
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_validate_weight_layout(op, BNB_WEIGHT_BACKEND, BNB_WEIGHT_STANDARD, N, K, blocksize, &r));
    BNB_TRY(g4_check_shape(op, N, K));
    const int64_t g4 = g4_bytes(N, K);
    BNB_TRY(bnb_check_input(op, "packed", packed, BNB_DTYPE_BIT(BNB_DTYPE_U8), unpack ? g4 : r.std_bytes, NULL));
    BNB_TRY(bnb_check_output(op, unpack ? "out_standard" : "out_packed", out, BNB_DTYPE_BIT(BNB_DTYPE_U8),
                             unpack ? r.std_bytes : g4, NULL));
    job->src = (const uint8_t*)packed->data;
    job->dst = (uint8_t*)out->data;
    job->N = N;
    job->K = K;
    job->Kp = g4_kp(K);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    g4_pack_job job;
    if (format != BNB_WEIGHT_BACKEND) return bnb_ref_weight_pack(context, format, packed, N, K, blocksize, out_packed);
    BNB_TRY(g4_validate_pack("weight_pack", context, 0, packed, N, K, blocksize, out_packed, &job));
    bnb_parallel_for(context->pool, bnb_ceil_div(N, G4_GROUP), g4_pack_group, &job);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    g4_pack_job job;
    if (format != BNB_WEIGHT_BACKEND)
        return bnb_ref_weight_unpack(context, format, packed, N, K, blocksize, out_standard);
    BNB_TRY(g4_validate_pack("weight_unpack", context, 1, packed, N, K, blocksize, out_standard, &job));
    bnb_parallel_for(context->pool, bnb_ceil_div((N * K + 1) / 2, G4_UNPACK_BYTES), g4_unpack_bytes, &job);
    return BNB_OK;
}

/* ─── matmul plan ────────────────────────────────────────────────────────────────────────────────────────── */

#if defined(G4_AVX512)
#define G4_MR 6 /* rows of A per dot kernel   */
#define G4_NC 4 /* weight rows per dot kernel */
#elif defined(G4_AVX2)
#define G4_MR 3
#define G4_NC 4
#else
#define G4_MR 4
#define G4_NC 4
#endif
#define G4_FUSED_MAX_M 4          /* gemv rows decoded straight from the G4 layout */
#define G4_TILE_TARGET (512 << 10) /* bytes of one dequantized panel (stays in L2) */

typedef struct g4_plan {
    const bnb_gemm_4bit_args* a;
    int bf16;        /* BF16 path: A and tiles hold bf16 */
    int std_fused;   /* fused gemv on STANDARD rows: A permuted per G4_STD_RUN */
    int64_t Kp;      /* padded K (multiple of 128) */
    size_t esize;    /* 2 (bf16) or 4 (f32) */
    uint8_t* A;      /* converted A [M, Kp] */
    uint8_t* tiles;  /* per task: [NP, Kp] */
    int64_t NP;      /* columns per panel (multiple of 8) */
    int64_t panels;
    atomic_llong next; /* next panel to claim */
    int64_t rows_per_task;
    int lbs;         /* log2(blocksize) */
    int64_t panel_bytes; /* scratch of one panel task (64-byte multiple) */
} g4_plan;

/* Reference weight value of (n, k): f32(table[q] * absmax of its flat block). */
static inline uint8_t g4_nibble(const bnb_gemm_4bit_args* a, int64_t Kp, int64_t n, int64_t k) {
    if (a->layout == BNB_WEIGHT_BNB_CPU) return bnb_nibble_cpu_layout(a->W, a->K, n, k);
    if (a->layout == BNB_WEIGHT_BACKEND) {
        int s;
        const int64_t b = g4_byte(Kp, n, k, &s);
        return (uint8_t)((a->W[b] >> s) & 15u);
    }
    return bnb_nibble_standard(a->W, n * a->K + k);
}

static inline uint16_t g4_bf16(float f) { return bnb_f32_to_bf16(f); }

/* Portable dequantization of row n into dst[0..Kp) (f32 or bf16), zeros beyond K. Any layout, any K, blocks that
 * straddle rows: the scale is resolved once per run of k inside one block. */
static void g4_decode_row_generic(const g4_plan* p, int64_t n, void* dst) {
    const bnb_gemm_4bit_args* a = p->a;
    const float* table = bnb_table_4bit(a->quant_type);
    const int64_t K = a->K, bs = a->blocksize;
    int64_t k = 0;
    while (k < K) {
        const int64_t e = n * K + k, b = e / bs;
        const int64_t end = k + ((b + 1) * bs - e) < K ? k + ((b + 1) * bs - e) : K;
        const float s = bnb_scale_at(&a->scales, b);
        for (; k < end; ++k) {
            const float w = table[g4_nibble(a, p->Kp, n, k)] * s;
            if (p->bf16) ((uint16_t*)dst)[k] = g4_bf16(w);
            else ((float*)dst)[k] = w;
        }
    }
    for (; k < p->Kp; ++k) {
        if (p->bf16) ((uint16_t*)dst)[k] = 0;
        else ((float*)dst)[k] = 0.0f;
    }
}

/* out[m, n] = sum + bias[n], rounded once to out's dtype. */
static inline void g4_store(const bnb_gemm_4bit_args* a, int64_t m, int64_t n, float sum) {
    if (a->bias != NULL) sum += bnb_load_float(a->bias, a->bias_dtype, n);
    bnb_store_float(a->out.data, a->out.dtype, m * a->out.row_stride + n, sum);
}

/* Scale rows of group g: the caller's absmax rows when plain, else resolved (nested, once per block) into `buf`
 * [8][K/bs]. Padding rows reuse row N - 1 (their results are never stored). */
static void g4_group_scales(const g4_plan* p, int64_t g, float* buf, const float* srow[G4_GROUP]) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t nbr = a->K / a->blocksize;
    for (int c = 0; c < G4_GROUP; ++c) {
        const int64_t n = g * G4_GROUP + c < a->N ? g * G4_GROUP + c : a->N - 1;
        if (!a->scales.nested) {
            srow[c] = a->scales.absmax + n * nbr;
            continue;
        }
        float* dst = buf + c * nbr;
        for (int64_t b = 0; b < nbr; ++b) dst[b] = bnb_scale_at(&a->scales, n * nbr + b);
        srow[c] = dst;
    }
}

/* ─── x86 AVX-512 kernels ────────────────────────────────────────────────────────────────────────────────── */
#if defined(G4_AVX512)

/* f32 weights of a 32-k run from the 16-bit code words d (16 per half): lanes = table[(d >> shift) & 15] * s. */
G4_INLINE __m512 g4_lut_f32(const float* table, float s) {
    return _mm512_mul_ps(_mm512_loadu_ps(table), _mm512_set1_ps(s));
}

/* Dequantize rows [n0, n0 + nrows) into tile[r][Kp] (f32), vector paths for the G4 layout and for byte-aligned
 * STANDARD rows with K % blocksize == 0; everything else goes through the portable decoder. */
static void g4_decode_panel_f32(const g4_plan* p, int64_t n0, int64_t nrows, float* tile) {
    const bnb_gemm_4bit_args* a = p->a;
    const float* table = bnb_table_4bit(a->quant_type);
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K % bs == 0 ? K / bs : 0;
    for (int64_t r = 0; r < nrows; ++r) {
        const int64_t n = n0 + r;
        float* dst = tile + r * Kp;
        if (n >= a->N) {
            memset(dst, 0, (size_t)Kp * sizeof(float));
        } else if (a->layout == BNB_WEIGHT_BACKEND && nbr > 0) {
            const int64_t nch = Kp / G4_CHUNK;
            const uint8_t* src = a->W + ((n / G4_GROUP) * nch * G4_GROUP + n % G4_GROUP) * G4_CHUNK_BYTES;
            for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES) {
                const __m512i d0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)src));
                const __m512i d1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(src + 32)));
                for (int t = 0; t < 4; ++t) {
                    const int64_t k = j * G4_CHUNK + 32 * t;
                    if (k >= K) {
                        _mm512_storeu_ps(dst + k, _mm512_setzero_ps());
                        _mm512_storeu_ps(dst + k + 16, _mm512_setzero_ps());
                        continue;
                    }
                    const __m512 lut = g4_lut_f32(table, bnb_scale_at(&a->scales, n * nbr + (k >> p->lbs)));
                    const __m512i sh = _mm512_set1_epi32(4 * t);
                    _mm512_storeu_ps(dst + k, _mm512_permutexvar_ps(_mm512_srlv_epi32(d0, sh), lut));
                    _mm512_storeu_ps(dst + k + 16, _mm512_permutexvar_ps(_mm512_srlv_epi32(d1, sh), lut));
                }
            }
        } else if (a->layout == BNB_WEIGHT_STANDARD && nbr > 0) {
            /* K % bs == 0 and bs >= 32: row n starts on a byte, every 32-k run lies in one block */
            const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            const uint8_t* src = a->W + n * K / 2;
            for (int64_t b = 0; b < nbr; ++b) {
                const __m512 lut = g4_lut_f32(table, bnb_scale_at(&a->scales, n * nbr + b));
                for (int64_t k = b * bs; k < (b + 1) * bs; k += 32) {
                    const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(src + k / 2)));
                    const __m512 ev = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), lut); /* k even: high */
                    const __m512 od = _mm512_permutexvar_ps(d, lut);                       /* k odd: low   */
                    _mm512_storeu_ps(dst + k, _mm512_permutex2var_ps(ev, ilo, od));
                    _mm512_storeu_ps(dst + k + 16, _mm512_permutex2var_ps(ev, ihi, od));
                }
            }
            for (int64_t k = K; k < Kp; ++k) dst[k] = 0.0f;
        } else {
            g4_decode_row_generic(p, n, dst);
        }
    }
}

/* f32 dot kernel: sums[m][c] = <A row m, tile row c> over Kp (multiple of 16). */
G4_INLINE void g4_dot_f32(int mr, int nc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t Kp,
                          float sums[G4_MR][G4_NC]) {
    __m512 acc[G4_MR][G4_NC];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_setzero_ps();
    for (int64_t k = 0; k < Kp; k += 16) {
        __m512 b[G4_NC];
        for (int c = 0; c < nc; ++c) b[c] = _mm512_loadu_ps(B + c * ldb + k);
        for (int m = 0; m < mr; ++m) {
            const __m512 x = _mm512_loadu_ps(A + m * lda + k);
            for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_fmadd_ps(x, b[c], acc[m][c]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) sums[m][c] = _mm512_reduce_add_ps(acc[m][c]);
}

/* BF16 path: bf16 tiles, vdpbf16ps (pairs of k per f32 lane). */
G4_BF16_TARGET static void g4_decode_panel_bf16(const g4_plan* p, int64_t n0, int64_t nrows, uint16_t* tile) {
    const bnb_gemm_4bit_args* a = p->a;
    const float* table = bnb_table_4bit(a->quant_type);
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K % bs == 0 ? K / bs : 0;
    for (int64_t r = 0; r < nrows; ++r) {
        const int64_t n = n0 + r;
        uint16_t* dst = tile + r * Kp;
        if (n >= a->N) {
            memset(dst, 0, (size_t)Kp * sizeof(uint16_t));
        } else if (a->layout == BNB_WEIGHT_BACKEND && nbr > 0) {
            const int64_t nch = Kp / G4_CHUNK;
            const uint8_t* src = a->W + ((n / G4_GROUP) * nch * G4_GROUP + n % G4_GROUP) * G4_CHUNK_BYTES;
            for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES) {
                const __m512i x = _mm512_loadu_si512((const void*)src);
                for (int t = 0; t < 4; ++t) {
                    const int64_t k = j * G4_CHUNK + 32 * t;
                    if (k >= K) {
                        _mm512_storeu_si512((void*)(dst + k), _mm512_setzero_si512());
                        continue;
                    }
                    const __m512 l = g4_lut_f32(table, bnb_scale_at(&a->scales, n * nbr + (k >> p->lbs)));
                    const __m512i lut = (__m512i)_mm512_cvtne2ps_pbh(l, l);
                    const __m512i idx = _mm512_srlv_epi16(x, _mm512_set1_epi16((short)(4 * t)));
                    _mm512_storeu_si512((void*)(dst + k), _mm512_permutexvar_epi16(idx, lut));
                }
            }
        } else if (a->layout == BNB_WEIGHT_STANDARD && nbr > 0) {
            const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            const uint8_t* src = a->W + n * K / 2;
            for (int64_t b = 0; b < nbr; ++b) {
                const __m512 lut = g4_lut_f32(table, bnb_scale_at(&a->scales, n * nbr + b));
                for (int64_t k = b * bs; k < (b + 1) * bs; k += 32) {
                    const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(src + k / 2)));
                    const __m512 ev = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), lut);
                    const __m512 od = _mm512_permutexvar_ps(d, lut);
                    const __m512 lo = _mm512_permutex2var_ps(ev, ilo, od), hi = _mm512_permutex2var_ps(ev, ihi, od);
                    _mm512_storeu_si512((void*)(dst + k), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                }
            }
            for (int64_t k = K; k < Kp; ++k) dst[k] = 0;
        } else {
            g4_decode_row_generic(p, n, dst);
        }
    }
}

G4_BF16_TARGET G4_INLINE void g4_dot_bf16(int mr, int nc, const uint16_t* A, int64_t lda, const uint16_t* B,
                                          int64_t ldb, int64_t Kp, float sums[G4_MR][G4_NC]) {
    __m512 acc[G4_MR][G4_NC];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_setzero_ps();
    for (int64_t k = 0; k < Kp; k += 32) {
        __m512bh b[G4_NC];
        for (int c = 0; c < nc; ++c) b[c] = (__m512bh)_mm512_loadu_si512((const void*)(B + c * ldb + k));
        for (int m = 0; m < mr; ++m) {
            const __m512bh x = (__m512bh)_mm512_loadu_si512((const void*)(A + m * lda + k));
            for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_dpbf16_ps(acc[m][c], x, b[c]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) sums[m][c] = _mm512_reduce_add_ps(acc[m][c]);
}

/* A row → bf16 / f32, zero-padded to Kp. */
G4_BF16_TARGET static void g4_convert_row_bf16(const bnb_gemm_4bit_args* a, int64_t m, int64_t Kp, uint16_t* dst) {
    const int64_t K = a->K;
    int64_t k = 0;
    if (a->A.dtype == BNB_DTYPE_BF16) {
        memcpy(dst, (const uint16_t*)a->A.data + m * a->A.row_stride, (size_t)K * 2);
        k = K;
    } else if (a->A.dtype == BNB_DTYPE_F32) {
        const float* src = (const float*)a->A.data + m * a->A.row_stride;
        for (; k + 32 <= K; k += 32)
            _mm512_storeu_si512((void*)(dst + k),
                                (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k)));
        for (; k < K; ++k) dst[k] = g4_bf16(src[k]);
    } else {
        const uint16_t* src = (const uint16_t*)a->A.data + m * a->A.row_stride;
        for (; k + 32 <= K; k += 32) {
            const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + k)));
            const __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + k + 16)));
            _mm512_storeu_si512((void*)(dst + k), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        for (; k < K; ++k) dst[k] = g4_bf16(bnb_f16_to_f32(src[k]));
    }
    for (; k < Kp; ++k) dst[k] = 0;
}

/* Fused gemv on the G4 layout, BF16 path: rows [0, mr) of A against group rows [c0, c0 + nc) of group g; srow[c] are
 * the resolved scales of each row (blocks 0 .. K/bs - 1). The table is the unscaled code in bf16 (one constant
 * register); each 32-k run is accumulated into a short per-(row, block) sum that is scaled in f32 when the block or
 * the 128-k chunk ends: out = sum_b s_b * sum_{k in b} bf16(a_k) * bf16(code_k). One load, 3 shifts, 4 vpermw and
 * 4 vdpbf16ps per 64 bytes of weights and row of A, plus one FMA per block (or chunk). */
/* Software prefetch 32 KiB ahead in the weight stream, into L2 (T1): one line per 64 bytes. Measured on the 2-vCPU
 * Zen 4 (NF4, bf16 activations, M = 1, K = 8192, N = 16384, cold, 1 thread, medians of interleaved runs, with a
 * one-thread read loop at 40-41 GB/s alongside): 1 KiB into L1 19.7 GB/s, 8 KiB into L2 21.1-23.6, 32 KiB
 * 22.6-25.4. Still ~0.55-0.6 of the read loop; two interleaved groups per thread (two streams) measured 7-12 %
 * slower at 1 thread and within noise at 2, so the kernel keeps one stream. */
#define G4_PREFETCH 32768
G4_BF16_TARGET G4_INLINE void g4_fused_bf16(const g4_plan* p, int64_t g, int mr, int nc, int c0,
                                            const float* const* srow) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t Kp = p->Kp, nch = Kp / G4_CHUNK, bs = a->blocksize, last = a->K / bs - 1;
    const __m512 t32 = _mm512_loadu_ps(bnb_table_4bit(a->quant_type));
    const __m512i tab = (__m512i)_mm512_cvtne2ps_pbh(t32, t32); /* 16 entries, duplicated: bit 4 is ignored */
    const uint16_t* A = (const uint16_t*)p->A;
    const uint8_t* src = a->W + g * nch * G4_GROUP * G4_CHUNK_BYTES;
    __m512 acc[G4_FUSED_MAX_M][G4_GROUP];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES) {
        for (int c = 0; c < nc; ++c) {
            const uint8_t* s = src + (c0 + c) * G4_CHUNK_BYTES;
            _mm_prefetch((const char*)s + G4_PREFETCH, _MM_HINT_T1);
            const __m512i x = _mm512_loadu_si512((const void*)s);
            __m512 blk[G4_FUSED_MAX_M], r[G4_FUSED_MAX_M]; /* r: register copy of acc[.][c] for this row chunk */
            for (int m = 0; m < mr; ++m) r[m] = acc[m][c];
            for (int t = 0; t < 4; ++t) {
                const int64_t k = j * G4_CHUNK + 32 * t;
                if (t == 0 || (k & (bs - 1)) == 0)
                    for (int m = 0; m < mr; ++m) blk[m] = _mm512_setzero_ps();
                const __m512i idx = t == 0 ? x : _mm512_srli_epi16(x, 4 * t);
                const __m512bh w = (__m512bh)_mm512_permutexvar_epi16(idx, tab);
                for (int m = 0; m < mr; ++m)
                    blk[m] = _mm512_dpbf16_ps(blk[m], (__m512bh)_mm512_loadu_si512((const void*)(A + m * Kp + k)), w);
                if (t == 3 || ((k + 32) & (bs - 1)) == 0) {
                    const int64_t b = (k >> p->lbs) < last ? (k >> p->lbs) : last;
                    const __m512 sv = _mm512_set1_ps(srow[c][b]);
                    for (int m = 0; m < mr; ++m) r[m] = _mm512_fmadd_ps(blk[m], sv, r[m]);
                }
            }
            for (int m = 0; m < mr; ++m) acc[m][c] = r[m];
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) {
            const int64_t n = g * G4_GROUP + c0 + c;
            if (n < a->N) g4_store(a, m, n, _mm512_reduce_add_ps(acc[m][c]));
        }
}

/* Fused gemv on the G4 layout, F32 path: the table scaled per block (one multiply), vpermps on the low 4 bits of the
 * zero-extended code words, FMA with A in f32. */
G4_INLINE void g4_fused_f32(const g4_plan* p, int64_t g, int mr, int nc, int c0, const float* const* srow) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t Kp = p->Kp, nch = Kp / G4_CHUNK, bs = a->blocksize, last = a->K / bs - 1;
    const __m512 tab = _mm512_loadu_ps(bnb_table_4bit(a->quant_type));
    const float* A = (const float*)p->A;
    const uint8_t* src = a->W + g * nch * G4_GROUP * G4_CHUNK_BYTES;
    __m512 acc[G4_FUSED_MAX_M][G4_GROUP];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES) {
        for (int c = 0; c < nc; ++c) {
            const uint8_t* s = src + (c0 + c) * G4_CHUNK_BYTES;
            _mm_prefetch((const char*)s + G4_PREFETCH, _MM_HINT_T1);
            const __m512i d0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)s));
            const __m512i d1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(s + 32)));
            __m512 lut = tab, r[G4_FUSED_MAX_M]; /* r: register copy of acc[.][c] for this row chunk */
            for (int m = 0; m < mr; ++m) r[m] = acc[m][c];
            for (int t = 0; t < 4; ++t) {
                const int64_t k = j * G4_CHUNK + 32 * t;
                if (t == 0 || (k & (bs - 1)) == 0) {
                    const int64_t b = (k >> p->lbs) < last ? (k >> p->lbs) : last;
                    lut = _mm512_mul_ps(tab, _mm512_set1_ps(srow[c][b]));
                }
                const __m512 w0 = _mm512_permutexvar_ps(t == 0 ? d0 : _mm512_srli_epi32(d0, 4 * t), lut);
                const __m512 w1 = _mm512_permutexvar_ps(t == 0 ? d1 : _mm512_srli_epi32(d1, 4 * t), lut);
                for (int m = 0; m < mr; ++m) {
                    r[m] = _mm512_fmadd_ps(_mm512_loadu_ps(A + m * Kp + k), w0, r[m]);
                    r[m] = _mm512_fmadd_ps(_mm512_loadu_ps(A + m * Kp + k + 16), w1, r[m]);
                }
            }
            for (int m = 0; m < mr; ++m) acc[m][c] = r[m];
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) {
            const int64_t n = g * G4_GROUP + c0 + c;
            if (n < a->N) g4_store(a, m, n, _mm512_reduce_add_ps(acc[m][c]));
        }
}

/* Fused gemv on the STANDARD layout (rows of K/2 contiguous bytes, element 2i in the high nibble; K % bs == 0):
 * rows nr (1 or 2) from n, rows [0, mr) of A. 16 bytes = 32 k per step: vpmovzxbd, vpermps on (byte >> 4) gives the
 * 16 even k, on the byte itself (vpermps reads the low 4 bits) the 16 odd k, against A permuted the same way
 * (g4_permute_std_runs: per 32 k, the 16 even then the 16 odd); two accumulators per (row of A, weight row). The
 * rows of a claim follow each other in memory: one sequential stream, prefetched 8 KiB ahead. */
#define G4_STD_RUN 32
G4_INLINE void g4_fused_std_f32(const g4_plan* p, int64_t n, int nr, int mr) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K / bs;
    const __m512 tab = _mm512_loadu_ps(bnb_table_4bit(a->quant_type));
    const float* A = (const float*)(const void*)p->A;
    __m512 acc[G4_FUSED_MAX_M][2][2];
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r) acc[m][r][0] = acc[m][r][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nbr; ++b) {
        __m512 lut[2];
        for (int r = 0; r < nr; ++r)
            lut[r] = _mm512_mul_ps(tab, _mm512_set1_ps(bnb_scale_at(&a->scales, (n + r) * nbr + b)));
        for (int64_t k = b * bs; k < (b + 1) * bs; k += 32)
            for (int r = 0; r < nr; ++r) {
                const uint8_t* s = a->W + (n + r) * (K / 2) + k / 2;
                if ((k & 127) == 0) _mm_prefetch((const char*)s + G4_PREFETCH, _MM_HINT_T1);
                const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(const void*)s));
                const __m512 ev = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), lut[r]);
                const __m512 od = _mm512_permutexvar_ps(d, lut[r]);
                for (int m = 0; m < mr; ++m) {
                    acc[m][r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(A + m * Kp + k), ev, acc[m][r][0]);
                    acc[m][r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(A + m * Kp + k + 16), od, acc[m][r][1]);
                }
            }
    }
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r)
            g4_store(a, m, n + r, _mm512_reduce_add_ps(_mm512_add_ps(acc[m][r][0], acc[m][r][1])));
}

/* BF16 path of the STANDARD fused gemv (bf16 activations, AVX512_BF16, blocksize >= 64): 32 bytes = 64 k per step,
 * vpmovzxbw, vpermw on (word >> 4) for the 32 even k and on the word itself (the 16-entry bf16 code table is
 * duplicated, so vpermw's bit 4 = the high nibble's bit 0 does not matter) for the 32 odd k, vdpbf16ps against A
 * permuted per 64 k; per block the short sums are scaled in f32, as in g4_fused_bf16. */
#define G4_STD_RUN_BF16 64
G4_BF16_TARGET G4_INLINE void g4_fused_std_bf16(const g4_plan* p, int64_t n, int nr, int mr) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K / bs;
    const __m512 t32 = _mm512_loadu_ps(bnb_table_4bit(a->quant_type));
    const __m512i tab = (__m512i)_mm512_cvtne2ps_pbh(t32, t32);
    const uint16_t* A = (const uint16_t*)(const void*)p->A;
    __m512 acc[G4_FUSED_MAX_M][2];
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r) acc[m][r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nbr; ++b) {
        __m512 blk[G4_FUSED_MAX_M][2][2];
        for (int m = 0; m < mr; ++m)
            for (int r = 0; r < nr; ++r) blk[m][r][0] = blk[m][r][1] = _mm512_setzero_ps();
        for (int64_t k = b * bs; k < (b + 1) * bs; k += 64)
            for (int r = 0; r < nr; ++r) {
                const uint8_t* s = a->W + (n + r) * (K / 2) + k / 2;
                if ((k & 127) == 0) _mm_prefetch((const char*)s + G4_PREFETCH, _MM_HINT_T1);
                const __m512i d = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(const void*)s));
                const __m512bh ev = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(d, 4), tab);
                const __m512bh od = (__m512bh)_mm512_permutexvar_epi16(d, tab);
                for (int m = 0; m < mr; ++m) {
                    const uint16_t* x = A + m * Kp + k;
                    const __m512bh x0 = (__m512bh)_mm512_loadu_si512((const void*)x);
                    const __m512bh x1 = (__m512bh)_mm512_loadu_si512((const void*)(x + 32));
                    blk[m][r][0] = _mm512_dpbf16_ps(blk[m][r][0], x0, ev);
                    blk[m][r][1] = _mm512_dpbf16_ps(blk[m][r][1], x1, od);
                }
            }
        for (int r = 0; r < nr; ++r) {
            const __m512 sv = _mm512_set1_ps(bnb_scale_at(&a->scales, (n + r) * nbr + b));
            for (int m = 0; m < mr; ++m)
                acc[m][r] = _mm512_fmadd_ps(_mm512_add_ps(blk[m][r][0], blk[m][r][1]), sv, acc[m][r]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r) g4_store(a, m, n + r, _mm512_reduce_add_ps(acc[m][r]));
}

G4_BF16_TARGET static void g4_fused_std_rows_bf16(const g4_plan* p, int64_t n0, int64_t n1) {
    const int mr = (int)p->a->M;
    for (int64_t n = n0; n < n1; n += 2) {
        const int nr = n + 1 < n1 ? 2 : 1;
#define G4_SR(m)                                                                                                   \
    case m:                                                                                                        \
        if (nr == 2) g4_fused_std_bf16(p, n, 2, m);                                                                \
        else g4_fused_std_bf16(p, n, 1, m);                                                                        \
        break;
        switch (mr) { G4_SR(1) G4_SR(2) G4_SR(3) default: G4_SR(4) }
#undef G4_SR
    }
}

/* bf16 A row permuted per G4_STD_RUN_BF16 k: the even k then the odd k. */
static void g4_permute_std_runs_bf16(uint16_t* row, int64_t Kp) {
    uint16_t tmp[G4_STD_RUN_BF16];
    for (int64_t k = 0; k < Kp; k += G4_STD_RUN_BF16) {
        for (int i = 0; i < G4_STD_RUN_BF16 / 2; ++i) {
            tmp[i] = row[k + 2 * i];
            tmp[G4_STD_RUN_BF16 / 2 + i] = row[k + 2 * i + 1];
        }
        memcpy(row + k, tmp, sizeof(tmp));
    }
}

G4_BF16_TARGET static void g4_fused_group_bf16(const g4_plan* p, int64_t g, const float* const* sr) {
    switch (p->a->M) {
    case 1: g4_fused_bf16(p, g, 1, 8, 0, sr); break;
    case 2: g4_fused_bf16(p, g, 2, 8, 0, sr); break;
    case 3: g4_fused_bf16(p, g, 3, 8, 0, sr); break;
    default: g4_fused_bf16(p, g, 4, 8, 0, sr); break;
    }
}

static void g4_fused_group_f32(const g4_plan* p, int64_t g, const float* const* sr) {
    switch (p->a->M) {
    case 1: g4_fused_f32(p, g, 1, 8, 0, sr); break;
    case 2: g4_fused_f32(p, g, 2, 8, 0, sr); break;
    case 3: g4_fused_f32(p, g, 3, 8, 0, sr); break;
    default: g4_fused_f32(p, g, 4, 8, 0, sr); break;
    }
}

/* ─── AVX-512 gemm: A broadcast, lanes along n ───────────────────────────────────────────────────────────
 * The panel (up to 64 output columns) is dequantized row by row (16 rows at a time, the decoders above) and
 * transposed into tile[k][NP] (f32) or tile[k/2][NP] (bf16 pairs as one 32-bit element), so that one vector holds 16
 * columns: the kernel keeps 6 rows x 4 vectors of outputs in registers, broadcasts A (one f32, or one bf16 pair) and
 * issues 24 FMA / vdpbf16ps per 4 tile loads + 6 broadcasts. Every output is still one ascending-k sum, so the
 * order does not depend on the thread count. */
#define G4_XNP 64 /* max columns per panel (4 vectors) */

/* 16 x 16 transpose of 32-bit elements: dst[c][r] = src[r][c]. */
G4_INLINE void g4_transpose16(const uint32_t* src, int64_t ls, uint32_t* dst, int64_t ld) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512((const void*)(src + i * ls));
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) { /* r[4i + j], lane L = column 4L + j of rows 4i .. 4i + 3 */
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int j = 0; j < 4; ++j) { /* 4 x 4 transpose of 128-bit lanes */
        const __m512i x0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), x1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE);
        const __m512i y0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
        const __m512i y1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
        _mm512_storeu_si512((void*)(dst + (0 + j) * ld), _mm512_shuffle_i32x4(x0, y0, 0x88));
        _mm512_storeu_si512((void*)(dst + (4 + j) * ld), _mm512_shuffle_i32x4(x0, y0, 0xDD));
        _mm512_storeu_si512((void*)(dst + (8 + j) * ld), _mm512_shuffle_i32x4(x1, y1, 0x88));
        _mm512_storeu_si512((void*)(dst + (12 + j) * ld), _mm512_shuffle_i32x4(x1, y1, 0xDD));
    }
}

G4_INLINE void g4_store_vec(const bnb_gemm_4bit_args* a, int64_t m, int64_t n0, __m512 v) {
    float tmp[16];
    _mm512_storeu_ps(tmp, v);
    for (int i = 0; i < 16 && n0 + i < a->N; ++i) g4_store(a, m, n0 + i, tmp[i]);
}

/* out[m0 .. m0+mr, n0 .. n0+16nv] from the transposed f32 tile (L = Kp rows of ld floats). */
G4_INLINE void g4_nk_f32(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0, const float* tile, int64_t ld) {
    const int64_t Kp = p->Kp;
    const float* A = (const float*)p->A + m0 * Kp;
    __m512 acc[G4_MR][4];
    for (int m = 0; m < mr; ++m)
        for (int v = 0; v < nv; ++v) acc[m][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < Kp; ++k) {
        __m512 b[4];
        for (int v = 0; v < nv; ++v) b[v] = _mm512_loadu_ps(tile + k * ld + 16 * v);
        for (int m = 0; m < mr; ++m) {
            const __m512 x = _mm512_set1_ps(A[m * Kp + k]);
            for (int v = 0; v < nv; ++v) acc[m][v] = _mm512_fmadd_ps(x, b[v], acc[m][v]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int v = 0; v < nv; ++v) g4_store_vec(p->a, m0 + m, n0 + 16 * v, acc[m][v]);
}

G4_BF16_TARGET G4_INLINE void g4_nk_bf16(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0,
                                         const uint32_t* tile, int64_t ld) {
    const int64_t L = p->Kp / 2;
    const uint32_t* A = (const uint32_t*)(const void*)p->A + m0 * L; /* bf16 pairs */
    __m512 acc[G4_MR][4];
    for (int m = 0; m < mr; ++m)
        for (int v = 0; v < nv; ++v) acc[m][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < L; ++k) {
        __m512bh b[4];
        for (int v = 0; v < nv; ++v) b[v] = (__m512bh)_mm512_loadu_si512((const void*)(tile + k * ld + 16 * v));
        for (int m = 0; m < mr; ++m) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)A[m * L + k]);
            for (int v = 0; v < nv; ++v) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], x, b[v]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int v = 0; v < nv; ++v) g4_store_vec(p->a, m0 + m, n0 + 16 * v, acc[m][v]);
}

#define G4_CASE_NV(kernel, mr, nv, ...)                                                                            \
    switch (nv) {                                                                                                  \
    case 1: kernel(p, mr, 1, __VA_ARGS__); break;                                                                  \
    case 2: kernel(p, mr, 2, __VA_ARGS__); break;                                                                  \
    case 3: kernel(p, mr, 3, __VA_ARGS__); break;                                                                  \
    default: kernel(p, mr, 4, __VA_ARGS__); break;                                                                 \
    }
#define G4_CASE_MR_NV(kernel, mr, nv, ...)                                                                         \
    switch (mr) {                                                                                                  \
    case 1: G4_CASE_NV(kernel, 1, nv, __VA_ARGS__) break;                                                          \
    case 2: G4_CASE_NV(kernel, 2, nv, __VA_ARGS__) break;                                                          \
    case 3: G4_CASE_NV(kernel, 3, nv, __VA_ARGS__) break;                                                          \
    case 4: G4_CASE_NV(kernel, 4, nv, __VA_ARGS__) break;                                                          \
    case 5: G4_CASE_NV(kernel, 5, nv, __VA_ARGS__) break;                                                          \
    default: G4_CASE_NV(kernel, 6, nv, __VA_ARGS__) break;                                                         \
    }

static void g4_nk_f32_any(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0, const float* tile, int64_t ld) {
    G4_CASE_MR_NV(g4_nk_f32, mr, nv, m0, n0, tile, ld)
}
G4_BF16_TARGET static void g4_nk_bf16_any(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0,
                                          const uint32_t* tile, int64_t ld) {
    G4_CASE_MR_NV(g4_nk_bf16, mr, nv, m0, n0, tile, ld)
}

/* out[0 .. M, n0 .. n0+nrows] for M <= 4 from decoded rows [nrows][Kp] with the lanes-along-k dot kernels. */
G4_BF16_TARGET static void g4_dot_rows_bf16(const g4_plan* p, int64_t n0, int64_t nrows, const uint16_t* rows) {
    float sums[G4_MR][G4_NC];
    const int64_t Kp = p->Kp;
    const int mr = (int)p->a->M;
    for (int64_t c0 = 0; c0 < nrows; c0 += G4_NC) {
        const int nc = (int)(nrows - c0 < G4_NC ? nrows - c0 : G4_NC);
        const uint16_t* A = (const uint16_t*)(const void*)p->A;
        const uint16_t* B = rows + c0 * Kp;
        switch (mr * 8 + nc) {
#define G4_DR(m, c) case m * 8 + c: g4_dot_bf16(m, c, A, Kp, B, Kp, Kp, sums); break;
            G4_DR(1, 1) G4_DR(1, 2) G4_DR(1, 3) G4_DR(1, 4) G4_DR(2, 1) G4_DR(2, 2) G4_DR(2, 3) G4_DR(2, 4)
            G4_DR(3, 1) G4_DR(3, 2) G4_DR(3, 3) G4_DR(3, 4) G4_DR(4, 1) G4_DR(4, 2) G4_DR(4, 3) G4_DR(4, 4)
#undef G4_DR
        default: break;
        }
        for (int m = 0; m < mr; ++m)
            for (int c = 0; c < nc; ++c) g4_store(p->a, m, n0 + c0 + c, sums[m][c]);
    }
}

static void g4_dot_rows_f32(const g4_plan* p, int64_t n0, int64_t nrows, const float* rows) {
    float sums[G4_MR][G4_NC];
    const int64_t Kp = p->Kp;
    const int mr = (int)p->a->M;
    for (int64_t c0 = 0; c0 < nrows; c0 += G4_NC) {
        const int nc = (int)(nrows - c0 < G4_NC ? nrows - c0 : G4_NC);
        const float* A = (const float*)(const void*)p->A;
        const float* B = rows + c0 * Kp;
        switch (mr * 8 + nc) {
#define G4_DR(m, c) case m * 8 + c: g4_dot_f32(m, c, A, Kp, B, Kp, Kp, sums); break;
            G4_DR(1, 1) G4_DR(1, 2) G4_DR(1, 3) G4_DR(1, 4) G4_DR(2, 1) G4_DR(2, 2) G4_DR(2, 3) G4_DR(2, 4)
            G4_DR(3, 1) G4_DR(3, 2) G4_DR(3, 3) G4_DR(3, 4) G4_DR(4, 1) G4_DR(4, 2) G4_DR(4, 3) G4_DR(4, 4)
#undef G4_DR
        default: break;
        }
        for (int m = 0; m < mr; ++m)
            for (int c = 0; c < nc; ++c) g4_store(p->a, m, n0 + c0 + c, sums[m][c]);
    }
}

static void g4_dot_rows(const g4_plan* p, int64_t n0, int64_t nrows, const uint8_t* rows) {
    if (p->bf16) g4_dot_rows_bf16(p, n0, nrows, (const uint16_t*)(const void*)rows);
    else g4_dot_rows_f32(p, n0, nrows, (const float*)(const void*)rows);
}

/* scratch: tile [L][NP] 32-bit elements, then 16 decoded rows [16][Kp]. */
static void g4_panel_nk(g4_plan* p, int64_t panel, uint8_t* scratch) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t NP = p->NP, n0 = panel * NP, np = n0 + NP < a->N ? NP : a->N - n0, nv = bnb_ceil_div(np, 16);
    const int64_t L = p->bf16 ? p->Kp / 2 : p->Kp; /* 32-bit elements per decoded row */
    uint32_t* tile = (uint32_t*)(void*)scratch;
    uint8_t* rows = scratch + (size_t)(L * NP) * 4;
    for (int64_t c0 = 0; c0 < nv * 16; c0 += 16) {
        if (p->bf16) g4_decode_panel_bf16(p, n0 + c0, 16, (uint16_t*)(void*)rows);
        else g4_decode_panel_f32(p, n0 + c0, 16, (float*)(void*)rows);
        if (a->M <= G4_FUSED_MAX_M) { /* few rows of A: dot the decoded rows directly (lanes along k) */
            g4_dot_rows(p, n0 + c0, np - c0 < 16 ? np - c0 : 16, rows);
            continue;
        }
        for (int64_t l = 0; l < L; l += 16) g4_transpose16((const uint32_t*)(void*)rows + l, L, tile + l * NP + c0, NP);
    }
    if (a->M <= G4_FUSED_MAX_M) return;
    for (int64_t m0 = 0; m0 < a->M; m0 += G4_MR) {
        const int mr = (int)(a->M - m0 < G4_MR ? a->M - m0 : G4_MR);
        if (p->bf16) g4_nk_bf16_any(p, mr, (int)nv, m0, n0, tile, NP);
        else g4_nk_f32_any(p, mr, (int)nv, m0, n0, (const float*)tile, NP);
    }
}

#define G4_HAVE_FUSED 1
#define G4_HAVE_BF16 1

#else
/* ─── x86 AVX2 / AArch64 NEON kernels (F32 path) ───────────────────────────────────────────────────────────
 * Weights decode 16 at a time into f32 vectors holding exactly the reference values f32(table[q] * absmax): the
 * table is scaled once per block (per row), then
 *   AVX2: vpermps on the low 3 bits of each 32-bit code lane, once into each 8-entry half of the table, and a
 *         vblendvps on bit 3 (moved to the sign bit with one shift);
 *   NEON: the scaled table as 4 byte planes (vld4q_u8), 4 vqtbl1q_u8 on 16 code bytes, then vzip u8/u16 rebuild
 *         the 16 floats.
 * The fused gemv (M <= 4, G4 layout) decodes straight from the packed bytes; the STANDARD layout has its own fused
 * gemv on runs of 16 k: the 8 even k (high nibbles) then the 8 odd k (low nibbles), against a copy of A permuted
 * the same way (g4_permute_std_runs), so no shuffle of weights is needed. */
#if defined(G4_AVX2)
typedef __m256 g4_vf;
#define G4_VL 8
#define g4_vzero() _mm256_setzero_ps()
#define g4_vload(p) _mm256_loadu_ps(p)
#define g4_vstore(p, v) _mm256_storeu_ps((p), (v))
#define g4_vfma(x, y, acc) _mm256_fmadd_ps((x), (y), (acc))
#define g4_vadd(x, y) _mm256_add_ps((x), (y))
static inline float g4_vsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
typedef struct g4_lut {
    __m256 lo, hi; /* table[0..7] * s, table[8..15] * s */
} g4_lut;
G4_INLINE g4_lut g4_lut_make(const float* table, float s) {
    g4_lut l;
    const __m256 sv = _mm256_set1_ps(s);
    l.lo = _mm256_mul_ps(_mm256_loadu_ps(table), sv);
    l.hi = _mm256_mul_ps(_mm256_loadu_ps(table + 8), sv);
    return l;
}
/* idx: low 3 bits of each lane = code bits 0..2; sgn: bit 31 = code bit 3. */
G4_INLINE __m256 g4_lookup8(const g4_lut* l, __m256i idx, __m256i sgn) {
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(l->lo, idx), _mm256_permutevar8x32_ps(l->hi, idx),
                            _mm256_castsi256_ps(sgn));
}
/* G4 row chunk (64 bytes at s): k = 32t + 16h + 0..15 */
G4_INLINE void g4_dec_g4(const g4_lut* l, const uint8_t* s, int t, int h, g4_vf w[2]) {
    for (int v = 0; v < 2; ++v) {
        const __m256i d = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(const void*)(s + 32 * h + 16 * v)));
        w[v] = g4_lookup8(l, t == 0 ? d : _mm256_srli_epi32(d, 4 * t), _mm256_slli_epi32(d, 28 - 4 * t));
    }
}
/* STANDARD: 8 bytes at s = k .. k + 15; perm: w[0] = the 8 even k, w[1] = the 8 odd k; else k in order. */
G4_INLINE void g4_dec_std(const g4_lut* l, const uint8_t* s, int perm, g4_vf w[2]) {
    const __m256i d = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(const void*)s));
    const __m256 ev = g4_lookup8(l, _mm256_srli_epi32(d, 4), _mm256_slli_epi32(d, 24));
    const __m256 od = g4_lookup8(l, d, _mm256_slli_epi32(d, 28));
    if (perm) {
        w[0] = ev;
        w[1] = od;
        return;
    }
    const __m256 x = _mm256_unpacklo_ps(ev, od), y = _mm256_unpackhi_ps(ev, od); /* k 0-3|8-11, 4-7|12-15 */
    w[0] = _mm256_permute2f128_ps(x, y, 0x20);
    w[1] = _mm256_permute2f128_ps(x, y, 0x31);
}
#define G4_PREFETCH_L2(ptr) _mm_prefetch((const char*)(ptr), _MM_HINT_T1)
#elif defined(G4_NEON)
typedef float32x4_t g4_vf;
#define G4_VL 4
#define g4_vzero() vdupq_n_f32(0.0f)
#define g4_vload(p) vld1q_f32(p)
#define g4_vstore(p, v) vst1q_f32((p), (v))
#define g4_vfma(x, y, acc) vfmaq_f32((acc), (x), (y))
#define g4_vadd(x, y) vaddq_f32((x), (y))
static inline float g4_vsum(float32x4_t v) { return vaddvq_f32(v); }
typedef struct g4_lut {
    uint8x16x4_t b; /* byte j of table[q] * s in b.val[j][q] */
} g4_lut;
G4_INLINE g4_lut g4_lut_make(const float* table, float s) {
    float t[16];
    for (int i = 0; i < 4; ++i) vst1q_f32(t + 4 * i, vmulq_n_f32(vld1q_f32(table + 4 * i), s));
    g4_lut l;
    l.b = vld4q_u8((const uint8_t*)(const void*)t);
    return l;
}
/* 16 codes (one per byte, 0..15) → 16 floats in order */
G4_INLINE void g4_lookup16(const g4_lut* l, uint8x16_t q, g4_vf w[4]) {
    const uint8x16_t b0 = vqtbl1q_u8(l->b.val[0], q), b1 = vqtbl1q_u8(l->b.val[1], q);
    const uint8x16_t b2 = vqtbl1q_u8(l->b.val[2], q), b3 = vqtbl1q_u8(l->b.val[3], q);
    const uint16x8_t x0 = vreinterpretq_u16_u8(vzip1q_u8(b0, b1)), x1 = vreinterpretq_u16_u8(vzip2q_u8(b0, b1));
    const uint16x8_t y0 = vreinterpretq_u16_u8(vzip1q_u8(b2, b3)), y1 = vreinterpretq_u16_u8(vzip2q_u8(b2, b3));
    w[0] = vreinterpretq_f32_u16(vzip1q_u16(x0, y0));
    w[1] = vreinterpretq_f32_u16(vzip2q_u16(x0, y0));
    w[2] = vreinterpretq_f32_u16(vzip1q_u16(x1, y1));
    w[3] = vreinterpretq_f32_u16(vzip2q_u16(x1, y1));
}
G4_INLINE void g4_dec_g4(const g4_lut* l, const uint8_t* s, int t, int h, g4_vf w[4]) {
    const uint8x16x2_t x = vld2q_u8(s + 32 * h); /* val[0]: bits 0..7 of words 16h..16h+15, val[1]: bits 8..15 */
    const uint8x16_t b = x.val[t >> 1];
    g4_lookup16(l, (t & 1) ? vshrq_n_u8(b, 4) : vandq_u8(b, vdupq_n_u8(15)), w);
}
G4_INLINE void g4_dec_std(const g4_lut* l, const uint8_t* s, int perm, g4_vf w[4]) {
    const uint8x8_t x = vld1_u8(s), hi = vshr_n_u8(x, 4), lo = vand_u8(x, vdup_n_u8(15));
    g4_lookup16(l, perm ? vcombine_u8(hi, lo) : vcombine_u8(vzip1_u8(hi, lo), vzip2_u8(hi, lo)), w);
}
#define G4_PREFETCH_L2(ptr) __builtin_prefetch((const void*)(ptr), 0, 2)
#else
#error "ops_gemm4.c: no SIMD ISA enabled (expected AVX-512, AVX2 or NEON compiler flags)"
#endif
#define G4_W16 (16 / G4_VL) /* vectors per 16 decoded weights */
#define G4_STD_RUN 16       /* STANDARD fused gemv: k runs of 8 even + 8 odd */

/* Dequantize rows [n0, n0 + nrows) into tile[r][Kp] (f32): vector paths for the G4 layout and for STANDARD rows
 * with K % blocksize == 0 (rows start on a byte, every 16-k run lies in one block); else the portable decoder. */
static void g4_decode_panel_f32(const g4_plan* p, int64_t n0, int64_t nrows, float* tile) {
    const bnb_gemm_4bit_args* a = p->a;
    const float* table = bnb_table_4bit(a->quant_type);
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K % bs == 0 ? K / bs : 0;
    for (int64_t r = 0; r < nrows; ++r) {
        const int64_t n = n0 + r;
        float* dst = tile + r * Kp;
        g4_vf w[G4_W16];
        if (n >= a->N) {
            memset(dst, 0, (size_t)Kp * sizeof(float));
        } else if (a->layout == BNB_WEIGHT_BACKEND && nbr > 0) {
            const int64_t nch = Kp / G4_CHUNK;
            const uint8_t* src = a->W + ((n / G4_GROUP) * nch * G4_GROUP + n % G4_GROUP) * G4_CHUNK_BYTES;
            for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES)
                for (int t = 0; t < 4; ++t) {
                    const int64_t k = j * G4_CHUNK + 32 * t;
                    if (k >= K) {
                        memset(dst + k, 0, 32 * sizeof(float));
                        continue;
                    }
                    const g4_lut l = g4_lut_make(table, bnb_scale_at(&a->scales, n * nbr + (k >> p->lbs)));
                    for (int h = 0; h < 2; ++h) {
                        g4_dec_g4(&l, src, t, h, w);
                        for (int v = 0; v < G4_W16; ++v) g4_vstore(dst + k + 16 * h + G4_VL * v, w[v]);
                    }
                }
        } else if (a->layout == BNB_WEIGHT_STANDARD && nbr > 0) {
            const uint8_t* src = a->W + n * K / 2;
            for (int64_t b = 0; b < nbr; ++b) {
                const g4_lut l = g4_lut_make(table, bnb_scale_at(&a->scales, n * nbr + b));
                for (int64_t k = b * bs; k < (b + 1) * bs; k += 16) {
                    g4_dec_std(&l, src + k / 2, 0, w);
                    for (int v = 0; v < G4_W16; ++v) g4_vstore(dst + k + G4_VL * v, w[v]);
                }
            }
            for (int64_t k = K; k < Kp; ++k) dst[k] = 0.0f;
        } else {
            g4_decode_row_generic(p, n, dst);
        }
    }
}

G4_INLINE void g4_dot_f32(int mr, int nc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t Kp,
                          float sums[G4_MR][G4_NC]) {
    g4_vf acc[G4_MR][G4_NC];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = g4_vzero();
    for (int64_t k = 0; k < Kp; k += G4_VL) {
        g4_vf b[G4_NC];
        for (int c = 0; c < nc; ++c) b[c] = g4_vload(B + c * ldb + k);
        for (int m = 0; m < mr; ++m) {
            const g4_vf x = g4_vload(A + m * lda + k);
            for (int c = 0; c < nc; ++c) acc[m][c] = g4_vfma(x, b[c], acc[m][c]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) sums[m][c] = g4_vsum(acc[m][c]);
}

/* Fused gemv on the G4 layout: rows [0, mr) of A against group rows [c0, c0 + nc) of group g (srow[c]: the
 * resolved scales of each row). Per 64 bytes of a row: the table scaled per block, 16 decodes of 8 (AVX2) or
 * 8 of 16 (NEON) weights, FMA with A (f32, from the converted scratch). */
/* Software prefetch 8 KiB ahead in the group's stream, into L2 (T1): one line per 64-byte row chunk. Measured on
 * the 2-vCPU Zen 4 (K = 8192, N = 16384, cold): 1 KiB into L1 reached a median 0.35-0.40 of the read bandwidth
 * measured alongside, 8-16 KiB into L2 0.9-0.95 (1 thread, quiet moments; the machine is shared). */
#define G4_PREFETCH 8192
G4_INLINE void g4_fused_f32(const g4_plan* p, int64_t g, int mr, int nc, int c0, const float* const* srow) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t Kp = p->Kp, nch = Kp / G4_CHUNK, bs = a->blocksize, last = a->K / bs - 1;
    const float* table = bnb_table_4bit(a->quant_type);
    const float* A = (const float*)(const void*)p->A;
    const uint8_t* src = a->W + g * nch * G4_GROUP * G4_CHUNK_BYTES;
    /* acc lives in memory (L1) between row chunks; each row chunk works on register copies: all 8 rows of the
     * group in one pass for every M, at 2 * mr loads/stores per 16 * mr FMA */
    g4_vf acc[G4_FUSED_MAX_M][G4_GROUP];
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) acc[m][c] = g4_vzero();
    for (int64_t j = 0; j < nch; ++j, src += G4_GROUP * G4_CHUNK_BYTES) {
        for (int c = 0; c < nc; ++c) {
            const uint8_t* s = src + (c0 + c) * G4_CHUNK_BYTES;
            G4_PREFETCH_L2(s + G4_PREFETCH);
            g4_vf r[G4_FUSED_MAX_M];
            for (int m = 0; m < mr; ++m) r[m] = acc[m][c];
            g4_lut l = g4_lut_make(table, srow[c][0]);
            for (int t = 0; t < 4; ++t) {
                const int64_t k = j * G4_CHUNK + 32 * t;
                if (t == 0 || (k & (bs - 1)) == 0) {
                    const int64_t b = (k >> p->lbs) < last ? (k >> p->lbs) : last;
                    l = g4_lut_make(table, srow[c][b]);
                }
                for (int h = 0; h < 2; ++h) {
                    g4_vf w[G4_W16];
                    g4_dec_g4(&l, s, t, h, w);
                    for (int m = 0; m < mr; ++m)
                        for (int v = 0; v < G4_W16; ++v)
                            r[m] = g4_vfma(g4_vload(A + m * Kp + k + 16 * h + G4_VL * v), w[v], r[m]);
                }
            }
            for (int m = 0; m < mr; ++m) acc[m][c] = r[m];
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int c = 0; c < nc; ++c) {
            const int64_t n = g * G4_GROUP + c0 + c;
            if (n < a->N) g4_store(a, m, n, g4_vsum(acc[m][c]));
        }
}

/* Fused gemv on the STANDARD layout (rows of K/2 contiguous bytes; K % bs == 0): rows nr (1 or 2) from n, rows
 * [0, mr) of A; 8 bytes = 16 k per step, decoded as the 8 even k then the 8 odd k against A permuted the same way
 * (g4_permute_std_runs). Accumulators: per (row of A, weight row), two for mr <= 2. */
G4_INLINE void g4_fused_std_f32(const g4_plan* p, int64_t n, int nr, int mr) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t K = a->K, Kp = p->Kp, bs = a->blocksize, nbr = K / bs;
    const float* table = bnb_table_4bit(a->quant_type);
    const float* A = (const float*)(const void*)p->A;
    enum { NA = 2 }; /* accumulators per (m, r) when mr <= 2 */
    g4_vf acc[G4_FUSED_MAX_M][2][NA];
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r)
            for (int i = 0; i < NA; ++i) acc[m][r][i] = g4_vzero();
    for (int64_t b = 0; b < nbr; ++b) {
        g4_lut lut[2];
        for (int r = 0; r < nr; ++r) lut[r] = g4_lut_make(table, bnb_scale_at(&a->scales, (n + r) * nbr + b));
        for (int64_t k = b * bs; k < (b + 1) * bs; k += 16)
            for (int r = 0; r < nr; ++r) {
                const uint8_t* s = a->W + (n + r) * (K / 2) + k / 2;
                if ((k & 127) == 0) G4_PREFETCH_L2(s + G4_PREFETCH);
                g4_vf w[G4_W16];
                g4_dec_std(&lut[r], s, 1, w);
                for (int m = 0; m < mr; ++m)
                    for (int v = 0; v < G4_W16; ++v) {
                        const int i = mr <= 2 ? v % NA : 0;
                        acc[m][r][i] = g4_vfma(g4_vload(A + m * Kp + k + G4_VL * v), w[v], acc[m][r][i]);
                    }
            }
    }
    for (int m = 0; m < mr; ++m)
        for (int r = 0; r < nr; ++r) {
            g4_vf t = acc[m][r][0];
            if (mr <= 2)
                for (int i = 1; i < NA; ++i) t = g4_vadd(t, acc[m][r][i]);
            g4_store(a, m, n + r, g4_vsum(t));
        }
}

static void g4_fused_group_f32(const g4_plan* p, int64_t g, const float* const* sr) {
    switch (p->a->M) {
    case 1: g4_fused_f32(p, g, 1, 8, 0, sr); break;
    case 2: g4_fused_f32(p, g, 2, 8, 0, sr); break;
    case 3: g4_fused_f32(p, g, 3, 8, 0, sr); break;
    default: g4_fused_f32(p, g, 4, 8, 0, sr); break;
    }
}

#define G4_HAVE_FUSED 1
#define G4_HAVE_BF16 0
#endif

/* STANDARD fused gemv over rows [n0, n1): pairs of rows, compile-time M. */
static void g4_fused_std_rows(const g4_plan* p, int64_t n0, int64_t n1) {
    const int mr = (int)p->a->M;
    for (int64_t n = n0; n < n1; n += 2) {
        const int nr = n + 1 < n1 ? 2 : 1;
#define G4_SR(m)                                                                                                   \
    case m:                                                                                                        \
        if (nr == 2) g4_fused_std_f32(p, n, 2, m);                                                                 \
        else g4_fused_std_f32(p, n, 1, m);                                                                         \
        break;
        switch (mr) { G4_SR(1) G4_SR(2) G4_SR(3) default: G4_SR(4) }
#undef G4_SR
    }
}

/* A row permuted for the STANDARD fused gemv: per G4_STD_RUN k, the even k then the odd k. */
static void g4_permute_std_runs(float* row, int64_t Kp) {
    float tmp[G4_STD_RUN];
    for (int64_t k = 0; k < Kp; k += G4_STD_RUN) {
        for (int i = 0; i < G4_STD_RUN / 2; ++i) {
            tmp[i] = row[k + 2 * i];
            tmp[G4_STD_RUN / 2 + i] = row[k + 2 * i + 1];
        }
        memcpy(row + k, tmp, sizeof(tmp));
    }
}

/* A row → f32, zero-padded to Kp (exact for every dtype). */
static void g4_convert_row_f32(const bnb_gemm_4bit_args* a, int64_t m, int64_t Kp, float* dst) {
    const int64_t K = a->K;
    int64_t k = 0;
    if (a->A.dtype == BNB_DTYPE_F32) {
        memcpy(dst, (const float*)a->A.data + m * a->A.row_stride, (size_t)K * sizeof(float));
        k = K;
    } else {
        const uint16_t* src = (const uint16_t*)a->A.data + m * a->A.row_stride;
        if (a->A.dtype == BNB_DTYPE_BF16) {
            for (; k < K; ++k) {
                const uint32_t u = (uint32_t)src[k] << 16;
                memcpy(dst + k, &u, sizeof(u));
            }
        } else {
#if defined(G4_AVX512)
            for (; k + 16 <= K; k += 16)
                _mm512_storeu_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + k))));
#elif defined(G4_AVX2)
            for (; k + 8 <= K; k += 8)
                _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + k))));
#endif
            for (; k < K; ++k) dst[k] = bnb_f16_to_f32(src[k]);
        }
    }
    for (; k < Kp; ++k) dst[k] = 0.0f;
}

/* ─── drivers ────────────────────────────────────────────────────────────────────────────────────────────── */

static void g4_convert_task(void* arg, int64_t task) {
    g4_plan* p = (g4_plan*)arg;
    const int64_t m1 = (task + 1) * p->rows_per_task < p->a->M ? (task + 1) * p->rows_per_task : p->a->M;
    for (int64_t m = task * p->rows_per_task; m < m1; ++m) {
#if G4_HAVE_BF16
        if (p->bf16) {
            g4_convert_row_bf16(p->a, m, p->Kp, (uint16_t*)(p->A + (size_t)(m * p->Kp) * 2));
            if (p->std_fused) g4_permute_std_runs_bf16((uint16_t*)(p->A + (size_t)(m * p->Kp) * 2), p->Kp);
            continue;
        }
#endif
        g4_convert_row_f32(p->a, m, p->Kp, (float*)(p->A + (size_t)(m * p->Kp) * 4));
#if G4_HAVE_FUSED
        if (p->std_fused) g4_permute_std_runs((float*)(p->A + (size_t)(m * p->Kp) * 4), p->Kp);
#endif
    }
}

/* Calls kernel(mr, nc, ...) with compile-time mr, nc so each instance keeps its accumulators in registers. */
#define G4_CASE_NC(kernel, mr, nc, ...)                                                                            \
    switch (nc) {                                                                                                  \
    case 1: kernel(mr, 1, __VA_ARGS__); break;                                                                     \
    case 2: kernel(mr, 2, __VA_ARGS__); break;                                                                     \
    case 3: kernel(mr, 3, __VA_ARGS__); break;                                                                     \
    default: kernel(mr, 4, __VA_ARGS__); break;                                                                    \
    }

#if !defined(G4_AVX512) /* AVX-512 uses g4_panel_nk */
static void g4_dot_f32_any(int mr, int nc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t Kp,
                           float sums[G4_MR][G4_NC]) {
    switch (mr) {
    case 1: G4_CASE_NC(g4_dot_f32, 1, nc, A, lda, B, ldb, Kp, sums) break;
    case 2: G4_CASE_NC(g4_dot_f32, 2, nc, A, lda, B, ldb, Kp, sums) break;
#if G4_MR >= 3
    case 3: G4_CASE_NC(g4_dot_f32, 3, nc, A, lda, B, ldb, Kp, sums) break;
#endif
#if G4_MR >= 4
    case 4: G4_CASE_NC(g4_dot_f32, 4, nc, A, lda, B, ldb, Kp, sums) break;
#endif
#if G4_MR >= 6
    case 5: G4_CASE_NC(g4_dot_f32, 5, nc, A, lda, B, ldb, Kp, sums) break;
    case 6: G4_CASE_NC(g4_dot_f32, 6, nc, A, lda, B, ldb, Kp, sums) break;
#endif
    default: break;
    }
}

#if G4_HAVE_BF16
G4_BF16_TARGET static void g4_dot_bf16_any(int mr, int nc, const uint16_t* A, int64_t lda, const uint16_t* B,
                                           int64_t ldb, int64_t Kp, float sums[G4_MR][G4_NC]) {
    switch (mr) {
    case 1: G4_CASE_NC(g4_dot_bf16, 1, nc, A, lda, B, ldb, Kp, sums) break;
    case 2: G4_CASE_NC(g4_dot_bf16, 2, nc, A, lda, B, ldb, Kp, sums) break;
    case 3: G4_CASE_NC(g4_dot_bf16, 3, nc, A, lda, B, ldb, Kp, sums) break;
    case 4: G4_CASE_NC(g4_dot_bf16, 4, nc, A, lda, B, ldb, Kp, sums) break;
    case 5: G4_CASE_NC(g4_dot_bf16, 5, nc, A, lda, B, ldb, Kp, sums) break;
    default: G4_CASE_NC(g4_dot_bf16, 6, nc, A, lda, B, ldb, Kp, sums) break;
    }
}
#endif

#if defined(G4_AVX2)
/* ─── AVX2 gemm (M > 4): A broadcast, lanes along n, as the AVX-512 g4_panel_nk ─────────────────────────────
 * The panel (up to G4_XNP columns) is dequantized 8 rows at a time and transposed into tile[k][NP] (f32); the kernel
 * keeps 6 rows of A x 2 vectors (16 columns) of outputs in registers: 12 FMA per 2 tile loads + 6 broadcasts. Every
 * output is one ascending-k FMA chain, independent of the thread count. */
#define G4_XNP 32
#define G4_XMR 6

/* 8 x 8 transpose of floats: dst[c][r] = src[r][c]. */
G4_INLINE void g4_transpose8(const float* src, int64_t ls, float* dst, int64_t ld) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ls);
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
        r[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
        _mm256_storeu_ps(dst + j * ld, _mm256_permute2f128_ps(r[j], r[4 + j], 0x20));
        _mm256_storeu_ps(dst + (4 + j) * ld, _mm256_permute2f128_ps(r[j], r[4 + j], 0x31));
    }
}

G4_INLINE void g4_store_vec8(const bnb_gemm_4bit_args* a, int64_t m, int64_t n0, __m256 v) {
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    for (int i = 0; i < 8 && n0 + i < a->N; ++i) g4_store(a, m, n0 + i, tmp[i]);
}

G4_INLINE void g4_nk_avx2(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0, const float* tile, int64_t ld) {
    const int64_t Kp = p->Kp;
    const float* A = (const float*)(const void*)p->A + m0 * Kp;
    __m256 acc[G4_XMR][2];
    for (int m = 0; m < G4_XMR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < Kp; ++k) {
        __m256 b[2];
        for (int v = 0; v < nv; ++v) b[v] = _mm256_loadu_ps(tile + k * ld + 8 * v);
        for (int m = 0; m < mr; ++m) {
            const __m256 x = _mm256_broadcast_ss(A + m * Kp + k);
            for (int v = 0; v < nv; ++v) acc[m][v] = _mm256_fmadd_ps(x, b[v], acc[m][v]);
        }
    }
    for (int m = 0; m < mr; ++m)
        for (int v = 0; v < nv; ++v) g4_store_vec8(p->a, m0 + m, n0 + 8 * v, acc[m][v]);
}

/* The full 6 x 2 block with named accumulators (gcc keeps an array of 12 ymm accumulators in memory). */
static void g4_nk_avx2_6x2(const g4_plan* p, int64_t m0, int64_t n0, const float* tile, int64_t ld) {
    const int64_t Kp = p->Kp;
    const float* A = (const float*)(const void*)p->A + m0 * Kp;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < Kp; ++k) {
        const __m256 b0 = _mm256_loadu_ps(tile + k * ld), b1 = _mm256_loadu_ps(tile + k * ld + 8);
        __m256 x = _mm256_broadcast_ss(A + k);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(A + Kp + k);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(A + 2 * Kp + k);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(A + 3 * Kp + k);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(A + 4 * Kp + k);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(A + 5 * Kp + k);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    const __m256 r[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int m = 0; m < 6; ++m)
        for (int v = 0; v < 2; ++v) g4_store_vec8(p->a, m0 + m, n0 + 8 * v, r[m][v]);
}

static void g4_nk_avx2_any(const g4_plan* p, int mr, int nv, int64_t m0, int64_t n0, const float* tile, int64_t ld) {
    if (mr == 6 && nv == 2) {
        g4_nk_avx2_6x2(p, m0, n0, tile, ld);
        return;
    }
    switch (mr * 4 + nv) {
#define G4_NKA(m)                                                                                                  \
    case m * 4 + 1: g4_nk_avx2(p, m, 1, m0, n0, tile, ld); break;                                                  \
    case m * 4 + 2: g4_nk_avx2(p, m, 2, m0, n0, tile, ld); break;
        case 6 * 4 + 1: g4_nk_avx2(p, 6, 1, m0, n0, tile, ld); break;
        G4_NKA(1) G4_NKA(2) G4_NKA(3) G4_NKA(4) G4_NKA(5)
#undef G4_NKA
    default: break;
    }
}

/* scratch: tile [Kp][NP] floats, then 8 decoded rows [8][Kp]. */
static void g4_panel_nk_avx2(g4_plan* p, int64_t panel, uint8_t* scratch) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t NP = p->NP, n0 = panel * NP, np = n0 + NP < a->N ? NP : a->N - n0, Kp = p->Kp;
    float* tile = (float*)(void*)scratch;
    float* rows = tile + Kp * NP;
    for (int64_t c0 = 0; c0 < np; c0 += 8) {
        g4_decode_panel_f32(p, n0 + c0, 8, rows);
        for (int64_t k = 0; k < Kp; k += 8) g4_transpose8(rows + k, Kp, tile + k * NP + c0, NP);
    }
    for (int64_t m0 = 0; m0 < a->M; m0 += G4_XMR) {
        const int mr = (int)(a->M - m0 < G4_XMR ? a->M - m0 : G4_XMR);
        for (int64_t c0 = 0; c0 < np; c0 += 16) {
            const int nv = np - c0 > 8 ? 2 : 1;
            g4_nk_avx2_any(p, mr, nv, m0, n0 + c0, tile + c0, NP);
        }
    }
}
#endif

/* One panel of NP output columns: dequantize it into this task's tile, then every row block of A against it. */
static void g4_panel(g4_plan* p, int64_t panel, uint8_t* tile) {
    const bnb_gemm_4bit_args* a = p->a;
    const int64_t n0 = panel * p->NP, np = n0 + p->NP < a->N ? p->NP : a->N - n0, Kp = p->Kp;
    float sums[G4_MR][G4_NC];
#if G4_HAVE_BF16
    if (p->bf16) g4_decode_panel_bf16(p, n0, np, (uint16_t*)tile);
    else
#endif
        g4_decode_panel_f32(p, n0, np, (float*)tile);
    for (int64_t m0 = 0; m0 < a->M; m0 += G4_MR) {
        const int mr = (int)(a->M - m0 < G4_MR ? a->M - m0 : G4_MR);
        for (int64_t c0 = 0; c0 < np; c0 += G4_NC) {
            const int nc = (int)(np - c0 < G4_NC ? np - c0 : G4_NC);
#if G4_HAVE_BF16
            if (p->bf16)
                g4_dot_bf16_any(mr, nc, (const uint16_t*)p->A + m0 * Kp, Kp, (const uint16_t*)tile + c0 * Kp, Kp, Kp,
                                sums);
            else
#endif
                g4_dot_f32_any(mr, nc, (const float*)p->A + m0 * Kp, Kp, (const float*)tile + c0 * Kp, Kp, Kp, sums);
            for (int m = 0; m < mr; ++m)
                for (int c = 0; c < nc; ++c) g4_store(a, m0 + m, n0 + c0 + c, sums[m][c]);
        }
    }
}
#endif

/* Task t owns tile t and claims panels until none is left (which thread computes a panel does not matter). */
static void g4_panel_task(void* arg, int64_t task) {
    g4_plan* p = (g4_plan*)arg;
    uint8_t* tile = p->tiles + (size_t)task * (size_t)p->panel_bytes;
    for (;;) {
        const int64_t panel = (int64_t)atomic_fetch_add(&p->next, 1);
        if (panel >= p->panels) break;
#if defined(G4_AVX512)
        g4_panel_nk(p, panel, tile);
#else
#if defined(G4_AVX2)
        if (p->a->M > G4_FUSED_MAX_M) {
            g4_panel_nk_avx2(p, panel, tile);
            continue;
        }
#endif
        g4_panel(p, panel, tile);
#endif
    }
}

#if G4_HAVE_FUSED
#define G4_FUSED_GROUPS_PER_CLAIM 4
/* Task t owns scale buffer t and claims batches of groups (each output row is computed whole by one task). */
static void g4_fused_task(void* arg, int64_t task) {
    g4_plan* p = (g4_plan*)arg;
    const int64_t groups = bnb_ceil_div(p->a->N, G4_GROUP);
    float* buf = (float*)(void*)(p->tiles + (size_t)task * (size_t)(p->a->K / p->a->blocksize) * G4_GROUP * 4);
    for (;;) {
        const int64_t g0 = (int64_t)atomic_fetch_add(&p->next, 1) * G4_FUSED_GROUPS_PER_CLAIM;
        if (g0 >= groups) break;
        if (p->std_fused) { /* the claim's rows, in memory order */
            const int64_t g1 = g0 + G4_FUSED_GROUPS_PER_CLAIM < groups ? g0 + G4_FUSED_GROUPS_PER_CLAIM : groups;
            const int64_t n1 = g1 * G4_GROUP < p->a->N ? g1 * G4_GROUP : p->a->N;
#if G4_HAVE_BF16
            if (p->bf16) g4_fused_std_rows_bf16(p, g0 * G4_GROUP, n1);
            else
#endif
                g4_fused_std_rows(p, g0 * G4_GROUP, n1);
            continue;
        }
        for (int64_t g = g0; g < groups && g < g0 + G4_FUSED_GROUPS_PER_CLAIM; ++g) {
            const float* srow[G4_GROUP];
            g4_group_scales(p, g, buf, srow);
#if G4_HAVE_BF16
            if (p->bf16) g4_fused_group_bf16(p, g, srow);
            else
#endif
                g4_fused_group_f32(p, g, srow);
        }
    }
}
#endif

static void* g4_align64(void* ptr) { return (void*)(((uintptr_t)ptr + 63) & ~(uintptr_t)63); }

static bnb_status g4_run(const char* op, bnb_context* context, const bnb_gemm_4bit_args* a) {
    g4_plan p;
    memset(&p, 0, sizeof(p));
    if (a->M == 0 || a->N == 0) return BNB_OK;
    if (a->K == 0) { /* empty sum: out = bias (or 0) */
        for (int64_t m = 0; m < a->M; ++m)
            for (int64_t n = 0; n < a->N; ++n) g4_store(a, m, n, 0.0f);
        return BNB_OK;
    }
    p.a = a;
#if G4_HAVE_BF16
    /* bf16 activations compute in bf16 (vdpbf16ps); f32/f16 activations keep float32 products */
    p.bf16 = a->A.dtype == BNB_DTYPE_BF16 && (context->features & BNB_CPU_FEATURE_AVX512BF16) != 0;
#endif
#if defined(BNB_GEMM4_FORCE_F32) /* test builds: exercise the F32 path on a BF16 machine */
    p.bf16 = 0;
#endif
    p.Kp = g4_kp(a->K);
    while (((int64_t)1 << p.lbs) < a->blocksize) ++p.lbs;
    /* fused gemv (weights decoded into registers, streamed once): G4 layout, or STANDARD rows */
    const int fused = G4_HAVE_FUSED && (a->layout == BNB_WEIGHT_BACKEND || a->layout == BNB_WEIGHT_STANDARD) &&
                      a->M <= G4_FUSED_MAX_M && a->K % a->blocksize == 0;
    p.std_fused = fused && a->layout == BNB_WEIGHT_STANDARD;
    if (p.std_fused && a->blocksize < 64) p.bf16 = 0; /* the BF16 kernel steps 64 k inside one block */
    p.esize = p.bf16 ? 2 : 4;
    const int64_t threads = bnb_thread_pool_size(context->pool);
#if defined(G4_AVX512)
    /* panel: 64 columns (16 at smaller tiles) whose transposed tile stays <= G4_TILE_TARGET; + 16 decoded rows */
    int64_t np = G4_XNP;
    while (np > 16 && p.Kp * np * (int64_t)p.esize > G4_TILE_TARGET) np /= 2;
    if (np > bnb_ceil_div(a->N, 16) * 16) np = bnb_ceil_div(a->N, 16) * 16;
    const int64_t panel_bytes = p.Kp * np * (int64_t)p.esize + 16 * p.Kp * (int64_t)p.esize + 64;
#else
    /* panel width: a multiple of 8 (G4 groups) whose tile stays around G4_TILE_TARGET bytes */
    int64_t np = G4_TILE_TARGET / (p.Kp * (int64_t)p.esize) / G4_GROUP * G4_GROUP;
    if (np < G4_GROUP) np = G4_GROUP;
    if (np > bnb_ceil_div(a->N, G4_GROUP) * G4_GROUP) np = bnb_ceil_div(a->N, G4_GROUP) * G4_GROUP;
    int64_t panel_bytes = np * p.Kp * (int64_t)p.esize + 64;
#if defined(G4_AVX2)
    if (a->M > G4_FUSED_MAX_M) { /* transposed tile of up to G4_XNP columns <= G4_TILE_TARGET, + 8 decoded rows */
        np = G4_XNP;
        while (np > 8 && p.Kp * np * 4 > G4_TILE_TARGET) np /= 2;
        if (np > bnb_ceil_div(a->N, 8) * 8) np = bnb_ceil_div(a->N, 8) * 8;
        panel_bytes = p.Kp * np * 4 + 8 * p.Kp * 4 + 64;
    }
#endif
#endif
    p.NP = np;
    p.panels = bnb_ceil_div(a->N, np);
    p.panel_bytes = panel_bytes / 64 * 64;
    const int64_t work = fused ? bnb_ceil_div(bnb_ceil_div(a->N, 8), 4) : p.panels;
    const int64_t tasks = work < threads ? work : threads;
    const size_t a_bytes = (size_t)a->M * (size_t)p.Kp * p.esize;
    /* per task: a dequantized panel, or (fused, nested absmax) the resolved scales of one group */
    const size_t tile_bytes = fused ? (size_t)tasks * (size_t)(a->scales.nested ? a->K / a->blocksize * G4_GROUP * 4 : 0)
                                    : (size_t)tasks * (size_t)panel_bytes;
    void* scratch = malloc(a_bytes + tile_bytes + 128);
    if (scratch == NULL)
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate %zu bytes of scratch (M = %lld, K = %lld)",
                        a_bytes + tile_bytes + 128, (long long)a->M, (long long)a->K);
    p.A = (uint8_t*)g4_align64(scratch);
    p.tiles = (uint8_t*)g4_align64(p.A + a_bytes);
    atomic_init(&p.next, 0);

    p.rows_per_task = bnb_ceil_div(a->M, threads * 4);
    bnb_parallel_for(context->pool, bnb_ceil_div(a->M, p.rows_per_task), g4_convert_task, &p);
#if G4_HAVE_FUSED
    if (fused) {
        bnb_parallel_for(context->pool, tasks, g4_fused_task, &p);
        free(scratch);
        return BNB_OK;
    }
#endif
    bnb_parallel_for(context->pool, tasks, g4_panel_task, &p);
    free(scratch);
    return BNB_OK;
}

/* The shared validator checks W against the standard size; the G4 layout is larger. */
static bnb_status g4_validate(const char* op, bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                              int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                              const bnb_tensor* bias, bnb_tensor* out, bnb_gemm_4bit_args* r) {
    BNB_TRY(bnb_validate_gemm_4bit(op, context, A, W, weight_format, BNB_WEIGHT_STANDARD, absmax, quant_type,
                                   blocksize, bias, out, r));
    if (weight_format == BNB_WEIGHT_BACKEND) {
        BNB_TRY(g4_check_shape(op, r->N, r->K));
        BNB_TRY(bnb_check_input(op, "W", W, BNB_DTYPE_BIT(BNB_DTYPE_U8), g4_bytes(r->N, r->K), NULL));
        r->layout = BNB_WEIGHT_BACKEND;
    }
    return BNB_OK;
}

bnb_status BNB_CALL bnb_cpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(g4_validate("gemv_4bit", context, A, W, weight_format, absmax, quant_type, blocksize, bias, out, &a));
    return g4_run("gemv_4bit", context, &a);
}

bnb_status BNB_CALL bnb_cpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W,
                                      int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                                      int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    bnb_gemm_4bit_args a;
    BNB_TRY(g4_validate("gemm_4bit", context, A, W, weight_format, absmax, quant_type, blocksize, bias, out, &a));
    return g4_run("gemm_4bit", context, &a);
}
