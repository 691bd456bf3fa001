/*
 * reference.c — textbook double-precision loops for every kernel; see reference.h.
 */
#include "reference.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

static double ref_sigmoid(double a) { return 1.0 / (1.0 + exp(-a)); }

/* ---- tanh RNN ----------------------------------------------------------------------------------------------- */

void ref_rnn_step_forward(double *h_next, const double *x, const double *h_prev, const double *wx,
                          const double *wh, const double *b, int64_t N, int64_t D, int64_t H) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < H; j++) {
            double a = b ? b[j] : 0.0;
            for (int64_t d = 0; d < D; d++) a += x[n * D + d] * wx[d * H + j];
            if (h_prev)
                for (int64_t k = 0; k < H; k++) a += h_prev[n * H + k] * wh[k * H + j];
            h_next[n * H + j] = tanh(a);
        }
    }
}

void ref_rnn_step_backward(double *dx, double *dh_prev, double *dwx, double *dwh, double *db,
                           const double *dh_next, const double *x, const double *h_prev, const double *h_next,
                           const double *wx, const double *wh, int64_t N, int64_t D, int64_t H) {
    double *dt = malloc((size_t)(N * H) * sizeof *dt);
    assert(dt);
    for (int64_t i = 0; i < N * H; i++) dt[i] = dh_next[i] * (1.0 - h_next[i] * h_next[i]);

    for (int64_t n = 0; n < N; n++) {
        if (dx)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t j = 0; j < H; j++) s += dt[n * H + j] * wx[d * H + j];
                dx[n * D + d] = s;
            }
        if (dh_prev)
            for (int64_t k = 0; k < H; k++) {
                double s = 0;
                for (int64_t j = 0; j < H; j++) s += dt[n * H + j] * wh[k * H + j];
                dh_prev[n * H + k] = s;
            }
        for (int64_t j = 0; j < H; j++) {
            for (int64_t d = 0; d < D; d++) dwx[d * H + j] += x[n * D + d] * dt[n * H + j];
            if (h_prev)
                for (int64_t k = 0; k < H; k++) dwh[k * H + j] += h_prev[n * H + k] * dt[n * H + j];
            if (db) db[j] += dt[n * H + j];
        }
    }
    free(dt);
}

void ref_rnn_forward(double *hs, double *h_last, const double *xs, const double *h0, const double *wx,
                     const double *wh, const double *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {
            const double *x = xs + (n * T + t) * D;
            const double *hp = t > 0 ? hs + (n * T + t - 1) * H : (h0 ? h0 + n * H : NULL);
            double *h = hs + (n * T + t) * H;
            for (int64_t j = 0; j < H; j++) {
                double a = b ? b[j] : 0.0;
                for (int64_t d = 0; d < D; d++) a += x[d] * wx[d * H + j];
                if (hp)
                    for (int64_t k = 0; k < H; k++) a += hp[k] * wh[k * H + j];
                h[j] = tanh(a);
            }
        }
        if (h_last)
            for (int64_t j = 0; j < H; j++) h_last[n * H + j] = hs[(n * T + T - 1) * H + j];
    }
}

void ref_rnn_backward(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                      const double *dh_last, const double *xs, const double *h0, const double *hs,
                      const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H) {
    double *dh = malloc((size_t)H * sizeof *dh);  /* gradient flowing into hs[n,t] from step t+1 */
    double *dt = malloc((size_t)H * sizeof *dt);
    assert(dh && dt);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < H; j++) dh[j] = dh_last ? dh_last[n * H + j] : 0.0;
        for (int64_t t = T - 1; t >= 0; t--) {
            const double *x = xs + (n * T + t) * D;
            const double *h = hs + (n * T + t) * H;
            const double *hp = t > 0 ? hs + (n * T + t - 1) * H : (h0 ? h0 + n * H : NULL);
            for (int64_t j = 0; j < H; j++) {
                double g = dh[j] + dhs[(n * T + t) * H + j];
                dt[j] = g * (1.0 - h[j] * h[j]);
            }
            if (dxs)
                for (int64_t d = 0; d < D; d++) {
                    double s = 0;
                    for (int64_t j = 0; j < H; j++) s += dt[j] * wx[d * H + j];
                    dxs[(n * T + t) * D + d] = s;
                }
            for (int64_t j = 0; j < H; j++) {
                for (int64_t d = 0; d < D; d++) dwx[d * H + j] += x[d] * dt[j];
                if (hp)
                    for (int64_t k = 0; k < H; k++) dwh[k * H + j] += hp[k] * dt[j];
                if (db) db[j] += dt[j];
            }
            for (int64_t k = 0; k < H; k++) {  /* dh for step t-1 (or dh0) */
                double s = 0;
                for (int64_t j = 0; j < H; j++) s += dt[j] * wh[k * H + j];
                dh[k] = s;
            }
        }
        if (dh0)
            for (int64_t k = 0; k < H; k++) dh0[n * H + k] = dh[k];
    }
    free(dh);
    free(dt);
}

