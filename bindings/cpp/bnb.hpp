// bnb.hpp — a small C++17 RAII layer over the Bnb C ABI (native/include/bnb/bnb.h).
//
//   bnb::backend lib("libbnb_cpu_ref.so");          // dlopen + bnb_probe + bnb_get_api(BNB_ABI_MAJOR)
//   bnb::context ctx(lib);                          // context_create / context_destroy
//   lib.check(lib.api().quantize_4bit(ctx, &A, BNB_QUANT_NF4, 64, &P, &M), "quantize_4bit");
//
// Every non-OK status becomes a bnb::error carrying the status and the backend's message (read on the calling
// thread right after the failing call). Header-only; needs only the C header and the platform loader.
#ifndef BNB_BNB_HPP
#define BNB_BNB_HPP

#include <bnb/bnb.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace bnb {

// A failed Bnb call: status code plus the backend's message ("bnb_cpu_ref: quantize_4bit: blocksize = …").
class error : public std::runtime_error {
public:
    error(bnb_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    bnb_status status() const noexcept { return status_; }

private:
    bnb_status status_;
};

// One loaded backend library. Movable, not copyable; unloads the library when destroyed.
class backend {
public:
    explicit backend(const std::string& path) {
#if defined(_WIN32)
        handle_ = static_cast<void*>(LoadLibraryA(path.c_str()));
        if (!handle_) throw error(BNB_ERR_NOT_SUPPORTED, path + ": cannot be loaded (LoadLibrary failed)");
#else
        handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) {
            const char* why = dlerror();
            throw error(BNB_ERR_NOT_SUPPORTED, path + ": cannot be loaded: " + (why ? why : "unknown error"));
        }
#endif
        auto probe = reinterpret_cast<bnb_probe_fn>(symbol("bnb_probe"));
        auto get_api = reinterpret_cast<bnb_get_api_fn>(symbol("bnb_get_api"));
        if (!probe || !get_api) {
            close();
            throw error(BNB_ERR_NOT_SUPPORTED, path + ": not a Bnb backend (bnb_probe/bnb_get_api missing)");
        }
        score_ = probe();
        const bnb_status status = get_api(BNB_ABI_MAJOR, &api_);
        if (status != BNB_OK) {
            close();
            throw error(status, path + ": bnb_get_api(" + std::to_string(BNB_ABI_MAJOR) +
                                    ") failed with status " + std::to_string(status));
        }
    }

    backend(backend&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), api_(std::exchange(other.api_, nullptr)),
          score_(other.score_) {}
    backend& operator=(backend&& other) noexcept {
        if (this != &other) {
            close();
            handle_ = std::exchange(other.handle_, nullptr);
            api_ = std::exchange(other.api_, nullptr);
            score_ = other.score_;
        }
        return *this;
    }
    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;
    ~backend() { close(); }

    const bnb_api& api() const noexcept { return *api_; }
    // bnb_probe()'s answer: 0 = cannot run on this machine.
    int32_t probe_score() const noexcept { return score_; }

    bnb_backend_info info() const {
        bnb_backend_info out{};
        out.struct_size = sizeof out;
        check(api_->backend_get_info(&out), "backend_get_info");
        return out;
    }

    // Throws bnb::error for any status but BNB_OK; `what` prefixes the message only when the backend gave none.
    void check(bnb_status status, const char* what) const {
        if (status == BNB_OK) return;
        const char* message = api_->last_error_message();
        throw error(status, (message && *message) ? std::string(message) : std::string(what) + " failed");
    }

private:
    void* symbol(const char* name) const {
#if defined(_WIN32)
        return reinterpret_cast<void*>(GetProcAddress(static_cast<HMODULE>(handle_), name));
#else
        return dlsym(handle_, name);
#endif
    }
    void close() noexcept {
        if (!handle_) return;
#if defined(_WIN32)
        FreeLibrary(static_cast<HMODULE>(handle_));
#else
        dlclose(handle_);
#endif
        handle_ = nullptr;
        api_ = nullptr;
    }

    void* handle_ = nullptr;
    const bnb_api* api_ = nullptr;
    int32_t score_ = 0;
};

// A bnb_context owned by this object; converts to bnb_context* for calls through backend::api().
class context {
public:
    explicit context(const backend& lib, int32_t num_threads = 0,
                     int32_t nonfinite_policy = BNB_NONFINITE_ERROR, int32_t device = 0)
        : lib_(&lib) {
        bnb_context_options options{};
        options.struct_size = sizeof options;
        options.device = device;
        options.num_threads = num_threads;
        options.nonfinite_policy = nonfinite_policy;
        lib.check(lib.api().context_create(&options, &ctx_), "context_create");
    }
    context(context&& other) noexcept : lib_(other.lib_), ctx_(std::exchange(other.ctx_, nullptr)) {}
    context& operator=(context&& other) noexcept {
        if (this != &other) {
            reset();
            lib_ = other.lib_;
            ctx_ = std::exchange(other.ctx_, nullptr);
        }
        return *this;
    }
    context(const context&) = delete;
    context& operator=(const context&) = delete;
    ~context() { reset(); }

    operator bnb_context*() const noexcept { return ctx_; }

private:
    void reset() noexcept {
        if (ctx_) lib_->api().context_destroy(ctx_);
        ctx_ = nullptr;
    }

    const backend* lib_;
    bnb_context* ctx_ = nullptr;
};

// A 1-D contiguous tensor view over caller memory.
inline bnb_tensor tensor_1d(void* data, int32_t dtype, int64_t count) {
    bnb_tensor t{};
    t.data = data;
    t.dtype = dtype;
    t.ndim = 1;
    t.shape[0] = count;
    return t;
}

// A 2-D row-major matrix view; row_stride in elements (0 = rows are packed).
inline bnb_tensor tensor_2d(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride = 0) {
    bnb_tensor t{};
    t.data = data;
    t.dtype = dtype;
    t.ndim = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    if (row_stride != 0) {
        t.stride[0] = row_stride;
        t.stride[1] = 1;
    }
    return t;
}

}  // namespace bnb

#endif  // BNB_BNB_HPP
