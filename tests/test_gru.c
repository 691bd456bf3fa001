/*
 * test_gru.c — the GRU window kernels rnncore_gru_sizes/forward/backward (torch.nn.GRU: gates r, z, n; b = bias_ih,
 * b_hidden = bias_hh inside r ⊙ (h·Whn + b_hn)).
 *
 *  (a) float32 kernels vs the float64 reference (tests/reference.c) on random inputs, several shapes (N=1, T=1,
 *      D≠H, larger), every optional pointer NULL in some case: hs, the cache (r, z, n, u_n), state_last, and every
 *      gradient; accumulate/overwrite semantics;
 *  (b) the reference backward vs central differences of the reference forward (float64, eps 1e-5);
 *  (c) the kernel backward vs central differences of the kernel forward (loss summed in float64, eps 1e-2);
 *  (d) truncation: 0, T, T+1 and INT64_MAX bit-identical; 1 <= k < T vs the per-output truncated reference; k = 1
 *      lets nothing reach dstate0;
 *  (e) saturation: huge pre-activations give finite outputs with the gates in range, and gradients that vanish where
 *      the reference's do;
 *  (f) stateful carry: state_last == state0 in place, and two windows carrying the state == one long window;
 *  (g) NULL state0 / b / b_hidden / dstate_last equal explicit zeros;
 *  (h) every bad argument returns its status and writes nothing (tests/cell_api.h).
 * The loss of every gradient check is L = Σ hs⊙Whs + Σ h_last⊙Whl with random weights, so dhs = Whs and
 * dstate_last = Whl.
 */
#include "cell_api.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

typedef struct {
    int64_t N, T, D, H;
    float *xs, *h0, *wx, *wh, *b, *bh, *dhs, *dhl;
    double *xs_d, *h0_d, *wx_d, *wh_d, *b_d, *bh_d, *dhs_d, *dhl_d;
} gru_problem;