/* The limit of truncated BPTT: the lowest step an error of output t reaches is t - k + 1; the initial state
 * (dh0, "step -1") is reached when t - k + 1 <= -1. truncation = 0, and truncation >= T (which the header
 * defines as the whole window), become k = T + 1, under which every output reaches the initial state. */
static int64_t ref_truncation_limit(int64_t truncation, int64_t T) {
    return (truncation == 0 || truncation >= T) ? T + 1 : truncation;
}

void ref_rnn_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                                const double *dh_last, const double *xs, const double *h0, const double *hs,
                                const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H,
                                int64_t truncation) {
    const int64_t k = ref_truncation_limit(truncation, T);
    double *dh = malloc((size_t)H * sizeof *dh), *dhp = malloc((size_t)H * sizeof *dhp);
    double *dx = malloc((size_t)D * sizeof *dx);
    assert(dh && dhp && dx);
    if (dxs) for (int64_t i = 0; i < N * T * D; i++) dxs[i] = 0.0;
    if (dh0) for (int64_t i = 0; i < N * H; i++) dh0[i] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {  /* the error of output t, on its own */
            for (int64_t j = 0; j < H; j++)
                dh[j] = dhs[(n * T + t) * H + j] + (t == T - 1 && dh_last ? dh_last[n * H + j] : 0.0);
            const int64_t lowest = t - k + 1;  /* the last step whose pre-activation it reaches */
            for (int64_t s = t; s >= 0 && s >= lowest; s--) {
                const double *hp = s > 0 ? hs + (n * T + s - 1) * H : (h0 ? h0 + n * H : NULL);
                ref_rnn_step_backward(dx, dhp, dwx, dwh, db, dh, xs + (n * T + s) * D, hp, hs + (n * T + s) * H,
                                      wx, wh, 1, D, H);
                if (dxs) for (int64_t d = 0; d < D; d++) dxs[(n * T + s) * D + d] += dx[d];
                for (int64_t j = 0; j < H; j++) dh[j] = dhp[j];  /* what flows on into h[s-1] */
            }
            if (dh0 && lowest <= -1)  /* still inside its limit after step 0 */
                for (int64_t j = 0; j < H; j++) dh0[n * H + j] += dh[j];
        }
    }
    free(dh); free(dhp); free(dx);
}

/* ---- ReLU RNN --------------------------------------------------------------------------------------------------- */

void ref_rnn_relu_forward(double *hs, double *h_last, const double *xs, const double *h0, const double *wx,
                          const double *wh, const double *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {
            const double *x = xs + (n * T + t) * D;
            const double *hp = t > 0 ? hs + (n * T + t - 1) * H : (h0 ? h0 + n * H : NULL);
            double *h = hs + (n * T + t) * H;
            for (int64_t j = 0; j < H; j++) {
                double a = b ? b[j] : 0.0;
                for (int64_t d = 0; d < D; d++) a += x[d] * wx[d * H + j];
                if (hp)
                    for (int64_t k = 0; k < H; k++) a += hp[k] * wh[k * H + j];
                h[j] = a > 0 ? a : 0.0;
            }
        }
        if (h_last)
            for (int64_t j = 0; j < H; j++) h_last[n * H + j] = hs[(n * T + T - 1) * H + j];
    }
}

void ref_rnn_relu_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db,
                                     const double *dhs, const double *dh_last, const double *xs, const double *h0,
                                     const double *hs, const double *wx, const double *wh, int64_t N, int64_t T,
                                     int64_t D, int64_t H, int64_t truncation) {
    const int64_t k = ref_truncation_limit(truncation, T);
    double *dh = malloc((size_t)H * sizeof *dh), *dt = malloc((size_t)H * sizeof *dt);
    assert(dh && dt);
    if (dxs) for (int64_t i = 0; i < N * T * D; i++) dxs[i] = 0.0;
    if (dh0) for (int64_t i = 0; i < N * H; i++) dh0[i] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {  /* the error of output t, on its own */
            for (int64_t j = 0; j < H; j++)
                dh[j] = dhs[(n * T + t) * H + j] + (t == T - 1 && dh_last ? dh_last[n * H + j] : 0.0);
            const int64_t lowest = t - k + 1;
            for (int64_t s = t; s >= 0 && s >= lowest; s--) {
                const double *x = xs + (n * T + s) * D, *h = hs + (n * T + s) * H;
                const double *hp = s > 0 ? hs + (n * T + s - 1) * H : (h0 ? h0 + n * H : NULL);
                for (int64_t j = 0; j < H; j++) dt[j] = h[j] > 0 ? dh[j] : 0.0;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < H; j++) acc += dt[j] * wx[d * H + j];
                    if (dxs) dxs[(n * T + s) * D + d] += acc;
                }
                for (int64_t j = 0; j < H; j++) {
                    for (int64_t d = 0; d < D; d++) dwx[d * H + j] += x[d] * dt[j];
                    if (hp)
                        for (int64_t q = 0; q < H; q++) dwh[q * H + j] += hp[q] * dt[j];
                    if (db) db[j] += dt[j];
                }
                for (int64_t q = 0; q < H; q++) {
                    double acc = 0;
                    for (int64_t j = 0; j < H; j++) acc += dt[j] * wh[q * H + j];
                    dh[q] = acc;
                }
            }
            if (dh0 && lowest <= -1)
                for (int64_t j = 0; j < H; j++) dh0[n * H + j] += dh[j];
        }
    }
    free(dh); free(dt);
}

