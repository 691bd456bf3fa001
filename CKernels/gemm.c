/* The library's matrix product: the one place every kernel's GEMM goes through (rc_sgemm), and its export for
 * callers and benchmarks. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* Products below this many FLOPs per thread run on the calling thread alone: about 10 µs of one core, against a
 * dispatch to the pool of about a microsecond. (W100's recurrent 20×100×100 product, 0.4 MFLOP, stays serial;
 * L650's 20×2600×650 one, 68 MFLOP, is split.) */
#define RC_GEMM_SPLIT_FLOPS 1.0e6
/* Column blocks are multiples of 64 floats (256-byte offsets), row blocks multiples of 16 rows: whole BLAS
 * micro-tiles, so every block runs the BLAS's regular path. */
#define RC_GEMM_COLUMN_UNIT 64
#define RC_GEMM_ROW_UNIT 16

typedef struct gemm_call {
    bool trans_a, trans_b, by_columns;
    int64_t m, n, k, lda, ldb, ldc, unit;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_call;

/* One row of C (generation, N = 1) is a matrix-vector product: sgemv reads B once, where OpenBLAS 0.3.21's sgemm
 * would first copy all of B into its packed layout (measured: that copy was the largest cost of a generated
 * token). */
static void blas_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 1) {
        /* c (n) = alpha·op(B)ᵀ·a + beta·c, a read at stride lda when A is given transposed ((k,1)) */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, (int)(trans_b ? n : k), (int)(trans_b ? k : n),
                    alpha, b, (int)ldb, a, trans_a ? (int)lda : 1, beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Blocks [begin, end) of a split product: columns of C (and of op(B)), or rows of C (and of op(A)). */
static void gemm_blocks(void *ctx, int64_t begin, int64_t end) {
    const gemm_call *g = ctx;
    if (g->by_columns) {
        const int64_t j0 = begin * g->unit, j1 = end * g->unit < g->n ? end * g->unit : g->n;
        const float *b = g->trans_b ? g->b + j0 * g->ldb : g->b + j0;
        blas_sgemm(g->trans_a, g->trans_b, g->m, j1 - j0, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta,
                   g->c + j0, g->ldc);
    } else {
        const int64_t i0 = begin * g->unit, i1 = end * g->unit < g->m ? end * g->unit : g->m;
        const float *a = g->trans_a ? g->a + i0 : g->a + i0 * g->lda;
        blas_sgemm(g->trans_a, g->trans_b, i1 - i0, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
                   g->c + i0 * g->ldc, g->ldc);
    }
}

void rc_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    const int threads = rc_threads();
    const int64_t col_units = (n + RC_GEMM_COLUMN_UNIT - 1) / RC_GEMM_COLUMN_UNIT;
    const int64_t row_units = (m + RC_GEMM_ROW_UNIT - 1) / RC_GEMM_ROW_UNIT;
    /* Columns when there are enough of them (the usual case: the weight matrix is split, the small activation
     * block shared), rows otherwise. */
    const bool by_columns = col_units >= threads || col_units >= row_units;
    const int64_t units = by_columns ? col_units : row_units;
    if (threads == 1 || units < 2 || flops < 2.0 * RC_GEMM_SPLIT_FLOPS) {
        blas_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const double per_unit = flops / (double)units;
    const int64_t grain = per_unit >= RC_GEMM_SPLIT_FLOPS ? 1 : (int64_t)(RC_GEMM_SPLIT_FLOPS / per_unit) + 1;
    gemm_call g = {.trans_a = trans_a, .trans_b = trans_b, .by_columns = by_columns, .m = m, .n = n, .k = k,
                   .lda = lda, .ldb = ldb, .ldc = ldc, .unit = by_columns ? RC_GEMM_COLUMN_UNIT : RC_GEMM_ROW_UNIT,
                   .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c};
    rc_parallel_for(units, grain, gemm_blocks, &g);
}

/* ---- the bias helpers of every layer (row-parallel or column-parallel, so any split gives the same bits) ---- */

typedef struct column_sums {
    float *db;
    const float *m;
    int64_t rows, cols;
} column_sums;

static void column_sums_range(void *arg, int64_t j0, int64_t j1) {
    const column_sums *c = arg;
    for (int64_t r = 0; r < c->rows; r++) {
        const float *row = c->m + r * c->cols;
        for (int64_t j = j0; j < j1; j++) c->db[j] += row[j];
    }
}

void rc_add_column_sums(float *db, const float *m, int64_t rows, int64_t cols) {
    column_sums c = {.db = db, .m = m, .rows = rows, .cols = cols};
    rc_parallel_for(cols, rc_grain(rows), column_sums_range, &c);
}

typedef struct broadcast {
    float *y;
    const float *b;
    int64_t cols;
} broadcast;

static void broadcast_range(void *arg, int64_t r0, int64_t r1) {
    const broadcast *c = arg;
    for (int64_t r = r0; r < r1; r++) memcpy(c->y + r * c->cols, c->b, (size_t)c->cols * sizeof(float));
}

void rc_broadcast_rows(float *y, const float *b, int64_t rows, int64_t cols) {
    broadcast c = {.y = y, .b = b, .cols = cols};
    rc_parallel_for(rows, rc_grain(cols), broadcast_range, &c);
}

rnncore_status rnncore_sgemm(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K, int trans_a,
                             int trans_b, float alpha, float beta) {
    RNNCORE_FAIL_IF(!c || !a || !b, RNNCORE_ERR_NULL_POINTER);
    const int64_t sizes[] = {M, N, K};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, M, K));
    RNNCORE_TRY(rc_mul(&p, K, N));
    RNNCORE_TRY(rc_mul(&p, M, N));
    RNNCORE_TRY(rc_blas_dim(M));
    RNNCORE_TRY(rc_blas_dim(N));
    RNNCORE_TRY(rc_blas_dim(K));
    RNNCORE_FAIL_IF(!isfinite(alpha) || !isfinite(beta), RNNCORE_ERR_INVALID_ARGUMENT);
    const rc_buf outs[] = {{c, M * N}};
    const rc_buf ins[] = {{a, M * K}, {b, K * N}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    rc_sgemm(trans_a != 0, trans_b != 0, M, N, K, alpha, a, trans_a ? M : K, b, trans_b ? K : N, beta, c, N);
    return RNNCORE_OK;
}
