/*
 * abi_test — the ABI 1 contract of every backend given on the command line, checked through dlopen only.
 *
 *   abi_test [--stub] <backend-library> [[--stub] <backend-library> ...]
 *
 * For every backend: bnb_get_api version handling, the table header, every slot non-NULL, backend_get_info,
 * device_count/device_get_info, context_create options, NULL-accepting destroy/free, last_error_message (never
 * NULL, thread-local), set_log_callback, get_code_table. A library marked --stub (the Gaudi TPC stub) must probe 0,
 * have no devices, and answer every op slot with BNB_ERR_NOT_SUPPORTED and a message naming the op and the backend.
 *
 * The frozen layout of ABI 1 is pinned at compile time below: slot offsets and public struct fields are literal
 * numbers computed from the header when ABI 1 was frozen. Changing any of them is an ABI major bump.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "api_check.h"
#include "bnb_test_loader.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#endif

/* ─── frozen layout of ABI 1 (LP64 / LLP64: 8-byte pointers) ─────────────────────────────────────────────── */

#define PIN_FIELD(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field " moved")
#define PIN_SIZE(type, size) _Static_assert(sizeof(type) == (size), "sizeof(" #type ") changed")

#define BNB_API_HEADER_BYTES 16
#define BNB_API_SLOT_COUNT 41

PIN_FIELD(bnb_api, abi_major, 0);
PIN_FIELD(bnb_api, abi_minor, 4);
PIN_FIELD(bnb_api, struct_size, 8);
PIN_FIELD(bnb_api, reserved, 12);
_Static_assert(sizeof(bnb_api) == BNB_API_HEADER_BYTES + BNB_API_SLOT_COUNT * sizeof(void (*)(void)),
               "bnb_api must be the 16-byte header followed by exactly 41 function pointers");

#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
PIN_FIELD(bnb_api, backend_get_info, 16);
PIN_FIELD(bnb_api, device_count, 24);
PIN_FIELD(bnb_api, device_get_info, 32);
PIN_FIELD(bnb_api, context_create, 40);
PIN_FIELD(bnb_api, context_destroy, 48);
PIN_FIELD(bnb_api, last_error_message, 56);
PIN_FIELD(bnb_api, set_log_callback, 64);
PIN_FIELD(bnb_api, get_code_table, 72);
PIN_FIELD(bnb_api, buffer_alloc, 80);
PIN_FIELD(bnb_api, buffer_free, 88);
PIN_FIELD(bnb_api, buffer_get_pointer, 96);
PIN_FIELD(bnb_api, buffer_map, 104);
PIN_FIELD(bnb_api, memory_copy, 112);
PIN_FIELD(bnb_api, paged_prefetch, 120);
PIN_FIELD(bnb_api, stream_create, 128);
PIN_FIELD(bnb_api, stream_destroy, 136);
PIN_FIELD(bnb_api, stream_synchronize, 144);
PIN_FIELD(bnb_api, context_set_stream, 152);
PIN_FIELD(bnb_api, quantize_blockwise, 160);
PIN_FIELD(bnb_api, dequantize_blockwise, 168);
PIN_FIELD(bnb_api, quantize_absmax_nested, 176);
PIN_FIELD(bnb_api, quantize_4bit, 184);
PIN_FIELD(bnb_api, dequantize_4bit, 192);
PIN_FIELD(bnb_api, weight_pack_size, 200);
PIN_FIELD(bnb_api, weight_pack, 208);
PIN_FIELD(bnb_api, weight_unpack, 216);
PIN_FIELD(bnb_api, gemv_4bit, 224);
PIN_FIELD(bnb_api, gemm_4bit, 232);
PIN_FIELD(bnb_api, int8_vectorwise_quant, 240);
PIN_FIELD(bnb_api, int8_vectorwise_dequant, 248);
PIN_FIELD(bnb_api, int8_linear_matmul, 256);
PIN_FIELD(bnb_api, int8_mm_dequant, 264);
PIN_FIELD(bnb_api, int8_double_quant, 272);
PIN_FIELD(bnb_api, optimizer_update_32bit, 280);
PIN_FIELD(bnb_api, optimizer_update_8bit_blockwise, 288);
PIN_FIELD(bnb_api, optimizer_unorm, 296);
PIN_FIELD(bnb_api, percentile_clipping, 304);
PIN_FIELD(bnb_api, pager_configure, 312); /* paging slots, appended (pre-release 1.0) */
PIN_FIELD(bnb_api, memory_stats, 320);
PIN_FIELD(bnb_api, buffer_map_access, 328);
PIN_FIELD(bnb_api, buffer_unmap, 336);
PIN_SIZE(bnb_api, 344);

