/* The persistent worker pool of a CPU context (see thread_pool.h for the contract).
 *
 * One job at a time: bnb_parallel_for publishes (fn, arg, n_tasks) under the lock, bumps `generation` and wakes
 * the workers; everybody — the caller included — claims task indices from an atomic counter until they run out;
 * the last worker to finish signals the caller. Workers sleep on a condition variable between jobs, so an idle
 * context costs no CPU. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "thread_pool.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(_WIN32)
#include <windows.h>
typedef HANDLE bnb_thread;
typedef SRWLOCK bnb_mutex;
typedef CONDITION_VARIABLE bnb_cond;
#define mutex_init(m) InitializeSRWLock(m)
#define mutex_destroy(m) ((void)(m))
#define mutex_lock(m) AcquireSRWLockExclusive(m)
#define mutex_unlock(m) ReleaseSRWLockExclusive(m)
#define cond_init(c) InitializeConditionVariable(c)
#define cond_destroy(c) ((void)(c))
#define cond_wait(c, m) SleepConditionVariableSRW((c), (m), INFINITE, 0)
#define cond_broadcast(c) WakeAllConditionVariable(c)
#define cond_signal(c) WakeConditionVariable(c)
#else
#include <pthread.h>
#include <unistd.h>
typedef pthread_t bnb_thread;
typedef pthread_mutex_t bnb_mutex;
typedef pthread_cond_t bnb_cond;
#define mutex_init(m) pthread_mutex_init((m), NULL)
#define mutex_destroy(m) pthread_mutex_destroy(m)
#define mutex_lock(m) pthread_mutex_lock(m)
#define mutex_unlock(m) pthread_mutex_unlock(m)
#define cond_init(c) pthread_cond_init((c), NULL)
#define cond_destroy(c) pthread_cond_destroy(c)
#define cond_wait(c, m) pthread_cond_wait((c), (m))
#define cond_broadcast(c) pthread_cond_broadcast(c)
#define cond_signal(c) pthread_cond_signal(c)
#endif

struct bnb_thread_pool {
    int32_t size;            /* threads including the caller */
    int32_t started;         /* workers actually started (size - 1 unless creation failed midway) */
    bnb_thread* workers;
    bnb_mutex lock;
    bnb_cond wake;           /* a new job or shutdown */
    bnb_cond done;           /* the last worker left the current job */
    uint64_t generation;     /* bumped for every job; workers compare it with the last one they ran */
    int32_t busy;            /* workers still inside the current job */
    int stop;
    /* the current job */
    bnb_task_fn fn;
    void* arg;
    int64_t n_tasks;
    atomic_llong next_task;
};

/* Claims and runs tasks of the current job until none is left. */
static void run_tasks(bnb_thread_pool* pool, bnb_task_fn fn, void* arg, int64_t n_tasks) {
    for (;;) {
        const int64_t t = (int64_t)atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
        if (t >= n_tasks) return;
        fn(arg, t);
    }
}

#if defined(_WIN32)
static DWORD WINAPI worker_main(LPVOID param)
#else
static void* worker_main(void* param)
#endif
{
    bnb_thread_pool* pool = (bnb_thread_pool*)param;
    uint64_t seen = 0;
    mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->generation == seen) cond_wait(&pool->wake, &pool->lock);
        if (pool->stop) break;
        seen = pool->generation;
        bnb_task_fn fn = pool->fn;
        void* arg = pool->arg;
        const int64_t n_tasks = pool->n_tasks;
        mutex_unlock(&pool->lock);
        run_tasks(pool, fn, arg, n_tasks);
        mutex_lock(&pool->lock);
        if (--pool->busy == 0) cond_signal(&pool->done);
    }
    mutex_unlock(&pool->lock);
#if defined(_WIN32)
    return 0;
#else
    return NULL;
#endif
}

static int start_worker(bnb_thread_pool* pool, bnb_thread* thread) {
#if defined(_WIN32)
    *thread = CreateThread(NULL, 0, worker_main, pool, 0, NULL);
    return *thread != NULL;
#else
    return pthread_create(thread, NULL, worker_main, pool) == 0;
#endif
}

static void join_worker(bnb_thread thread) {
#if defined(_WIN32)
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
#else
    pthread_join(thread, NULL);
#endif
}

bnb_status bnb_thread_pool_create(const char* op, int32_t num_threads, bnb_thread_pool** out_pool) {
    if (num_threads < 1) return bnb_fail(BNB_ERR_INVALID_ARGUMENT, op, "num_threads = %d must be >= 1", num_threads);
    bnb_thread_pool* pool = (bnb_thread_pool*)calloc(1, sizeof *pool);
    bnb_thread* workers = num_threads > 1 ? (bnb_thread*)calloc((size_t)num_threads - 1, sizeof *workers) : NULL;
    if (pool == NULL || (num_threads > 1 && workers == NULL)) {
        free(pool);
        free(workers);
        return bnb_fail(BNB_ERR_OUT_OF_MEMORY, op, "cannot allocate a pool of %d threads", num_threads);
    }
    pool->size = num_threads;
    pool->workers = workers;
    mutex_init(&pool->lock);
    cond_init(&pool->wake);
    cond_init(&pool->done);
    atomic_init(&pool->next_task, 0);
    for (int32_t i = 0; i < num_threads - 1; ++i) {
        if (!start_worker(pool, &workers[i])) {
            bnb_thread_pool_destroy(pool);
            return bnb_fail(BNB_ERR_INTERNAL, op, "the OS refused to start worker thread %d of %d", i + 1,
                            num_threads - 1);
        }
        pool->started = i + 1;
    }
    *out_pool = pool;
    return BNB_OK;
}

void bnb_thread_pool_destroy(bnb_thread_pool* pool) {
    if (pool == NULL) return;
    mutex_lock(&pool->lock);
    pool->stop = 1;
    cond_broadcast(&pool->wake);
    mutex_unlock(&pool->lock);
    for (int32_t i = 0; i < pool->started; ++i) join_worker(pool->workers[i]);
    cond_destroy(&pool->wake);
    cond_destroy(&pool->done);
    mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

int32_t bnb_thread_pool_size(const bnb_thread_pool* pool) { return pool ? pool->size : 1; }

void bnb_parallel_for(bnb_thread_pool* pool, int64_t n_tasks, bnb_task_fn fn, void* arg) {
    if (n_tasks <= 0) return;
    if (pool == NULL || pool->started == 0 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; ++t) fn(arg, t);
        return;
    }
    mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->arg = arg;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
    pool->busy = pool->started;
    ++pool->generation;
    cond_broadcast(&pool->wake);
    mutex_unlock(&pool->lock);

    run_tasks(pool, fn, arg, n_tasks);

    mutex_lock(&pool->lock); /* the lock also publishes every worker's writes to the caller */
    while (pool->busy > 0) cond_wait(&pool->done, &pool->lock);
    mutex_unlock(&pool->lock);
}

int32_t bnb_cpu_online_count(void) {
#if defined(_WIN32)
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors > 0 ? (int32_t)info.dwNumberOfProcessors : 1;
#else
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int32_t)online : 1;
#endif
}
