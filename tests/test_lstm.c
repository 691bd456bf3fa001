/*
 * test_lstm.c — LSTM kernels: rnncore_lstm_step_forward/backward and rnncore_lstm_forward/backward (full BPTT;
 * truncation is in test_lstm_truncation.c), the window kernels through lstm_fw / lstm_bw (lstm_problem.h). Gates i, f, g, o along the 4H columns.
 *
 *  (a) float32 kernels vs the double reference on random inputs, several shapes (N=1, T=1, D≠H, larger), with
 *      every optional pointer NULL in some case;
 *  (b) the reference backward vs central differences of the reference forward (double, eps 1e-5);
 *  (c) the kernel backward vs central differences of the kernel forward (loss summed in double, eps 1e-2);
 *  (d) the sequence kernels equal T step kernels forward and T step kernels backward in reverse;
 *  (e) stateful use (h_last == h0, c_last == c0) and two windows carrying the state == one long window;
 *  (g) saturated pre-activations give finite outputs with the gates in range; the sigmoid's accuracy.
 * The loss of every gradient check is L = Σ hs⊙Whs + Σ h_last⊙Whl + Σ c_last⊙Wcl with random weights, so
 * dhs = Whs, dh_last = Whl and dc_last = Wcl (for one step: dh_next = Whs, dc_next = Wcl).
 */
#include "lstm_problem.h"

/* ---- (a) kernels vs reference ----------------------------------------------------------------------------- */

/* Tolerances. A pre-activation is a dot product of length K = D+H+1 of terms below ~1 in magnitude: float32
 * summation error below K·u (u = 2^-24), tol 4·K·u as for the RNN. The activations add their own relative error
 * (the vectorised σ and tanh stay below 4e-7 ≈ 7u), and c = f⊙c_prev + i⊙g, h = o⊙tanh(c) a few roundings of
 * values below 2: + 16u. The activations' derivatives are <= 1, so nothing amplifies; over T steps the errors of
 * c and h are carried forward, so the sequence tolerances get a factor T.
 * Backward: dA (N,4H) is a product of ~6 rounded factors, one of them a recomputed tanh(c) (~20u in all), and
 * dx, dh_prev sum 4H of its terms: 4·(4H+8)·u. Parameter gradients sum N (or N·T) products onto a random prior of
 * size ~1: 4·(N+8)·u per step; for sequences as the RNN test, 4·(N·T+4H)·T·u. */
static void test_step_vs_ref(int64_t N, int64_t D, int64_t H, int use_h, int use_c, int use_b, int use_dc,
                             uint64_t seed) {
    printf("lstm_step N=%lld D=%lld H=%lld h_prev=%s c_prev=%s b=%s dc_next=%s\n", (long long)N, (long long)D,
           (long long)H, use_h ? "yes" : "NULL", use_c ? "yes" : "NULL", use_b ? "yes" : "NULL",
           use_dc ? "yes" : "NULL");
    lstm_problem p; problem_init(&p, N, 1, D, H, seed);
    const int64_t G = 4 * H;
    const float *hp = use_h ? p.h0 : NULL, *cp = use_c ? p.c0 : NULL, *b = use_b ? p.b : NULL;
    const float *dcn = use_dc ? p.dcl : NULL;
    const double *hp_d = use_h ? p.h0_d : NULL, *cp_d = use_c ? p.c0_d : NULL, *b_d = use_b ? p.b_d : NULL;
    const double *dcn_d = use_dc ? p.dcl_d : NULL;
    float *hn = alloc_f(N * H), *cn = alloc_f(N * H), *gt = alloc_f(N * G);
    fill_const_f(hn, N * H, NAN); fill_const_f(cn, N * H, NAN); fill_const_f(gt, N * G, NAN);
    double *hn_d = alloc_d(N * H), *cn_d = alloc_d(N * H), *gt_d = alloc_d(N * G);
    CHECK_STATUS(rnncore_lstm_step_forward(hn, cn, gt, p.xs, hp, cp, p.wx, p.wh, b, N, D, H), RNNCORE_OK);
    ref_lstm_step_forward(hn_d, cn_d, gt_d, p.xs_d, hp_d, cp_d, p.wx_d, p.wh_d, b_d, N, D, H);
    double tf = (4.0 * (double)(D + H + 1) + 16.0) * U32;
    check_close_fd("lstm_step_forward h_next", hn, hn_d, N * H, tf, tf);
    check_close_fd("lstm_step_forward c_next", cn, cn_d, N * H, tf, tf);
    check_close_fd("lstm_step_forward gates", gt, gt_d, N * G, tf, tf);

    /* Backward from the kernel's own c_next and gates (so only the backward is under test), onto random priors. */
    float *dx = alloc_f(N * D), *dhp = alloc_f(N * H), *dcp = alloc_f(N * H), *ws = workspace_step(N, H);
    fill_const_f(dx, N * D, NAN); fill_const_f(dhp, N * H, NAN); fill_const_f(dcp, N * H, NAN);
    pgrads g = pgrads_random(D, H, seed ^ 0xABCDu);
    double *dx_d = alloc_d(N * D), *dhp_d = alloc_d(N * H), *dcp_d = alloc_d(N * H);
    double *cnk = to_d(cn, N * H), *gtk = to_d(gt, N * G);
    CHECK_STATUS(rnncore_lstm_step_backward(dx, dhp, dcp, g.wx, g.wh, g.b, ws, p.dhs, dcn, p.xs, hp, cp, cn, gt,
                                            p.wx, p.wh, N, D, H), RNNCORE_OK);
    ref_lstm_step_backward(dx_d, dhp_d, dcp_d, g.wx_d, g.wh_d, g.b_d, p.dhs_d, dcn_d, p.xs_d, hp_d, cp_d, cnk, gtk,
                           p.wx_d, p.wh_d, N, D, H);
    double ta = 4.0 * (double)(G + 8) * U32, tp = 4.0 * (double)(N + 8) * U32;
    check_close_fd("lstm_step_backward dx", dx, dx_d, N * D, ta, ta);
    check_close_fd("lstm_step_backward dh_prev", dhp, dhp_d, N * H, ta, ta);
    check_close_fd("lstm_step_backward dc_prev", dcp, dcp_d, N * H, ta, ta);
    check_close_fd("lstm_step_backward dWx (accumulated)", g.wx, g.wx_d, D * G, tp, tp);
    check_close_fd("lstm_step_backward dWh (accumulated)", g.wh, g.wh_d, H * G, tp, tp);
    check_close_fd("lstm_step_backward db (accumulated)", g.b, g.b_d, G, tp, tp);

    /* dx/dh_prev/dc_prev/db NULL: dWx and dWh get the same; without h_prev, dWh receives nothing at all. */
    float *wx1 = alloc_f(D * G), *wh1 = alloc_f(H * G), *wx2 = alloc_f(D * G), *wh2 = alloc_f(H * G);
    CHECK_STATUS(rnncore_lstm_step_backward(dx, dhp, dcp, wx1, wh1, g.b, ws, p.dhs, dcn, p.xs, hp, cp, cn, gt,
                                            p.wx, p.wh, N, D, H), RNNCORE_OK);
    CHECK_STATUS(rnncore_lstm_step_backward(NULL, NULL, NULL, wx2, wh2, NULL, ws, p.dhs, dcn, p.xs, hp, cp, cn, gt,
                                            p.wx, p.wh, N, D, H), RNNCORE_OK);
    check_close_ff("lstm_step_backward NULL dx/dh/dc/db: dWx", wx2, wx1, D * G, tp, tp);
    check_close_ff("lstm_step_backward NULL dx/dh/dc/db: dWh", wh2, wh1, H * G, tp, tp);
    if (!use_h) {
        int zero = 1;
        for (int64_t i = 0; i < H * G; i++) zero &= wh2[i] == 0.0f;
        CHECK(zero);
    }
    free(hn); free(cn); free(gt); free(hn_d); free(cn_d); free(gt_d); free(dx); free(dhp); free(dcp); free(ws);
    free(dx_d); free(dhp_d); free(dcp_d); free(cnk); free(gtk); free(wx1); free(wh1); free(wx2); free(wh2);
    pgrads_free(&g);
    problem_free(&p);
}

