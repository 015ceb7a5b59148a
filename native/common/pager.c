/* The paging allocator (see pager.h for the model, docs/memory.md for the contract). Portable C11: POSIX file
 * descriptors on Linux/macOS, Win32 handles on Windows. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* posix_memalign, mkstemp, pread, pwrite, strerror_r (XSI form) */
#endif

#include "pager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <malloc.h>
#include <windows.h>
typedef SRWLOCK pager_mutex;
#define pager_mutex_init(m) InitializeSRWLock(m)
#define pager_mutex_destroy(m) ((void)(m))
#define pager_lock(m) AcquireSRWLockExclusive(m)
#define pager_unlock(m) ReleaseSRWLockExclusive(m)
#else
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
typedef pthread_mutex_t pager_mutex;
#define pager_mutex_init(m) pthread_mutex_init((m), NULL)
#define pager_mutex_destroy(m) pthread_mutex_destroy(m)
#define pager_lock(m) pthread_mutex_lock(m)
#define pager_unlock(m) pthread_mutex_unlock(m)
#endif

#define SPILL_PATH_MAX 1024
#define IO_CHUNK ((size_t)1 << 30) /* largest single read/write call */

typedef struct {
    uint64_t offset;
    uint64_t size;
} spill_range;

typedef struct {
    void* data;
    uint64_t capacity;
} spare_block;

struct bnb_paged_block {
    bnb_pager* pager;   /* NULL once the pager was destroyed (orphan) */
    size_t bytes;
    uint64_t capacity;  /* bytes rounded up to BNB_PAGER_ALIGN: what the budget counts */
    void* data;         /* resident memory, or NULL */
    int32_t pins;       /* open maps */
    int zero;           /* content is all zeros and has never been written anywhere */
    int dirty;          /* resident content is newer than the spill copy */
    int64_t spill_offset; /* slot in the spill file, -1 = none yet */
    bnb_paged_block* all_prev;
    bnb_paged_block* all_next;
    bnb_paged_block* lru_prev; /* resident blocks: head = most recently used */
    bnb_paged_block* lru_next;
};

struct bnb_pager {
    pager_mutex lock;
    uint64_t budget; /* 0 = unlimited */
    char* spill_dir; /* NULL = system temp directory */
#if defined(_WIN32)
    HANDLE file;
#else
    int fd;
#endif
    int file_open;
    char spill_path[SPILL_PATH_MAX];
    uint64_t file_end; /* bytes of the file in use (slots handed out) */
    spill_range* free_ranges;
    size_t free_count, free_cap;
    spare_block* spares;
    size_t spare_count, spare_cap;
    uint64_t spare_bytes;
    bnb_paged_block* all;
    bnb_paged_block* lru_head;
    bnb_paged_block* lru_tail;
    /* counters (bnb_memory_stats) */
    uint64_t paged, resident, pinned, peak, evicted, written, loaded, evictions, loads;
};

/* ─── memory ─────────────────────────────────────────────────────────────────────────────────────────────── */

static void* aligned_alloc_bytes(uint64_t bytes) {
    if (bytes > (uint64_t)SIZE_MAX) return NULL;
#if defined(_WIN32)
    return _aligned_malloc((size_t)bytes, BNB_PAGER_ALIGN);
#else
    void* p = NULL;
    return posix_memalign(&p, BNB_PAGER_ALIGN, (size_t)bytes) == 0 ? p : NULL;
#endif
}

