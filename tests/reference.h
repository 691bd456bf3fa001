/*
 * reference.h — plain double-precision loop implementations of every RNNCore kernel: the algorithmic reference
 * the float32 kernels are tested against. No BLAS, no tricks: each is the textbook loop nest.
 *
 * Shapes, argument order and semantics follow include/rnncore.h exactly (outputs first; parameter gradients
 * accumulated, activation gradients overwritten; pointers the header documents as "may be NULL" may be NULL).
 * The references assume valid arguments: they do no error checking.
 */
#ifndef RNNCORE_TEST_REFERENCE_H
#define RNNCORE_TEST_REFERENCE_H

#include <stdint.h>

/* h_next = tanh(x·Wx + h_prev·Wh + b). x (N,D), h_prev (N,H) or NULL, wx (D,H), wh (H,H), b (H) or NULL. */
void ref_rnn_step_forward(double *h_next, const double *x, const double *h_prev, const double *wx,
                          const double *wh, const double *b, int64_t N, int64_t D, int64_t H);

/* dt = dh_next ⊙ (1 - h_next²); dx = dt·Wxᵀ, dh_prev = dt·Whᵀ (overwritten, may be NULL);
 * dWx += xᵀ·dt, dWh += h_prevᵀ·dt, db += Σ_n dt (db may be NULL). */
void ref_rnn_step_backward(double *dx, double *dh_prev, double *dwx, double *dwh, double *db,
                           const double *dh_next, const double *x, const double *h_prev, const double *h_next,
                           const double *wx, const double *wh, int64_t N, int64_t D, int64_t H);

/* hs[:,t] = tanh(xs[:,t]·Wx + hs[:,t-1]·Wh + b), hs[:,-1] = h0 (NULL = zeros); h_last = hs[:,T-1] (may be NULL). */
void ref_rnn_forward(double *hs, double *h_last, const double *xs, const double *h0, const double *wx,
                     const double *wh, const double *b, int64_t N, int64_t T, int64_t D, int64_t H);

/* BPTT over the window; dh_last (may be NULL) adds into the gradient of hs[:,T-1]. dxs, dh0 overwritten
 * (may be NULL); dwx, dwh, db accumulated (db may be NULL). */
void ref_rnn_backward(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                      const double *dh_last, const double *xs, const double *h0, const double *hs,
                      const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H);

/* Truncated BPTT (rnncore_rnn_backward with window->truncation), computed the obvious way: for every row n and every output t
 * separately, the error dhs[n,t] (plus dh_last when t = T-1) is carried back with ref_rnn_step_backward through
 * steps t, t-1, ..., max(0, t-truncation+1) and the contributions are summed; dh0 receives an output's error only
 * when it is still inside its limit after step 0 (t <= truncation-2). truncation = 0 or >= T: no limit. */
void ref_rnn_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db, const double *dhs,
                                const double *dh_last, const double *xs, const double *h0, const double *hs,
                                const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H,
                                int64_t truncation);

/* ---- ReLU RNN: the same with h = max(0, a); relu'(a) is taken as [h > 0] ---- */

void ref_rnn_relu_forward(double *hs, double *h_last, const double *xs, const double *h0, const double *wx,
                          const double *wh, const double *b, int64_t N, int64_t T, int64_t D, int64_t H);

/* Truncated BPTT of the ReLU RNN, the obvious way as ref_rnn_backward_truncated (truncation 0 or >= T: the whole
 * window, which is also the carried full backward). */
void ref_rnn_relu_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db,
                                     const double *dhs, const double *dh_last, const double *xs, const double *h0,
                                     const double *hs, const double *wx, const double *wh, int64_t N, int64_t T,
                                     int64_t D, int64_t H, int64_t truncation);

/* ---- LSTM: gates i, f, g, o along the 4H columns; wx (D,4H), wh (H,4H), b (4H) ---- */

