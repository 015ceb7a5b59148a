/*
 * xpu_opencl_test — bnb_xpu's OpenCL interop contract, from the caller's side (docs/backends.md "XPU"):
 *
 *   xpu_opencl_test <bnb_xpu> <bnb_cpu_ref>          interop checks on the first OpenCL device (PoCL in CI)
 *   xpu_opencl_test --no-opencl <bnb_xpu>           run with BNB_XPU_OPENCL_LIBRARY pointing nowhere: probe 0,
 *                                                    no devices, context_create → NO_DEVICE naming the loader
 *
 * The interop checks drive OpenCL directly, as an application that already uses OpenCL would: its own cl_context,
 * in-order queue and cl_mem buffers. bnb_xpu wraps the queue (stream_create with native_stream), gets the buffers
 * as cl_mem references (BNB_XPU_CL_MEM_TAG | cl_mem), quantizes to NF4 and runs gemv_4bit in place; the results,
 * read back with clEnqueueReadBuffer, must equal bnb_cpu_ref's on the same inputs (bit for bit: bnb_xpu's plain
 * kernels sum in the reference's order). Also: cl_mem of a foreign context, a too-small cl_mem, an out-of-order
 * queue, SVM buffers from buffer_alloc used directly as tensor data, and paged (SVM) memory.
 */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include "bnb_test_loader.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL_MEM_REF(m) ((void*)((uintptr_t)(m) | ((uintptr_t)1 << 63)))

static int g_fail = 0, g_checks = 0;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        ++g_checks;                                                                                                    \
        if (!(cond)) {                                                                                                 \
            ++g_fail;                                                                                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

static int no_opencl(const char* path) {
    bnbt_backend b;
    bnb_context* ctx = NULL;
    bnb_context* const sentinel = (bnb_context*)(void*)&ctx;
    int32_t count = -1;
    bnb_backend_info info;
    if (!bnbt_load(path, &b)) return 1;
    CHECK(b.probe() == 0, "bnb_probe() = %d without an OpenCL loader, expected 0", (int)b.probe());
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(b.api->backend_get_info(&info) == BNB_OK, "backend_get_info failed");
    CHECK(b.api->device_count(&count) == BNB_OK && count == 0, "device_count = %d, expected 0", (int)count);
    ctx = sentinel;
    CHECK(b.api->context_create(NULL, &ctx) == BNB_ERR_NO_DEVICE, "context_create did not fail with NO_DEVICE");
    CHECK(ctx == sentinel, "a failed context_create wrote *out_context");
    CHECK(strstr(b.api->last_error_message(), "OpenCL") != NULL && strstr(b.api->last_error_message(), "xpu"),
          "message \"%s\" does not name the backend and the missing OpenCL loader", b.api->last_error_message());
    printf("     context_create: %s\n", b.api->last_error_message());
    bnbt_unload(&b);
    printf("%s: %d checks, %d failed\n", g_fail ? "FAILED" : "PASSED", g_checks, g_fail);
    return g_fail ? 1 : 0;
}

static uint32_t g_seed = 12345u;
static float rnd(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((int32_t)(g_seed >> 8) - (1 << 23)) / (float)(1 << 23);
}

static cl_mem make_buffer(cl_context c, size_t bytes, const void* init) {
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes, (void*)init, &err);
    return err == CL_SUCCESS ? m : NULL;
}

static void read_back(cl_command_queue q, cl_mem m, void* dst, size_t bytes) {
    clEnqueueReadBuffer(q, m, CL_TRUE, 0, bytes, dst, 0, NULL, NULL);
}

/* More ops with every operand a cl_mem reference (inputs the validators do not read stay on the device), each
 * compared with bnb_cpu_ref on host copies of the same data: 4-bit dequantize, 8-bit blockwise round trip, the
 * LLM.int8 chain and a 32-bit Adam step. */
