/*
 * test_rnn.c — the Elman RNN kernels: rnncore_rnn_step_forward/backward (tanh), and the window kernels of the tanh
 * and the ReLU cell, rnncore_rnn_{,relu_}sizes/forward/backward (BPTT, full and truncated). The window tests run
 * once per nonlinearity (g_relu), against the matching float64 reference; the ReLU gradient checks use problems
 * whose pre-activations all stay at least 0.1 away from the kink, so that no central difference crosses it.
 *
 *  (a) float32 kernels vs the double reference on random inputs, several shapes (N=1, T=1, D≠H, larger);
 *  (b) the reference backward vs central differences of the reference forward (double, eps 1e-5);
 *  (c) the kernel backward vs central differences of the kernel forward (loss summed in double, eps 1e-2);
 *  accumulate/overwrite semantics, NULL optional pointers, and the textbook cross-check: the sequence kernels
 *  equal T step kernels forward and T step kernels backward in reverse with dh carried; truncated BPTT
 *  (window->truncation) against full BPTT and against a per-output truncated reference.
 * The loss of every gradient check is L = Σ hs⊙Whs + Σ h_last⊙Wlast with random weights, so dhs = Whs and
 * dh_last = Wlast.
 */
#include "test_util.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

/* A random problem: float inputs and double copies of the same numbers. */
typedef struct {
    int64_t N, T, D, H;
    float *xs, *h0, *wx, *wh, *b, *dhs, *dhl;
    double *xs_d, *h0_d, *wx_d, *wh_d, *b_d, *dhs_d, *dhl_d;
} rnn_problem;

