/*
 * reference.c — textbook double-precision loops for every kernel; see reference.h.
 */
#include "reference.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

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
        double lse = mx + log(se);
        total += lse - z[targets[m]];
        if (dlogits)
            for (int64_t v = 0; v < V; v++) {
                double p = exp(z[v] - lse);
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
