/* The Elman RNN: the tanh step (the RNN layer), and a window of T steps (the TimeRNN layer) with the tanh or the ReLU
 * nonlinearity, forward and backward. Both window cells are this one implementation with a nonlinearity choice. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ---- shared element-wise passes ---------------------------------------------------------------------------- */

typedef enum { RNN_TANH, RNN_RELU } rnn_nonlinearity;

/* max(0, v) that keeps a NaN (fmaxf would turn it into 0). */
static inline float rc_reluf(float v) { return v < 0.0f ? 0.0f : v; }

/* rows × H block with row stride ld: v = f(v + b). */
RC_VECTOR_CLONES static void bias_act_rows(float *v, int64_t ld, const float *b, int64_t rows, int64_t H,
                                           rnn_nonlinearity f) {
    for (int64_t n = 0; n < rows; n++) {
        float *row = v + n * ld;
        if (f == RNN_TANH) {
            if (b) {
                for (int64_t i = 0; i < H; i++) row[i] = rc_tanhf(row[i] + b[i]);
            } else {
                for (int64_t i = 0; i < H; i++) row[i] = rc_tanhf(row[i]);
            }
        } else {
            if (b) {
                for (int64_t i = 0; i < H; i++) row[i] = rc_reluf(row[i] + b[i]);
            } else {
                for (int64_t i = 0; i < H; i++) row[i] = rc_reluf(row[i]);
            }
        }
    }
}

/* The step backward of the window, rows × H: dR = (din + dh_add) ⊙ f'(h), with f' = 1 - h² for tanh and [h > 0]
 * for ReLU (a NaN h stays NaN, so that the ReLU passes it on as the tanh does). */
RC_VECTOR_CLONES static void act_backward_rows(float *dR, int64_t ldR, const float *din, const float *add,
                                               int64_t ld_add, const float *h, int64_t ldh, int64_t rows, int64_t H,
                                               rnn_nonlinearity f) {
    for (int64_t n = 0; n < rows; n++) {
        float *d = dR + n * ldR;
        const float *g = din + n * H, *hr = h + n * ldh, *a = add ? add + n * ld_add : NULL;
        if (f == RNN_TANH) {
            if (a) {
                for (int64_t i = 0; i < H; i++) d[i] = (g[i] + a[i]) * (1.0f - hr[i] * hr[i]);
            } else {
                for (int64_t i = 0; i < H; i++) d[i] = g[i] * (1.0f - hr[i] * hr[i]);
            }
        } else {
            for (int64_t i = 0; i < H; i++) {
                const float v = hr[i], mask = v > 0.0f ? 1.0f : (v != v ? v : 0.0f);
                d[i] = (a ? g[i] + a[i] : g[i]) * mask;
            }
        }
    }
}

/* The two passes split across the threads by rows (each row computed the same way whatever the split). */
typedef struct bias_act_job {
    float *v;
    const float *b;
    int64_t ld, H;
    rnn_nonlinearity f;
} bias_act_job;

static void bias_act_range(void *arg, int64_t r0, int64_t r1) {
    const bias_act_job *j = arg;
    bias_act_rows(j->v + r0 * j->ld, j->ld, j->b, r1 - r0, j->H, j->f);
}

static void bias_act(float *v, int64_t ld, const float *b, int64_t rows, int64_t H, rnn_nonlinearity f) {
    bias_act_job j = {.v = v, .b = b, .ld = ld, .H = H, .f = f};
    rc_parallel_for(rows, rc_grain(8 * H), bias_act_range, &j);
}

typedef struct act_backward_job {
    float *dR;
    const float *din, *add, *h;
    int64_t ldR, ld_add, ldh, H;
    rnn_nonlinearity f;
} act_backward_job;

static void act_backward_range(void *arg, int64_t r0, int64_t r1) {
    const act_backward_job *j = arg;
    act_backward_rows(j->dR + r0 * j->ldR, j->ldR, j->din + r0 * j->H, j->add ? j->add + r0 * j->ld_add : NULL,
                      j->ld_add, j->h + r0 * j->ldh, j->ldh, r1 - r0, j->H, j->f);
}

