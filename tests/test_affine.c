/*
 * test_affine.c — rnncore_affine_forward (y = x·W + b) and rnncore_affine_backward.
 *
 *  (a) kernels vs the double reference, with and without bias, edge and BLAS-sized shapes;
 *  (b) the reference backward vs central differences of the reference forward (double, eps 1e-5);
 *  (c) the kernel backward vs central differences of the kernel forward (eps 1e-2);
 *  accumulate (dW, db twice = 2x; dx overwritten), NULL dx / db / b.
 * The gradient-check loss is L = Σ y ⊙ Wy with random Wy, so dy = Wy.
 */
#include "test_util.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

/* Tolerances: y sums D+1 terms of size <~1 (|x| < 1, |w| < 1/sqrt(D)); float32 summation error grows like K·u,
 * so 4·(D+1)·u abs and rel. dx sums O terms; dW and db sum M terms onto a prior of size ~1. */
static void test_vs_ref(int64_t M, int64_t D, int64_t O, int use_b, uint64_t seed) {
    printf("affine M=%lld D=%lld O=%lld b=%s\n", (long long)M, (long long)D, (long long)O, use_b ? "yes" : "NULL");
    rng_t r = {seed};
    float *x = alloc_f(M * D), *w = alloc_f(D * O), *b = alloc_f(O), *y = alloc_f(M * O), *dy = alloc_f(M * O);
    float *dx = alloc_f(M * D), *dw = alloc_f(D * O), *db = alloc_f(O);
    fill_f(x, M * D, &r, -1, 1);
    fill_f(w, D * O, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    fill_f(b, O, &r, -1, 1);
    fill_f(dy, M * O, &r, -1, 1);
    fill_f(dw, D * O, &r, -1, 1);
    fill_f(db, O, &r, -1, 1);
    fill_const_f(y, M * O, NAN);
    fill_const_f(dx, M * D, NAN);
    double *xd = to_d(x, M * D), *wd = to_d(w, D * O), *bd = to_d(b, O), *yd = alloc_d(M * O);
    double *dyd = to_d(dy, M * O), *dxd = alloc_d(M * D), *dwd = to_d(dw, D * O), *dbd = to_d(db, O);

    CHECK_STATUS(rnncore_affine_forward(y, x, w, use_b ? b : NULL, M, D, O), RNNCORE_OK);
    ref_affine_forward(yd, xd, wd, use_b ? bd : NULL, M, D, O);
    double tf = 4.0 * (double)(D + 1) * U32;
    check_close_fd("affine_forward y", y, yd, M * O, tf, tf);

    CHECK_STATUS(rnncore_affine_backward(dx, dw, use_b ? db : NULL, dy, x, w, M, D, O), RNNCORE_OK);
    ref_affine_backward(dxd, dwd, use_b ? dbd : NULL, dyd, xd, wd, M, D, O);
    double tx = 4.0 * (double)(O + 1) * U32, tp = 4.0 * (double)(M + 2) * U32;
    check_close_fd("affine_backward dx", dx, dxd, M * D, tx, tx);
    check_close_fd("affine_backward dW (accumulated)", dw, dwd, D * O, tp, tp);
    check_close_fd("affine_backward db (accumulated)", db, dbd, O, tp, tp);

    /* accumulate: from zero, twice = 2x once; dx is overwritten; dx NULL leaves dW/db the same. Adding the
     * second pass onto the first rounds differently from doubling it, so the tolerance is tp again. */
    float *g1 = alloc_f(D * O), *g2 = alloc_f(D * O), *b1 = alloc_f(O), *b2 = alloc_f(O), *dx1 = alloc_f(M * D);
    CHECK_STATUS(rnncore_affine_backward(dx1, g1, b1, dy, x, w, M, D, O), RNNCORE_OK);
    fill_const_f(dx, M * D, 1e30f);
    CHECK_STATUS(rnncore_affine_backward(dx, g2, b2, dy, x, w, M, D, O), RNNCORE_OK);
    CHECK_STATUS(rnncore_affine_backward(NULL, g2, b2, dy, x, w, M, D, O), RNNCORE_OK);
    check_close_ff("affine_backward dx overwritten", dx, dx1, M * D, 0, 0);
    for (int64_t i = 0; i < D * O; i++) g1[i] *= 2;
    for (int64_t i = 0; i < O; i++) b1[i] *= 2;
    check_close_ff("affine_backward dW twice = 2x", g2, g1, D * O, tp, tp);
    check_close_ff("affine_backward db twice = 2x", b2, b1, O, tp, tp);

    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db);
    free(xd); free(wd); free(bd); free(yd); free(dyd); free(dxd); free(dwd); free(dbd);
    free(g1); free(g2); free(b1); free(b2); free(dx1);
}