static void aligned_free_bytes(void* p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

static int grow(void** items, size_t* cap, size_t count, size_t item_size) {
    if (count < *cap) return 1;
    const size_t next = *cap ? *cap * 2 : 16;
    void* p = realloc(*items, next * item_size);
    if (p == NULL) return 0;
    *items = p;
    *cap = next;
    return 1;
}

/* ─── OS file layer ──────────────────────────────────────────────────────────────────────────────────────── */

static void os_error_text(char* dst, size_t capacity, int posix_errno) {
#if defined(_WIN32)
    (void)posix_errno;
    const DWORD code = GetLastError();
    const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, dst,
                                   (DWORD)capacity, NULL);
    if (n == 0) snprintf(dst, capacity, "Windows error %lu", (unsigned long)code);
    for (size_t i = strlen(dst); i > 0 && (dst[i - 1] == '\n' || dst[i - 1] == '\r' || dst[i - 1] == '.'); --i)
        dst[i - 1] = '\0';
#else
    if (strerror_r(posix_errno, dst, capacity) != 0) snprintf(dst, capacity, "errno %d", posix_errno);
#endif
}

#if defined(_WIN32)
static wchar_t* utf8_to_wide(const char* s) {
    const int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    if (n <= 0) return NULL;
    wchar_t* w = (wchar_t*)malloc((size_t)n * sizeof(wchar_t));
    if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0) {
        free(w);
        return NULL;
    }
    return w;
}
#endif

/* The directory the spill file goes to, as UTF-8 (no trailing separator needed). */
static void default_spill_dir(char* dst, size_t capacity) {
#if defined(_WIN32)
    wchar_t w[MAX_PATH + 1];
    const DWORD n = GetTempPathW(MAX_PATH + 1, w);
    if (n == 0 || n > MAX_PATH || WideCharToMultiByte(CP_UTF8, 0, w, -1, dst, (int)capacity, NULL, NULL) <= 0)
        snprintf(dst, capacity, "%s", ".");
#else
    const char* t = getenv("TMPDIR");
    snprintf(dst, capacity, "%s", (t != NULL && t[0] != '\0') ? t : "/tmp");
#endif
}

static int is_directory(const char* path) {
#if defined(_WIN32)
    wchar_t* w = utf8_to_wide(path);
    if (w == NULL) return 0;
    const DWORD a = GetFileAttributesW(w);
    free(w);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY) != 0;
#else
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#endif
}

/* Creates the spill file in the configured directory. POSIX: unlinked right away, so nothing is left behind even
 * if the process dies; Windows: FILE_FLAG_DELETE_ON_CLOSE does the same. */
static bnb_status spill_open(bnb_pager* p, const char* op) {
    if (p->file_open) return BNB_OK;
    char dir[SPILL_PATH_MAX - 64];
    if (p->spill_dir != NULL)
        snprintf(dir, sizeof dir, "%s", p->spill_dir);
    else
        default_spill_dir(dir, sizeof dir);
    const size_t len = strlen(dir);
    const char* sep = (len > 0 && (dir[len - 1] == '/' || dir[len - 1] == '\\')) ? "" : "/";
    char err[256];
#if defined(_WIN32)
    static volatile LONG counter = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
        snprintf(p->spill_path, sizeof p->spill_path, "%s%sbnb-spill-%lu-%lu-%ld.tmp", dir, sep,
                 (unsigned long)GetCurrentProcessId(), (unsigned long)GetTickCount(),
                 (long)InterlockedIncrement(&counter));
        wchar_t* w = utf8_to_wide(p->spill_path);
        if (w == NULL) break;
        p->file = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_NEW,
                              FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
        free(w);
        if (p->file != INVALID_HANDLE_VALUE) {
            p->file_open = 1;
            return BNB_OK;
        }
        if (GetLastError() != ERROR_FILE_EXISTS) break;
    }
    os_error_text(err, sizeof err, 0);
#else
    snprintf(p->spill_path, sizeof p->spill_path, "%s%sbnb-spill-XXXXXX", dir, sep);
    const int fd = mkstemp(p->spill_path);
    if (fd >= 0) {
        (void)unlink(p->spill_path);
        p->fd = fd;
        p->file_open = 1;
        return BNB_OK;
    }
    os_error_text(err, sizeof err, errno);
#endif
    return bnb_fail(BNB_ERR_IO, op, "cannot create the paging spill file in '%s': %s (pager_configure sets "
                    "spill_directory); the data stays in memory", dir, err);
}