static void problem_init(rnn_problem *p, int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    rng_t r = {seed};
    *p = (rnn_problem){.N = N, .T = T, .D = D, .H = H};
    p->xs = alloc_f(N * T * D); fill_f(p->xs, N * T * D, &r, -1, 1);
    p->h0 = alloc_f(N * H);     fill_f(p->h0, N * H, &r, -0.8, 0.8);
    /* Weights ~ U(±1/sqrt(fan_in)) keep the pre-activations O(1): tanh neither saturates nor is linear. */
    p->wx = alloc_f(D * H);     fill_f(p->wx, D * H, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    p->wh = alloc_f(H * H);     fill_f(p->wh, H * H, &r, -1 / sqrt((double)H), 1 / sqrt((double)H));
    p->b = alloc_f(H);          fill_f(p->b, H, &r, -0.5, 0.5);
    p->dhs = alloc_f(N * T * H); fill_f(p->dhs, N * T * H, &r, -1, 1);
    p->dhl = alloc_f(N * H);    fill_f(p->dhl, N * H, &r, -1, 1);
    p->xs_d = to_d(p->xs, N * T * D); p->h0_d = to_d(p->h0, N * H); p->wx_d = to_d(p->wx, D * H);
    p->wh_d = to_d(p->wh, H * H); p->b_d = to_d(p->b, H); p->dhs_d = to_d(p->dhs, N * T * H);
    p->dhl_d = to_d(p->dhl, N * H);
}

static void problem_free(rnn_problem *p) {
    float *f[] = {p->xs, p->h0, p->wx, p->wh, p->b, p->dhs, p->dhl};
    double *d[] = {p->xs_d, p->h0_d, p->wx_d, p->wh_d, p->b_d, p->dhs_d, p->dhl_d};
    for (int i = 0; i < 7; i++) { free(f[i]); free(d[i]); }
}

/* The window kernels of the cell under test (g_relu: the ReLU cell, else tanh), called with the argument lists of
 * the tests below; each passes the caller's buffers straight through. */
static int g_relu = 0;

static rnncore_status rnn_fw(float *hs, float *h_last, const float *xs, const float *h0, const float *wx,
                             const float *wh, const float *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    const rnncore_cell_weights w = {wx, wh, b, NULL};
    const rnncore_window win = {N, T, D, H, 0};
    return (g_relu ? rnncore_rnn_relu_forward : rnncore_rnn_forward)(hs, NULL, h_last, xs, h0, &w, &win);
}
static rnncore_status rnn_bw_tr(float *dxs, float *dh0, float *dwx, float *dwh, float *db, float *ws,
                                const float *dhs, const float *dh_last, const float *xs, const float *h0,
                                const float *hs, const float *wx, const float *wh, int64_t N, int64_t T, int64_t D,
                                int64_t H, int64_t truncation) {
    const rnncore_cell_weights w = {wx, wh, NULL, NULL};
    const rnncore_cell_gradients g = {dwx, dwh, db, NULL};
    const rnncore_window win = {N, T, D, H, truncation};
    return (g_relu ? rnncore_rnn_relu_backward : rnncore_rnn_backward)(dxs, dh0, &g, ws, dhs, dh_last, xs, h0, hs,
                                                                        NULL, &w, &win);
}
static rnncore_status rnn_bw(float *dxs, float *dh0, float *dwx, float *dwh, float *db, float *ws, const float *dhs,
                             const float *dh_last, const float *xs, const float *h0, const float *hs,
                             const float *wx, const float *wh, int64_t N, int64_t T, int64_t D, int64_t H) {
    return rnn_bw_tr(dxs, dh0, dwx, dwh, db, ws, dhs, dh_last, xs, h0, hs, wx, wh, N, T, D, H, 0);
}
static rnncore_status rnn_ws_size(int64_t *count, int64_t N, int64_t T, int64_t H, int64_t truncation) {
    rnncore_cell_sizes s = {0};
    const rnncore_window win = {N, T, 1, H, truncation};
    rnncore_status st = (g_relu ? rnncore_rnn_relu_sizes : rnncore_rnn_sizes)(&s, &win);
    CHECK(st != RNNCORE_OK || (s.gates == 1 && s.states == 1 && s.cache == 0));
    if (st == RNNCORE_OK) *count = s.workspace;
    return st;
}
/* The matching float64 references. */
static void ref_fw(double *hs, double *h_last, const double *xs, const double *h0, const double *wx,
                   const double *wh, const double *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    (g_relu ? ref_rnn_relu_forward : ref_rnn_forward)(hs, h_last, xs, h0, wx, wh, b, N, T, D, H);
}
static void ref_bw_tr(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                      const double *dh_last, const double *xs, const double *h0, const double *hs, const double *wx,
                      const double *wh, int64_t N, int64_t T, int64_t D, int64_t H, int64_t truncation) {
    (g_relu ? ref_rnn_relu_backward_truncated : ref_rnn_backward_truncated)(dxs, dh0, dwx, dwh, db, dhs, dh_last, xs,
                                                                             h0, hs, wx, wh, N, T, D, H, truncation);
}
static void ref_bw(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                   const double *dh_last, const double *xs, const double *h0, const double *hs, const double *wx,
                   const double *wh, int64_t N, int64_t T, int64_t D, int64_t H) {
    if (g_relu) ref_rnn_relu_backward_truncated(dxs, dh0, dwx, dwh, db, dhs, dh_last, xs, h0, hs, wx, wh, N, T, D, H, 0);
    else ref_rnn_backward(dxs, dh0, dwx, dwh, db, dhs, dh_last, xs, h0, hs, wx, wh, N, T, D, H);
}

static float *workspace_step(int64_t N, int64_t H) {
    int64_t c = -1;
    CHECK_STATUS(rnncore_rnn_step_backward_workspace_size(&c, N, H), RNNCORE_OK);
    CHECK(c == N * H);
    float *w = alloc_f(c); fill_const_f(w, c, NAN);
    return w;
}
static float *workspace_seq(int64_t N, int64_t T, int64_t H) {
    int64_t c = -1;
    CHECK_STATUS(rnn_ws_size(&c, N, T, H, 0), RNNCORE_OK);
    CHECK(c == 2 * N * T * H + N * H);
    float *w = alloc_f(c); fill_const_f(w, c, NAN);
    return w;
}

/* ---- (a) kernels vs reference ----------------------------------------------------------------------------- */

/* Tolerances. A pre-activation is a dot product of length K = D+H+1 of terms below ~1 in magnitude; float32
 * summation error grows like K·u (u = 2^-24) and tanh' <= 1 does not amplify it, so tol = 4·K·u (abs and rel).
 * In BPTT the error of every step is carried back through T steps, so the sequence tolerances get a factor T.
 * Parameter gradients sum N (or N·T) products on top of a random prior of size ~1. */
static void test_step_vs_ref(int64_t N, int64_t D, int64_t H, int use_h, int use_b, uint64_t seed) {
    printf("rnn_step N=%lld D=%lld H=%lld h_prev=%s b=%s\n", (long long)N, (long long)D, (long long)H,
           use_h ? "yes" : "NULL", use_b ? "yes" : "NULL");
    rnn_problem p; problem_init(&p, N, 1, D, H, seed);
    rng_t r = {seed ^ 0xABCDu};
    float *hn = alloc_f(N * H); fill_const_f(hn, N * H, NAN);
    double *hn_d = alloc_d(N * H);
    CHECK_STATUS(rnncore_rnn_step_forward(hn, p.xs, use_h ? p.h0 : NULL, p.wx, p.wh, use_b ? p.b : NULL, N, D, H),
                 RNNCORE_OK);
    ref_rnn_step_forward(hn_d, p.xs_d, use_h ? p.h0_d : NULL, p.wx_d, p.wh_d, use_b ? p.b_d : NULL, N, D, H);
    double tf = 4.0 * (double)(D + H + 1) * U32;
    check_close_fd("rnn_step_forward h_next", hn, hn_d, N * H, tf, tf);

    /* Backward from the kernel's own h_next (so only the backward is under test), onto random priors. */
    float *dx = alloc_f(N * D), *dhp = alloc_f(N * H), *ws = workspace_step(N, H);
    float *dwx = alloc_f(D * H), *dwh = alloc_f(H * H), *db = alloc_f(H);
    fill_const_f(dx, N * D, NAN); fill_const_f(dhp, N * H, NAN);
    fill_f(dwx, D * H, &r, -1, 1); fill_f(dwh, H * H, &r, -1, 1); fill_f(db, H, &r, -1, 1);
    double *dx_d = alloc_d(N * D), *dhp_d = alloc_d(N * H);
    double *dwx_d = to_d(dwx, D * H), *dwh_d = to_d(dwh, H * H), *db_d = to_d(db, H), *hnk = to_d(hn, N * H);
    CHECK_STATUS(rnncore_rnn_step_backward(dx, dhp, dwx, dwh, db, ws, p.dhs, p.xs, use_h ? p.h0 : NULL, hn, p.wx,
                                           p.wh, N, D, H), RNNCORE_OK);
    ref_rnn_step_backward(dx_d, dhp_d, dwx_d, dwh_d, db_d, p.dhs_d, p.xs_d, use_h ? p.h0_d : NULL, hnk, p.wx_d,
                          p.wh_d, N, D, H);
    double ta = 4.0 * (double)(H + 1) * U32, tp = 4.0 * (double)(N + 2) * U32;
    check_close_fd("rnn_step_backward dx", dx, dx_d, N * D, ta, ta);
    check_close_fd("rnn_step_backward dh_prev", dhp, dhp_d, N * H, ta, ta);
    check_close_fd("rnn_step_backward dWx (accumulated)", dwx, dwx_d, D * H, tp, tp);
    check_close_fd("rnn_step_backward dWh (accumulated)", dwh, dwh_d, H * H, tp, tp);
    check_close_fd("rnn_step_backward db (accumulated)", db, db_d, H, tp, tp);

    /* Without h_prev, dWh receives nothing; dx/dh_prev/db may be NULL. */
    if (!use_h) {
        float *dwh2 = alloc_f(H * H); memcpy(dwh2, dwh, (size_t)(H * H) * sizeof *dwh2);
        CHECK_STATUS(rnncore_rnn_step_backward(NULL, NULL, dwx, dwh, NULL, ws, p.dhs, p.xs, NULL, hn, p.wx, p.wh,
                                               N, D, H), RNNCORE_OK);
        CHECK(memcmp(dwh2, dwh, (size_t)(H * H) * sizeof *dwh) == 0);
        free(dwh2);
    }
    free(hn); free(hn_d); free(dx); free(dhp); free(ws); free(dwx); free(dwh); free(db);
    free(dx_d); free(dhp_d); free(dwx_d); free(dwh_d); free(db_d); free(hnk);
    problem_free(&p);
}

static void test_seq_vs_ref(int64_t N, int64_t T, int64_t D, int64_t H, int use_h0, int use_b, int use_dhl,
                            uint64_t seed) {
    printf("%s_forward/backward N=%lld T=%lld D=%lld H=%lld h0=%s b=%s dh_last=%s\n", g_relu ? "rnn_relu" : "rnn",
           (long long)N, (long long)T, (long long)D, (long long)H, use_h0 ? "yes" : "NULL", use_b ? "yes" : "NULL", use_dhl ? "yes" : "NULL");
    rnn_problem p; problem_init(&p, N, T, D, H, seed);
    rng_t r = {seed ^ 0x5EEDu};
    const float *h0 = use_h0 ? p.h0 : NULL, *b = use_b ? p.b : NULL, *dhl = use_dhl ? p.dhl : NULL;
    const double *h0_d = use_h0 ? p.h0_d : NULL, *b_d = use_b ? p.b_d : NULL, *dhl_d = use_dhl ? p.dhl_d : NULL;
    int64_t NTH = N * T * H;
    float *hs = alloc_f(NTH), *hl = alloc_f(N * H);
    fill_const_f(hs, NTH, NAN); fill_const_f(hl, N * H, NAN);
    double *hs_d = alloc_d(NTH), *hl_d = alloc_d(N * H);
    CHECK_STATUS(rnn_fw(hs, hl, p.xs, h0, p.wx, p.wh, b, N, T, D, H), RNNCORE_OK);
    ref_fw(hs_d, hl_d, p.xs_d, h0_d, p.wx_d, p.wh_d, b_d, N, T, D, H);
    double tf = 4.0 * (double)(D + H + 1) * (double)T * U32;
    check_close_fd("rnn_forward hs", hs, hs_d, NTH, tf, tf);
    int last_ok = 1;
    for (int64_t n = 0; n < N; n++)
        last_ok &= memcmp(hl + n * H, hs + (n * T + T - 1) * H, (size_t)H * sizeof *hl) == 0;
    CHECK(last_ok); /* h_last is a copy of hs[:,T-1] */

    float *dxs = alloc_f(N * T * D), *dh0 = alloc_f(N * H), *ws = workspace_seq(N, T, H);
    float *dwx = alloc_f(D * H), *dwh = alloc_f(H * H), *db = alloc_f(H);
    fill_const_f(dxs, N * T * D, NAN); fill_const_f(dh0, N * H, NAN);
    fill_f(dwx, D * H, &r, -1, 1); fill_f(dwh, H * H, &r, -1, 1); fill_f(db, H, &r, -1, 1);
    double *dxs_d = alloc_d(N * T * D), *dh0_d = alloc_d(N * H), *hsk = to_d(hs, NTH);
    double *dwx_d = to_d(dwx, D * H), *dwh_d = to_d(dwh, H * H), *db_d = to_d(db, H);
    CHECK_STATUS(rnn_bw(dxs, dh0, dwx, dwh, db, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh, N, T, D, H),
                 RNNCORE_OK);
    ref_bw(dxs_d, dh0_d, dwx_d, dwh_d, db_d, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, p.wx_d, p.wh_d, N, T, D, H);
    double ta = 4.0 * (double)(H + 1) * (double)T * U32, tp = 4.0 * (double)(N * T + H) * (double)T * U32;
    check_close_fd("rnn_backward dxs", dxs, dxs_d, N * T * D, ta, ta);
    check_close_fd("rnn_backward dh0", dh0, dh0_d, N * H, ta, ta);
    check_close_fd("rnn_backward dWx (accumulated)", dwx, dwx_d, D * H, tp, tp);
    check_close_fd("rnn_backward dWh (accumulated)", dwh, dwh_d, H * H, tp, tp);
    check_close_fd("rnn_backward db (accumulated)", db, db_d, H, tp, tp);

    /* Accumulation: from zeroed parameter grads, two calls give twice the result of one (within tp: adding the
     * second pass onto the first rounds differently from doubling it); the
     * activation grads are overwritten (same values after a call onto garbage). dxs/dh0/db NULL are allowed
     * and do not change dWx/dWh. */
    float *g1x = alloc_f(D * H), *g1h = alloc_f(H * H), *g1b = alloc_f(H);
    float *dxs1 = alloc_f(N * T * D), *dh01 = alloc_f(N * H);
    CHECK_STATUS(rnn_bw(dxs1, dh01, g1x, g1h, g1b, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                      N, T, D, H), RNNCORE_OK);
    float *g2x = alloc_f(D * H), *g2h = alloc_f(H * H), *g2b = alloc_f(H);
    fill_const_f(dxs, N * T * D, 1e30f); fill_const_f(dh0, N * H, -7.0f);
    for (int k = 0; k < 2; k++)
        CHECK_STATUS(rnn_bw(dxs, dh0, g2x, g2h, g2b, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                          N, T, D, H), RNNCORE_OK);
    check_close_ff("rnn_backward dxs overwritten", dxs, dxs1, N * T * D, 0, 0);
    check_close_ff("rnn_backward dh0 overwritten", dh0, dh01, N * H, 0, 0);
    for (int64_t i = 0; i < D * H; i++) g1x[i] *= 2;
    for (int64_t i = 0; i < H * H; i++) g1h[i] *= 2;
    for (int64_t i = 0; i < H; i++) g1b[i] *= 2;
    check_close_ff("rnn_backward dWx twice = 2x", g2x, g1x, D * H, tp, tp);
    check_close_ff("rnn_backward dWh twice = 2x", g2h, g1h, H * H, tp, tp);
    check_close_ff("rnn_backward db twice = 2x", g2b, g1b, H, tp, tp);
    memset(g2x, 0, (size_t)(D * H) * sizeof *g2x); memset(g2h, 0, (size_t)(H * H) * sizeof *g2h);
    CHECK_STATUS(rnn_bw(NULL, NULL, g2x, g2h, NULL, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                      N, T, D, H), RNNCORE_OK);
    for (int64_t i = 0; i < D * H; i++) g1x[i] /= 2;
    for (int64_t i = 0; i < H * H; i++) g1h[i] /= 2;
    check_close_ff("rnn_backward NULL dxs/dh0/db: dWx", g2x, g1x, D * H, tp, tp);
    check_close_ff("rnn_backward NULL dxs/dh0/db: dWh", g2h, g1h, H * H, tp, tp);

    free(hs); free(hl); free(hs_d); free(hl_d); free(dxs); free(dh0); free(ws); free(dwx); free(dwh); free(db);
    free(dxs_d); free(dh0_d); free(hsk); free(dwx_d); free(dwh_d); free(db_d);
    free(g1x); free(g1h); free(g1b); free(g2x); free(g2h); free(g2b); free(dxs1); free(dh01);
    problem_free(&p);
}

/* NULL h0 means zeros and NULL b means no bias: identical to passing explicit zero buffers. */
static void test_null_means_zero(void) {
    printf("rnn NULL h0 / NULL b equal explicit zeros\n");
    rnn_problem p; problem_init(&p, 2, 3, 4, 5, 77);
    float *z = alloc_f(2 * 5), *a = alloc_f(2 * 3 * 5), *c = alloc_f(2 * 3 * 5);
    CHECK_STATUS(rnn_fw(a, NULL, p.xs, NULL, p.wx, p.wh, NULL, 2, 3, 4, 5), RNNCORE_OK);
    CHECK_STATUS(rnn_fw(c, NULL, p.xs, z, p.wx, p.wh, z, 2, 3, 4, 5), RNNCORE_OK);
    check_close_ff("rnn_forward NULL h0,b vs zeros", a, c, 2 * 3 * 5, 1e-7, 1e-6);
    CHECK_STATUS(rnncore_rnn_step_forward(a, p.xs, NULL, p.wx, p.wh, NULL, 2, 4, 5), RNNCORE_OK);
    CHECK_STATUS(rnncore_rnn_step_forward(c, p.xs, z, p.wx, p.wh, z, 2, 4, 5), RNNCORE_OK);
    check_close_ff("rnn_step_forward NULL h_prev,b vs zeros", a, c, 2 * 5, 1e-7, 1e-6);
    free(z); free(a); free(c);
    problem_free(&p);
}

/* ---- (b), (c) gradient checks ------------------------------------------------------------------------------ */

typedef struct { rnn_problem *p; int step; float *hs, *hl; double *hs_d, *hl_d; } gctx;

static double loss_f(void *v) {
    gctx *g = v; rnn_problem *p = g->p;
    if (g->step) {
        rnncore_status s = rnncore_rnn_step_forward(g->hs, p->xs, p->h0, p->wx, p->wh, p->b, p->N, p->D, p->H);
        assert(s == RNNCORE_OK);
        return dot_fd(g->hs, p->dhs_d, p->N * p->H);
    }
    rnncore_status s = rnn_fw(g->hs, g->hl, p->xs, p->h0, p->wx, p->wh, p->b, p->N, p->T, p->D, p->H);
    assert(s == RNNCORE_OK);
    return dot_fd(g->hs, p->dhs_d, p->N * p->T * p->H) + dot_fd(g->hl, p->dhl_d, p->N * p->H);
}

static double loss_d(void *v) {
    gctx *g = v; rnn_problem *p = g->p;
    if (g->step) {
        ref_rnn_step_forward(g->hs_d, p->xs_d, p->h0_d, p->wx_d, p->wh_d, p->b_d, p->N, p->D, p->H);
        return dot_dd(g->hs_d, p->dhs_d, p->N * p->H);
    }
    ref_fw(g->hs_d, g->hl_d, p->xs_d, p->h0_d, p->wx_d, p->wh_d, p->b_d, p->N, p->T, p->D, p->H);
    return dot_dd(g->hs_d, p->dhs_d, p->N * p->T * p->H) + dot_dd(g->hl_d, p->dhl_d, p->N * p->H);
}

/* (b) in double: eps = 1e-5 leaves truncation error ~eps²·L''' ≈ 1e-10 and rounding ~1e-16·|L|/eps ≈ 1e-11,
 * so 1e-8 abs + 1e-7 rel is tight. (c) in float32: each forward carries rounding ~u·Σ|terms| ≈ 1e-6 in L;
 * divided by 2·eps = 2e-2 that is ~5e-5, plus truncation eps²·L'''/6 ≈ 2e-5·|L'''| with |L'''| = O(1):
 * tol 5e-4 abs + 5e-3 rel (observed up to ~7e-5). */
static void test_grad_checks(int step, int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    rnn_problem p; problem_init(&p, N, T, D, H, seed);
    gctx g = {&p, step, alloc_f(N * T * H), alloc_f(N * H), alloc_d(N * T * H), alloc_d(N * H)};
    const char *nm = step ? "rnn_step_backward" : "rnn_backward";
    char what[96];
    printf("%s gradient checks N=%lld T=%lld D=%lld H=%lld\n", nm, (long long)N, (long long)T, (long long)D,
           (long long)H);

    /* (b) reference backward vs central differences of the reference forward */
    double *dx = alloc_d(N * T * D), *dh0 = alloc_d(N * H), *dwx = alloc_d(D * H), *dwh = alloc_d(H * H),
           *db = alloc_d(H);
    loss_d(&g);
    if (step) ref_rnn_step_backward(dx, dh0, dwx, dwh, db, p.dhs_d, p.xs_d, p.h0_d, g.hs_d, p.wx_d, p.wh_d, N, D, H);
    else ref_bw(dx, dh0, dwx, dwh, db, p.dhs_d, p.dhl_d, p.xs_d, p.h0_d, g.hs_d, p.wx_d, p.wh_d, N, T, D, H);
    double *pd[] = {p.xs_d, p.h0_d, p.wx_d, p.wh_d, p.b_d};
    double *ad[] = {dx, dh0, dwx, dwh, db};
    const char *names[] = {"dx", step ? "dh_prev" : "dh0", "dWx", "dWh", "db"};
    int64_t cnt[] = {N * T * D, N * H, D * H, H * H, H};
    for (int i = 0; i < 5; i++) {
        snprintf(what, sizeof what, "[ref] %s %s", nm, names[i]);
        grad_check_d(what, pd[i], ad[i], cnt[i], 1e-5, loss_d, &g, 1e-8, 1e-7);
    }

    /* (c) kernel backward vs central differences of the kernel forward */
    float *fx = alloc_f(N * T * D), *fh0 = alloc_f(N * H), *fwx = alloc_f(D * H), *fwh = alloc_f(H * H),
          *fb = alloc_f(H);
    float *ws = step ? workspace_step(N, H) : workspace_seq(N, T, H);
    loss_f(&g);
    if (step)
        CHECK_STATUS(rnncore_rnn_step_backward(fx, fh0, fwx, fwh, fb, ws, p.dhs, p.xs, p.h0, g.hs, p.wx, p.wh,
                                               N, D, H), RNNCORE_OK);
    else
        CHECK_STATUS(rnn_bw(fx, fh0, fwx, fwh, fb, ws, p.dhs, p.dhl, p.xs, p.h0, g.hs, p.wx, p.wh,
                                          N, T, D, H), RNNCORE_OK);
    float *pf[] = {p.xs, p.h0, p.wx, p.wh, p.b};
    float *af[] = {fx, fh0, fwx, fwh, fb};
    for (int i = 0; i < 5; i++) {
        snprintf(what, sizeof what, "[f32] %s %s", nm, names[i]);
        grad_check_f(what, pf[i], af[i], cnt[i], 1e-2, loss_f, &g, 5e-4, 5e-3);
    }
    free(dx); free(dh0); free(dwx); free(dwh); free(db); free(fx); free(fh0); free(fwx); free(fwh); free(fb);
    free(ws); free(g.hs); free(g.hl); free(g.hs_d); free(g.hl_d);
    problem_free(&p);
}

/* ---- the textbook cross-check ------------------------------------------------------------------------------
 * TimeRNN is T RNN layers sharing weights: running rnncore_rnn_step_forward T times, then
 * rnncore_rnn_step_backward T times in reverse (dh_next = dhs[:,t] + dh carried from step t+1, parameter grads
 * summed over steps) must reproduce rnncore_rnn_forward/backward within float32 rounding. Fixed small weights. */
static void test_textbook_crosscheck(void) {
    enum { N = 2, T = 6, D = 3, H = 4 };
    printf("rnn textbook cross-check: sequence kernels == %d step kernels (N=%d D=%d H=%d)\n", T, N, D, H);
    float xs[N * T * D], h0[N * H], wx[D * H], wh[H * H], b[H], dhs[N * T * H], dhl[N * H];
    for (int i = 0; i < N * T * D; i++) xs[i] = (float)sin(0.37 * i);
    for (int i = 0; i < N * H; i++) { h0[i] = (float)(0.1 * cos(i)); dhl[i] = (float)(0.5 * sin(1.3 * i)); }
    for (int i = 0; i < D * H; i++) wx[i] = 0.1f * (float)(i % 7 - 3);
    for (int i = 0; i < H * H; i++) wh[i] = 0.05f * (float)(i % 5 - 2);
    for (int i = 0; i < H; i++) b[i] = 0.01f * (float)i;
    for (int i = 0; i < N * T * H; i++) dhs[i] = (float)cos(0.7 * i);

    float hs[N * T * H], hl[N * H], dxs[N * T * D], dh0[N * H], dwx[D * H] = {0}, dwh[H * H] = {0}, db[H] = {0};
    float *ws = workspace_seq(N, T, H);
    CHECK_STATUS(rnn_fw(hs, hl, xs, h0, wx, wh, b, N, T, D, H), RNNCORE_OK);
    CHECK_STATUS(rnn_bw(dxs, dh0, dwx, dwh, db, ws, dhs, dhl, xs, h0, hs, wx, wh, N, T, D, H),
                 RNNCORE_OK);

    /* per-step layers: x_t, h_t are (N,D), (N,H) slices gathered out of the batch-major sequence */
    float x_t[T][N * D], h_t[T][N * H], hs2[N * T * H], dxs2[N * T * D];
    float dwx2[D * H] = {0}, dwh2[H * H] = {0}, db2[H] = {0}, dh[N * H], dhn[N * H], dx_t[N * D];
    float *ws1 = workspace_step(N, H);
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < N; n++) memcpy(x_t[t] + n * D, xs + (n * T + t) * D, D * sizeof(float));
        CHECK_STATUS(rnncore_rnn_step_forward(h_t[t], x_t[t], t ? h_t[t - 1] : h0, wx, wh, b, N, D, H), RNNCORE_OK);
        for (int n = 0; n < N; n++) memcpy(hs2 + (n * T + t) * H, h_t[t] + n * H, H * sizeof(float));
    }
    memcpy(dh, dhl, sizeof dh);
    for (int t = T - 1; t >= 0; t--) {
        for (int n = 0; n < N; n++)
            for (int j = 0; j < H; j++) dhn[n * H + j] = dhs[(n * T + t) * H + j] + dh[n * H + j];
        CHECK_STATUS(rnncore_rnn_step_backward(dx_t, dh, dwx2, dwh2, db2, ws1, dhn, x_t[t], t ? h_t[t - 1] : h0,
                                               h_t[t], wx, wh, N, D, H), RNNCORE_OK);
        for (int n = 0; n < N; n++) memcpy(dxs2 + (n * T + t) * D, dx_t + n * D, D * sizeof(float));
    }
    /* a handful of float32 roundings per element, magnitudes ~1: 1e-6 abs + 1e-5 rel */
    check_close_ff("textbook hs (steps vs sequence)", hs2, hs, N * T * H, 1e-6, 1e-5);
    check_close_ff("textbook dxs", dxs2, dxs, N * T * D, 1e-6, 1e-5);
    check_close_ff("textbook dh0", dh, dh0, N * H, 1e-6, 1e-5);
    check_close_ff("textbook dWx", dwx2, dwx, D * H, 1e-6, 1e-5);
    check_close_ff("textbook dWh", dwh2, dwh, H * H, 1e-6, 1e-5);
    check_close_ff("textbook db", db2, db, H, 1e-6, 1e-5);
    free(ws); free(ws1);
}