static void act_backward(float *dR, int64_t ldR, const float *din, const float *add, int64_t ld_add, const float *h,
                         int64_t ldh, int64_t rows, int64_t H, rnn_nonlinearity f) {
    act_backward_job j = {.dR = dR, .din = din, .add = add, .h = h, .ldR = ldR, .ld_add = ld_add, .ldh = ldh,
                          .H = H, .f = f};
    rc_parallel_for(rows, rc_grain(2 * H), act_backward_range, &j);
}

/* ---- validation of the step ---------------------------------------------------------------- */

static rnncore_status check_rnn_sizes(int64_t N, int64_t D, int64_t H) {
    const int64_t sizes[] = {N, D, H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, N, D));
    RNNCORE_TRY(rc_mul(&p, N, H));
    RNNCORE_TRY(rc_mul(&p, D, H));
    RNNCORE_TRY(rc_mul(&p, H, H));
    RNNCORE_TRY(rc_blas_dim(N));
    return rc_blas_dim(D > H ? D : H);
}

/* ---- one step ---------------------------------------------------------------------------------------------- */

rnncore_status rnncore_rnn_step_forward(float *h_next, const float *x, const float *h_prev, const float *wx,
                                        const float *wh, const float *b, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!h_next || !x || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, D, H));
    const rc_buf outs[] = {{h_next, N * H}};
    const rc_buf ins[] = {{x, N * D}, {h_prev, N * H}, {wx, D * H}, {wh, H * H}, {b, H}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    rc_sgemm(false, false, N, H, D, 1.0f, x, D, wx, H, 0.0f, h_next, H);
    if (h_prev) rc_sgemm(false, false, N, H, H, 1.0f, h_prev, H, wh, H, 1.0f, h_next, H);
    bias_act(h_next, H, b, N, H, RNN_TANH);
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_step_backward_workspace_size(int64_t *count, int64_t N, int64_t H) {
    RNNCORE_FAIL_IF(!count, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, 1, H));
    *count = N * H;
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_step_backward(float *dx, float *dh_prev, float *dwx, float *dwh, float *db,
                                         float *workspace, const float *dh_next, const float *x,
                                         const float *h_prev, const float *h_next, const float *wx,
                                         const float *wh, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!dwx || !dwh || !workspace || !dh_next || !x || !h_next || !wx || !wh,
                    RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, D, H));
    const rc_buf outs[] = {{dx, N * D}, {dh_prev, N * H}, {dwx, D * H}, {dwh, H * H}, {db, H}, {workspace, N * H}};
    const rc_buf ins[] = {{dh_next, N * H}, {x, N * D}, {h_prev, N * H}, {h_next, N * H}, {wx, D * H}, {wh, H * H}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    float *dt = workspace; /* (N,H) */
    for (int64_t k = 0; k < N * H; k++) dt[k] = dh_next[k] * (1.0f - h_next[k] * h_next[k]);

    if (dx) rc_sgemm(false, true, N, D, H, 1.0f, dt, H, wx, H, 0.0f, dx, D);
    if (dh_prev) rc_sgemm(false, true, N, H, H, 1.0f, dt, H, wh, H, 0.0f, dh_prev, H);
    rc_sgemm(true, false, D, H, N, 1.0f, x, D, dt, H, 1.0f, dwx, H);
    if (h_prev) rc_sgemm(true, false, H, H, N, 1.0f, h_prev, H, dt, H, 1.0f, dwh, H);
    if (db) rc_add_column_sums(db, dt, N, H);
    return RNNCORE_OK;
}

/* ---- a window of T steps ----------------------------------------------------------------------------------- */

static void rnn_step_backward(const rc_pass *p, int64_t t, float *dA, float *dR, int64_t ldR, float *dprev,
                              int64_t dprev_plane, const float *din, int64_t din_plane, const float *dh_add,
                              int64_t ld_add) {
    /* no element-wise path to the previous state; dA is dR */
    act_backward(dR, ldR, din, dh_add, ld_add, p->hs + t * p->H, p->T * p->H, p->N, p->H,
                      (rnn_nonlinearity)p->kind->variant);
}