static void more_ops_on_cl_mem(const bnb_api* X, bnb_context* xctx, const bnb_api* R, bnb_context* rctx, cl_context c,
                               cl_command_queue q) {
    enum { M = 3, K = 96, N = 40, BS = 64 };
    static float a[M * K], w[N * K], code[256], absmax_r[(M * K + BS - 1) / BS], absmax_d[(M * K + BS - 1) / BS],
        deq_r[M * K], deq_d[M * K];
    static uint8_t codes_r[M * K], codes_d[M * K];
    static int8_t ca_r[M * K], ca_d[M * K], cb_r[N * K], cb_d[N * K];
    static float rs_r[M], rs_d[M], ws_r[N], ws_d[N], out_r[M * N], out_d[M * N];
    static int32_t c_r[M * N], c_d[M * N];
    static float p_r[M * K], p_d[M * K], s1_r[M * K], s1_d[M * K], s2_r[M * K], s2_d[M * K];
    int i;
    for (i = 0; i < M * K; ++i) a[i] = rnd();
    for (i = 0; i < N * K; ++i) w[i] = rnd();
    {
        bnb_tensor t = bnbt_tensor1(code, BNB_DTYPE_F32, 256);
        R->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &t);
    }
    /* reference on host memory */
    {
        bnb_tensor tA = bnbt_tensor1(a, BNB_DTYPE_F32, M * K), tc = bnbt_tensor1(code, BNB_DTYPE_F32, 256),
                   tq = bnbt_tensor1(codes_r, BNB_DTYPE_U8, M * K),
                   tm = bnbt_tensor1(absmax_r, BNB_DTYPE_F32, (M * K + BS - 1) / BS),
                   td = bnbt_tensor1(deq_r, BNB_DTYPE_F32, M * K), tA2 = bnbt_tensor2(a, BNB_DTYPE_F32, M, K),
                   tW2 = bnbt_tensor2(w, BNB_DTYPE_F32, N, K), tca = bnbt_tensor2(ca_r, BNB_DTYPE_I8, M, K),
                   tcb = bnbt_tensor2(cb_r, BNB_DTYPE_I8, N, K), trs = bnbt_tensor1(rs_r, BNB_DTYPE_F32, M),
                   tws = bnbt_tensor1(ws_r, BNB_DTYPE_F32, N), tC = bnbt_tensor2(c_r, BNB_DTYPE_I32, M, N),
                   tO = bnbt_tensor2(out_r, BNB_DTYPE_F32, M, N);
        bnb_absmax am;
        memset(&am, 0, sizeof am);
        am.struct_size = sizeof am;
        am.values = &tm;
        CHECK(R->quantize_blockwise(rctx, &tA, &tc, BS, BNB_ROUND_NEAREST, &tq, &tm) == BNB_OK &&
                  R->dequantize_blockwise(rctx, &tq, &am, &tc, BS, &td) == BNB_OK &&
                  R->int8_vectorwise_quant(rctx, &tA2, 0.0f, &tca, &trs, NULL, NULL) == BNB_OK &&
                  R->int8_vectorwise_quant(rctx, &tW2, 0.0f, &tcb, &tws, NULL, NULL) == BNB_OK &&
                  R->int8_linear_matmul(rctx, &tca, &tcb, &tC) == BNB_OK &&
                  R->int8_mm_dequant(rctx, &tC, &trs, &tws, NULL, &tO) == BNB_OK,
              "reference chain: %s", R->last_error_message());
    }
    /* the same on cl_mem buffers */
    {
        cl_mem mA = make_buffer(c, sizeof a, a), mW = make_buffer(c, sizeof w, w),
               mc = make_buffer(c, sizeof code, code), mq = make_buffer(c, sizeof codes_d, NULL),
               mm = make_buffer(c, sizeof absmax_d, NULL), md = make_buffer(c, sizeof deq_d, NULL),
               mca = make_buffer(c, sizeof ca_d, NULL), mcb = make_buffer(c, sizeof cb_d, NULL),
               mrs = make_buffer(c, sizeof rs_d, NULL), mws = make_buffer(c, sizeof ws_d, NULL),
               mC = make_buffer(c, sizeof c_d, NULL), mO = make_buffer(c, sizeof out_d, NULL);
        bnb_tensor tA = bnbt_tensor1(CL_MEM_REF(mA), BNB_DTYPE_F32, M * K),
                   tc = bnbt_tensor1(CL_MEM_REF(mc), BNB_DTYPE_F32, 256),
                   tq = bnbt_tensor1(CL_MEM_REF(mq), BNB_DTYPE_U8, M * K),
                   tm = bnbt_tensor1(CL_MEM_REF(mm), BNB_DTYPE_F32, (M * K + BS - 1) / BS),
                   td = bnbt_tensor1(CL_MEM_REF(md), BNB_DTYPE_F32, M * K),
                   tA2 = bnbt_tensor2(CL_MEM_REF(mA), BNB_DTYPE_F32, M, K),
                   tW2 = bnbt_tensor2(CL_MEM_REF(mW), BNB_DTYPE_F32, N, K),
                   tca = bnbt_tensor2(CL_MEM_REF(mca), BNB_DTYPE_I8, M, K),
                   tcb = bnbt_tensor2(CL_MEM_REF(mcb), BNB_DTYPE_I8, N, K),
                   trs = bnbt_tensor1(CL_MEM_REF(mrs), BNB_DTYPE_F32, M),
                   tws = bnbt_tensor1(CL_MEM_REF(mws), BNB_DTYPE_F32, N),
                   tC = bnbt_tensor2(CL_MEM_REF(mC), BNB_DTYPE_I32, M, N),
                   tO = bnbt_tensor2(CL_MEM_REF(mO), BNB_DTYPE_F32, M, N);
        bnb_absmax am;
        memset(&am, 0, sizeof am);
        am.struct_size = sizeof am;
        am.values = &tm;
        CHECK(X->quantize_blockwise(xctx, &tA, &tc, BS, BNB_ROUND_NEAREST, &tq, &tm) == BNB_OK,
              "quantize_blockwise: %s", X->last_error_message());
        CHECK(X->dequantize_blockwise(xctx, &tq, &am, &tc, BS, &td) == BNB_OK, "dequantize_blockwise: %s",
              X->last_error_message());
        CHECK(X->int8_vectorwise_quant(xctx, &tA2, 0.0f, &tca, &trs, NULL, NULL) == BNB_OK, "int8_vectorwise_quant: %s",
              X->last_error_message());
        CHECK(X->int8_vectorwise_quant(xctx, &tW2, 0.0f, &tcb, &tws, NULL, NULL) == BNB_OK, "int8_vectorwise_quant W");
        CHECK(X->int8_linear_matmul(xctx, &tca, &tcb, &tC) == BNB_OK, "int8_linear_matmul: %s",
              X->last_error_message());
        CHECK(X->int8_mm_dequant(xctx, &tC, &trs, &tws, NULL, &tO) == BNB_OK, "int8_mm_dequant: %s",
              X->last_error_message());
        read_back(q, mq, codes_d, sizeof codes_d);
        read_back(q, mm, absmax_d, sizeof absmax_d);
        read_back(q, md, deq_d, sizeof deq_d);
        read_back(q, mca, ca_d, sizeof ca_d);
        read_back(q, mcb, cb_d, sizeof cb_d);
        read_back(q, mrs, rs_d, sizeof rs_d);
        read_back(q, mws, ws_d, sizeof ws_d);
        read_back(q, mC, c_d, sizeof c_d);
        read_back(q, mO, out_d, sizeof out_d);
        CHECK(memcmp(codes_d, codes_r, sizeof codes_r) == 0 && memcmp(absmax_d, absmax_r, sizeof absmax_r) == 0,
              "quantize_blockwise on cl_mem differs from bnb_cpu_ref");
        CHECK(memcmp(deq_d, deq_r, sizeof deq_r) == 0, "dequantize_blockwise on cl_mem differs");
        CHECK(memcmp(ca_d, ca_r, sizeof ca_r) == 0 && memcmp(rs_d, rs_r, sizeof rs_r) == 0 &&
                  memcmp(cb_d, cb_r, sizeof cb_r) == 0 && memcmp(ws_d, ws_r, sizeof ws_r) == 0,
              "int8_vectorwise_quant on cl_mem differs");
        CHECK(memcmp(c_d, c_r, sizeof c_r) == 0, "int8_linear_matmul on cl_mem differs");
        CHECK(memcmp(out_d, out_r, sizeof out_r) == 0, "int8_mm_dequant on cl_mem differs");
        clReleaseMemObject(mA);
        clReleaseMemObject(mW);
        clReleaseMemObject(mc);
        clReleaseMemObject(mq);
        clReleaseMemObject(mm);
        clReleaseMemObject(md);
        clReleaseMemObject(mca);
        clReleaseMemObject(mcb);
        clReleaseMemObject(mrs);
        clReleaseMemObject(mws);
        clReleaseMemObject(mC);
        clReleaseMemObject(mO);
    }
    /* a 32-bit AdamW step with max_unorm (trust ratio: two kernels around a host norm), in place on cl_mem */
    {
        bnb_optimizer_params prm;
        cl_mem mp, mg, ms1, ms2;
        float unorm_r = 0.0f, unorm_d = 0.0f;
        memset(&prm, 0, sizeof prm);
        prm.struct_size = sizeof prm;
        prm.kind = BNB_OPTIM_ADAM;
        prm.step = 3;
        prm.lr = 1e-3;
        prm.beta1 = 0.9;
        prm.beta2 = 0.999;
        prm.eps = 1e-8;
        prm.weight_decay = 0.01;
        prm.gnorm_scale = 1.0;
        prm.max_unorm = 0.02;
        prm.param_norm = -1.0;
        for (i = 0; i < M * K; ++i) {
            p_r[i] = p_d[i] = rnd();
            s1_r[i] = s1_d[i] = rnd() * 0.01f;
            s2_r[i] = s2_d[i] = fabsf(rnd()) * 0.001f;
        }
        {
            bnb_tensor tp = bnbt_tensor1(p_r, BNB_DTYPE_F32, M * K), tg = bnbt_tensor1(a, BNB_DTYPE_F32, M * K),
                       t1 = bnbt_tensor1(s1_r, BNB_DTYPE_F32, M * K), t2 = bnbt_tensor1(s2_r, BNB_DTYPE_F32, M * K);
            CHECK(R->optimizer_update_32bit(rctx, &prm, &tp, &tg, &t1, &t2, &unorm_r) == BNB_OK, "reference step: %s",
                  R->last_error_message());
        }
        mp = make_buffer(c, sizeof p_d, p_d);
        mg = make_buffer(c, sizeof a, a);
        ms1 = make_buffer(c, sizeof s1_d, s1_d);
        ms2 = make_buffer(c, sizeof s2_d, s2_d);
        {
            bnb_tensor tp = bnbt_tensor1(CL_MEM_REF(mp), BNB_DTYPE_F32, M * K),
                       tg = bnbt_tensor1(CL_MEM_REF(mg), BNB_DTYPE_F32, M * K),
                       t1 = bnbt_tensor1(CL_MEM_REF(ms1), BNB_DTYPE_F32, M * K),
                       t2 = bnbt_tensor1(CL_MEM_REF(ms2), BNB_DTYPE_F32, M * K);
            CHECK(X->optimizer_update_32bit(xctx, &prm, &tp, &tg, &t1, &t2, &unorm_d) == BNB_OK,
                  "optimizer_update_32bit on cl_mem: %s", X->last_error_message());
        }
        read_back(q, mp, p_d, sizeof p_d);
        read_back(q, ms1, s1_d, sizeof s1_d);
        read_back(q, ms2, s2_d, sizeof s2_d);
        CHECK(memcmp(p_d, p_r, sizeof p_r) == 0 && memcmp(s1_d, s1_r, sizeof s1_r) == 0 &&
                  memcmp(s2_d, s2_r, sizeof s2_r) == 0 && unorm_d == unorm_r && unorm_r > 0.0f,
              "trust-ratio AdamW step on cl_mem differs from bnb_cpu_ref (unorm %g vs %g)", (double)unorm_d,
              (double)unorm_r);
        clReleaseMemObject(mp);
        clReleaseMemObject(mg);
        clReleaseMemObject(ms1);
        clReleaseMemObject(ms2);
    }
}

