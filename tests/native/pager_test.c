/*
 * pager_test — the paging allocator (BNB_MEMORY_PAGED, pager_configure, memory_stats, buffer_map_access,
 * buffer_unmap, paged_prefetch) of one backend, through its table only.
 *
 *   pager_test <backend-library> <scratch-directory>
 *
 *   * training equality: 8-bit AdamW and 32-bit Lion over several parameters whose states live in PAGED buffers
 *     under a budget that holds one parameter's states, so every step evicts and reloads every state: parameters,
 *     codes and absmax are byte-identical to the same run on plain memory; the counters show the traffic
 *   * counters: zero buffers evict without I/O, read-only maps evict clean buffers without a write-back, prefetch
 *     to device loads without pinning, prefetch to host evicts
 *   * errors: budget exceeded by mapped buffers (message names budget, request, pinned), free/prefetch of a mapped
 *     buffer, unmap without map, get_pointer while unmapped, bad config, a spill directory that vanished (I/O error,
 *     data kept), use after the context is destroyed; the spill file leaves nothing behind in the directory
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "api_check.h"
#include "bnb_test_loader.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <direct.h>
#include <windows.h>
#else
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

static char g_dir[900];

/* ─── scratch directory helpers ──────────────────────────────────────────────────────────────────────────── */

static int make_dir(const char* path) {
#if defined(_WIN32)
    return _mkdir(path) == 0 || GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
#else
    struct stat st;
    return mkdir(path, 0700) == 0 || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
#endif
}

static void remove_dir(const char* path) {
#if defined(_WIN32)
    (void)_rmdir(path);
#else
    (void)rmdir(path);
#endif
}

/* Entries of a directory other than . and .. (-1 if it cannot be read). */
static int dir_entries(const char* path) {
    int n = 0;
#if defined(_WIN32)
    char pattern[1024];
    WIN32_FIND_DATAA fd;
    snprintf(pattern, sizeof pattern, "%s\\*", path);
    HANDLE h = FindFirstFileA(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) return -1;
    do {
        if (strcmp(fd.cFileName, ".") != 0 && strcmp(fd.cFileName, "..") != 0) ++n;
    } while (FindNextFileA(h, &fd));
    FindClose(h);
#else
    DIR* d = opendir(path);
    if (d == NULL) return -1;
    struct dirent* e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++n;
    closedir(d);
#endif
    return n;
}

/* ─── small helpers ──────────────────────────────────────────────────────────────────────────────────────── */

static bnb_context* new_context(int32_t threads) {
    bnb_context_options o = {sizeof(bnb_context_options), 0, threads, BNB_NONFINITE_ERROR};
    bnb_context* ctx = NULL;
    const bnb_status st = A->context_create(&o, &ctx);
    CHECK(st == BNB_OK, "context_create: %s %s", bnbt_status_name(st), msg());
    return st == BNB_OK ? ctx : NULL;
}

static bnb_status configure(bnb_context* ctx, uint64_t budget, const char* dir) {
    bnb_pager_config c = {sizeof(bnb_pager_config), 0, budget, dir};
    return A->pager_configure(ctx, &c);
}

static bnb_memory_stats stats(bnb_context* ctx) {
    bnb_memory_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    const bnb_status st = A->memory_stats(ctx, &s);
    CHECK(st == BNB_OK, "memory_stats: %s %s", bnbt_status_name(st), msg());
    return s;
}

static void* map(bnb_buffer* b, int32_t access) {
    void* p = NULL;
    const bnb_status st = A->buffer_map_access(b, access, &p);
    CHECK(st == BNB_OK && p != NULL, "buffer_map_access: %s %s", bnbt_status_name(st), msg());
    return st == BNB_OK ? p : NULL;
}

static void unmap(bnb_buffer* b) {
    const bnb_status st = A->buffer_unmap(b);
    CHECK(st == BNB_OK, "buffer_unmap: %s %s", bnbt_status_name(st), msg());
}

