/*
 * test_adaptive_softmax.c — rnncore_adaptive_softmax_workspace, rnncore_adaptive_softmax_cross_entropy and
 * rnncore_adaptive_softmax_log_prob.
 *
 *  (a) kernels vs the float64 reference (tests/reference.c, row by row, no gathering) for C = 0 .. 3 clusters,
 *      with and without head bias, uneven projections, rows all in one cluster and clusters no row reaches: loss,
 *      count, dx, every weight gradient (accumulated onto non-zero values), every log-probability; the workspace
 *      formula, and no write past the queried workspace;
 *  (b) exp(log_prob) rows sum to 1 and the loss is the mean of -log_prob at the targets;
 *  (c) the reference gradient vs central differences of the reference loss (float64) for dx, the head weight and
 *      bias, each tail projection and output;
 *  (d) C = 0 equals rnncore_affine_forward + rnncore_softmax_cross_entropy + rnncore_affine_backward;
 *  (e) ignored rows: zero dx rows, not counted; every row ignored: loss 0, count 0, gradients untouched;
 *  (f) every bad argument returns its status and writes nothing;
 *  (g) a NaN in x gives RNNCORE_ERR_NON_FINITE with the outputs written;
 *  (h) determinism: two identical calls give identical bits; the loss-only call gives the same loss.
 */
#include "test_util.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */
#define MAXC 4
#define RC_N(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* One problem: shape, float32 weights and their float64 copies, inputs, targets. */
typedef struct {
    int64_t M, H, C, K, V;
    int64_t cut[MAXC + 1], proj[MAXC];
    rnncore_adaptive_softmax shape;
    rnncore_adaptive_weights w;
    float *hw, *hb, *tp[MAXC], *to[MAXC], *x;
    const float *tpc[MAXC], *toc[MAXC];
    double *hwd, *hbd, *tpd[MAXC], *tod[MAXC], *xd;
    const double *tpdc[MAXC], *todc[MAXC];
    int32_t *tg;
    int64_t ws; /* the workspace query */
} problem;

static int64_t cluster_s(const problem *p, int64_t i) { return p->cut[i + 1] - p->cut[i]; }

/* targets: M entries, or NULL for uniformly random words. Weights in ±0.5, x in ±1: logits of order 1. */
static void make_problem(problem *p, int64_t M, int64_t H, int64_t C, const int64_t *cut, const int64_t *proj,
                         int bias, const int32_t *targets, uint64_t seed) {
    memset(p, 0, sizeof *p);
    rng_t r = {seed};
    p->M = M; p->H = H; p->C = C;
    for (int64_t i = 0; i <= C; i++) p->cut[i] = cut[i];
    for (int64_t i = 0; i < C; i++) p->proj[i] = proj[i];
    p->K = cut[0] + C; p->V = cut[C];
    p->shape = (rnncore_adaptive_softmax){.H = H, .clusters = C, .cutoffs = p->cut, .projections = C ? p->proj : NULL};
    p->hw = alloc_f(H * p->K); fill_f(p->hw, H * p->K, &r, -0.5, 0.5);
    if (bias) { p->hb = alloc_f(p->K); fill_f(p->hb, p->K, &r, -0.5, 0.5); }
    for (int64_t i = 0; i < C; i++) {
        p->tp[i] = alloc_f(H * proj[i]); fill_f(p->tp[i], H * proj[i], &r, -0.5, 0.5);
        p->to[i] = alloc_f(proj[i] * cluster_s(p, i)); fill_f(p->to[i], proj[i] * cluster_s(p, i), &r, -0.5, 0.5);
        p->tpc[i] = p->tp[i]; p->toc[i] = p->to[i];
        p->tpd[i] = to_d(p->tp[i], H * proj[i]); p->tod[i] = to_d(p->to[i], proj[i] * cluster_s(p, i));
        p->tpdc[i] = p->tpd[i]; p->todc[i] = p->tod[i];
    }
    p->w = (rnncore_adaptive_weights){.head_weight = p->hw, .head_bias = p->hb, .tail_projection = C ? p->tpc : NULL,
                                      .tail_output = C ? p->toc : NULL};
    p->x = alloc_f(M * H); fill_f(p->x, M * H, &r, -1, 1);
    p->hwd = to_d(p->hw, H * p->K);
    p->hbd = bias ? to_d(p->hb, p->K) : NULL;
    p->xd = to_d(p->x, M * H);
    p->tg = malloc((size_t)M * sizeof *p->tg); assert(p->tg);
    for (int64_t m = 0; m < M; m++) p->tg[m] = targets ? targets[m] : rng_int(&r, (int32_t)p->V);
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&p->ws, &p->shape, M), RNNCORE_OK);
}

static void free_problem(problem *p) {
    free(p->hw); free(p->hb); free(p->x); free(p->hwd); free(p->hbd); free(p->xd); free(p->tg);
    for (int64_t i = 0; i < p->C; i++) { free(p->tp[i]); free(p->to[i]); free(p->tpd[i]); free(p->tod[i]); }
}

