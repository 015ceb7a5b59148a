/* xpu_ops.cpp — bnb_xpu's ops and function table.
 *
 * Every op validates with the validators the CPU backends use (bnb_quant.h, bnb_int8.h, bnb_optim.h), on host views
 * of its arguments (xpu_runtime.h), so statuses and messages are identical to the CPU backends'. Then either
 *   * OpenCL kernels (kernels/bnb_xpu.cl) run on the context's current queue: 8-bit and 4-bit quantize/dequantize,
 *     gemv/gemm_4bit, all LLM.int8 ops, the 32-bit optimizer step (trust-ratio norms summed on the host, in the
 *     reference's order, over directions a kernel wrote), optimizer_unorm (likewise) and the 8-bit blockwise step; or
 *   * the reference code runs on the host views (after the queue drained): the ops that are sequential or tiny —
 *     quantize_absmax_nested (a mean and a few thousand values), weight_pack/unpack (a one-time re-layout),
 *     percentile_clipping (a norm and a 100-entry sort).
 */
#include "xpu_runtime.h"

#include "bnb_int8.h"
#include "bnb_optim.h"
#include "bnb_quant.h"

#include <cmath>
#include <cstring>
#include <vector>

extern "C" {
extern const char bnb_backend_name[];
const char bnb_backend_name[] = "xpu";
}

using namespace bnb_xpu;