static bnb_buffer* alloc_paged(bnb_context* ctx, size_t bytes) {
    bnb_buffer* b = NULL;
    const bnb_status st = A->buffer_alloc(ctx, BNB_MEMORY_PAGED, bytes, &b);
    CHECK(st == BNB_OK, "buffer_alloc(PAGED, %zu): %s %s", bytes, bnbt_status_name(st), msg());
    return b;
}

static void expect_status(const char* what, bnb_status st, bnb_status expected, const char* needle1,
                          const char* needle2) {
    CHECK(st == expected, "%s: %s, expected %s (%s)", what, bnbt_status_name(st), bnbt_status_name(expected), msg());
    if (st != BNB_OK && needle1) CHECK(strstr(msg(), needle1) != NULL, "%s: message lacks '%s': %s", what, needle1, msg());
    if (st != BNB_OK && needle2) CHECK(strstr(msg(), needle2) != NULL, "%s: message lacks '%s': %s", what, needle2, msg());
}

static uint32_t rng_state = 12345u;
static float rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* ─── training equality: paged states under a one-parameter budget vs plain memory ───────────────────────── */

#define NPARAM 5
#define NSTEP 4

/* Per parameter: p, the gradients of every step, and its states (plain copies or PAGED buffers). */
typedef struct {
    int64_t n;
    float* p;
    float* g[NSTEP];
    void* plain[4];       /* state1, state2, absmax1, absmax2 (unpaged run) */
    bnb_buffer* paged[4]; /* the same, paged */
    size_t bytes[4];
} param;

/* One optimizer step of one parameter; states from `s` (4 pointers; s[1..3] may be unused). */
static bnb_status step_param(bnb_context* ctx, int bits8, int step, param* q, void* const* s, float* p) {
    const int64_t blocks = (q->n + 255) / 256;
    bnb_optimizer_params h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    h.step = step;
    h.rounding = BNB_ROUND_NEAREST;
    h.gnorm_scale = 1.0;
    h.param_norm = -1.0;
    bnb_tensor tp = bnbt_tensor1(p, BNB_DTYPE_F32, q->n);
    bnb_tensor tg = bnbt_tensor1(q->g[step - 1], BNB_DTYPE_F32, q->n);
    if (bits8) { /* 8-bit AdamW */
        h.kind = BNB_OPTIM_ADAM;
        h.lr = 1e-3;
        h.beta1 = 0.9;
        h.beta2 = 0.999;
        h.eps = 1e-8;
        h.weight_decay = 1e-2;
        float q1[256], q2[256];
        bnb_tensor t1 = bnbt_tensor1(q1, BNB_DTYPE_F32, 256), t2 = bnbt_tensor1(q2, BNB_DTYPE_F32, 256);
        A->get_code_table(BNB_TABLE_DYNAMIC_SIGNED, &t1);
        A->get_code_table(BNB_TABLE_DYNAMIC_UNSIGNED, &t2);
        bnb_tensor s1 = bnbt_tensor1(s[0], BNB_DTYPE_U8, q->n), s2 = bnbt_tensor1(s[1], BNB_DTYPE_U8, q->n);
        bnb_tensor a1 = bnbt_tensor1(s[2], BNB_DTYPE_F32, blocks), a2 = bnbt_tensor1(s[3], BNB_DTYPE_F32, blocks);
        return A->optimizer_update_8bit_blockwise(ctx, &h, &tp, &tg, &s1, &s2, &a1, &a2, &t1, &t2);
    }
    h.kind = BNB_OPTIM_LION; /* 32-bit Lion: one state */
    h.lr = 1e-4;
    h.beta1 = 0.9;
    h.beta2 = 0.99;
    h.weight_decay = 1e-2;
    bnb_tensor s1 = bnbt_tensor1(s[0], BNB_DTYPE_F32, q->n);
    return A->optimizer_update_32bit(ctx, &h, &tp, &tg, &s1, NULL, NULL);
}