/* ---- LSTM ----------------------------------------------------------------------------------------------------- */


void ref_lstm_step_forward(double *h_next, double *c_next, double *gates, const double *x, const double *h_prev,
                           const double *c_prev, const double *wx, const double *wh, const double *b, int64_t N,
                           int64_t D, int64_t H) {
    const int64_t G = 4 * H;
    for (int64_t n = 0; n < N; n++) {
        double *gt = gates + n * G;
        for (int64_t j = 0; j < G; j++) {
            double a = b ? b[j] : 0.0;
            for (int64_t d = 0; d < D; d++) a += x[n * D + d] * wx[d * G + j];
            if (h_prev)
                for (int64_t k = 0; k < H; k++) a += h_prev[n * H + k] * wh[k * G + j];
            gt[j] = (j >= 2 * H && j < 3 * H) ? tanh(a) : ref_sigmoid(a);
        }
        for (int64_t j = 0; j < H; j++) {
            const double i = gt[j], f = gt[H + j], g = gt[2 * H + j], o = gt[3 * H + j];
            const double c = f * (c_prev ? c_prev[n * H + j] : 0.0) + i * g;
            c_next[n * H + j] = c;
            h_next[n * H + j] = o * tanh(c);
        }
    }
}

void ref_lstm_step_backward(double *dx, double *dh_prev, double *dc_prev, double *dwx, double *dwh, double *db,
                            const double *dh_next, const double *dc_next, const double *x, const double *h_prev,
                            const double *c_prev, const double *c_next, const double *gates, const double *wx,
                            const double *wh, int64_t N, int64_t D, int64_t H) {
    const int64_t G = 4 * H;
    double *da = malloc((size_t)G * sizeof *da);
    assert(da);
    for (int64_t n = 0; n < N; n++) {
        const double *gt = gates + n * G;
        for (int64_t j = 0; j < H; j++) {
            const double i = gt[j], f = gt[H + j], g = gt[2 * H + j], o = gt[3 * H + j];
            const double tc = tanh(c_next[n * H + j]);
            const double cp = c_prev ? c_prev[n * H + j] : 0.0;
            const double dh = dh_next[n * H + j];
            /* ∂L/∂c_next: from later steps, plus through h_next = o·tanh(c_next) */
            const double dc = (dc_next ? dc_next[n * H + j] : 0.0) + dh * o * (1.0 - tc * tc);
            da[j] = dc * g * i * (1.0 - i);              /* c = f·c_prev + i·g */
            da[H + j] = dc * cp * f * (1.0 - f);
            da[2 * H + j] = dc * i * (1.0 - g * g);
            da[3 * H + j] = dh * tc * o * (1.0 - o);     /* h = o·tanh(c) */
            if (dc_prev) dc_prev[n * H + j] = dc * f;
        }
        if (dx)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t j = 0; j < G; j++) s += da[j] * wx[d * G + j];
                dx[n * D + d] = s;
            }
        if (dh_prev)
            for (int64_t k = 0; k < H; k++) {
                double s = 0;
                for (int64_t j = 0; j < G; j++) s += da[j] * wh[k * G + j];
                dh_prev[n * H + k] = s;
            }
        for (int64_t j = 0; j < G; j++) {
            for (int64_t d = 0; d < D; d++) dwx[d * G + j] += x[n * D + d] * da[j];
            if (h_prev)
                for (int64_t k = 0; k < H; k++) dwh[k * G + j] += h_prev[n * H + k] * da[j];
            if (db) db[j] += da[j];
        }
    }
    free(da);
}

