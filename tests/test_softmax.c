/*
 * test_softmax.c — rnncore_softmax_cross_entropy (fused mean loss + gradient) and rnncore_softmax_forward.
 *
 *  (a) kernels vs the double reference: V = 2 .. 10000, ignore_index, dloss scaling, count, NULL dlogits;
 *  (b) the reference gradient vs central differences of the reference loss (double, eps 1e-5);
 *  (c) the kernel gradient vs central differences of the kernel loss (eps 1e-2);
 *  in place (dlogits == logits), ignored rows (zero gradient, not counted, also in place), K = 0,
 *  numerical stability with logits ~ ±1e4 and huge logits (1e30, -1e30, 1e6±1, ±3e38: the loss in the shifted
 *  form (max - z) + log Σ), and non-finite logits reported as RNNCORE_ERR_NON_FINITE.
 */
#include "test_util.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

/* Tolerances for (a). A row's log-sum-exp sums V exponentials; in float32 that sum carries a relative error up
 * to ~V·u, which becomes an absolute error ~V·u in the loss and a relative error ~V·u in every probability.
 * The loss is accumulated in double over rows, so it adds nothing that grows with M, and it is formed as
 * (max - z_y) + log Σ, whose error does not grow with |z| (the former (max + log Σ) - z_y lost ~2^-53·|z| in double: nothing
 * at 1e4, everything at 1e30; test_ce_huge_logits checks that). The gradient's exponents z - max are rounded to
 * float32, off by up to u·|z - max| when z and max are not within a factor 2 of each other, so the probabilities
 * keep Z = 4·u·max|z| of relative slack. Hence
 *   loss:    2·V·u + 8u  absolute,  8u relative
 *   dlogits: (|dloss|/K)·8u absolute (tiny probabilities), 2·(V+8)·u + Z relative. */
static void test_ce_vs_ref(int64_t M, int64_t V, int32_t ignore_index, int n_ignored, float dloss, double center,
                           double spread, uint64_t seed) {
    printf("softmax_cross_entropy M=%lld V=%lld ignore=%d (%d rows) dloss=%g logits %g±%g\n", (long long)M,
           (long long)V, (int)ignore_index, n_ignored, (double)dloss, center, spread);
    rng_t r = {seed};
    float *z = alloc_f(M * V), *dz = alloc_f(M * V);
    int32_t *tg = malloc((size_t)M * sizeof *tg);
    assert(tg);
    fill_f(z, M * V, &r, center - spread, center + spread);
    for (int64_t m = 0; m < M; m++) {
        tg[m] = rng_int(&r, (int32_t)V);
        if (tg[m] == ignore_index) tg[m] = (tg[m] + 1) % (int32_t)V; /* only the rows chosen below are skipped */
    }
    for (int i = 0; i < n_ignored; i++) tg[(i * 3 + 1) % M] = ignore_index;
    fill_const_f(dz, M * V, NAN);
    double *zd = to_d(z, M * V), *dzd = alloc_d(M * V), loss = NAN, loss_d = NAN;
    int64_t K = -1, K_d = -1;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &K, dz, z, tg, M, V, ignore_index, dloss), RNNCORE_OK);
    ref_softmax_cross_entropy(&loss_d, &K_d, dzd, zd, tg, M, V, ignore_index, dloss);
    CHECK(K == K_d);
    CHECK(isfinite(loss));
    double zmax = 0;
    for (int64_t i = 0; i < M * V; i++) zmax = fmax(zmax, fabs(z[i]));
    double Z = 4 * U32 * zmax;
    check_close_dd("softmax_cross_entropy loss", &loss, &loss_d, 1, 2.0 * (double)V * U32 + 8 * U32, 8 * U32);
    double ta = K_d > 0 ? fabs(dloss) / (double)K_d * 8 * U32 : 0, tr = 2.0 * (double)(V + 8) * U32 + Z;
    check_close_fd("softmax_cross_entropy dlogits", dz, dzd, M * V, ta, tr);
    int ignored_zero = 1;
    for (int64_t m = 0; m < M; m++)
        if (tg[m] == ignore_index)
            for (int64_t v = 0; v < V; v++) ignored_zero &= dz[m * V + v] == 0.0f;
    CHECK(ignored_zero);

    /* loss only (dlogits NULL, count NULL) gives the same loss */
    double loss2 = NAN;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss2, NULL, NULL, z, tg, M, V, ignore_index, dloss), RNNCORE_OK);
    CHECK(loss2 == loss);

    /* in place: the gradient overwrites the logits, equal to the out-of-place result (ignored rows too) */
    float *zi = alloc_f(M * V);
    memcpy(zi, z, (size_t)(M * V) * sizeof *zi);
    double loss3 = NAN; int64_t K3 = -1;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss3, &K3, zi, zi, tg, M, V, ignore_index, dloss), RNNCORE_OK);
    CHECK(loss3 == loss && K3 == K);
    check_close_ff("softmax_cross_entropy in place vs out", zi, dz, M * V, 0, 0);
    free(z); free(dz); free(tg); free(zd); free(dzd); free(zi);
}