PIN_SIZE(bnb_pager_config, 24);
PIN_FIELD(bnb_pager_config, struct_size, 0);
PIN_FIELD(bnb_pager_config, reserved, 4);
PIN_FIELD(bnb_pager_config, budget_bytes, 8);
PIN_FIELD(bnb_pager_config, spill_directory, 16);

PIN_SIZE(bnb_tensor, 80);
PIN_FIELD(bnb_tensor, data, 0);
PIN_FIELD(bnb_tensor, dtype, 8);
PIN_FIELD(bnb_tensor, ndim, 12);
PIN_FIELD(bnb_tensor, shape, 16);
PIN_FIELD(bnb_tensor, stride, 48);

PIN_SIZE(bnb_absmax, 48);
PIN_FIELD(bnb_absmax, struct_size, 0);
PIN_FIELD(bnb_absmax, nested, 4);
PIN_FIELD(bnb_absmax, values, 8);
PIN_FIELD(bnb_absmax, nested_absmax, 16);
PIN_FIELD(bnb_absmax, nested_code, 24);
PIN_FIELD(bnb_absmax, nested_blocksize, 32);
PIN_FIELD(bnb_absmax, nested_offset, 40);

PIN_SIZE(bnb_backend_info, 72);
PIN_FIELD(bnb_backend_info, struct_size, 0);
PIN_FIELD(bnb_backend_info, abi_major, 4);
PIN_FIELD(bnb_backend_info, abi_minor, 8);
PIN_FIELD(bnb_backend_info, device_kind, 12);
PIN_FIELD(bnb_backend_info, name, 16);
PIN_FIELD(bnb_backend_info, description, 24);
PIN_FIELD(bnb_backend_info, version, 32);
PIN_FIELD(bnb_backend_info, ops, 40);
PIN_FIELD(bnb_backend_info, float_dtypes, 48);
PIN_FIELD(bnb_backend_info, quant_types, 52);
PIN_FIELD(bnb_backend_info, weight_formats, 56);
PIN_FIELD(bnb_backend_info, memory_kinds, 60);
PIN_FIELD(bnb_backend_info, optimizers, 64);
PIN_FIELD(bnb_backend_info, reserved, 68);

PIN_SIZE(bnb_device_info, 176);
PIN_FIELD(bnb_device_info, struct_size, 0);
PIN_FIELD(bnb_device_info, index, 4);
PIN_FIELD(bnb_device_info, kind, 8);
PIN_FIELD(bnb_device_info, compute_units, 12);
PIN_FIELD(bnb_device_info, name, 16);
PIN_FIELD(bnb_device_info, total_memory, 144);
PIN_FIELD(bnb_device_info, free_memory, 152);
PIN_FIELD(bnb_device_info, features, 160);
PIN_FIELD(bnb_device_info, compute_capability, 168);
PIN_FIELD(bnb_device_info, warp_size, 172);
#endif /* 64-bit pointers */

/* Structs without pointers have the same layout on every platform. */
PIN_SIZE(bnb_memory_stats, 96);
PIN_FIELD(bnb_memory_stats, struct_size, 0);
PIN_FIELD(bnb_memory_stats, reserved, 4);
PIN_FIELD(bnb_memory_stats, budget_bytes, 8);
PIN_FIELD(bnb_memory_stats, paged_bytes, 16);
PIN_FIELD(bnb_memory_stats, resident_bytes, 24);
PIN_FIELD(bnb_memory_stats, pinned_bytes, 32);
PIN_FIELD(bnb_memory_stats, peak_resident_bytes, 40);
PIN_FIELD(bnb_memory_stats, evicted_bytes, 48);
PIN_FIELD(bnb_memory_stats, written_bytes, 56);
PIN_FIELD(bnb_memory_stats, loaded_bytes, 64);
PIN_FIELD(bnb_memory_stats, evictions, 72);
PIN_FIELD(bnb_memory_stats, loads, 80);
PIN_FIELD(bnb_memory_stats, spill_file_bytes, 88);

PIN_SIZE(bnb_context_options, 16);
PIN_FIELD(bnb_context_options, struct_size, 0);
PIN_FIELD(bnb_context_options, device, 4);
PIN_FIELD(bnb_context_options, num_threads, 8);
PIN_FIELD(bnb_context_options, nonfinite_policy, 12);

PIN_SIZE(bnb_optimizer_params, 104);
PIN_FIELD(bnb_optimizer_params, struct_size, 0);
PIN_FIELD(bnb_optimizer_params, kind, 4);
PIN_FIELD(bnb_optimizer_params, step, 8);
PIN_FIELD(bnb_optimizer_params, rounding, 12);
PIN_FIELD(bnb_optimizer_params, skip_zeros, 16);
PIN_FIELD(bnb_optimizer_params, reserved, 20);
PIN_FIELD(bnb_optimizer_params, lr, 24);
PIN_FIELD(bnb_optimizer_params, beta1, 32);
PIN_FIELD(bnb_optimizer_params, beta2, 40);
PIN_FIELD(bnb_optimizer_params, beta3, 48);
PIN_FIELD(bnb_optimizer_params, alpha, 56);
PIN_FIELD(bnb_optimizer_params, eps, 64);
PIN_FIELD(bnb_optimizer_params, weight_decay, 72);
PIN_FIELD(bnb_optimizer_params, gnorm_scale, 80);
PIN_FIELD(bnb_optimizer_params, max_unorm, 88);
PIN_FIELD(bnb_optimizer_params, param_norm, 96);

