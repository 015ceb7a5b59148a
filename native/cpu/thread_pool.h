/* thread_pool.h — the persistent worker pool of a CPU context.
 *
 * A context with num_threads = N owns N - 1 worker threads, started by context_create and joined by
 * context_destroy; the calling thread is the N-th worker. num_threads = 1 starts no thread at all, so an engine that
 * embeds us and runs its own scheduler sees nothing happen behind its back. (0 = one thread per online CPU.)
 *
 * Determinism: ops split their work into tasks whose outputs are disjoint and whose results do not depend on which
 * thread runs them or in what order; reductions use a fixed partition (independent of the thread count) and combine
 * the partial results in task order. Hence every op returns identical bytes for every thread count.
 */
#ifndef BNB_CPU_THREAD_POOL_H
#define BNB_CPU_THREAD_POOL_H

#include "bnb_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bnb_thread_pool bnb_thread_pool;

/* One task: `task` in [0, n_tasks). */
typedef void (*bnb_task_fn)(void* arg, int64_t task);

/* Creates a pool of num_threads (>= 1) threads including the caller. OUT_OF_MEMORY / INTERNAL on failure, with the
 * message set (op names the caller, e.g. "context_create"). */
bnb_status bnb_thread_pool_create(const char* op, int32_t num_threads, bnb_thread_pool** out_pool);
/* Joins the workers and frees the pool. NULL is accepted. */
void bnb_thread_pool_destroy(bnb_thread_pool* pool);
/* Threads including the caller (1 for a NULL pool). */
int32_t bnb_thread_pool_size(const bnb_thread_pool* pool);
/* Runs fn(arg, t) for every t in [0, n_tasks) and returns when all have finished. The caller takes part. A NULL pool
 * or a pool of size 1 runs the tasks in order on the caller's thread. Not re-entrant: tasks must not call it. */
void bnb_parallel_for(bnb_thread_pool* pool, int64_t n_tasks, bnb_task_fn fn, void* arg);

/* Online CPUs (>= 1): the default thread count for num_threads = 0. */
int32_t bnb_cpu_online_count(void);

#ifdef __cplusplus
}
#endif

#endif /* BNB_CPU_THREAD_POOL_H */