namespace {

/* Bytes a matrix operand spans: (rows - 1) full strides plus one row. */
size_t matrix_bytes(const bnb_matrix& m) {
    if (m.rows <= 0 || m.cols <= 0) return 0;
    return static_cast<size_t>((m.rows - 1) * m.row_stride + m.cols) * bnb_dtype_size(m.dtype);
}

cl_float16 float16_of(const float* values, int count) {
    cl_float16 v;
    std::memset(&v, 0, sizeof v);
    for (int i = 0; i < count; ++i) v.s[i] = values[i];
    return v;
}

#define XPU_TRY BNB_TRY

using bnb_ref_relayout_fn = bnb_status(BNB_CALL*)(bnb_context*, int32_t, const bnb_tensor*, int64_t, int64_t, int64_t,
                                                  bnb_tensor*);

/* Kernel arguments of a block-scale set (BNB_SCALE_PARAMS in the kernels): 7 arguments from `index`. */
bnb_status set_scales(Op& op, cl_kernel k, cl_uint index, const bnb_scales& s, int64_t blocks) {
    DevArg absmax, codes, nested_absmax, nested_code;
    if (!s.nested) {
        XPU_TRY(op.arg(s.absmax, static_cast<size_t>(blocks) * sizeof(float), false, &absmax));
    } else {
        XPU_TRY(op.arg(s.codes, static_cast<size_t>(blocks), false, &codes));
        XPU_TRY(op.arg(s.nested_absmax, static_cast<size_t>(bnb_ceil_div(blocks, s.nested_blocksize)) * sizeof(float),
                       false, &nested_absmax));
        XPU_TRY(op.arg(s.nested_code, 256 * sizeof(float), false, &nested_code));
    }
    XPU_TRY(op.args_at(k, index, static_cast<cl_int>(s.nested), absmax, codes, nested_absmax, nested_code,
                       static_cast<cl_long>(s.nested ? s.nested_blocksize : 1),
                       static_cast<cl_float>(s.nested ? s.nested_offset : 0.0f)));
    return BNB_OK;
}

/* Block absmax of a float input (kernel bnb_block_absmax). mode 0: nearest/4-bit storage, 1: LUT storage. */
bnb_status launch_block_absmax(Op& op, const DevArg& A, int32_t dtype, int64_t n, int64_t blocksize, int mode,
                               const DevArg& out_absmax) {
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_block_absmax", &k));
    XPU_TRY(op.args_at(k, 0, A, static_cast<cl_int>(dtype), static_cast<cl_long>(n), static_cast<cl_long>(blocksize),
                       static_cast<cl_int>(mode), out_absmax));
    const size_t global = static_cast<size_t>(bnb_ceil_div(n, blocksize));
    return op.launch(k, 1, &global, nullptr);
}

/* ─── 8-bit blockwise ────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL xpu_quantize_blockwise(bnb_context* context, const bnb_tensor* A, const bnb_tensor* code,
                                           int64_t blocksize, int32_t rounding, bnb_tensor* out_codes,
                                           bnb_tensor* out_absmax) {
    Op op("quantize_blockwise", context);
    XPU_TRY(op.begin());
    bnb_tensor *vA, *vcode, *vcodes, *vabsmax;
    XPU_TRY(op.view("A", A, &vA));
    XPU_TRY(op.view("code", code, &vcode));
    XPU_TRY(op.view("out_codes", out_codes, &vcodes, false));
    XPU_TRY(op.view("out_absmax", out_absmax, &vabsmax, false));
    bnb_quantize_blockwise_args a;
    XPU_TRY(bnb_validate_quantize_blockwise(op.name(), context, vA, vcode, blocksize, rounding, vcodes, vabsmax, &a));
    if (a.n == 0) return BNB_OK;
    float mid[BNB_CODE8_SIZE - 1];
    bnb_ref_code_midpoints(a.code, BNB_CODE8_SIZE, mid);
    std::vector<uint8_t> lut;
    if (a.rounding == BNB_ROUND_BNB_CPU_LUT) {
        lut.resize(BNB_LUT_SIZE);
        bnb_ref_build_lut(a.code, lut.data());
    }
    XPU_TRY(op.end_views());
    const size_t esize = bnb_dtype_size(a.A_dtype);
    DevArg dA, dabsmax, dcodes, dmid, dlut;
    XPU_TRY(op.arg(a.A, static_cast<size_t>(a.n) * esize, false, &dA));
    XPU_TRY(op.arg(a.out_absmax, static_cast<size_t>(a.blocks) * sizeof(float), true, &dabsmax));
    XPU_TRY(op.arg(a.out_codes, static_cast<size_t>(a.n), true, &dcodes));
    XPU_TRY(op.constant(mid, sizeof mid, &dmid));
    if (!lut.empty()) XPU_TRY(op.constant(lut.data(), lut.size(), &dlut));
    const int mode = a.rounding == BNB_ROUND_BNB_CPU_LUT ? 1 : 0;
    XPU_TRY(launch_block_absmax(op, dA, a.A_dtype, a.n, a.blocksize, mode, dabsmax));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_quantize8_encode", &k));
    XPU_TRY(op.args_at(k, 0, dA, static_cast<cl_int>(a.A_dtype), static_cast<cl_long>(a.n),
                       static_cast<cl_long>(a.blocksize), static_cast<cl_int>(mode), dabsmax, dmid, dlut, dcodes));
    const size_t global = static_cast<size_t>(a.n);
    XPU_TRY(op.launch(k, 1, &global, nullptr));
    return op.finish();
}

bnb_status BNB_CALL xpu_dequantize_blockwise(bnb_context* context, const bnb_tensor* codes, const bnb_absmax* absmax,
                                             const bnb_tensor* code, int64_t blocksize, bnb_tensor* out) {
    Op op("dequantize_blockwise", context);
    XPU_TRY(op.begin());
    bnb_tensor *vcodes, *vcode, *vout;
    const bnb_absmax* vabsmax;
    XPU_TRY(op.view("codes", codes, &vcodes, false));
    XPU_TRY(op.view_absmax(absmax, &vabsmax, false));
    XPU_TRY(op.view("code", code, &vcode, false));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_dequantize_blockwise_args a;
    XPU_TRY(bnb_validate_dequantize_blockwise(op.name(), context, vcodes, vabsmax, vcode, blocksize, vout, &a));
    if (a.n == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    DevArg dcodes, dcode, dout;
    XPU_TRY(op.arg(a.codes, static_cast<size_t>(a.n), false, &dcodes));
    XPU_TRY(op.arg(a.code, 256 * sizeof(float), false, &dcode));
    XPU_TRY(op.arg(a.out, static_cast<size_t>(a.n) * bnb_dtype_size(a.out_dtype), true, &dout));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_dequantize8", &k));
    XPU_TRY(op.args_at(k, 0, dcodes, dcode));
    XPU_TRY(set_scales(op, k, 2, a.scales, bnb_ceil_div(a.n, a.blocksize)));
    XPU_TRY(op.args_at(k, 9, static_cast<cl_long>(a.n), static_cast<cl_long>(a.blocksize), dout,
                       static_cast<cl_int>(a.out_dtype)));
    const size_t global = static_cast<size_t>(a.n);
    XPU_TRY(op.launch(k, 1, &global, nullptr));
    return op.finish();
}

/* ─── 4-bit ──────────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL xpu_quantize_4bit(bnb_context* context, const bnb_tensor* A, int32_t quant_type, int64_t blocksize,
                                      bnb_tensor* out_packed, bnb_tensor* out_absmax) {
    Op op("quantize_4bit", context);
    XPU_TRY(op.begin());
    bnb_tensor *vA, *vpacked, *vabsmax;
    XPU_TRY(op.view("A", A, &vA));
    XPU_TRY(op.view("out_packed", out_packed, &vpacked, false));
    XPU_TRY(op.view("out_absmax", out_absmax, &vabsmax, false));
    bnb_quantize_4bit_args a;
    XPU_TRY(bnb_validate_quantize_4bit(op.name(), context, vA, quant_type, blocksize, vpacked, vabsmax, &a));
    if (a.n == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    bnb_4bit_map map;
    bnb_ref_4bit_map_init(a.quant_type, &map);
    const cl_uchar pad = bnb_ref_4bit_code(&map, 0.0f);
    cl_uchar16 order;
    std::memcpy(order.s, map.order, sizeof map.order);
    const cl_float16 bounds = float16_of(map.bounds, BNB_CODE4_SIZE - 1);
    DevArg dA, dabsmax, dpacked;
    XPU_TRY(op.arg(a.A, static_cast<size_t>(a.n) * bnb_dtype_size(a.A_dtype), false, &dA));
    XPU_TRY(op.arg(a.out_absmax, static_cast<size_t>(a.blocks) * sizeof(float), true, &dabsmax));
    XPU_TRY(op.arg(a.out_packed, static_cast<size_t>((a.n + 1) / 2), true, &dpacked));
    XPU_TRY(launch_block_absmax(op, dA, a.A_dtype, a.n, a.blocksize, 0, dabsmax));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_quantize4_encode", &k));
    XPU_TRY(op.args_at(k, 0, dA, static_cast<cl_int>(a.A_dtype), static_cast<cl_long>(a.n),
                       static_cast<cl_long>(a.blocksize), dabsmax, bounds, order, pad, dpacked));
    const size_t global = static_cast<size_t>((a.n + 1) / 2);
    XPU_TRY(op.launch(k, 1, &global, nullptr));
    return op.finish();
}

bnb_status BNB_CALL xpu_dequantize_4bit(bnb_context* context, const bnb_tensor* packed, const bnb_absmax* absmax,
                                        int32_t quant_type, int64_t blocksize, bnb_tensor* out) {
    Op op("dequantize_4bit", context);
    XPU_TRY(op.begin());
    bnb_tensor *vpacked, *vout;
    const bnb_absmax* vabsmax;
    XPU_TRY(op.view("packed", packed, &vpacked, false));
    XPU_TRY(op.view_absmax(absmax, &vabsmax, false));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_dequantize_4bit_args a;
    XPU_TRY(bnb_validate_dequantize_4bit(op.name(), context, vpacked, vabsmax, quant_type, blocksize, vout, &a));
    if (a.n == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    DevArg dpacked, dout;
    XPU_TRY(op.arg(a.packed, static_cast<size_t>((a.n + 1) / 2), false, &dpacked));
    XPU_TRY(op.arg(a.out, static_cast<size_t>(a.n) * bnb_dtype_size(a.out_dtype), true, &dout));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_dequantize4", &k));
    XPU_TRY(op.args_at(k, 0, dpacked, float16_of(bnb_table_4bit(a.quant_type), 16)));
    XPU_TRY(set_scales(op, k, 2, a.scales, bnb_ceil_div(a.n, a.blocksize)));
    XPU_TRY(op.args_at(k, 9, static_cast<cl_long>(a.n), static_cast<cl_long>(a.blocksize), dout,
                       static_cast<cl_int>(a.out_dtype)));
    const size_t global = static_cast<size_t>(a.n);
    XPU_TRY(op.launch(k, 1, &global, nullptr));
    return op.finish();
}

/* gemv and gemm: one kernel per output element (bit-identical to the reference), or, for M <= 16 on devices with
 * Intel sub-groups, one 16-lane sub-group per output (bnb_gemv4_sg). */
bnb_status gemm_4bit(const char* name, bool small_m_path, bnb_context* context, const bnb_tensor* A,
                     const bnb_tensor* W, int32_t weight_format, const bnb_absmax* absmax, int32_t quant_type,
                     int64_t blocksize, const bnb_tensor* bias, bnb_tensor* out) {
    Op op(name, context);
    XPU_TRY(op.begin());
    bnb_tensor *vA, *vW, *vbias, *vout;
    const bnb_absmax* vabsmax;
    XPU_TRY(op.view("A", A, &vA, false));
    XPU_TRY(op.view("W", W, &vW, false));
    XPU_TRY(op.view_absmax(absmax, &vabsmax, false));
    XPU_TRY(op.view("bias", bias, &vbias, false));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_gemm_4bit_args a;
    XPU_TRY(bnb_validate_gemm_4bit(name, context, vA, vW, weight_format, BNB_WEIGHT_STANDARD, vabsmax, quant_type,
                                   blocksize, vbias, vout, &a));
    if (a.M == 0 || a.N == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    const size_t w_bytes = static_cast<size_t>(a.layout == BNB_WEIGHT_BNB_CPU ? a.N * (a.K / 2) : (a.N * a.K + 1) / 2);
    DevArg dA, dW, dbias, dout;
    XPU_TRY(op.arg(a.A.data, matrix_bytes(a.A), false, &dA));
    XPU_TRY(op.arg(a.W, w_bytes, false, &dW));
    if (a.bias != nullptr)
        XPU_TRY(op.arg(a.bias, static_cast<size_t>(a.N) * bnb_dtype_size(a.bias_dtype), false, &dbias));
    XPU_TRY(op.arg(a.out.data, matrix_bytes(a.out), true, &dout));
    const bool subgroups = small_m_path && a.M <= 16 && op.exec().device->has(BNB_XPU_FEATURE_SUBGROUPS);
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel(subgroups ? "bnb_gemv4_sg" : "bnb_gemm4", &k));
    XPU_TRY(op.args_at(k, 0, dA, static_cast<cl_int>(a.A.dtype), static_cast<cl_long>(a.A.row_stride), dW,
                       static_cast<cl_int>(a.layout == BNB_WEIGHT_BNB_CPU ? 1 : 0),
                       float16_of(bnb_table_4bit(a.quant_type), 16)));
    XPU_TRY(set_scales(op, k, 6, a.scales, bnb_ceil_div(a.N * a.K, a.blocksize)));
    XPU_TRY(op.args_at(k, 13, static_cast<cl_long>(a.blocksize), dbias,
                       static_cast<cl_int>(a.bias != nullptr ? a.bias_dtype : 0),
                       static_cast<cl_int>(a.bias != nullptr), dout, static_cast<cl_int>(a.out.dtype),
                       static_cast<cl_long>(a.out.row_stride), static_cast<cl_long>(a.M), static_cast<cl_long>(a.N),
                       static_cast<cl_long>(a.K)));
    if (subgroups) {
        const size_t global[2] = {static_cast<size_t>(a.N) * 16, static_cast<size_t>(a.M)};
        const size_t local[2] = {16, 1};
        XPU_TRY(op.launch(k, 2, global, local));
    } else {
        const size_t global[2] = {static_cast<size_t>(a.N), static_cast<size_t>(a.M)};
        XPU_TRY(op.launch(k, 2, global, nullptr));
    }
    return op.finish();
}

bnb_status BNB_CALL xpu_gemv_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W, int32_t weight_format,
                                  const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                                  const bnb_tensor* bias, bnb_tensor* out) {
    return gemm_4bit("gemv_4bit", true, context, A, W, weight_format, absmax, quant_type, blocksize, bias, out);
}