/* Weight gradients in float32 and float64, starting from the same random values (they are accumulated). */
typedef struct {
    float *hw, *hb, *tp[MAXC], *to[MAXC];
    double *hwd, *hbd, *tpd[MAXC], *tod[MAXC];
    rnncore_adaptive_gradients g;
} grads;

static void make_grads(grads *g, const problem *p, uint64_t seed) {
    memset(g, 0, sizeof *g);
    rng_t r = {seed};
    g->hw = alloc_f(p->H * p->K); fill_f(g->hw, p->H * p->K, &r, -1, 1); g->hwd = to_d(g->hw, p->H * p->K);
    if (p->hb) { g->hb = alloc_f(p->K); fill_f(g->hb, p->K, &r, -1, 1); g->hbd = to_d(g->hb, p->K); }
    for (int64_t i = 0; i < p->C; i++) {
        const int64_t np = p->H * p->proj[i], no = p->proj[i] * cluster_s(p, i);
        g->tp[i] = alloc_f(np); fill_f(g->tp[i], np, &r, -1, 1); g->tpd[i] = to_d(g->tp[i], np);
        g->to[i] = alloc_f(no); fill_f(g->to[i], no, &r, -1, 1); g->tod[i] = to_d(g->to[i], no);
    }
    g->g = (rnncore_adaptive_gradients){.head_weight = g->hw, .head_bias = g->hb, .tail_projection = g->tp,
                                        .tail_output = g->to};
}

static void free_grads(grads *g, const problem *p) {
    free(g->hw); free(g->hb); free(g->hwd); free(g->hbd);
    for (int64_t i = 0; i < p->C; i++) { free(g->tp[i]); free(g->to[i]); free(g->tpd[i]); free(g->tod[i]); }
}

static void ref_run(const problem *p, double *loss, int64_t *count, double *lp, double *dx, grads *g,
                    int32_t ignore, double dloss) {
    ref_adaptive_softmax(loss, count, lp, dx, g ? g->hwd : NULL, g ? g->hbd : NULL, g ? g->tpd : NULL,
                         g ? g->tod : NULL, p->xd, p->tg, p->M, p->H, p->C, p->cut, p->proj, p->hwd, p->hbd,
                         p->tpdc, p->todc, ignore, dloss);
}

/* Tolerances for (a), from float32 rounding. Every logit is a float32 GEMM over H (and a projection over P):
 * its error is below ~(H + P + 2)·u·Σ|terms| ≲ 40·u·(a few) ≈ 1e-5 at most in these shapes (x ±1, weights
 * ±0.5, H, P <= 16), in practice about √(H+P)·u ≈ 3e-7; a row's log-sum-exp adds the float32 exponentials
 * (2e-7 relative each) and a sum of K or S terms. Log-probabilities and the loss are O(1..5): 2e-5 absolute +
 * 2e-6 relative. Gradients: probabilities times scale = dloss/K ≲ 1, carried through one or two more float32
 * GEMMs onto accumulated values of order 1: 1e-5 absolute + 1e-5 relative (measured errors are printed, about
 * 1e-7). */
#define TOL_LP_ABS 2e-5
#define TOL_LP_REL 2e-6
#define TOL_G_ABS 1e-5
#define TOL_G_REL 1e-5