static void problem_init(gru_problem *p, int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    rng_t r = {seed};
    const int64_t G = 3 * H;
    *p = (gru_problem){.N = N, .T = T, .D = D, .H = H};
    p->xs = alloc_f(N * T * D); fill_f(p->xs, N * T * D, &r, -1, 1);
    p->h0 = alloc_f(N * H);     fill_f(p->h0, N * H, &r, -0.8, 0.8);
    /* Weights ~ U(±1/sqrt(fan_in)) keep the pre-activations O(1): no gate saturates or is linear. */
    p->wx = alloc_f(D * G);     fill_f(p->wx, D * G, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    p->wh = alloc_f(H * G);     fill_f(p->wh, H * G, &r, -1 / sqrt((double)H), 1 / sqrt((double)H));
    p->b = alloc_f(G);          fill_f(p->b, G, &r, -0.5, 0.5);
    p->bh = alloc_f(G);         fill_f(p->bh, G, &r, -0.5, 0.5);
    p->dhs = alloc_f(N * T * H); fill_f(p->dhs, N * T * H, &r, -1, 1);
    p->dhl = alloc_f(N * H);    fill_f(p->dhl, N * H, &r, -1, 1);
    p->xs_d = to_d(p->xs, N * T * D); p->h0_d = to_d(p->h0, N * H); p->wx_d = to_d(p->wx, D * G);
    p->wh_d = to_d(p->wh, H * G); p->b_d = to_d(p->b, G); p->bh_d = to_d(p->bh, G);
    p->dhs_d = to_d(p->dhs, N * T * H); p->dhl_d = to_d(p->dhl, N * H);
}

static void problem_free(gru_problem *p) {
    float *f[] = {p->xs, p->h0, p->wx, p->wh, p->b, p->bh, p->dhs, p->dhl};
    double *d[] = {p->xs_d, p->h0_d, p->wx_d, p->wh_d, p->b_d, p->bh_d, p->dhs_d, p->dhl_d};
    for (int i = 0; i < 8; i++) { free(f[i]); free(d[i]); }
}

static rnncore_window window_of(const gru_problem *p, int64_t truncation) {
    return (rnncore_window){p->N, p->T, p->D, p->H, truncation};
}

/* Cache and workspace of exactly the queried sizes (AddressSanitizer sees an overrun), the workspace NaN-filled (a
 * kernel that reads scratch it did not write shows up). */
static float *alloc_cache(const gru_problem *p) {
    rnncore_cell_sizes s;
    rnncore_window w = window_of(p, 0);
    CHECK_STATUS(rnncore_gru_sizes(&s, &w), RNNCORE_OK);
    CHECK(s.gates == 3 && s.states == 1 && s.cache == p->N * p->T * 4 * p->H);
    return alloc_f(s.cache);
}
static float *alloc_workspace(const gru_problem *p, int64_t truncation) {
    rnncore_cell_sizes s = {0};
    rnncore_window w = window_of(p, truncation);
    CHECK_STATUS(rnncore_gru_sizes(&s, &w), RNNCORE_OK);
    CHECK(s.workspace >= 1);
    float *ws = alloc_f(s.workspace);
    fill_const_f(ws, s.workspace, NAN);
    return ws;
}

static rnncore_status gru_fw(const gru_problem *p, float *hs, float *cache, float *state_last, const float *h0,
                             const float *b, const float *bh) {
    const rnncore_cell_weights w = {p->wx, p->wh, b, bh};
    const rnncore_window win = window_of(p, 0);
    return rnncore_gru_forward(hs, cache, state_last, p->xs, h0, &w, &win);
}

static rnncore_status gru_bw(const gru_problem *p, float *dxs, float *dh0, float *dwx, float *dwh, float *db,
                             float *dbh, float *ws, const float *dhl, const float *h0, const float *hs,
                             const float *cache, int64_t truncation) {
    const rnncore_cell_weights w = {p->wx, p->wh, NULL, NULL};
    const rnncore_cell_gradients g = {dwx, dwh, db, dbh};
    const rnncore_window win = window_of(p, truncation);
    return rnncore_gru_backward(dxs, dh0, &g, ws, p->dhs, dhl, p->xs, h0, hs, cache, &w, &win);
}

/* Four parameter gradients with random priors, and their double images. */
typedef struct { float *wx, *wh, *b, *bh; double *wx_d, *wh_d, *b_d, *bh_d; } pgrads;
static pgrads pgrads_random(int64_t D, int64_t H, uint64_t seed) {
    rng_t r = {seed};
    const int64_t G = 3 * H;
    pgrads g;
    g.wx = alloc_f(D * G); fill_f(g.wx, D * G, &r, -1, 1);
    g.wh = alloc_f(H * G); fill_f(g.wh, H * G, &r, -1, 1);
    g.b = alloc_f(G);      fill_f(g.b, G, &r, -1, 1);
    g.bh = alloc_f(G);     fill_f(g.bh, G, &r, -1, 1);
    g.wx_d = to_d(g.wx, D * G); g.wh_d = to_d(g.wh, H * G); g.b_d = to_d(g.b, G); g.bh_d = to_d(g.bh, G);
    return g;
}
static void pgrads_free(pgrads *g) {
    free(g->wx); free(g->wh); free(g->b); free(g->bh); free(g->wx_d); free(g->wh_d); free(g->b_d); free(g->bh_d);
}

static int is_last_step(const float *last, const float *seq, int64_t N, int64_t T, int64_t H) {
    int ok = 1;
    for (int64_t n = 0; n < N; n++) ok &= memcmp(last + n * H, seq + (n * T + T - 1) * H, (size_t)H * sizeof *last) == 0;
    return ok;
}

/* ---- (a) kernels vs reference -------------------------------------------------------------------------------
 * Tolerances, as for the LSTM (test_lstm.c). A pre-activation is a dot product of length K = D+H+1 of terms below ~1:
 * float32 summation error below K·u (u = 2^-24), tol 4·K·u; the vectorised σ and tanh add below 4e-7 ≈ 7u each, and
 * n = tanh(a_n + r·u_n), h = (1-z)·n + z·h_prev a few roundings of values below 2: + 16u. The activations'
 * derivatives are <= 1 and h mixes n and h_prev with weights summing to 1, so nothing amplifies; over T steps the
 * error of h is carried forward: factor T. Backward: dA, dU are products of ~5 rounded factors, and dxs, dh_prev
 * sum 3H of them: 4·(3H+8)·u per step, factor T. Parameter gradients sum N·T products onto a random prior of size ~1:
 * 4·(N·T+3H)·T·u. */
static void test_vs_ref(int64_t N, int64_t T, int64_t D, int64_t H, int use_h0, int use_b, int use_bh, int use_dhl,
                        uint64_t seed, double *worst) {
    printf("gru_forward/backward N=%lld T=%lld D=%lld H=%lld h0=%s b=%s b_hidden=%s dstate_last=%s\n", (long long)N,
           (long long)T, (long long)D, (long long)H, use_h0 ? "yes" : "NULL", use_b ? "yes" : "NULL",
           use_bh ? "yes" : "NULL", use_dhl ? "yes" : "NULL");
    gru_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 3 * H, NTH = N * T * H, NTD = N * T * D;
    const float *h0 = use_h0 ? p.h0 : NULL, *b = use_b ? p.b : NULL, *bh = use_bh ? p.bh : NULL;
    const float *dhl = use_dhl ? p.dhl : NULL;
    const double *h0_d = use_h0 ? p.h0_d : NULL, *b_d = use_b ? p.b_d : NULL, *bh_d = use_bh ? p.bh_d : NULL;
    const double *dhl_d = use_dhl ? p.dhl_d : NULL;
    float *hs = alloc_f(NTH), *cache = alloc_cache(&p), *hl = alloc_f(N * H);
    fill_const_f(hs, NTH, NAN); fill_const_f(cache, N * T * 4 * H, NAN); fill_const_f(hl, N * H, NAN);
    double *hs_d = alloc_d(NTH), *gt_d = alloc_d(N * T * 4 * H);
    CHECK_STATUS(gru_fw(&p, hs, cache, hl, h0, b, bh), RNNCORE_OK);
    ref_gru_forward(hs_d, gt_d, NULL, p.xs_d, h0_d, p.wx_d, p.wh_d, b_d, bh_d, N, T, D, H);
    const double tf = (4.0 * (double)(D + H + 1) + 16.0) * (double)T * U32;
    check_close_fd("gru_forward hs", hs, hs_d, NTH, tf, tf);
    check_close_fd("gru_forward cache (r, z, n, u_n)", cache, gt_d, N * T * 4 * H, tf, tf);
    for (int64_t i = 0; i < NTH; i++) worst[0] = fmax(worst[0], fabs((double)hs[i] - hs_d[i]));
    CHECK(is_last_step(hl, hs, N, T, H)); /* state_last is a copy of hs[:,T-1] */
    /* state_last may be NULL: the same hs and cache */
    float *hs2 = alloc_f(NTH), *cache2 = alloc_cache(&p);
    CHECK_STATUS(gru_fw(&p, hs2, cache2, NULL, h0, b, bh), RNNCORE_OK);
    CHECK(memcmp(hs2, hs, (size_t)NTH * sizeof *hs) == 0);
    CHECK(memcmp(cache2, cache, (size_t)(N * T * 4 * H) * sizeof *cache) == 0);

    /* Backward from the kernel's own hs and cache (so only the backward is under test), onto random priors. */
    float *dxs = alloc_f(NTD), *dh0 = alloc_f(N * H), *ws = alloc_workspace(&p, 0);
    fill_const_f(dxs, NTD, NAN); fill_const_f(dh0, N * H, NAN);
    pgrads g = pgrads_random(D, H, seed ^ 0x5EEDu);
    double *dxs_d = alloc_d(NTD), *dh0_d = alloc_d(N * H), *hsk = to_d(hs, NTH), *gtk = to_d(cache, N * T * 4 * H);
    CHECK_STATUS(gru_bw(&p, dxs, dh0, g.wx, g.wh, g.b, g.bh, ws, dhl, h0, hs, cache, 0), RNNCORE_OK);
    ref_gru_backward(dxs_d, dh0_d, g.wx_d, g.wh_d, g.b_d, g.bh_d, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, gtk, p.wx_d,
                     p.wh_d, N, T, D, H);
    const double ta = 4.0 * (double)(G + 8) * (double)T * U32, tp = 4.0 * (double)(N * T + G) * (double)T * U32;
    check_close_fd("gru_backward dxs", dxs, dxs_d, NTD, ta, ta);
    check_close_fd("gru_backward dstate0", dh0, dh0_d, N * H, ta, ta);
    check_close_fd("gru_backward dWx (accumulated)", g.wx, g.wx_d, D * G, tp, tp);
    check_close_fd("gru_backward dWh (accumulated)", g.wh, g.wh_d, H * G, tp, tp);
    check_close_fd("gru_backward db (accumulated)", g.b, g.b_d, G, tp, tp);
    check_close_fd("gru_backward db_hidden (accumulated)", g.bh, g.bh_d, G, tp, tp);
    for (int64_t i = 0; i < NTD; i++) worst[1] = fmax(worst[1], fabs((double)dxs[i] - dxs_d[i]));
    for (int64_t i = 0; i < N * H; i++) worst[1] = fmax(worst[1], fabs((double)dh0[i] - dh0_d[i]));
    for (int64_t i = 0; i < D * G; i++) worst[2] = fmax(worst[2], fabs((double)g.wx[i] - g.wx_d[i]));
    for (int64_t i = 0; i < H * G; i++) worst[2] = fmax(worst[2], fabs((double)g.wh[i] - g.wh_d[i]));
    for (int64_t i = 0; i < G; i++)
        worst[2] = fmax(worst[2], fmax(fabs((double)g.b[i] - g.b_d[i]), fabs((double)g.bh[i] - g.bh_d[i])));

    /* Accumulation: from zeroed parameter grads two calls give twice one call (within tp: adding the second pass
     * onto the first rounds differently from doubling); dxs and dstate0 are overwritten (the same values after a
     * call onto garbage). dxs/dstate0/db/db_hidden NULL are allowed and change neither dWx nor dWh. */
    float *g1[4], *g2[4];
    const int64_t cnt[4] = {D * G, H * G, G, G};
    for (int i = 0; i < 4; i++) { g1[i] = alloc_f(cnt[i]); g2[i] = alloc_f(cnt[i]); }
    float *dxs1 = alloc_f(NTD), *dh01 = alloc_f(N * H);
    CHECK_STATUS(gru_bw(&p, dxs1, dh01, g1[0], g1[1], g1[2], g1[3], ws, dhl, h0, hs, cache, 0), RNNCORE_OK);
    fill_const_f(dxs, NTD, 1e30f); fill_const_f(dh0, N * H, -7.0f);
    for (int k = 0; k < 2; k++)
        CHECK_STATUS(gru_bw(&p, dxs, dh0, g2[0], g2[1], g2[2], g2[3], ws, dhl, h0, hs, cache, 0), RNNCORE_OK);
    check_close_ff("gru_backward dxs overwritten", dxs, dxs1, NTD, 0, 0);
    check_close_ff("gru_backward dstate0 overwritten", dh0, dh01, N * H, 0, 0);
    const char *names[4] = {"dWx", "dWh", "db", "db_hidden"};
    char what[96];
    for (int i = 0; i < 4; i++) {
        for (int64_t j = 0; j < cnt[i]; j++) g1[i][j] *= 2;
        snprintf(what, sizeof what, "gru_backward %s twice = 2x", names[i]);
        check_close_ff(what, g2[i], g1[i], cnt[i], tp, tp);
        for (int64_t j = 0; j < cnt[i]; j++) g1[i][j] /= 2;
    }
    memset(g2[0], 0, (size_t)cnt[0] * sizeof(float)); memset(g2[1], 0, (size_t)cnt[1] * sizeof(float));
    CHECK_STATUS(gru_bw(&p, NULL, NULL, g2[0], g2[1], NULL, NULL, ws, dhl, h0, hs, cache, 0), RNNCORE_OK);
    check_close_ff("gru_backward NULL dxs/dstate0/db/db_hidden: dWx", g2[0], g1[0], cnt[0], tp, tp);
    check_close_ff("gru_backward NULL dxs/dstate0/db/db_hidden: dWh", g2[1], g1[1], cnt[1], tp, tp);

    for (int i = 0; i < 4; i++) { free(g1[i]); free(g2[i]); }
    free(hs); free(cache); free(hl); free(hs_d); free(gt_d); free(hs2); free(cache2); free(dxs); free(dh0); free(ws);
    free(dxs_d); free(dh0_d); free(hsk); free(gtk); free(dxs1); free(dh01);
    pgrads_free(&g);
    problem_free(&p);
}

/* ---- (b), (c) gradient checks ------------------------------------------------------------------------------- */

typedef struct { gru_problem *p; float *hs, *cache, *hl; double *hs_d, *hl_d; } gctx;

static double loss_f(void *v) {
    gctx *g = v; gru_problem *p = g->p;
    rnncore_status s = gru_fw(p, g->hs, g->cache, g->hl, p->h0, p->b, p->bh);
    assert(s == RNNCORE_OK);
    return dot_fd(g->hs, p->dhs_d, p->N * p->T * p->H) + dot_fd(g->hl, p->dhl_d, p->N * p->H);
}

static double loss_d(void *v) {
    gctx *g = v; gru_problem *p = g->p;
    ref_gru_forward(g->hs_d, NULL, g->hl_d, p->xs_d, p->h0_d, p->wx_d, p->wh_d, p->b_d, p->bh_d, p->N, p->T, p->D,
                    p->H);
    return dot_dd(g->hs_d, p->dhs_d, p->N * p->T * p->H) + dot_dd(g->hl_d, p->dhl_d, p->N * p->H);
}

/* (b) in float64: eps = 1e-5 leaves truncation error ~eps²·L''' ≈ 1e-10 and rounding ~1e-16·|L|/eps ≈ 1e-11, so
 * 1e-8 abs + 1e-7 rel is tight. (c) in float32: each forward carries rounding ~u·Σ|terms| ≈ 1e-6 in L; divided by
 * 2·eps = 2e-2 that is ~5e-5, plus truncation eps²·L'''/6 ≈ 2e-5·|L'''| with |L'''| = O(1): 5e-4 abs + 5e-3 rel, the
 * tolerances of the tanh RNN and LSTM checks. */
static void test_grad_checks(int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed, double *worst_ref) {
    gru_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 3 * H;
    gctx g = {&p, alloc_f(N * T * H), alloc_cache(&p), alloc_f(N * H), alloc_d(N * T * H), alloc_d(N * H)};
    printf("gru gradient checks N=%lld T=%lld D=%lld H=%lld\n", (long long)N, (long long)T, (long long)D, (long long)H);
    const char *names[] = {"dxs", "dstate0", "dWx", "dWh", "db", "db_hidden"};
    const int64_t cnt[] = {N * T * D, N * H, D * G, H * G, G, G};
    char what[96];

    /* (b) the reference backward vs central differences of the reference forward */
    double *ad[6];
    for (int i = 0; i < 6; i++) ad[i] = alloc_d(cnt[i]);
    double *gt_d = alloc_d(N * T * 4 * H);
    ref_gru_forward(g.hs_d, gt_d, NULL, p.xs_d, p.h0_d, p.wx_d, p.wh_d, p.b_d, p.bh_d, N, T, D, H);
    ref_gru_backward(ad[0], ad[1], ad[2], ad[3], ad[4], ad[5], p.dhs_d, p.dhl_d, p.xs_d, p.h0_d, g.hs_d, gt_d, p.wx_d,
                     p.wh_d, N, T, D, H);
    double *pd[] = {p.xs_d, p.h0_d, p.wx_d, p.wh_d, p.b_d, p.bh_d};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "[ref] gru_backward %s", names[i]);
        grad_check_d(what, pd[i], ad[i], cnt[i], 1e-5, loss_d, &g, 1e-8, 1e-7);
    }

    /* (c) the kernel backward vs central differences of the kernel forward */
    float *af[6];
    for (int i = 0; i < 6; i++) af[i] = alloc_f(cnt[i]);
    float *ws = alloc_workspace(&p, 0);
    loss_f(&g);
    CHECK_STATUS(gru_bw(&p, af[0], af[1], af[2], af[3], af[4], af[5], ws, p.dhl, p.h0, g.hs, g.cache, 0), RNNCORE_OK);
    float *pf[] = {p.xs, p.h0, p.wx, p.wh, p.b, p.bh};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "[f32] gru_backward %s", names[i]);
        grad_check_f(what, pf[i], af[i], cnt[i], 1e-2, loss_f, &g, 5e-4, 5e-3);
    }
    /* the kernel's gradient against the float64 reference gradient at the same point (reported in the summary) */
    for (int i = 0; i < 6; i++)
        for (int64_t j = 0; j < cnt[i]; j++) *worst_ref = fmax(*worst_ref, fabs((double)af[i][j] - ad[i][j]));
    for (int i = 0; i < 6; i++) { free(ad[i]); free(af[i]); }
    free(gt_d); free(ws); free(g.hs); free(g.cache); free(g.hl); free(g.hs_d); free(g.hl_d);
    problem_free(&p);
}