bnb_status BNB_CALL xpu_gemm_4bit(bnb_context* context, const bnb_tensor* A, const bnb_tensor* W, int32_t weight_format,
                                  const bnb_absmax* absmax, int32_t quant_type, int64_t blocksize,
                                  const bnb_tensor* bias, bnb_tensor* out) {
    return gemm_4bit("gemm_4bit", false, context, A, W, weight_format, absmax, quant_type, blocksize, bias, out);
}

/* ─── LLM.int8() ─────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL xpu_int8_vectorwise_dequant(bnb_context* context, const bnb_tensor* CA, const bnb_tensor* row_stats,
                                                bnb_tensor* out) {
    Op op("int8_vectorwise_dequant", context);
    XPU_TRY(op.begin());
    bnb_tensor *vCA, *vrow, *vout;
    XPU_TRY(op.view("CA", CA, &vCA, false));
    XPU_TRY(op.view("row_stats", row_stats, &vrow, false));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_int8_dequant_args a;
    XPU_TRY(bnb_int8_resolve_vectorwise_dequant(op.name(), context, vCA, vrow, vout, &a));
    if (a.CA.rows == 0 || a.CA.cols == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    DevArg dCA, drow, dout;
    XPU_TRY(op.arg(a.CA.data, matrix_bytes(a.CA), false, &dCA));
    XPU_TRY(op.arg(a.row_stats, static_cast<size_t>(a.CA.rows) * sizeof(float), false, &drow));
    XPU_TRY(op.arg(a.out.data, matrix_bytes(a.out), true, &dout));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_int8_vectorwise_dequant", &k));
    XPU_TRY(op.args_at(k, 0, dCA, static_cast<cl_long>(a.CA.row_stride), drow, dout,
                       static_cast<cl_long>(a.out.row_stride), static_cast<cl_long>(a.CA.rows),
                       static_cast<cl_long>(a.CA.cols), static_cast<cl_float>(BNB_INT8_INV127)));
    const size_t global[2] = {static_cast<size_t>(a.CA.cols), static_cast<size_t>(a.CA.rows)};
    XPU_TRY(op.launch(k, 2, global, nullptr));
    return op.finish();
}

bnb_status BNB_CALL xpu_int8_linear_matmul(bnb_context* context, const bnb_tensor* A, const bnb_tensor* B,
                                           bnb_tensor* out) {
    Op op("int8_linear_matmul", context);
    XPU_TRY(op.begin());
    /* the validator reads A and B only for its int32-overflow dry run, which needs K > 131071 */
    const bool matmul_dry_run = A != nullptr && A->ndim == 2 && A->shape[1] > 131071;
    bnb_tensor *vA, *vB, *vout;
    XPU_TRY(op.view("A", A, &vA, matmul_dry_run));
    XPU_TRY(op.view("B", B, &vB, matmul_dry_run));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_int8_matmul_args a;
    XPU_TRY(bnb_int8_resolve_linear_matmul(op.name(), context, vA, vB, vout, &a));
    if (a.A.rows == 0 || a.B.rows == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    DevArg dA, dB, dout;
    XPU_TRY(op.arg(a.A.data, matrix_bytes(a.A), false, &dA));
    XPU_TRY(op.arg(a.B.data, matrix_bytes(a.B), false, &dB));
    XPU_TRY(op.arg(a.out.data, matrix_bytes(a.out), true, &dout));
    cl_kernel k = nullptr;
    const bool dot = op.exec().device->has(BNB_XPU_FEATURE_INT8_DOT);
    XPU_TRY(op.kernel(dot ? "bnb_int8_matmul_dot" : "bnb_int8_matmul", &k));
    XPU_TRY(op.args_at(k, 0, dA, static_cast<cl_long>(a.A.row_stride), dB, static_cast<cl_long>(a.B.row_stride), dout,
                       static_cast<cl_long>(a.out.row_stride), static_cast<cl_long>(a.A.rows),
                       static_cast<cl_long>(a.B.rows), static_cast<cl_long>(a.A.cols)));
    const size_t global[2] = {static_cast<size_t>(a.B.rows), static_cast<size_t>(a.A.rows)};
    XPU_TRY(op.launch(k, 2, global, nullptr));
    return op.finish();
}