static void test_seq_vs_ref(int64_t N, int64_t T, int64_t D, int64_t H, int use_state, int use_b, int use_last,
                            uint64_t seed) {
    printf("lstm_forward/backward N=%lld T=%lld D=%lld H=%lld h0,c0=%s b=%s dh_last,dc_last=%s\n", (long long)N,
           (long long)T, (long long)D, (long long)H, use_state ? "yes" : "NULL", use_b ? "yes" : "NULL",
           use_last ? "yes" : "NULL");
    lstm_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 4 * H, NTH = N * T * H;
    const float *h0 = use_state ? p.h0 : NULL, *c0 = use_state ? p.c0 : NULL, *b = use_b ? p.b : NULL;
    const float *dhl = use_last ? p.dhl : NULL, *dcl = use_last ? p.dcl : NULL;
    const double *h0_d = use_state ? p.h0_d : NULL, *c0_d = use_state ? p.c0_d : NULL, *b_d = use_b ? p.b_d : NULL;
    const double *dhl_d = use_last ? p.dhl_d : NULL, *dcl_d = use_last ? p.dcl_d : NULL;
    float *hs = alloc_f(NTH), *cs = alloc_f(NTH), *gt = alloc_f(N * T * G), *hl = alloc_f(N * H), *cl = alloc_f(N * H);
    fill_const_f(hs, NTH, NAN); fill_const_f(cs, NTH, NAN); fill_const_f(gt, N * T * G, NAN);
    fill_const_f(hl, N * H, NAN); fill_const_f(cl, N * H, NAN);
    double *hs_d = alloc_d(NTH), *cs_d = alloc_d(NTH), *gt_d = alloc_d(N * T * G);
    CHECK_STATUS(lstm_fw(hs, cs, gt, hl, cl, p.xs, h0, c0, p.wx, p.wh, b, N, T, D, H), RNNCORE_OK);
    ref_lstm_forward(hs_d, cs_d, gt_d, NULL, NULL, p.xs_d, h0_d, c0_d, p.wx_d, p.wh_d, b_d, N, T, D, H);
    double tf = (4.0 * (double)(D + H + 1) + 16.0) * (double)T * U32;
    check_close_fd("lstm_forward hs", hs, hs_d, NTH, tf, tf);
    check_close_fd("lstm_forward cs", cs, cs_d, NTH, tf, tf);
    check_close_fd("lstm_forward gates", gt, gt_d, N * T * G, tf, tf);
    CHECK(is_last_step(hl, hs, N, T, H)); /* h_last, c_last are copies of step T-1 */
    CHECK(is_last_step(cl, cs, N, T, H));
    /* h_last and c_last may be NULL */
    float *hs2 = alloc_f(NTH), *cs2 = alloc_f(NTH), *gt2 = alloc_f(N * T * G);
    CHECK_STATUS(lstm_fw(hs2, cs2, gt2, NULL, NULL, p.xs, h0, c0, p.wx, p.wh, b, N, T, D, H), RNNCORE_OK);
    CHECK(memcmp(hs2, hs, (size_t)NTH * sizeof *hs) == 0 && memcmp(cs2, cs, (size_t)NTH * sizeof *cs) == 0);
    CHECK(memcmp(gt2, gt, (size_t)(N * T * G) * sizeof *gt) == 0);

    float *dxs = alloc_f(N * T * D), *dh0 = alloc_f(N * H), *dc0 = alloc_f(N * H), *ws = workspace_seq(N, T, H, 0);
    fill_const_f(dxs, N * T * D, NAN); fill_const_f(dh0, N * H, NAN); fill_const_f(dc0, N * H, NAN);
    pgrads g = pgrads_random(D, H, seed ^ 0x5EEDu);
    double *dxs_d = alloc_d(N * T * D), *dh0_d = alloc_d(N * H), *dc0_d = alloc_d(N * H);
    double *hsk = to_d(hs, NTH), *csk = to_d(cs, NTH), *gtk = to_d(gt, N * T * G);
    CHECK_STATUS(lstm_bw(dxs, dh0, dc0, g.wx, g.wh, g.b, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs, gt,
                                       p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    ref_lstm_backward(dxs_d, dh0_d, dc0_d, g.wx_d, g.wh_d, g.b_d, p.dhs_d, dhl_d, dcl_d, p.xs_d, h0_d, c0_d, hsk, csk,
                      gtk, p.wx_d, p.wh_d, N, T, D, H);
    double ta = 4.0 * (double)(G + 8) * (double)T * U32, tp = 4.0 * (double)(N * T + G) * (double)T * U32;
    check_close_fd("lstm_backward dxs", dxs, dxs_d, N * T * D, ta, ta);
    check_close_fd("lstm_backward dh0", dh0, dh0_d, N * H, ta, ta);
    check_close_fd("lstm_backward dc0", dc0, dc0_d, N * H, ta, ta);
    check_close_fd("lstm_backward dWx (accumulated)", g.wx, g.wx_d, D * G, tp, tp);
    check_close_fd("lstm_backward dWh (accumulated)", g.wh, g.wh_d, H * G, tp, tp);
    check_close_fd("lstm_backward db (accumulated)", g.b, g.b_d, G, tp, tp);

    /* Accumulation: from zeroed parameter grads, two calls give twice one call (within tp, see test_rnn.c); the
     * activation grads are overwritten (the same values after a call onto garbage). dxs/dh0/dc0/db NULL are
     * allowed and do not change dWx/dWh. */
    float *g1x = alloc_f(D * G), *g1h = alloc_f(H * G), *g1b = alloc_f(G), *g2x = alloc_f(D * G),
          *g2h = alloc_f(H * G), *g2b = alloc_f(G);
    float *dxs1 = alloc_f(N * T * D), *dh01 = alloc_f(N * H), *dc01 = alloc_f(N * H);
    CHECK_STATUS(lstm_bw(dxs1, dh01, dc01, g1x, g1h, g1b, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs, gt,
                                       p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    fill_const_f(dxs, N * T * D, 1e30f); fill_const_f(dh0, N * H, -7.0f); fill_const_f(dc0, N * H, INFINITY);
    for (int k = 0; k < 2; k++)
        CHECK_STATUS(lstm_bw(dxs, dh0, dc0, g2x, g2h, g2b, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs,
                                           gt, p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    check_close_ff("lstm_backward dxs overwritten", dxs, dxs1, N * T * D, 0, 0);
    check_close_ff("lstm_backward dh0 overwritten", dh0, dh01, N * H, 0, 0);
    check_close_ff("lstm_backward dc0 overwritten", dc0, dc01, N * H, 0, 0);
    for (int64_t i = 0; i < D * G; i++) g1x[i] *= 2;
    for (int64_t i = 0; i < H * G; i++) g1h[i] *= 2;
    for (int64_t i = 0; i < G; i++) g1b[i] *= 2;
    check_close_ff("lstm_backward dWx twice = 2x", g2x, g1x, D * G, tp, tp);
    check_close_ff("lstm_backward dWh twice = 2x", g2h, g1h, H * G, tp, tp);
    check_close_ff("lstm_backward db twice = 2x", g2b, g1b, G, tp, tp);
    memset(g2x, 0, (size_t)(D * G) * sizeof *g2x); memset(g2h, 0, (size_t)(H * G) * sizeof *g2h);
    CHECK_STATUS(lstm_bw(NULL, NULL, NULL, g2x, g2h, NULL, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs,
                                       gt, p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    for (int64_t i = 0; i < D * G; i++) g1x[i] /= 2;
    for (int64_t i = 0; i < H * G; i++) g1h[i] /= 2;
    check_close_ff("lstm_backward NULL dxs/dh0/dc0/db: dWx", g2x, g1x, D * G, tp, tp);
    check_close_ff("lstm_backward NULL dxs/dh0/dc0/db: dWh", g2h, g1h, H * G, tp, tp);

    free(hs); free(cs); free(gt); free(hl); free(cl); free(hs_d); free(cs_d); free(gt_d); free(hs2); free(cs2);
    free(gt2); free(dxs); free(dh0); free(dc0); free(ws); free(dxs_d); free(dh0_d); free(dc0_d); free(hsk);
    free(csk); free(gtk); free(g1x); free(g1h); free(g1b); free(g2x); free(g2h); free(g2b); free(dxs1); free(dh01);
    free(dc01);
    pgrads_free(&g);
    problem_free(&p);
}

/* NULL h0/c0 mean zeros, NULL b no bias, NULL dh_last/dc_last/dc_next zero gradients: identical to passing explicit
 * zero buffers. */
static void test_null_means_zero(void) {
    enum { N = 2, T = 3, D = 4, H = 5, G = 4 * H };
    printf("lstm NULL h0 / c0 / b / dh_last / dc_last / dc_next equal explicit zeros\n");
    lstm_problem p; problem_init(&p, N, T, D, H, 77);
    float *z = alloc_f(N * T * G), hs[2][N * T * H], cs[2][N * T * H], gt[2][N * T * G];
    CHECK_STATUS(lstm_fw(hs[0], cs[0], gt[0], NULL, NULL, p.xs, NULL, NULL, p.wx, p.wh, NULL, N, T, D, H),
                 RNNCORE_OK);
    CHECK_STATUS(lstm_fw(hs[1], cs[1], gt[1], NULL, NULL, p.xs, z, z, p.wx, p.wh, z, N, T, D, H),
                 RNNCORE_OK);
    check_close_ff("lstm_forward NULL h0,c0,b vs zeros: hs", hs[0], hs[1], N * T * H, 1e-7, 1e-6);
    check_close_ff("lstm_forward NULL h0,c0,b vs zeros: cs", cs[0], cs[1], N * T * H, 1e-7, 1e-6);
    check_close_ff("lstm_forward NULL h0,c0,b vs zeros: gates", gt[0], gt[1], N * T * G, 1e-7, 1e-6);
    CHECK_STATUS(rnncore_lstm_step_forward(hs[0], cs[0], gt[0], p.xs, NULL, NULL, p.wx, p.wh, NULL, N, D, H),
                 RNNCORE_OK);
    CHECK_STATUS(rnncore_lstm_step_forward(hs[1], cs[1], gt[1], p.xs, z, z, p.wx, p.wh, z, N, D, H), RNNCORE_OK);
    check_close_ff("lstm_step_forward NULL h,c,b vs zeros: h_next", hs[0], hs[1], N * H, 1e-7, 1e-6);
    check_close_ff("lstm_step_forward NULL h,c,b vs zeros: c_next", cs[0], cs[1], N * H, 1e-7, 1e-6);

    /* backward: NULL dc_next (step) and NULL dh_last/dc_last (sequence) */
    float dx[2][N * T * D], dh[2][N * H], dc[2][N * H], dwx[2][D * G] = {{0}}, dwh[2][H * G] = {{0}};
    float *wss = workspace_step(N, H), *ws = workspace_seq(N, T, H, 0);
    CHECK_STATUS(rnncore_lstm_step_forward(hs[0], cs[0], gt[0], p.xs, p.h0, p.c0, p.wx, p.wh, p.b, N, D, H),
                 RNNCORE_OK);
    CHECK_STATUS(rnncore_lstm_step_backward(dx[0], dh[0], dc[0], dwx[0], dwh[0], NULL, wss, p.dhs, NULL, p.xs, p.h0,
                                            p.c0, cs[0], gt[0], p.wx, p.wh, N, D, H), RNNCORE_OK);
    CHECK_STATUS(rnncore_lstm_step_backward(dx[1], dh[1], dc[1], dwx[1], dwh[1], NULL, wss, p.dhs, z, p.xs, p.h0,
                                            p.c0, cs[0], gt[0], p.wx, p.wh, N, D, H), RNNCORE_OK);
    check_close_ff("lstm_step_backward NULL dc_next vs zeros: dx", dx[0], dx[1], N * D, 1e-7, 1e-6);
    check_close_ff("lstm_step_backward NULL dc_next vs zeros: dc_prev", dc[0], dc[1], N * H, 1e-7, 1e-6);
    check_close_ff("lstm_step_backward NULL dc_next vs zeros: dWh", dwh[0], dwh[1], H * G, 1e-7, 1e-6);
    CHECK_STATUS(lstm_fw(hs[0], cs[0], gt[0], NULL, NULL, p.xs, p.h0, p.c0, p.wx, p.wh, p.b, N, T, D, H),
                 RNNCORE_OK);
    memset(dwx, 0, sizeof dwx); memset(dwh, 0, sizeof dwh);
    CHECK_STATUS(lstm_bw(dx[0], dh[0], dc[0], dwx[0], dwh[0], NULL, ws, p.dhs, NULL, NULL, p.xs, p.h0,
                                       p.c0, hs[0], cs[0], gt[0], p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    CHECK_STATUS(lstm_bw(dx[1], dh[1], dc[1], dwx[1], dwh[1], NULL, ws, p.dhs, z, z, p.xs, p.h0,
                                       p.c0, hs[0], cs[0], gt[0], p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    check_close_ff("lstm_backward NULL dh_last,dc_last vs zeros: dxs", dx[0], dx[1], N * T * D, 1e-7, 1e-6);
    check_close_ff("lstm_backward NULL dh_last,dc_last vs zeros: dh0", dh[0], dh[1], N * H, 1e-7, 1e-6);
    check_close_ff("lstm_backward NULL dh_last,dc_last vs zeros: dc0", dc[0], dc[1], N * H, 1e-7, 1e-6);
    check_close_ff("lstm_backward NULL dh_last,dc_last vs zeros: dWx", dwx[0], dwx[1], D * G, 1e-7, 1e-6);
    free(z); free(wss); free(ws);
    problem_free(&p);
}

/* ---- (b), (c) gradient checks ------------------------------------------------------------------------------ */

typedef struct {
    lstm_problem *p;
    int step;
    float *hs, *cs, *gt, *hl, *cl;
    double *hs_d, *cs_d, *gt_d, *hl_d, *cl_d;
} gctx;

static double loss_f(void *v) {
    gctx *g = v; lstm_problem *p = g->p;
    const int64_t NH = p->N * p->H;
    if (g->step) {
        rnncore_status s = rnncore_lstm_step_forward(g->hs, g->cs, g->gt, p->xs, p->h0, p->c0, p->wx, p->wh, p->b,
                                                     p->N, p->D, p->H);
        assert(s == RNNCORE_OK);
        return dot_fd(g->hs, p->dhs_d, NH) + dot_fd(g->cs, p->dcl_d, NH);
    }
    rnncore_status s = lstm_fw(g->hs, g->cs, g->gt, g->hl, g->cl, p->xs, p->h0, p->c0, p->wx, p->wh,
                                            p->b, p->N, p->T, p->D, p->H);
    assert(s == RNNCORE_OK);
    return dot_fd(g->hs, p->dhs_d, NH * p->T) + dot_fd(g->hl, p->dhl_d, NH) + dot_fd(g->cl, p->dcl_d, NH);
}

static double loss_d(void *v) {
    gctx *g = v; lstm_problem *p = g->p;
    const int64_t NH = p->N * p->H;
    if (g->step) {
        ref_lstm_step_forward(g->hs_d, g->cs_d, g->gt_d, p->xs_d, p->h0_d, p->c0_d, p->wx_d, p->wh_d, p->b_d, p->N,
                              p->D, p->H);
        return dot_dd(g->hs_d, p->dhs_d, NH) + dot_dd(g->cs_d, p->dcl_d, NH);
    }
    ref_lstm_forward(g->hs_d, g->cs_d, g->gt_d, g->hl_d, g->cl_d, p->xs_d, p->h0_d, p->c0_d, p->wx_d, p->wh_d, p->b_d,
                     p->N, p->T, p->D, p->H);
    return dot_dd(g->hs_d, p->dhs_d, NH * p->T) + dot_dd(g->hl_d, p->dhl_d, NH) + dot_dd(g->cl_d, p->dcl_d, NH);
}

/* (b) in double: eps = 1e-5 leaves truncation error ~eps²·L'''/6 ≈ 1e-11 and rounding ~1e-16·|L|/eps ≈ 1e-10,
 * so 1e-8 abs + 1e-7 rel is tight. (c) in float32: each forward carries rounding ~u·Σ|terms| of L, with
 * N·T·H + 2·N·H terms of size <= 1 (about 60 here): ~4e-6, divided by 2·eps = 2e-2 that is ~2e-4 at worst (the
 * errors mostly cancel: observed far less); truncation eps²·L'''/6 ≈ 2e-5·|L'''|. tol 5e-4 abs + 5e-3 rel as for
 * the RNN. */
static void test_grad_checks(int step, int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    lstm_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 4 * H, NTH = N * T * H;
    gctx g = {&p, step, alloc_f(NTH), alloc_f(NTH), alloc_f(N * T * G), alloc_f(N * H), alloc_f(N * H),
              alloc_d(NTH), alloc_d(NTH), alloc_d(N * T * G), alloc_d(N * H), alloc_d(N * H)};
    const char *nm = step ? "lstm_step_backward" : "lstm_backward";
    char what[96];
    printf("%s gradient checks N=%lld T=%lld D=%lld H=%lld\n", nm, (long long)N, (long long)T, (long long)D,
           (long long)H);
    const char *names[] = {"dx", step ? "dh_prev" : "dh0", step ? "dc_prev" : "dc0", "dWx", "dWh", "db"};
    int64_t cnt[] = {N * T * D, N * H, N * H, D * G, H * G, G};

    /* (b) reference backward vs central differences of the reference forward */
    double *ad[6];
    for (int i = 0; i < 6; i++) ad[i] = alloc_d(cnt[i]);
    loss_d(&g);
    if (step)
        ref_lstm_step_backward(ad[0], ad[1], ad[2], ad[3], ad[4], ad[5], p.dhs_d, p.dcl_d, p.xs_d, p.h0_d, p.c0_d,
                               g.cs_d, g.gt_d, p.wx_d, p.wh_d, N, D, H);
    else
        ref_lstm_backward(ad[0], ad[1], ad[2], ad[3], ad[4], ad[5], p.dhs_d, p.dhl_d, p.dcl_d, p.xs_d, p.h0_d, p.c0_d,
                          g.hs_d, g.cs_d, g.gt_d, p.wx_d, p.wh_d, N, T, D, H);
    double *pd[] = {p.xs_d, p.h0_d, p.c0_d, p.wx_d, p.wh_d, p.b_d};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "[ref] %s %s", nm, names[i]);
        grad_check_d(what, pd[i], ad[i], cnt[i], 1e-5, loss_d, &g, 1e-8, 1e-7);
    }

    /* (c) kernel backward vs central differences of the kernel forward */
    float *af[6];
    for (int i = 0; i < 6; i++) af[i] = alloc_f(cnt[i]);
    float *ws = step ? workspace_step(N, H) : workspace_seq(N, T, H, 0);
    loss_f(&g);
    if (step)
        CHECK_STATUS(rnncore_lstm_step_backward(af[0], af[1], af[2], af[3], af[4], af[5], ws, p.dhs, p.dcl, p.xs,
                                                p.h0, p.c0, g.cs, g.gt, p.wx, p.wh, N, D, H), RNNCORE_OK);
    else
        CHECK_STATUS(lstm_bw(af[0], af[1], af[2], af[3], af[4], af[5], ws, p.dhs, p.dhl, p.dcl, p.xs,
                                           p.h0, p.c0, g.hs, g.cs, g.gt, p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    float *pf[] = {p.xs, p.h0, p.c0, p.wx, p.wh, p.b};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "[f32] %s %s", nm, names[i]);
        grad_check_f(what, pf[i], af[i], cnt[i], 1e-2, loss_f, &g, 5e-4, 5e-3);
    }
    for (int i = 0; i < 6; i++) { free(ad[i]); free(af[i]); }
    free(ws); free(g.hs); free(g.cs); free(g.gt); free(g.hl); free(g.cl);
    free(g.hs_d); free(g.cs_d); free(g.gt_d); free(g.hl_d); free(g.cl_d);
    problem_free(&p);
}

/* ---- (d) the sequence kernels are T step kernels ------------------------------------------------------------
 * rnncore_lstm_step_forward T times, then rnncore_lstm_step_backward T times in reverse (dh_next = dhs[:,t] + dh
 * carried from step t+1, dc_next carried, parameter grads summed over steps) must reproduce
 * rnncore_lstm_forward/backward within float32 rounding. */
static void test_steps_equal_sequence(void) {
    enum { N = 2, T = 6, D = 3, H = 4, G = 4 * H };
    printf("lstm sequence kernels == %d step kernels (N=%d D=%d H=%d)\n", T, N, D, H);
    lstm_problem p; problem_init(&p, N, T, D, H, 31);
    float hs[N * T * H], cs[N * T * H], gt[N * T * G], dxs[N * T * D], dh0[N * H], dc0[N * H];
    float dwx[D * G] = {0}, dwh[H * G] = {0}, db[G] = {0};
    float *ws = workspace_seq(N, T, H, 0);
    CHECK_STATUS(lstm_fw(hs, cs, gt, NULL, NULL, p.xs, p.h0, p.c0, p.wx, p.wh, p.b, N, T, D, H),
                 RNNCORE_OK);
    CHECK_STATUS(lstm_bw(dxs, dh0, dc0, dwx, dwh, db, ws, p.dhs, p.dhl, p.dcl, p.xs, p.h0, p.c0, hs, cs,
                                       gt, p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);

    /* per-step layers: x_t, h_t, c_t, g_t are (N,·) slices gathered out of the batch-major sequence */
    float x_t[T][N * D], h_t[T][N * H], c_t[T][N * H], g_t[T][N * G];
    float hs2[N * T * H], cs2[N * T * H], gt2[N * T * G], dxs2[N * T * D];
    float dwx2[D * G] = {0}, dwh2[H * G] = {0}, db2[G] = {0}, dh[N * H], dc[N * H], dhn[N * H], dcn[N * H], dx_t[N * D];
    float *ws1 = workspace_step(N, H);
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < N; n++) memcpy(x_t[t] + n * D, p.xs + (n * T + t) * D, D * sizeof(float));
        CHECK_STATUS(rnncore_lstm_step_forward(h_t[t], c_t[t], g_t[t], x_t[t], t ? h_t[t - 1] : p.h0,
                                               t ? c_t[t - 1] : p.c0, p.wx, p.wh, p.b, N, D, H), RNNCORE_OK);
        for (int n = 0; n < N; n++) {
            memcpy(hs2 + (n * T + t) * H, h_t[t] + n * H, H * sizeof(float));
            memcpy(cs2 + (n * T + t) * H, c_t[t] + n * H, H * sizeof(float));
            memcpy(gt2 + (n * T + t) * G, g_t[t] + n * G, G * sizeof(float));
        }
    }
    memcpy(dh, p.dhl, sizeof dh);
    memcpy(dc, p.dcl, sizeof dc);
    for (int t = T - 1; t >= 0; t--) {
        for (int n = 0; n < N; n++)
            for (int j = 0; j < H; j++) dhn[n * H + j] = p.dhs[(n * T + t) * H + j] + dh[n * H + j];
        memcpy(dcn, dc, sizeof dc); /* dc_prev must not overlap dc_next */
        CHECK_STATUS(rnncore_lstm_step_backward(dx_t, dh, dc, dwx2, dwh2, db2, ws1, dhn, dcn, x_t[t],
                                                t ? h_t[t - 1] : p.h0, t ? c_t[t - 1] : p.c0, c_t[t], g_t[t], p.wx,
                                                p.wh, N, D, H), RNNCORE_OK);
        for (int n = 0; n < N; n++) memcpy(dxs2 + (n * T + t) * D, dx_t + n * D, D * sizeof(float));
    }
    /* a handful of float32 roundings per element (the sequence kernel sums the input projection in one GEMM, the
     * steps one step at a time), magnitudes ~1: 1e-6 abs + 1e-5 rel */
    check_close_ff("steps vs sequence: hs", hs2, hs, N * T * H, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: cs", cs2, cs, N * T * H, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: gates", gt2, gt, N * T * G, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: dxs", dxs2, dxs, N * T * D, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: dh0", dh, dh0, N * H, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: dc0", dc, dc0, N * H, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: dWx", dwx2, dwx, D * G, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: dWh", dwh2, dwh, H * G, 1e-6, 1e-5);
    check_close_ff("steps vs sequence: db", db2, db, G, 1e-6, 1e-5);
    free(ws); free(ws1);
    problem_free(&p);
}

/* ---- (e) stateful use ------------------------------------------------------------------------------------------
 * h_last == h0 and c_last == c0 (one buffer carries the state from window to window) give the same hs as separate
 * buffers and leave the last state there; two windows of T1 and T2 steps carrying the state that way equal one
 * window of T1+T2 steps (within rounding: the input-projection GEMM runs over different row counts). */
static void test_stateful(void) {
    enum { N = 3, T1 = 4, T2 = 3, T = T1 + T2, D = 5, H = 6, G = 4 * H };
    printf("lstm stateful: h_last == h0, c_last == c0; windows %d + %d == one window of %d\n", T1, T2, T);
    lstm_problem p; problem_init(&p, N, T, D, H, 41);
    float hs[N * T * H], cs[N * T * H], gt[N * T * G], hl[N * H], cl[N * H];
    CHECK_STATUS(lstm_fw(hs, cs, gt, hl, cl, p.xs, p.h0, p.c0, p.wx, p.wh, p.b, N, T, D, H), RNNCORE_OK);
    float h[N * H], c[N * H], hs_a[N * T * H], cs_a[N * T * H], gt_a[N * T * G];
    memcpy(h, p.h0, sizeof h); memcpy(c, p.c0, sizeof c);
    CHECK_STATUS(lstm_fw(hs_a, cs_a, gt_a, h, c, p.xs, h, c, p.wx, p.wh, p.b, N, T, D, H), RNNCORE_OK);
    CHECK(memcmp(hs_a, hs, sizeof hs) == 0 && memcmp(cs_a, cs, sizeof cs) == 0 && memcmp(gt_a, gt, sizeof gt) == 0);
    CHECK(memcmp(h, hl, sizeof h) == 0 && memcmp(c, cl, sizeof c) == 0);

    float xs1[N * T1 * D], xs2[N * T2 * D], hs1[N * T1 * H], cs1[N * T1 * H], gt1[N * T1 * G];
    float hs2[N * T2 * H], cs2[N * T2 * H], gt2[N * T2 * G];
    for (int n = 0; n < N; n++) {
        memcpy(xs1 + n * T1 * D, p.xs + n * T * D, T1 * D * sizeof(float));
        memcpy(xs2 + n * T2 * D, p.xs + (n * T + T1) * D, T2 * D * sizeof(float));
    }
    memcpy(h, p.h0, sizeof h); memcpy(c, p.c0, sizeof c);
    CHECK_STATUS(lstm_fw(hs1, cs1, gt1, h, c, xs1, h, c, p.wx, p.wh, p.b, N, T1, D, H), RNNCORE_OK);
    CHECK_STATUS(lstm_fw(hs2, cs2, gt2, h, c, xs2, h, c, p.wx, p.wh, p.b, N, T2, D, H), RNNCORE_OK);
    float hs12[N * T * H], cs12[N * T * H];
    for (int n = 0; n < N; n++) {
        memcpy(hs12 + n * T * H, hs1 + n * T1 * H, T1 * H * sizeof(float));
        memcpy(hs12 + (n * T + T1) * H, hs2 + n * T2 * H, T2 * H * sizeof(float));
        memcpy(cs12 + n * T * H, cs1 + n * T1 * H, T1 * H * sizeof(float));
        memcpy(cs12 + (n * T + T1) * H, cs2 + n * T2 * H, T2 * H * sizeof(float));
    }
    check_close_ff("two windows vs one: hs", hs12, hs, N * T * H, 1e-6, 1e-5);
    check_close_ff("two windows vs one: cs", cs12, cs, N * T * H, 1e-6, 1e-5);
    check_close_ff("two windows vs one: h_last", h, hl, N * H, 1e-6, 1e-5);
    check_close_ff("two windows vs one: c_last", c, cl, N * H, 1e-6, 1e-5);
    problem_free(&p);
}

/* ---- (g) saturation and the sigmoid ----------------------------------------------------------------------------
 * Every input row all +1 or all -1 and every column of Wx a constant ±scale/D put every pre-activation at ±scale
 * (plus h·Wh, kept below 0.5 by scaling Wh down): the outputs must stay finite,
 * i, f, o in [0, 1], g in [-1, 1], |h| <= 1, |c| <= |c0| + T, and match the reference (both saturate to the same
 * 0, 1 or ±1, up to float rounding of values that large: abs tol 1e-6·T). The backward must be finite too and
 * match the reference to the same absolute tolerance (the saturated gates pass almost no gradient). */
static void test_saturation(double scale) {
    enum { N = 2, T = 4, D = 3, H = 3, G = 4 * H };
    printf("lstm saturated pre-activations ~ ±%g\n", scale);
    lstm_problem p; problem_init(&p, N, T, D, H, 51);
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
    double *xs_d = to_d(p.xs, N * T * D), *wx_d = to_d(p.wx, D * G), *wh_d = to_d(p.wh, H * G);
    float hs[N * T * H], cs[N * T * H], gt[N * T * G];
    double hs_d[N * T * H], cs_d[N * T * H], gt_d[N * T * G];
    CHECK_STATUS(lstm_fw(hs, cs, gt, NULL, NULL, p.xs, p.h0, p.c0, p.wx, p.wh, NULL, N, T, D, H),
                 RNNCORE_OK);
    ref_lstm_forward(hs_d, cs_d, gt_d, NULL, NULL, xs_d, p.h0_d, p.c0_d, wx_d, wh_d, NULL, N, T, D, H);
    int in_range = 1;
    for (int i = 0; i < N * T * G; i++) {
        const int is_g = i % G >= 2 * H && i % G < 3 * H;
        in_range &= isfinite(gt[i]) && gt[i] >= (is_g ? -1.0f : 0.0f) && gt[i] <= 1.0f;
    }
    for (int i = 0; i < N * T * H; i++) in_range &= isfinite(hs[i]) && fabsf(hs[i]) <= 1.0f && isfinite(cs[i]) &&
                                                    fabsf(cs[i]) <= 1.5f + T;
    CHECK(in_range);
    check_close_fd("saturated lstm_forward gates", gt, gt_d, N * T * G, 1e-6 * T, 0);
    check_close_fd("saturated lstm_forward cs", cs, cs_d, N * T * H, 1e-6 * T, 0);
    check_close_fd("saturated lstm_forward hs", hs, hs_d, N * T * H, 1e-6 * T, 0);

    float dxs[N * T * D], dh0[N * H], dc0[N * H], dwx[D * G] = {0}, dwh[H * G] = {0}, db[G] = {0};
    double dxs_d[N * T * D], dh0_d[N * H], dc0_d[N * H], dwx_d[D * G] = {0}, dwh_d[H * G] = {0}, db_d[G] = {0};
    double *hsk = to_d(hs, N * T * H), *csk = to_d(cs, N * T * H), *gtk = to_d(gt, N * T * G);
    float *ws = workspace_seq(N, T, H, 0);
    CHECK_STATUS(lstm_bw(dxs, dh0, dc0, dwx, dwh, db, ws, p.dhs, p.dhl, p.dcl, p.xs, p.h0, p.c0, hs, cs,
                                       gt, p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    ref_lstm_backward(dxs_d, dh0_d, dc0_d, dwx_d, dwh_d, db_d, p.dhs_d, p.dhl_d, p.dcl_d, xs_d, p.h0_d, p.c0_d, hsk,
                      csk, gtk, wx_d, wh_d, N, T, D, H);
    int finite = 1;
    for (int i = 0; i < N * T * D; i++) finite &= isfinite(dxs[i]);
    for (int i = 0; i < N * H; i++) finite &= isfinite(dh0[i]) && isfinite(dc0[i]);
    for (int i = 0; i < D * G; i++) finite &= isfinite(dwx[i]);
    for (int i = 0; i < H * G; i++) finite &= isfinite(dwh[i]);
    for (int i = 0; i < G; i++) finite &= isfinite(db[i]);
    CHECK(finite);
    /* every gate is saturated, so dA (σ', tanh' ~ e^-scale) and with it dxs are ~0 in both */
    check_close_fd("saturated lstm_backward dxs", dxs, dxs_d, N * T * D, 1e-6 * T, 0);
    check_close_fd("saturated lstm_backward dh0", dh0, dh0_d, N * H, 1e-6 * T, 0);
    check_close_fd("saturated lstm_backward dc0", dc0, dc0_d, N * H, 1e-6 * T, 0);
    check_close_fd("saturated lstm_backward dWx", dwx, dwx_d, D * G, 1e-6 * T * N, 0);
    check_close_fd("saturated lstm_backward dWh", dwh, dwh_d, H * G, 1e-6 * T * N, 0);
    check_close_fd("saturated lstm_backward db", db, db_d, G, 1e-6 * T * N, 0);
    free(xs_d); free(wx_d); free(wh_d); free(hsk); free(csk); free(gtk); free(ws);
    problem_free(&p);
}

/* The kernels' sigmoid: with D = H = 1, Wx = (1,1,1,1), Wh = 0 and no bias, the gates of lstm_step_forward are
 * σ(x), σ(x), tanh(x), σ(x) row by row. Over x in [-80, 30] (and densely over [-4, 4]) the relative error of σ
 * against double must stay below 4e-7 (the exponential's 2e-7 plus three roundings); below that the tiny values
 * may be clamped (absolute error below 2e-38), large x give exactly 1, NaN stays NaN. */
static void test_sigmoid_accuracy(void) {
    printf("lstm forward sigmoid accuracy\n");
    enum { R = 40001 };
    static float x[R], h[R], c[R], gt[4 * R];
    for (int i = 0; i < R; i++)
        x[i] = i < R / 2 ? -80.0f + 110.0f * (float)i / (float)(R / 2)
                         : -4.0f + 8.0f * (float)(i - R / 2) / (float)(R / 2);
    const float one[4] = {1, 1, 1, 1}, zero[4] = {0, 0, 0, 0};
    CHECK_STATUS(rnncore_lstm_step_forward(h, c, gt, x, NULL, NULL, one, zero, NULL, R, 1, 1), RNNCORE_OK);
    double worst = 0.0, worst_tanh = 0.0;
    for (int i = 0; i < R; i++) {
        const double ref = 1.0 / (1.0 + exp(-(double)x[i])), th = tanh((double)x[i]);
        const int sig[3] = {0, 1, 3}; /* i, f, o */
        for (int q = 0; q < 3; q++) worst = fmax(worst, fabs((double)gt[4 * i + sig[q]] - ref) / ref);
        if (th != 0.0) worst_tanh = fmax(worst_tanh, fabs((double)gt[4 * i + 2] - th) / fabs(th));
    }
    printf("  sigmoid relative error: max %.3g (tol 4e-7); tanh gate: max %.3g (tol 4e-7)\n", worst, worst_tanh);
    CHECK(worst <= 4e-7);
    CHECK(worst_tanh <= 4e-7);
    float edge[5] = {-200.0f, -1e30f, 40.0f, 1e30f, NAN}, eh[5], ec[5], eg[20];
    CHECK_STATUS(rnncore_lstm_step_forward(eh, ec, eg, edge, NULL, NULL, one, zero, NULL, 5, 1, 1), RNNCORE_OK);
    CHECK(eg[0] >= 0.0f && eg[0] < 2e-38f && eg[4] >= 0.0f && eg[4] < 2e-38f && eg[2] == -1.0f && eg[6] == -1.0f);
    CHECK(eg[8] == 1.0f && eg[12] == 1.0f && eg[8 + 2] == 1.0f && eg[12 + 2] == 1.0f);
    CHECK(isnan(eg[16]) && isnan(eg[19]) && isnan(eh[4]));
}

int main(void) {
    test_sigmoid_accuracy();
    /* step: general, N=1, D≠H both ways, no h_prev / c_prev / bias / dc_next, a larger BLAS-sized shape */
    test_step_vs_ref(3, 4, 6, 1, 1, 1, 1, 1);
    test_step_vs_ref(1, 5, 3, 1, 1, 1, 1, 2);
    test_step_vs_ref(4, 1, 7, 0, 1, 1, 0, 3);
    test_step_vs_ref(2, 6, 6, 0, 0, 0, 0, 4);
    test_step_vs_ref(5, 3, 2, 1, 0, 1, 1, 6);
    test_step_vs_ref(16, 64, 128, 1, 1, 1, 1, 5);
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
        test_seq_vs_ref(7, 6, 33, 97, 1, 1, 1, 17);
        test_seq_vs_ref(13, 3, 20, 100, 0, 1, 0, 18);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    test_null_means_zero();
    test_grad_checks(1, 2, 1, 3, 4, 21);
    test_grad_checks(0, 2, 4, 3, 5, 22);
    test_grad_checks(0, 1, 1, 2, 3, 23);
    test_steps_equal_sequence();
    test_stateful();
    test_saturation(30.0);
    test_saturation(1e4);
    return test_finish("test_lstm");
}