/* Frozen enum values (they travel as int32_t; renumbering is an ABI break). */
_Static_assert(BNB_OK == 0 && BNB_ERR_INVALID_ARGUMENT == 1 && BNB_ERR_NULL_POINTER == 2 &&
                   BNB_ERR_BUFFER_TOO_SMALL == 3 && BNB_ERR_SHAPE_MISMATCH == 4 && BNB_ERR_UNSUPPORTED_DTYPE == 5 &&
                   BNB_ERR_INVALID_BLOCKSIZE == 6 && BNB_ERR_NON_FINITE == 7 && BNB_ERR_NOT_SUPPORTED == 8 &&
                   BNB_ERR_OUT_OF_MEMORY == 9 && BNB_ERR_ABI_MISMATCH == 10 && BNB_ERR_NO_DEVICE == 11 &&
                   BNB_ERR_DEVICE == 12 && BNB_ERR_INTERNAL == 13 && BNB_ERR_IO == 14,
               "status codes are frozen");
_Static_assert(BNB_DTYPE_F32 == 0 && BNB_DTYPE_F16 == 1 && BNB_DTYPE_BF16 == 2 && BNB_DTYPE_U8 == 3 &&
                   BNB_DTYPE_I8 == 4 && BNB_DTYPE_I32 == 5 && BNB_DTYPE_I64 == 6 && BNB_DTYPE_F64 == 7,
               "dtype ids are frozen");
_Static_assert(BNB_QUANT_FP4 == 1 && BNB_QUANT_NF4 == 2, "quant types are frozen");
_Static_assert(BNB_ROUND_NEAREST == 0 && BNB_ROUND_BNB_CPU_LUT == 1, "rounding modes are frozen");
_Static_assert(BNB_OPTIM_ADAM == 0 && BNB_OPTIM_MOMENTUM == 1 && BNB_OPTIM_RMSPROP == 2 && BNB_OPTIM_ADAGRAD == 3 &&
                   BNB_OPTIM_LION == 4 && BNB_OPTIM_LAMB == 5 && BNB_OPTIM_LARS == 6 && BNB_OPTIM_ADEMAMIX == 7,
               "optimizer kinds are frozen");
_Static_assert(BNB_OP_COUNT == 20 && BNB_OP_PERCENTILE_CLIPPING == 16 && BNB_OP_PAGER == 19, "op ids are frozen");
_Static_assert(BNB_MAP_READ_WRITE == 0 && BNB_MAP_READ == 1 && BNB_PREFETCH_TO_DEVICE == 0 &&
                   BNB_PREFETCH_TO_HOST == 1 && BNB_MEMORY_PAGED == 2,
               "memory enums are frozen");

/* ─── checks ─────────────────────────────────────────────────────────────────────────────────────────────── */





/* Status must equal `want`; on a failure status the message must contain every non-NULL needle. */
static void expect_status(const char* what, bnb_status got, bnb_status want, const char* needle1,
                          const char* needle2) {
    CHECK(got == want, "%s: status %s (%d), expected %s (%d); message: %s", what, bnbt_status_name(got), (int)got,
          bnbt_status_name(want), (int)want, msg());
    if (got != want || got == BNB_OK) return;
    const char* m = A->last_error_message();
    CHECK(m != NULL, "%s: last_error_message() returned NULL", what);
    if (!m) return;
    CHECK(m[0] != '\0', "%s: failed without a message", what);
    if (needle1) CHECK(strstr(m, needle1) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, m, needle1);
    if (needle2) CHECK(strstr(m, needle2) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, m, needle2);
}

/* ─── last_error_message is thread-local ─────────────────────────────────────────────────────────────────── */

#if !defined(_WIN32)
static void* other_thread(void* arg) {
    const char** out = (const char**)arg;
    const char* m = A->last_error_message();
    *out = m ? (m[0] ? "non-empty" : "") : NULL;
    return NULL;
}
#endif