bnb_status BNB_CALL xpu_int8_mm_dequant(bnb_context* context, const bnb_tensor* C, const bnb_tensor* row_stats,
                                        const bnb_tensor* col_stats, const bnb_tensor* bias, bnb_tensor* out) {
    Op op("int8_mm_dequant", context);
    XPU_TRY(op.begin());
    bnb_tensor *vC, *vrow, *vcol, *vbias, *vout;
    XPU_TRY(op.view("C", C, &vC, false));
    XPU_TRY(op.view("row_stats", row_stats, &vrow, false));
    XPU_TRY(op.view("col_stats", col_stats, &vcol, false));
    XPU_TRY(op.view("bias", bias, &vbias, false));
    XPU_TRY(op.view("out", out, &vout, false));
    bnb_int8_mm_dequant_args a;
    XPU_TRY(bnb_int8_resolve_mm_dequant(op.name(), context, vC, vrow, vcol, vbias, vout, &a));
    if (a.C.rows == 0 || a.C.cols == 0) return BNB_OK;
    XPU_TRY(op.end_views());
    DevArg dC, drow, dcol, dbias, dout;
    XPU_TRY(op.arg(a.C.data, matrix_bytes(a.C), false, &dC));
    XPU_TRY(op.arg(a.row_stats, static_cast<size_t>(a.C.rows) * sizeof(float), false, &drow));
    XPU_TRY(op.arg(a.col_stats, static_cast<size_t>(a.C.cols) * sizeof(float), false, &dcol));
    if (a.bias != nullptr)
        XPU_TRY(op.arg(a.bias, static_cast<size_t>(a.C.cols) * bnb_dtype_size(a.bias_dtype), false, &dbias));
    XPU_TRY(op.arg(a.out.data, matrix_bytes(a.out), true, &dout));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_int8_mm_dequant", &k));
    XPU_TRY(op.args_at(k, 0, dC, static_cast<cl_long>(a.C.row_stride), drow, dcol, dbias,
                       static_cast<cl_int>(a.bias != nullptr ? a.bias_dtype : 0),
                       static_cast<cl_int>(a.bias != nullptr), dout, static_cast<cl_int>(a.out.dtype),
                       static_cast<cl_long>(a.out.row_stride), static_cast<cl_long>(a.C.rows),
                       static_cast<cl_long>(a.C.cols), static_cast<cl_float>(BNB_INT8_INV127SQ)));
    const size_t global[2] = {static_cast<size_t>(a.C.cols), static_cast<size_t>(a.C.rows)};
    XPU_TRY(op.launch(k, 2, global, nullptr));
    return op.finish();
}

/* ─── ops that run the reference code on host views ──────────────────────────────────────────────────────── *
 * The views of cl_mem arguments are mapped read-write for the duration of the call (zero copy on CPU devices and
 * integrated GPUs); the queue has drained first (Op::view syncs), so the host sees every earlier kernel's result. */

bnb_status BNB_CALL xpu_quantize_absmax_nested(bnb_context* context, const bnb_tensor* absmax, const bnb_tensor* code,
                                               int64_t nested_blocksize, int32_t rounding, const float* offset_in,
                                               bnb_tensor* out_codes, bnb_tensor* out_nested_absmax,
                                               float* out_offset) {
    Op op("quantize_absmax_nested", context);
    XPU_TRY(op.begin());
    bnb_tensor *v1, *v2, *v3, *v4;
    XPU_TRY(op.view("absmax", absmax, &v1));
    XPU_TRY(op.view("code", code, &v2));
    XPU_TRY(op.view("out_codes", out_codes, &v3));
    XPU_TRY(op.view("out_nested_absmax", out_nested_absmax, &v4));
    XPU_TRY(op.sync());
    XPU_TRY(bnb_ref_quantize_absmax_nested(context, v1, v2, nested_blocksize, rounding, offset_in, v3, v4, out_offset));
    return op.end_views();
}

/* weight_pack and weight_unpack: the same two views around the reference's re-layout (a one-time conversion). */
bnb_status weight_relayout(const char* name, const char* out_name, bnb_ref_relayout_fn ref, bnb_context* context,
                           int32_t format, const bnb_tensor* packed, int64_t N, int64_t K, int64_t blocksize,
                           bnb_tensor* out) {
    Op op(name, context);
    XPU_TRY(op.begin());
    bnb_tensor *v1, *v2;
    XPU_TRY(op.view("packed", packed, &v1));
    XPU_TRY(op.view(out_name, out, &v2));
    XPU_TRY(op.sync());
    XPU_TRY(ref(context, format, v1, N, K, blocksize, v2));
    return op.end_views();
}

bnb_status BNB_CALL xpu_weight_pack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                    int64_t K, int64_t blocksize, bnb_tensor* out_packed) {
    return weight_relayout("weight_pack", "out_packed", bnb_ref_weight_pack, context, format, packed, N, K, blocksize,
                           out_packed);
}