/* Every row ignored: K = 0, loss 0, gradient all zeros, status OK. */
static void test_ce_all_ignored(void) {
    printf("softmax_cross_entropy with every row ignored\n");
    float z[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, dz[3 * 4];
    int32_t tg[3] = {-100, -100, -100};
    double loss = NAN; int64_t K = -1;
    fill_const_f(dz, 12, NAN);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &K, dz, z, tg, 3, 4, -100, 1.0f), RNNCORE_OK);
    CHECK(K == 0 && loss == 0.0 && all_equal_f(dz, 12, 0.0f));
}

/* Non-finite logits: outputs still written, RNNCORE_ERR_NON_FINITE returned. */
static void test_ce_non_finite(void) {
    printf("softmax_cross_entropy non-finite logits\n");
    float z[2 * 3] = {0.5f, NAN, 1.0f, 0.1f, 0.2f, 0.3f}, dz[6];
    int32_t tg[2] = {0, 2};
    double loss = 0; int64_t K = -1;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &K, dz, z, tg, 2, 3, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 RNNCORE_ERR_NON_FINITE);
    CHECK(!isfinite(loss) && K == 2);
    float zi[3] = {INFINITY, 0.0f, 1.0f};
    int32_t t1[1] = {1};
    loss = 0;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, zi, t1, 1, 3, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 RNNCORE_ERR_NON_FINITE);
    CHECK(!isfinite(loss));
}

/* Huge logits (issue 10): every row's loss is (max - z_y) + log Σ e^(z - max), so its accuracy must not depend on
 * the offset of the row. Rows of one (M, V) block, each at its own offset: all 1e30, all -1e30 (3×7: loss ln 7
 * exactly, the case that gave 0), 1e6 and -1e6 with a spread of ±1 (float32 steps 0.0625 there: the spread is
 * representable and every z - max is exact, Sterbenz), 1e7 with integer spread (step 1), ±3e38 mixed in one row
 * (z - max overflows float32 to -inf: the term must vanish, not poison the row), and a row whose target lies
 * 2e30 below its max (loss 2e30, finite in double).
 * Reference: float64 in the same shifted form (tests/reference.c) on the same float32 logits, so the only
 * difference is the float32 exponentials and the float32 sum of V terms.
 * Tolerance: loss 2·V·u + 8u absolute + 8u relative, as in test_ce_vs_ref but WITHOUT any term in |z| (an
 * unshifted loss fails by ln 7 ≈ 1.95 here); gradient (|dloss|/K)·8u absolute + 2·(V+8)·u relative: every
 * z - max here is exact in float32 (Sterbenz, or a difference below -87 that the exponential clamps to a term
 * of at most 1.6e-38), so the probabilities need no slack for the offset either. */