static void test_vs_ref(const char *name, int64_t M, int64_t H, int64_t C, const int64_t *cut, const int64_t *proj,
                        int bias, const int32_t *targets, int32_t ignore, float dloss, uint64_t seed) {
    printf("%s: M=%lld H=%lld C=%lld V=%lld bias=%d ignore=%d dloss=%g\n", name, (long long)M, (long long)H,
           (long long)C, (long long)cut[C], bias, (int)ignore, (double)dloss);
    problem p;
    make_problem(&p, M, H, C, cut, proj, bias, targets, seed);
    if (ignore >= 0 && ignore < p.V) p.tg[M / 2] = ignore; /* an ignore_index inside [0, V) is really skipped */
    int64_t per_row = p.K;
    if (C > 0) {
        int64_t mp = 0, ms = 0;
        for (int64_t i = 0; i < C; i++) {
            mp = p.proj[i] > mp ? p.proj[i] : mp;
            ms = cluster_s(&p, i) > ms ? cluster_s(&p, i) : ms;
        }
        per_row += H + mp + ms;
    }
    CHECK(p.ws == M * per_row); /* the documented formula */

    grads g;
    make_grads(&g, &p, seed + 100);
    const int64_t guard = 64;
    float *ws = alloc_f(p.ws + guard), *dx = alloc_f(M * H), *lp = alloc_f(M * p.V);
    fill_const_f(ws, p.ws + guard, 1234.5f);
    fill_const_f(dx, M * H, NAN);
    fill_const_f(lp, M * p.V, NAN);
    double loss = NAN, loss_d = NAN;
    int64_t count = -1, count_d = -1;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss, &count, dx, &g.g, p.x, p.tg, M, &p.shape, &p.w,
                                                        ignore, dloss, ws, p.ws),
                 RNNCORE_OK);
    CHECK(all_equal_f(ws + p.ws, guard, 1234.5f)); /* nothing written past the queried size */
    double *dxd = alloc_d(M * H), *lpd = alloc_d(M * p.V);
    ref_run(&p, &loss_d, &count_d, lpd, dxd, &g, ignore, dloss);
    CHECK(count == count_d);
    check_close_dd("loss", &loss, &loss_d, 1, TOL_LP_ABS, TOL_LP_REL);
    check_close_fd("dx", dx, dxd, M * H, TOL_G_ABS, TOL_G_REL);
    check_close_fd("d head_weight", g.hw, g.hwd, H * p.K, TOL_G_ABS, TOL_G_REL);
    if (bias) check_close_fd("d head_bias", g.hb, g.hbd, p.K, TOL_G_ABS, TOL_G_REL);
    for (int64_t i = 0; i < C; i++) {
        char what[64];
        snprintf(what, sizeof what, "d tail_projection[%lld]", (long long)i);
        check_close_fd(what, g.tp[i], g.tpd[i], H * p.proj[i], TOL_G_ABS, TOL_G_REL);
        snprintf(what, sizeof what, "d tail_output[%lld]", (long long)i);
        check_close_fd(what, g.to[i], g.tod[i], p.proj[i] * cluster_s(&p, i), TOL_G_ABS, TOL_G_REL);
    }
    int ignored_zero = 1;
    for (int64_t m = 0; m < M; m++)
        if (p.tg[m] == ignore)
            for (int64_t h = 0; h < H; h++) ignored_zero &= dx[m * H + h] == 0.0f;
    CHECK(ignored_zero);

    /* log_prob against the reference; rows normalised; the loss is the mean of -log_prob at the targets */
    fill_const_f(ws, p.ws + guard, 1234.5f);
    CHECK_STATUS(rnncore_adaptive_softmax_log_prob(lp, p.x, M, &p.shape, &p.w, ws, p.ws), RNNCORE_OK);
    CHECK(all_equal_f(ws + p.ws, guard, 1234.5f));
    check_close_fd("log_probs", lp, lpd, M * p.V, TOL_LP_ABS, TOL_LP_REL);
    /* Σ exp: each term within ~(TOL_LP_ABS + 5·TOL_LP_REL) relative of the exact one: 1e-5 covers it */
    double worst = 0, nll = 0;
    for (int64_t m = 0; m < M; m++) {
        double s = 0;
        for (int64_t v = 0; v < p.V; v++) s += exp((double)lp[m * p.V + v]);
        worst = fmax(worst, fabs(s - 1));
        if (p.tg[m] != ignore) nll -= lp[m * p.V + p.tg[m]];
    }
    printf("  rows of exp(log_probs): max |Σ - 1| %.2e (tol 1e-5)\n", worst);
    CHECK(worst <= 1e-5);
    if (count > 0) {
        nll /= (double)count;
        check_close_dd("loss vs mean -log_prob[target]", &loss, &nll, 1, TOL_LP_ABS, TOL_LP_REL);
    }

    /* determinism: the same call twice gives the same bits (fresh gradients from the same start) */
    grads g2, g3;
    make_grads(&g2, &p, seed + 100);
    make_grads(&g3, &p, seed + 100);
    float *dx2 = alloc_f(M * H), *dx3 = alloc_f(M * H);
    double loss2 = NAN, loss3 = NAN;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss2, NULL, dx2, &g2.g, p.x, p.tg, M, &p.shape, &p.w,
                                                        ignore, dloss, ws, p.ws),
                 RNNCORE_OK);
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss3, NULL, dx3, &g3.g, p.x, p.tg, M, &p.shape, &p.w,
                                                        ignore, dloss, ws, p.ws),
                 RNNCORE_OK);
    CHECK(memcmp(&loss2, &loss3, sizeof loss2) == 0 && memcmp(&loss2, &loss, sizeof loss) == 0);
    CHECK(memcmp(dx2, dx3, (size_t)(M * H) * sizeof *dx2) == 0 && memcmp(dx2, dx, (size_t)(M * H) * sizeof *dx) == 0);
    int same = memcmp(g2.hw, g3.hw, (size_t)(H * p.K) * sizeof(float)) == 0;
    if (bias) same &= memcmp(g2.hb, g3.hb, (size_t)p.K * sizeof(float)) == 0;
    for (int64_t i = 0; i < C; i++) {
        same &= memcmp(g2.tp[i], g3.tp[i], (size_t)(H * p.proj[i]) * sizeof(float)) == 0;
        same &= memcmp(g2.to[i], g3.to[i], (size_t)(p.proj[i] * cluster_s(&p, i)) * sizeof(float)) == 0;
    }
    CHECK(same);
    float *lp2 = alloc_f(M * p.V);
    CHECK_STATUS(rnncore_adaptive_softmax_log_prob(lp2, p.x, M, &p.shape, &p.w, ws, p.ws), RNNCORE_OK);
    CHECK(memcmp(lp, lp2, (size_t)(M * p.V) * sizeof *lp) == 0);

    /* loss only (no dx, no gradients) and dx only (no gradients): the same loss and dx. The loss-only path sums
     * the exponentials in blocks, so it may round differently in the last bits: 1e-12 relative. */
    double loss4 = NAN;
    int64_t count4 = -1;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss4, &count4, NULL, NULL, p.x, p.tg, M, &p.shape, &p.w,
                                                        ignore, dloss, ws, p.ws),
                 RNNCORE_OK);
    CHECK(count4 == count);
    check_close_dd("loss only vs full", &loss4, &loss, 1, 0, 1e-12);
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss4, NULL, dx3, NULL, p.x, p.tg, M, &p.shape, &p.w,
                                                        ignore, dloss, ws, p.ws),
                 RNNCORE_OK);
    CHECK(memcmp(dx3, dx, (size_t)(M * H) * sizeof *dx) == 0);

    free_grads(&g, &p); free_grads(&g2, &p); free_grads(&g3, &p);
    free(ws); free(dx); free(dx2); free(dx3); free(lp); free(lp2); free(dxd); free(lpd);
    free_problem(&p);
}