static void spill_close(bnb_pager* p) {
    if (!p->file_open) return;
#if defined(_WIN32)
    CloseHandle(p->file);
#else
    close(p->fd);
#endif
    p->file_open = 0;
    p->file_end = 0;
    p->free_count = 0;
}

/* Positioned write / read of the whole range (loops over short transfers and chunks). */
static bnb_status spill_io(bnb_pager* p, const char* op, int write, uint64_t offset, void* data, size_t bytes) {
    char* c = (char*)data;
    size_t done = 0;
    char err[256];
    while (done < bytes) {
        const size_t want = bytes - done < IO_CHUNK ? bytes - done : IO_CHUNK;
        const uint64_t at = offset + done;
#if defined(_WIN32)
        OVERLAPPED ov;
        memset(&ov, 0, sizeof ov);
        ov.Offset = (DWORD)(at & 0xFFFFFFFFu);
        ov.OffsetHigh = (DWORD)(at >> 32);
        DWORD moved = 0;
        const BOOL ok = write ? WriteFile(p->file, c + done, (DWORD)want, &moved, &ov)
                              : ReadFile(p->file, c + done, (DWORD)want, &moved, &ov);
        if (!ok || moved == 0) {
            if (ok) SetLastError(write ? ERROR_DISK_FULL : ERROR_HANDLE_EOF);
            os_error_text(err, sizeof err, 0);
            break;
        }
        done += moved;
#else
        const ssize_t moved = write ? pwrite(p->fd, c + done, want, (off_t)at) : pread(p->fd, c + done, want, (off_t)at);
        if (moved < 0 && errno == EINTR) continue;
        if (moved <= 0) {
            os_error_text(err, sizeof err, moved == 0 ? (write ? ENOSPC : EIO) : errno);
            break;
        }
        done += (size_t)moved;
#endif
    }
    if (done == bytes) return BNB_OK;
    return bnb_fail(BNB_ERR_IO, op, "%s %zu bytes at offset %llu of the spill file '%s' failed: %s%s",
                    write ? "writing" : "reading", bytes, (unsigned long long)offset, p->spill_path, err,
                    write ? " (the data stays in memory)" : "");
}

/* ─── spill slots, spares, LRU ───────────────────────────────────────────────────────────────────────────── */

/* A slot of b->capacity bytes: first fit among freed slots (the remainder stays free), else the end of the file. */
static int spill_slot(bnb_pager* p, bnb_paged_block* b) {
    if (b->spill_offset >= 0) return 1;
    for (size_t i = 0; i < p->free_count; ++i) {
        spill_range* r = &p->free_ranges[i];
        if (r->size >= b->capacity) {
            b->spill_offset = (int64_t)r->offset;
            r->offset += b->capacity;
            r->size -= b->capacity;
            if (r->size == 0) p->free_ranges[i] = p->free_ranges[--p->free_count];
            return 1;
        }
    }
    b->spill_offset = (int64_t)p->file_end;
    p->file_end += b->capacity;
    return 1;
}

static void spill_release(bnb_pager* p, bnb_paged_block* b) {
    if (b->spill_offset < 0) return;
    const uint64_t off = (uint64_t)b->spill_offset;
    b->spill_offset = -1;
    if (off + b->capacity == p->file_end) {
        p->file_end = off; /* the last slot: the file's used part shrinks, and with it any free tail */
        for (size_t i = 0; i < p->free_count;) {
            if (p->free_ranges[i].offset + p->free_ranges[i].size == p->file_end) {
                p->file_end = p->free_ranges[i].offset;
                p->free_ranges[i] = p->free_ranges[--p->free_count];
                i = 0;
            } else {
                ++i;
            }
        }
        if (p->file_end == 0) spill_close(p); /* nothing spilled any more: give the disk space back */
        return;
    }
    if (grow((void**)&p->free_ranges, &p->free_cap, p->free_count, sizeof(spill_range)))
        p->free_ranges[p->free_count++] = (spill_range){off, b->capacity};
    /* else: the slot is leaked inside the file until the pager goes; never a correctness problem */
}

