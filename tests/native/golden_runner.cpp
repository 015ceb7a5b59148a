// golden_runner — runs one case of tests/golden/manifest.json through a backend loaded via the public C ABI.
//
//   golden_runner <backend-library> <golden-dir> <case-id>
//
// The backend is dlopen'ed and reached only through bnb_probe / bnb_get_api, so this tests what users get.
// Cases are dispatched on their id prefix and function (never on a file name), so held-back cases of the same
// kinds run the same way. What is compared, and how exactly, follows spec §9.4 (see README.md in this folder).
// Exit status: 0 = every check passed, 1 = a check failed or the case could not be run, 2 = usage error.
#include "bnb_test_loader.h"
#include "json_min.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using jsonmin::Value;

// ─── failure accounting ──────────────────────────────────────────────────────────────────────────────────────

int g_checks = 0;
int g_failures = 0;
std::string g_prefix;  // e.g. "[threads=4] "

void fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stdout, "FAIL %s", g_prefix.c_str());
    std::vfprintf(stdout, fmt, ap);
    std::fprintf(stdout, "\n");
    va_end(ap);
    ++g_failures;
}
void note(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stdout, "     %s", g_prefix.c_str());
    std::vfprintf(stdout, fmt, ap);
    std::fprintf(stdout, "\n");
    va_end(ap);
}
bool check(bool ok, const char* fmt, ...) {
    ++g_checks;
    if (ok) return true;
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stdout, "FAIL %s", g_prefix.c_str());
    std::vfprintf(stdout, fmt, ap);
    std::fprintf(stdout, "\n");
    va_end(ap);
    ++g_failures;
    return false;
}

// Thrown when the case cannot be run at all (bad manifest entry, missing file, an op that fails).
struct CaseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ─── numbers (independent of the backend's own conversions) ───────────────────────────────────────────────────

uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float bits_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
float bf16_to_f32(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }
uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        float v = std::ldexp(static_cast<float>(man), -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}
uint16_t f32_to_f16(float f) {  // RNE, overflow → ±inf, NaN → quiet NaN
    const uint32_t u = f32_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);
    if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520 → inf
    if (a < 0x38800000u) {                                                // below the smallest normal half
        // value = a * 2^-24 units; round to nearest even integer number of 2^-24 steps
        const float v = bits_f32(a);
        const double units = static_cast<double>(v) * 16777216.0;  // exact in double
        double r = std::nearbyint(units);                           // default rounding mode = RNE
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
    }
    uint32_t e = (a >> 23) - 112u;
    uint32_t m = a & 0x7FFFFFu;
    uint32_t h = (e << 10) | (m >> 13);
    const uint32_t rest = m & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
}

// ─── dtypes ─────────────────────────────────────────────────────────────────────────────────────────────────

int32_t dtype_from_manifest(const std::string& s) {
    if (s == "float32") return BNB_DTYPE_F32;
    if (s == "float16") return BNB_DTYPE_F16;
    if (s == "bfloat16") return BNB_DTYPE_BF16;
    if (s == "uint8") return BNB_DTYPE_U8;
    if (s == "int8") return BNB_DTYPE_I8;
    if (s == "int32") return BNB_DTYPE_I32;
    if (s == "int64") return BNB_DTYPE_I64;
    if (s == "float64") return BNB_DTYPE_F64;
    throw CaseError("unknown manifest dtype '" + s + "'");
}
size_t dtype_size(int32_t d) {
    switch (d) {
    case BNB_DTYPE_F32: return 4;
    case BNB_DTYPE_F16: return 2;
    case BNB_DTYPE_BF16: return 2;
    case BNB_DTYPE_U8: return 1;
    case BNB_DTYPE_I8: return 1;
    case BNB_DTYPE_I32: return 4;
    case BNB_DTYPE_I64: return 8;
    case BNB_DTYPE_F64: return 8;
    default: return 0;
    }
}
const char* dtype_name(int32_t d) {
    static const char* names[] = {"f32", "f16", "bf16", "u8", "i8", "i32", "i64", "f64"};
    return (d >= 0 && d < BNB_DTYPE_COUNT) ? names[d] : "?";
}
bool is_float_dtype(int32_t d) { return d == BNB_DTYPE_F32 || d == BNB_DTYPE_F16 || d == BNB_DTYPE_BF16; }

// ─── buffers ────────────────────────────────────────────────────────────────────────────────────────────────

// A typed, contiguous host array (a golden file or an output the test allocates).
struct Array {
    std::string name;
    std::string file;
    int32_t dtype = BNB_DTYPE_U8;
    std::vector<int64_t> shape;
    std::vector<unsigned char> bytes;

