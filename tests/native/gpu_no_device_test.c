/*
 * gpu_no_device_test — a GPU backend (bnb_cuda, bnb_hip) on a machine WITHOUT a usable GPU (CI):
 *
 *   gpu_no_device_test <backend-lib> <expected-name> <vendor>      e.g.  libbnb_cuda.so cuda CUDA
 *
 * Checks that the library loads (static runtime, no GPU needed), bnb_probe() == 0, the table is complete and
 * describes a GPU backend, device_count answers 0, and every slot that needs a device fails with
 * BNB_ERR_NO_DEVICE and a message "bnb_<name>: <op>: no usable <vendor> device on this machine: <reason>" (the
 * NULL-accepting destroy/free slots return OK for NULL, as on every backend). Exit 77 (skipped) when a device IS
 * present: then the conformance suite is the test that applies.
 */
#include "bnb_test_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_failures = 0;
static const char* g_name;
static const char* g_vendor;
static const bnb_api* g_api;

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            ++g_failures;                                                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                            \
            printf(__VA_ARGS__);                                                                                   \
            printf("\n");                                                                                          \
        }                                                                                                          \
    } while (0)

/* The status must be NO_DEVICE and the message must name the backend, the op and the vendor. */
static void expect_no_device(const char* op, bnb_status st) {
    const char* msg = g_api->last_error_message();
    char prefix[160];
    char middle[96];
    snprintf(prefix, sizeof prefix, "bnb_%s: %s: ", g_name, op);
    snprintf(middle, sizeof middle, "no usable %s device on this machine: ", g_vendor);
    CHECK(st == BNB_ERR_NO_DEVICE, "%s returned %s, expected NO_DEVICE (message: %s)", op, bnbt_status_name(st),
          msg ? msg : "(null)");
    CHECK(msg != NULL && strncmp(msg, prefix, strlen(prefix)) == 0, "%s: message '%s' does not start with '%s'", op,
          msg ? msg : "(null)", prefix);
    CHECK(msg != NULL && strstr(msg, middle) != NULL && strlen(strstr(msg, middle)) > strlen(middle),
          "%s: message '%s' does not say '%s<reason>'", op, msg ? msg : "(null)", middle);
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <backend-lib> <expected-name> <vendor>\n", argv[0]);
        return 2;
    }
    g_name = argv[2];
    g_vendor = argv[3];
    bnbt_backend b;
    if (!bnbt_load(argv[1], &b)) return 1; /* loading must work without a GPU */
    g_api = b.api;
    const bnb_api* api = b.api;
    const int32_t probe = b.probe();
    if (probe != 0) {
        printf("SKIP: %s reports a usable device (probe %d); this test is for machines without one\n", argv[1],
               (int)probe);
        bnbt_unload(&b);
        return 77;
    }

    /* the table: header fields, every slot non-NULL */
    CHECK(api->abi_major == BNB_ABI_MAJOR, "abi_major %u", (unsigned)api->abi_major);
    CHECK(api->struct_size >= sizeof(bnb_api), "struct_size %u < %u", (unsigned)api->struct_size,
          (unsigned)sizeof(bnb_api));
    {
        const size_t first = offsetof(bnb_api, backend_get_info);
        const size_t count = (sizeof(bnb_api) - first) / sizeof(void*);
        for (size_t i = 0; i < count; ++i) {
            void* slot = NULL;
            memcpy(&slot, (const char*)api + first + i * sizeof(void*), sizeof slot);
            CHECK(slot != NULL, "slot %zu of the table is NULL", i);
        }
    }

    /* what works without a device: identity, device_count = 0, messages, log sink */
    bnb_backend_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(api->backend_get_info(&info) == BNB_OK, "backend_get_info failed");
    CHECK(info.name != NULL && strcmp(info.name, g_name) == 0, "name '%s', expected '%s'", info.name ? info.name : "",
          g_name);
    CHECK(info.device_kind == BNB_DEVICE_GPU, "device_kind %d", (int)info.device_kind);
    CHECK(info.ops == (((1ull << BNB_OP_COUNT) - 1) & ~(1ull << BNB_OP_PAGER)),
          "ops bits 0x%llx: every op is implemented (the driver pages managed memory: no BNB_OP_PAGER)",
          (unsigned long long)info.ops);
    CHECK(info.optimizers == (1u << BNB_OPTIM_COUNT) - 1, "optimizer bits 0x%x", (unsigned)info.optimizers);
    int32_t count = -1;
    CHECK(api->device_count(&count) == BNB_OK && count == 0, "device_count: status or count %d != 0", (int)count);
    CHECK(api->set_log_callback(NULL, NULL) == BNB_OK, "set_log_callback(NULL)");
    CHECK(api->context_destroy(NULL) == BNB_OK, "context_destroy(NULL)");
    CHECK(api->buffer_free(NULL) == BNB_OK, "buffer_free(NULL)");
    CHECK(api->stream_destroy(NULL) == BNB_OK, "stream_destroy(NULL)");

    /* everything else: NO_DEVICE with a message naming op and reason */
    bnb_device_info dinfo;
    memset(&dinfo, 0, sizeof dinfo);
    dinfo.struct_size = sizeof dinfo;
    expect_no_device("device_get_info", api->device_get_info(0, &dinfo));
    bnb_context* ctx = NULL;
    bnb_context_options opts;
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    expect_no_device("context_create", api->context_create(&opts, &ctx));
    CHECK(ctx == NULL, "context_create wrote a context on failure");
    expect_no_device("context_create", api->context_create(NULL, &ctx));

    float table[256];
    bnb_tensor t = bnbt_tensor1(table, BNB_DTYPE_F32, 256);
    expect_no_device("get_code_table", api->get_code_table(BNB_TABLE_NF4, &t));

    /* ops get no context here (none can be made): they must still say NO_DEVICE, not "context is NULL" */
    bnb_buffer* buffer = NULL;
    expect_no_device("buffer_alloc", api->buffer_alloc(NULL, BNB_MEMORY_DEVICE, 64, &buffer));
    expect_no_device("memory_copy", api->memory_copy(NULL, table, table, 4, BNB_COPY_HOST_TO_HOST));
    bnb_stream* stream = NULL;
    expect_no_device("stream_create", api->stream_create(NULL, NULL, &stream));
    expect_no_device("context_set_stream", api->context_set_stream(NULL, NULL));
    expect_no_device("quantize_blockwise", api->quantize_blockwise(NULL, &t, &t, 64, 0, &t, &t));
    expect_no_device("dequantize_blockwise", api->dequantize_blockwise(NULL, &t, NULL, &t, 64, &t));
    float offset = 0.0f;
    expect_no_device("quantize_absmax_nested",
                     api->quantize_absmax_nested(NULL, &t, &t, 256, 0, NULL, &t, &t, &offset));
    expect_no_device("quantize_4bit", api->quantize_4bit(NULL, &t, BNB_QUANT_NF4, 64, &t, &t));
    expect_no_device("dequantize_4bit", api->dequantize_4bit(NULL, &t, NULL, BNB_QUANT_NF4, 64, &t));
    size_t bytes = 0;
    expect_no_device("weight_pack_size", api->weight_pack_size(NULL, BNB_WEIGHT_BACKEND, 32, 32, 64, &bytes));
    expect_no_device("weight_pack", api->weight_pack(NULL, BNB_WEIGHT_BACKEND, &t, 32, 32, 64, &t));
    expect_no_device("weight_unpack", api->weight_unpack(NULL, BNB_WEIGHT_BACKEND, &t, 32, 32, 64, &t));
    expect_no_device("gemv_4bit", api->gemv_4bit(NULL, &t, &t, 0, NULL, BNB_QUANT_NF4, 64, NULL, &t));
    expect_no_device("gemm_4bit", api->gemm_4bit(NULL, &t, &t, 0, NULL, BNB_QUANT_NF4, 64, NULL, &t));
    int64_t outliers = 0;
    expect_no_device("int8_vectorwise_quant", api->int8_vectorwise_quant(NULL, &t, 0.0f, &t, &t, NULL, &outliers));
    expect_no_device("int8_vectorwise_dequant", api->int8_vectorwise_dequant(NULL, &t, &t, &t));
    expect_no_device("int8_linear_matmul", api->int8_linear_matmul(NULL, &t, &t, &t));
    expect_no_device("int8_mm_dequant", api->int8_mm_dequant(NULL, &t, &t, &t, NULL, &t));
    expect_no_device("int8_double_quant", api->int8_double_quant(NULL, &t, 0.0f, &t, &t, &t, &t, NULL, &outliers));
    bnb_optimizer_params params;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    float unorm = 0.0f;
    double sq1 = 0, sq2 = 0;
    expect_no_device("optimizer_update_32bit", api->optimizer_update_32bit(NULL, &params, &t, &t, &t, NULL, &unorm));
    expect_no_device("optimizer_update_8bit_blockwise",
                     api->optimizer_update_8bit_blockwise(NULL, &params, &t, &t, &t, NULL, &t, NULL, &t, NULL));
    expect_no_device("optimizer_unorm", api->optimizer_unorm(NULL, &params, &t, &t, &t, NULL, &sq1, &sq2));
    float gnorm = 0, scale = 0;
    expect_no_device("percentile_clipping", api->percentile_clipping(NULL, &t, &t, 1, 5, &gnorm, &scale));
    /* handles that cannot exist without a device are refused before they are looked at */
    expect_no_device("buffer_free", api->buffer_free((bnb_buffer*)(void*)table));
    expect_no_device("buffer_get_pointer", api->buffer_get_pointer((bnb_buffer*)(void*)table, NULL, NULL));
    expect_no_device("buffer_map", api->buffer_map((bnb_buffer*)(void*)table, NULL));
    expect_no_device("stream_synchronize", api->stream_synchronize((bnb_stream*)(void*)table));
    expect_no_device("stream_destroy", api->stream_destroy((bnb_stream*)(void*)table));
    expect_no_device("paged_prefetch", api->paged_prefetch(NULL, NULL, 0, 0, BNB_PREFETCH_TO_DEVICE));
    expect_no_device("pager_configure", api->pager_configure(NULL, NULL));
    bnb_memory_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    expect_no_device("memory_stats", api->memory_stats(NULL, &stats));
    void* mapped = NULL;
    expect_no_device("buffer_map_access", api->buffer_map_access((bnb_buffer*)(void*)table, BNB_MAP_READ, &mapped));
    expect_no_device("buffer_unmap", api->buffer_unmap((bnb_buffer*)(void*)table));

    printf("%s: %s without a device: %s (%d failures); last message: %s\n", argv[1], g_name,
           g_failures ? "FAILED" : "ok", g_failures, api->last_error_message());
    bnbt_unload(&b);
    return g_failures ? 1 : 0;
}