bnb_status BNB_CALL xpu_weight_unpack(bnb_context* context, int32_t format, const bnb_tensor* packed, int64_t N,
                                      int64_t K, int64_t blocksize, bnb_tensor* out_standard) {
    return weight_relayout("weight_unpack", "out_standard", bnb_ref_weight_unpack, context, format, packed, N, K,
                           blocksize, out_standard);
}

/* int8_vectorwise_quant (double_quant = false) and int8_double_quant: outlier flags (written into the outlier list,
 * as the reference does) → row stats → CA → in-place compaction of the list (+ count) → column stats → CAt. */
bnb_status int8_quant(const char* name, bool double_quant, bnb_context* context, const bnb_tensor* A, float threshold,
                      bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats, bnb_tensor* out_col_stats,
                      bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    Op op(name, context);
    XPU_TRY(op.begin());
    bnb_tensor *vA, *vCA, *vCAt, *vrow, *vcol, *vlist;
    XPU_TRY(op.view("A", A, &vA));
    XPU_TRY(op.view("out_CA", out_CA, &vCA, false));
    XPU_TRY(op.view("out_CAt", double_quant ? out_CAt : nullptr, &vCAt, false));
    XPU_TRY(op.view("out_row_stats", out_row_stats, &vrow, false));
    XPU_TRY(op.view("out_col_stats", double_quant ? out_col_stats : nullptr, &vcol, false));
    XPU_TRY(op.view("out_outlier_cols", out_outlier_cols, &vlist, false));
    bnb_int8_quant_args a;
    XPU_TRY(bnb_int8_resolve_quant(name, context, vA, threshold, vCA, vCAt, vrow, vcol, vlist, out_outlier_count,
                                   double_quant ? 1 : 0, &a));
    XPU_TRY(op.end_views());
    const int64_t rows = a.A.rows, cols = a.A.cols;
    const bool flags = a.outlier_cols != nullptr && a.threshold > 0.0f;
    int64_t count = 0;
    if (rows > 0 && cols > 0) {
        DevArg dA, dCA, drow, dlist, dcount;
        XPU_TRY(op.arg(a.A.data, matrix_bytes(a.A), false, &dA));
        XPU_TRY(op.arg(a.CA.data, matrix_bytes(a.CA), true, &dCA));
        XPU_TRY(op.arg(a.row_stats, static_cast<size_t>(rows) * sizeof(float), true, &drow));
        if (flags) {
            XPU_TRY(op.arg(a.outlier_cols, static_cast<size_t>(cols) * sizeof(int64_t), true, &dlist));
            XPU_TRY(op.scratch(sizeof(int64_t), &dcount));
        }
        const cl_int dt = a.A.dtype;
        const cl_long stride = a.A.row_stride, r64 = rows, c64 = cols;
        const size_t ncols = static_cast<size_t>(cols), nrows = static_cast<size_t>(rows);
        const size_t grid[2] = {ncols, nrows};
        cl_kernel k = nullptr;
        if (flags) {
            XPU_TRY(op.kernel("bnb_int8_outlier_flags", &k));
            XPU_TRY(op.args_at(k, 0, dA, dt, stride, r64, c64, a.threshold, dlist));
            XPU_TRY(op.launch(k, 1, &ncols, nullptr));
        }
        XPU_TRY(op.kernel("bnb_int8_row_stats", &k));
        XPU_TRY(op.args_at(k, 0, dA, dt, stride, r64, c64, a.threshold, drow));
        XPU_TRY(op.launch(k, 1, &nrows, nullptr));
        XPU_TRY(op.kernel("bnb_int8_quant_rows", &k));
        XPU_TRY(op.args_at(k, 0, dA, dt, stride, drow, dlist, static_cast<cl_int>(flags), dCA,
                           static_cast<cl_long>(a.CA.row_stride), r64, c64));
        XPU_TRY(op.launch(k, 2, grid, nullptr));
        if (flags) {
            const size_t one = 1;
            XPU_TRY(op.kernel("bnb_int8_outlier_compact", &k));
            XPU_TRY(op.args_at(k, 0, dlist, c64, dcount));
            XPU_TRY(op.launch(k, 1, &one, nullptr));
        }
        if (double_quant) {
            DevArg dCAt, dcol;
            XPU_TRY(op.arg(a.CAt.data, matrix_bytes(a.CAt), true, &dCAt));
            XPU_TRY(op.arg(a.col_stats, ncols * sizeof(float), true, &dcol));
            XPU_TRY(op.kernel("bnb_int8_col_stats", &k));
            XPU_TRY(op.args_at(k, 0, dA, dt, stride, r64, c64, a.threshold, dcol));
            XPU_TRY(op.launch(k, 1, &ncols, nullptr));
            XPU_TRY(op.kernel("bnb_int8_quant_cols", &k));
            XPU_TRY(op.args_at(k, 0, dA, dt, stride, dcol, a.threshold, dCAt, static_cast<cl_long>(a.CAt.row_stride),
                               r64, c64));
            XPU_TRY(op.launch(k, 2, grid, nullptr));
        }
        if (flags) XPU_TRY(op.read(dcount, &count, sizeof count));
    } else if (double_quant && cols > 0) {
        /* no rows: column statistics are 0 (the reference's initialisation) */
        DevArg dcol;
        XPU_TRY(op.arg(a.col_stats, static_cast<size_t>(cols) * sizeof(float), true, &dcol));
        std::vector<float> zeros(static_cast<size_t>(cols), 0.0f);
        DevArg dz;
        XPU_TRY(op.constant(zeros.data(), zeros.size() * sizeof(float), &dz));
        XPU_TRY(op.check(op.cl()->clEnqueueCopyBuffer(op.exec().queue, dz.mem, dcol.mem, 0, 0,
                                                      zeros.size() * sizeof(float), 0, nullptr, nullptr),
                         "clEnqueueCopyBuffer"));
    }
    XPU_TRY(op.finish());
    if (a.outlier_count != nullptr) *a.outlier_count = count;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_int8_vectorwise_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                              bnb_tensor* out_CA, bnb_tensor* out_row_stats,
                                              bnb_tensor* out_outlier_cols, int64_t* out_outlier_count) {
    return int8_quant("int8_vectorwise_quant", false, context, A, threshold, out_CA, nullptr, out_row_stats, nullptr,
                      out_outlier_cols, out_outlier_count);
}