    Array() = default;
    Array(int32_t dt, std::vector<int64_t> shp) : dtype(dt), shape(std::move(shp)) {
        bytes.assign(static_cast<size_t>(numel()) * dtype_size(dtype), 0);
    }
    int64_t numel() const {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        return n;
    }
    void* data() { return bytes.empty() ? nullptr : bytes.data(); }
    const void* data() const { return bytes.empty() ? nullptr : bytes.data(); }
    template <class T> T* as() { return reinterpret_cast<T*>(data()); }
    template <class T> const T* as() const { return reinterpret_cast<const T*>(data()); }
    // A tensor view with the given shape (default: this array's shape, flattened to at most 4 dims).
    bnb_tensor tensor(std::vector<int64_t> shp = {}) {
        if (shp.empty()) shp = shape.empty() ? std::vector<int64_t>{1} : shape;
        if (shp.size() > BNB_MAX_DIMS) throw CaseError("tensor with more than 4 dims");
        return bnbt_tensor(data(), dtype, static_cast<int32_t>(shp.size()), shp.data());
    }
    bnb_tensor flat() { return bnbt_tensor1(data(), dtype, numel()); }
    // Element i as double (float dtypes by their exact value, integers exactly).
    double get(int64_t i) const {
        switch (dtype) {
        case BNB_DTYPE_F32: return as<float>()[i];
        case BNB_DTYPE_F16: return f16_to_f32(as<uint16_t>()[i]);
        case BNB_DTYPE_BF16: return bf16_to_f32(as<uint16_t>()[i]);
        case BNB_DTYPE_U8: return as<uint8_t>()[i];
        case BNB_DTYPE_I8: return as<int8_t>()[i];
        case BNB_DTYPE_I32: return as<int32_t>()[i];
        case BNB_DTYPE_I64: return static_cast<double>(as<int64_t>()[i]);
        case BNB_DTYPE_F64: return as<double>()[i];
        default: return 0;
        }
    }
    // Raw element bits (for floats: the IEEE pattern).
    uint64_t raw(int64_t i) const {
        uint64_t v = 0;
        std::memcpy(&v, bytes.data() + static_cast<size_t>(i) * dtype_size(dtype), dtype_size(dtype));
        return v;
    }
    // A copy of rows [first, first+count) of the leading dimension.
    Array slice0(int64_t first, int64_t count) const {
        std::vector<int64_t> shp = shape;
        if (shp.empty()) throw CaseError("slice of a scalar");
        const int64_t inner = numel() / shp[0];
        shp[0] = count;
        Array a(dtype, shp);
        a.name = name;
        const size_t es = dtype_size(dtype);
        std::memcpy(a.data(), bytes.data() + static_cast<size_t>(first * inner) * es,
                    static_cast<size_t>(count * inner) * es);
        return a;
    }
    // The slice without its leading dimension (row `first` of [steps, ...]).
    Array step(int64_t i) const {
        Array a = slice0(i, 1);
        a.shape.erase(a.shape.begin());
        return a;
    }
};

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw CaseError("cannot open " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// ─── the manifest ───────────────────────────────────────────────────────────────────────────────────────────

struct Golden {
    std::string dir;
    Value manifest;
    const Value* cases = nullptr;

    Array load(const Value& entry) const {
        Array a;
        a.name = entry.at("name").as_string();
        a.file = entry.at("file").as_string();
        a.dtype = dtype_from_manifest(entry.at("dtype").as_string());
        for (const Value& s : entry.at("shape").arr) a.shape.push_back(s.as_int());
        std::string bytes = read_text(dir + "/" + a.file);
        const size_t want = static_cast<size_t>(a.numel()) * dtype_size(a.dtype);
        if (bytes.size() != want)
            throw CaseError(a.file + ": " + std::to_string(bytes.size()) + " bytes, manifest shape needs " +
                            std::to_string(want));
        a.bytes.assign(bytes.begin(), bytes.end());
        return a;
    }
    Array load_file(const std::string& file, int32_t dtype, int64_t n) const {
        Array a(dtype, {n});
        a.name = file;
        a.file = file;
        std::string bytes = read_text(dir + "/" + file);
        if (bytes.size() != a.bytes.size())
            throw CaseError(file + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                            std::to_string(a.bytes.size()));
        a.bytes.assign(bytes.begin(), bytes.end());
        return a;
    }
    const Value* find_case(const std::string& id) const {
        for (const Value& c : cases->arr)
            if (c.at("id").as_string() == id) return &c;
        return nullptr;
    }
};

struct Case {
    const Golden* golden = nullptr;
    const Value* json = nullptr;
    std::string id;
    std::string function;
    const Value* args = nullptr;
    std::vector<Array> inputs;
    std::vector<Array> outputs;

    bool has_arg(const char* k) const { return args && args->find(k) && !args->find(k)->is_null(); }
    const Value& arg(const char* k) const {
        if (!has_arg(k)) throw CaseError(std::string("case has no args.") + k);
        return *args->find(k);
    }
    int64_t arg_int(const char* k) const { return arg(k).as_int(); }
    int64_t arg_int(const char* k, int64_t dflt) const { return has_arg(k) ? arg(k).as_int() : dflt; }
    double arg_double(const char* k, double dflt) const { return has_arg(k) ? arg(k).as_double() : dflt; }
    float arg_float(const char* k, float dflt) const { return has_arg(k) ? arg(k).as_float() : dflt; }

    // Finds an input/output by name: exact, then "<key> …" (name followed by a space), then substring.
    static Array* find_in(std::vector<Array>& list, const std::string& key, int32_t dtype = -1) {
        auto dt_ok = [&](const Array& a) { return dtype < 0 || a.dtype == dtype; };
        for (Array& a : list)
            if (a.name == key && dt_ok(a)) return &a;
        for (Array& a : list)
            if (a.name.compare(0, key.size() + 1, key + " ") == 0 && dt_ok(a)) return &a;
        for (Array& a : list)
            if (a.name.find(key) != std::string::npos && dt_ok(a)) return &a;
        return nullptr;
    }
    static std::string names(const std::vector<Array>& list) {
        std::string s;
        for (const Array& a : list) s += (s.empty() ? "'" : ", '") + a.name + "' (" + dtype_name(a.dtype) + ")";
        return s;
    }
    Array* in_opt(const std::string& key, int32_t dtype = -1) { return find_in(inputs, key, dtype); }
    Array* out_opt(const std::string& key, int32_t dtype = -1) { return find_in(outputs, key, dtype); }
    Array& in(const std::string& key, int32_t dtype = -1) {
        Array* a = in_opt(key, dtype);
        if (!a) throw CaseError("case has no input '" + key + "'; inputs: " + names(inputs));
        return *a;
    }
    Array& out(const std::string& key, int32_t dtype = -1) {
        Array* a = out_opt(key, dtype);
        if (!a) throw CaseError("case has no output '" + key + "'; outputs: " + names(outputs));
        return *a;
    }
    // First input/output matching a predicate.
    Array* first_if(std::vector<Array>& list, const std::function<bool(const Array&)>& pred) {
        for (Array& a : list)
            if (pred(a)) return &a;
        return nullptr;
    }
};

// A canonical table (tables/* case output named `name`, not a platform model), loaded from the manifest.
Array canonical_table(const Golden& g, const std::string& name) {
    for (const Value& c : g.cases->arr) {
        if (c.at("id").as_string().compare(0, 7, "tables/") != 0) continue;
        const Value* a = c.find("args");
        if (a && a->find("differs_from_canonical_entries")) continue;  // a platform model, not the canonical table
        for (const Value& o : c.at("outputs").arr)
            if (o.at("name").as_string() == name) return g.load(o);
    }
    throw CaseError("manifest has no canonical table '" + name + "'");
}

// ─── comparisons ────────────────────────────────────────────────────────────────────────────────────────────

bool is_nan_bits(int32_t dt, uint64_t v) {
    switch (dt) {
    case BNB_DTYPE_F32: return (v & 0x7FFFFFFFu) > 0x7F800000u;
    case BNB_DTYPE_F16: return (v & 0x7FFFu) > 0x7C00u;
    case BNB_DTYPE_BF16: return (v & 0x7FFFu) > 0x7F80u;
    case BNB_DTYPE_F64: return (v & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull;
    default: return false;
    }
}
bool is_zero_bits(int32_t dt, uint64_t v) {
    switch (dt) {
    case BNB_DTYPE_F32: return (v & 0x7FFFFFFFu) == 0;
    case BNB_DTYPE_F16:
    case BNB_DTYPE_BF16: return (v & 0x7FFFu) == 0;
    case BNB_DTYPE_F64: return (v & 0x7FFFFFFFFFFFFFFFull) == 0;
    default: return v == 0;
    }
}
// Bit equality; for floats +0 == -0 and NaN == NaN (spec §9.4).
bool same_bits(int32_t dt, uint64_t a, uint64_t b) {
    if (a == b) return true;
    if (dt == BNB_DTYPE_F32 || dt == BNB_DTYPE_F16 || dt == BNB_DTYPE_BF16 || dt == BNB_DTYPE_F64) {
        if (is_zero_bits(dt, a) && is_zero_bits(dt, b)) return true;
        if (is_nan_bits(dt, a) && is_nan_bits(dt, b)) return true;
    }
    return false;
}

std::string show(const Array& a, int64_t i) {
    char buf[96];
    const uint64_t r = a.raw(i);
    switch (a.dtype) {
    case BNB_DTYPE_F32: std::snprintf(buf, sizeof buf, "%.9g (0x%08" PRIx64 ")", a.get(i), r); break;
    case BNB_DTYPE_F16:
    case BNB_DTYPE_BF16: std::snprintf(buf, sizeof buf, "%.6g (0x%04" PRIx64 ")", a.get(i), r); break;
    case BNB_DTYPE_F64: std::snprintf(buf, sizeof buf, "%.17g", a.get(i)); break;
    case BNB_DTYPE_U8: std::snprintf(buf, sizeof buf, "%u (0x%02x)", static_cast<unsigned>(r), static_cast<unsigned>(r)); break;
    default: std::snprintf(buf, sizeof buf, "%.17g", a.get(i)); break;
    }
    return buf;
}

// Number of elements of got that are not bit-identical (floats: +0 == -0, NaN == NaN) to want.
int64_t count_diff(const Array& got, const Array& want, int64_t n) {
    int64_t d = 0;
    for (int64_t i = 0; i < n; ++i)
        if (!same_bits(want.dtype, got.raw(i), want.raw(i))) ++d;
    return d;
}

// Bit-exact comparison of the first n elements; prints the first mismatches.
bool expect_exact(const char* what, const Array& got, const Array& want, int64_t n = -1) {
    ++g_checks;
    if (n < 0) n = want.numel();
    if (got.dtype != want.dtype) {
        fail("%s: dtype %s, expected %s", what, dtype_name(got.dtype), dtype_name(want.dtype));
        return false;
    }
    if (got.numel() < n || want.numel() < n) {
        fail("%s: %lld / %lld elements, need %lld", what, static_cast<long long>(got.numel()),
             static_cast<long long>(want.numel()), static_cast<long long>(n));
        return false;
    }
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (same_bits(want.dtype, got.raw(i), want.raw(i))) continue;
        if (bad < 8)
            std::fprintf(stdout, "       %s[%lld]: got %s, expected %s\n", what, static_cast<long long>(i),
                         show(got, i).c_str(), show(want, i).c_str());
        ++bad;
    }
    if (bad) {
        fail("%s: %lld of %lld elements differ (bit-exact comparison, +0 == -0, NaN == NaN)", what,
             static_cast<long long>(bad), static_cast<long long>(n));
        return false;
    }
    return true;
}

// |got - want| <= atol + rtol * |want| for every element (NaN == NaN).
bool expect_close(const char* what, const Array& got, const Array& want, double atol, double rtol, int64_t n = -1) {
    ++g_checks;
    if (n < 0) n = want.numel();
    if (got.numel() < n || want.numel() < n) {
        fail("%s: %lld / %lld elements, need %lld", what, static_cast<long long>(got.numel()),
             static_cast<long long>(want.numel()), static_cast<long long>(n));
        return false;
    }
    int64_t bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double g = got.get(i), w = want.get(i);
        if (std::isnan(g) && std::isnan(w)) continue;
        if (g == w) continue;  // also equal infinities
        const double d = std::fabs(g - w);
        const double lim = atol + rtol * std::fabs(w);
        if (d <= lim) continue;  // NaN differences fall through (comparison false)
        worst = std::max(worst, d);
        if (bad < 8)
            std::fprintf(stdout, "       %s[%lld]: got %.9g, expected %.9g (|diff| %.3g > %.3g)\n", what,
                         static_cast<long long>(i), g, w, d, lim);
        ++bad;
    }
    if (bad) {
        fail("%s: %lld of %lld elements outside atol %.3g + rtol %.3g (worst |diff| %.3g)", what,
             static_cast<long long>(bad), static_cast<long long>(n), atol, rtol, worst);
        return false;
    }
    return true;
}