static void test_ce_huge_logits(void) {
    printf("softmax_cross_entropy huge logits (1e30, -1e30, 1e6±1, 1e7, ±3e38) vs the shifted float64 reference\n");
    enum { V = 7, M = 9 };
    float z[M * V], dz[M * V];
    int32_t tg[M];
    rng_t r = {31};
    for (int v = 0; v < V; v++) {
        z[0 * V + v] = 1e30f;
        z[1 * V + v] = 1e30f;
        z[2 * V + v] = -1e30f;
        z[3 * V + v] = 1e6f + (float)rng_uniform(&r, -1, 1);
        z[4 * V + v] = -1e6f + (float)rng_uniform(&r, -1, 1);
        z[5 * V + v] = 1e7f + (float)rng_int(&r, 5);
        z[6 * V + v] = v % 2 ? 3e38f : -3e38f;
        z[7 * V + v] = v == 0 ? 1e30f : -1e30f;
        z[8 * V + v] = (float)rng_uniform(&r, -2, 2);
    }
    for (int m = 0; m < M; m++) tg[m] = (int32_t)((m * 3 + 1) % V);
    tg[6] = 0; /* a -3e38 logit: loss 6e38 */
    tg[7] = 3; /* 2e30 below the row's max */

    /* the reported case alone: a 3×7 block of 1e30 has loss ln 7 */
    double loss = NAN; int64_t K = -1;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &K, NULL, z, tg, 3, V, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 RNNCORE_OK);
    const double ln7 = log(7.0);
    check_close_dd("3x7 logits 1e30/-1e30: loss = ln 7", &loss, &ln7, 1, 2.0 * V * U32 + 8 * U32, 8 * U32);
    CHECK(K == 3);

    /* every row against the reference, one row at a time (each row's loss is its own mean) and all together */
    for (int m = 0; m <= M; m++) {
        const float *zr = m < M ? z + m * V : z;
        const int64_t rows = m < M ? 1 : M;
        const int32_t *tr = m < M ? tg + m : tg;
        double *zd = to_d(zr, rows * V), *dzd = alloc_d(rows * V), loss_d = NAN;
        int64_t K_d = -1;
        fill_const_f(dz, M * V, NAN);
        loss = NAN; K = -1;
        CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &K, dz, zr, tr, rows, V, RNNCORE_NO_IGNORE_INDEX, 1.5f),
                     RNNCORE_OK);
        ref_softmax_cross_entropy(&loss_d, &K_d, dzd, zd, tr, rows, V, RNNCORE_NO_IGNORE_INDEX, 1.5);
        char what[64];
        snprintf(what, sizeof what, "huge logits %s%d loss", m < M ? "row " : "all rows ", m < M ? m : M);
        CHECK(K == K_d && isfinite(loss_d));
        check_close_dd(what, &loss, &loss_d, 1, 2.0 * V * U32 + 8 * U32, 8 * U32);
        snprintf(what, sizeof what, "huge logits %s%d dlogits", m < M ? "row " : "all rows ", m < M ? m : M);
        check_close_fd(what, dz, dzd, rows * V, 1.5 / (double)K_d * 8 * U32, 2.0 * (V + 8) * U32);
        free(zd); free(dzd);
    }

    /* softmax_forward on the same rows: probabilities sum to 1 and match the reference */
    float p[M * V];
    double *zd = to_d(z, M * V), *pd = alloc_d(M * V);
    CHECK_STATUS(rnncore_softmax_forward(p, z, M, V), RNNCORE_OK);
    ref_softmax_forward(pd, zd, M, V);
    check_close_fd("huge logits softmax_forward probs", p, pd, M * V, 8 * U32, 2.0 * (V + 8) * U32);
    free(zd); free(pd);
}

/* The kernels' vectorised exponential: softmax of the row (0, d) is e^d / (1 + e^d); over d in [-87, 0] its
 * relative error against double must stay within a few float32 ulps (exp error < 2e-7, division and sum add about
 * 1e-7 more: tolerance 5e-7). Below -87 the exponential is clamped: the result must stay within 1e-37 of zero. */
