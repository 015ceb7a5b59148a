/* Packed 4-bit weight layouts: size query, pack, unpack (layout diagrams in bnb_quant.h).
 *   BNB_WEIGHT_STANDARD  bitsandbytes' layout; pack/unpack are byte copies
 *   BNB_WEIGHT_BNB_CPU   bitsandbytes' _convert_weight_packed_for_cpu layout [N, K/2] (spec §2.10.4)
 *   BNB_WEIGHT_BACKEND   the calling backend's choice (`backend_format`); STANDARD in the reference
 */
#include "bnb_quant.h"

#include <string.h>

/* ─── validation ─────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status bnb_validate_weight_layout(const char* op, int32_t format, int32_t backend_format, int64_t N, int64_t K,
                                      int64_t blocksize, bnb_weight_pack_args* out) {
    bnb_weight_pack_args r = {0};
    if (format != BNB_WEIGHT_STANDARD && format != BNB_WEIGHT_BNB_CPU && format != BNB_WEIGHT_BACKEND)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "format = %d is not BNB_WEIGHT_STANDARD (%d), BNB_WEIGHT_BNB_CPU (%d) or BNB_WEIGHT_BACKEND (%d)",
                        (int)format, BNB_WEIGHT_STANDARD, BNB_WEIGHT_BNB_CPU, BNB_WEIGHT_BACKEND);
    r.layout = format == BNB_WEIGHT_BACKEND ? backend_format : format;
    if (N < 0 || K < 0)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "N = %lld, K = %lld: extents must be >= 0", (long long)N,
                        (long long)K);
    if (K > 0 && N > (INT64_MAX - 1) / K)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "N = %lld, K = %lld: N*K overflows int64", (long long)N,
                        (long long)K);
    BNB_TRY(bnb_check_blocksize(op, "blocksize", blocksize));
    if (r.layout == BNB_WEIGHT_BNB_CPU && (N % 32 != 0 || K % 2 != 0))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                        "N = %lld, K = %lld: the BNB_CPU layout needs N %% 32 == 0 and K even", (long long)N,
                        (long long)K);
    r.N = N;
    r.K = K;
    r.blocksize = blocksize;
    r.std_bytes = (N * K + 1) / 2;
    r.bytes = r.std_bytes; /* both layouts hold two codes per byte; BNB_CPU has no padding (N*K even) */
    *out = r;
    return BNB_OK;
}

bnb_status bnb_validate_weight_pack_size(const char* op, bnb_context* context, int32_t format,
                                         int32_t backend_format, int64_t N, int64_t K, int64_t blocksize,
                                         size_t* out_bytes, bnb_weight_pack_args* out) {
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_check_not_null(op, "out_bytes", out_bytes));
    BNB_TRY(bnb_validate_weight_layout(op, format, backend_format, N, K, blocksize, out));
    if ((uint64_t)out->bytes > (uint64_t)SIZE_MAX)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "N = %lld, K = %lld: %lld bytes exceed size_t", (long long)N,
                        (long long)K, (long long)out->bytes);
    return BNB_OK;
}

bnb_status bnb_validate_weight_pack(const char* op, bnb_context* context, int32_t format, int32_t backend_format,
                                    int unpack, const bnb_tensor* packed, int64_t N, int64_t K, int64_t blocksize,
                                    bnb_tensor* out_packed, bnb_weight_pack_args* out) {
    bnb_weight_pack_args r;
    const char* out_name = unpack ? "out_standard" : "out_packed";
    BNB_TRY(bnb_check_context(op, context, NULL));
    BNB_TRY(bnb_validate_weight_layout(op, format, backend_format, N, K, blocksize, &r));
    const int64_t in_bytes = unpack ? r.bytes : r.std_bytes;
    const int64_t out_bytes = unpack ? r.std_bytes : r.bytes;
    BNB_TRY(bnb_check_input(op, "packed", packed, BNB_DTYPE_BIT(BNB_DTYPE_U8), in_bytes, NULL));
    BNB_TRY(bnb_check_output(op, out_name, out_packed, BNB_DTYPE_BIT(BNB_DTYPE_U8), out_bytes, NULL));
    r.src = (const uint8_t*)packed->data;
    r.dst = (uint8_t*)out_packed->data;
    *out = r;
    return BNB_OK;
}

/* ─── kernels ────────────────────────────────────────────────────────────────────────────────────────────── */

/* standard → BNB_CPU: each output byte gathers row 32nb+m (low nibble) and row 32nb+16+m (high nibble). */
static void pack_cpu_layout(const uint8_t* standard, int64_t N, int64_t K, uint8_t* out) {
    for (int64_t n = 0; n < N; n += 32)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t m = 0; m < 16; ++m) {
                const uint8_t lo = bnb_nibble_standard(standard, (n + m) * K + k);
                const uint8_t hi = bnb_nibble_standard(standard, (n + 16 + m) * K + k);
                out[bnb_cpu_layout_byte(K, n + m, k)] = (uint8_t)((hi << 4) | lo);
            }
}

/* BNB_CPU → standard: K is even, so row n's codes start on a byte boundary and pair (k, k+1) fills one byte. */
static void unpack_cpu_layout(const uint8_t* cpu, int64_t N, int64_t K, uint8_t* out) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; k += 2) {
            const uint8_t even = bnb_nibble_cpu_layout(cpu, K, n, k);
            const uint8_t odd = bnb_nibble_cpu_layout(cpu, K, n, k + 1);
            out[(n * K + k) / 2] = (uint8_t)((even << 4) | odd);
        }
}

/* ─── reference slots ────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL bnb_ref_weight_pack_size(bnb_context* context, int32_t format, int64_t N, int64_t K,
                                             int64_t blocksize, size_t* out_bytes) {
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack_size("weight_pack_size", context, format, BNB_WEIGHT_STANDARD, N, K, blocksize,
                                          out_bytes, &a));
    *out_bytes = (size_t)a.bytes;
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                        int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack("weight_pack", context, format, BNB_WEIGHT_STANDARD, 0, packed, N, K, blocksize,
                                     out_packed, &a));
    if (a.layout == BNB_WEIGHT_BNB_CPU) pack_cpu_layout(a.src, a.N, a.K, a.dst);
    else if (a.bytes > 0) memmove(a.dst, a.src, (size_t)a.bytes);
    return BNB_OK;
}

bnb_status BNB_CALL bnb_ref_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                          int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    bnb_weight_pack_args a;
    BNB_TRY(bnb_validate_weight_pack("weight_unpack", context, format, BNB_WEIGHT_STANDARD, 1, packed, N, K,
                                     blocksize, out_standard, &a));
    if (a.layout == BNB_WEIGHT_BNB_CPU) unpack_cpu_layout(a.src, a.N, a.K, a.dst);
    else if (a.std_bytes > 0) memmove(a.dst, a.src, (size_t)a.std_bytes);
    return BNB_OK;
}
