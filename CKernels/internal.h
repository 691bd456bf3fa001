/* Internal helpers shared by the kernels: argument validation and BLAS calls. Not part of the ABI. */
#ifndef RNNCORE_INTERNAL_H
#define RNNCORE_INTERNAL_H

#include "rnncore.h"

#include <limits.h>
#include <math.h>
#include <string.h>
#include <stdbool.h>
#include <stdint.h>

#include <cblas.h>

/* Return `status` from the enclosing function when `cond` holds. */
#define RNNCORE_FAIL_IF(cond, status) \
    do {                              \
        if (cond) return (status);    \
    } while (0)

/* Return from the enclosing function when a nested check failed. */
#define RNNCORE_TRY(expr)                      \
    do {                                       \
        rnncore_status _rnncore_s = (expr);    \
        if (_rnncore_s != RNNCORE_OK) return _rnncore_s; \
    } while (0)

/* Largest element count we accept in one buffer: its byte size must fit ptrdiff_t. */
#define RNNCORE_MAX_ELEMENTS ((int64_t)(PTRDIFF_MAX / 8))

/* Every size strictly positive. */
static inline rnncore_status rc_check_sizes(int count, const int64_t *sizes) {
    for (int i = 0; i < count; i++) {
        if (sizes[i] <= 0) return RNNCORE_ERR_INVALID_SIZE;
    }
    return RNNCORE_OK;
}

/* *out = a * b, or RNNCORE_ERR_SIZE_OVERFLOW when the product leaves [0, RNNCORE_MAX_ELEMENTS]. */
static inline rnncore_status rc_mul(int64_t *out, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > RNNCORE_MAX_ELEMENTS) return RNNCORE_ERR_SIZE_OVERFLOW;
    *out = r;
    return RNNCORE_OK;
}

static inline rnncore_status rc_mul3(int64_t *out, int64_t a, int64_t b, int64_t c) {
    int64_t ab;
    RNNCORE_TRY(rc_mul(&ab, a, b));
    return rc_mul(out, ab, c);
}

/* BLAS (LP64 OpenBLAS) takes `int` dimensions and leading dimensions. */
static inline rnncore_status rc_blas_dim(int64_t v) {
    return v > INT_MAX ? RNNCORE_ERR_SIZE_OVERFLOW : RNNCORE_OK;
}

/* Do the byte ranges [a, a+na) and [b, b+nb) of floats overlap? NULL never overlaps. */
static inline bool rc_overlap(const void *a, int64_t na, const void *b, int64_t nb) {
    if (a == NULL || b == NULL) return false;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    uintptr_t a1 = a0 + (uintptr_t)na * sizeof(float), b1 = b0 + (uintptr_t)nb * sizeof(float);
    return a0 < b1 && b0 < a1;
}

/* A buffer of `count` floats (or same-sized elements) for the aliasing check. */
typedef struct rc_buf {
    const void *ptr;
    int64_t count;
} rc_buf;

/* No output may overlap another output or any input. */
static inline rnncore_status rc_check_aliasing(const rc_buf *outs, int nout, const rc_buf *ins, int nin) {
    for (int i = 0; i < nout; i++) {
        for (int j = 0; j < nin; j++) {
            if (rc_overlap(outs[i].ptr, outs[i].count, ins[j].ptr, ins[j].count)) return RNNCORE_ERR_ALIASING;
        }
        for (int j = i + 1; j < nout; j++) {
            if (rc_overlap(outs[i].ptr, outs[i].count, outs[j].ptr, outs[j].count)) return RNNCORE_ERR_ALIASING;
        }
    }
    return RNNCORE_OK;
}

/* Compile a hot element-wise loop twice, for x86-64-v3 (AVX2, FMA) and for the baseline, and pick at load time (GNU ifunc).
 * The two clones may round differently (FMA); each machine always runs the same one, so results stay
 * reproducible on a machine. */
#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || defined(__GNUC__)) && !defined(RNNCORE_NO_CLONES)
#  define RC_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#  define RC_VECTOR_CLONES __attribute__((noinline))
#endif

#define RC_COUNT(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

/* X(0) … X(15): the cases of a switch over a mask of four flags, each case a copy of a loop with the flags constant
 * (the cells' backward rows, so that every copy vectorises without a branch inside). */
#define RC_EACH_OF_16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* e^d for d <= 0, branch-free so that loops over it vectorise; NaN stays NaN.
 * Cephes' expf scheme: d = n·ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n built in the exponent
 * bits. Relative error below 2e-7 (tests/test_softmax.c measures it against double exp). Arguments below -87 are
 * clamped there: e^-87 ≈ 1.6e-38 is still a normal float, and such terms cannot move a sum that holds e^0 = 1. */