static const rc_cell_kind rnn_tanh_cell = {.gates = 1, .states = 1, .cache_blocks = 0, .cache_width = 0,
                                           .hidden_bias = false, .variant = RNN_TANH,
                                           .step_backward = rnn_step_backward};
static const rc_cell_kind rnn_relu_cell = {.gates = 1, .states = 1, .cache_blocks = 0, .cache_width = 0,
                                           .hidden_bias = false, .variant = RNN_RELU,
                                           .step_backward = rnn_step_backward};

static rnncore_status rnn_window_forward(const rc_cell_kind *kind, float *hs, float *cache, float *state_last,
                                         const float *xs, const float *state0, const rnncore_cell_weights *weights,
                                         const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_forward(kind, &p, hs, cache, state_last, xs, state0, weights, window));
    rc_pack_forward(&p);
    const int64_t N = p.N, T = p.T, D = p.D, H = p.H, ld = T * H;
    /* The input projection of every (n, t) row at once. */
    rc_sgemm(false, false, N * T, H, D, 1.0f, xs, D, p.wx, H, 0.0f, hs, H);
    for (int64_t t = 0; t < T; t++) {
        float *h_t = hs + t * H; /* rows n at stride T*H */
        if (t > 0) {
            rc_recurrent_forward(&p, h_t, ld, hs + (t - 1) * H, ld, N);
        } else if (state0) {
            rc_recurrent_forward(&p, h_t, ld, state0, H, N);
        }
        bias_act(h_t, ld, p.b, N, H, (rnn_nonlinearity)kind->variant);
    }
    if (state_last) rc_copy_last_step(state_last, hs, N, T, H);
    return RNNCORE_OK;
}

static rnncore_status rnn_window_backward(const rc_cell_kind *kind, float *dxs, float *dstate0,
                                          const rnncore_cell_gradients *gradients, float *workspace,
                                          const float *dhs, const float *dstate_last, const float *xs,
                                          const float *state0, const float *hs, const float *cache,
                                          const rnncore_cell_weights *weights, const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_backward(kind, &p, dxs, dstate0, gradients, workspace, dhs, dstate_last, xs, state0, hs,
                                  cache, weights, window));
    rc_window_backward(&p, dxs, dstate0, gradients, workspace, dhs, dstate_last);
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window) {
    return rc_cell_sizes(&rnn_tanh_cell, sizes, window);
}

rnncore_status rnncore_rnn_forward(float *hs, float *cache, float *state_last, const float *xs, const float *state0,
                                   const rnncore_cell_weights *weights, const rnncore_window *window) {
    return rnn_window_forward(&rnn_tanh_cell, hs, cache, state_last, xs, state0, weights, window);
}

rnncore_status rnncore_rnn_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                    float *workspace, const float *dhs, const float *dstate_last, const float *xs,
                                    const float *state0, const float *hs, const float *cache,
                                    const rnncore_cell_weights *weights, const rnncore_window *window) {
    return rnn_window_backward(&rnn_tanh_cell, dxs, dstate0, gradients, workspace, dhs, dstate_last, xs, state0, hs,
                               cache, weights, window);
}

rnncore_status rnncore_rnn_relu_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window) {
    return rc_cell_sizes(&rnn_relu_cell, sizes, window);
}

rnncore_status rnncore_rnn_relu_forward(float *hs, float *cache, float *state_last, const float *xs,
                                        const float *state0, const rnncore_cell_weights *weights,
                                        const rnncore_window *window) {
    return rnn_window_forward(&rnn_relu_cell, hs, cache, state_last, xs, state0, weights, window);
}

rnncore_status rnncore_rnn_relu_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                         float *workspace, const float *dhs, const float *dstate_last,
                                         const float *xs, const float *state0, const float *hs, const float *cache,
                                         const rnncore_cell_weights *weights, const rnncore_window *window) {
    return rnn_window_backward(&rnn_relu_cell, dxs, dstate0, gradients, workspace, dhs, dstate_last, xs, state0,
                               hs, cache, weights, window);
}