/* ---- (d) truncation -------------------------------------------------------------------------------------------
 * The references first check each other in float64: the per-output truncated reference with no limit (0, T+1)
 * equals the carried full reference. Then the kernel: truncation T, T+1 and INT64_MAX give bit for bit the results of
 * truncation 0 (the header: "exactly the same results as each other"); every 1 <= k < T matches the truncated
 * reference with the tolerances of the full backward; with k = 1 nothing reaches dstate0. */
static void test_truncation(int64_t N, int64_t T, int64_t D, int64_t H, int use_opt, uint64_t seed) {
    printf("gru_backward truncated N=%lld T=%lld D=%lld H=%lld optionals=%s\n", (long long)N, (long long)T,
           (long long)D, (long long)H, use_opt ? "yes" : "NULL");
    gru_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 3 * H, NTH = N * T * H, NTD = N * T * D;
    const float *h0 = use_opt ? p.h0 : NULL, *dhl = use_opt ? p.dhl : NULL;
    const double *h0_d = use_opt ? p.h0_d : NULL, *dhl_d = use_opt ? p.dhl_d : NULL;
    float *hs = alloc_f(NTH), *cache = alloc_cache(&p);
    CHECK_STATUS(gru_fw(&p, hs, cache, NULL, h0, p.b, p.bh), RNNCORE_OK);
    double *hsk = to_d(hs, NTH), *gtk = to_d(cache, N * T * 4 * H);
    char what[96];

    double *f[6], *r[6];
    const int64_t cnt[6] = {NTD, N * H, D * G, H * G, G, G};
    for (int i = 0; i < 6; i++) { f[i] = alloc_d(cnt[i]); r[i] = alloc_d(cnt[i]); }
    ref_gru_backward(f[0], f[1], f[2], f[3], f[4], f[5], p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, gtk, p.wx_d, p.wh_d, N, T,
                     D, H);
    const int64_t unlimited[] = {0, T + 1};
    for (int u = 0; u < 2; u++) {
        for (int i = 2; i < 6; i++) memset(r[i], 0, (size_t)cnt[i] * sizeof(double));
        ref_gru_backward_truncated(r[0], r[1], r[2], r[3], r[4], r[5], p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, gtk, p.wx_d,
                                   p.wh_d, N, T, D, H, unlimited[u]);
        snprintf(what, sizeof what, "[ref] truncated k=%lld vs full: dxs", (long long)unlimited[u]);
        check_close_dd(what, r[0], f[0], NTD, 1e-12, 1e-12);
        check_close_dd("[ref]   dstate0", r[1], f[1], N * H, 1e-12, 1e-12);
        check_close_dd("[ref]   dWx", r[2], f[2], D * G, 1e-12, 1e-12);
        check_close_dd("[ref]   dWh", r[3], f[3], H * G, 1e-12, 1e-12);
        check_close_dd("[ref]   db", r[4], f[4], G, 1e-12, 1e-12);
        check_close_dd("[ref]   db_hidden", r[5], f[5], G, 1e-12, 1e-12);
    }

    /* the whole window, four ways, bit for bit */
    float *k0[6], *kk[6];
    for (int i = 0; i < 6; i++) { k0[i] = alloc_f(cnt[i]); kk[i] = alloc_f(cnt[i]); }
    float *ws = alloc_workspace(&p, 0);
    CHECK_STATUS(gru_bw(&p, use_opt ? k0[0] : NULL, use_opt ? k0[1] : NULL, k0[2], k0[3], use_opt ? k0[4] : NULL,
                        use_opt ? k0[5] : NULL, ws, dhl, h0, hs, cache, 0), RNNCORE_OK);
    free(ws);
    const int64_t ks_full[] = {T, T + 1, INT64_MAX};
    for (int u = 0; u < 3; u++) {
        ws = alloc_workspace(&p, ks_full[u]);
        for (int i = 0; i < 6; i++) fill_const_f(kk[i], cnt[i], i < 2 ? NAN : 0.0f);
        CHECK_STATUS(gru_bw(&p, use_opt ? kk[0] : NULL, use_opt ? kk[1] : NULL, kk[2], kk[3], use_opt ? kk[4] : NULL,
                            use_opt ? kk[5] : NULL, ws, dhl, h0, hs, cache, ks_full[u]), RNNCORE_OK);
        int same = 1;
        for (int i = use_opt ? 0 : 2; i < (use_opt ? 6 : 4); i++)
            same &= memcmp(kk[i], k0[i], (size_t)cnt[i] * sizeof(float)) == 0;
        printf("  truncation %lld == truncation 0 bit for bit: %s\n", (long long)ks_full[u], same ? "ok" : "FAIL");
        CHECK(same);
        free(ws);
    }

    /* 1 <= k < T against the truncated reference, onto random parameter-gradient priors */
    const double ta = 4.0 * (double)(G + 8) * (double)T * U32, tp = 4.0 * (double)(N * T + G) * (double)T * U32;
    for (int64_t k = 1; k < T; k++) {
        ws = alloc_workspace(&p, k);
        pgrads g = pgrads_random(D, H, seed + (uint64_t)k);
        fill_const_f(kk[0], NTD, NAN); fill_const_f(kk[1], N * H, NAN);
        CHECK_STATUS(gru_bw(&p, kk[0], kk[1], g.wx, g.wh, g.b, g.bh, ws, dhl, h0, hs, cache, k), RNNCORE_OK);
        ref_gru_backward_truncated(r[0], r[1], g.wx_d, g.wh_d, g.b_d, g.bh_d, p.dhs_d, dhl_d, p.xs_d, h0_d, hsk, gtk,
                                   p.wx_d, p.wh_d, N, T, D, H, k);
        snprintf(what, sizeof what, "gru_backward k=%lld vs truncated ref: dxs", (long long)k);
        check_close_fd(what, kk[0], r[0], NTD, ta, ta);
        check_close_fd("  dstate0", kk[1], r[1], N * H, ta, ta);
        check_close_fd("  dWx (accumulated)", g.wx, g.wx_d, D * G, tp, tp);
        check_close_fd("  dWh (accumulated)", g.wh, g.wh_d, H * G, tp, tp);
        check_close_fd("  db (accumulated)", g.b, g.b_d, G, tp, tp);
        check_close_fd("  db_hidden (accumulated)", g.bh, g.bh_d, G, tp, tp);
        if (k == 1) {
            int zero = 1; /* no output's error reaches the initial state, not even along h = ... + z ⊙ h_prev */
            for (int64_t i = 0; i < N * H; i++) zero &= kk[1][i] == 0.0f;
            CHECK(zero);
        }
        pgrads_free(&g);
        free(ws);
    }
    for (int i = 0; i < 6; i++) { free(f[i]); free(r[i]); free(k0[i]); free(kk[i]); }
    free(hs); free(cache); free(hsk); free(gtk);
    problem_free(&p);
}