static void check_error_message_thread_local(void) {
#if !defined(_WIN32)
    const char* seen = "unset";
    pthread_t t;
    bnb_device_info d;
    /* Make this thread's message non-empty, then look from a fresh thread: it must see "" (never NULL). */
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    (void)A->device_get_info(-7, &d);
    CHECK(A->last_error_message() && A->last_error_message()[0], "no message after a failed call");
    if (pthread_create(&t, NULL, other_thread, (void*)&seen) != 0) {
        printf("     [%s] pthread_create failed; thread-local message check skipped\n", g_backend);
        return;
    }
    pthread_join(t, NULL);
    CHECK(seen != NULL, "last_error_message() returned NULL on a fresh thread");
    CHECK(seen == NULL || seen[0] == '\0', "a fresh thread sees another thread's error message (not thread-local)");
    CHECK(A->last_error_message() && strstr(A->last_error_message(), "-7"),
          "this thread's message changed after another thread read its own: %s", msg());
#endif
}

/* ─── log callback ───────────────────────────────────────────────────────────────────────────────────────── */

static void BNB_CALL log_sink(void* user, int32_t level, const char* message) {
    (void)level;
    (void)message;
    ++*(int*)user;
}

/* ─── runtime slots (every backend) ──────────────────────────────────────────────────────────────────────── */