bnb_status BNB_CALL xpu_int8_double_quant(bnb_context* context, const bnb_tensor* A, float threshold,
                                          bnb_tensor* out_CA, bnb_tensor* out_CAt, bnb_tensor* out_row_stats,
                                          bnb_tensor* out_col_stats, bnb_tensor* out_outlier_cols,
                                          int64_t* out_outlier_count) {
    return int8_quant("int8_double_quant", true, context, A, threshold, out_CA, out_CAt, out_row_stats, out_col_stats,
                      out_outlier_cols, out_outlier_count);
}

/* ─── optimizers ─────────────────────────────────────────────────────────────────────────────────────────── */

/* The float32 hyper-parameters of bnb_optim_hparams in the kernels' float16 order (bnb_hp_unpack). */
cl_float16 pack_hparams(const bnb_optim_hparams& h) {
    const float v[16] = {h.beta1,        h.beta2,       h.beta3,           h.alpha,           h.eps,
                         h.weight_decay, h.gnorm_scale, h.one_minus_beta1, h.one_minus_beta2, h.one_minus_beta3,
                         h.correction1,  h.correction2, h.eps_c2,          h.neg_lr_over_c1,  h.neg_lr,
                         h.decay};
    return float16_of(v, 16);
}

/* Σ p² in double over the host view of p, in index order (the reference's param_norm_of / optimizer_unorm). */
double param_square_sum(const bnb_optim_args& a) {
    double sq = 0.0;
    for (int64_t i = 0; i < a.n; ++i) {
        const double v = bnb_load_float(a.p, a.dtype, i);
        sq += v * v;
    }
    return sq;
}

/* Σ d² in double, index order, of the kernel's per-element directions: the device computes them (store != 0 also
 * writes the new states), the host sums them in the reference's order, so the norm is bit-identical. Call after
 * Op::end_views. */
bnb_status direction_square_sum(Op& op, const bnb_optim_args& a, bool store, double* out) {
    const size_t es = bnb_dtype_size(a.dtype), n = static_cast<size_t>(a.n);
    const size_t rows1 = a.hp.kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
    DevArg dp, dg, ds1, ds2, dd;
    XPU_TRY(op.arg(a.p, n * es, false, &dp));
    XPU_TRY(op.arg(a.g, n * es, false, &dg));
    XPU_TRY(op.arg(a.state1, rows1 * n * sizeof(float), store, &ds1));
    if (a.state2 != nullptr) XPU_TRY(op.arg(a.state2, n * sizeof(float), store, &ds2));
    XPU_TRY(op.scratch(n * sizeof(float), &dd));
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_optim32_direction", &k));
    XPU_TRY(op.args_at(k, 0, dp, dg, static_cast<cl_int>(a.dtype), ds1, ds2, static_cast<cl_long>(a.n),
                       pack_hparams(a.hp), static_cast<cl_int>(a.hp.kind), static_cast<cl_int>(a.hp.step),
                       static_cast<cl_int>(store ? 1 : 0), dd));
    XPU_TRY(op.launch(k, 1, &n, nullptr));
    std::vector<float> d(n);
    XPU_TRY(op.read(dd, d.data(), n * sizeof(float)));
    double sq = 0.0;
    for (float v : d) sq += static_cast<double>(v) * static_cast<double>(v);
    *out = sq;
    return BNB_OK;
}

/* A 32-bit step with a trust ratio (max_unorm > 0; adam, lamb, momentum, lars, rmsprop): the reference's two passes,
 * each a kernel, around the norms. Views are still open (p is read for ‖p‖). */
bnb_status trust_ratio_step(Op& op, const bnb_optim_args& a, float* out_unorm) {
    const bnb_optim_hparams& h = a.hp;
    const double param_norm =
        h.param_norm >= 0.0f ? h.param_norm : std::sqrt(param_square_sum(a)); /* before p changes */
    XPU_TRY(op.end_views());
    double update_sq = 0.0;
    if (a.n > 0) XPU_TRY(direction_square_sum(op, a, true, &update_sq));
    const double update_norm = std::sqrt(update_sq);
    const double scale = bnb_optim_trust_scale(h.max_unorm_wide, param_norm, update_norm);
    const bool adam_like = h.kind == BNB_OPTIM_ADAM || h.kind == BNB_OPTIM_LAMB;
    const float alpha = static_cast<float>((adam_like ? h.step_size : -h.lr_wide) * scale);
    if (a.n > 0) {
        const size_t es = bnb_dtype_size(a.dtype), n = static_cast<size_t>(a.n);
        DevArg dp, dg, ds1, ds2;
        XPU_TRY(op.arg(a.p, n * es, true, &dp));
        XPU_TRY(op.arg(a.g, n * es, false, &dg));
        XPU_TRY(op.arg(a.state1, n * sizeof(float), false, &ds1));
        if (a.state2 != nullptr) XPU_TRY(op.arg(a.state2, n * sizeof(float), false, &ds2));
        cl_kernel k = nullptr;
        XPU_TRY(op.kernel("bnb_optim32_apply", &k));
        XPU_TRY(op.args_at(k, 0, dp, dg, static_cast<cl_int>(a.dtype), ds1, ds2, static_cast<cl_long>(a.n),
                           pack_hparams(h), static_cast<cl_int>(h.kind), static_cast<cl_int>(h.step), alpha));
        XPU_TRY(op.launch(k, 1, &n, nullptr));
        XPU_TRY(op.finish());
    }
    if (out_unorm != nullptr) *out_unorm = static_cast<float>(update_norm);
    return BNB_OK;
}