static void lru_remove(bnb_pager* p, bnb_paged_block* b) {
    if (b->lru_prev) b->lru_prev->lru_next = b->lru_next; else p->lru_head = b->lru_next;
    if (b->lru_next) b->lru_next->lru_prev = b->lru_prev; else p->lru_tail = b->lru_prev;
    b->lru_prev = b->lru_next = NULL;
}

static void lru_push_front(bnb_pager* p, bnb_paged_block* b) {
    b->lru_prev = NULL;
    b->lru_next = p->lru_head;
    if (p->lru_head) p->lru_head->lru_prev = b; else p->lru_tail = b;
    p->lru_head = b;
}

static void lru_touch(bnb_pager* p, bnb_paged_block* b) {
    if (p->lru_head == b) return;
    lru_remove(p, b);
    lru_push_front(p, b);
}

/* Gives fast memory back: kept as a spare under a budget (reused by the next block of that size), else freed. */
static void release_memory(bnb_pager* p, void* data, uint64_t capacity) {
    if (p->budget != 0 && grow((void**)&p->spares, &p->spare_cap, p->spare_count, sizeof(spare_block))) {
        p->spares[p->spare_count++] = (spare_block){data, capacity};
        p->spare_bytes += capacity;
        return;
    }
    aligned_free_bytes(data);
}

static void drop_spare(bnb_pager* p, size_t i) {
    aligned_free_bytes(p->spares[i].data);
    p->spare_bytes -= p->spares[i].capacity;
    p->spares[i] = p->spares[--p->spare_count];
}

/* Moves a resident, unpinned block out of fast memory, writing it to the spill first when the spill copy is stale.
 * On an I/O failure the block stays resident and untouched. */
static bnb_status evict(bnb_pager* p, bnb_paged_block* b, const char* op) {
    if (b->dirty && !b->zero) {
        BNB_TRY(spill_open(p, op));
        spill_slot(p, b);
        BNB_TRY(spill_io(p, op, 1, (uint64_t)b->spill_offset, b->data, b->bytes));
        p->written += b->capacity;
        b->dirty = 0;
    }
    lru_remove(p, b);
    release_memory(p, b->data, b->capacity);
    b->data = NULL;
    p->resident -= b->capacity;
    p->evicted += b->capacity;
    p->evictions += 1;
    return BNB_OK;
}

static bnb_paged_block* lru_victim(bnb_pager* p) {
    for (bnb_paged_block* b = p->lru_tail; b != NULL; b = b->lru_prev)
        if (b->pins == 0) return b;
    return NULL;
}

static bnb_status fail_budget(const char* op, const bnb_pager* p, uint64_t request) {
    return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op,
                    "paging budget = %llu bytes cannot hold this buffer: request = %llu bytes, already mapped "
                    "(pinned) = %llu bytes; unmap buffers or raise the budget (pager_configure)",
                    (unsigned long long)p->budget, (unsigned long long)request, (unsigned long long)p->pinned);
}

/* capacity bytes of fast memory within the budget: an equal spare, else fresh memory after dropping spares and
 * evicting LRU unpinned blocks as needed. The caller checked pinned + capacity <= budget. */
static bnb_status acquire_memory(bnb_pager* p, const char* op, uint64_t capacity, void** out) {
    for (;;) {
        for (size_t i = 0; i < p->spare_count; ++i) {
            if (p->spares[i].capacity == capacity) {
                *out = p->spares[i].data;
                p->spare_bytes -= capacity;
                p->spares[i] = p->spares[--p->spare_count];
                return BNB_OK;
            }
        }
        if (p->budget == 0 || p->resident + p->spare_bytes + capacity <= p->budget) {
            void* data = aligned_alloc_bytes(capacity);
            if (data == NULL && p->spare_count > 0) {
                while (p->spare_count > 0) drop_spare(p, 0);
                data = aligned_alloc_bytes(capacity);
            }
            if (data == NULL)
                return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate %llu bytes of host memory",
                                (unsigned long long)capacity);
            *out = data;
            return BNB_OK;
        }
        if (p->spare_count > 0) {
            drop_spare(p, p->spare_count - 1);
            continue;
        }
        bnb_paged_block* victim = lru_victim(p);
        if (victim == NULL) return fail_budget(op, p, capacity);
        BNB_TRY(evict(p, victim, op));
    }
}