/* a = x·Wx + h_prev·Wh + b; i,f,o = σ(a), g = tanh(a); c_next = f⊙c_prev + i⊙g; h_next = o⊙tanh(c_next).
 * gates (N,4H) receives the activated i, f, g, o. h_prev, c_prev (NULL = zeros) and b may be NULL. */
void ref_lstm_step_forward(double *h_next, double *c_next, double *gates, const double *x, const double *h_prev,
                           const double *c_prev, const double *wx, const double *wh, const double *b, int64_t N,
                           int64_t D, int64_t H);

/* Backward of one step from dh_next and dc_next (NULL = zeros): dA = ∂L/∂a; dx = dA·Wxᵀ, dh_prev = dA·Whᵀ,
 * dc_prev (overwritten, each may be NULL); dWx += xᵀ·dA, dWh += h_prevᵀ·dA, db += Σ_n dA (db may be NULL). */
void ref_lstm_step_backward(double *dx, double *dh_prev, double *dc_prev, double *dwx, double *dwh, double *db,
                            const double *dh_next, const double *dc_next, const double *x, const double *h_prev,
                            const double *c_prev, const double *c_next, const double *gates, const double *wx,
                            const double *wh, int64_t N, int64_t D, int64_t H);

/* T reference steps per row from (h0, c0) (NULL = zeros); h_last, c_last (may be NULL) get hs/cs[:,T-1]. */
void ref_lstm_forward(double *hs, double *cs, double *gates, double *h_last, double *c_last, const double *xs,
                      const double *h0, const double *c0, const double *wx, const double *wh, const double *b,
                      int64_t N, int64_t T, int64_t D, int64_t H);

/* Full BPTT: T reference step backwards per row in reverse, dh and dc carried; dh_last, dc_last (may be NULL)
 * add into the gradients of hs/cs[:,T-1]. dxs, dh0, dc0 overwritten (may be NULL); dwx, dwh, db accumulated. */
void ref_lstm_backward(double *dxs, double *dh0, double *dc0, double *dwx, double *dwh, double *db,
                       const double *dhs, const double *dh_last, const double *dc_last, const double *xs,
                       const double *h0, const double *c0, const double *hs, const double *cs, const double *gates,
                       const double *wx, const double *wh, int64_t N, int64_t T, int64_t D, int64_t H);

/* Truncated BPTT for the LSTM, the obvious way as ref_rnn_backward_truncated: every output's error (dh_last and
 * dc_last count as errors of output T-1) is carried back through at most `truncation` steps on its own, along
 * both the h and the c path, and the contributions are summed. truncation = 0 or >= T: no limit. */
void ref_lstm_backward_truncated(double *dxs, double *dh0, double *dc0, double *dwx, double *dwh, double *db,
                                 const double *dhs, const double *dh_last, const double *dc_last, const double *xs,
                                 const double *h0, const double *c0, const double *hs, const double *cs,
                                 const double *gates, const double *wx, const double *wh, int64_t N, int64_t T,
                                 int64_t D, int64_t H, int64_t truncation);

/* ---- GRU (torch.nn.GRU): gates r, z, n along the 3H columns; wx (D,3H), wh (H,3H), b = bias_ih, bh = bias_hh ----
 * r = σ(x·Wx_r + b_r + h·Wh_r + bh_r), z likewise, n = tanh(x·Wx_n + b_n + r ⊙ (h·Wh_n + bh_n)),
 * h' = (1 - z) ⊙ n + z ⊙ h. gates (N,T,4H) receives r, z, n and u_n = h·Wh_n + bh_n per step (the kernel's cache
 * layout); h0 (NULL = zeros), b, bh and h_last may be NULL. */
void ref_gru_forward(double *hs, double *gates, double *h_last, const double *xs, const double *h0, const double *wx,
                     const double *wh, const double *b, const double *bh, int64_t N, int64_t T, int64_t D,
                     int64_t H);

/* Full BPTT, dh carried step by step from dh_last (may be NULL). dxs, dh0 overwritten (may be NULL); dwx, dwh, db,
 * dbh accumulated (db, dbh may be NULL). */