/* ---- (e) saturation --------------------------------------------------------------------------------------------
 * Every input row all +1 or all -1 and every column of Wx a constant ±scale/D put every input pre-activation at ±scale
 * (plus h·Wh, kept below 0.5 by scaling Wh down): r, z in [0, 1], n in [-1, 1], |h| <= 1 (|h0| <= 0.8), everything
 * finite, and equal to the reference (both saturate to the same 0, 1 or ±1, up to float rounding: abs tol 1e-6·T).
 * Backward: every gate is saturated, so σ', tanh' ~ e^-scale and dA, with it dxs and dWx, vanish (|·| <= 1e-6 in
 * kernel and reference), while the gradient still flows to dstate0 through z ⊙ h_prev where z ≈ 1; all finite and
 * equal to the reference within the same absolute tolerance. */
static void test_saturation(double scale) {
    enum { N = 2, T = 4, D = 3, H = 3, G = 3 * H };
    printf("gru saturated pre-activations ~ ±%g\n", scale);
    gru_problem p; problem_init(&p, N, T, D, H, 51);
    rng_t r = {52};
    for (int row = 0; row < N * T; row++) {
        const float s = rng_int(&r, 2) ? 1.0f : -1.0f;
        for (int d = 0; d < D; d++) p.xs[row * D + d] = s;
    }
    for (int j = 0; j < G; j++) {
        const float w = (float)((rng_int(&r, 2) ? scale : -scale) / D);
        for (int d = 0; d < D; d++) p.wx[d * G + j] = w;
    }
    for (int i = 0; i < H * G; i++) p.wh[i] *= 0.1f;
    memset(p.b, 0, G * sizeof(float));
    memset(p.bh, 0, G * sizeof(float));
    double *xs_d = to_d(p.xs, N * T * D), *wx_d = to_d(p.wx, D * G), *wh_d = to_d(p.wh, H * G);
    float hs[N * T * H], cache[N * T * 4 * H];
    double hs_d[N * T * H], gt_d[N * T * 4 * H];
    CHECK_STATUS(gru_fw(&p, hs, cache, NULL, p.h0, NULL, NULL), RNNCORE_OK);
    ref_gru_forward(hs_d, gt_d, NULL, xs_d, p.h0_d, wx_d, wh_d, NULL, NULL, N, T, D, H);
    int in_range = 1;
    for (int i = 0; i < N * T * 4 * H; i++) {
        const int block = (i % (4 * H)) / H; /* r, z, n, u_n */
        in_range &= isfinite(cache[i]);
        if (block < 2) in_range &= cache[i] >= 0.0f && cache[i] <= 1.0f;
        if (block == 2) in_range &= cache[i] >= -1.0f && cache[i] <= 1.0f;
    }
    for (int i = 0; i < N * T * H; i++) in_range &= isfinite(hs[i]) && fabsf(hs[i]) <= 1.0f;
    CHECK(in_range);
    check_close_fd("saturated gru_forward cache", cache, gt_d, N * T * 4 * H, 1e-6 * T, 0);
    check_close_fd("saturated gru_forward hs", hs, hs_d, N * T * H, 1e-6 * T, 0);

    float dxs[N * T * D], dh0[N * H], dwx[D * G] = {0}, dwh[H * G] = {0}, db[G] = {0}, dbh[G] = {0};
    double dxs_d[N * T * D], dh0_d[N * H], dwx_d[D * G] = {0}, dwh_d[H * G] = {0}, db_d[G] = {0}, dbh_d[G] = {0};
    double *hsk = to_d(hs, N * T * H), *gtk = to_d(cache, N * T * 4 * H);
    float *ws = alloc_workspace(&p, 0);
    CHECK_STATUS(gru_bw(&p, dxs, dh0, dwx, dwh, db, dbh, ws, p.dhl, p.h0, hs, cache, 0), RNNCORE_OK);
    ref_gru_backward(dxs_d, dh0_d, dwx_d, dwh_d, db_d, dbh_d, p.dhs_d, p.dhl_d, xs_d, p.h0_d, hsk, gtk, wx_d, wh_d, N,
                     T, D, H);
    int finite = 1, vanish = 1;
    for (int i = 0; i < N * T * D; i++) {
        finite &= isfinite(dxs[i]);
        vanish &= fabsf(dxs[i]) <= 1e-6f && fabs(dxs_d[i]) <= 1e-6;
    }
    for (int i = 0; i < D * G; i++) {
        finite &= isfinite(dwx[i]);
        vanish &= fabsf(dwx[i]) <= 1e-6f;
    }
    for (int i = 0; i < N * H; i++) finite &= isfinite(dh0[i]);
    for (int i = 0; i < H * G; i++) finite &= isfinite(dwh[i]);
    for (int i = 0; i < G; i++) finite &= isfinite(db[i]) && isfinite(dbh[i]);
    CHECK(finite);
    CHECK(vanish);
    check_close_fd("saturated gru_backward dxs", dxs, dxs_d, N * T * D, 1e-6 * T, 0);
    check_close_fd("saturated gru_backward dstate0", dh0, dh0_d, N * H, 1e-6 * T, 0);
    check_close_fd("saturated gru_backward dWx", dwx, dwx_d, D * G, 1e-6 * T * N, 0);
    check_close_fd("saturated gru_backward dWh", dwh, dwh_d, H * G, 1e-6 * T * N, 0);
    check_close_fd("saturated gru_backward db", db, db_d, G, 1e-6 * T * N, 0);
    check_close_fd("saturated gru_backward db_hidden", dbh, dbh_d, G, 1e-6 * T * N, 0);
    free(xs_d); free(wx_d); free(wh_d); free(hsk); free(gtk); free(ws);
    problem_free(&p);
}