/* ---- (c) central differences on the reference ----------------------------------------------------------------- */

typedef struct { problem *p; int32_t ignore; double dloss; } fd_ctx;

static double fd_loss(void *v) {
    fd_ctx *c = v;
    double l = NAN;
    ref_run(c->p, &l, NULL, NULL, NULL, NULL, c->ignore, c->dloss);
    return c->dloss * l;
}

/* float64, eps 1e-5: truncation eps²·|L'''|/6 ≈ 1e-11, rounding 1e-16·|L|/eps ≈ 1e-11 against gradients of order
 * 0.1: 1e-8 absolute + 1e-6 relative. The analytic gradients start from zero here (accumulation is checked in
 * (a)). */
static void test_ref_gradients(int64_t C, const int64_t *cut, const int64_t *proj, int bias, uint64_t seed) {
    printf("reference gradients vs central differences: C=%lld bias=%d\n", (long long)C, bias);
    enum { M = 7, H = 5 };
    problem p;
    make_problem(&p, M, H, C, cut, proj, bias, NULL, seed);
    p.tg[2] = -1; /* one ignored row */
    if (C > 0) p.tg[3] = (int32_t)cut[C - 1]; /* the last cluster reached */
    double *dx = alloc_d(M * H), *dhw = alloc_d(H * p.K), *dhb = alloc_d(p.K);
    double *dtp[MAXC], *dto[MAXC];
    for (int64_t i = 0; i < C; i++) { dtp[i] = alloc_d(H * p.proj[i]); dto[i] = alloc_d(p.proj[i] * cluster_s(&p, i)); }
    fd_ctx c = {&p, -1, 1.3};
    double l;
    ref_adaptive_softmax(&l, NULL, NULL, dx, dhw, bias ? dhb : NULL, dtp, dto, p.xd, p.tg, M, H, C, p.cut, p.proj,
                         p.hwd, p.hbd, p.tpdc, p.todc, -1, 1.3);
    grad_check_d("[ref] dx", p.xd, dx, M * H, 1e-5, fd_loss, &c, 1e-8, 1e-6);
    grad_check_d("[ref] d head_weight", p.hwd, dhw, H * p.K, 1e-5, fd_loss, &c, 1e-8, 1e-6);
    if (bias) grad_check_d("[ref] d head_bias", p.hbd, dhb, p.K, 1e-5, fd_loss, &c, 1e-8, 1e-6);
    for (int64_t i = 0; i < C; i++) {
        grad_check_d("[ref] d tail_projection", p.tpd[i], dtp[i], H * p.proj[i], 1e-5, fd_loss, &c, 1e-8, 1e-6);
        grad_check_d("[ref] d tail_output", p.tod[i], dto[i], p.proj[i] * cluster_s(&p, i), 1e-5, fd_loss, &c,
                     1e-8, 1e-6);
        free(dtp[i]); free(dto[i]);
    }
    free(dx); free(dhw); free(dhb);
    free_problem(&p);
}

/* ---- (d) C = 0 is an affine layer and the full softmax ---------------------------------------------------------- */

/* The same float32 operations in the same order (one GEMM x·W + b, the shared row cross-entropy, dx = dZ·Wᵀ,
 * dW += xᵀ·dZ, db += Σ dZ), so only a BLAS that blocks differently for the two calls could make them differ:
 * 1e-7 absolute + 1e-6 relative. */