static bnb_status make_resident(bnb_pager* p, bnb_paged_block* b, const char* op) {
    if (b->data != NULL) {
        lru_touch(p, b);
        return BNB_OK;
    }
    if (p->budget != 0 && p->pinned + b->capacity > p->budget) return fail_budget(op, p, b->capacity);
    void* data = NULL;
    BNB_TRY(acquire_memory(p, op, b->capacity, &data));
    if (b->zero) {
        memset(data, 0, b->bytes);
    } else {
        const bnb_status s = spill_io(p, op, 0, (uint64_t)b->spill_offset, data, b->bytes);
        if (s != BNB_OK) {
            release_memory(p, data, b->capacity);
            return s;
        }
        p->loaded += b->capacity;
        p->loads += 1;
    }
    b->data = data;
    b->dirty = 0;
    p->resident += b->capacity;
    if (p->resident > p->peak) p->peak = p->resident;
    lru_push_front(p, b);
    return BNB_OK;
}

/* ─── public entry points ────────────────────────────────────────────────────────────────────────────────── */

bnb_status bnb_pager_create(const char* op, bnb_pager** out_pager) {
    bnb_pager* p = (bnb_pager*)calloc(1, sizeof *p);
    if (p == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate the paging allocator");
    pager_mutex_init(&p->lock);
#if defined(_WIN32)
    p->file = INVALID_HANDLE_VALUE;
#else
    p->fd = -1;
#endif
    *out_pager = p;
    return BNB_OK;
}

void bnb_pager_destroy(bnb_pager* p) {
    if (p == NULL) return;
    pager_lock(&p->lock);
    for (bnb_paged_block* b = p->all; b != NULL;) {
        bnb_paged_block* next = b->all_next;
        b->pager = NULL;
        b->all_prev = b->all_next = b->lru_prev = b->lru_next = NULL;
        if (b->pins == 0 && b->data != NULL) {
            aligned_free_bytes(b->data); /* a mapped block keeps its memory until unmap + free */
            b->data = NULL;
        }
        b = next;
    }
    while (p->spare_count > 0) drop_spare(p, 0);
    spill_close(p);
    pager_unlock(&p->lock);
    pager_mutex_destroy(&p->lock);
    free(p->spares);
    free(p->free_ranges);
    free(p->spill_dir);
    free(p);
}

bnb_status bnb_pager_configure(bnb_pager* p, const char* op, const bnb_pager_config* config) {
    bnb_pager_config c = {0};
    if (config != NULL) {
        if (config->struct_size < sizeof(bnb_pager_config))
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.struct_size = %u is smaller than ABI 1's %u",
                            (unsigned)config->struct_size, (unsigned)sizeof(bnb_pager_config));
        if (config->reserved != 0)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.reserved = %u must be 0", (unsigned)config->reserved);
        c = *config;
    }
    const char* dir = (c.spill_directory != NULL && c.spill_directory[0] != '\0') ? c.spill_directory : NULL;
    if (dir != NULL && strlen(dir) > SPILL_PATH_MAX - 80)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.spill_directory is %zu bytes long (at most %d)",
                        strlen(dir), SPILL_PATH_MAX - 80);
    if (dir != NULL && !is_directory(dir))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "config.spill_directory = '%s' is not an existing directory",
                        dir);
    pager_lock(&p->lock);
    bnb_status status = BNB_OK;
    const int same_dir = (dir == NULL && p->spill_dir == NULL) ||
                         (dir != NULL && p->spill_dir != NULL && strcmp(dir, p->spill_dir) == 0);
    char* dir_copy = NULL;
    if (!same_dir) {
        int spilled = 0;
        for (bnb_paged_block* b = p->all; b != NULL; b = b->all_next) spilled |= b->spill_offset >= 0;
        if (spilled) {
            status = bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                              "config.spill_directory = '%s': the spill file in '%s' still holds buffer data; change "
                              "the directory before anything is evicted", dir ? dir : "(temp)", p->spill_path);
        } else if (dir != NULL && (dir_copy = (char*)malloc(strlen(dir) + 1)) == NULL) {
            status = bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot copy config.spill_directory");
        } else if (dir != NULL) {
            memcpy(dir_copy, dir, strlen(dir) + 1);
        }
    }
    if (status == BNB_OK && c.budget_bytes != 0 && p->pinned > c.budget_bytes)
        status = bnb_fail(BNB_ERR_OUT_OF_MEMORY, op,
                          "config.budget_bytes = %llu is smaller than the mapped (pinned) buffers' %llu bytes; unmap "
                          "them first", (unsigned long long)c.budget_bytes, (unsigned long long)p->pinned);
    if (status == BNB_OK && c.budget_bytes != 0) {
        /* shrink: spares go first, then LRU unpinned blocks; a write-back failure leaves the old budget */
        while (p->spare_count > 0 && p->resident + p->spare_bytes > c.budget_bytes) drop_spare(p, p->spare_count - 1);
        while (status == BNB_OK && p->resident > c.budget_bytes) {
            bnb_paged_block* victim = lru_victim(p);
            status = victim ? evict(p, victim, op) : fail_budget(op, p, 0);
            while (p->spare_count > 0 && p->resident + p->spare_bytes > c.budget_bytes)
                drop_spare(p, p->spare_count - 1);
        }
    }
    if (status == BNB_OK) {
        p->budget = c.budget_bytes;
        if (c.budget_bytes == 0)
            while (p->spare_count > 0) drop_spare(p, 0);
        if (!same_dir) {
            spill_close(p);
            free(p->spill_dir);
            p->spill_dir = dir_copy;
        }
    } else {
        free(dir_copy);
    }
    pager_unlock(&p->lock);
    return status;
}

