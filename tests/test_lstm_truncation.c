/*
 * test_lstm_truncation.c — truncated BPTT inside the window for rnncore_lstm_backward (window->truncation): truncation 0, T and
 * more equal the full window bit for bit; 1 <= k < T equals the per-output truncated reference; k = 1 equals one step
 * kernel backward per output. Problems and tolerances as in test_lstm.c.
 */
#include "lstm_problem.h"

/* ---- (f) truncated BPTT ------------------------------------------------------------------------------------------
 * The references first check each other in double: the per-output truncated reference with no limit (0, T+1)
 * equals the carried full reference. Then the kernel: truncation T, T+1 and INT64_MAX give the results of
 * truncation 0 (the whole window, per the header); every 1 <= k < T matches the truncated reference (same
 * tolerances as the full backward); k = 1 lets nothing reach dh0/dc0 and equals the sum of one step kernel
 * backward per output, each with dc_next = 0 (dh_last, dc_last added at step T-1). */
static void test_truncation(int64_t N, int64_t T, int64_t D, int64_t H, int use_opt, uint64_t seed) {
    printf("lstm_backward truncated N=%lld T=%lld D=%lld H=%lld optionals=%s\n", (long long)N, (long long)T,
           (long long)D, (long long)H, use_opt ? "yes" : "NULL");
    lstm_problem p; problem_init(&p, N, T, D, H, seed);
    const int64_t G = 4 * H, NTH = N * T * H, NTD = N * T * D;
    const float *h0 = use_opt ? p.h0 : NULL, *c0 = use_opt ? p.c0 : NULL;
    const float *dhl = use_opt ? p.dhl : NULL, *dcl = use_opt ? p.dcl : NULL;
    const double *h0_d = use_opt ? p.h0_d : NULL, *c0_d = use_opt ? p.c0_d : NULL;
    const double *dhl_d = use_opt ? p.dhl_d : NULL, *dcl_d = use_opt ? p.dcl_d : NULL;
    float *hs = alloc_f(NTH), *cs = alloc_f(NTH), *gt = alloc_f(N * T * G);
    CHECK_STATUS(lstm_fw(hs, cs, gt, NULL, NULL, p.xs, h0, c0, p.wx, p.wh, p.b, N, T, D, H), RNNCORE_OK);
    double *hsk = to_d(hs, NTH), *csk = to_d(cs, NTH), *gtk = to_d(gt, N * T * G);
    char what[96];

    /* the references agree with each other */
    double *fx = alloc_d(NTD), *fh = alloc_d(N * H), *fc = alloc_d(N * H), *fwx = alloc_d(D * G),
           *fwh = alloc_d(H * G), *fb = alloc_d(G);
    double *rx = alloc_d(NTD), *rh = alloc_d(N * H), *rc = alloc_d(N * H), *rwx = alloc_d(D * G),
           *rwh = alloc_d(H * G), *rb = alloc_d(G);
    ref_lstm_backward(fx, fh, fc, fwx, fwh, fb, p.dhs_d, dhl_d, dcl_d, p.xs_d, h0_d, c0_d, hsk, csk, gtk, p.wx_d,
                      p.wh_d, N, T, D, H);
    const int64_t unlimited[] = {0, T + 1};
    for (int u = 0; u < 2; u++) {
        memset(rwx, 0, (size_t)(D * G) * sizeof *rwx); memset(rwh, 0, (size_t)(H * G) * sizeof *rwh);
        memset(rb, 0, (size_t)G * sizeof *rb);
        ref_lstm_backward_truncated(rx, rh, rc, rwx, rwh, rb, p.dhs_d, dhl_d, dcl_d, p.xs_d, h0_d, c0_d, hsk, csk, gtk,
                                    p.wx_d, p.wh_d, N, T, D, H, unlimited[u]);
        snprintf(what, sizeof what, "[ref] truncated k=%lld vs full: dxs", (long long)unlimited[u]);
        check_close_dd(what, rx, fx, NTD, 1e-12, 1e-12);
        check_close_dd("[ref]   dh0", rh, fh, N * H, 1e-12, 1e-12);
        check_close_dd("[ref]   dc0", rc, fc, N * H, 1e-12, 1e-12);
        check_close_dd("[ref]   dWx", rwx, fwx, D * G, 1e-12, 1e-12);
        check_close_dd("[ref]   dWh", rwh, fwh, H * G, 1e-12, 1e-12);
        check_close_dd("[ref]   db", rb, fb, G, 1e-12, 1e-12);
    }

    /* the kernel with truncation 0 (the whole window) */
    float *kx0 = alloc_f(NTD), *kh0 = alloc_f(N * H), *kc0 = alloc_f(N * H), *kwx0 = alloc_f(D * G),
          *kwh0 = alloc_f(H * G), *kb0 = alloc_f(G);
    float *ws = workspace_seq(N, T, H, 0);
    CHECK_STATUS(lstm_bw(kx0, kh0, kc0, kwx0, kwh0, kb0, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs, gt,
                                       p.wx, p.wh, N, T, D, H, 0), RNNCORE_OK);
    free(ws);
    double ta = 4.0 * (double)(G + 8) * (double)T * U32, tp = 4.0 * (double)(N * T + G) * (double)T * U32;

    float *kx = alloc_f(NTD), *kh = alloc_f(N * H), *kc = alloc_f(N * H);
    const int64_t ks_full[] = {T, T + 1, INT64_MAX};
    for (int u = 0; u < 3; u++) {
        const int64_t k = ks_full[u];
        ws = workspace_seq(N, T, H, k);
        float *kwx = alloc_f(D * G), *kwh = alloc_f(H * G), *kb = alloc_f(G);
        fill_const_f(kx, NTD, NAN); fill_const_f(kh, N * H, NAN); fill_const_f(kc, N * H, NAN);
        CHECK_STATUS(lstm_bw(use_opt ? kx : NULL, use_opt ? kh : NULL, use_opt ? kc : NULL, kwx, kwh,
                                           use_opt ? kb : NULL, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs, gt, p.wx,
                                           p.wh, N, T, D, H, k), RNNCORE_OK);
        /* the header: truncation 0 and truncation >= T give exactly the same results, bit for bit */
        snprintf(what, sizeof what, "lstm_backward k=%lld vs k=0 (bit for bit): dWx", (long long)k);
        check_close_ff(what, kwx, kwx0, D * G, 0, 0);
        check_close_ff("  dWh", kwh, kwh0, H * G, 0, 0);
        if (use_opt) {
            check_close_ff("  dxs", kx, kx0, NTD, 0, 0);
            check_close_ff("  dh0", kh, kh0, N * H, 0, 0);
            check_close_ff("  dc0", kc, kc0, N * H, 0, 0);
            check_close_ff("  db", kb, kb0, G, 0, 0);
        }
        free(ws); free(kwx); free(kwh); free(kb);
    }

    /* 1 <= k < T against the truncated reference, onto random parameter-gradient priors */
    for (int64_t k = 1; k < T; k++) {
        ws = workspace_seq(N, T, H, k);
        pgrads g = pgrads_random(D, H, seed + (uint64_t)k);
        fill_const_f(kx, NTD, NAN); fill_const_f(kh, N * H, NAN); fill_const_f(kc, N * H, NAN);
        CHECK_STATUS(lstm_bw(kx, kh, kc, g.wx, g.wh, g.b, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs,
                                           gt, p.wx, p.wh, N, T, D, H, k), RNNCORE_OK);
        ref_lstm_backward_truncated(rx, rh, rc, g.wx_d, g.wh_d, g.b_d, p.dhs_d, dhl_d, dcl_d, p.xs_d, h0_d, c0_d,
                                    hsk, csk, gtk, p.wx_d, p.wh_d, N, T, D, H, k);
        snprintf(what, sizeof what, "lstm_backward k=%lld vs truncated ref: dxs", (long long)k);
        check_close_fd(what, kx, rx, NTD, ta, ta);
        check_close_fd("  dh0", kh, rh, N * H, ta, ta);
        check_close_fd("  dc0", kc, rc, N * H, ta, ta);
        check_close_fd("  dWx (accumulated)", g.wx, g.wx_d, D * G, tp, tp);
        check_close_fd("  dWh (accumulated)", g.wh, g.wh_d, H * G, tp, tp);
        check_close_fd("  db (accumulated)", g.b, g.b_d, G, tp, tp);
        if (k == 1) {
            int zero = 1; /* no output's error reaches the initial state */
            for (int64_t i = 0; i < N * H; i++) zero &= kh[i] == 0.0f && kc[i] == 0.0f;
            CHECK(zero);
        }
        pgrads_free(&g);
        free(ws);
    }

    /* k = 1 is one independent step backward per output (T step kernels, nothing carried) */
    {
        ws = workspace_seq(N, T, H, 1);
        float *kwx = alloc_f(D * G), *kwh = alloc_f(H * G), *kb = alloc_f(G);
        CHECK_STATUS(lstm_bw(kx, kh, kc, kwx, kwh, kb, ws, p.dhs, dhl, dcl, p.xs, h0, c0, hs, cs, gt,
                                           p.wx, p.wh, N, T, D, H, 1), RNNCORE_OK);
        float *wss = workspace_step(N, H), *swx = alloc_f(D * G), *swh = alloc_f(H * G), *sb = alloc_f(G);
        float *sx = alloc_f(NTD), *x_t = alloc_f(N * D), *hp_t = alloc_f(N * H), *cp_t = alloc_f(N * H),
              *c_t = alloc_f(N * H), *g_t = alloc_f(N * G), *dh_t = alloc_f(N * H), *dc_t = alloc_f(N * H),
              *dx_t = alloc_f(N * D);
        for (int64_t t = 0; t < T; t++) {
            for (int64_t n = 0; n < N; n++) {
                const int64_t r = n * T + t;
                memcpy(x_t + n * D, p.xs + r * D, (size_t)D * sizeof(float));
                memcpy(c_t + n * H, cs + r * H, (size_t)H * sizeof(float));
                memcpy(g_t + n * G, gt + r * G, (size_t)G * sizeof(float));
                for (int64_t j = 0; j < H; j++) {
                    hp_t[n * H + j] = t ? hs[(r - 1) * H + j] : (h0 ? h0[n * H + j] : 0.0f);
                    cp_t[n * H + j] = t ? cs[(r - 1) * H + j] : (c0 ? c0[n * H + j] : 0.0f);
                    dh_t[n * H + j] = p.dhs[r * H + j] + (t == T - 1 && dhl ? dhl[n * H + j] : 0.0f);
                    dc_t[n * H + j] = t == T - 1 && dcl ? dcl[n * H + j] : 0.0f;
                }
            }
            CHECK_STATUS(rnncore_lstm_step_backward(dx_t, NULL, NULL, swx, swh, sb, wss, dh_t, dc_t, x_t, hp_t, cp_t,
                                                    c_t, g_t, p.wx, p.wh, N, D, H), RNNCORE_OK);
            for (int64_t n = 0; n < N; n++) memcpy(sx + (n * T + t) * D, dx_t + n * D, (size_t)D * sizeof(float));
        }
        /* the same sums in another order (one GEMM over N·T rows vs T GEMMs over N rows): single-step
         * tolerances for dxs, a sum of N·T terms for the parameter gradients */
        const double ta1 = 4.0 * (double)(G + 8) * U32, tp1 = 4.0 * (double)(N * T + 8) * U32;
        check_close_ff("lstm_backward k=1 vs T step kernels: dxs", kx, sx, NTD, ta1, ta1);
        check_close_ff("  dWx", kwx, swx, D * G, tp1, tp1);
        check_close_ff("  dWh", kwh, swh, H * G, tp1, tp1);
        check_close_ff("  db", kb, sb, G, tp1, tp1);
        free(ws); free(kwx); free(kwh); free(kb); free(wss); free(swx); free(swh); free(sb); free(sx); free(x_t);
        free(hp_t); free(cp_t); free(c_t); free(g_t); free(dh_t); free(dc_t); free(dx_t);
    }
    free(hs); free(cs); free(gt); free(hsk); free(csk); free(gtk); free(fx); free(fh); free(fc); free(fwx); free(fwh);
    free(fb); free(rx); free(rh); free(rc); free(rwx); free(rwh); free(rb); free(kx0); free(kh0); free(kc0);
    free(kwx0); free(kwh0); free(kb0); free(kx); free(kh); free(kc);
    problem_free(&p);
}


int main(void) {
    test_truncation(3, 5, 4, 6, 1, 61);
    test_truncation(2, 4, 3, 2, 0, 62);
    test_truncation(1, 2, 2, 3, 1, 63);
    test_truncation(4, 9, 8, 16, 1, 64);
    /* Shapes where the window packs Wh (H·G >= 32768; see rc_packs_recurrence in window.c), with a partial panel
     * of 16 columns and a remainder row block, on 1 and 3 threads. */
    for (int threads = 1; threads <= 3; threads += 2) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        test_truncation(7, 6, 9, 97, 1, 65);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    return test_finish("test_lstm_truncation");
}