/* ---- (f) stateful carry ------------------------------------------------------------------------------------------
 * state_last == state0 (one buffer carries the state from window to window) gives the same hs and cache as separate
 * buffers, bit for bit, and leaves the last state there; two windows of T1 and T2 steps carrying the state that way
 * equal one window of T1+T2 steps (within rounding: the input-projection GEMM runs over different row counts). */
static void test_stateful(void) {
    enum { N = 3, T1 = 4, T2 = 3, T = T1 + T2, D = 5, H = 6 };
    printf("gru stateful: state_last == state0; windows %d + %d == one window of %d\n", T1, T2, T);
    gru_problem p; problem_init(&p, N, T, D, H, 41);
    float hs[N * T * H], cache[N * T * 4 * H], hl[N * H];
    CHECK_STATUS(gru_fw(&p, hs, cache, hl, p.h0, p.b, p.bh), RNNCORE_OK);
    float h[N * H], hs_a[N * T * H], cache_a[N * T * 4 * H];
    memcpy(h, p.h0, sizeof h);
    CHECK_STATUS(gru_fw(&p, hs_a, cache_a, h, h, p.b, p.bh), RNNCORE_OK);
    CHECK(memcmp(hs_a, hs, sizeof hs) == 0 && memcmp(cache_a, cache, sizeof cache) == 0);
    CHECK(memcmp(h, hl, sizeof h) == 0);

    gru_problem p1 = p, p2 = p;
    float xs1[N * T1 * D], xs2[N * T2 * D], hs1[N * T1 * H], hs2[N * T2 * H], c1[N * T1 * 4 * H], c2[N * T2 * 4 * H];
    for (int n = 0; n < N; n++) {
        memcpy(xs1 + n * T1 * D, p.xs + n * T * D, T1 * D * sizeof(float));
        memcpy(xs2 + n * T2 * D, p.xs + (n * T + T1) * D, T2 * D * sizeof(float));
    }
    p1.T = T1; p1.xs = xs1; p2.T = T2; p2.xs = xs2;
    memcpy(h, p.h0, sizeof h);
    CHECK_STATUS(gru_fw(&p1, hs1, c1, h, h, p.b, p.bh), RNNCORE_OK);
    CHECK_STATUS(gru_fw(&p2, hs2, c2, h, h, p.b, p.bh), RNNCORE_OK);
    float hs12[N * T * H];
    for (int n = 0; n < N; n++) {
        memcpy(hs12 + n * T * H, hs1 + n * T1 * H, T1 * H * sizeof(float));
        memcpy(hs12 + (n * T + T1) * H, hs2 + n * T2 * H, T2 * H * sizeof(float));
    }
    check_close_ff("two windows vs one: hs", hs12, hs, N * T * H, 1e-6, 1e-5);
    check_close_ff("two windows vs one: state_last", h, hl, N * H, 1e-6, 1e-5);
    problem_free(&p);
}

