/* lstm_problem.h — the random LSTM problems, workspaces and gradient priors shared by test_lstm.c and
 * test_lstm_truncation.c. Header-only: every helper is static and marked unused for the file that skips it. */
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
    p->h0 = alloc_f(N * H);     fill_f(p->h0, N * H, &r, -0.8, 0.8);
    p->c0 = alloc_f(N * H);     fill_f(p->c0, N * H, &r, -1.5, 1.5);
    /* Weights ~ U(±1/sqrt(fan_in)) keep the pre-activations O(1): no gate saturates or is linear. */
    p->wx = alloc_f(D * G);     fill_f(p->wx, D * G, &r, -1 / sqrt((double)D), 1 / sqrt((double)D));
    p->wh = alloc_f(H * G);     fill_f(p->wh, H * G, &r, -1 / sqrt((double)H), 1 / sqrt((double)H));
    p->b = alloc_f(G);          fill_f(p->b, G, &r, -0.5, 0.5);
    p->dhs = alloc_f(N * T * H); fill_f(p->dhs, N * T * H, &r, -1, 1);
    p->dhl = alloc_f(N * H);    fill_f(p->dhl, N * H, &r, -1, 1);
    p->dcl = alloc_f(N * H);    fill_f(p->dcl, N * H, &r, -1, 1);
    p->xs_d = to_d(p->xs, N * T * D); p->h0_d = to_d(p->h0, N * H); p->c0_d = to_d(p->c0, N * H);
    p->wx_d = to_d(p->wx, D * G); p->wh_d = to_d(p->wh, H * G); p->b_d = to_d(p->b, G);
    p->dhs_d = to_d(p->dhs, N * T * H); p->dhl_d = to_d(p->dhl, N * H); p->dcl_d = to_d(p->dcl, N * H);
}

RC_TEST_HELPER void problem_free(lstm_problem *p) {
    float *f[] = {p->xs, p->h0, p->c0, p->wx, p->wh, p->b, p->dhs, p->dhl, p->dcl};
    double *d[] = {p->xs_d, p->h0_d, p->c0_d, p->wx_d, p->wh_d, p->b_d, p->dhs_d, p->dhl_d, p->dcl_d};
    for (int i = 0; i < 9; i++) { free(f[i]); free(d[i]); }
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
    int64_t c = -1;
    CHECK_STATUS(rnncore_lstm_backward_workspace_size(&c, N, T, H, truncation), RNNCORE_OK);
    CHECK(c >= 1);
    float *w = alloc_f(c); fill_const_f(w, c, NAN);
    return w;
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