static void test_c0_equals_full_softmax(int bias) {
    printf("C = 0 equals affine + softmax_cross_entropy (bias=%d)\n", bias);
    enum { M = 9, H = 6, V = 23 };
    const int64_t cut[1] = {V};
    problem p;
    make_problem(&p, M, H, 0, cut, NULL, bias, NULL, 40 + (uint64_t)bias);
    p.tg[4] = -1;
    grads g;
    make_grads(&g, &p, 41);
    float *ws = alloc_f(p.ws), *dx = alloc_f(M * H);
    double loss = NAN;
    int64_t count = -1;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss, &count, dx, &g.g, p.x, p.tg, M, &p.shape, &p.w, -1,
                                                        0.7f, ws, p.ws),
                 RNNCORE_OK);
    float y[M * V], dz[M * V], dx2[M * H], dw2[H * V], db2[V];
    rng_t r = {41};
    fill_f(dw2, H * V, &r, -1, 1); /* the same start as make_grads(…, 41) */
    if (bias) fill_f(db2, V, &r, -1, 1);
    double loss2 = NAN;
    int64_t count2 = -1;
    CHECK_STATUS(rnncore_affine_forward(y, p.x, p.hw, p.hb, M, H, V), RNNCORE_OK);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss2, &count2, dz, y, p.tg, M, V, -1, 0.7f), RNNCORE_OK);
    CHECK_STATUS(rnncore_affine_backward(dx2, dw2, bias ? db2 : NULL, dz, p.x, p.hw, M, H, V), RNNCORE_OK);
    CHECK(count == count2 && count == M - 1);
    check_close_dd("C=0 loss vs full softmax", &loss, &loss2, 1, 0, 1e-6);
    check_close_ff("C=0 dx vs affine_backward", dx, dx2, M * H, 1e-7, 1e-6);
    check_close_ff("C=0 dW vs affine_backward", g.hw, dw2, H * V, 1e-7, 1e-6);
    if (bias) check_close_ff("C=0 db vs affine_backward", g.hb, db2, V, 1e-7, 1e-6);
    free_grads(&g, &p); free(ws); free(dx);
    free_problem(&p);
}

/* ---- (e) every row ignored ------------------------------------------------------------------------------------- */

static void test_all_ignored(void) {
    printf("every row ignored: loss 0, count 0, dx zero, gradients untouched\n");
    const int64_t cut[3] = {3, 7, 12}, proj[2] = {4, 2};
    const int32_t tg[4] = {-100, -100, -100, -100};
    problem p;
    make_problem(&p, 4, 5, 2, cut, proj, 1, tg, 50);
    grads g;
    make_grads(&g, &p, 51);
    float *ws = alloc_f(p.ws), dx[4 * 5];
    fill_const_f(dx, 4 * 5, NAN);
    double loss = NAN;
    int64_t count = -1;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss, &count, dx, &g.g, p.x, p.tg, 4, &p.shape, &p.w, -100,
                                                        1.0f, ws, p.ws),
                 RNNCORE_OK);
    CHECK(loss == 0.0 && count == 0 && all_equal_f(dx, 4 * 5, 0.0f));
    int same = 1;
    for (int64_t i = 0; i < p.H * p.K; i++) same &= g.hw[i] == (float)g.hwd[i];
    for (int64_t i = 0; i < p.K; i++) same &= g.hb[i] == (float)g.hbd[i];
    for (int64_t c = 0; c < 2; c++) {
        for (int64_t i = 0; i < p.H * p.proj[c]; i++) same &= g.tp[c][i] == (float)g.tpd[c][i];
        for (int64_t i = 0; i < p.proj[c] * cluster_s(&p, c); i++) same &= g.to[c][i] == (float)g.tod[c][i];
    }
    CHECK(same);
    free_grads(&g, &p); free(ws);
    free_problem(&p);
}

/* ---- (g) non-finite input ---------------------------------------------------------------------------------------- */

static void test_nan_input(void) {
    printf("NaN in x: RNNCORE_ERR_NON_FINITE, outputs written; log_prob: NaN row only\n");
    const int64_t cut[3] = {3, 7, 12}, proj[2] = {4, 2};
    const int32_t tg[4] = {1, 5, 9, 0};
    problem p;
    make_problem(&p, 4, 5, 2, cut, proj, 1, tg, 60);
    p.x[1 * 5 + 2] = NAN; /* row 1, target in cluster 0 */
    grads g;
    make_grads(&g, &p, 61);
    float *ws = alloc_f(p.ws), dx[4 * 5], lp[4 * 12];
    fill_const_f(dx, 4 * 5, 7.0f);
    double loss = 0;
    int64_t count = -1;
    CHECK_STATUS(rnncore_adaptive_softmax_cross_entropy(&loss, &count, dx, &g.g, p.x, p.tg, 4, &p.shape, &p.w, -1,
                                                        1.0f, ws, p.ws),
                 RNNCORE_ERR_NON_FINITE);
    CHECK(isnan(loss) && count == 4);
    CHECK(isnan(dx[1 * 5]) && isnan(g.hw[0]) && isnan(g.tp[0][0])); /* written, NaN propagated */
    CHECK_STATUS(rnncore_adaptive_softmax_log_prob(lp, p.x, 4, &p.shape, &p.w, ws, p.ws), RNNCORE_OK);
    int row1_nan = 1, others_finite = 1;
    for (int64_t m = 0; m < 4; m++)
        for (int64_t v = 0; v < 12; v++) {
            if (m == 1) row1_nan &= isnan(lp[m * 12 + v]);
            else others_finite &= isfinite(lp[m * 12 + v]);
        }
    CHECK(row1_nan && others_finite);
    free_grads(&g, &p); free(ws);
    free_problem(&p);
}

/* ---- (f) bad arguments ------------------------------------------------------------------------------------------ */