/* ---- (g) NULL means zeros ----------------------------------------------------------------------------------------- */
static void test_null_means_zero(void) {
    enum { N = 2, T = 3, D = 4, H = 5, G = 3 * H };
    printf("gru NULL state0 / b / b_hidden / dstate_last equal explicit zeros\n");
    gru_problem p; problem_init(&p, N, T, D, H, 77);
    float z[N * T * 4 * H] = {0}, hs[2][N * T * H], cache[2][N * T * 4 * H];
    CHECK_STATUS(gru_fw(&p, hs[0], cache[0], NULL, NULL, NULL, NULL), RNNCORE_OK);
    CHECK_STATUS(gru_fw(&p, hs[1], cache[1], NULL, z, z, z), RNNCORE_OK);
    check_close_ff("gru_forward NULL state0,b,b_hidden vs zeros: hs", hs[0], hs[1], N * T * H, 1e-7, 1e-6);
    check_close_ff("gru_forward NULL state0,b,b_hidden vs zeros: cache", cache[0], cache[1], N * T * 4 * H, 1e-7,
                   1e-6);
    float dx[2][N * T * D], dh[2][N * H], dwx[2][D * G] = {{0}}, dwh[2][H * G] = {{0}};
    float *ws = alloc_workspace(&p, 0);
    CHECK_STATUS(gru_bw(&p, dx[0], dh[0], dwx[0], dwh[0], NULL, NULL, ws, NULL, NULL, hs[0], cache[0], 0), RNNCORE_OK);
    CHECK_STATUS(gru_bw(&p, dx[1], dh[1], dwx[1], dwh[1], NULL, NULL, ws, z, z, hs[0], cache[0], 0), RNNCORE_OK);
    check_close_ff("gru_backward NULL dstate_last,state0 vs zeros: dxs", dx[0], dx[1], N * T * D, 1e-7, 1e-6);
    check_close_ff("gru_backward NULL dstate_last,state0 vs zeros: dstate0", dh[0], dh[1], N * H, 1e-7, 1e-6);
    check_close_ff("gru_backward NULL dstate_last,state0 vs zeros: dWx", dwx[0], dwx[1], D * G, 1e-7, 1e-6);
    check_close_ff("gru_backward NULL dstate_last,state0 vs zeros: dWh", dwh[0], dwh[1], H * G, 1e-7, 1e-6);
    free(ws);
    problem_free(&p);
}