void ref_lstm_forward(double *hs, double *cs, double *gates, double *h_last, double *c_last, const double *xs,
                      const double *h0, const double *c0, const double *wx, const double *wh, const double *b,
                      int64_t N, int64_t T, int64_t D, int64_t H) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {  /* row n of step t is a one-row step */
            const int64_t r = n * T + t;
            const double *hp = t > 0 ? hs + (r - 1) * H : (h0 ? h0 + n * H : NULL);
            const double *cp = t > 0 ? cs + (r - 1) * H : (c0 ? c0 + n * H : NULL);
            ref_lstm_step_forward(hs + r * H, cs + r * H, gates + r * 4 * H, xs + r * D, hp, cp, wx, wh, b, 1, D, H);
        }
        for (int64_t j = 0; j < H; j++) {
            if (h_last) h_last[n * H + j] = hs[(n * T + T - 1) * H + j];
            if (c_last) c_last[n * H + j] = cs[(n * T + T - 1) * H + j];
        }
    }
}

/* Step s of row n of a sequence as the arguments of a one-row reference step backward. */
typedef struct { const double *x, *hp, *cp, *c, *gates; } ref_lstm_row;
static ref_lstm_row ref_lstm_row_at(int64_t n, int64_t s, const double *xs, const double *h0, const double *c0,
                                    const double *hs, const double *cs, const double *gates, int64_t T, int64_t D,
                                    int64_t H) {
    const int64_t r = n * T + s;
    ref_lstm_row w = {xs + r * D, s > 0 ? hs + (r - 1) * H : (h0 ? h0 + n * H : NULL),
                      s > 0 ? cs + (r - 1) * H : (c0 ? c0 + n * H : NULL), cs + r * H, gates + r * 4 * H};
    return w;
}

void ref_lstm_backward(double *dxs, double *dh0, double *dc0, double *dwx, double *dwh, double *db,
                       const double *dhs, const double *dh_last, const double *dc_last, const double *xs,
                       const double *h0, const double *c0, const double *hs, const double *cs, const double *gates,
                       const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H) {
    double *dh = malloc((size_t)H * sizeof *dh), *dc = malloc((size_t)H * sizeof *dc);
    double *dhp = malloc((size_t)H * sizeof *dhp), *dcp = malloc((size_t)H * sizeof *dcp);
    assert(dh && dc && dhp && dcp);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < H; j++) {  /* gradient flowing into h[n,T-1], c[n,T-1] from later */
            dh[j] = dh_last ? dh_last[n * H + j] : 0.0;
            dc[j] = dc_last ? dc_last[n * H + j] : 0.0;
        }
        for (int64_t t = T - 1; t >= 0; t--) {
            ref_lstm_row w = ref_lstm_row_at(n, t, xs, h0, c0, hs, cs, gates, T, D, H);
            for (int64_t j = 0; j < H; j++) dh[j] += dhs[(n * T + t) * H + j];
            ref_lstm_step_backward(dxs ? dxs + (n * T + t) * D : NULL, dhp, dcp, dwx, dwh, db, dh, dc, w.x, w.hp,
                                   w.cp, w.c, w.gates, wx, wh, 1, D, H);
            for (int64_t j = 0; j < H; j++) { dh[j] = dhp[j]; dc[j] = dcp[j]; }
        }
        for (int64_t j = 0; j < H; j++) {
            if (dh0) dh0[n * H + j] = dh[j];
            if (dc0) dc0[n * H + j] = dc[j];
        }
    }
    free(dh); free(dc); free(dhp); free(dcp);
}