/* All arguments of one cross-entropy call, so that each case changes one. */
typedef struct {
    double *loss; int64_t *count; float *dx; const rnncore_adaptive_gradients *g; const float *x;
    const int32_t *tg; int64_t M; const rnncore_adaptive_softmax *shape; const rnncore_adaptive_weights *w;
    int32_t ignore; float dloss; float *ws; int64_t wsn;
} ce_args;

static rnncore_status call_ce(const ce_args *a) {
    return rnncore_adaptive_softmax_cross_entropy(a->loss, a->count, a->dx, a->g, a->x, a->tg, a->M, a->shape, a->w,
                                                  a->ignore, a->dloss, a->ws, a->wsn);
}

/* The outputs of the bad-argument calls, filled with sentinels. */
static struct {
    double loss; int64_t count;
    float dx[6 * 5], ws[1024], lp[6 * 12];
    float ghw[5 * 5], ghb[5], gtp[2][5 * 4], gto[2][4 * 5];
} out;

static void fill_sentinels(void) {
    out.loss = -123.0; out.count = -7;
    fill_const_f(out.dx, RC_N(out.dx), 7.25f); fill_const_f(out.ws, RC_N(out.ws), 9.5f);
    fill_const_f(out.lp, RC_N(out.lp), 5.5f); fill_const_f(out.ghw, RC_N(out.ghw), 3.5f);
    fill_const_f(out.ghb, RC_N(out.ghb), 3.5f);
    for (int i = 0; i < 2; i++) {
        fill_const_f(out.gtp[i], RC_N(out.gtp[i]), 3.5f);
        fill_const_f(out.gto[i], RC_N(out.gto[i]), 3.5f);
    }
}

static int sentinels_intact(void) {
    int ok = out.loss == -123.0 && out.count == -7 && all_equal_f(out.dx, RC_N(out.dx), 7.25f) &&
             all_equal_f(out.ws, RC_N(out.ws), 9.5f) && all_equal_f(out.lp, RC_N(out.lp), 5.5f) &&
             all_equal_f(out.ghw, RC_N(out.ghw), 3.5f) && all_equal_f(out.ghb, RC_N(out.ghb), 3.5f);
    for (int i = 0; i < 2; i++)
        ok &= all_equal_f(out.gtp[i], RC_N(out.gtp[i]), 3.5f) && all_equal_f(out.gto[i], RC_N(out.gto[i]), 3.5f);
    return ok;
}

#define BAD_CE(expected, ...)                                           \
    do {                                                                \
        ce_args a = base;                                               \
        __VA_ARGS__;                                                    \
        fill_sentinels();                                               \
        CHECK_STATUS(call_ce(&a), expected);                            \
        CHECK(sentinels_intact());                                      \
    } while (0)