bnb_status BNB_CALL xpu_optimizer_update_32bit(bnb_context* context, const bnb_optimizer_params* params, bnb_tensor* p,
                                               const bnb_tensor* g, bnb_tensor* state1, bnb_tensor* state2,
                                               float* out_unorm) {
    Op op("optimizer_update_32bit", context);
    XPU_TRY(op.begin());
    /* p is read on the host only for a trust ratio's ‖p‖ (max_unorm > 0 without a given param_norm) */
    const bool trust_ratio_may_read_p =
        params != nullptr && params->struct_size >= sizeof(bnb_optimizer_params) && params->max_unorm != 0.0;
    bnb_tensor *vp, *vg, *vs1, *vs2;
    XPU_TRY(op.view("p", p, &vp, trust_ratio_may_read_p));
    XPU_TRY(op.view("g", g, &vg));
    XPU_TRY(op.view("state1", state1, &vs1, false));
    XPU_TRY(op.view("state2", state2, &vs2, false));
    bnb_optim_args a;
    XPU_TRY(bnb_optim_resolve_32bit(op.name(), context, params, vp, vg, vs1, vs2, &a));
    if (a.hp.trust_ratio) return trust_ratio_step(op, a, out_unorm);
    if (a.n == 0) {
        if (out_unorm != nullptr) *out_unorm = 0.0f;
        return BNB_OK;
    }
    XPU_TRY(op.end_views());
    const size_t es = bnb_dtype_size(a.dtype), n = static_cast<size_t>(a.n);
    const size_t rows1 = a.hp.kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
    DevArg dp, dg, ds1, ds2;
    XPU_TRY(op.arg(a.p, n * es, true, &dp));
    XPU_TRY(op.arg(a.g, n * es, false, &dg));
    XPU_TRY(op.arg(a.state1, rows1 * n * sizeof(float), true, &ds1));
    if (a.state2 != nullptr) XPU_TRY(op.arg(a.state2, n * sizeof(float), true, &ds2));
    const bool adam_like = a.hp.kind == BNB_OPTIM_ADAM || a.hp.kind == BNB_OPTIM_LAMB;
    const float apply = static_cast<float>(adam_like ? a.hp.step_size : -a.hp.lr_wide);
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_optim32", &k));
    XPU_TRY(op.args_at(k, 0, dp, dg, static_cast<cl_int>(a.dtype), ds1, ds2, static_cast<cl_long>(a.n),
                       pack_hparams(a.hp), static_cast<cl_int>(a.hp.kind), static_cast<cl_int>(a.hp.step), apply));
    XPU_TRY(op.launch(k, 1, &n, nullptr));
    XPU_TRY(op.finish());
    if (out_unorm != nullptr) *out_unorm = 0.0f; /* no trust ratio: the reference reports 0 */
    return BNB_OK;
}

bnb_status BNB_CALL xpu_optimizer_update_8bit_blockwise(bnb_context* context, const bnb_optimizer_params* params,
                                                        bnb_tensor* p, const bnb_tensor* g, bnb_tensor* state1,
                                                        bnb_tensor* state2, bnb_tensor* absmax1, bnb_tensor* absmax2,
                                                        const bnb_tensor* qmap1, const bnb_tensor* qmap2) {
    Op op("optimizer_update_8bit_blockwise", context);
    XPU_TRY(op.begin());
    bnb_tensor *vp, *vg, *vs1, *vs2, *va1, *va2, *vq1, *vq2;
    XPU_TRY(op.view("p", p, &vp, false));
    XPU_TRY(op.view("g", g, &vg));
    XPU_TRY(op.view("state1", state1, &vs1, false));
    XPU_TRY(op.view("state2", state2, &vs2, false));
    XPU_TRY(op.view("absmax1", absmax1, &va1, false));
    XPU_TRY(op.view("absmax2", absmax2, &va2, false));
    XPU_TRY(op.view("qmap1", qmap1, &vq1));
    XPU_TRY(op.view("qmap2", qmap2, &vq2));
    bnb_optim_args a;
    XPU_TRY(bnb_optim_resolve_8bit(op.name(), context, params, vp, vg, vs1, vs2, va1, va2, vq1, vq2, &a));
    if (a.n == 0) return BNB_OK;
    /* requantization tables from the (host-readable) code maps: midpoints, and the LUTs for BNB_ROUND_BNB_CPU_LUT */
    const bool two = a.codes2 != nullptr;
    const bool lut_mode = a.hp.rounding == BNB_ROUND_BNB_CPU_LUT;
    float mid1[BNB_CODE8_SIZE - 1], mid2[BNB_CODE8_SIZE - 1] = {0};
    bnb_ref_code_midpoints(a.qmap1, BNB_CODE8_SIZE, mid1);
    if (two) bnb_ref_code_midpoints(a.qmap2, BNB_CODE8_SIZE, mid2);
    std::vector<uint8_t> lut1, lut2;
    if (lut_mode) {
        lut1.resize(BNB_LUT_SIZE);
        bnb_ref_build_lut(a.qmap1, lut1.data());
        if (two) {
            lut2.resize(BNB_LUT_SIZE);
            bnb_ref_build_lut(a.qmap2, lut2.data());
        }
    }
    XPU_TRY(op.end_views());
    const size_t es = bnb_dtype_size(a.dtype), n = static_cast<size_t>(a.n), blocks = static_cast<size_t>(a.blocks);
    const size_t rows1 = a.hp.kind == BNB_OPTIM_ADEMAMIX ? 2 : 1;
    DevArg dp, dg, dc1, dc2, da1, da2, dq1, dq2, dm1, dm2, dl1, dl2;
    XPU_TRY(op.arg(a.p, n * es, true, &dp));
    XPU_TRY(op.arg(a.g, n * es, false, &dg));
    XPU_TRY(op.arg(a.codes1, rows1 * n, true, &dc1));
    XPU_TRY(op.arg(a.absmax1, rows1 * blocks * sizeof(float), true, &da1));
    XPU_TRY(op.arg(a.qmap1, 256 * sizeof(float), false, &dq1));
    XPU_TRY(op.constant(mid1, sizeof mid1, &dm1));
    if (lut_mode) XPU_TRY(op.constant(lut1.data(), lut1.size(), &dl1));
    if (two) {
        XPU_TRY(op.arg(a.codes2, n, true, &dc2));
        XPU_TRY(op.arg(a.absmax2, blocks * sizeof(float), true, &da2));
        XPU_TRY(op.arg(a.qmap2, 256 * sizeof(float), false, &dq2));
        XPU_TRY(op.constant(mid2, sizeof mid2, &dm2));
        if (lut_mode) XPU_TRY(op.constant(lut2.data(), lut2.size(), &dl2));
    }
    cl_kernel k = nullptr;
    XPU_TRY(op.kernel("bnb_optim8", &k));
    XPU_TRY(op.args_at(k, 0, dp, dg, static_cast<cl_int>(a.dtype), dc1, dc2, da1, da2, dq1, dq2, dm1, dm2, dl1, dl2,
                       static_cast<cl_int>(lut_mode ? 1 : 0), static_cast<cl_long>(a.n), static_cast<cl_long>(a.blocks),
                       pack_hparams(a.hp), static_cast<cl_int>(a.hp.kind), static_cast<cl_int>(a.hp.step)));
    XPU_TRY(op.launch(k, 1, &blocks, nullptr));
    return op.finish();
}