void ref_gru_backward(double *dxs, double *dh0, double *dwx, double *dwh, double *db, double *dbh, const double *dhs,
                      const double *dh_last, const double *xs, const double *h0, const double *hs,
                      const double *gates, const double *wx, const double *wh, int64_t N, int64_t T, int64_t D,
                      int64_t H);

/* Truncated BPTT of the GRU, the obvious way as ref_rnn_backward_truncated. truncation = 0 or >= T: no limit. */
void ref_gru_backward_truncated(double *dxs, double *dh0, double *dwx, double *dwh, double *db, double *dbh,
                                const double *dhs, const double *dh_last, const double *xs, const double *h0,
                                const double *hs, const double *gates, const double *wx, const double *wh,
                                int64_t N, int64_t T, int64_t D, int64_t H, int64_t truncation);

/* out[m] = W[ids[m]]; dW[ids[m]] += dout[m]. */
void ref_embedding_forward(double *out, const int32_t *ids, const double *w, int64_t M, int64_t V, int64_t D);
void ref_embedding_backward(double *dw, const double *dout, const int32_t *ids, int64_t M, int64_t V, int64_t D);

/* y = x·W + b; dx = dy·Wᵀ (overwritten, may be NULL), dW += xᵀ·dy, db += Σ_m dy (may be NULL). */
void ref_affine_forward(double *y, const double *x, const double *w, const double *b, int64_t M, int64_t D,
                        int64_t O);
void ref_affine_backward(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w,
                         int64_t M, int64_t D, int64_t O);

/* Mean softmax cross-entropy over the K counted rows (target != ignore_index); dlogits (may be NULL) gets
 * (p - onehot)·dloss/K for counted rows and 0 for skipped rows; K = 0 gives loss 0 and zero gradient. */
void ref_softmax_cross_entropy(double *loss, int64_t *count, double *dlogits, const double *logits,
                               const int32_t *targets, int64_t M, int64_t V, int32_t ignore_index, double dloss);
void ref_softmax_forward(double *probs, const double *logits, int64_t M, int64_t V);

/* Adaptive softmax (rnncore_adaptive_softmax_*), row by row with no gathering: for every row the head log-softmax
 * over K = cutoffs[0] + C logits x·hw + hb, and for every cluster i the log-softmax of (x·tp[i])·to[i] plus the
 * head's log-probability of entry cutoffs[0] + i. hw (H,K), hb (K) or NULL, tp[i] (H,P_i), to[i] (P_i,S_i).
 * log_probs (M,V) may be NULL. loss (may be NULL) = mean -log p(target) over the K counted rows (target !=
 * ignore_index), 0 when none; count may be NULL. dx (M,H) overwritten; dhw, dhb, dtp, dto accumulated; each may
 * be NULL (dtp, dto: the arrays). The gradient is that of dloss · loss. */
void ref_adaptive_softmax(double *loss, int64_t *count, double *log_probs, double *dx, double *dhw, double *dhb,
                          double *const *dtp, double *const *dto, const double *x, const int32_t *targets,
                          int64_t M, int64_t H, int64_t C, const int64_t *cutoffs, const int64_t *projections,
                          const double *hw, const double *hb, const double *const *tp, const double *const *to,
                          int32_t ignore_index, double dloss);

/* param -= lr·grad. */
void ref_sgd_step(double *param, const double *grad, int64_t count, double lr);

/* Bias-corrected Adam with decoupled weight decay (param -= lr·wd·param, using the parameter before the step). */
void ref_adam_step(double *param, double *m, double *v, const double *grad, int64_t count, double lr,
                   double beta1, double beta2, double eps, double weight_decay, int64_t step);

/* Global L2 norm; scales by max_norm/(norm + 1e-6) when 0 < max_norm < inf and norm > max_norm.
 * Returns 0, or 1 when the norm is not finite (then nothing is scaled). */
int ref_clip_grad_norm(double *norm, double *const *grads, const int64_t *counts, int64_t num_tensors,
                       double max_norm);

#endif /* RNNCORE_TEST_REFERENCE_H */
