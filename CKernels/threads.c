/* The library's own threads: one small persistent pool that every kernel's parallel loop and large GEMM runs on.
 *
 * Why our own: the element-wise passes (softmax rows, cell gates, optimizer updates) ran on one core while
 * OpenBLAS's worker threads spun in sched_yield on the other, waiting for the next GEMM. With one pool for both,
 * OpenBLAS runs single-threaded inside each of our threads (rc_sgemm in gemm.c splits a large product into
 * column or row blocks), nothing spins against anything else, and there is one thread count to set.
 *
 * Determinism: rc_parallel_for splits [0, count) into contiguous chunks that depend only on count, the grain and
 * the thread count, never on timing. A kernel whose chunks compute disjoint outputs with the same arithmetic
 * (every row-wise pass here) gives the same bits for every thread count; the GEMM split gives the same bits for
 * a fixed thread count (OpenBLAS may pick other micro-kernels for other block shapes).
 *
 * The workers spin briefly after a job (a window runs a parallel region every few microseconds), then sleep on a
 * condition variable. One caller at a time owns the pool; a second caller waits for it, and a parallel loop
 * started from inside a chunk runs inline. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RC_MAX_THREADS 256

/* OpenBLAS's own thread count, when the library is OpenBLAS (weak: any other CBLAS links too). */
extern void openblas_set_num_threads(int) __attribute__((weak));

typedef struct rc_job {
    rc_range_fn fn;
    void *ctx;
    int64_t count;
    int parts;
} rc_job;

static struct {
    pthread_mutex_t owner;         /* held by the caller that runs a parallel region */
    pthread_mutex_t lock;          /* guards the sleeping counts and the condition variables */
    pthread_cond_t wake, done;
    atomic_uint generation;        /* bumped for every job */
    atomic_int pending;            /* workers still in the current job */
    atomic_bool stop;
    int sleeping;                  /* workers waiting on `wake` */
    bool caller_sleeping;
    rc_job job;
    int threads;                   /* 0 until initialised; workers = threads - 1 */
    unsigned start_generation;     /* the generation the workers were started at */
    pthread_t workers[RC_MAX_THREADS];
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static int requested_threads; /* rnncore_set_threads's count; 0 = the environment's default */
static _Thread_local bool inside_chunk;

/* How long an idle thread spins before it sleeps: long enough to span the element-wise pass between two GEMMs
 * of a window, short enough not to hold a core once training pauses. */
#define RC_SPIN_NANOSECONDS 200000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Chunk `part` of `parts` over [0, count): the boundaries count·part/parts, exact in 128-bit arithmetic. */
static void chunk(int64_t count, int parts, int part, int64_t *begin, int64_t *end) {
    *begin = (int64_t)((__int128)count * part / parts);
    *end = (int64_t)((__int128)count * (part + 1) / parts);
}

/* fn over [begin, end) on this thread, marked as inside a chunk (a nested parallel loop runs inline). */
static void run_inline(rc_range_fn fn, void *ctx, int64_t begin, int64_t end) {
    const bool outer = inside_chunk;
    inside_chunk = true;
    fn(ctx, begin, end);
    inside_chunk = outer;
}

static void run_part(const rc_job *job, int part) {
    int64_t begin, end;
    chunk(job->count, job->parts, part, &begin, &end);
    if (begin < end) run_inline(job->fn, job->ctx, begin, end);
}

static void *worker_main(void *arg) {
    const int index = (int)(intptr_t)arg; /* 1 … threads-1; the caller is part 0 */
    /* The generation when the pool started, not when this thread first runs: a job may already be waiting. */
    unsigned seen = pool.start_generation;
    for (;;) {
        unsigned g = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (g == seen) {
            const int64_t deadline = now_ns() + RC_SPIN_NANOSECONDS;
            for (int i = 0; g == seen; i++) {
                cpu_relax();
                g = atomic_load_explicit(&pool.generation, memory_order_acquire);
                if ((i & 63) == 63 && g == seen && now_ns() > deadline) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen &&
                   !atomic_load(&pool.stop)) {
                pool.sleeping++;
                pthread_cond_wait(&pool.wake, &pool.lock);
                pool.sleeping--;
            }
            pthread_mutex_unlock(&pool.lock);
        }
        seen = g;
        if (atomic_load(&pool.stop)) return NULL;
        const rc_job job = pool.job;
        if (index < job.parts) run_part(&job, index);
        if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.lock);
            if (pool.caller_sleeping) pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

/* The thread count from the environment: RNNCORE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS,
 * else the CPUs this process may run on. Values outside 1…RC_MAX_THREADS are ignored. */
static int threads_from_environment(void) {
    const char *names[] = {"RNNCORE_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int i = 0; i < RC_COUNT(names); i++) {
        const char *s = getenv(names[i]);
        if (!s || !*s) continue;
        char *end;
        errno = 0;
        const long v = strtol(s, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 1 && v <= RC_MAX_THREADS) return (int)v;
    }
    int cpus = 0;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
#endif
    if (cpus <= 0) cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > RC_MAX_THREADS ? RC_MAX_THREADS : cpus;
}

/* Stops and joins every worker; config_lock and pool.owner held. */
static void stop_workers(void) {
    if (pool.threads <= 1) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.stop, true);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 1; i < pool.threads; i++) pthread_join(pool.workers[i], NULL);
    atomic_store(&pool.stop, false);
}