bnb_status BNB_CALL xpu_optimizer_unorm(bnb_context* context, const bnb_optimizer_params* params, const bnb_tensor* p,
                                        const bnb_tensor* g, const bnb_tensor* state1, const bnb_tensor* state2,
                                        double* out_update_sq, double* out_param_sq) {
    Op op("optimizer_unorm", context);
    XPU_TRY(op.begin());
    bnb_tensor *vp, *vg, *vs1, *vs2;
    XPU_TRY(op.view("p", p, &vp));
    XPU_TRY(op.view("g", g, &vg));
    XPU_TRY(op.view("state1", state1, &vs1, false));
    XPU_TRY(op.view("state2", state2, &vs2, false));
    bnb_optim_args a;
    XPU_TRY(bnb_optim_resolve_32bit(op.name(), context, params, vp, vg, vs1, vs2, &a));
    XPU_TRY(bnb_check_not_null(op.name(), "out_update_sq", out_update_sq));
    XPU_TRY(bnb_check_not_null(op.name(), "out_param_sq", out_param_sq));
    const double param_sq = param_square_sum(a);
    XPU_TRY(op.end_views());
    double update_sq = 0.0;
    if (a.n > 0) XPU_TRY(direction_square_sum(op, a, false, &update_sq));
    XPU_TRY(op.finish());
    *out_update_sq = update_sq;
    *out_param_sq = param_sq;
    return BNB_OK;
}

bnb_status BNB_CALL xpu_percentile_clipping(bnb_context* context, const bnb_tensor* g, bnb_tensor* gnorm_history,
                                            int32_t step, int32_t percentile, float* out_gnorm,
                                            float* out_gnorm_scale) {
    Op op("percentile_clipping", context);
    XPU_TRY(op.begin());
    bnb_tensor *v1, *v2;
    XPU_TRY(op.view("g", g, &v1));
    XPU_TRY(op.view("gnorm_history", gnorm_history, &v2));
    XPU_TRY(op.sync());
    XPU_TRY(bnb_ref_percentile_clipping(context, v1, v2, step, percentile, out_gnorm, out_gnorm_scale));
    return op.end_views();
}

/* ─── the table ──────────────────────────────────────────────────────────────────────────────────────────── */

bnb_status BNB_CALL xpu_backend_get_info(bnb_backend_info* out) {
    bnb_backend_info info;
    std::memset(&info, 0, sizeof info);
    info.device_kind = BNB_DEVICE_GPU;
    info.description = "Intel GPUs (Arc, Data Center GPU Max, integrated Xe) and other OpenCL devices: OpenCL C "
                       "kernels built at first use";
    info.ops = ((1ull << BNB_OP_COUNT) - 1) & ~(1ull << BNB_OP_PAGER); /* no budget/spill pager: SVM */
    info.float_dtypes = BNB_FLOAT_DTYPES;
    info.quant_types = (1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4);
    info.weight_formats = (1u << BNB_WEIGHT_STANDARD) | (1u << BNB_WEIGHT_BNB_CPU) | (1u << BNB_WEIGHT_BACKEND);
    info.memory_kinds = (1u << BNB_MEMORY_DEVICE) | (1u << BNB_MEMORY_HOST_PINNED) | (1u << BNB_MEMORY_PAGED);
    info.optimizers = (1u << BNB_OPTIM_COUNT) - 1;
    return bnb_backend_info_copy(info, out);
}

bnb_api make_api() {
    bnb_api api;
    std::memset(&api, 0, sizeof api);
    api.abi_major = BNB_ABI_MAJOR;
    api.abi_minor = BNB_ABI_MINOR;
    api.struct_size = sizeof(bnb_api);
    api.backend_get_info = xpu_backend_get_info;
    api.device_count = xpu_device_count;
    api.device_get_info = xpu_device_get_info;
    api.context_create = xpu_context_create;
    api.context_destroy = xpu_context_destroy;
    api.last_error_message = xpu_last_error_message;
    api.set_log_callback = xpu_set_log_callback;
    api.get_code_table = bnb_common_get_code_table;
    api.buffer_alloc = xpu_buffer_alloc;
    api.buffer_free = xpu_buffer_free;
    api.buffer_get_pointer = xpu_buffer_get_pointer;
    api.buffer_map = xpu_buffer_map;
    api.memory_copy = xpu_memory_copy;
    api.paged_prefetch = xpu_paged_prefetch;
    api.stream_create = xpu_stream_create;
    api.stream_destroy = xpu_stream_destroy;
    api.stream_synchronize = xpu_stream_synchronize;
    api.context_set_stream = xpu_context_set_stream;
    api.quantize_blockwise = xpu_quantize_blockwise;
    api.dequantize_blockwise = xpu_dequantize_blockwise;
    api.quantize_absmax_nested = xpu_quantize_absmax_nested;
    api.quantize_4bit = xpu_quantize_4bit;
    api.dequantize_4bit = xpu_dequantize_4bit;
    api.weight_pack_size = bnb_ref_weight_pack_size; /* arithmetic only; BNB_WEIGHT_BACKEND = STANDARD */
    api.weight_pack = xpu_weight_pack;
    api.weight_unpack = xpu_weight_unpack;
    api.gemv_4bit = xpu_gemv_4bit;
    api.gemm_4bit = xpu_gemm_4bit;
    api.int8_vectorwise_quant = xpu_int8_vectorwise_quant;
    api.int8_vectorwise_dequant = xpu_int8_vectorwise_dequant;
    api.int8_linear_matmul = xpu_int8_linear_matmul;
    api.int8_mm_dequant = xpu_int8_mm_dequant;
    api.int8_double_quant = xpu_int8_double_quant;
    api.optimizer_update_32bit = xpu_optimizer_update_32bit;
    api.optimizer_update_8bit_blockwise = xpu_optimizer_update_8bit_blockwise;
    api.optimizer_unorm = xpu_optimizer_unorm;
    api.percentile_clipping = xpu_percentile_clipping;
    api.pager_configure = xpu_pager_configure;
    api.memory_stats = xpu_memory_stats;
    api.buffer_map_access = xpu_buffer_map_access;
    api.buffer_unmap = xpu_buffer_unmap;
    return api;
}

const bnb_api xpu_api = make_api();

} // namespace

extern "C" {

BNB_EXPORT int32_t BNB_CALL bnb_probe(void) {
    return xpu_probe_score();
}

BNB_EXPORT bnb_status BNB_CALL bnb_get_api(uint32_t abi_major, const bnb_api** out_api) {
    return bnb_backend_get_api(&xpu_api, abi_major, out_api);
}

} // extern "C"