/* ---- truncated BPTT (rnncore_rnn_backward_truncated) ---------------------------------------------------------
 * The per-output truncated reference with no limit (0, T+1) first equals the carried full reference in double.
 * Then the kernel: truncation 0, T, T+1 and INT64_MAX give the results of rnncore_rnn_backward (the header: "the
 * whole window"); every 1 <= k < T matches the truncated reference with the tolerances of the full backward; with
 * k = 1 nothing reaches dh0 and the result is T independent step kernel backwards, one per output. */
static float *workspace_trunc(int64_t N, int64_t T, int64_t H, int64_t k) {
    int64_t c = -1;
    CHECK_STATUS(rnn_ws_size(&c, N, T, H, k), RNNCORE_OK);
    CHECK(c >= 1);
    float *w = alloc_f(c); fill_const_f(w, c, NAN);
    return w;
}

static void test_truncation(int64_t N, int64_t T, int64_t D, int64_t H, int use_opt, uint64_t seed) {
    printf("rnn_backward_truncated N=%lld T=%lld D=%lld H=%lld optionals=%s\n", (long long)N, (long long)T,
           (long long)D, (long long)H, use_opt ? "yes" : "NULL");
    rnn_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t NTH = N * T * H, NTD = N * T * D;
    const float *h0 = use_opt ? p.h0 : NULL, *dhl = use_opt ? p.dhl : NULL;
    const double *h0_d = use_opt ? p.h0_d : NULL, *dhl_d = use_opt ? p.dhl_d : NULL;
    float *hs = alloc_f(NTH);
    CHECK_STATUS(rnn_fw(hs, NULL, p.xs, h0, p.wx, p.wh, p.b, N, T, D, H), RNNCORE_OK);
    double *hsk = to_d(hs, NTH);
    char what[96];

    /* the references agree with each other */
    double *fx = alloc_d(NTD), *fh = alloc_d(N * H), *fwx = alloc_d(D * H), *fwh = alloc_d(H * H), *fb = alloc_d(H);
    double *rx = alloc_d(NTD), *rh = alloc_d(N * H), *rwx = alloc_d(D * H), *rwh = alloc_d(H * H), *rb = alloc_d(H);
    ref_bw(fx, fh, fwx, fwh, fb, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, p.wx_d, p.wh_d, N, T, D, H);
    const int64_t unlimited[] = {0, T + 1};
    for (int u = 0; u < 2; u++) {
        memset(rwx, 0, (size_t)(D * H) * sizeof *rwx); memset(rwh, 0, (size_t)(H * H) * sizeof *rwh);
        memset(rb, 0, (size_t)H * sizeof *rb);
        ref_bw_tr(rx, rh, rwx, rwh, rb, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, p.wx_d, p.wh_d, N, T, D,
                                   H, unlimited[u]);
        snprintf(what, sizeof what, "[ref] truncated k=%lld vs full: dxs", (long long)unlimited[u]);
        check_close_dd(what, rx, fx, NTD, 1e-12, 1e-12);
        check_close_dd("[ref]   dh0", rh, fh, N * H, 1e-12, 1e-12);
        check_close_dd("[ref]   dWx", rwx, fwx, D * H, 1e-12, 1e-12);
        check_close_dd("[ref]   dWh", rwh, fwh, H * H, 1e-12, 1e-12);
        check_close_dd("[ref]   db", rb, fb, H, 1e-12, 1e-12);
    }

    /* the untruncated kernel */
    float *kx0 = alloc_f(NTD), *kh0 = alloc_f(N * H), *kwx0 = alloc_f(D * H), *kwh0 = alloc_f(H * H),
          *kb0 = alloc_f(H), *ws = workspace_seq(N, T, H);
    CHECK_STATUS(rnn_bw(kx0, kh0, kwx0, kwh0, kb0, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh, N, T, D, H),
                 RNNCORE_OK);
    free(ws);
    double ta = 4.0 * (double)(H + 1) * (double)T * U32, tp = 4.0 * (double)(N * T + H) * (double)T * U32;

    float *kx = alloc_f(NTD), *kh = alloc_f(N * H);
    const int64_t ks_full[] = {0, T, T + 1, INT64_MAX};
    for (int u = 0; u < 4; u++) {
        const int64_t k = ks_full[u];
        ws = workspace_trunc(N, T, H, k);
        float *kwx = alloc_f(D * H), *kwh = alloc_f(H * H), *kb = alloc_f(H);
        fill_const_f(kx, NTD, NAN); fill_const_f(kh, N * H, NAN);
        CHECK_STATUS(rnn_bw_tr(use_opt ? kx : NULL, use_opt ? kh : NULL, kwx, kwh,
                                                    use_opt ? kb : NULL, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                                    N, T, D, H, k), RNNCORE_OK);
        /* the header: truncation 0 and truncation >= T give exactly the same results, bit for bit */
        snprintf(what, sizeof what, "rnn_backward truncation %lld vs 0 (bit for bit): dWx", (long long)k);
        check_close_ff(what, kwx, kwx0, D * H, 0, 0);
        check_close_ff("  dWh", kwh, kwh0, H * H, 0, 0);
        if (use_opt) {
            check_close_ff("  dxs", kx, kx0, NTD, 0, 0);
            check_close_ff("  dh0", kh, kh0, N * H, 0, 0);
            check_close_ff("  db", kb, kb0, H, 0, 0);
        }
        free(ws); free(kwx); free(kwh); free(kb);
    }

    /* 1 <= k < T against the truncated reference, onto random parameter-gradient priors */
    rng_t r = {seed ^ 0x7A7Au};
    float *kwx = alloc_f(D * H), *kwh = alloc_f(H * H), *kb = alloc_f(H);
    for (int64_t k = 1; k < T; k++) {
        ws = workspace_trunc(N, T, H, k);
        fill_f(kwx, D * H, &r, -1, 1); fill_f(kwh, H * H, &r, -1, 1); fill_f(kb, H, &r, -1, 1);
        double *gwx = to_d(kwx, D * H), *gwh = to_d(kwh, H * H), *gb = to_d(kb, H);
        fill_const_f(kx, NTD, NAN); fill_const_f(kh, N * H, NAN);
        CHECK_STATUS(rnn_bw_tr(kx, kh, kwx, kwh, kb, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                                    N, T, D, H, k), RNNCORE_OK);
        ref_bw_tr(rx, rh, gwx, gwh, gb, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, p.wx_d, p.wh_d, N, T, D,
                                   H, k);
        snprintf(what, sizeof what, "rnn_backward_truncated k=%lld vs truncated ref: dxs", (long long)k);
        check_close_fd(what, kx, rx, NTD, ta, ta);
        check_close_fd("  dh0", kh, rh, N * H, ta, ta);
        check_close_fd("  dWx (accumulated)", kwx, gwx, D * H, tp, tp);
        check_close_fd("  dWh (accumulated)", kwh, gwh, H * H, tp, tp);
        check_close_fd("  db (accumulated)", kb, gb, H, tp, tp);
        if (k == 1) {
            int zero = 1; /* no output's error reaches h0 */
            for (int64_t i = 0; i < N * H; i++) zero &= kh[i] == 0.0f;
            CHECK(zero);
        }
        free(ws); free(gwx); free(gwh); free(gb);
    }

    /* k = 1 is one independent step backward per output (T step kernels, nothing carried); the step kernel is the
     * tanh cell's */
    if (!g_relu) {
            ws = workspace_trunc(N, T, H, 1);
        memset(kwx, 0, (size_t)(D * H) * sizeof *kwx); memset(kwh, 0, (size_t)(H * H) * sizeof *kwh);
        memset(kb, 0, (size_t)H * sizeof *kb);
        CHECK_STATUS(rnn_bw_tr(kx, kh, kwx, kwh, kb, ws, p.dhs, dhl, p.xs, h0, hs, p.wx, p.wh,
                                                    N, T, D, H, 1), RNNCORE_OK);
        float *wss = workspace_step(N, H), *swx = alloc_f(D * H), *swh = alloc_f(H * H), *sb = alloc_f(H);
        float *sx = alloc_f(NTD), *x_t = alloc_f(N * D), *hp_t = alloc_f(N * H), *h_t = alloc_f(N * H),
              *dh_t = alloc_f(N * H), *dx_t = alloc_f(N * D);
        for (int64_t t = 0; t < T; t++) {
            for (int64_t n = 0; n < N; n++) {
                const int64_t row = n * T + t;
                memcpy(x_t + n * D, p.xs + row * D, (size_t)D * sizeof(float));
                memcpy(h_t + n * H, hs + row * H, (size_t)H * sizeof(float));
                for (int64_t j = 0; j < H; j++) {
                    hp_t[n * H + j] = t ? hs[(row - 1) * H + j] : (h0 ? h0[n * H + j] : 0.0f);
                    dh_t[n * H + j] = p.dhs[row * H + j] + (t == T - 1 && dhl ? dhl[n * H + j] : 0.0f);
                }
            }
            CHECK_STATUS(rnncore_rnn_step_backward(dx_t, NULL, swx, swh, sb, wss, dh_t, x_t, hp_t, h_t, p.wx, p.wh,
                                                   N, D, H), RNNCORE_OK);
            for (int64_t n = 0; n < N; n++) memcpy(sx + (n * T + t) * D, dx_t + n * D, (size_t)D * sizeof(float));
        }
        /* the same sums in another order (one GEMM over N·T rows vs T GEMMs over N rows): single-step tolerances
         * for dxs, a sum of N·T terms for the parameter gradients */
        const double ta1 = 4.0 * (double)(H + 1) * U32, tp1 = 4.0 * (double)(N * T + 8) * U32;
        check_close_ff("rnn_backward_truncated k=1 vs T step kernels: dxs", kx, sx, NTD, ta1, ta1);
        check_close_ff("  dWx", kwx, swx, D * H, tp1, tp1);
        check_close_ff("  dWh", kwh, swh, H * H, tp1, tp1);
        check_close_ff("  db", kb, sb, H, tp1, tp1);

        free(ws); free(wss); free(swx); free(swh); free(sb); free(sx); free(x_t); free(hp_t); free(h_t); free(dh_t);
        free(dx_t);
    }
    free(kwx); free(kwh); free(kb); free(kx); free(kh); free(kx0); free(kh0); free(kwx0); free(kwh0);
    free(kb0); free(hs); free(hsk); free(fx); free(fh); free(fwx); free(fwh); free(fb); free(rx); free(rh); free(rwx);
    free(rwh); free(rb);
    problem_free(&p);
}