typedef struct { float *x, *w, *b, *y; double *xd, *wd, *bd, *yd, *lw; int64_t M, D, O; } aff_ctx;

static double loss_f(void *v) {
    aff_ctx *c = v;
    rnncore_status s = rnncore_affine_forward(c->y, c->x, c->w, c->b, c->M, c->D, c->O);
    assert(s == RNNCORE_OK);
    return dot_fd(c->y, c->lw, c->M * c->O);
}
static double loss_d(void *v) {
    aff_ctx *c = v;
    ref_affine_forward(c->yd, c->xd, c->wd, c->bd, c->M, c->D, c->O);
    return dot_dd(c->yd, c->lw, c->M * c->O);
}

/* L is linear in each of x, W, b, so central differences have no truncation error.
 * (b) double: rounding ~1e-16·|L|/eps ≈ 1e-10: 1e-8 abs + 1e-7 rel.
 * (c) float32: each forward rounds y to u·|y| (~6e-8); Σ over M·O ≈ 20 outputs gives ~5e-7 noise in L, divided
 * by 2·eps = 2e-2: ~3e-5. Tol 5e-4 abs + 1e-2 rel. */
static void test_grad(int64_t M, int64_t D, int64_t O, uint64_t seed) {
    printf("affine gradient checks M=%lld D=%lld O=%lld\n", (long long)M, (long long)D, (long long)O);
    rng_t r = {seed};
    float *x = alloc_f(M * D), *w = alloc_f(D * O), *b = alloc_f(O), *lwf = alloc_f(M * O);
    fill_f(x, M * D, &r, -1, 1); fill_f(w, D * O, &r, -1, 1); fill_f(b, O, &r, -1, 1); fill_f(lwf, M * O, &r, -1, 1);
    aff_ctx c = {x, w, b, alloc_f(M * O), to_d(x, M * D), to_d(w, D * O), to_d(b, O), alloc_d(M * O),
                 to_d(lwf, M * O), M, D, O};
    double *dxd = alloc_d(M * D), *dwd = alloc_d(D * O), *dbd = alloc_d(O);
    ref_affine_backward(dxd, dwd, dbd, c.lw, c.xd, c.wd, M, D, O);
    grad_check_d("[ref] affine_backward dx", c.xd, dxd, M * D, 1e-5, loss_d, &c, 1e-8, 1e-7);
    grad_check_d("[ref] affine_backward dW", c.wd, dwd, D * O, 1e-5, loss_d, &c, 1e-8, 1e-7);
    grad_check_d("[ref] affine_backward db", c.bd, dbd, O, 1e-5, loss_d, &c, 1e-8, 1e-7);
    float *dx = alloc_f(M * D), *dw = alloc_f(D * O), *db = alloc_f(O);
    CHECK_STATUS(rnncore_affine_backward(dx, dw, db, lwf, x, w, M, D, O), RNNCORE_OK);
    grad_check_f("[f32] affine_backward dx", x, dx, M * D, 1e-2, loss_f, &c, 5e-4, 1e-2);
    grad_check_f("[f32] affine_backward dW", w, dw, D * O, 1e-2, loss_f, &c, 5e-4, 1e-2);
    grad_check_f("[f32] affine_backward db", b, db, O, 1e-2, loss_f, &c, 5e-4, 1e-2);
    free(x); free(w); free(b); free(lwf); free(c.y); free(c.xd); free(c.wd); free(c.bd); free(c.yd); free(c.lw);
    free(dxd); free(dwd); free(dbd); free(dx); free(dw); free(db);
}

/* The transposed layout (W stored (O,D), as a tied embedding) against the double reference of x·Wᵀ + b, with the
 * same float32-rounding tolerances as test_vs_ref (the same sums in another memory order), and its bad arguments. */