static void test_training(int bits8, int32_t threads) {
    static const int64_t sizes[NPARAM] = {70000, 65536, 4097, 100000, 256};
    const int nstate = bits8 ? 4 : 1;
    param ps[NPARAM];
    float* p_paged[NPARAM];
    uint64_t largest = 0;
    memset(ps, 0, sizeof ps);
    for (int i = 0; i < NPARAM; ++i) {
        param* q = &ps[i];
        q->n = sizes[i];
        const int64_t blocks = (q->n + 255) / 256;
        q->bytes[0] = (size_t)q->n * (bits8 ? 1 : 4);
        q->bytes[1] = (size_t)q->n;
        q->bytes[2] = q->bytes[3] = (size_t)blocks * 4;
        q->p = (float*)malloc((size_t)q->n * 4);
        p_paged[i] = (float*)malloc((size_t)q->n * 4);
        for (int64_t e = 0; e < q->n; ++e) q->p[e] = p_paged[i][e] = rnd();
        for (int s = 0; s < NSTEP; ++s) {
            q->g[s] = (float*)malloc((size_t)q->n * 4);
            for (int64_t e = 0; e < q->n; ++e) q->g[s][e] = 0.1f * rnd();
        }
        uint64_t total = 0;
        for (int k = 0; k < nstate; ++k) {
            q->plain[k] = calloc(q->bytes[k], 1);
            total += (q->bytes[k] + 63) / 64 * 64;
        }
        if (total > largest) largest = total;
    }

    /* unpaged reference run */
    bnb_context* ref = new_context(threads);
    if (!ref) return;
    for (int s = 1; s <= NSTEP; ++s)
        for (int i = 0; i < NPARAM; ++i) {
            const bnb_status st = step_param(ref, bits8, s, &ps[i], ps[i].plain, ps[i].p);
            CHECK(st == BNB_OK, "unpaged step: %s %s", bnbt_status_name(st), msg());
        }
    A->context_destroy(ref);

    /* paged run: the budget holds the largest parameter's states only */
    bnb_context* ctx = new_context(threads);
    if (!ctx) return;
    CHECK(configure(ctx, largest, g_dir) == BNB_OK, "pager_configure: %s", msg());
    for (int i = 0; i < NPARAM; ++i)
        for (int k = 0; k < nstate; ++k) ps[i].paged[k] = alloc_paged(ctx, ps[i].bytes[k]);
    int ok = 1;
    for (int s = 1; s <= NSTEP && ok; ++s)
        for (int i = 0; i < NPARAM && ok; ++i) {
            void* mapped[4] = {NULL, NULL, NULL, NULL};
            for (int k = 0; k < nstate; ++k) ok &= (mapped[k] = map(ps[i].paged[k], BNB_MAP_READ_WRITE)) != NULL;
            if (!ok) break;
            const bnb_status st = step_param(ctx, bits8, s, &ps[i], mapped, p_paged[i]);
            CHECK(st == BNB_OK, "paged step: %s %s", bnbt_status_name(st), msg());
            for (int k = 0; k < nstate; ++k) unmap(ps[i].paged[k]);
            if (i + 1 < NPARAM) /* what a paged optimizer does: load the next parameter's state ahead */
                for (int k = 0; k < nstate; ++k)
                    CHECK(A->paged_prefetch(ctx, ps[i + 1].paged[k], 0, ps[i + 1].bytes[k], BNB_PREFETCH_TO_DEVICE) ==
                              BNB_OK,
                          "paged_prefetch: %s", msg());
        }
    const bnb_memory_stats m = stats(ctx);
    for (int i = 0; i < NPARAM; ++i) {
        CHECK(memcmp(ps[i].p, p_paged[i], (size_t)ps[i].n * 4) == 0, "%s: parameter %d differs paged vs unpaged",
              bits8 ? "8-bit AdamW" : "32-bit Lion", i);
        for (int k = 0; k < nstate; ++k) {
            const void* v = map(ps[i].paged[k], BNB_MAP_READ);
            CHECK(v && memcmp(v, ps[i].plain[k], ps[i].bytes[k]) == 0, "%s: state %d of parameter %d differs",
                  bits8 ? "8-bit AdamW" : "32-bit Lion", k, i);
            unmap(ps[i].paged[k]);
        }
    }
    /* every parameter's state was evicted and reloaded on every step after the first */
    CHECK(m.budget_bytes == largest, "budget_bytes = %llu", (unsigned long long)m.budget_bytes);
    CHECK(m.peak_resident_bytes <= largest, "peak_resident %llu > budget %llu", (unsigned long long)m.peak_resident_bytes,
          (unsigned long long)largest);
    CHECK(m.evictions >= (uint64_t)(NPARAM * nstate * (NSTEP - 1)), "evictions = %llu", (unsigned long long)m.evictions);
    CHECK(m.loads >= (uint64_t)((NPARAM - 1) * nstate * (NSTEP - 1)), "loads = %llu", (unsigned long long)m.loads);
    CHECK(m.written_bytes > 0 && m.loaded_bytes > 0 && m.evicted_bytes >= m.written_bytes,
          "written %llu, loaded %llu, evicted %llu", (unsigned long long)m.written_bytes,
          (unsigned long long)m.loaded_bytes, (unsigned long long)m.evicted_bytes);
    CHECK(m.spill_file_bytes > 0 && m.pinned_bytes == 0, "spill %llu, pinned %llu",
          (unsigned long long)m.spill_file_bytes, (unsigned long long)m.pinned_bytes);
    printf("     %s, %d thread(s): %llu evictions, %llu loads, %llu B written, %llu B loaded, peak %llu of %llu B\n",
           bits8 ? "8-bit AdamW" : "32-bit Lion", (int)threads, (unsigned long long)m.evictions,
           (unsigned long long)m.loads, (unsigned long long)m.written_bytes, (unsigned long long)m.loaded_bytes,
           (unsigned long long)m.peak_resident_bytes, (unsigned long long)largest);
    for (int i = 0; i < NPARAM; ++i)
        for (int k = 0; k < nstate; ++k) CHECK(A->buffer_free(ps[i].paged[k]) == BNB_OK, "buffer_free: %s", msg());
    const bnb_memory_stats after = stats(ctx);
    CHECK(after.paged_bytes == 0 && after.resident_bytes == 0 && after.spill_file_bytes == 0,
          "after freeing everything: paged %llu, resident %llu, spill %llu", (unsigned long long)after.paged_bytes,
          (unsigned long long)after.resident_bytes, (unsigned long long)after.spill_file_bytes);
    A->context_destroy(ctx);
    CHECK(dir_entries(g_dir) == 0, "the spill directory %s is not empty after context_destroy (%d entries)", g_dir,
          dir_entries(g_dir));
    for (int i = 0; i < NPARAM; ++i) {
        free(ps[i].p);
        free(p_paged[i]);
        for (int s = 0; s < NSTEP; ++s) free(ps[i].g[s]);
        for (int k = 0; k < nstate; ++k) free(ps[i].plain[k]);
    }
}