static void test_bad_arguments(void) {
    printf("bad arguments: each returns its status and writes nothing\n");
    /* M = 6, H = 5, cutoffs 3, 7, 12 (head K = 5), projections 4, 2 */
    int64_t cut[3] = {3, 7, 12}, proj[2] = {4, 2};
    const int32_t tg[6] = {0, 4, 11, 2, 8, -1};
    problem p;
    make_problem(&p, 6, 5, 2, cut, proj, 1, tg, 70);
    CHECK(p.ws <= (int64_t)RC_N(out.ws));
    float *gtp[2] = {out.gtp[0], out.gtp[1]}, *gto[2] = {out.gto[0], out.gto[1]};
    rnncore_adaptive_gradients g = {.head_weight = out.ghw, .head_bias = out.ghb, .tail_projection = gtp,
                                    .tail_output = gto};
    const ce_args base = {&out.loss, &out.count, out.dx, &g, p.x, p.tg, 6, &p.shape, &p.w, -1, 1.0f, out.ws, p.ws};

    /* the base call is valid */
    fill_sentinels();
    CHECK_STATUS(call_ce(&base), RNNCORE_OK);

    /* NULL pointers */
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.loss = NULL);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.x = NULL);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.tg = NULL);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.shape = NULL);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.w = NULL);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, a.ws = NULL);
    rnncore_adaptive_softmax s;
    rnncore_adaptive_weights w;
    rnncore_adaptive_gradients gg;
    BAD_CE(RNNCORE_ERR_NULL_POINTER, s = p.shape; s.cutoffs = NULL; a.shape = &s);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, s = p.shape; s.projections = NULL; a.shape = &s);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, w = p.w; w.head_weight = NULL; a.w = &w);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, w = p.w; w.tail_projection = NULL; a.w = &w);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, w = p.w; w.tail_output = NULL; a.w = &w);
    const float *tp_null[2] = {p.tp[0], NULL};
    BAD_CE(RNNCORE_ERR_NULL_POINTER, w = p.w; w.tail_projection = tp_null; a.w = &w);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, gg = g; gg.head_weight = NULL; a.g = &gg);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, gg = g; gg.head_bias = NULL; a.g = &gg); /* the bias has no gradient */
    float *gto_null[2] = {NULL, out.gto[1]};
    BAD_CE(RNNCORE_ERR_NULL_POINTER, gg = g; gg.tail_output = gto_null; a.g = &gg);
    BAD_CE(RNNCORE_ERR_NULL_POINTER, gg = g; gg.tail_projection = NULL; a.g = &gg);
    /* a bias gradient without a bias */
    BAD_CE(RNNCORE_ERR_INVALID_ARGUMENT, w = p.w; w.head_bias = NULL; a.w = &w);

    /* sizes */
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, a.M = 0);
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, a.M = -3);
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.H = 0; a.shape = &s);
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.clusters = -1; a.shape = &s);
    int64_t c_zero[3] = {0, 7, 12}, c_neg[3] = {-2, 7, 12}, c_equal[3] = {3, 7, 7}, c_down[3] = {3, 2, 12};
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.cutoffs = c_zero; a.shape = &s);  /* first cutoff 0 */
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.cutoffs = c_neg; a.shape = &s);   /* negative */
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.cutoffs = c_equal; a.shape = &s); /* an empty cluster */
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.cutoffs = c_down; a.shape = &s);  /* decreasing */
    int64_t p_zero[2] = {4, 0}, p_neg[2] = {-1, 2};
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.projections = p_zero; a.shape = &s);
    BAD_CE(RNNCORE_ERR_INVALID_SIZE, s = p.shape; s.projections = p_neg; a.shape = &s);

    /* overflow: BLAS's int dimensions and element counts */
    int64_t c_huge[3] = {3, 7, (int64_t)INT32_MAX + 8}, p_huge[2] = {(int64_t)INT32_MAX + 1, 2};
    BAD_CE(RNNCORE_ERR_SIZE_OVERFLOW, s = p.shape; s.cutoffs = c_huge; a.shape = &s);   /* V > INT_MAX */
    BAD_CE(RNNCORE_ERR_SIZE_OVERFLOW, s = p.shape; s.projections = p_huge; a.shape = &s);
    BAD_CE(RNNCORE_ERR_SIZE_OVERFLOW, a.M = (int64_t)1 << 40);
    BAD_CE(RNNCORE_ERR_SIZE_OVERFLOW, a.M = (int64_t)1 << 30; s = p.shape; s.H = INT32_MAX; a.shape = &s); /* M·H */

    /* scalars, workspace, targets */
    BAD_CE(RNNCORE_ERR_INVALID_ARGUMENT, a.dloss = NAN);
    BAD_CE(RNNCORE_ERR_INVALID_ARGUMENT, a.dloss = INFINITY);
    BAD_CE(RNNCORE_ERR_INVALID_ARGUMENT, a.wsn = p.ws - 1);
    int32_t t_big[6] = {0, 4, 12, 2, 8, -1}, t_neg[6] = {0, 4, -5, 2, 8, -1};
    BAD_CE(RNNCORE_ERR_INDEX_OUT_OF_RANGE, a.tg = t_big);                         /* = V */
    BAD_CE(RNNCORE_ERR_INDEX_OUT_OF_RANGE, a.tg = t_neg);                         /* negative, not ignored */
    BAD_CE(RNNCORE_ERR_INDEX_OUT_OF_RANGE, a.ignore = RNNCORE_NO_IGNORE_INDEX);    /* -1 is no longer skipped */

    /* aliasing: outputs over inputs and over each other */
    float xcopy[6 * 5];
    memcpy(xcopy, p.x, sizeof xcopy);
    BAD_CE(RNNCORE_ERR_ALIASING, a.dx = (float *)a.x);                            /* dx = x */
    BAD_CE(RNNCORE_ERR_ALIASING, a.x = xcopy; a.dx = xcopy + 3);                  /* partial overlap */
    BAD_CE(RNNCORE_ERR_ALIASING, a.x = xcopy; a.ws = xcopy; a.wsn = p.ws);        /* workspace over x */
    BAD_CE(RNNCORE_ERR_ALIASING, a.dx = out.ws + 4);                              /* dx over the workspace */
    BAD_CE(RNNCORE_ERR_ALIASING, gg = g; gg.head_weight = (float *)p.hw; a.g = &gg); /* gradient = weight */
    float *gto_same[2] = {out.gto[0], out.gtp[1]};
    BAD_CE(RNNCORE_ERR_ALIASING, gg = g; gg.tail_output = gto_same; a.g = &gg);   /* two gradients */
    BAD_CE(RNNCORE_ERR_ALIASING, a.count = (int64_t *)(void *)out.dx);            /* count inside dx */

    /* the workspace query */
    int64_t n = -5;
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(NULL, &p.shape, 6), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&n, NULL, 6), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&n, &p.shape, 0), RNNCORE_ERR_INVALID_SIZE);
    s = p.shape; s.cutoffs = c_down;
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&n, &s, 6), RNNCORE_ERR_INVALID_SIZE);
    /* M·H, H·P_i, M·K fit, but M·(K + H + max P_i + max S_i) = 2^30·(5 + 0.75·2^30 + 2^29 + 5) > 2^60 */
    int64_t p_big[2] = {(int64_t)1 << 29, 2};
    s = p.shape; s.H = ((int64_t)1 << 30) - ((int64_t)1 << 28); s.projections = p_big;
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&n, &s, (int64_t)1 << 30), RNNCORE_ERR_SIZE_OVERFLOW);
    CHECK(n == -5);

    /* log_prob */
    fill_sentinels();