void ref_lstm_backward_truncated(double *dxs, double *dh0, double *dc0, double *dwx, double *dwh, double *db,
                                 const double *dhs, const double *dh_last, const double *dc_last, const double *xs,
                                 const double *h0, const double *c0, const double *hs, const double *cs,
                                 const double *gates, const double *wx, const double *wh, int64_t N, int64_t T,
                                 int64_t D, int64_t H, int64_t truncation) {
    const int64_t k = ref_truncation_limit(truncation, T);
    double *dh = malloc((size_t)H * sizeof *dh), *dc = malloc((size_t)H * sizeof *dc);
    double *dhp = malloc((size_t)H * sizeof *dhp), *dcp = malloc((size_t)H * sizeof *dcp);
    double *dx = malloc((size_t)D * sizeof *dx);
    assert(dh && dc && dhp && dcp && dx);
    if (dxs) for (int64_t i = 0; i < N * T * D; i++) dxs[i] = 0.0;
    if (dh0) for (int64_t i = 0; i < N * H; i++) dh0[i] = 0.0;
    if (dc0) for (int64_t i = 0; i < N * H; i++) dc0[i] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {  /* the error of output t, on its own */
            for (int64_t j = 0; j < H; j++) {
                dh[j] = dhs[(n * T + t) * H + j] + (t == T - 1 && dh_last ? dh_last[n * H + j] : 0.0);
                dc[j] = t == T - 1 && dc_last ? dc_last[n * H + j] : 0.0;
            }
            const int64_t lowest = t - k + 1;  /* the last step whose pre-activations it reaches */
            for (int64_t s = t; s >= 0 && s >= lowest; s--) {
                ref_lstm_row w = ref_lstm_row_at(n, s, xs, h0, c0, hs, cs, gates, T, D, H);
                ref_lstm_step_backward(dx, dhp, dcp, dwx, dwh, db, dh, dc, w.x, w.hp, w.cp, w.c, w.gates, wx, wh,
                                       1, D, H);
                if (dxs) for (int64_t d = 0; d < D; d++) dxs[(n * T + s) * D + d] += dx[d];
                for (int64_t j = 0; j < H; j++) { dh[j] = dhp[j]; dc[j] = dcp[j]; }
            }
            if (lowest <= -1)  /* still inside its limit after step 0 */
                for (int64_t j = 0; j < H; j++) {
                    if (dh0) dh0[n * H + j] += dh[j];
                    if (dc0) dc0[n * H + j] += dc[j];
                }
        }
    }
    free(dh); free(dc); free(dhp); free(dcp); free(dx);
}

/* ---- GRU -------------------------------------------------------------------------------------------------------- */

void ref_gru_forward(double *hs, double *gates, double *h_last, const double *xs, const double *h0, const double *wx,
                     const double *wh, const double *b, const double *bh, int64_t N, int64_t T, int64_t D,
                     int64_t H) {
    const int64_t G = 3 * H;
    double *a = malloc((size_t)G * sizeof *a), *u = malloc((size_t)G * sizeof *u);
    assert(a && u);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {
            const int64_t row = n * T + t;
            const double *x = xs + row * D;
            const double *hp = t > 0 ? hs + (row - 1) * H : (h0 ? h0 + n * H : NULL);
            for (int64_t j = 0; j < G; j++) {
                double sa = b ? b[j] : 0.0, su = bh ? bh[j] : 0.0;
                for (int64_t d = 0; d < D; d++) sa += x[d] * wx[d * G + j];
                if (hp)
                    for (int64_t q = 0; q < H; q++) su += hp[q] * wh[q * G + j];
                a[j] = sa;
                u[j] = su;
            }
            for (int64_t j = 0; j < H; j++) {
                const double r = ref_sigmoid(a[j] + u[j]), z = ref_sigmoid(a[H + j] + u[H + j]);
                const double nn = tanh(a[2 * H + j] + r * u[2 * H + j]);
                hs[row * H + j] = (1.0 - z) * nn + z * (hp ? hp[j] : 0.0);
                if (gates) {
                    double *g = gates + row * 4 * H;
                    g[j] = r; g[H + j] = z; g[2 * H + j] = nn; g[3 * H + j] = u[2 * H + j];
                }
            }
        }
        if (h_last)
            for (int64_t j = 0; j < H; j++) h_last[n * H + j] = hs[(n * T + T - 1) * H + j];
    }
    free(a); free(u);
}

/* The backward of step s of row n from dh (H), in place: dh becomes the gradient flowing into h[s-1]; dx (D) is
 * overwritten; the parameter gradients accumulate. */
static void ref_gru_row_step_backward(double *dh, double *dx, double *dwx, double *dwh, double *db, double *dbh,
                                      const double *x, const double *hp, const double *g, const double *wx,
                                      const double *wh, int64_t D, int64_t H) {
    const int64_t G = 3 * H;
    double *da = malloc((size_t)G * sizeof *da), *du = malloc((size_t)G * sizeof *du);
    assert(da && du);
    for (int64_t j = 0; j < H; j++) {
        const double r = g[j], z = g[H + j], nn = g[2 * H + j], un = g[3 * H + j], h_prev = hp ? hp[j] : 0.0;
        const double dn = dh[j] * (1.0 - z), dz = dh[j] * (h_prev - nn);
        da[2 * H + j] = dn * (1.0 - nn * nn);               /* n = tanh(a_n + r·u_n) */
        da[H + j] = dz * z * (1.0 - z);                     /* h = (1-z)·n + z·h_prev */
        da[j] = da[2 * H + j] * un * r * (1.0 - r);
        du[j] = da[j];
        du[H + j] = da[H + j];
        du[2 * H + j] = da[2 * H + j] * r;
    }
    for (int64_t d = 0; d < D; d++) {
        double s = 0;
        for (int64_t j = 0; j < G; j++) s += da[j] * wx[d * G + j];
        dx[d] = s;
    }
    for (int64_t j = 0; j < G; j++) {
        for (int64_t d = 0; d < D; d++) dwx[d * G + j] += x[d] * da[j];
        if (hp)
            for (int64_t q = 0; q < H; q++) dwh[q * G + j] += hp[q] * du[j];
        if (db) db[j] += da[j];
        if (dbh) dbh[j] += du[j];
    }
    for (int64_t q = 0; q < H; q++) {  /* dh_prev = dh ⊙ z + dU·Whᵀ */
        double s = dh[q] * g[H + q];
        for (int64_t j = 0; j < G; j++) s += du[j] * wh[q * G + j];
        da[q] = s;  /* da is free now */
    }
    for (int64_t q = 0; q < H; q++) dh[q] = da[q];
    free(da); free(du);
}