static void test_exp_accuracy(void) {
    printf("softmax exponential accuracy over [-87, 0] and below\n");
    enum { R = 20001 };
    static float z[2 * R];
    for (int i = 0; i < R; i++) {
        z[2 * i] = 0.0f;
        z[2 * i + 1] = -87.0f * (float)i / (float)(R - 1);
    }
    CHECK_STATUS(rnncore_softmax_forward(z, z, R, 2), RNNCORE_OK);
    double worst = 0.0;
    for (int i = 0; i < R; i++) {
        const double d = (double)(-87.0f * (float)i / (float)(R - 1));
        const double ref = exp(d) / (1.0 + exp(d));
        const double err = fabs((double)z[2 * i + 1] - ref) / ref;
        worst = err > worst ? err : worst;
    }
    printf("  exp relative error: max %.3g (tol 5e-7)\n", worst);
    CHECK(worst <= 5e-7);
    float far[3] = {0.0f, -200.0f, -1e30f};
    CHECK_STATUS(rnncore_softmax_forward(far, far, 1, 3), RNNCORE_OK);
    CHECK(far[0] == 1.0f && far[1] >= 0.0f && far[1] < 1e-37f && far[2] >= 0.0f && far[2] < 1e-37f);
}

/* A NaN deep inside a long row (where the vectorised max may pass over it) still makes the loss non-finite. */
static void test_nan_inside_long_row(void) {
    printf("softmax_cross_entropy NaN inside a 10000-wide row\n");
    enum { V = 10000 };
    static float z[V];
    for (int v = 0; v < V; v++) z[v] = (float)(v % 7) * 0.1f;
    z[5003] = NAN;
    int32_t t[1] = {3};
    double loss = 0;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, z, t, 1, V, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 RNNCORE_ERR_NON_FINITE);
    CHECK(isnan(loss));
}

/* ---- gradient checks ----------------------------------------------------------------------------------------- */

typedef struct { float *z; double *zd; const int32_t *tg; int64_t M, V; int32_t ign; float dloss; } ce_ctx;

/* L = dloss · mean loss, so ∂L/∂logits is exactly what the kernel writes to dlogits. */
static double ce_loss_f(void *v) {
    ce_ctx *c = v; double l = NAN;
    rnncore_status s = rnncore_softmax_cross_entropy(&l, NULL, NULL, c->z, c->tg, c->M, c->V, c->ign, c->dloss);
    assert(s == RNNCORE_OK);
    return (double)c->dloss * l;
}
static double ce_loss_d(void *v) {
    ce_ctx *c = v; double l = NAN;
    ref_softmax_cross_entropy(&l, NULL, NULL, c->zd, c->tg, c->M, c->V, c->ign, c->dloss);
    return (double)c->dloss * l;
}

/* (b) double, eps 1e-5: truncation ~eps²·L''' ≈ 1e-11, rounding ~1e-16·|L|/eps ≈ 1e-11: 1e-9 abs + 1e-7 rel.
 * (c) float32 logits, loss summed in double by the kernel: the loss carries ~V·u·|L| ≈ 1e-6 rounding from the
 * float32 exponentials, which central differences divide by 2·eps = 2e-2 (~5e-5); truncation is
 * eps²·|L'''|/6 ≲ 2e-5·dloss/K. Entries are O(dloss/K) ≈ 0.3: tol 2e-4 abs + 1e-2 rel. */
static void test_ce_grad(int64_t M, int64_t V, uint64_t seed) {
    printf("softmax_cross_entropy gradient checks M=%lld V=%lld\n", (long long)M, (long long)V);
    rng_t r = {seed};
    float *z = alloc_f(M * V), *dz = alloc_f(M * V);
    int32_t *tg = malloc((size_t)M * sizeof *tg);
    assert(tg);
    fill_f(z, M * V, &r, -2, 2);
    for (int64_t m = 0; m < M; m++) tg[m] = m == 1 ? -1 : rng_int(&r, (int32_t)V);
    ce_ctx c = {z, to_d(z, M * V), tg, M, V, -1, 1.7f};
    double *dzd = alloc_d(M * V), l;
    ref_softmax_cross_entropy(&l, NULL, dzd, c.zd, tg, M, V, -1, 1.7f);
    grad_check_d("[ref] softmax_cross_entropy dlogits", c.zd, dzd, M * V, 1e-5, ce_loss_d, &c, 1e-9, 1e-7);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&l, NULL, dz, z, tg, M, V, -1, 1.7f), RNNCORE_OK);
    grad_check_f("[f32] softmax_cross_entropy dlogits", z, dz, M * V, 1e-2, ce_loss_f, &c, 2e-4, 1e-2);
    free(z); free(dz); free(tg); free(c.zd); free(dzd);
}