/* ─── counters of each transition ────────────────────────────────────────────────────────────────────────── */

static void test_counters(void) {
    bnb_context* ctx = new_context(1);
    if (!ctx) return;
    CHECK(configure(ctx, 2048, g_dir) == BNB_OK, "pager_configure: %s", msg());
    bnb_buffer* a = alloc_paged(ctx, 1000); /* capacity 1024 */
    bnb_buffer* b = alloc_paged(ctx, 1024);
    bnb_buffer* c = alloc_paged(ctx, 1024);
    if (!a || !b || !c) return;
    bnb_memory_stats m = stats(ctx);
    CHECK(m.paged_bytes == 3072 && m.resident_bytes == 0, "fresh buffers: paged %llu resident %llu",
          (unsigned long long)m.paged_bytes, (unsigned long long)m.resident_bytes);

    /* a fresh buffer reads as zeros; evicting it while still zero costs no I/O */
    unsigned char* pa = (unsigned char*)map(a, BNB_MAP_READ);
    int zeros = 1;
    for (int i = 0; pa && i < 1000; ++i) zeros &= pa[i] == 0;
    CHECK(zeros, "a fresh PAGED buffer does not read as zeros");
    void* got = NULL;
    size_t bytes = 0;
    CHECK(A->buffer_get_pointer(a, &got, &bytes) == BNB_OK && got == pa && bytes == 1000,
          "buffer_get_pointer of a mapped paged buffer: %p vs %p, %zu", got, (void*)pa, bytes);
    unmap(a);
    expect_status("buffer_get_pointer(unmapped PAGED)", A->buffer_get_pointer(a, &got, &bytes),
                  BNB_ERR_INVALID_ARGUMENT, "not mapped", NULL);
    CHECK(A->paged_prefetch(ctx, a, 0, 1000, BNB_PREFETCH_TO_HOST) == BNB_OK, "prefetch to host: %s", msg());
    m = stats(ctx);
    CHECK(m.evictions == 1 && m.written_bytes == 0 && m.resident_bytes == 0 && m.spill_file_bytes == 0,
          "zero buffer eviction: evictions %llu written %llu resident %llu spill %llu",
          (unsigned long long)m.evictions, (unsigned long long)m.written_bytes, (unsigned long long)m.resident_bytes,
          (unsigned long long)m.spill_file_bytes);

    /* write a and b; mapping c evicts the least recently used (a) with a write-back */
    pa = (unsigned char*)map(a, BNB_MAP_READ_WRITE);
    for (int i = 0; pa && i < 1000; ++i) pa[i] = (unsigned char)(i * 7 + 1);
    unmap(a);
    unsigned char* pb = (unsigned char*)map(b, BNB_MAP_READ_WRITE);
    for (int i = 0; pb && i < 1024; ++i) pb[i] = (unsigned char)(i * 3 + 2);
    unmap(b);
    const bnb_memory_stats before_c = stats(ctx);
    unsigned char* pc = (unsigned char*)map(c, BNB_MAP_READ_WRITE);
    if (pc) memset(pc, 0x5A, 1024);
    unmap(c);
    m = stats(ctx);
    CHECK(m.evictions == before_c.evictions + 1 && m.written_bytes == before_c.written_bytes + 1024,
          "LRU eviction of a dirty buffer: evictions %llu -> %llu, written %llu -> %llu",
          (unsigned long long)before_c.evictions, (unsigned long long)m.evictions,
          (unsigned long long)before_c.written_bytes, (unsigned long long)m.written_bytes);
    CHECK(m.resident_bytes == 2048 && m.peak_resident_bytes == 2048, "resident %llu peak %llu",
          (unsigned long long)m.resident_bytes, (unsigned long long)m.peak_resident_bytes);

    /* prefetch a back (evicts b, the LRU), no pin; its bytes survived the round trip */
    CHECK(A->paged_prefetch(ctx, a, 0, 1000, BNB_PREFETCH_TO_DEVICE) == BNB_OK, "prefetch to device: %s", msg());
    bnb_memory_stats m2 = stats(ctx);
    CHECK(m2.loads == m.loads + 1 && m2.loaded_bytes == m.loaded_bytes + 1024 && m2.pinned_bytes == 0,
          "prefetch: loads %llu -> %llu, pinned %llu", (unsigned long long)m.loads, (unsigned long long)m2.loads,
          (unsigned long long)m2.pinned_bytes);
    pa = (unsigned char*)map(a, BNB_MAP_READ);
    int same = 1;
    for (int i = 0; pa && i < 1000; ++i) same &= pa[i] == (unsigned char)(i * 7 + 1);
    CHECK(same, "buffer a lost its bytes through the spill file");
    unmap(a);
    CHECK(stats(ctx).loads == m2.loads, "mapping a prefetched buffer loaded it again");

    /* a clean buffer (only read since its reload) is evicted without a write-back */
    const bnb_memory_stats m3 = stats(ctx);
    CHECK(A->paged_prefetch(ctx, a, 0, 0, BNB_PREFETCH_TO_HOST) == BNB_OK, "prefetch 0 bytes: %s", msg());
    CHECK(stats(ctx).evictions == m3.evictions, "a 0-byte prefetch evicted");
    CHECK(A->paged_prefetch(ctx, a, 0, 1000, BNB_PREFETCH_TO_HOST) == BNB_OK, "prefetch to host: %s", msg());
    const bnb_memory_stats m4 = stats(ctx);
    CHECK(m4.evictions == m3.evictions + 1 && m4.written_bytes == m3.written_bytes,
          "clean eviction: evictions %llu -> %llu, written %llu -> %llu", (unsigned long long)m3.evictions,
          (unsigned long long)m4.evictions, (unsigned long long)m3.written_bytes, (unsigned long long)m4.written_bytes);
    pb = (unsigned char*)map(b, BNB_MAP_READ);
    same = 1;
    for (int i = 0; pb && i < 1024; ++i) same &= pb[i] == (unsigned char)(i * 3 + 2);
    CHECK(same, "buffer b lost its bytes through the spill file");

    /* ─ errors while b is mapped ─ */
    void* p = NULL;
    expect_status("buffer_free(mapped PAGED)", A->buffer_free(b), BNB_ERR_INVALID_ARGUMENT, "mapped", "unmap");
    expect_status("paged_prefetch(TO_HOST, mapped)", A->paged_prefetch(ctx, b, 0, 1024, BNB_PREFETCH_TO_HOST),
                  BNB_ERR_INVALID_ARGUMENT, "mapped", NULL);
    CHECK(map(c, BNB_MAP_READ) != NULL, "second pin");
    /* b and c are pinned: the budget (2048) has no room for a */
    p = (void*)&p;
    expect_status("buffer_map over budget", A->buffer_map_access(a, BNB_MAP_READ, &p), BNB_ERR_OUT_OF_MEMORY,
                  "budget = 2048", "pinned) = 2048");
    CHECK(strstr(msg(), "request = 1024") != NULL, "OOM message lacks the request: %s", msg());
    CHECK(p == (void*)&p, "a failed map wrote its output");
    expect_status("paged_prefetch(TO_DEVICE) over budget", A->paged_prefetch(ctx, a, 0, 1000, BNB_PREFETCH_TO_DEVICE),
                  BNB_ERR_OUT_OF_MEMORY, "budget", NULL);
    expect_status("pager_configure(budget < pinned)", configure(ctx, 1024, g_dir), BNB_ERR_OUT_OF_MEMORY, "1024",
                  "2048");
    CHECK(stats(ctx).budget_bytes == 2048, "a refused pager_configure changed the budget");
    expect_status("pager_configure(another directory while data is spilled)", configure(ctx, 2048, NULL),
                  BNB_ERR_INVALID_ARGUMENT, "spill", NULL);
    unmap(c);
    unmap(b);
    expect_status("buffer_unmap without map", A->buffer_unmap(b), BNB_ERR_INVALID_ARGUMENT, "not mapped", NULL);
    expect_status("buffer_map_access(access = 7)", A->buffer_map_access(b, 7, &p), BNB_ERR_INVALID_ARGUMENT,
                  "access", "7");
    expect_status("buffer_map_access(NULL out)", A->buffer_map_access(b, BNB_MAP_READ, NULL), BNB_ERR_NULL_POINTER,
                  "out_host_pointer", NULL);
    expect_status("buffer_unmap(NULL)", A->buffer_unmap(NULL), BNB_ERR_NULL_POINTER, "buffer", NULL);

    /* a budget shrink evicts down to it */
    CHECK(configure(ctx, 1024, g_dir) == BNB_OK, "shrinking the budget: %s", msg());
    m = stats(ctx);
    CHECK(m.resident_bytes <= 1024 && m.budget_bytes == 1024, "after shrinking: resident %llu",
          (unsigned long long)m.resident_bytes);

    /* ─ bad configuration ─ */
    bnb_pager_config bad = {8, 0, 0, NULL};
    expect_status("pager_configure(struct_size 8)", A->pager_configure(ctx, &bad), BNB_ERR_INVALID_ARGUMENT,
                  "struct_size", NULL);
    bad.struct_size = sizeof bad;
    bad.reserved = 3;
    expect_status("pager_configure(reserved 3)", A->pager_configure(ctx, &bad), BNB_ERR_INVALID_ARGUMENT, "reserved",
                  NULL);
    char missing[1000];
    snprintf(missing, sizeof missing, "%s/no-such-dir", g_dir);
    expect_status("pager_configure(missing directory)", configure(ctx, 1024, missing), BNB_ERR_INVALID_ARGUMENT,
                  "no-such-dir", "not an existing directory");
    bnb_memory_stats small;
    memset(&small, 0, sizeof small);
    small.struct_size = 16;
    expect_status("memory_stats(struct_size 16)", A->memory_stats(ctx, &small), BNB_ERR_INVALID_ARGUMENT,
                  "struct_size", NULL);
    expect_status("memory_stats(NULL)", A->memory_stats(ctx, NULL), BNB_ERR_NULL_POINTER, "out", NULL);
    expect_status("memory_stats(NULL context)", A->memory_stats(NULL, &small), BNB_ERR_NULL_POINTER, "context", NULL);

    /* ─ non-paged buffers: map/unmap are counted, nothing else ─ */
    bnb_buffer* d = NULL;
    CHECK(A->buffer_alloc(ctx, BNB_MEMORY_DEVICE, 64, &d) == BNB_OK, "buffer_alloc(DEVICE): %s", msg());
    if (d) {
        expect_status("buffer_unmap(DEVICE, never mapped)", A->buffer_unmap(d), BNB_ERR_INVALID_ARGUMENT, "not mapped",
                      NULL);
        CHECK(map(d, BNB_MAP_READ) != NULL, "map DEVICE");
        unmap(d);
        CHECK(A->buffer_free(d) == BNB_OK, "buffer_free(DEVICE): %s", msg());
    }

    /* ─ the context goes while buffers live: they can only be unmapped and freed ─ */
    CHECK(map(b, BNB_MAP_READ_WRITE) != NULL, "map before destroy");
    A->context_destroy(ctx);
    expect_status("buffer_map after context_destroy", A->buffer_map_access(a, BNB_MAP_READ, &p),
                  BNB_ERR_INVALID_ARGUMENT, "context was destroyed", NULL);
    expect_status("buffer_free(mapped orphan)", A->buffer_free(b), BNB_ERR_INVALID_ARGUMENT, "mapped", NULL);
    unmap(b);
    CHECK(A->buffer_free(a) == BNB_OK && A->buffer_free(b) == BNB_OK && A->buffer_free(c) == BNB_OK,
          "freeing orphans: %s", msg());
    CHECK(dir_entries(g_dir) == 0, "the spill directory is not empty after context_destroy");
}