void ref_gru_backward(double *dxs, double *dh0, double *dwx, double *dwh, double *db, double *dbh, const double *dhs,
                      const double *dh_last, const double *xs, const double *h0, const double *hs,
                      const double *gates, const double *wx, const double *wh, int64_t N, int64_t T, int64_t D,
                      int64_t H) {
    double *dh = malloc((size_t)H * sizeof *dh), *dx = malloc((size_t)D * sizeof *dx);
    assert(dh && dx);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < H; j++) dh[j] = dh_last ? dh_last[n * H + j] : 0.0;
        for (int64_t t = T - 1; t >= 0; t--) {
            const int64_t row = n * T + t;
            for (int64_t j = 0; j < H; j++) dh[j] += dhs[row * H + j];
            const double *hp = t > 0 ? hs + (row - 1) * H : (h0 ? h0 + n * H : NULL);
            ref_gru_row_step_backward(dh, dx, dwx, dwh, db, dbh, xs + row * D, hp, gates + row * 4 * H, wx, wh, D, H);
            if (dxs) for (int64_t d = 0; d < D; d++) dxs[row * D + d] = dx[d];
        }
        if (dh0) for (int64_t j = 0; j < H; j++) dh0[n * H + j] = dh[j];
    }
    free(dh); free(dx);
}

void ref_gru_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db, double *dbh,
                                const double *dhs, const double *dh_last, const double *xs, const double *h0,
                                const double *hs, const double *gates, const double *wx, const double *wh,
                                int64_t N, int64_t T, int64_t D, int64_t H, int64_t truncation) {
    const int64_t k = ref_truncation_limit(truncation, T);
    double *dh = malloc((size_t)H * sizeof *dh), *dx = malloc((size_t)D * sizeof *dx);
    assert(dh && dx);
    if (dxs) for (int64_t i = 0; i < N * T * D; i++) dxs[i] = 0.0;
    if (dh0) for (int64_t i = 0; i < N * H; i++) dh0[i] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t t = 0; t < T; t++) {  /* the error of output t, on its own */
            for (int64_t j = 0; j < H; j++)
                dh[j] = dhs[(n * T + t) * H + j] + (t == T - 1 && dh_last ? dh_last[n * H + j] : 0.0);
            const int64_t lowest = t - k + 1;
            for (int64_t s = t; s >= 0 && s >= lowest; s--) {
                const int64_t row = n * T + s;
                const double *hp = s > 0 ? hs + (row - 1) * H : (h0 ? h0 + n * H : NULL);
                ref_gru_row_step_backward(dh, dx, dwx, dwh, db, dbh, xs + row * D, hp, gates + row * 4 * H, wx, wh,
                                          D, H);
                if (dxs) for (int64_t d = 0; d < D; d++) dxs[row * D + d] += dx[d];
            }
            if (dh0 && lowest <= -1)
                for (int64_t j = 0; j < H; j++) dh0[n * H + j] += dh[j];
        }
    }
    free(dh); free(dx);
}

/* ---- embedding ---------------------------------------------------------------------------------------------- */

void ref_embedding_forward(double *out, const int32_t *ids, const double *w, int64_t M, int64_t V, int64_t D) {
    (void)V;
    for (int64_t m = 0; m < M; m++)
        for (int64_t d = 0; d < D; d++) out[m * D + d] = w[(int64_t)ids[m] * D + d];
}

void ref_embedding_backward(double *dw, const double *dout, const int32_t *ids, int64_t M, int64_t V, int64_t D) {
    (void)V;
    for (int64_t m = 0; m < M; m++)
        for (int64_t d = 0; d < D; d++) dw[(int64_t)ids[m] * D + d] += dout[m * D + d];
}

/* ---- affine ------------------------------------------------------------------------------------------------- */

void ref_affine_forward(double *y, const double *x, const double *w, const double *b, int64_t M, int64_t D,
                        int64_t O) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < O; o++) {
            double s = b ? b[o] : 0.0;
            for (int64_t d = 0; d < D; d++) s += x[m * D + d] * w[d * O + o];
            y[m * O + o] = s;
        }
}