/* Starts n - 1 workers; config_lock and pool.owner held. Falls back to fewer threads if the system refuses. */
static void start_workers(int n) {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    pool.start_generation = atomic_load(&pool.generation);
    int started = 1;
    for (int i = 1; i < n; i++) {
        if (pthread_create(&pool.workers[i], NULL, worker_main, (void *)(intptr_t)i) != 0) break;
        started++;
    }
    pool.threads = started;
}

static void reset_after_fork(void) {
    /* The child has only the forking thread: forget the parent's workers and start afresh, with the same count,
     * on first use. */
    pthread_mutex_init(&pool.owner, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_init(&config_lock, NULL);
    pool.threads = 0;
    pool.sleeping = 0;
    pool.caller_sleeping = false;
    atomic_store(&pool.stop, false);
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, reset_after_fork); }

static int ensure_pool(void) {
    pthread_once(&fork_handler_once, register_fork_handler);
    pthread_mutex_lock(&config_lock);
    if (pool.threads == 0) {
        pthread_mutex_lock(&pool.owner);
        start_workers(requested_threads ? requested_threads : threads_from_environment());
        pthread_mutex_unlock(&pool.owner);
    }
    const int n = pool.threads;
    pthread_mutex_unlock(&config_lock);
    return n;
}

int rc_threads(void) { return inside_chunk ? 1 : ensure_pool(); }

void rc_parallel_for(int64_t count, int64_t grain, rc_range_fn fn, void *ctx) {
    if (count <= 0) return;
    const int threads = inside_chunk ? 1 : ensure_pool();
    int64_t parts = grain > 0 ? count / grain : count;
    parts = parts < 1 ? 1 : parts > threads ? threads : parts;
    if (parts == 1) {
        run_inline(fn, ctx, 0, count);
        return;
    }
    pthread_mutex_lock(&pool.owner);
    if (pool.threads < parts) parts = pool.threads; /* changed by rnncore_set_threads meanwhile */
    if (parts == 1) {
        pthread_mutex_unlock(&pool.owner);
        run_inline(fn, ctx, 0, count);
        return;
    }
    pool.job = (rc_job){.fn = fn, .ctx = ctx, .count = count, .parts = (int)parts};
    atomic_store_explicit(&pool.pending, pool.threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_mutex_lock(&pool.lock);
    if (pool.sleeping) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    const rc_job job = pool.job;
    run_part(&job, 0);

    if (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        const int64_t deadline = now_ns() + RC_SPIN_NANOSECONDS;
        for (int i = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; i++) {
            cpu_relax();
            if ((i & 63) == 63 && now_ns() > deadline) break;
        }
        pthread_mutex_lock(&pool.lock);
        while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
            pool.caller_sleeping = true;
            pthread_cond_wait(&pool.done, &pool.lock);
            pool.caller_sleeping = false;
        }
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.owner);
}

/* ---- sums over fixed blocks --------------------------------------------------------------------------------- */

#define RC_SUM_BLOCKS 64

typedef struct sum_job {
    rc_sum_fn sum;
    void *ctx;
    int64_t count, blocks;
    double *partial;
} sum_job;

static void sum_blocks(void *arg, int64_t b0, int64_t b1) {
    const sum_job *j = arg;
    for (int64_t b = b0; b < b1; b++) {
        j->partial[b] = j->sum(j->ctx, j->count * b / j->blocks, j->count * (b + 1) / j->blocks);
    }
}

double rc_parallel_sum(int64_t count, int64_t floats_per_item, rc_sum_fn sum, void *ctx) {
    if (count <= 0) return 0.0;
    double partial[RC_SUM_BLOCKS];
    const int64_t blocks = count < RC_SUM_BLOCKS ? count : RC_SUM_BLOCKS;
    sum_job j = {.sum = sum, .ctx = ctx, .count = count, .blocks = blocks, .partial = partial};
    rc_parallel_for(blocks, rc_grain(count / blocks * floats_per_item), sum_blocks, &j);
    double total = 0.0;
    for (int64_t b = 0; b < blocks; b++) total += partial[b];
    return total;
}

/* ---- public -------------------------------------------------------------------------------------------------- */

rnncore_status rnncore_set_threads(int threads) {
    RNNCORE_FAIL_IF(threads < 0 || threads > RC_MAX_THREADS, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(inside_chunk, RNNCORE_ERR_INVALID_ARGUMENT);
    pthread_once(&fork_handler_once, register_fork_handler);
    pthread_mutex_lock(&config_lock);
    pthread_mutex_lock(&pool.owner);
    requested_threads = threads;
    const int n = threads == 0 ? threads_from_environment() : threads;
    if (n != pool.threads) {
        stop_workers();
        start_workers(n);
    }
    pthread_mutex_unlock(&pool.owner);
    pthread_mutex_unlock(&config_lock);
    return RNNCORE_OK;
}

int rnncore_threads(void) { return ensure_pool(); }