static inline float rc_exp_nonpositive(float d) {
    const float shifter = 12582912.0f; /* 1.5·2^23: adding and subtracting it rounds to the nearest integer */
    d = d < -87.0f ? -87.0f : d;
    float n = (d * 1.44269504088896341f + shifter) - shifter;
    n = n > -127.0f ? n : -127.0f; /* only reached by NaN; keeps the int conversion defined */
    const float r = (d - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } scale = {.u = (uint32_t)((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* tanh(x), branch-free so that loops over it vectorise (tanhf from libm does not); NaN stays NaN.
 * |x| < 0.5: the odd Taylor series to x^13 (truncation below 5e-8 relative); otherwise
 * (1 - e)/(1 + e) with e = e^(-2|x|) <= e^-1, where 1 - e has no cancellation. Relative error below 4e-7
 * (tests/test_rnn.c measures it against double tanh). */
static inline float rc_tanhf(float x) {
    const float ax = fabsf(x);
    const float e = rc_exp_nonpositive(-2.0f * ax);
    const float large = (1.0f - e) / (1.0f + e);
    const float x2 = ax * ax;
    float p = 21844.0f / 6081075.0f;
    p = p * x2 - 1382.0f / 155925.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    const float small = ax + ax * x2 * p;
    return copysignf(ax < 0.5f ? small : large, x);
}

/* The logistic sigmoid 1/(1 + e^-x), branch-free (a select) so that loops over it vectorise; NaN stays NaN.
 * With e = e^-|x| <= 1: σ(|x|) = 1/(1 + e) and σ(-|x|) = e/(1 + e), neither of which cancels, so the relative
 * error stays that of rc_exp_nonpositive (tests/test_lstm.c measures it against double). */
static inline float rc_sigmoidf(float x) {
    const float e = rc_exp_nonpositive(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* db[j] += Σ_rows m[r][j] for a contiguous (rows, cols) block: the bias gradient of every layer (gemm.c; split
 * by columns across the threads, each column summed over the rows in order). */
void rc_add_column_sums(float *db, const float *m, int64_t rows, int64_t cols);

/* Every row of the contiguous (rows, cols) block y = b: the bias a GEMM then accumulates onto (gemm.c). */
void rc_broadcast_rows(float *y, const float *b, int64_t rows, int64_t cols);

/* The state each step of a window started from, (N,T,H): h0 (or zeros) at t = 0, then hs shifted by one step.
 * The weight gradient of the recurrence is then one GEMM over all N*T rows. */
static inline void rc_shifted_states(float *h_prev, const float *h0, const float *hs, int64_t N, int64_t T,
                                     int64_t H) {
    const int64_t ld = T * H;
    for (int64_t n = 0; n < N; n++) {
        float *dst = h_prev + n * ld;
        if (h0) {
            memcpy(dst, h0 + n * H, (size_t)H * sizeof(float));
        } else {
            memset(dst, 0, (size_t)H * sizeof(float));
        }
        if (T > 1) memcpy(dst + H, hs + n * ld, (size_t)((T - 1) * H) * sizeof(float));
    }
}


/* C(m,n) = alpha * op(A) · op(B) + beta * C, row-major, with explicit leading dimensions (gemm.c). A large
 * product is split into column (or row) blocks across the library's threads, each block one single-threaded
 * BLAS call. */
void rc_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* ---- the recurrent product against a packed B (packed_gemm.c) --------------------------------------------
 * rc_pack_b copies B (K,N) into panels of RC_PANEL columns, rc_packed_floats(K, N) floats; with trans, B is given
 * as its transpose, an (N,K) matrix at row stride ldb. rc_packed_gemm: u (M,N) at row stride ldu = (or +=, when
 * accumulate) h (M,K) at row stride ldh times the packed B. Both run on the library's threads. */
#define RC_PANEL 16
int64_t rc_packed_floats(int64_t K, int64_t N);
/* The calling thread's scratch buffer of at least `floats` floats (kept between calls and grown when needed,
 * freed when the thread exits), or NULL when memory is short. One kernel call uses it at a time: the packed copy
 * of Wh lives there, so that the window's buffer sizes (rnncore_<cell>_sizes) stay what the ABI documents. */
float *rc_scratch(int64_t floats);
void rc_pack_b(float *packed, const float *b, int64_t ldb, int64_t K, int64_t N, bool trans);
void rc_packed_gemm(float *u, int64_t ldu, const float *h, int64_t ldh, const float *packed, int64_t M, int64_t N,
                    int64_t K, bool accumulate);

/* ---- threads (threads.c) ------------------------------------------------------------------------------------
 * rc_parallel_for(count, grain, fn, ctx) calls fn(ctx, begin, end) on contiguous chunks covering [0, count), at
 * most one per thread and each of at least `grain` items (fewer chunks when count is small), and returns when all
 * are done. The chunks depend only on count, grain and the thread count. Inside a chunk, rc_threads() is 1 and a
 * nested rc_parallel_for runs inline. */
typedef void (*rc_range_fn)(void *ctx, int64_t begin, int64_t end);
/* Floats of element-wise work below which a pass is not worth splitting (a chunk should take well over the
 * microsecond a dispatch costs): the grain of the row-wise passes is RC_PARALLEL_FLOATS / (floats per row). */
#define RC_PARALLEL_FLOATS 16384
static inline int64_t rc_grain(int64_t floats_per_item) {
    return floats_per_item >= RC_PARALLEL_FLOATS ? 1 : RC_PARALLEL_FLOATS / (floats_per_item > 0 ? floats_per_item : 1) + 1;
}
void rc_parallel_for(int64_t count, int64_t grain, rc_range_fn fn, void *ctx);
int rc_threads(void);

/* Σ over [0, count) of sum(ctx, begin, end), in double: [0, count) is cut into at most 64 fixed blocks (block b is
 * [count·b/B, count·(b+1)/B)), the blocks run across the threads, and their sums are added in block order. The
 * result depends on count alone, not on the thread count. floats_per_item sets the grain (see rc_grain). */
typedef double (*rc_sum_fn)(void *ctx, int64_t begin, int64_t end);
double rc_parallel_sum(int64_t count, int64_t floats_per_item, rc_sum_fn sum, void *ctx);

/* Age buckets of a truncated backward inside a window of T steps: the truncation when it cuts anything
 * (0 < truncation < T), else 0 for full backpropagation. */
static inline int64_t rc_truncation_ages(int64_t truncation, int64_t T) {
    return truncation > 0 && truncation < T ? truncation : 0;
}

/* ---- one row of a softmax (softmax.c), shared by the full and the adaptive softmax ---------------------------
 * Both form the row's log-sum-exp the same way: the max of the row in float32, Σ e^(z - max) with the vectorised
 * exponential summed in double (eight lanes, a fixed order), log Σ in double. */

/* -log softmax(row)[y] = (max - row[y]) + log Σ_v e^(row[v] - max), in double, for 0 <= y < V. When grad is not
 * NULL it also receives (softmax(row) - onehot(y))·scale; grad may equal row (the gradient then overwrites the
 * logits), any other overlap is not allowed. */
double rc_cross_entropy_row(float *grad, const float *row, int64_t V, int64_t y, float scale);

/* The target column of row r of a block of rows for rc_cross_entropy_rows, or -1 for a row that is not counted. */
typedef int64_t (*rc_row_target_fn)(const void *ctx, int64_t row);

/* Σ_r rc_cross_entropy_row(grad_r, row_r, V, target(r), scale) over the M rows of a contiguous (M,V) block, in
 * parallel. Rows whose target is -1 add nothing and get a zero gradient row. The sum runs over a fixed split of
 * the rows into at most 64 blocks (each summed in order, then the blocks in order), so the result depends on M
 * alone, not on the thread count. grad may be NULL or equal logits. */
double rc_cross_entropy_rows(float *grad, const float *logits, int64_t M, int64_t V, rc_row_target_fn target,
                             const void *ctx, float scale);

/* out[v] = log softmax(row)[v] + shift = (row[v] - max) + (shift - log Σ e^(row - max)) for v < V; out may equal
 * row. */
void rc_log_softmax_row(float *out, const float *row, int64_t V, float shift);

/* ---- recurrent cells over a window (window.c) ---------------------------------------------------------------
 * Every cell (rnn.c, lstm.c, gru.c) describes itself once with an rc_cell_kind: its gate and state counts, its
 * cache, and the element-wise backward of one step. window.c holds what they share: the argument checks, the
 * buffer sizes, the backward time loop (full, or truncated with age buckets) and the big GEMMs after it. */

typedef struct rc_pass rc_pass;

/* The element-wise backward of step t for the N rows of the window, linear in the incoming state gradient.
 *   din:    the gradient reaching the step's output state, S planes of (N,H) at stride din_plane; dh_add (row
 *           stride ld_add; may be NULL) is added to its h plane.
 *   dA:     (N,G) at row stride T*G; may be NULL: the gradient of the input pre-activation a = x·Wx + b.
 *   dR:     (N,G) at row stride ldR: the gradient of u = h_prev·Wh (+ b_hidden), what the recurrent GEMM
 *           multiplies by Whᵀ. The same values as dA except for the gru (only dR is written then, dA is NULL).
 *   dprev:  S planes of (N,H) at stride dprev_plane; may be NULL: the element-wise part of the gradient of the
 *           previous state (the lstm's c path, the gru's z ⊙ dh); planes a cell has no such part for are left
 *           alone. dprev may equal din (updated in place). */
typedef void (*rc_step_backward_fn)(const rc_pass *p, int64_t t, float *dA, float *dR, int64_t ldR, float *dprev,
                                    int64_t dprev_plane, const float *din, int64_t din_plane, const float *dh_add,
                                    int64_t ld_add);

typedef struct rc_cell_kind {
    int64_t gates;               /* G / H */
    int64_t states;              /* S */
    int64_t cache_blocks;        /* cache floats per (n, t) row, in units of H */
    int64_t cache_width;         /* widest cache block, in units of H (its row stride is T times that) */
    bool hidden_bias;            /* a bias inside the gates' h·Wh term (the gru's b_hn): b_hidden allowed,
                                    the recurrent gradient dR differs from dA, dprev has an h part */
    int variant;                 /* the cell's own choice (the rnn's nonlinearity) */
    rc_step_backward_fn step_backward;
} rc_cell_kind;

/* One checked call: the window's sizes and the forward values a step backward reads. */
struct rc_pass {
    const rc_cell_kind *kind;
    int64_t N, T, D, H, G;
    int64_t k;                   /* age buckets (rc_truncation_ages): 0 = full backpropagation */
    int64_t cache, workspace;    /* floats */
    bool packed;                 /* the recurrent products run against a packed copy of Wh (rc_packs_recurrence
                                    in window.c): forward packs Wh, backward Whᵀ, into the thread's scratch */
    const float *xs, *state0, *hs, *cache_in, *wx, *wh, *b, *b_hidden;
    const float *wh_packed;      /* set by rc_pack_forward / rc_window_backward when packed */
};

/* Forward: packs Wh into the thread's scratch when the pass is packed (call after rc_check_forward). */
void rc_pack_forward(rc_pass *p);

/* u (rows,G) at row stride ldu += h_prev (rows,H) at row stride ldh · Wh: a step's recurrent product. */
void rc_recurrent_forward(const rc_pass *p, float *u, int64_t ldu, const float *h_prev, int64_t ldh, int64_t rows);

/* rnncore_<cell>_sizes. */
rnncore_status rc_cell_sizes(const rc_cell_kind *kind, rnncore_cell_sizes *sizes, const rnncore_window *window);

/* Every check of rnncore_<cell>_forward (pointers, sizes, overflow, b_hidden, aliasing); fills *p on success. */
rnncore_status rc_check_forward(const rc_cell_kind *kind, rc_pass *p, const float *hs, const float *cache,
                                const float *state_last, const float *xs, const float *state0,
                                const rnncore_cell_weights *weights, const rnncore_window *window);

/* Every check of rnncore_<cell>_backward; fills *p on success. */
rnncore_status rc_check_backward(const rc_cell_kind *kind, rc_pass *p, const float *dxs, const float *dstate0,
                                 const rnncore_cell_gradients *gradients, const float *workspace, const float *dhs,
                                 const float *dstate_last, const float *xs, const float *state0, const float *hs,
                                 const float *cache, const rnncore_cell_weights *weights,
                                 const rnncore_window *window);

/* The backward of a checked call: the time loop, then dWx += Xᵀ·dA, dWh += H_prevᵀ·dR, db += Σ dA,
 * db_hidden += Σ dR, dxs = dA·Wxᵀ over all N*T rows at once. */
void rc_window_backward(const rc_pass *p, float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                        float *workspace, const float *dhs, const float *dstate_last);

/* dst (N,H) = seq[:, T-1] of a (N,T,H) sequence. */
static inline void rc_copy_last_step(float *dst, const float *seq, int64_t N, int64_t T, int64_t H) {
    for (int64_t n = 0; n < N; n++) memcpy(dst + n * H, seq + (n * T + T - 1) * H, (size_t)H * sizeof(float));
}

#endif /* RNNCORE_INTERNAL_H */
