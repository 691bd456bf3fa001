/* Internal helpers shared by the kernels: argument validation and BLAS calls. Not part of the ABI. */
#ifndef RNNCORE_INTERNAL_H
#define RNNCORE_INTERNAL_H

#include "rnncore.h"

#include <limits.h>
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

#define RC_COUNT(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

/* C(m,n) = alpha * op(A) · op(B) + beta * C, row-major, with explicit leading dimensions. */
static inline void rc_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                            int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
                (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

#endif /* RNNCORE_INTERNAL_H */