static void check_table(const bnbt_backend* b, int stub) {
    const bnb_api* api = NULL;
    bnb_status st;

    /* bnb_get_api: version handling. */
    st = b->get_api(999u, &api);
    CHECK(st == BNB_ERR_ABI_MISMATCH, "bnb_get_api(999) returned %s, expected ABI_MISMATCH", bnbt_status_name(st));
    st = b->get_api(0u, &api);
    CHECK(st == BNB_ERR_ABI_MISMATCH, "bnb_get_api(0) returned %s, expected ABI_MISMATCH", bnbt_status_name(st));
    st = b->get_api(BNB_ABI_MAJOR, NULL);
    CHECK(st == BNB_ERR_NULL_POINTER, "bnb_get_api(1, NULL) returned %s, expected NULL_POINTER",
          bnbt_status_name(st));
    st = b->get_api(BNB_ABI_MAJOR, &api);
    CHECK(st == BNB_OK && api == b->api, "bnb_get_api(1) twice gives a different table (static table expected)");

    /* Header. */
    CHECK(A->abi_major == BNB_ABI_MAJOR, "abi_major = %u", A->abi_major);
    CHECK((int64_t)A->abi_minor >= (int64_t)BNB_ABI_MINOR, "abi_minor = %u < header's %d", A->abi_minor, BNB_ABI_MINOR);
    CHECK(A->struct_size >= sizeof(bnb_api), "struct_size = %u < sizeof(bnb_api) = %u", A->struct_size,
          (unsigned)sizeof(bnb_api));
    CHECK((A->struct_size - BNB_API_HEADER_BYTES) % sizeof(void (*)(void)) == 0,
          "struct_size = %u is not the header plus whole slots", A->struct_size);

    /* Every slot non-NULL: walk the table as function pointers after the 16-byte header. */
    {
        const size_t slot = sizeof(void (*)(void));
        const size_t count = (sizeof(bnb_api) - BNB_API_HEADER_BYTES) / slot;
        size_t i;
        CHECK(count == BNB_API_SLOT_COUNT, "slot count %zu", count);
        for (i = 0; i < count; ++i) {
            void (*fn)(void) = NULL;
            memcpy(&fn, (const unsigned char*)A + BNB_API_HEADER_BYTES + i * slot, slot);
            CHECK(fn != NULL, "slot %zu (byte offset %zu) is NULL", i, BNB_API_HEADER_BYTES + i * slot);
        }
    }

    /* last_error_message before anything failed on this thread: never NULL. */
    CHECK(A->last_error_message() != NULL, "last_error_message() is NULL");

    /* backend_get_info */
    {
        bnb_backend_info info;
        unsigned char big[sizeof(bnb_backend_info) + 32];
        size_t k;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        st = A->backend_get_info(&info);
        CHECK(st == BNB_OK, "backend_get_info: %s: %s", bnbt_status_name(st), msg());
        CHECK(info.abi_major == BNB_ABI_MAJOR && info.abi_minor == A->abi_minor, "info abi %u.%u vs table %u.%u",
              info.abi_major, info.abi_minor, A->abi_major, A->abi_minor);
        CHECK(info.name && info.name[0], "info.name is empty");
        CHECK(info.description && info.description[0], "info.description is empty");
        CHECK(info.version && info.version[0], "info.version is empty");
        CHECK(info.device_kind >= BNB_DEVICE_CPU && info.device_kind <= BNB_DEVICE_ACCELERATOR, "device_kind %d",
              (int)info.device_kind);
        CHECK((info.ops >> BNB_OP_COUNT) == 0, "ops has bits beyond BNB_OP_COUNT: 0x%llx",
              (unsigned long long)info.ops);
        CHECK((info.float_dtypes & ~((1u << BNB_DTYPE_F32) | (1u << BNB_DTYPE_F16) | (1u << BNB_DTYPE_BF16))) == 0,
              "float_dtypes 0x%x has non-float dtypes", info.float_dtypes);
        CHECK((info.quant_types & ~((1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4))) == 0, "quant_types 0x%x",
              info.quant_types);
        CHECK((info.weight_formats & ~7u) == 0, "weight_formats 0x%x", info.weight_formats);
        CHECK((info.memory_kinds & ~7u) == 0, "memory_kinds 0x%x", info.memory_kinds);
        CHECK((info.optimizers >> BNB_OPTIM_COUNT) == 0, "optimizers 0x%x", info.optimizers);
        if (info.name) g_backend = info.name;
        printf("     backend %s %s (ABI %u.%u), probe %d: %s\n", info.name ? info.name : "?",
               info.version ? info.version : "?", info.abi_major, info.abi_minor, (int)b->probe(),
               info.description ? info.description : "?");
        if (stub) {
            CHECK(info.ops == 0, "a stub advertises ops 0x%llx", (unsigned long long)info.ops);
        } else {
            uint64_t all = (1ull << (BNB_OP_PERCENTILE_CLIPPING + 1)) - 1; /* every compute op */
            CHECK((info.ops & all) == all, "ops 0x%llx lacks compute ops 0x%llx (the reference implements all)",
                  (unsigned long long)info.ops, (unsigned long long)(all & ~info.ops));
            CHECK(info.float_dtypes == ((1u << BNB_DTYPE_F32) | (1u << BNB_DTYPE_F16) | (1u << BNB_DTYPE_BF16)),
                  "float_dtypes 0x%x (expected f32|f16|bf16)", info.float_dtypes);
            CHECK(info.quant_types == ((1u << BNB_QUANT_FP4) | (1u << BNB_QUANT_NF4)), "quant_types 0x%x",
                  info.quant_types);
            CHECK(info.weight_formats & (1u << BNB_WEIGHT_STANDARD), "standard weight layout not accepted");
            CHECK(info.optimizers == (1u << BNB_OPTIM_COUNT) - 1, "optimizers 0x%x (expected all %d kinds)",
                  info.optimizers, BNB_OPTIM_COUNT);
        }

        /* A caller from a later minor version passes a bigger struct: nothing beyond what we know is touched. */
        memset(big, 0xA5, sizeof big);
        {
            uint32_t ss = (uint32_t)sizeof big;
            memcpy(big, &ss, sizeof ss);
        }
        st = A->backend_get_info((bnb_backend_info*)(void*)big);
        CHECK(st == BNB_OK, "backend_get_info with struct_size %zu: %s: %s", sizeof big, bnbt_status_name(st), msg());
        for (k = sizeof(bnb_backend_info); k < sizeof big; ++k)
            if (big[k] != 0xA5) break;
        CHECK(k == sizeof big, "backend_get_info wrote byte %zu beyond sizeof(bnb_backend_info)", k);

        /* A smaller struct_size: either filled up to struct_size or rejected; never written past it. */
        memset(big, 0xA5, sizeof big);
        {
            uint32_t ss = (uint32_t)offsetof(bnb_backend_info, name);
            memcpy(big, &ss, sizeof ss);
        }
        st = A->backend_get_info((bnb_backend_info*)(void*)big);
        CHECK(st == BNB_OK || st == BNB_ERR_INVALID_ARGUMENT, "backend_get_info with a short struct_size: %s",
              bnbt_status_name(st));
        for (k = offsetof(bnb_backend_info, name); k < sizeof big; ++k)
            if (big[k] != 0xA5) break;
        CHECK(k == sizeof big, "backend_get_info with struct_size %zu wrote byte %zu",
              offsetof(bnb_backend_info, name), k);
        expect_status("backend_get_info(NULL)", A->backend_get_info(NULL), BNB_ERR_NULL_POINTER, "backend_get_info",
                      NULL);
    }

    /* devices */
    {
        int32_t n = -1, i;
        bnb_device_info d;
        char idx[32];
        st = A->device_count(&n);
        CHECK(st == BNB_OK, "device_count: %s", bnbt_status_name(st));
        if (stub)
            CHECK(n == 0, "a stub reports %d devices", (int)n);
        else
            CHECK(n >= 1, "device_count = %d (a CPU backend has its host)", (int)n);
        expect_status("device_count(NULL)", A->device_count(NULL), BNB_ERR_NULL_POINTER, "device_count", NULL);
        for (i = 0; i < n; ++i) {
            memset(&d, 0, sizeof d);
            d.struct_size = sizeof d;
            st = A->device_get_info(i, &d);
            CHECK(st == BNB_OK, "device_get_info(%d): %s: %s", (int)i, bnbt_status_name(st), msg());
            CHECK(d.index == i, "device %d reports index %d", (int)i, (int)d.index);
            CHECK(d.kind >= BNB_DEVICE_CPU && d.kind <= BNB_DEVICE_ACCELERATOR, "device kind %d", (int)d.kind);
            CHECK(memchr(d.name, 0, sizeof d.name) != NULL && d.name[0], "device name not a NUL-terminated string");
            CHECK(d.compute_units >= 1, "device compute_units = %d", (int)d.compute_units);
            printf("     device %d: %s, %d compute units, %llu bytes\n", (int)i, d.name, (int)d.compute_units,
                   (unsigned long long)d.total_memory);
        }
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        snprintf(idx, sizeof idx, "%d", (int)n);
        expect_status("device_get_info(device_count)", A->device_get_info(n, &d), BNB_ERR_INVALID_ARGUMENT, idx,
                      NULL);
        expect_status("device_get_info(-1)", A->device_get_info(-1, &d), BNB_ERR_INVALID_ARGUMENT, "-1", NULL);
        if (n > 0)
            expect_status("device_get_info(0, NULL)", A->device_get_info(0, NULL), BNB_ERR_NULL_POINTER, NULL, NULL);
    }

    /* contexts */
    {
        bnb_context* ctx = NULL;
        bnb_context* const sentinel = (bnb_context*)(void*)&ctx;
        bnb_context_options o;
        expect_status("context_destroy(NULL)", A->context_destroy(NULL), BNB_OK, NULL, NULL);
        if (stub) {
            ctx = sentinel;
            st = A->context_create(NULL, &ctx);
            CHECK(st == BNB_ERR_NO_DEVICE, "stub context_create: %s, expected NO_DEVICE", bnbt_status_name(st));
            CHECK(ctx == sentinel, "failed context_create wrote *out_context");
            CHECK(strstr(msg(), "gaudi") || strstr(msg(), g_backend), "message \"%s\" does not name the backend",
                  msg());
        } else {
            st = A->context_create(NULL, &ctx);
            CHECK(st == BNB_OK && ctx, "context_create(NULL options): %s: %s", bnbt_status_name(st), msg());
            expect_status("context_destroy", A->context_destroy(ctx), BNB_OK, NULL, NULL);

            memset(&o, 0, sizeof o);
            o.struct_size = sizeof o;
            o.num_threads = 3;
            ctx = NULL;
            st = A->context_create(&o, &ctx);
            CHECK(st == BNB_OK && ctx, "context_create(3 threads): %s: %s", bnbt_status_name(st), msg());
            A->context_destroy(ctx);

            /* Options from an older caller: only struct_size and device fit; the rest must not be read. */
            {
                unsigned char raw[sizeof(bnb_context_options)];
                uint32_t ss = (uint32_t)offsetof(bnb_context_options, num_threads);
                int32_t dev = 0;
                memset(raw, 0xFF, sizeof raw); /* num_threads = -1, policy = -1 if they were read */
                memcpy(raw, &ss, sizeof ss);
                memcpy(raw + offsetof(bnb_context_options, device), &dev, sizeof dev);
                /* ABI 1.0 has no older struct, so a backend may also reject it; it must not read past it. */
                ctx = NULL;
                st = A->context_create((const bnb_context_options*)(const void*)raw, &ctx);
                CHECK(st == BNB_OK || st == BNB_ERR_INVALID_ARGUMENT,
                      "context_create with struct_size %u: %s: %s", (unsigned)ss, bnbt_status_name(st), msg());
                if (st == BNB_OK) CHECK(ctx != NULL, "context_create returned OK without a context");
                if (st != BNB_OK) CHECK(strstr(msg(), "struct_size") != NULL, "message \"%s\" does not name struct_size", msg());
                A->context_destroy(st == BNB_OK ? ctx : NULL);
            }

            memset(&o, 0, sizeof o);
            o.struct_size = sizeof o;
            o.num_threads = -1;
            ctx = sentinel;
            expect_status("context_create(num_threads = -1)", A->context_create(&o, &ctx), BNB_ERR_INVALID_ARGUMENT,
                          "num_threads", "-1");
            CHECK(ctx == sentinel, "failed context_create wrote *out_context");

            memset(&o, 0, sizeof o);
            o.struct_size = sizeof o;
            o.nonfinite_policy = 7;
            expect_status("context_create(nonfinite_policy = 7)", A->context_create(&o, &ctx),
                          BNB_ERR_INVALID_ARGUMENT, "nonfinite_policy", "7");
            o.nonfinite_policy = -1;
            expect_status("context_create(nonfinite_policy = -1)", A->context_create(&o, &ctx),
                          BNB_ERR_INVALID_ARGUMENT, "nonfinite_policy", "-1");

            memset(&o, 0, sizeof o);
            o.struct_size = sizeof o;
            o.device = 99;
            expect_status("context_create(device = 99)", A->context_create(&o, &ctx), BNB_ERR_INVALID_ARGUMENT,
                          "device", "99");
            o.device = -1;
            expect_status("context_create(device = -1)", A->context_create(&o, &ctx), BNB_ERR_INVALID_ARGUMENT,
                          "device", "-1");
            CHECK(ctx == sentinel, "failed context_create wrote *out_context");

            expect_status("context_create(out = NULL)", A->context_create(NULL, NULL), BNB_ERR_NULL_POINTER,
                          "context_create", NULL);
        }
    }

    /* NULL-accepting destroy/free */
    expect_status("buffer_free(NULL)", A->buffer_free(NULL), BNB_OK, NULL, NULL);
    expect_status("stream_destroy(NULL)", A->stream_destroy(NULL), BNB_OK, NULL, NULL);

    /* log callback install/remove */
    {
        int calls = 0;
        expect_status("set_log_callback(sink)", A->set_log_callback(log_sink, &calls), BNB_OK, NULL, NULL);
        expect_status("set_log_callback(NULL)", A->set_log_callback(NULL, NULL), BNB_OK, NULL, NULL);
    }

    /* code tables (data, served by every backend) */
    {
        float t[256];
        int64_t n16 = 16, n256 = 256, n15 = 15;
        bnb_tensor out16 = bnbt_tensor1(t, BNB_DTYPE_F32, n16), out256 = bnbt_tensor1(t, BNB_DTYPE_F32, n256);
        bnb_tensor out15 = bnbt_tensor1(t, BNB_DTYPE_F32, n15);
        expect_status("get_code_table(NF4)", A->get_code_table(BNB_TABLE_NF4, &out16), BNB_OK, NULL, NULL);
        CHECK(t[0] == -1.0f && t[7] == 0.0f && t[15] == 1.0f, "NF4 table ends %g %g %g", (double)t[0], (double)t[7],
              (double)t[15]);
        expect_status("get_code_table(FP4)", A->get_code_table(BNB_TABLE_FP4, &out16), BNB_OK, NULL, NULL);
        expect_status("get_code_table(DYNAMIC_SIGNED)", A->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &out256), BNB_OK,
                      NULL, NULL);
        CHECK(t[127] == 0.0f && t[255] == 1.0f, "signed map [127] = %g, [255] = %g", (double)t[127], (double)t[255]);
        expect_status("get_code_table(DYNAMIC_UNSIGNED)", A->get_code_table(BNB_TABLE_DYNAMIC_UNSIGNED, &out256),
                      BNB_OK, NULL, NULL);
        expect_status("get_code_table(99)", A->get_code_table(99, &out256), BNB_ERR_INVALID_ARGUMENT, "table", "99");
        expect_status("get_code_table(NF4, 15 elements)", A->get_code_table(BNB_TABLE_NF4, &out15),
                      BNB_ERR_BUFFER_TOO_SMALL, "out", NULL);
        expect_status("get_code_table(NULL)", A->get_code_table(BNB_TABLE_NF4, NULL), BNB_ERR_NULL_POINTER, "out",
                      NULL);
    }

    check_error_message_thread_local();
    CHECK(A->last_error_message() != NULL, "last_error_message() is NULL");
}