/* The kernels' vectorised tanh: with D = H = 1, Wx = 1, Wh = 0 and no bias, rnn_step_forward gives tanh(x)
 * row by row. Over x in [-12, 12] (and a dense sweep of [-1, 1], where the two formulas meet at |x| = 0.5) its
 * relative error against double tanh must stay below 4e-7 (a few float32 ulps); tiny inputs keep tanh(x) = x,
 * large ones give ±1 exactly, NaN stays NaN. */
static void test_tanh_accuracy(void) {
    printf("rnn forward tanh accuracy\n");
    enum { R = 40001 };
    static float x[R], h[R];
    for (int i = 0; i < R; i++) x[i] = i < R / 2 ? -12.0f + 24.0f * (float)i / (float)(R / 2) : -1.0f + 2.0f * (float)(i - R / 2) / (float)(R / 2);
    const float one = 1.0f, zero = 0.0f;
    CHECK_STATUS(rnncore_rnn_step_forward(h, x, NULL, &one, &zero, NULL, R, 1, 1), RNNCORE_OK);
    double worst = 0.0;
    for (int i = 0; i < R; i++) {
        const double ref = tanh((double)x[i]);
        if (ref == 0.0) { CHECK(h[i] == 0.0f); continue; }
        const double err = fabs((double)h[i] - ref) / fabs(ref);
        worst = err > worst ? err : worst;
    }
    printf("  tanh relative error: max %.3g (tol 4e-7)\n", worst);
    CHECK(worst <= 4e-7);
    float edge[5] = {1e-30f, -3e-8f, 40.0f, -1e30f, NAN}, out[5];
    CHECK_STATUS(rnncore_rnn_step_forward(out, edge, NULL, &one, &zero, NULL, 5, 1, 1), RNNCORE_OK);
    CHECK(out[0] == 1e-30f && out[1] == -3e-8f && out[2] == 1.0f && out[3] == -1.0f && isnan(out[4]));
}

