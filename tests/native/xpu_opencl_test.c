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
