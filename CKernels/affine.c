/* Affine layer y = x·W + b (the TimeAffine layer over M = N*T rows). */
#include "internal.h"

static rnncore_status check_affine(int64_t M, int64_t D, int64_t O) {
    const int64_t sizes[] = {M, D, O};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, M, D));
    RNNCORE_TRY(rc_mul(&p, M, O));
    RNNCORE_TRY(rc_mul(&p, D, O));
    RNNCORE_TRY(rc_blas_dim(M));
    RNNCORE_TRY(rc_blas_dim(D));
    return rc_blas_dim(O);
}

/* y = x·W + b with W stored (D,O), or x·Wᵀ + b with W stored (O,D) when w_transposed. */
static rnncore_status affine_forward(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t D,
                                     int64_t O, bool w_transposed) {
    RNNCORE_FAIL_IF(!y || !x || !w, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_affine(M, D, O));
    const rc_buf outs[] = {{y, M * O}};
    const rc_buf ins[] = {{x, M * D}, {w, D * O}, {b, O}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    if (b) rc_broadcast_rows(y, b, M, O);
    rc_sgemm(false, w_transposed, M, O, D, 1.0f, x, D, w, w_transposed ? D : O, b ? 1.0f : 0.0f, y, O);
    return RNNCORE_OK;
}

/* The gradients of affine_forward: dx = dy·Wᵀ (or dy·W), dW += xᵀ·dy (or dyᵀ·x), db += Σ_m dy[m]. */
static rnncore_status affine_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                      const float *w, int64_t M, int64_t D, int64_t O, bool w_transposed) {
    RNNCORE_FAIL_IF(!dw || !dy || !x || !w, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_affine(M, D, O));
    const rc_buf outs[] = {{dx, M * D}, {dw, D * O}, {db, O}};
    const rc_buf ins[] = {{dy, M * O}, {x, M * D}, {w, D * O}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    if (w_transposed) {
        if (dx) rc_sgemm(false, false, M, D, O, 1.0f, dy, O, w, D, 0.0f, dx, D);
        rc_sgemm(true, false, O, D, M, 1.0f, dy, O, x, D, 1.0f, dw, D);
    } else {
        if (dx) rc_sgemm(false, true, M, D, O, 1.0f, dy, O, w, O, 0.0f, dx, D);
        rc_sgemm(true, false, D, O, M, 1.0f, x, D, dy, O, 1.0f, dw, O);
    }
    if (db) rc_add_column_sums(db, dy, M, O);
    return RNNCORE_OK;
}

rnncore_status rnncore_affine_forward(float *y, const float *x, const float *w, const float *b, int64_t M, int64_t D,
                                      int64_t O) {
    return affine_forward(y, x, w, b, M, D, O, false);
}

rnncore_status rnncore_affine_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                       const float *w, int64_t M, int64_t D, int64_t O) {
    return affine_backward(dx, dw, db, dy, x, w, M, D, O, false);
}

rnncore_status rnncore_affine_transposed_forward(float *y, const float *x, const float *w, const float *b,
                                                 int64_t M, int64_t D, int64_t O) {
    return affine_forward(y, x, w, b, M, D, O, true);
}

rnncore_status rnncore_affine_transposed_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                                  const float *w, int64_t M, int64_t D, int64_t O) {
    return affine_backward(dx, dw, db, dy, x, w, M, D, O, true);
}