// ─── the backend ────────────────────────────────────────────────────────────────────────────────────────────

bnbt_backend g_backend;
const bnb_api* api() { return g_backend.api; }

// Runs an op; a non-OK status makes the case fail with the backend's message.
void call(const char* what, bnb_status st) {
    if (st == BNB_OK) return;
    const char* msg = api()->last_error_message();
    throw CaseError(std::string(what) + " returned " + bnbt_status_name(st) + " (" + std::to_string(st) +
                    "): " + (msg ? msg : "(null message)"));
}

struct Context {
    bnb_context* ctx = nullptr;
    Context(int32_t threads, int32_t policy) {
        bnb_context_options o;
        std::memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        o.device = 0;
        o.num_threads = threads;
        o.nonfinite_policy = policy;
        call("context_create", api()->context_create(&o, &ctx));
    }
    ~Context() { api()->context_destroy(ctx); }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
};

struct RunConfig {
    int32_t threads = 1;
};

bool has_nonfinite(const Array& a) {
    if (!is_float_dtype(a.dtype) && a.dtype != BNB_DTYPE_F64) return false;
    for (int64_t i = 0; i < a.numel(); ++i)
        if (!std::isfinite(a.get(i))) return true;
    return false;
}
// NaN/Inf in an input → the case documents bitsandbytes' encoding of them: run under PROPAGATE; else the default.
int32_t policy_for(const std::vector<const Array*>& ins) {
    for (const Array* a : ins)
        if (a && has_nonfinite(*a)) return BNB_NONFINITE_PROPAGATE;
    return BNB_NONFINITE_ERROR;
}

bnb_absmax plain_absmax(bnb_tensor* values) {
    bnb_absmax m;
    std::memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.nested = 0;
    m.values = values;
    return m;
}

int32_t quant_type_of(const Case& c) {
    auto from = [](const std::string& s) -> int32_t {
        if (s.find("nf4") != std::string::npos) return BNB_QUANT_NF4;
        if (s.find("fp4") != std::string::npos) return BNB_QUANT_FP4;
        return 0;
    };
    if (c.has_arg("quant_type")) {
        int32_t q = from(c.arg("quant_type").as_string());
        if (q) return q;
    }
    if (int32_t q = from(c.function)) return q;
    if (int32_t q = from(c.id)) return q;
    throw CaseError("cannot tell the 4-bit quant type (no args.quant_type, no nf4/fp4 in function or id)");
}