bnb_status bnb_pager_stats(bnb_pager* p, const char* op, bnb_memory_stats* out) {
    if (out->struct_size < sizeof(bnb_memory_stats))
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "out.struct_size = %u is smaller than ABI 1's %u",
                        (unsigned)out->struct_size, (unsigned)sizeof(bnb_memory_stats));
    bnb_memory_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = (uint32_t)sizeof s;
    pager_lock(&p->lock);
    s.budget_bytes = p->budget;
    s.paged_bytes = p->paged;
    s.resident_bytes = p->resident;
    s.pinned_bytes = p->pinned;
    s.peak_resident_bytes = p->peak;
    s.evicted_bytes = p->evicted;
    s.written_bytes = p->written;
    s.loaded_bytes = p->loaded;
    s.evictions = p->evictions;
    s.loads = p->loads;
    s.spill_file_bytes = p->file_end;
    pager_unlock(&p->lock);
    memcpy(out, &s, sizeof s); /* callers with a larger struct keep their extra fields */
    return BNB_OK;
}

bnb_status bnb_pager_alloc(bnb_pager* p, const char* op, size_t bytes, bnb_paged_block** out_block) {
    const uint64_t capacity = ((uint64_t)bytes + BNB_PAGER_ALIGN - 1) / BNB_PAGER_ALIGN * BNB_PAGER_ALIGN;
    if (bytes == 0 || capacity < bytes || capacity > (uint64_t)INT64_MAX)
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "bytes = %zu cannot be paged", bytes);
    bnb_paged_block* b = (bnb_paged_block*)calloc(1, sizeof *b);
    if (b == NULL) return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a paged buffer record");
    b->pager = p;
    b->bytes = bytes;
    b->capacity = capacity;
    b->zero = 1;
    b->spill_offset = -1;
    pager_lock(&p->lock);
    b->all_next = p->all;
    if (p->all) p->all->all_prev = b;
    p->all = b;
    p->paged += capacity;
    pager_unlock(&p->lock);
    *out_block = b;
    return BNB_OK;
}