/* ─── I/O failure: the spill directory disappears before the first write-back ───────────────────────────── */

static void test_io_failure(void) {
    char sub[1000];
    snprintf(sub, sizeof sub, "%s/vanishing", g_dir);
    CHECK(make_dir(sub), "mkdir %s", sub);
    bnb_context* ctx = new_context(1);
    if (!ctx) return;
    CHECK(configure(ctx, 1024, sub) == BNB_OK, "pager_configure: %s", msg());
    bnb_buffer* a = alloc_paged(ctx, 1024);
    bnb_buffer* b = alloc_paged(ctx, 1024);
    unsigned char* pa = (unsigned char*)map(a, BNB_MAP_READ_WRITE);
    for (int i = 0; pa && i < 1024; ++i) pa[i] = (unsigned char)(255 - i);
    unmap(a);
    remove_dir(sub); /* the spill file cannot be created now */
    void* p = NULL;
    expect_status("buffer_map needing a write-back into a missing directory", A->buffer_map_access(b, BNB_MAP_READ, &p),
                  BNB_ERR_IO, "vanishing", "spill file");
    const bnb_memory_stats m = stats(ctx);
    CHECK(m.resident_bytes == 1024 && m.evictions == 0 && m.written_bytes == 0,
          "after the failed write-back: resident %llu evictions %llu", (unsigned long long)m.resident_bytes,
          (unsigned long long)m.evictions);
    pa = (unsigned char*)map(a, BNB_MAP_READ);
    int same = 1;
    for (int i = 0; pa && i < 1024; ++i) same &= pa[i] == (unsigned char)(255 - i);
    CHECK(same, "the buffer whose write-back failed lost data");
    unmap(a);
    /* the directory comes back: paging resumes */
    CHECK(make_dir(sub), "mkdir %s", sub);
    CHECK(map(b, BNB_MAP_READ) != NULL, "map after the directory came back: %s", msg());
    unmap(b);
    CHECK(stats(ctx).written_bytes == 1024, "write-back after recovery");
    pa = (unsigned char*)map(a, BNB_MAP_READ);
    same = 1;
    for (int i = 0; pa && i < 1024; ++i) same &= pa[i] == (unsigned char)(255 - i);
    CHECK(same, "buffer a differs after its spill round trip");
    unmap(a);
    A->buffer_free(a);
    A->buffer_free(b);
    A->context_destroy(ctx);
    CHECK(dir_entries(sub) == 0, "%s is not empty after context_destroy", sub);
    remove_dir(sub);
}