int main(int argc, char** argv) {
    enum { N = 96, K = 256, BS = 64 };
    static float A[K], W[N * K], out_ref[N], out_dev[N], absmax_ref[N * K / BS], absmax_dev[N * K / BS];
    static uint8_t packed_ref[N * K / 2], packed_dev[N * K / 2];
    bnbt_backend xb, rb;
    const bnb_api *X, *R;
    cl_platform_id platform;
    cl_device_id device;
    cl_int err;
    cl_context clctx, other;
    cl_command_queue queue, ooo;
    bnb_context *xctx = NULL, *rctx = NULL;
    bnb_stream* stream = NULL;
    int i;

    if (argc == 3 && strcmp(argv[1], "--no-opencl") == 0) return no_opencl(argv[2]);
    if (argc != 3) {
        fprintf(stderr, "usage: %s <bnb_xpu> <bnb_cpu_ref> | --no-opencl <bnb_xpu>\n", argv[0]);
        return 2;
    }
    if (!bnbt_load(argv[1], &xb) || !bnbt_load(argv[2], &rb)) return 2;
    if (xb.probe() == 0) {
        printf("SKIP: bnb_xpu finds no OpenCL device here\n");
        return 77;
    }
    X = xb.api;
    R = rb.api;
    /* the application's own OpenCL objects (the platform of bnb_xpu's device 0) */
    {
        bnb_device_info di;
        cl_uint np = 0, p;
        memset(&di, 0, sizeof di);
        di.struct_size = sizeof di;
        X->device_get_info(0, &di);
        clGetPlatformIDs(0, NULL, &np);
        platform = NULL;
        device = NULL;
        for (p = 0; p < np && device == NULL; ++p) {
            cl_platform_id ids[16];
            cl_uint nd = 0, d;
            clGetPlatformIDs(np < 16 ? np : 16, ids, NULL);
            if (clGetDeviceIDs(ids[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS) continue;
            for (d = 0; d < nd && d < 16; ++d) {
                cl_device_id devs[16];
                char name[256];
                clGetDeviceIDs(ids[p], CL_DEVICE_TYPE_ALL, nd < 16 ? nd : 16, devs, NULL);
                clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof name, name, NULL);
                if (strncmp(di.name, name, strlen(name)) == 0) {
                    platform = ids[p];
                    device = devs[d];
                    break;
                }
            }
        }
        CHECK(device != NULL, "bnb_xpu's device 0 (%s) not found through OpenCL", di.name);
        if (device == NULL) return 1;
        printf("device: %s\n", di.name);
    }
    clctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    queue = clCreateCommandQueue(clctx, device, 0, &err);
    other = clCreateContext(NULL, 1, &device, NULL, NULL, &err);

    for (i = 0; i < K; ++i) A[i] = rnd();
    for (i = 0; i < N * K; ++i) W[i] = rnd() * 0.05f;

    /* reference on host memory */
    R->context_create(NULL, &rctx);
    {
        bnb_tensor tW = bnbt_tensor1(W, BNB_DTYPE_F32, N * K), tP = bnbt_tensor1(packed_ref, BNB_DTYPE_U8, N * K / 2),
                   tM = bnbt_tensor1(absmax_ref, BNB_DTYPE_F32, N * K / BS), tA = bnbt_tensor2(A, BNB_DTYPE_F32, 1, K),
                   tO = bnbt_tensor2(out_ref, BNB_DTYPE_F32, 1, N);
        bnb_absmax am;
        memset(&am, 0, sizeof am);
        am.struct_size = sizeof am;
        am.values = &tM;
        CHECK(R->quantize_4bit(rctx, &tW, BNB_QUANT_NF4, BS, &tP, &tM) == BNB_OK, "ref quantize_4bit");
        CHECK(R->gemv_4bit(rctx, &tA, &tP, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &tO) == BNB_OK,
              "ref gemv_4bit");
    }

    /* bnb_xpu on the application's queue and cl_mem buffers */
    CHECK(X->context_create(NULL, &xctx) == BNB_OK, "context_create: %s", X->last_error_message());
    CHECK(X->stream_create(xctx, queue, &stream) == BNB_OK, "stream_create(native queue): %s", X->last_error_message());
    CHECK(X->context_set_stream(xctx, stream) == BNB_OK, "context_set_stream: %s", X->last_error_message());
    {
        cl_mem mW = make_buffer(clctx, sizeof W, W), mP = make_buffer(clctx, sizeof packed_dev, NULL),
               mM = make_buffer(clctx, sizeof absmax_dev, NULL), mA = make_buffer(clctx, sizeof A, A),
               mO = make_buffer(clctx, sizeof out_dev, NULL), mSmall = make_buffer(clctx, 16, NULL),
               mOther = make_buffer(other, sizeof packed_dev, NULL);
        bnb_tensor tW = bnbt_tensor1(CL_MEM_REF(mW), BNB_DTYPE_F32, N * K),
                   tP = bnbt_tensor1(CL_MEM_REF(mP), BNB_DTYPE_U8, N * K / 2),
                   tM = bnbt_tensor1(CL_MEM_REF(mM), BNB_DTYPE_F32, N * K / BS),
                   tA = bnbt_tensor2(CL_MEM_REF(mA), BNB_DTYPE_F32, 1, K),
                   tO = bnbt_tensor2(CL_MEM_REF(mO), BNB_DTYPE_F32, 1, N),
                   tSmall = bnbt_tensor1(CL_MEM_REF(mSmall), BNB_DTYPE_U8, N * K / 2),
                   tOther = bnbt_tensor1(CL_MEM_REF(mOther), BNB_DTYPE_U8, N * K / 2);
        bnb_absmax am;
        bnb_status st;
        memset(&am, 0, sizeof am);
        am.struct_size = sizeof am;
        am.values = &tM;
        st = X->quantize_4bit(xctx, &tW, BNB_QUANT_NF4, BS, &tP, &tM);
        CHECK(st == BNB_OK, "quantize_4bit on cl_mem: %s", X->last_error_message());
        st = X->gemv_4bit(xctx, &tA, &tP, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, BS, NULL, &tO);
        CHECK(st == BNB_OK, "gemv_4bit on cl_mem: %s", X->last_error_message());
        clEnqueueReadBuffer(queue, mP, CL_TRUE, 0, sizeof packed_dev, packed_dev, 0, NULL, NULL);
        clEnqueueReadBuffer(queue, mM, CL_TRUE, 0, sizeof absmax_dev, absmax_dev, 0, NULL, NULL);
        clEnqueueReadBuffer(queue, mO, CL_TRUE, 0, sizeof out_dev, out_dev, 0, NULL, NULL);
        CHECK(memcmp(packed_dev, packed_ref, sizeof packed_ref) == 0, "packed NF4 codes differ from bnb_cpu_ref");
        CHECK(memcmp(absmax_dev, absmax_ref, sizeof absmax_ref) == 0, "absmax differs from bnb_cpu_ref");
        CHECK(memcmp(out_dev, out_ref, sizeof out_ref) == 0, "gemv_4bit output differs from bnb_cpu_ref (%g vs %g)",
              (double)out_dev[0], (double)out_ref[0]);

        st = X->quantize_4bit(xctx, &tW, BNB_QUANT_NF4, BS, &tSmall, &tM);
        CHECK(st == BNB_ERR_BUFFER_TOO_SMALL && strstr(X->last_error_message(), "out_packed"),
              "a 16-byte cl_mem declared as %d bytes: %s (%s)", N * K / 2, bnbt_status_name(st),
              X->last_error_message());
        st = X->quantize_4bit(xctx, &tW, BNB_QUANT_NF4, BS, &tOther, &tM);
        CHECK(st == BNB_ERR_INVALID_ARGUMENT && strstr(X->last_error_message(), "another OpenCL context"),
              "a cl_mem of another context: %s (%s)", bnbt_status_name(st), X->last_error_message());
        /* memory_copy between a cl_mem reference and host memory */
        memset(packed_dev, 0, sizeof packed_dev);
        st = X->memory_copy(xctx, packed_dev, CL_MEM_REF(mP), sizeof packed_dev, BNB_COPY_DEVICE_TO_HOST);
        CHECK(st == BNB_OK && memcmp(packed_dev, packed_ref, sizeof packed_ref) == 0,
              "memory_copy(d2h) of a cl_mem: %s", X->last_error_message());
        clReleaseMemObject(mW);
        clReleaseMemObject(mP);
        clReleaseMemObject(mM);
        clReleaseMemObject(mA);
        clReleaseMemObject(mO);
        clReleaseMemObject(mSmall);
        clReleaseMemObject(mOther);
    }
    more_ops_on_cl_mem(X, xctx, R, rctx, clctx, queue);
    CHECK(X->context_set_stream(xctx, NULL) == BNB_OK, "context_set_stream(NULL)");
    CHECK(X->stream_destroy(stream) == BNB_OK, "stream_destroy of a wrapped queue");
    CHECK(clFinish(queue) == CL_SUCCESS, "the application's queue is unusable after stream_destroy");

    /* an out-of-order queue is refused */
    ooo = clCreateCommandQueue(clctx, device, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err == CL_SUCCESS) {
        bnb_status st = X->stream_create(xctx, ooo, &stream);
        CHECK(st == BNB_ERR_INVALID_ARGUMENT && strstr(X->last_error_message(), "out-of-order"),
              "out-of-order queue: %s (%s)", bnbt_status_name(st), X->last_error_message());
        clReleaseCommandQueue(ooo);
    }

    /* buffer_alloc memory as tensor data (SVM or cl_mem reference), and paged memory */
    {
        bnb_buffer *bW = NULL, *bP = NULL, *bM = NULL, *paged = NULL;
        void *pW = NULL, *pP = NULL, *pM = NULL;
        bnb_device_info di;
        bnb_status st;
        memset(&di, 0, sizeof di);
        di.struct_size = sizeof di;
        X->device_get_info(0, &di);
        CHECK(X->buffer_alloc(xctx, BNB_MEMORY_DEVICE, sizeof W, &bW) == BNB_OK, "buffer_alloc W");
        CHECK(X->buffer_alloc(xctx, BNB_MEMORY_DEVICE, sizeof packed_dev, &bP) == BNB_OK, "buffer_alloc packed");
        CHECK(X->buffer_alloc(xctx, BNB_MEMORY_DEVICE, sizeof absmax_dev, &bM) == BNB_OK, "buffer_alloc absmax");
        X->buffer_get_pointer(bW, &pW, NULL);
        X->buffer_get_pointer(bP, &pP, NULL);
        X->buffer_get_pointer(bM, &pM, NULL);
        CHECK(X->memory_copy(xctx, pW, W, sizeof W, BNB_COPY_HOST_TO_DEVICE) == BNB_OK, "memory_copy(h2d)");
        {
            bnb_tensor tW = bnbt_tensor1(pW, BNB_DTYPE_F32, N * K), tP = bnbt_tensor1(pP, BNB_DTYPE_U8, N * K / 2),
                       tM = bnbt_tensor1(pM, BNB_DTYPE_F32, N * K / BS);
            st = X->quantize_4bit(xctx, &tW, BNB_QUANT_NF4, BS, &tP, &tM);
            CHECK(st == BNB_OK, "quantize_4bit on buffer_alloc memory: %s", X->last_error_message());
        }
        memset(packed_dev, 0, sizeof packed_dev);
        X->memory_copy(xctx, packed_dev, pP, sizeof packed_dev, BNB_COPY_DEVICE_TO_HOST);
        CHECK(memcmp(packed_dev, packed_ref, sizeof packed_ref) == 0, "quantize_4bit on buffer_alloc memory differs");
        st = X->buffer_alloc(xctx, BNB_MEMORY_PAGED, 4096, &paged);
        if (di.features & (1ull << 5)) { /* BNB_XPU_FEATURE_SVM_FINE */
            void* host = NULL;
            CHECK(st == BNB_OK, "paged buffer on a fine-grained SVM device: %s", X->last_error_message());
            void* addr = NULL;
            bnb_memory_stats ms;
            bnb_pager_config pc;
            memset(&ms, 0, sizeof ms);
            ms.struct_size = sizeof ms;
            memset(&pc, 0, sizeof pc);
            pc.struct_size = sizeof pc;
            pc.budget_bytes = 1 << 20;
            CHECK(X->buffer_get_pointer(paged, &addr, NULL) == BNB_ERR_INVALID_ARGUMENT,
                  "a PAGED buffer has no address before it is mapped");
            CHECK(X->buffer_map(paged, &host) == BNB_OK && host != NULL, "buffer_map(paged)");
            CHECK(X->buffer_get_pointer(paged, &addr, NULL) == BNB_OK && addr == host, "buffer_get_pointer(mapped)");
            CHECK(X->memory_stats(xctx, &ms) == BNB_OK && ms.paged_bytes == 4096 && ms.pinned_bytes == 4096,
                  "memory_stats: paged %llu pinned %llu", (unsigned long long)ms.paged_bytes,
                  (unsigned long long)ms.pinned_bytes);
            CHECK(X->buffer_free(paged) == BNB_ERR_INVALID_ARGUMENT, "buffer_free of a mapped PAGED buffer");
            CHECK(X->paged_prefetch(xctx, paged, 0, 4096, BNB_PREFETCH_TO_DEVICE) == BNB_OK, "paged_prefetch: %s",
                  X->last_error_message());
            CHECK(X->buffer_unmap(paged) == BNB_OK, "buffer_unmap");
            CHECK(X->buffer_unmap(paged) == BNB_ERR_INVALID_ARGUMENT, "a second buffer_unmap");
            CHECK(X->pager_configure(xctx, &pc) == BNB_ERR_NOT_SUPPORTED && strstr(X->last_error_message(), "SVM"),
                  "pager_configure(budget): %s", X->last_error_message());
            CHECK(X->pager_configure(xctx, NULL) == BNB_OK, "pager_configure(defaults)");
            CHECK(X->buffer_free(paged) == BNB_OK, "buffer_free(paged)");
        } else {
            CHECK(st == BNB_ERR_NOT_SUPPORTED, "paged buffer without fine-grained SVM: %s", bnbt_status_name(st));
        }
        X->buffer_free(bW);
        X->buffer_free(bP);
        X->buffer_free(bM);
    }

    X->context_destroy(xctx);
    R->context_destroy(rctx);
    clReleaseCommandQueue(queue);
    clReleaseContext(clctx);
    clReleaseContext(other);
    bnbt_unload(&xb);
    bnbt_unload(&rb);
    (void)platform;
    printf("%s: %d checks, %d failed\n", g_fail ? "FAILED" : "PASSED", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
