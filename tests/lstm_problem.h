/* lstm_problem.h — the random LSTM problems, workspaces and gradient priors shared by test_lstm.c and
 * test_lstm_truncation.c, and lstm_fw / lstm_bw: the window kernels rnncore_lstm_forward/backward called with separate
 * h and c buffers (hs, cs, gates; h0, c0; ...), as these tests were written. They pass the buffers straight through
 * when they already lie in the ABI's layout (cache = cs then gates, state = h then c, one buffer each; the problem's
 * h0/c0 and dh_last/dc_last are allocated so) and otherwise gather them into that layout and scatter the results
 * back; h_last == h0 and c_last == c0 together become state_last == state0. The raw API, in place and aliasing
 * included, is tested in cell_api.h. Header-only: every helper is static and marked unused for the file that skips
 * it. */
#ifndef RNNCORE_TEST_LSTM_PROBLEM_H
#define RNNCORE_TEST_LSTM_PROBLEM_H

#include "test_util.h"
#include "reference.h"

#define RC_TEST_HELPER static __attribute__((unused))

#define U32 0x1.0p-24 /* float32 unit roundoff */

/* A random problem: float inputs and double copies of the same numbers. */
typedef struct {
    int64_t N, T, D, H;
    float *xs, *h0, *c0, *wx, *wh, *b, *dhs, *dhl, *dcl;
    double *xs_d, *h0_d, *c0_d, *wx_d, *wh_d, *b_d, *dhs_d, *dhl_d, *dcl_d;
} lstm_problem;