/* Without pager_configure the budget is unlimited: paged buffers never leave memory unless prefetched to host. */
static void test_unlimited(void) {
    bnb_context* ctx = new_context(1);
    if (!ctx) return;
    bnb_buffer* bufs[8];
    for (int i = 0; i < 8; ++i) {
        bufs[i] = alloc_paged(ctx, 4096);
        unsigned char* p = bufs[i] ? (unsigned char*)map(bufs[i], BNB_MAP_READ_WRITE) : NULL;
        if (p) memset(p, i + 1, 4096);
        if (bufs[i]) unmap(bufs[i]);
    }
    bnb_memory_stats m = stats(ctx);
    CHECK(m.budget_bytes == 0 && m.resident_bytes == 8 * 4096 && m.evictions == 0,
          "unlimited: budget %llu resident %llu evictions %llu", (unsigned long long)m.budget_bytes,
          (unsigned long long)m.resident_bytes, (unsigned long long)m.evictions);
    for (int i = 0; i < 8; ++i)
        if (bufs[i]) CHECK(A->buffer_free(bufs[i]) == BNB_OK, "free: %s", msg());
    A->context_destroy(ctx);
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <backend-library> <scratch-directory>\n", argv[0]);
        return 2;
    }
    bnbt_backend b;
    if (!bnbt_load(argv[1], &b)) {
        printf("cannot load %s\n", argv[1]);
        return 1;
    }
    A = b.api;
    g_backend = argv[1];
    if (b.probe() == 0) {
        printf("SKIPPED: %s lacks the instruction set of this CPU\n", argv[1]);
        return 77;
    }
    bnb_backend_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    A->backend_get_info(&info);
    if (!(info.ops & (1ull << BNB_OP_PAGER))) {
        printf("SKIPPED: %s does not implement the pager (ops bit PAGER clear)\n", argv[1]);
        return 77;
    }
    snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
    CHECK(make_dir(g_dir), "cannot create the scratch directory %s", g_dir);
    CHECK(dir_entries(g_dir) == 0, "the scratch directory %s is not empty", g_dir);
    test_unlimited();
    test_counters();
    test_io_failure();
    test_training(1, 1);
    test_training(0, 1);
    test_training(1, 3);
    remove_dir(g_dir);
    return bnbt_finish();
}