static void test_transposed(int64_t M, int64_t D, int64_t O, int use_b, uint64_t seed) {
    printf("affine transposed M=%lld D=%lld O=%lld b=%s\n", (long long)M, (long long)D, (long long)O,
           use_b ? "yes" : "NULL");
    rng_t r = {seed};
    float *x = alloc_f(M * D), *wt = alloc_f(O * D), *b = alloc_f(O), *y = alloc_f(M * O), *dy = alloc_f(M * O);
    float *dx = alloc_f(M * D), *dwt = alloc_f(O * D), *db = alloc_f(O);
    fill_f(x, M * D, &r, -1, 1);
    fill_f(wt, O * D, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    fill_f(b, O, &r, -1, 1);
    fill_f(dy, M * O, &r, -1, 1);
    fill_f(dwt, O * D, &r, -1, 1);
    fill_f(db, O, &r, -1, 1);
    fill_const_f(y, M * O, NAN);
    fill_const_f(dx, M * D, NAN);
    double *xd = to_d(x, M * D), *wd = alloc_d(D * O), *bd = to_d(b, O), *yd = alloc_d(M * O);
    double *dyd = to_d(dy, M * O), *dxd = alloc_d(M * D), *dwd = alloc_d(D * O), *dbd = to_d(db, O);
    for (int64_t o = 0; o < O; o++)
        for (int64_t d = 0; d < D; d++) { wd[d * O + o] = wt[o * D + d]; dwd[d * O + o] = dwt[o * D + d]; }

    CHECK_STATUS(rnncore_affine_transposed_forward(y, x, wt, use_b ? b : NULL, M, D, O), RNNCORE_OK);
    ref_affine_forward(yd, xd, wd, use_b ? bd : NULL, M, D, O);
    double tf = 4.0 * (double)(D + 1) * U32;
    check_close_fd("affine_transposed_forward y", y, yd, M * O, tf, tf);

    CHECK_STATUS(rnncore_affine_transposed_backward(dx, dwt, use_b ? db : NULL, dy, x, wt, M, D, O), RNNCORE_OK);
    ref_affine_backward(dxd, dwd, use_b ? dbd : NULL, dyd, xd, wd, M, D, O);
    double *dwtd = alloc_d(O * D);
    for (int64_t o = 0; o < O; o++)
        for (int64_t d = 0; d < D; d++) dwtd[o * D + d] = dwd[d * O + o];
    double tx = 4.0 * (double)(O + 1) * U32, tp = 4.0 * (double)(M + 2) * U32;
    check_close_fd("affine_transposed_backward dx", dx, dxd, M * D, tx, tx);
    check_close_fd("affine_transposed_backward dW (accumulated, (O,D))", dwt, dwtd, O * D, tp, tp);
    check_close_fd("affine_transposed_backward db (accumulated)", db, dbd, O, tp, tp);

    /* bad arguments: the same contract as the plain layout */
    CHECK_STATUS(rnncore_affine_transposed_forward(NULL, x, wt, b, M, D, O), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_affine_transposed_forward(y, x, wt, b, 0, D, O), RNNCORE_ERR_INVALID_SIZE);
    CHECK_STATUS(rnncore_affine_transposed_forward(x, x, wt, b, M, D, O), RNNCORE_ERR_ALIASING);
    CHECK_STATUS(rnncore_affine_transposed_backward(dx, NULL, db, dy, x, wt, M, D, O), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_affine_transposed_backward(dx, wt, db, dy, x, wt, M, D, O), RNNCORE_ERR_ALIASING);

    free(x); free(wt); free(b); free(y); free(dy); free(dx); free(dwt); free(db);
    free(xd); free(wd); free(bd); free(yd); free(dyd); free(dxd); free(dwd); free(dbd); free(dwtd);
}

int main(void) {
    test_vs_ref(1, 1, 1, 1, 1);
    test_vs_ref(1, 5, 2, 1, 2);      /* M=1, O=2 (a V=2 output layer) */
    test_vs_ref(6, 3, 7, 0, 3);      /* no bias, D≠O */
    test_vs_ref(9, 8, 4, 1, 4);
    test_vs_ref(64, 128, 256, 1, 5); /* BLAS-sized */
    test_vs_ref(200, 32, 1000, 0, 6);
    test_grad(4, 3, 5, 10);
    test_grad(1, 2, 2, 11);
    test_transposed(1, 1, 1, 1, 20);
    test_transposed(7, 5, 3, 0, 21);
    test_transposed(64, 96, 300, 1, 22);  /* BLAS-sized */
    return test_finish("test_affine");
}
