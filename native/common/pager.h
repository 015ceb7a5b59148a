/* pager.h — the paging allocator behind BNB_MEMORY_PAGED on host-memory backends (every CPU variant).
 *
 * One pager per context. A paged block lives in one of three places:
 *
 *     zero      never written: no memory anywhere, reads as zeros (a fresh buffer; costs nothing to evict)
 *     resident  in fast memory (RAM under the budget); maybe also a copy in the spill file (clean) or not (dirty)
 *     spilled   only in the spill file (a temp file, created at the first write-back, deleted with the pager)
 *
 *   map      → resident + pinned (counter); load from the spill if needed; make room by evicting the least
 *              recently used unpinned resident blocks (write-back only when dirty)
 *   unmap    → unpinned; stays resident until room is needed
 *   prefetch → resident without pin (to device) / written back and released (to host)
 *
 * Fast memory of evicted blocks is kept as spares and reused by blocks of the same rounded size, so a training loop
 * that cycles equal-sized states through a small budget does not return memory to the OS (and fault it back in)
 * every step. Spares count against the budget.
 *
 * Accounting is in block capacities: bytes rounded up to BNB_PAGER_ALIGN. Every entry point takes the pager's lock,
 * so a buffer freed from another thread (a finalizer) cannot corrupt the lists; contexts are still externally
 * synchronized for everything else.
 */
#ifndef BNB_PAGER_H
#define BNB_PAGER_H

#include "bnb_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BNB_PAGER_ALIGN 64 /* resident memory alignment and accounting granularity */

typedef struct bnb_pager bnb_pager;
typedef struct bnb_paged_block bnb_paged_block;

/* A pager with the defaults: unlimited budget, spill in the system temp directory. `op` names the caller. */
bnb_status bnb_pager_create(const char* op, bnb_pager** out_pager);
/* Releases the pager, its spill file and the memory of every unpinned block. Blocks still alive become orphans:
 * they can only be unmapped (a pinned one keeps its memory until then) and freed. NULL is accepted. */
void bnb_pager_destroy(bnb_pager* pager);
/* The pager_configure slot's semantics (bnb.h). */
bnb_status bnb_pager_configure(bnb_pager* pager, const char* op, const bnb_pager_config* config);
/* The memory_stats slot's semantics. */
bnb_status bnb_pager_stats(bnb_pager* pager, const char* op, bnb_memory_stats* out);

/* A new block of `bytes` (> 0) in the zero state: no memory is committed. */
bnb_status bnb_pager_alloc(bnb_pager* pager, const char* op, size_t bytes, bnb_paged_block** out_block);
/* Frees a block (INVALID_ARGUMENT while it is mapped). NULL is accepted. */
bnb_status bnb_pager_free(bnb_paged_block* block, const char* op);
/* Makes the block resident and pins it; *out_pointer = its address (BNB_MAP_* access). */
bnb_status bnb_pager_map(bnb_paged_block* block, const char* op, int32_t access, void** out_pointer);
/* Ends one map. */
bnb_status bnb_pager_unmap(bnb_paged_block* block, const char* op);
/* BNB_PREFETCH_TO_DEVICE: make resident without pinning; BNB_PREFETCH_TO_HOST: write back and release. */
bnb_status bnb_pager_prefetch(bnb_paged_block* block, const char* op, int32_t target);
/* The address while mapped (else NULL), and the block's size in bytes. */
void* bnb_pager_mapped_pointer(bnb_paged_block* block, size_t* out_bytes);

#ifdef __cplusplus
}
#endif

#endif /* BNB_PAGER_H */