/* ─── the stub contract: every op slot → NOT_SUPPORTED naming op and backend ─────────────────────────────── */

static void expect_unsupported(const char* op, bnb_status st) {
    expect_status(op, st, BNB_ERR_NOT_SUPPORTED, op, "gaudi");
}

static void check_stub_ops(const bnbt_backend* b) {
    bnb_context* ctx = (bnb_context*)(void*)&ctx; /* never dereferenced by a stub */
    bnb_buffer* buf = (bnb_buffer*)(void*)&buf;
    bnb_stream* stream = NULL;
    unsigned char bytes[64] = {0};
    int64_t n = 16;
    bnb_tensor t = bnbt_tensor1(bytes, BNB_DTYPE_F32, n);
    bnb_absmax am;
    bnb_optimizer_params prm;
    void* ptr = NULL;
    size_t sz = 0;
    float f = 0;
    double d = 0;
    int64_t cnt = 0;

    memset(&am, 0, sizeof am);
    am.struct_size = sizeof am;
    am.values = &t;
    memset(&prm, 0, sizeof prm);
    prm.struct_size = sizeof prm;
    prm.step = 1;

    CHECK(b->probe() == 0, "stub bnb_probe() = %d, expected 0", (int)b->probe());

    expect_unsupported("buffer_alloc", A->buffer_alloc(ctx, BNB_MEMORY_DEVICE, 64, &buf));
    expect_unsupported("buffer_free", A->buffer_free(buf));
    expect_unsupported("buffer_get_pointer", A->buffer_get_pointer(buf, &ptr, &sz));
    expect_unsupported("buffer_map", A->buffer_map(buf, &ptr));
    expect_unsupported("memory_copy", A->memory_copy(ctx, bytes, bytes + 32, 16, BNB_COPY_HOST_TO_HOST));
    expect_unsupported("paged_prefetch", A->paged_prefetch(ctx, buf, 0, 16, BNB_PREFETCH_TO_DEVICE));
    expect_unsupported("stream_create", A->stream_create(ctx, NULL, &stream));
    expect_unsupported("stream_destroy", A->stream_destroy((bnb_stream*)(void*)&stream));
    expect_unsupported("stream_synchronize", A->stream_synchronize((bnb_stream*)(void*)&stream));
    expect_unsupported("context_set_stream", A->context_set_stream(ctx, NULL));
    expect_unsupported("quantize_blockwise", A->quantize_blockwise(ctx, &t, &t, 64, BNB_ROUND_NEAREST, &t, &t));
    expect_unsupported("dequantize_blockwise", A->dequantize_blockwise(ctx, &t, &am, &t, 64, &t));
    expect_unsupported("quantize_absmax_nested",
                       A->quantize_absmax_nested(ctx, &t, &t, 256, BNB_ROUND_NEAREST, NULL, &t, &t, &f));
    expect_unsupported("quantize_4bit", A->quantize_4bit(ctx, &t, BNB_QUANT_NF4, 64, &t, &t));
    expect_unsupported("dequantize_4bit", A->dequantize_4bit(ctx, &t, &am, BNB_QUANT_NF4, 64, &t));
    expect_unsupported("weight_pack_size", A->weight_pack_size(ctx, BNB_WEIGHT_BNB_CPU, 32, 64, 64, &sz));
    expect_unsupported("weight_pack", A->weight_pack(ctx, BNB_WEIGHT_BNB_CPU, &t, 32, 64, 64, &t));
    expect_unsupported("weight_unpack", A->weight_unpack(ctx, BNB_WEIGHT_BNB_CPU, &t, 32, 64, 64, &t));
    expect_unsupported("gemv_4bit", A->gemv_4bit(ctx, &t, &t, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, 64, NULL, &t));
    expect_unsupported("gemm_4bit", A->gemm_4bit(ctx, &t, &t, BNB_WEIGHT_STANDARD, &am, BNB_QUANT_NF4, 64, NULL, &t));
    expect_unsupported("int8_vectorwise_quant", A->int8_vectorwise_quant(ctx, &t, 0.0f, &t, &t, NULL, &cnt));
    expect_unsupported("int8_vectorwise_dequant", A->int8_vectorwise_dequant(ctx, &t, &t, &t));
    expect_unsupported("int8_linear_matmul", A->int8_linear_matmul(ctx, &t, &t, &t));
    expect_unsupported("int8_mm_dequant", A->int8_mm_dequant(ctx, &t, &t, &t, NULL, &t));
    expect_unsupported("int8_double_quant", A->int8_double_quant(ctx, &t, 0.0f, &t, &t, &t, &t, NULL, &cnt));
    expect_unsupported("optimizer_update_32bit", A->optimizer_update_32bit(ctx, &prm, &t, &t, &t, NULL, &f));
    expect_unsupported("optimizer_update_8bit_blockwise",
                       A->optimizer_update_8bit_blockwise(ctx, &prm, &t, &t, &t, NULL, &t, NULL, &t, NULL));
    expect_unsupported("optimizer_unorm", A->optimizer_unorm(ctx, &prm, &t, &t, &t, NULL, &d, &d));
    expect_unsupported("percentile_clipping", A->percentile_clipping(ctx, &t, &t, 1, 95, &f, &f));
    bnb_pager_config pc = {sizeof(bnb_pager_config), 0, 1024, NULL};
    bnb_memory_stats ms;
    memset(&ms, 0, sizeof ms);
    ms.struct_size = sizeof ms;
    expect_unsupported("pager_configure", A->pager_configure(ctx, &pc));
    expect_unsupported("memory_stats", A->memory_stats(ctx, &ms));
    expect_unsupported("buffer_map_access", A->buffer_map_access(buf, BNB_MAP_READ, &ptr));
    expect_unsupported("buffer_unmap", A->buffer_unmap(buf));
    (void)d;
}

int main(int argc, char** argv) {
    int i, stub = 0, tested = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--stub] <backend-library> ...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; ++i) {
        bnbt_backend b;
        if (strcmp(argv[i], "--stub") == 0) {
            stub = 1;
            continue;
        }
        g_backend = argv[i];
        if (!bnbt_load(argv[i], &b)) {
            ++g_failures;
            stub = 0;
            continue;
        }
        A = b.api;
        printf("%s%s\n", argv[i], stub ? " (stub)" : "");
        if (!stub) CHECK(b.probe() > 0, "bnb_probe() = %d on the machine the tests run on", (int)b.probe());
        check_table(&b, stub);
        if (stub) check_stub_ops(&b);
        bnbt_unload(&b);
        ++tested;
        stub = 0;
    }
    printf("%d backends tested\n", tested);
    return bnbt_finish();
}
