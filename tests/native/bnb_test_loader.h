/*
 * bnb_test_loader.h — load a backend library through the public ABI only (dlopen/LoadLibrary + the two exported
 * symbols), exactly as a user of Bnb does. Shared by every native test (C11 and C++17).
 */
#ifndef BNB_TEST_LOADER_H
#define BNB_TEST_LOADER_H

#include <bnb/bnb.h>
#include <stdio.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
typedef HMODULE bnbt_lib;
#else
#include <dlfcn.h>
typedef void* bnbt_lib;
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bnbt_backend {
    bnbt_lib handle;
    bnb_probe_fn probe;
    bnb_get_api_fn get_api;
    const bnb_api* api;
} bnbt_backend;

/* Opens `path`; returns NULL (and writes the OS message into err) on failure. Never crashes on a bad file. */
static inline bnbt_lib bnbt_open(const char* path, char* err, size_t err_size) {
#if defined(_WIN32)
    HMODULE h = LoadLibraryA(path);
    if (!h && err && err_size) snprintf(err, err_size, "LoadLibrary failed (error %lu)", (unsigned long)GetLastError());
    return h;
#else
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && err && err_size) {
        const char* m = dlerror();
        snprintf(err, err_size, "%s", m ? m : "dlopen failed");
    }
    return h;
#endif
}

static inline void bnbt_close(bnbt_lib h) {
    if (!h) return;
#if defined(_WIN32)
    FreeLibrary(h);
#else
    dlclose(h);
#endif
}

/* Looks up a symbol and stores it into the function pointer at `fn_out` (memcpy keeps ISO C/C++ -pedantic quiet). */
static inline int bnbt_symbol(bnbt_lib h, const char* name, void* fn_out, size_t fn_size) {
#if defined(_WIN32)
    FARPROC p = GetProcAddress(h, name);
#else
    void* p = dlsym(h, name);
#endif
    if (!p || sizeof(p) != fn_size) return 0;
    memcpy(fn_out, &p, fn_size);
    return 1;
}

/* Loads a backend and its ABI-1 table. Returns 1 on success; prints the reason and returns 0 otherwise. */
static inline int bnbt_load(const char* path, bnbt_backend* out) {
    char err[512] = {0};
    memset(out, 0, sizeof(*out));
    out->handle = bnbt_open(path, err, sizeof(err));
    if (!out->handle) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        return 0;
    }
    if (!bnbt_symbol(out->handle, "bnb_probe", &out->probe, sizeof(out->probe)) ||
        !bnbt_symbol(out->handle, "bnb_get_api", &out->get_api, sizeof(out->get_api))) {
        fprintf(stderr, "%s does not export bnb_probe and bnb_get_api\n", path);
        bnbt_close(out->handle);
        out->handle = NULL;
        return 0;
    }
    bnb_status st = out->get_api(BNB_ABI_MAJOR, &out->api);
    if (st != BNB_OK || !out->api) {
        fprintf(stderr, "%s: bnb_get_api(%d) failed with status %d\n", path, BNB_ABI_MAJOR, (int)st);
        bnbt_close(out->handle);
        out->handle = NULL;
        return 0;
    }
    return 1;
}

static inline void bnbt_unload(bnbt_backend* b) {
    bnbt_close(b->handle);
    memset(b, 0, sizeof(*b));
}

/* A contiguous tensor view (strides all zero). */
static inline bnb_tensor bnbt_tensor(void* data, int32_t dtype, int32_t ndim, const int64_t* shape) {
    bnb_tensor t;
    int i;
    memset(&t, 0, sizeof(t));
    t.data = data;
    t.dtype = dtype;
    t.ndim = ndim;
    for (i = 0; i < ndim && i < BNB_MAX_DIMS; ++i) t.shape[i] = shape[i];
    return t;
}
static inline bnb_tensor bnbt_tensor1(void* data, int32_t dtype, int64_t n) { return bnbt_tensor(data, dtype, 1, &n); }
static inline bnb_tensor bnbt_tensor2(void* data, int32_t dtype, int64_t rows, int64_t cols) {
    int64_t s[2];
    s[0] = rows;
    s[1] = cols;
    return bnbt_tensor(data, dtype, 2, s);
}

static inline const char* bnbt_status_name(bnb_status s) {
    switch (s) {
    case BNB_OK: return "OK";
    case BNB_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case BNB_ERR_NULL_POINTER: return "NULL_POINTER";
    case BNB_ERR_BUFFER_TOO_SMALL: return "BUFFER_TOO_SMALL";
    case BNB_ERR_SHAPE_MISMATCH: return "SHAPE_MISMATCH";
    case BNB_ERR_UNSUPPORTED_DTYPE: return "UNSUPPORTED_DTYPE";
    case BNB_ERR_INVALID_BLOCKSIZE: return "INVALID_BLOCKSIZE";
    case BNB_ERR_NON_FINITE: return "NON_FINITE";
    case BNB_ERR_NOT_SUPPORTED: return "NOT_SUPPORTED";
    case BNB_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case BNB_ERR_ABI_MISMATCH: return "ABI_MISMATCH";
    case BNB_ERR_NO_DEVICE: return "NO_DEVICE";
    case BNB_ERR_DEVICE: return "DEVICE";
    case BNB_ERR_INTERNAL: return "INTERNAL";
    case BNB_ERR_IO: return "IO";
    default: return "?";
    }
}

#ifdef __cplusplus
}
#endif

#endif /* BNB_TEST_LOADER_H */