/* ---- softmax forward ------------------------------------------------------------------------------------------ */

/* Probabilities carry ~V·u relative error from the float32 normaliser, plus Z = 4·u·max|z| for huge logits
 * (see above): 8u abs + (2(V+8)u + Z) rel. */
static void test_softmax_vs_ref(int64_t M, int64_t V, double center, double spread, uint64_t seed) {
    printf("softmax_forward M=%lld V=%lld logits %g±%g\n", (long long)M, (long long)V, center, spread);
    rng_t r = {seed};
    float *z = alloc_f(M * V), *p = alloc_f(M * V);
    fill_f(z, M * V, &r, center - spread, center + spread);
    fill_const_f(p, M * V, NAN);
    double *zd = to_d(z, M * V), *pd = alloc_d(M * V);
    CHECK_STATUS(rnncore_softmax_forward(p, z, M, V), RNNCORE_OK);
    ref_softmax_forward(pd, zd, M, V);
    double zmax = 0;
    for (int64_t i = 0; i < M * V; i++) zmax = fmax(zmax, fabs(z[i]));
    double tr = 2.0 * (double)(V + 8) * U32 + 4 * U32 * zmax;
    check_close_fd("softmax_forward probs", p, pd, M * V, 8 * U32, tr);
    double worst = 0;
    for (int64_t m = 0; m < M; m++) {
        double s = 0;
        for (int64_t v = 0; v < V; v++) s += p[m * V + v];
        if (fabs(s - 1) > worst) worst = fabs(s - 1);
    }
    CHECK(worst <= tr);
    CHECK_STATUS(rnncore_softmax_forward(z, z, M, V), RNNCORE_OK); /* in place */
    check_close_ff("softmax_forward in place vs out", z, p, M * V, 0, 0);
    free(z); free(p); free(zd); free(pd);
}

int main(void) {
    test_ce_vs_ref(1, 2, RNNCORE_NO_IGNORE_INDEX, 0, 1.0f, 0, 3, 1);      /* N=1, V=2 */
    test_ce_vs_ref(6, 2, -1, 2, 1.0f, 0, 3, 2);                          /* V=2 with ignored rows */
    test_ce_vs_ref(9, 13, -100, 3, 2.5f, 0, 4, 3);                       /* dloss scaling */
    test_ce_vs_ref(8, 11, 0, 2, 1.0f, 0, 4, 4);                          /* ignore_index inside [0, V) */
    test_ce_vs_ref(16, 50, RNNCORE_NO_IGNORE_INDEX, 0, 0.5f, 0, 8, 5);
    test_ce_vs_ref(4, 10000, -1, 1, 1.0f, 0, 5, 6);                      /* large vocabulary */
    test_ce_vs_ref(5, 37, -1, 1, 1.0f, 1e4, 3, 7);                       /* logits ~ +1e4: stable */
    test_ce_vs_ref(5, 37, -1, 0, 1.0f, -1e4, 3, 8);                      /* logits ~ -1e4 */
    test_ce_vs_ref(3, 7, -1, 0, 1.0f, 0, 1e4, 9);                        /* spread 1e4: p ~ onehot */
    test_ce_all_ignored();
    test_ce_non_finite();
    test_ce_huge_logits();
    test_exp_accuracy();
    test_nan_inside_long_row();
    test_ce_grad(4, 5, 10);
    test_ce_grad(1, 2, 11);
    test_softmax_vs_ref(1, 2, 0, 3, 20);
    test_softmax_vs_ref(7, 19, 0, 5, 21);
    test_softmax_vs_ref(3, 10000, 0, 5, 22);
    test_softmax_vs_ref(4, 33, 1e4, 3, 23);
    test_softmax_vs_ref(4, 33, -1e4, 1e4, 24);
    return test_finish("test_softmax");
}