/* The smallest |pre-activation| of a problem's window, in float64: the distance of its closest unit to the ReLU's
 * kink. A central difference of step eps moves a pre-activation by at most about eps·(|x| + |h|)·(fan-in) ~ 0.03 for
 * the float check's eps = 1e-2 at these sizes, so a margin of 0.1 keeps every difference on one side of the kink. */
static double relu_kink_margin(int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    rnn_problem p; problem_init(&p, N, T, D, H, seed);
    double *hs = alloc_d(N * T * H), margin = INFINITY;
    ref_rnn_relu_forward(hs, NULL, p.xs_d, p.h0_d, p.wx_d, p.wh_d, p.b_d, N, T, D, H);
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++) {
            const double *x = p.xs_d + (n * T + t) * D, *hp = t ? hs + (n * T + t - 1) * H : p.h0_d + n * H;
            for (int64_t j = 0; j < H; j++) {
                double a = p.b_d[j];
                for (int64_t d = 0; d < D; d++) a += x[d] * p.wx_d[d * H + j];
                for (int64_t k = 0; k < H; k++) a += hp[k] * p.wh_d[k * H + j];
                margin = fmin(margin, fabs(a));
            }
        }
    free(hs);
    problem_free(&p);
    return margin;
}

/* The first seed from `seed` on whose problem every pre-activation keeps the margin (found in float64, so the same
 * on every machine). */