Array code_table_from_arg(const Case& c, const char* key, const char* fallback_table) {
    if (c.has_arg(key)) return c.golden->load_file(c.arg(key).as_string(), BNB_DTYPE_F32, 256);
    return canonical_table(*c.golden, fallback_table);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ─── tables/* ───────────────────────────────────────────────────────────────────────────────────────────────

int32_t table_id(const std::string& name) {
    if (name == "signed") return BNB_TABLE_DYNAMIC_SIGNED;
    if (name == "unsigned") return BNB_TABLE_DYNAMIC_UNSIGNED;
    if (name == "nf4") return BNB_TABLE_NF4;
    if (name == "fp4") return BNB_TABLE_FP4;
    throw CaseError("unknown table output '" + name + "'");
}

void run_tables(Case& c, const RunConfig&) {
    const Value* differs = c.has_arg("differs_from_canonical_entries") ? &c.arg("differs_from_canonical_entries")
                                                                        : nullptr;
    for (Array& want : c.outputs) {
        Array ours(BNB_DTYPE_F32, {want.numel()});
        bnb_tensor t = ours.flat();
        call("get_code_table", api()->get_code_table(table_id(want.name), &t));
        const std::string what = "table " + want.name;
        if (!differs) {
            expect_exact(what.c_str(), ours, want);
            continue;
        }
        // A platform model of the table: ours must be the canonical table, and the model must differ from it in
        // exactly the documented number of entries.
        Array canon = canonical_table(*c.golden, want.name);
        expect_exact((what + " vs canonical").c_str(), ours, canon);
        const int64_t expected = differs->at(want.name).as_int();
        int64_t d = 0, max_ulps = 0;
        for (int64_t i = 0; i < want.numel(); ++i) {
            if (same_bits(BNB_DTYPE_F32, ours.raw(i), want.raw(i))) continue;
            ++d;
            max_ulps = std::max<int64_t>(max_ulps, std::llabs(static_cast<long long>(static_cast<int32_t>(ours.raw(i))) -
                                                               static_cast<long long>(static_cast<int32_t>(want.raw(i)))));
        }
        note("%s: the model differs from our table in %lld entries, by at most %lld ulp", what.c_str(),
             static_cast<long long>(d), static_cast<long long>(max_ulps));
        check(d == expected, "%s: our table differs from the model in %lld entries, args say %lld", what.c_str(),
              static_cast<long long>(d), static_cast<long long>(expected));
    }
}

// ─── q8/* ───────────────────────────────────────────────────────────────────────────────────────────────────

// 8-bit blockwise dequantization of the golden codes + plain absmax into a fresh array shaped like `like`.
Array dequant8(bnb_context* ctx, Array& codes, Array& absmax, Array& code, int64_t bs, const Array& like) {
    Array out(like.dtype, like.shape);
    bnb_tensor tc = codes.flat(), ta = absmax.flat(), tq = code.flat(), to = out.flat();
    bnb_absmax am = plain_absmax(&ta);
    call("dequantize_blockwise", api()->dequantize_blockwise(ctx, &tc, &am, &tq, bs, &to));
    return out;
}

void run_q8_quantize(Case& c, const RunConfig& rc) {
    Array& A = *c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    const int64_t n = A.numel();
    const int64_t bs = c.arg_int("blocksize");
    Array code = code_table_from_arg(c, "code", "signed");
    // The python default backend is exact-nearest (spec §2.5.2); everything else was produced by the CPU library.
    const int32_t rounding =
        c.function.find("default") != std::string::npos ? BNB_ROUND_NEAREST : BNB_ROUND_BNB_CPU_LUT;
    const int32_t policy = policy_for({&A});
    if (policy == BNB_NONFINITE_PROPAGATE) note("input has NaN/Inf: context nonfinite_policy = PROPAGATE");
    Context ctx(rc.threads, policy);

    Array& want_codes = c.out("out", BNB_DTYPE_U8);
    Array& want_absmax = c.out("absmax", BNB_DTYPE_F32);
    Array codes(BNB_DTYPE_U8, {n});
    Array absmax(BNB_DTYPE_F32, {ceil_div(n, bs)});
    bnb_tensor ta = A.flat(), tq = code.flat(), tc = codes.flat(), tm = absmax.flat();
    call("quantize_blockwise", api()->quantize_blockwise(ctx.ctx, &ta, &tq, bs, rounding, &tc, &tm));
    expect_exact("codes", codes, want_codes);
    expect_exact("absmax", absmax, want_absmax);

    if (Array* want_deq = c.out_opt("dequant")) {  // second stage, fed the golden first stage
        Array deq = dequant8(ctx.ctx, want_codes, want_absmax, code, bs, *want_deq);
        expect_exact("dequant", deq, *want_deq);
    }
}

void run_q8_dequantize(Case& c, const RunConfig& rc) {
    Array& codes = c.in("A", BNB_DTYPE_U8);
    Array& absmax = c.in("absmax", BNB_DTYPE_F32);
    Array& want = c.out("out");
    Array code = code_table_from_arg(c, "code", "signed");
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    Array got = dequant8(ctx.ctx, codes, absmax, code, c.arg_int("blocksize"), want);
    expect_exact("dequant", got, want);
}

// ─── nested statistics (q8/nested, q4/nested) ───────────────────────────────────────────────────────────────

// Double quantization of a first-stage absmax (spec §2.5.5 / §2.7), checked against the golden stages:
// codes and nested absmax bit-exact with the stored offset, the computed offset within 2 ulp, the reconstructed
// absmax and (by the caller) the final dequant bit-exact.
struct NestedGolden {
    Array* codes;          // u8 [blocks]
    Array* nested_absmax;  // f32 [ceil(blocks / nbs)]
    float offset;
    int64_t nbs;
    Array code;  // the 256-entry map for the statistics
};

NestedGolden check_nested(Case& c, bnb_context* ctx, Array& absmax1) {
    NestedGolden g;
    g.codes = c.first_if(c.outputs, [](const Array& a) {
        return a.dtype == BNB_DTYPE_U8 && a.name.find("absmax") != std::string::npos;
    });
    g.nested_absmax = c.first_if(c.outputs, [](const Array& a) {
        return a.dtype == BNB_DTYPE_F32 &&
               (a.name.find("state2.absmax") != std::string::npos || a.name.find("nested_absmax") != std::string::npos);
    });
    Array* off = c.first_if(c.outputs, [](const Array& a) {
        return a.dtype == BNB_DTYPE_F32 && a.name.find("offset") != std::string::npos &&
               a.name.find("absmax") == std::string::npos && a.numel() == 1;
    });
    if (!g.codes || !g.nested_absmax || !off)
        throw CaseError("nested case lacks uint8 absmax codes, nested absmax or offset outputs: " +
                        Case::names(c.outputs));
    g.offset = off->as<float>()[0];
    g.nbs = c.arg_int("nested_blocksize");
    g.code = code_table_from_arg(c, "nested_code", "signed");

    const int64_t blocks = absmax1.numel();
    Array codes(BNB_DTYPE_U8, {blocks});
    Array nabs(BNB_DTYPE_F32, {ceil_div(blocks, g.nbs)});
    float out_offset = -12345.0f;
    bnb_tensor ta = absmax1.flat(), tq = g.code.flat(), tc = codes.flat(), tn = nabs.flat();
    call("quantize_absmax_nested(offset_in = golden)",
         api()->quantize_absmax_nested(ctx, &ta, &tq, g.nbs, BNB_ROUND_BNB_CPU_LUT, &g.offset, &tc, &tn, &out_offset));
    expect_exact("nested codes", codes, *g.codes);
    expect_exact("nested absmax", nabs, *g.nested_absmax);
    check(f32_bits(out_offset) == f32_bits(g.offset), "out_offset with offset_in: got %.9g, expected %.9g",
          static_cast<double>(out_offset), static_cast<double>(g.offset));

    // The offset computed by the backend (mean of absmax): torch's float32 cascade sum, allow 2 ulp.
    float computed = -12345.0f;
    call("quantize_absmax_nested(offset_in = NULL)",
         api()->quantize_absmax_nested(ctx, &ta, &tq, g.nbs, BNB_ROUND_BNB_CPU_LUT, nullptr, &tc, &tn, &computed));
    const long long ulps = std::llabs(static_cast<long long>(static_cast<int32_t>(f32_bits(computed))) -
                                      static_cast<long long>(static_cast<int32_t>(f32_bits(g.offset))));
    check(ulps <= 2, "computed offset %.9g is %lld ulp from the golden %.9g (allowed 2)", static_cast<double>(computed),
          ulps, static_cast<double>(g.offset));

    // Reconstructed absmax = what the backend derives from the nested statistics. Read it out exactly through
    // dequantize_blockwise: codes all pointing at the map's 1.0 entry give out[b * bs] = 1.0 * absmax'[b].
    if (Array* want_rec = c.first_if(c.outputs, [](const Array& a) {
            return a.dtype == BNB_DTYPE_F32 && a.name.find("absmax") != std::string::npos &&
                   a.name.find("dequant") != std::string::npos;
        })) {
        int one = -1;
        for (int j = 255; j >= 0; --j)
            if (g.code.as<float>()[j] == 1.0f) {
                one = j;
                break;
            }
        if (one < 0) throw CaseError("nested code map has no 1.0 entry");
        const int64_t obs = 64;  // any valid outer blocksize works for this read-out
        Array ones(BNB_DTYPE_U8, {blocks * obs});
        std::memset(ones.data(), one, ones.bytes.size());
        Array out(BNB_DTYPE_F32, {blocks * obs});
        bnb_tensor to = ones.flat(), tqq = g.code.flat(), tout = out.flat();
        bnb_tensor tcodes = g.codes->flat(), tnest = g.nested_absmax->flat(), tmap = g.code.flat();
        bnb_absmax am;
        std::memset(&am, 0, sizeof am);
        am.struct_size = sizeof am;
        am.nested = 1;
        am.values = &tcodes;
        am.nested_absmax = &tnest;
        am.nested_code = &tmap;
        am.nested_blocksize = g.nbs;
        am.nested_offset = g.offset;
        call("dequantize_blockwise(nested absmax read-out)",
             api()->dequantize_blockwise(ctx, &to, &am, &tqq, obs, &tout));
        Array rec(BNB_DTYPE_F32, {blocks});
        for (int64_t b = 0; b < blocks; ++b) rec.as<float>()[b] = out.as<float>()[b * obs];
        expect_exact("reconstructed absmax", rec, *want_rec);
    }
    return g;
}

bnb_absmax nested_absmax(NestedGolden& g, bnb_tensor* codes, bnb_tensor* nabs, bnb_tensor* map) {
    *codes = g.codes->flat();
    *nabs = g.nested_absmax->flat();
    *map = g.code.flat();
    bnb_absmax am;
    std::memset(&am, 0, sizeof am);
    am.struct_size = sizeof am;
    am.nested = 1;
    am.values = codes;
    am.nested_absmax = nabs;
    am.nested_code = map;
    am.nested_blocksize = g.nbs;
    am.nested_offset = g.offset;
    return am;
}

void run_q8_nested(Case& c, const RunConfig& rc) {
    Array& A = *c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    const int64_t n = A.numel();
    const int64_t bs = c.arg_int("blocksize");
    Array code = code_table_from_arg(c, "code", "signed");
    Context ctx(rc.threads, policy_for({&A}));

    Array codes(BNB_DTYPE_U8, {n});
    Array absmax1(BNB_DTYPE_F32, {ceil_div(n, bs)});
    bnb_tensor ta = A.flat(), tq = code.flat(), tc = codes.flat(), tm = absmax1.flat();
    call("quantize_blockwise", api()->quantize_blockwise(ctx.ctx, &ta, &tq, bs, BNB_ROUND_BNB_CPU_LUT, &tc, &tm));
    Array& want_codes = c.out("out", BNB_DTYPE_U8);
    expect_exact("codes", codes, want_codes);

    NestedGolden g = check_nested(c, ctx.ctx, absmax1);

    Array& want = c.out("dequant");
    Array deq(want.dtype, want.shape);
    bnb_tensor t1, t2, t3;
    bnb_absmax am = nested_absmax(g, &t1, &t2, &t3);
    bnb_tensor tcodes = want_codes.flat(), tout = deq.flat();
    call("dequantize_blockwise(nested)", api()->dequantize_blockwise(ctx.ctx, &tcodes, &am, &tq, bs, &tout));
    expect_exact("dequant (nested absmax)", deq, want);
}

// ─── q4/* ───────────────────────────────────────────────────────────────────────────────────────────────────

// Expected 4-bit dequantization, computed here from packed + absmax + the canonical table (spec §2.6.3):
// out[i] = T(f32(table[nibble i] * absmax[i / blocksize])), element 2k in the high nibble of byte k.
Array expected_dequant4(const Case& c, const Array& packed, const Array& absmax, int32_t qt, int64_t bs,
                        int32_t out_dtype, const std::vector<int64_t>& shape) {
    Array table = canonical_table(*c.golden, qt == BNB_QUANT_NF4 ? "nf4" : "fp4");
    Array out(out_dtype, shape);
    const uint8_t* p = packed.as<uint8_t>();
    const float* am = absmax.as<float>();
    for (int64_t i = 0; i < out.numel(); ++i) {
        const uint8_t byte = p[i / 2];
        const int nib = (i % 2 == 0) ? (byte >> 4) : (byte & 0x0F);
        const float v = table.as<float>()[nib] * am[i / bs];
        switch (out_dtype) {
        case BNB_DTYPE_F32: out.as<float>()[i] = v; break;
        case BNB_DTYPE_F16: out.as<uint16_t>()[i] = f32_to_f16(v); break;
        case BNB_DTYPE_BF16: out.as<uint16_t>()[i] = f32_to_bf16(v); break;
        default: throw CaseError("expected_dequant4: output dtype");
        }
    }
    return out;
}

Array dequant4(bnb_context* ctx, Array& packed, bnb_absmax* am, int32_t qt, int64_t bs, int32_t dtype,
               const std::vector<int64_t>& shape) {
    Array out(dtype, shape);
    bnb_tensor tp = packed.flat(), to = out.flat();
    call("dequantize_4bit", api()->dequantize_4bit(ctx, &tp, am, qt, bs, &to));
    return out;
}

void run_q4_quantize(Case& c, const RunConfig& rc) {
    Array& A = *c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    const int64_t n = A.numel();
    const int64_t bs = c.arg_int("blocksize");
    const int32_t qt = quant_type_of(c);
    Context ctx(rc.threads, policy_for({&A}));

    Array& want_packed = c.out("packed", BNB_DTYPE_U8);
    Array& want_absmax = c.out("absmax", BNB_DTYPE_F32);
    Array packed(BNB_DTYPE_U8, {(n + 1) / 2});
    Array absmax(BNB_DTYPE_F32, {ceil_div(n, bs)});
    bnb_tensor ta = A.flat(), tp = packed.flat(), tm = absmax.flat();
    call("quantize_4bit", api()->quantize_4bit(ctx.ctx, &ta, qt, bs, &tp, &tm));
    expect_exact("packed", packed, want_packed);
    expect_exact("absmax", absmax, want_absmax);

    if (Array* want_deq = c.out_opt("dequant")) {
        bnb_tensor tma = want_absmax.flat();
        bnb_absmax am = plain_absmax(&tma);
        Array deq = dequant4(ctx.ctx, want_packed, &am, qt, bs, want_deq->dtype, want_deq->shape);
        expect_exact("dequant", deq, *want_deq);
    }
}

// Another manifest case holding the default-backend (correct) dequant of the same packed + absmax files.
bool find_reference_dequant(const Case& c, const Array& packed, const Array& absmax, int32_t dtype, Array* out) {
    for (const Value& other : c.golden->cases->arr) {
        if (&other == c.json) continue;
        const std::string oid = other.at("id").as_string();
        if (oid.compare(0, 21, "q4/dequantize_default") != 0) continue;
        bool same_packed = false, same_absmax = false;
        for (const Value& in : other.at("inputs").arr) {
            if (in.at("file").as_string() == packed.file) same_packed = true;
            if (in.at("file").as_string() == absmax.file) same_absmax = true;
        }
        if (!same_packed || !same_absmax) continue;
        for (const Value& o : other.at("outputs").arr) {
            if (dtype_from_manifest(o.at("dtype").as_string()) != dtype) continue;
            *out = c.golden->load(o);
            note("reference dequant from case %s (%s)", oid.c_str(), out->file.c_str());
            return true;
        }
    }
    return false;
}

void run_q4_dequantize(Case& c, const RunConfig& rc) {
    Array& packed = c.in("A", BNB_DTYPE_U8);
    Array& absmax = c.in("absmax", BNB_DTYPE_F32);
    Array& golden_out = c.out("out");
    const int64_t bs = c.arg_int("blocksize");
    const int32_t qt = quant_type_of(c);
    const int64_t mismatch = c.arg_int("bitwise_mismatch_vs_python_reference", 0);
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);

    bnb_tensor tma = absmax.flat();
    bnb_absmax am = plain_absmax(&tma);
    Array got = dequant4(ctx.ctx, packed, &am, qt, bs, golden_out.dtype, golden_out.shape);
    Array expected = expected_dequant4(c, packed, absmax, qt, bs, golden_out.dtype, golden_out.shape);
    if (mismatch == 0) {
        expect_exact("dequant vs golden", got, golden_out);
        expect_exact("dequant vs §2.6.3 recomputed", got, expected);
        return;
    }
    // The golden file holds bitsandbytes' AVX512 row-wise absmax bug (spec §2.6.4): test the correct value and
    // prove that we do not reproduce the bug.
    note("golden output has %lld elements from the AVX512 absmax-indexing bug; comparing with the correct value",
         static_cast<long long>(mismatch));
    expect_exact("dequant vs §2.6.3 recomputed", got, expected);
    Array ref;
    if (find_reference_dequant(c, packed, absmax, golden_out.dtype, &ref)) {
        expect_exact("harness: recomputed vs reference file", expected, ref);
        expect_exact("dequant vs reference file", got, ref);
    }
    const int64_t d = count_diff(got, golden_out, golden_out.numel());
    note("differs from the buggy golden file in %lld elements (args: %lld)", static_cast<long long>(d),
         static_cast<long long>(mismatch));
    check(d > 0, "dequant equals the buggy AVX512 output although args.bitwise_mismatch_vs_python_reference = %lld",
          static_cast<long long>(mismatch));
}

void run_q4_bug(Case& c, const RunConfig& rc) {
    const int32_t qt = quant_type_of(c);
    const int64_t bs = c.arg_int("blocksize");
    Array* A = c.first_if(c.outputs, [](const Array& a) { return is_float_dtype(a.dtype) && a.name.compare(0, 2, "A ") == 0; });
    if (!A) A = c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    Array& packed = c.out("packed", BNB_DTYPE_U8);
    Array& absmax = c.out("absmax", BNB_DTYPE_F32);
    Array& wrong = c.out("WRONG");
    Array& correct = c.out("correct");
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);

    if (A) {  // the packed weights are the default-backend quantization of A
        Array p(BNB_DTYPE_U8, {packed.numel()}), m(BNB_DTYPE_F32, {absmax.numel()});
        bnb_tensor ta = A->flat(), tp = p.flat(), tm = m.flat();
        call("quantize_4bit", api()->quantize_4bit(ctx.ctx, &ta, qt, bs, &tp, &tm));
        expect_exact("packed", p, packed);
        expect_exact("absmax", m, absmax);
    }
    bnb_tensor tma = absmax.flat();
    bnb_absmax am = plain_absmax(&tma);
    Array got = dequant4(ctx.ctx, packed, &am, qt, bs, correct.dtype, correct.shape);
    expect_exact("dequant vs correct reference", got, correct);
    Array expected = expected_dequant4(c, packed, absmax, qt, bs, correct.dtype, correct.shape);
    expect_exact("harness: recomputed vs correct reference", expected, correct);
    const int64_t d = count_diff(got, wrong, wrong.numel());
    const int64_t documented = c.arg_int("mismatching_elements", -1);
    note("differs from the buggy native output in %lld elements (args: %lld)", static_cast<long long>(d),
         static_cast<long long>(documented));
    check(d > 0, "dequant reproduces the AVX512 absmax-indexing bug");
    if (documented >= 0)
        check(d == documented, "dequant differs from the buggy output in %lld elements, documented %lld",
              static_cast<long long>(d), static_cast<long long>(documented));
}

void run_q4_nested(Case& c, const RunConfig& rc) {
    Array& A = *c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    const int64_t n = A.numel();
    const int64_t bs = c.arg_int("blocksize");
    const int32_t qt = quant_type_of(c);
    Context ctx(rc.threads, policy_for({&A}));

    Array* want_packed = c.first_if(c.outputs, [](const Array& a) {
        return a.dtype == BNB_DTYPE_U8 && a.name.find("packed") != std::string::npos;
    });
    if (!want_packed) throw CaseError("nested case has no packed output: " + Case::names(c.outputs));
    Array packed(BNB_DTYPE_U8, {(n + 1) / 2});
    Array absmax1(BNB_DTYPE_F32, {ceil_div(n, bs)});
    bnb_tensor ta = A.flat(), tp = packed.flat(), tm = absmax1.flat();
    call("quantize_4bit", api()->quantize_4bit(ctx.ctx, &ta, qt, bs, &tp, &tm));
    expect_exact("packed", packed, *want_packed);

    NestedGolden g = check_nested(c, ctx.ctx, absmax1);

    Array& want = c.out("dequant");
    bnb_tensor t1, t2, t3;
    bnb_absmax am = nested_absmax(g, &t1, &t2, &t3);
    Array deq = dequant4(ctx.ctx, *want_packed, &am, qt, bs, want.dtype, want.shape);
    expect_exact("dequant (nested absmax)", deq, want);
}

// ─── gemv/* ─────────────────────────────────────────────────────────────────────────────────────────────────

void run_gemv(Case& c, const RunConfig& rc) {
    const int64_t M = c.arg_int("M"), N = c.arg_int("N"), K = c.arg_int("K"), bs = c.arg_int("blocksize");
    const int32_t qt = quant_type_of(c);
    Array& x = c.in("x", BNB_DTYPE_BF16);
    Array& W = c.in("standard packed", BNB_DTYPE_U8);
    Array& absmax = c.in("standard absmax", BNB_DTYPE_F32);
    Array* W_cpu = c.first_if(c.inputs, [](const Array& a) {
        return a.dtype == BNB_DTYPE_U8 && a.name.find("_convert_weight_packed_for_cpu") != std::string::npos;
    });
    Array& ref = c.out("float64");
    const double tol = c.arg("max_abs_err_vs_fp64_ref").as_double() * 1.25;
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);

    bnb_backend_info info;
    std::memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    call("backend_get_info", api()->backend_get_info(&info));

    auto matmul = [&](const char* which, Array& w, int32_t format) {
        Array out(BNB_DTYPE_BF16, {M, N});
        bnb_tensor tx = x.tensor({M, K}), tw = w.flat(), tm = absmax.flat(), to = out.tensor({M, N});
        bnb_absmax am = plain_absmax(&tm);
        const bool gemv = std::strcmp(which, "gemv_4bit") == 0;
        bnb_status st = gemv ? api()->gemv_4bit(ctx.ctx, &tx, &tw, format, &am, qt, bs, nullptr, &to)
                             : api()->gemm_4bit(ctx.ctx, &tx, &tw, format, &am, qt, bs, nullptr, &to);
        std::string what = std::string(which) + " (format " + std::to_string(format) + ")";
        call(what.c_str(), st);
        double worst = 0;
        int64_t worst_i = 0;
        for (int64_t i = 0; i < M * N; ++i) {
            const double d = std::fabs(out.get(i) - ref.get(i));
            if (!(d <= worst)) {
                worst = d;
                worst_i = i;
            }
        }
        note("%s: max |out - ref_fp64| = %.6g at [%lld, %lld] (allowed %.6g)", what.c_str(), worst,
             static_cast<long long>(worst_i / N), static_cast<long long>(worst_i % N), tol);
        check(worst <= tol, "%s: max |out - ref_fp64| = %.6g at [%lld, %lld] (got %.9g, ref %.9g) > %.6g",
              what.c_str(), worst, static_cast<long long>(worst_i / N), static_cast<long long>(worst_i % N),
              out.get(worst_i), ref.get(worst_i), tol);
    };
    matmul("gemv_4bit", W, BNB_WEIGHT_STANDARD);
    matmul("gemm_4bit", W, BNB_WEIGHT_STANDARD);

    // bitsandbytes' CPU layout: byte-identical to _convert_weight_packed_for_cpu, and reversible.
    if (W_cpu) {
        size_t bytes = 0;
        call("weight_pack_size(BNB_CPU)", api()->weight_pack_size(ctx.ctx, BNB_WEIGHT_BNB_CPU, N, K, bs, &bytes));
        check(bytes == static_cast<size_t>(W_cpu->numel()), "weight_pack_size(BNB_CPU) = %zu, expected %lld", bytes,
              static_cast<long long>(W_cpu->numel()));
        Array packed(BNB_DTYPE_U8, {static_cast<int64_t>(bytes)});
        bnb_tensor tw = W.flat(), tp = packed.flat();
        call("weight_pack(BNB_CPU)", api()->weight_pack(ctx.ctx, BNB_WEIGHT_BNB_CPU, &tw, N, K, bs, &tp));
        expect_exact("weight_pack(BNB_CPU) vs W_cpu_packed", packed, *W_cpu, std::min<int64_t>(packed.numel(), W_cpu->numel()));
        Array back(BNB_DTYPE_U8, {W.numel()});
        bnb_tensor tc = W_cpu->flat(), tb = back.flat();
        call("weight_unpack(BNB_CPU)", api()->weight_unpack(ctx.ctx, BNB_WEIGHT_BNB_CPU, &tc, N, K, bs, &tb));
        expect_exact("weight_unpack(BNB_CPU) round trip", back, W);
        if (info.weight_formats & (1u << BNB_WEIGHT_BNB_CPU)) {
            matmul("gemv_4bit", *W_cpu, BNB_WEIGHT_BNB_CPU);
            matmul("gemm_4bit", *W_cpu, BNB_WEIGHT_BNB_CPU);
        }
    }
    // The backend's own layout, when it advertises one: pack, multiply, unpack.
    if (info.weight_formats & (1u << BNB_WEIGHT_BACKEND)) {
        size_t bytes = 0;
        call("weight_pack_size(BACKEND)", api()->weight_pack_size(ctx.ctx, BNB_WEIGHT_BACKEND, N, K, bs, &bytes));
        Array packed(BNB_DTYPE_U8, {static_cast<int64_t>(bytes)});
        bnb_tensor tw = W.flat(), tp = packed.flat();
        call("weight_pack(BACKEND)", api()->weight_pack(ctx.ctx, BNB_WEIGHT_BACKEND, &tw, N, K, bs, &tp));
        matmul("gemv_4bit", packed, BNB_WEIGHT_BACKEND);
        matmul("gemm_4bit", packed, BNB_WEIGHT_BACKEND);
        Array back(BNB_DTYPE_U8, {W.numel()});
        bnb_tensor tb = back.flat();
        call("weight_unpack(BACKEND)", api()->weight_unpack(ctx.ctx, BNB_WEIGHT_BACKEND, &tp, N, K, bs, &tb));
        expect_exact("weight_unpack(BACKEND) round trip", back, W);
    }
}

// ─── int8/* ─────────────────────────────────────────────────────────────────────────────────────────────────

struct RowsCols {
    int64_t rows, cols;
};
RowsCols rows_cols(const Array& a) {
    if (a.shape.empty()) return {1, 1};
    const int64_t cols = a.shape.back();
    return {cols ? a.numel() / cols : 0, cols};
}

struct VQ {
    Array CA, stats, cols;
    int64_t count = -1;
};
VQ vectorwise_quant(bnb_context* ctx, Array& A, float threshold) {
    const RowsCols rc = rows_cols(A);
    VQ r;
    r.CA = Array(BNB_DTYPE_I8, {rc.rows, rc.cols});
    r.stats = Array(BNB_DTYPE_F32, {rc.rows});
    r.cols = Array(BNB_DTYPE_I64, {rc.cols});
    bnb_tensor ta = A.tensor({rc.rows, rc.cols}), tca = r.CA.tensor(), ts = r.stats.tensor(), tc = r.cols.tensor();
    call("int8_vectorwise_quant",
         api()->int8_vectorwise_quant(ctx, &ta, threshold, &tca, &ts, threshold > 0 ? &tc : nullptr, &r.count));
    return r;
}

void run_int8_vectorwise_quant(Case& c, const RunConfig& rc) {
    Array& A = *c.first_if(c.inputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    const float thr = c.arg_float("threshold", 0.0f);
    Context ctx(rc.threads, policy_for({&A}));
    VQ r = vectorwise_quant(ctx.ctx, A, thr);
    Array* want_CA = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I8; });
    Array* want_stats = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_F32; });
    Array* want_cols = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I64; });
    if (!want_CA || !want_stats) throw CaseError("vectorwise_quant case lacks int8 / float32 outputs");
    expect_exact("CA", r.CA, *want_CA);
    expect_exact("row_stats", r.stats, *want_stats);
    if (want_cols) {
        if (check(r.count == want_cols->numel(), "outlier count %lld, expected %lld", static_cast<long long>(r.count),
                  static_cast<long long>(want_cols->numel())))
            expect_exact("outlier_cols", r.cols, *want_cols, want_cols->numel());
    } else if (thr > 0) {
        check(r.count == 0, "outlier count %lld, golden has no outlier columns", static_cast<long long>(r.count));
    }
}

void run_int8_vectorwise_dequant(Case& c, const RunConfig& rc) {
    Array* CA = c.first_if(c.inputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I8; });
    Array* stats = c.first_if(c.inputs, [](const Array& a) { return a.dtype == BNB_DTYPE_F32; });
    Array* want = c.first_if(c.outputs, [](const Array& a) { return is_float_dtype(a.dtype); });
    if (!CA || !stats || !want) throw CaseError("vectorwise_dequant case lacks int8 / float32 inputs or output");
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    const RowsCols r = rows_cols(*CA);
    Array out(want->dtype, {r.rows, r.cols});
    bnb_tensor tca = CA->tensor({r.rows, r.cols}), ts = stats->flat(), to = out.tensor();
    call("int8_vectorwise_dequant", api()->int8_vectorwise_dequant(ctx.ctx, &tca, &ts, &to));
    expect_exact("vectorwise dequant", out, *want);
}

Array int8_matmul(bnb_context* ctx, Array& A, Array& B) {
    const RowsCols a = rows_cols(A), b = rows_cols(B);
    Array out(BNB_DTYPE_I32, {a.rows, b.rows});
    bnb_tensor ta = A.tensor({a.rows, a.cols}), tb = B.tensor({b.rows, b.cols}), to = out.tensor();
    call("int8_linear_matmul", api()->int8_linear_matmul(ctx, &ta, &tb, &to));
    return out;
}

void run_int8_linear_matmul(Case& c, const RunConfig& rc) {
    Array& A = c.in("A", BNB_DTYPE_I8);
    Array& B = c.in("B", BNB_DTYPE_I8);
    Array* want = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I32; });
    if (!want) throw CaseError("linear_matmul case lacks an int32 output");
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    Array got = int8_matmul(ctx.ctx, A, B);
    expect_exact("A·Bᵀ (int32)", got, *want);
}

Array mm_dequant(bnb_context* ctx, Array& C, Array& row, Array& col, Array* bias, int32_t dtype) {
    const RowsCols r = rows_cols(C);
    Array out(dtype, {r.rows, r.cols});
    bnb_tensor tc = C.tensor({r.rows, r.cols}), tr = row.flat(), tl = col.flat(), to = out.tensor();
    bnb_tensor tb;
    if (bias) tb = bias->flat();
    call("int8_mm_dequant", api()->int8_mm_dequant(ctx, &tc, &tr, &tl, bias ? &tb : nullptr, &to));
    return out;
}

void run_int8_mm_dequant(Case& c, const RunConfig& rc) {
    Array* C = c.first_if(c.inputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I32; });
    Array& row = c.in("row_stats", BNB_DTYPE_F32);
    Array& col = c.in("col_stats", BNB_DTYPE_F32);
    Array* bias = c.in_opt("bias");
    // Our documented formula is CUDA's (header: int8_mm_dequant); the default-backend file uses a mistyped constant.
    Array* want = c.first_if(c.outputs, [](const Array& a) {
        return a.name.find("CUDA") != std::string::npos || a.file.find("cudaformula") != std::string::npos;
    });
    if (!C || !want) throw CaseError("mm_dequant case lacks an int32 input or the CUDA-formula output");
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    Array got = mm_dequant(ctx.ctx, *C, row, col, bias, want->dtype);
    expect_exact("mm_dequant (CUDA formula)", got, *want);
    if (Array* dflt = c.first_if(c.outputs, [&](const Array& a) { return &a != want && a.dtype == want->dtype; }))
        note("for information: differs from the default-backend constant's output in %lld elements",
             static_cast<long long>(count_diff(got, *dflt, dflt->numel())));
}

void run_int8_mixed_forward(Case& c, const RunConfig& rc) {
    Array& A = c.in("A");
    Array& W = c.in("W");
    Array* bias = c.in_opt("bias");
    const float thr = c.arg_float("threshold", 0.0f);
    Array* want_C = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_I32; });
    Array* want_ref = c.first_if(c.outputs, [](const Array& a) { return a.dtype == BNB_DTYPE_F64; });
    if (!want_C || !want_ref) throw CaseError("matmul8bitlt case lacks the int32 product or the float64 reference");
    Context ctx(rc.threads, policy_for({&A, &W}));

    VQ qa = vectorwise_quant(ctx.ctx, A, thr);
    VQ qw = vectorwise_quant(ctx.ctx, W, 0.0f);
    if (c.has_arg("outlier_cols")) {
        const Value& oc = c.arg("outlier_cols");
        bool same = qa.count == static_cast<int64_t>(oc.arr.size());
        for (size_t i = 0; same && i < oc.arr.size(); ++i) same = qa.cols.as<int64_t>()[i] == oc.arr[i].as_int();
        check(same, "outlier columns (%lld of them) differ from args.outlier_cols", static_cast<long long>(qa.count));
    }
    Array C = int8_matmul(ctx.ctx, qa.CA, qw.CA);
    expect_exact("CA·CBᵀ (int32)", C, *want_C);

    // Final output = int8 part (+bias) + A[:, outliers] · T(dequant(CB[:, outliers]))ᵀ (spec §2.9 step 4).
    const RowsCols ar = rows_cols(A), wr = rows_cols(W);
    Array part = mm_dequant(ctx.ctx, C, qa.stats, qw.stats, bias, A.dtype);
    Array deqW(BNB_DTYPE_F32, {wr.rows, wr.cols});
    {
        bnb_tensor tca = qw.CA.tensor(), ts = qw.stats.flat(), to = deqW.tensor();
        call("int8_vectorwise_dequant", api()->int8_vectorwise_dequant(ctx.ctx, &tca, &ts, &to));
    }
    Array final_out(BNB_DTYPE_F64, {ar.rows, wr.rows});
    for (int64_t m = 0; m < ar.rows; ++m)
        for (int64_t n = 0; n < wr.rows; ++n) {
            double acc = part.get(m * wr.rows + n);
            for (int64_t k = 0; k < qa.count; ++k) {
                const int64_t col = qa.cols.as<int64_t>()[k];
                float w = deqW.as<float>()[n * wr.cols + col];
                if (A.dtype == BNB_DTYPE_F16) w = f16_to_f32(f32_to_f16(w));  // .to(A.dtype)
                if (A.dtype == BNB_DTYPE_BF16) w = bf16_to_f32(f32_to_bf16(w));
                acc += A.get(m * ar.cols + col) * static_cast<double>(w);
            }
            final_out.as<double>()[m * wr.rows + n] = acc;
        }
    expect_close("final output vs float64 reference", final_out, *want_ref, 1e-2, std::ldexp(1.0, -10));
}

// ─── optim/* ────────────────────────────────────────────────────────────────────────────────────────────────

int32_t optimizer_kind(const std::string& name) {
    if (name == "adam" || name == "adamw") return BNB_OPTIM_ADAM;
    if (name == "momentum" || name == "sgd") return BNB_OPTIM_MOMENTUM;
    if (name == "rmsprop") return BNB_OPTIM_RMSPROP;
    if (name == "adagrad") return BNB_OPTIM_ADAGRAD;
    if (name == "lion") return BNB_OPTIM_LION;
    if (name == "lamb") return BNB_OPTIM_LAMB;
    if (name == "lars") return BNB_OPTIM_LARS;
    if (name == "ademamix") return BNB_OPTIM_ADEMAMIX;
    throw CaseError("unknown optimizer '" + name + "'");
}

bnb_optimizer_params optimizer_params(const Case& c, int32_t step, int32_t rounding) {
    bnb_optimizer_params p;
    std::memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.kind = optimizer_kind(c.arg("name").as_string());
    p.step = step;
    p.lr = c.arg_double("lr", 0.0);
    p.beta1 = c.arg_double("b1", 0.0);
    p.beta2 = c.arg_double("b2", 0.0);
    p.beta3 = c.arg_double("b3", 0.0);
    p.alpha = c.arg_double("alpha", 0.0);
    p.eps = c.arg_double("eps", 0.0);
    p.weight_decay = c.arg_double("wd", 0.0);
    p.gnorm_scale = c.arg_double("gnorm_scale", 1.0);
    p.max_unorm = c.arg_double("max_unorm", 0.0);
    p.param_norm = -1.0f;  // the op computes ||p|| before the step
    p.skip_zeros = 0;
    p.rounding = rounding;
    return p;
}

// A [..] slice of a per-step array as a tensor shape: [n] or [2, n] (AdEMAMix state1 / absmax1).
std::vector<int64_t> step_shape(const Array& per_step) {
    std::vector<int64_t> s(per_step.shape.begin() + 1, per_step.shape.end());
    if (s.empty()) s.push_back(1);
    return s;
}

void run_optim32(Case& c, const RunConfig& rc) {
    Array& p0 = c.in("p0");
    Array& grads = c.in("grads");
    Array& P = c.out("param");
    Array& S1 = c.out("state1");
    Array* S2 = c.out_opt("state2");
    const int64_t steps = c.arg_int("steps", P.shape[0]);
    const double atol = 1e-6, rtol = 1e-5;
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    for (int64_t t = 1; t <= steps; ++t) {
        // Each step starts from the golden state after the previous step (spec §9.4), so errors do not compound.
        Array p = t == 1 ? p0 : P.step(t - 2);
        p.shape = step_shape(P);
        Array g = grads.step(t - 1);
        Array s1 = t == 1 ? Array(BNB_DTYPE_F32, step_shape(S1)) : S1.step(t - 2);
        Array s2 = S2 ? (t == 1 ? Array(BNB_DTYPE_F32, step_shape(*S2)) : S2->step(t - 2)) : Array();
        bnb_optimizer_params prm = optimizer_params(c, static_cast<int32_t>(t), BNB_ROUND_NEAREST);
        bnb_tensor tp = p.tensor(), tg = g.tensor(), t1 = s1.tensor(), t2;
        if (S2) t2 = s2.tensor();
        float unorm = 0;
        call("optimizer_update_32bit",
             api()->optimizer_update_32bit(ctx.ctx, &prm, &tp, &tg, &t1, S2 ? &t2 : nullptr, &unorm));
        const std::string sfx = " after step " + std::to_string(t);
        expect_close(("p" + sfx).c_str(), p, P.step(t - 1), atol, rtol);
        expect_close(("state1" + sfx).c_str(), s1, S1.step(t - 1), atol, rtol);
        if (S2) expect_close(("state2" + sfx).c_str(), s2, S2->step(t - 1), atol, rtol);
    }
}

// 8-bit states: at most 1 % of the codes may differ, each by one index (a LUT boundary), spec §9.4.
void expect_codes_close(const std::string& what, const Array& got, const Array& want) {
    ++g_checks;
    int64_t diff = 0, n_far = 0, shown = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
        const int d = static_cast<int>(got.as<uint8_t>()[i]) - static_cast<int>(want.as<uint8_t>()[i]);
        if (d == 0) continue;
        ++diff;
        if (d > 1 || d < -1) {
            ++n_far;
            if (shown++ < 8)
                std::fprintf(stdout, "       %s[%lld]: got code %u, expected %u\n", what.c_str(),
                             static_cast<long long>(i), got.as<uint8_t>()[i], want.as<uint8_t>()[i]);
        }
    }
    const bool ok = n_far == 0 && diff * 100 <= want.numel();
    if (!ok)
        fail("%s: %lld of %lld codes differ (allowed 1 %%), %lld by more than one index", what.c_str(),
             static_cast<long long>(diff), static_cast<long long>(want.numel()), static_cast<long long>(n_far));
    else if (diff)
        note("%s: %lld of %lld codes differ by one index (within 1 %%)", what.c_str(), static_cast<long long>(diff),
             static_cast<long long>(want.numel()));
}

void run_optim8(Case& c, const RunConfig& rc) {
    Array& p0 = c.in("p0");
    Array& grads = c.in("grads");
    Array& P = c.out("param");
    Array& S1 = c.out("state1", BNB_DTYPE_U8);
    Array& A1 = c.out("absmax1", BNB_DTYPE_F32);
    Array* S2 = c.out_opt("state2", BNB_DTYPE_U8);
    Array* A2 = c.out_opt("absmax2", BNB_DTYPE_F32);
    if ((S2 == nullptr) != (A2 == nullptr)) throw CaseError("state2 without absmax2 (or the reverse)");
    Array q1 = code_table_from_arg(c, "qmap1", "signed");
    Array q2 = S2 ? code_table_from_arg(c, "qmap2", "unsigned") : Array();
    const int64_t steps = c.arg_int("steps", P.shape[0]);
    Context ctx(rc.threads, BNB_NONFINITE_ERROR);
    for (int64_t t = 1; t <= steps; ++t) {
        Array p = t == 1 ? p0 : P.step(t - 2);
        p.shape = step_shape(P);
        Array g = grads.step(t - 1);
        auto prev = [&](const Array& per_step, int32_t dt) {
            return t == 1 ? Array(dt, step_shape(per_step)) : per_step.step(t - 2);
        };
        Array s1 = prev(S1, BNB_DTYPE_U8), a1 = prev(A1, BNB_DTYPE_F32);
        Array s2 = S2 ? prev(*S2, BNB_DTYPE_U8) : Array(), a2 = A2 ? prev(*A2, BNB_DTYPE_F32) : Array();
        bnb_optimizer_params prm = optimizer_params(c, static_cast<int32_t>(t), BNB_ROUND_BNB_CPU_LUT);
        bnb_tensor tp = p.tensor(), tg = g.tensor(), t1 = s1.tensor(), ta1 = a1.tensor(), tq1 = q1.flat();
        bnb_tensor t2, ta2, tq2;
        if (S2) {
            t2 = s2.tensor();
            ta2 = a2.tensor();
            tq2 = q2.flat();
        }
        call("optimizer_update_8bit_blockwise",
             api()->optimizer_update_8bit_blockwise(ctx.ctx, &prm, &tp, &tg, &t1, S2 ? &t2 : nullptr, &ta1,
                                                    S2 ? &ta2 : nullptr, &tq1, S2 ? &tq2 : nullptr));
        const std::string sfx = " after step " + std::to_string(t);
        expect_close(("p" + sfx).c_str(), p, P.step(t - 1), 1e-6, 1e-5);
        expect_close(("absmax1" + sfx).c_str(), a1, A1.step(t - 1), 0.0, 1e-5);
        expect_codes_close("state1" + sfx, s1, S1.step(t - 1));
        if (S2) {
            expect_close(("absmax2" + sfx).c_str(), a2, A2->step(t - 1), 0.0, 1e-5);
            expect_codes_close("state2" + sfx, s2, S2->step(t - 1));
        }
    }
}

// ─── dispatch ───────────────────────────────────────────────────────────────────────────────────────────────

bool starts(const std::string& s, const char* p) { return s.compare(0, std::strlen(p), p) == 0; }
bool contains(const std::string& s, const char* p) { return s.find(p) != std::string::npos; }

using Handler = void (*)(Case&, const RunConfig&);

Handler pick(Case& c) {
    const std::string& id = c.id;
    auto has_u8_input = [&] { return c.first_if(c.inputs, [](const Array& a) { return a.dtype == BNB_DTYPE_U8; }); };
    if (starts(id, "tables/")) return run_tables;
    if (starts(id, "q8/")) {
        if (contains(id, "nested") || c.has_arg("nested_blocksize")) return run_q8_nested;
        if (has_u8_input()) return run_q8_dequantize;
        return run_q8_quantize;
    }
    if (starts(id, "q4/")) {
        if (starts(id, "q4/bug/") || c.out_opt("WRONG")) return run_q4_bug;
        if (contains(id, "nested") || c.has_arg("nested_blocksize")) return run_q4_nested;
        if (has_u8_input()) return run_q4_dequantize;
        return run_q4_quantize;
    }
    if (starts(id, "gemv/") || starts(id, "gemm/")) return run_gemv;
    if (starts(id, "int8/")) {
        if (contains(id, "matmul8bitlt") || contains(c.function, "MatMul8bitLt")) return run_int8_mixed_forward;
        if (contains(id, "linear_matmul")) return run_int8_linear_matmul;
        if (contains(id, "mm_dequant")) return run_int8_mm_dequant;
        if (contains(id, "vectorwise_dequant")) return run_int8_vectorwise_dequant;
        if (contains(id, "vectorwise_quant")) return run_int8_vectorwise_quant;
    }
    if (starts(id, "optim/32bit/")) return run_optim32;
    if (starts(id, "optim/8bit/")) return run_optim8;
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <backend-library> <golden-dir> <case-id>\n", argv[0]);
        return 2;
    }
    const std::string lib = argv[1], dir = argv[2], id = argv[3];
    try {
        Golden golden;
        golden.dir = dir;
        golden.manifest = jsonmin::parse(read_text(dir + "/manifest.json"));
        golden.cases = &golden.manifest.at("cases");
        const Value* cj = golden.find_case(id);
        if (!cj) throw CaseError("no case '" + id + "' in " + dir + "/manifest.json");

        Case c;
        c.golden = &golden;
        c.json = cj;
        c.id = id;
        c.function = cj->at("function").as_string();
        c.args = cj->find("args");
        for (const Value& e : cj->at("inputs").arr) c.inputs.push_back(golden.load(e));
        for (const Value& e : cj->at("outputs").arr) c.outputs.push_back(golden.load(e));
        Handler h = pick(c);
        if (!h) throw CaseError("no handler for case kind of '" + id + "' (function: " + c.function + ")");

        if (!bnbt_load(lib.c_str(), &g_backend)) return 2;
        std::printf("case %s — %s\n", id.c_str(), c.function.c_str());
        // Every case runs on the caller's thread and on a pool: integer outputs must not depend on threads.
        for (int32_t threads : {1, 4}) {
            g_prefix = "[threads=" + std::to_string(threads) + "] ";
            RunConfig rc;
            rc.threads = threads;
            h(c, rc);
        }
        g_prefix.clear();
    } catch (const std::exception& e) {
        std::printf("FAIL %s%s\n", g_prefix.c_str(), e.what());
        if (g_backend.handle) bnbt_unload(&g_backend);
        return 1;
    }
    bnbt_unload(&g_backend);
    std::printf("%s: %d checks, %d failed\n", g_failures ? "FAILED" : "PASSED", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