static bnb_status fail_orphan(const char* op) {
    return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                    "buffer is a paged buffer whose context was destroyed: only buffer_unmap and buffer_free remain");
}

bnb_status bnb_pager_free(bnb_paged_block* b, const char* op) {
    if (b == NULL) return BNB_OK;
    bnb_pager* p = b->pager;
    if (p == NULL) {
        if (b->pins > 0)
            return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped (%d open map(s)): unmap it before freeing",
                            (int)b->pins);
        if (b->data) aligned_free_bytes(b->data);
        free(b);
        return BNB_OK;
    }
    pager_lock(&p->lock);
    if (b->pins > 0) {
        pager_unlock(&p->lock);
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped (%d open map(s)): unmap it before freeing",
                        (int)b->pins);
    }
    if (b->data != NULL) {
        lru_remove(p, b);
        p->resident -= b->capacity;
        release_memory(p, b->data, b->capacity);
    }
    spill_release(p, b);
    if (b->all_prev) b->all_prev->all_next = b->all_next; else p->all = b->all_next;
    if (b->all_next) b->all_next->all_prev = b->all_prev;
    p->paged -= b->capacity;
    pager_unlock(&p->lock);
    free(b);
    return BNB_OK;
}

bnb_status bnb_pager_map(bnb_paged_block* b, const char* op, int32_t access, void** out_pointer) {
    if (access != BNB_MAP_READ_WRITE && access != BNB_MAP_READ)
        return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "access = %d is not a BNB_MAP_* value (0, 1)", (int)access);
    bnb_pager* p = b->pager;
    if (p == NULL) return fail_orphan(op);
    pager_lock(&p->lock);
    bnb_status status = BNB_OK;
    if (b->pins == INT32_MAX) status = bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is mapped 2^31-1 times");
    if (status == BNB_OK) status = make_resident(p, b, op);
    if (status == BNB_OK) {
        if (b->pins++ == 0) p->pinned += b->capacity;
        if (access == BNB_MAP_READ_WRITE) {
            b->zero = 0;
            b->dirty = 1;
        }
        *out_pointer = b->data;
    }
    pager_unlock(&p->lock);
    return status;
}

bnb_status bnb_pager_unmap(bnb_paged_block* b, const char* op) {
    bnb_pager* p = b->pager;
    if (p != NULL) pager_lock(&p->lock);
    bnb_status status = BNB_OK;
    if (b->pins == 0)
        status = bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "buffer is not mapped (buffer_unmap without buffer_map)");
    else if (--b->pins == 0 && p != NULL)
        p->pinned -= b->capacity;
    if (p != NULL) pager_unlock(&p->lock);
    return status;
}

bnb_status bnb_pager_prefetch(bnb_paged_block* b, const char* op, int32_t target) {
    bnb_pager* p = b->pager;
    if (p == NULL) return fail_orphan(op);
    pager_lock(&p->lock);
    bnb_status status = BNB_OK;
    if (target == BNB_PREFETCH_TO_DEVICE) {
        status = make_resident(p, b, op);
    } else if (b->pins > 0) {
        status = bnb_fail(BNB_ERR_INVALID_ARGUMENT, op,
                          "target = TO_HOST: buffer is mapped (%d open map(s)) and cannot leave fast memory",
                          (int)b->pins);
    } else if (b->data != NULL) {
        status = evict(p, b, op);
    }
    pager_unlock(&p->lock);
    return status;
}

void* bnb_pager_mapped_pointer(bnb_paged_block* b, size_t* out_bytes) {
    if (out_bytes) *out_bytes = b->bytes;
    return b->pins > 0 ? b->data : NULL;
}