static uint64_t relu_seed(int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    while (relu_kink_margin(N, T, D, H, seed) < 0.1) seed++;
    printf("relu gradient-check problem N=%lld T=%lld D=%lld H=%lld: seed %llu (every |pre-activation| >= 0.1)\n",
           (long long)N, (long long)T, (long long)D, (long long)H, (unsigned long long)seed);
    return seed;
}

int main(void) {
    test_tanh_accuracy();
    /* step: general, N=1, D≠H both ways, no h_prev / no bias, a larger BLAS-sized shape */
    test_step_vs_ref(3, 4, 6, 1, 1, 1);
    test_step_vs_ref(1, 5, 3, 1, 1, 2);
    test_step_vs_ref(4, 1, 7, 0, 1, 3);
    test_step_vs_ref(2, 6, 6, 0, 0, 4);
    test_step_vs_ref(16, 64, 128, 1, 1, 5);
    /* sequence: general, N=1, T=1, D≠H, NULL optionals, larger */
    test_seq_vs_ref(3, 5, 4, 6, 1, 1, 1, 11);
    test_seq_vs_ref(1, 1, 3, 5, 1, 1, 1, 12);
    test_seq_vs_ref(1, 7, 8, 2, 0, 1, 0, 13);
    test_seq_vs_ref(2, 1, 2, 9, 0, 0, 1, 14);
    test_seq_vs_ref(4, 3, 5, 5, 1, 0, 0, 15);
    test_seq_vs_ref(8, 20, 32, 64, 1, 1, 1, 16);
    /* Shapes where the window packs Wh (H·G >= 32768; see rc_packs_recurrence in window.c), with a partial panel
     * of 16 columns and a remainder row block, on 1 and 3 threads. */
    for (int threads = 1; threads <= 3; threads += 2) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        test_seq_vs_ref(7, 6, 33, 190, 1, 1, 1, 17);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    test_null_means_zero();
    test_grad_checks(1, 2, 1, 3, 4, 21);
    test_grad_checks(0, 2, 4, 3, 5, 22);
    test_grad_checks(0, 1, 1, 2, 3, 23);
    test_textbook_crosscheck();
    /* truncation: general, NULL optionals, T=2, larger */
    test_truncation(3, 5, 4, 6, 1, 31);
    test_truncation(2, 4, 3, 2, 0, 32);
    test_truncation(1, 2, 2, 3, 1, 33);
    test_truncation(4, 9, 8, 16, 1, 34);

    /* the ReLU cell: the window tests again (the step kernels and the tanh's accuracy are tanh only) */
    printf("== ReLU cell (rnncore_rnn_relu_*)\n");
    g_relu = 1;
    test_seq_vs_ref(3, 5, 4, 6, 1, 1, 1, 111);
    test_seq_vs_ref(1, 1, 3, 5, 1, 1, 1, 112);
    test_seq_vs_ref(1, 7, 8, 2, 0, 1, 0, 113);
    test_seq_vs_ref(4, 3, 5, 5, 1, 0, 0, 115);
    test_seq_vs_ref(8, 20, 32, 64, 1, 1, 1, 116);
    /* Shapes where the window packs Wh (H·G >= 32768; see rc_packs_recurrence in window.c), with a partial panel
     * of 16 columns and a remainder row block, on 1 and 3 threads. */
    for (int threads = 1; threads <= 3; threads += 2) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        test_seq_vs_ref(7, 6, 33, 190, 1, 1, 1, 117);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    test_null_means_zero();
    test_grad_checks(0, 2, 4, 3, 5, relu_seed(2, 4, 3, 5, 122));
    test_grad_checks(0, 1, 1, 2, 3, relu_seed(1, 1, 2, 3, 123));
    test_truncation(3, 5, 4, 6, 1, 131);
    test_truncation(2, 4, 3, 2, 0, 132);
    test_truncation(1, 2, 2, 3, 1, 133);
    test_truncation(4, 9, 8, 16, 1, 134);
    return test_finish("test_rnn");
}