void ref_affine_backward(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w,
                         int64_t M, int64_t D, int64_t O) {
    for (int64_t m = 0; m < M; m++) {
        if (dx)
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t o = 0; o < O; o++) s += dy[m * O + o] * w[d * O + o];
                dx[m * D + d] = s;
            }
        for (int64_t o = 0; o < O; o++) {
            for (int64_t d = 0; d < D; d++) dw[d * O + o] += x[m * D + d] * dy[m * O + o];
            if (db) db[o] += dy[m * O + o];
        }
    }
}

/* ---- softmax and cross-entropy ------------------------------------------------------------------------------ */

void ref_softmax_cross_entropy(double *loss, int64_t *count, double *dlogits, const double *logits,
                               const int32_t *targets, int64_t M, int64_t V, int32_t ignore_index, double dloss) {
    int64_t K = 0;
    for (int64_t m = 0; m < M; m++) K += targets[m] != ignore_index;
    double total = 0;
    for (int64_t m = 0; m < M; m++) {
        const double *z = logits + m * V;
        if (targets[m] == ignore_index) {
            if (dlogits)
                for (int64_t v = 0; v < V; v++) dlogits[m * V + v] = 0.0;
            continue;
        }
        double mx = z[0];
        for (int64_t v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
        double se = 0;
        for (int64_t v = 0; v < V; v++) se += exp(z[v] - mx);
        /* The shifted form: (max - z_y) + log Σ e^(z - max), and p = e^(z - max) / Σ. Forming max + log Σ first
         * would round log Σ away against a huge max (logits ~1e30), in double as in float. */
        total += (mx - z[targets[m]]) + log(se);
        if (dlogits)
            for (int64_t v = 0; v < V; v++) {
                double p = exp(z[v] - mx) / se;
                dlogits[m * V + v] = (p - (v == targets[m] ? 1.0 : 0.0)) * dloss / (double)K;
            }
    }
    *loss = K > 0 ? total / (double)K : 0.0;
    if (count) *count = K;
}

void ref_softmax_forward(double *probs, const double *logits, int64_t M, int64_t V) {
    for (int64_t m = 0; m < M; m++) {
        const double *z = logits + m * V;
        double mx = z[0];
        for (int64_t v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
        double se = 0;
        for (int64_t v = 0; v < V; v++) se += exp(z[v] - mx);
        for (int64_t v = 0; v < V; v++) probs[m * V + v] = exp(z[v] - mx) / se;
    }
}

/* ---- adaptive softmax ---------------------------------------------------------------------------------------- */

/* out[v] = log softmax(z)[v] for v < n, in the shifted form. */
static void ref_log_softmax(double *out, const double *z, int64_t n) {
    double mx = z[0];
    for (int64_t v = 1; v < n; v++) if (z[v] > mx) mx = z[v];
    double se = 0;
    for (int64_t v = 0; v < n; v++) se += exp(z[v] - mx);
    const double lse = log(se);
    for (int64_t v = 0; v < n; v++) out[v] = (z[v] - mx) - lse;
}

void ref_adaptive_softmax(double *loss, int64_t *count, double *log_probs, double *dx, double *dhw, double *dhb,
                          double *const *dtp, double *const *dto, const double *x, const int32_t *targets,
                          int64_t M, int64_t H, int64_t C, const int64_t *cutoffs, const int64_t *projections,
                          const double *hw, const double *hb, const double *const *tp, const double *const *to,
                          int32_t ignore_index, double dloss) {
    const int64_t c0 = cutoffs[0], K = c0 + C, V = cutoffs[C];
    int64_t maxp = 1, maxs = 1;
    for (int64_t i = 0; i < C; i++) {
        if (projections[i] > maxp) maxp = projections[i];
        if (cutoffs[i + 1] - cutoffs[i] > maxs) maxs = cutoffs[i + 1] - cutoffs[i];
    }
    double *zh = malloc((size_t)K * sizeof *zh), *lh = malloc((size_t)K * sizeof *lh);
    double *p = malloc((size_t)maxp * sizeof *p), *zt = malloc((size_t)maxs * sizeof *zt);
    double *lt = malloc((size_t)maxs * sizeof *lt), *dp = malloc((size_t)maxp * sizeof *dp);
    assert(zh && lh && p && zt && lt && dp);
    int64_t counted = 0;
    for (int64_t m = 0; m < M; m++) counted += targets[m] != ignore_index;
    const double g = counted > 0 ? dloss / (double)counted : 0.0;
    double total = 0;
    if (dx)
        for (int64_t i = 0; i < M * H; i++) dx[i] = 0.0;
    for (int64_t m = 0; m < M; m++) {
        const double *xm = x + m * H;
        const int32_t y = targets[m];
        const int counted_row = y != ignore_index;
        /* the head */
        for (int64_t k = 0; k < K; k++) {
            double s = hb ? hb[k] : 0.0;
            for (int64_t h = 0; h < H; h++) s += xm[h] * hw[h * K + k];
            zh[k] = s;
        }
        ref_log_softmax(lh, zh, K);
        if (log_probs)
            for (int64_t v = 0; v < c0; v++) log_probs[m * V + v] = lh[v];
        int64_t head_target = counted_row ? y : -1;
        /* every cluster (all of them for log_probs; the target's for the loss and the gradient) */
        for (int64_t i = 0; i < C; i++) {
            const int64_t lo = cutoffs[i], S = cutoffs[i + 1] - lo, P = projections[i];
            const int target_here = counted_row && y >= lo && y < lo + S;
            if (target_here) head_target = c0 + i;
            if (!log_probs && !target_here) continue;
            for (int64_t j = 0; j < P; j++) {
                double s = 0;
                for (int64_t h = 0; h < H; h++) s += xm[h] * tp[i][h * P + j];
                p[j] = s;
            }
            for (int64_t v = 0; v < S; v++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) s += p[j] * to[i][j * S + v];
                zt[v] = s;
            }
            ref_log_softmax(lt, zt, S);
            if (log_probs)
                for (int64_t v = 0; v < S; v++) log_probs[m * V + lo + v] = lh[c0 + i] + lt[v];
            if (!target_here) continue;
            total -= lt[y - lo];
            /* dzt = (softmax - onehot)·g, reused in lt */
            for (int64_t v = 0; v < S; v++) lt[v] = (exp(lt[v]) - (v == y - lo ? 1.0 : 0.0)) * g;
            for (int64_t j = 0; j < P; j++) {
                double s = 0;
                for (int64_t v = 0; v < S; v++) s += lt[v] * to[i][j * S + v];
                dp[j] = s;
                if (dto)
                    for (int64_t v = 0; v < S; v++) dto[i][j * S + v] += p[j] * lt[v];
            }
            for (int64_t h = 0; h < H; h++) {
                double s = 0;
                for (int64_t j = 0; j < P; j++) {
                    s += dp[j] * tp[i][h * P + j];
                    if (dtp) dtp[i][h * P + j] += xm[h] * dp[j];
                }
                if (dx) dx[m * H + h] += s;
            }
        }
        if (!counted_row) continue;
        total -= lh[head_target];
        for (int64_t k = 0; k < K; k++) {
            const double dz = (exp(lh[k]) - (k == head_target ? 1.0 : 0.0)) * g;
            if (dhb) dhb[k] += dz;
            for (int64_t h = 0; h < H; h++) {
                if (dhw) dhw[h * K + k] += xm[h] * dz;
                if (dx) dx[m * H + h] += dz * hw[h * K + k];
            }
        }
    }
    if (loss) *loss = counted > 0 ? total / (double)counted : 0.0;
    if (count) *count = counted;
    free(zh); free(lh); free(p); free(zt); free(lt); free(dp);
}

/* ---- optimizers --------------------------------------------------------------------------------------------- */

void ref_sgd_step(double *param, const double *grad, int64_t count, double lr) {
    for (int64_t i = 0; i < count; i++) param[i] -= lr * grad[i];
}

void ref_adam_step(double *param, double *m, double *v, const double *grad, int64_t count, double lr,
                   double beta1, double beta2, double eps, double weight_decay, int64_t step) {
    double c1 = 1.0 - pow(beta1, (double)step);
    double c2 = 1.0 - pow(beta2, (double)step);
    for (int64_t i = 0; i < count; i++) {
        double g = grad[i];
        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
        double mhat = m[i] / c1, vhat = v[i] / c2;
        param[i] -= lr * weight_decay * param[i] + lr * mhat / (sqrt(vhat) + eps);
    }
}

int ref_clip_grad_norm(double *norm, double *const *grads, const int64_t *counts, int64_t num_tensors,
                       double max_norm) {
    double ss = 0;
    for (int64_t i = 0; i < num_tensors; i++)
        for (int64_t j = 0; j < counts[i]; j++) ss += grads[i][j] * grads[i][j];
    *norm = sqrt(ss);
    if (!isfinite(*norm)) return 1;
    if (max_norm > 0 && isfinite(max_norm) && *norm > max_norm) {
        double scale = max_norm / (*norm + 1e-6);
        for (int64_t i = 0; i < num_tensors; i++)
            for (int64_t j = 0; j < counts[i]; j++) grads[i][j] *= scale;
    }
    return 0;
}
