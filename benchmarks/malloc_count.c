/*
 * malloc_count.c — counts calls to the malloc family, for checking that a training step allocates nothing.
 *
 * Build and preload (benchmarks/count-allocations.sh does both):
 *   cc -O2 -shared -fPIC -o libmalloc_count.so benchmarks/malloc_count.c
 *   LD_PRELOAD=$PWD/libmalloc_count.so rnncore bench ...
 * `rnncore bench` finds rnncore_bench_allocation_count() with dlsym and reports allocations per step.
 * Forwards to glibc's own entry points (__libc_malloc, ...), so no dlsym bootstrap problem arises.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_uint_fast64_t allocations;

uint64_t rnncore_bench_allocation_count(void) { return atomic_load(&allocations); }

void *malloc(size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void *memalign(size_t alignment, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_memalign(alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }

int posix_memalign(void **out, size_t alignment, size_t n) {
    void *p = memalign(alignment, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