int main(void) {
    /* worst absolute errors vs the float64 reference: forward hs, activation grads, parameter grads, and the
     * gradient-check points */
    double worst[3] = {0, 0, 0}, worst_gc = 0;
    /* general, N=1, T=1, D≠H, NULL optionals, larger */
    test_vs_ref(3, 5, 4, 6, 1, 1, 1, 1, 11, worst);
    test_vs_ref(1, 1, 3, 5, 1, 1, 1, 1, 12, worst);
    test_vs_ref(1, 7, 8, 2, 0, 1, 0, 0, 13, worst);
    test_vs_ref(2, 1, 2, 9, 0, 0, 1, 1, 14, worst);
    test_vs_ref(4, 3, 5, 5, 1, 0, 0, 0, 15, worst);
    test_vs_ref(8, 20, 32, 64, 1, 1, 1, 1, 16, worst);
    /* Shapes where the window packs Wh (H·G >= 32768; see rc_packs_recurrence in window.c), with a partial panel
     * of 16 columns and a remainder row block, on 1 and 3 threads. */
    for (int threads = 1; threads <= 3; threads += 2) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        test_vs_ref(7, 6, 33, 110, 1, 1, 1, 1, 17, worst);
        test_truncation(7, 6, 9, 110, 1, 65);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    test_grad_checks(2, 4, 3, 5, 22, &worst_gc);
    test_grad_checks(1, 1, 2, 3, 23, &worst_gc);
    test_truncation(3, 5, 4, 6, 1, 61);
    test_truncation(2, 4, 3, 2, 0, 62);
    test_truncation(1, 2, 2, 3, 1, 63);
    test_truncation(4, 9, 8, 16, 1, 64);
    test_saturation(30.0);
    test_saturation(1e4);
    test_stateful();
    test_null_means_zero();
    check_cell_arguments(&CELLS[3]);
    printf("largest abs error vs the float64 reference: forward hs %.2e, dxs/dstate0 %.2e, parameter grads %.2e, "
           "grad-check points %.2e\n", worst[0], worst[1], worst[2], worst_gc);
    return test_finish("test_gru");
}