#define LP rnncore_adaptive_softmax_log_prob
    CHECK_STATUS(LP(NULL, p.x, 6, &p.shape, &p.w, out.ws, p.ws), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(LP(out.lp, NULL, 6, &p.shape, &p.w, out.ws, p.ws), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(LP(out.lp, p.x, 6, &p.shape, NULL, out.ws, p.ws), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(LP(out.lp, p.x, 6, &p.shape, &p.w, NULL, p.ws), RNNCORE_ERR_NULL_POINTER);
    w = p.w; w.tail_output = NULL;
    CHECK_STATUS(LP(out.lp, p.x, 6, &p.shape, &w, out.ws, p.ws), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(LP(out.lp, p.x, -1, &p.shape, &p.w, out.ws, p.ws), RNNCORE_ERR_INVALID_SIZE);
    s = p.shape; s.projections = p_zero;
    CHECK_STATUS(LP(out.lp, p.x, 6, &s, &p.w, out.ws, p.ws), RNNCORE_ERR_INVALID_SIZE);
    CHECK_STATUS(LP(out.lp, p.x, 6, &p.shape, &p.w, out.ws, p.ws - 1), RNNCORE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(LP(out.lp, p.x, 6, &p.shape, &p.w, out.lp, p.ws), RNNCORE_ERR_ALIASING); /* workspace = output */
    CHECK_STATUS(LP(xcopy, xcopy, 6, &p.shape, &p.w, out.ws, p.ws), RNNCORE_ERR_ALIASING);
    /* M·V > 2^60 although the workspace M·(K + H + max P + max S) ≈ 2^59 fits: log_prob alone overflows (checked
     * before any weight is looked at) */
    const int64_t s29 = (int64_t)1 << 29;
    int64_t c_wide[5] = {1, 1 + s29, 1 + 2 * s29, 1 + 3 * s29, INT32_MAX}, p_one[4] = {1, 1, 1, 1};
    s = (rnncore_adaptive_softmax){.H = 1, .clusters = 4, .cutoffs = c_wide, .projections = p_one};
    CHECK_STATUS(rnncore_adaptive_softmax_workspace(&n, &s, (int64_t)1 << 30), RNNCORE_OK);
    CHECK_STATUS(LP(out.lp, p.x, (int64_t)1 << 30, &s, &p.w, out.ws, n), RNNCORE_ERR_SIZE_OVERFLOW);
#undef LP
    CHECK(sentinels_intact());
    free_problem(&p);
}

int main(void) {
    /* shapes: cutoffs (C+1), projections (C); targets NULL = random */
    const int64_t c0[1] = {17};
    const int64_t c1[2] = {4, 13}, p1[1] = {3};
    const int64_t c2[3] = {5, 9, 20}, p2[2] = {6, 2};
    const int64_t c3[4] = {3, 6, 10, 19}, p3[3] = {8, 1, 5};
    const int64_t c3b[4] = {2, 40, 41, 70}, p3b[3] = {16, 4, 7};
    const int32_t all_in_one[8] = {10, 12, 9, 11, 13, 16, 14, 18}; /* every row in cluster 2 of c3 */
    const int32_t skip_one[9] = {0, 7, 1, 8, 2, 6, 4, 9, -1};      /* cluster 0 of c2 and the head; none in 1 */
    test_vs_ref("C=0", 11, 7, 0, c0, NULL, 1, NULL, -1, 1.0f, 1);
    test_vs_ref("C=0 no bias", 3, 4, 0, c0, NULL, 0, NULL, -1, 2.5f, 2);
    test_vs_ref("C=1", 12, 6, 1, c1, p1, 1, NULL, -1, 1.0f, 3);
    test_vs_ref("C=1 M=1", 1, 6, 1, c1, p1, 0, NULL, RNNCORE_NO_IGNORE_INDEX, 1.0f, 4);
    test_vs_ref("C=2", 16, 8, 2, c2, p2, 1, NULL, -1, 0.5f, 5);
    test_vs_ref("C=2 no row in cluster 1", 9, 8, 2, c2, p2, 0, skip_one, -1, 1.0f, 6);
    test_vs_ref("C=3", 20, 9, 3, c3, p3, 1, NULL, RNNCORE_NO_IGNORE_INDEX, 1.0f, 7);
    test_vs_ref("C=3 all rows in one cluster", 8, 9, 3, c3, p3, 0, all_in_one, -1, 1.0f, 8);
    test_vs_ref("C=3 uneven", 25, 16, 3, c3b, p3b, 1, NULL, 3, 1.7f, 9); /* ignore_index inside [0, V) */
    test_ref_gradients(0, c0, NULL, 1, 20);
    test_ref_gradients(2, c2, p2, 1, 21);
    test_ref_gradients(3, c3, p3, 0, 22);
    test_c0_equals_full_softmax(1);
    test_c0_equals_full_softmax(0);
    test_all_ignored();
    test_nan_input();
    test_bad_arguments();
    return test_finish("test_adaptive_softmax");
}