RC_TEST_HELPER void problem_init(lstm_problem *p, int64_t N, int64_t T, int64_t D, int64_t H, uint64_t seed) {
    rng_t r = {seed};
    const int64_t G = 4 * H;
    *p = (lstm_problem){.N = N, .T = T, .D = D, .H = H};
    p->xs = alloc_f(N * T * D); fill_f(p->xs, N * T * D, &r, -1, 1);
    p->h0 = alloc_f(2 * N * H); fill_f(p->h0, N * H, &r, -0.8, 0.8); /* state0 (2,N,H): h0 then c0 */
    p->c0 = p->h0 + N * H;      fill_f(p->c0, N * H, &r, -1.5, 1.5);
    /* Weights ~ U(±1/sqrt(fan_in)) keep the pre-activations O(1): no gate saturates or is linear. */
    p->wx = alloc_f(D * G);     fill_f(p->wx, D * G, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    p->wh = alloc_f(H * G);     fill_f(p->wh, H * G, &r, -1 / sqrt((double)H), 1 / sqrt((double)H));
    p->b = alloc_f(G);          fill_f(p->b, G, &r, -0.5, 0.5);
    p->dhs = alloc_f(N * T * H); fill_f(p->dhs, N * T * H, &r, -1, 1);
    p->dhl = alloc_f(2 * N * H); fill_f(p->dhl, N * H, &r, -1, 1); /* dstate_last (2,N,H) */
    p->dcl = p->dhl + N * H;    fill_f(p->dcl, N * H, &r, -1, 1);
    p->xs_d = to_d(p->xs, N * T * D); p->h0_d = to_d(p->h0, N * H); p->c0_d = to_d(p->c0, N * H);
    p->wx_d = to_d(p->wx, D * G); p->wh_d = to_d(p->wh, H * G); p->b_d = to_d(p->b, G);
    p->dhs_d = to_d(p->dhs, N * T * H); p->dhl_d = to_d(p->dhl, N * H); p->dcl_d = to_d(p->dcl, N * H);
}

RC_TEST_HELPER void problem_free(lstm_problem *p) {
    float *f[] = {p->xs, p->h0, p->wx, p->wh, p->b, p->dhs, p->dhl};
    double *d[] = {p->xs_d, p->h0_d, p->c0_d, p->wx_d, p->wh_d, p->b_d, p->dhs_d, p->dhl_d, p->dcl_d};
    for (int i = 0; i < 7; i++) free(f[i]);
    for (int i = 0; i < 9; i++) free(d[i]);
}

/* Workspaces of exactly the queried size (so AddressSanitizer sees any overrun), filled with NaN (so a kernel that
 * reads scratch it did not write shows up). */
RC_TEST_HELPER float *workspace_step(int64_t N, int64_t H) {
    int64_t c = -1;
    CHECK_STATUS(rnncore_lstm_step_backward_workspace_size(&c, N, H), RNNCORE_OK);
    CHECK(c == 4 * N * H);
    float *w = alloc_f(c); fill_const_f(w, c, NAN);
    return w;
}
RC_TEST_HELPER float *workspace_seq(int64_t N, int64_t T, int64_t H, int64_t truncation) {
    rnncore_cell_sizes s = {0};
    const rnncore_window win = {N, T, 1, H, truncation};
    CHECK_STATUS(rnncore_lstm_sizes(&s, &win), RNNCORE_OK);
    CHECK(s.gates == 4 && s.states == 2 && s.cache == 5 * N * T * H && s.workspace >= 1);
    float *w = alloc_f(s.workspace); fill_const_f(w, s.workspace, NAN);
    return w;
}

/* ---- the old argument lists over the window ABI (see the top) ---- */

/* A (2,N,H) view of (a, b): a itself when b follows it, else a gathered copy (NULL parts zeros); NULL when both
 * are NULL. *tmp receives the copy to free. */
static inline const float *lstm_pair_in(const float *a, const float *b, int64_t NH, float **tmp) {
    *tmp = NULL;
    if (!a && !b) return NULL;
    if (a && b == a + NH) return a;
    *tmp = alloc_f(2 * NH);
    if (a) memcpy(*tmp, a, (size_t)NH * sizeof(float));
    if (b) memcpy(*tmp + NH, b, (size_t)NH * sizeof(float));
    return *tmp;
}
static inline float *lstm_pair_out(float *a, float *b, int64_t NH, float **tmp) {
    *tmp = NULL;
    if (!a && !b) return NULL;
    if (a && b == a + NH) return a;
    *tmp = alloc_f(2 * NH);
    return *tmp;
}
static inline void lstm_pair_scatter(float *a, float *b, const float *tmp, int64_t NH) {
    if (!tmp) return;
    if (a) memcpy(a, tmp, (size_t)NH * sizeof(float));
    if (b) memcpy(b, tmp + NH, (size_t)NH * sizeof(float));
}

RC_TEST_HELPER rnncore_status lstm_fw(float *hs, float *cs, float *gates, float *h_last, float *c_last,
                                      const float *xs, const float *h0, const float *c0, const float *wx,
                                      const float *wh, const float *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    const int64_t NH = N * H, NTH = N * T * H;
    float *t_in, *t_out, *t_cache = NULL;
    const float *state0 = lstm_pair_in(h0, c0, NH, &t_in);
    const int in_place = (h_last || c_last) && h_last == h0 && c_last == c0;
    float *state_last = in_place ? (float *)state0 : lstm_pair_out(h_last, c_last, NH, &t_out);
    if (in_place) t_out = NULL;
    float *cache = cs;
    if (!cs || !gates || gates != cs + NTH) cache = t_cache = alloc_f(5 * NTH);
    const rnncore_cell_weights w = {wx, wh, b, NULL};
    const rnncore_window win = {N, T, D, H, 0};
    rnncore_status st = rnncore_lstm_forward(hs, cache, state_last, xs, state0, &w, &win);
    if (st == RNNCORE_OK && t_cache) {
        if (cs) memcpy(cs, t_cache, (size_t)NTH * sizeof(float));
        if (gates) memcpy(gates, t_cache + NTH, (size_t)(4 * NTH) * sizeof(float));
    }
    if (st == RNNCORE_OK) lstm_pair_scatter(h_last, c_last, in_place ? t_in : t_out, NH);
    free(t_in); free(t_out); free(t_cache);
    return st;
}

RC_TEST_HELPER rnncore_status lstm_bw(float *dxs, float *dh0, float *dc0, float *dwx, float *dwh, float *db,
                                      float *workspace, const float *dhs, const float *dh_last, const float *dc_last,
                                      const float *xs, const float *h0, const float *c0, const float *hs,
                                      const float *cs, const float *gates, const float *wx, const float *wh,
                                      int64_t N, int64_t T, int64_t D, int64_t H, int64_t truncation) {
    const int64_t NH = N * H, NTH = N * T * H;
    float *t_s0, *t_dl, *t_d0, *t_cache = NULL;
    const float *state0 = lstm_pair_in(h0, c0, NH, &t_s0);
    const float *dstate_last = lstm_pair_in(dh_last, dc_last, NH, &t_dl);
    float *dstate0 = lstm_pair_out(dh0, dc0, NH, &t_d0);
    const float *cache = cs;
    if (gates != cs + NTH) {
        t_cache = alloc_f(5 * NTH);
        memcpy(t_cache, cs, (size_t)NTH * sizeof(float));
        memcpy(t_cache + NTH, gates, (size_t)(4 * NTH) * sizeof(float));
        cache = t_cache;
    }
    const rnncore_cell_weights w = {wx, wh, NULL, NULL};
    const rnncore_cell_gradients g = {dwx, dwh, db, NULL};
    const rnncore_window win = {N, T, D, H, truncation};
    rnncore_status st = rnncore_lstm_backward(dxs, dstate0, &g, workspace, dhs, dstate_last, xs, state0, hs, cache,
                                              &w, &win);
    if (st == RNNCORE_OK) lstm_pair_scatter(dh0, dc0, t_d0, NH);
    free(t_s0); free(t_dl); free(t_d0); free(t_cache);
    return st;
}

/* A float and its double image of the same size: the four parameter gradients with random priors. */
typedef struct { float *wx, *wh, *b; double *wx_d, *wh_d, *b_d; } pgrads;
RC_TEST_HELPER pgrads pgrads_random(int64_t D, int64_t H, uint64_t seed) {
    rng_t r = {seed};
    pgrads g;
    g.wx = alloc_f(D * 4 * H); fill_f(g.wx, D * 4 * H, &r, -1, 1);
    g.wh = alloc_f(H * 4 * H); fill_f(g.wh, H * 4 * H, &r, -1, 1);
    g.b = alloc_f(4 * H);      fill_f(g.b, 4 * H, &r, -1, 1);
    g.wx_d = to_d(g.wx, D * 4 * H); g.wh_d = to_d(g.wh, H * 4 * H); g.b_d = to_d(g.b, 4 * H);
    return g;
}
RC_TEST_HELPER void pgrads_free(pgrads *g) { free(g->wx); free(g->wh); free(g->b); free(g->wx_d); free(g->wh_d); free(g->b_d); }

/* Row n of every (N,H) buffer equals step T-1 of the (N,T,H) sequence, bit for bit. */
RC_TEST_HELPER int is_last_step(const float *last, const float *seq, int64_t N, int64_t T, int64_t H) {
    int ok = 1;
    for (int64_t n = 0; n < N; n++)
        ok &= memcmp(last + n * H, seq + (n * T + T - 1) * H, (size_t)H * sizeof *last) == 0;
    return ok;
}


#endif /* RNNCORE_TEST_LSTM_PROBLEM_H */
