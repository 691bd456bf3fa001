/* GRU: a window of T steps, forward and backward (the time loop and the truncation are window.c's).
 *
 * PyTorch's torch.nn.GRU, gates r, z, n along the 3H columns of wx (D,3H) and wh (H,3H):
 *   a = x·Wx + b (b = bias_ih),  u = h_prev·Wh + b_hidden (b_hidden = bias_hh),
 *   r = σ(a_r + u_r),  z = σ(a_z + u_z),  n = tanh(a_n + r ⊙ u_n),  h = (1 - z) ⊙ n + z ⊙ h_prev.
 * The cache holds, per (n, t) row, r, z, n and u_n: (N,T,4H).
 *
 * Forward: the input projection of all N*T rows is one GEMM into the first 3H columns of each cache row. Before
 * step t's recurrent GEMM, a_n moves to the fourth block and the third is zeroed, so that the one (N,H)x(H,3H) GEMM
 * of the step adds u_r, u_z onto a_r, a_z and leaves u_n on its own; the fused pass then writes r, z, n, u_n.
 * Backward, per element: dn = dh ⊙ (1 - z), dA_n = dn ⊙ (1 - n²), dA_z = dh ⊙ (h_prev - n) ⊙ z(1 - z),
 * dA_r = dA_n ⊙ u_n ⊙ r(1 - r); the recurrent gradient dU equals dA except dU_n = dA_n ⊙ r; dh_prev = dh ⊙ z + dU·Whᵀ.
 * After the loop dWx = Xᵀ·dA, dWh = H_prevᵀ·dU, db = Σ dA, db_hidden = Σ dU. */
#include <string.h>

#include "internal.h"

/* Step t's rows (row stride ld) of the cache before the recurrent GEMM: [a_r, a_z, a_n, ·] -> [a_r, a_z, 0, a_n]. */
static void gru_prepare_rows(float *c, int64_t ld, int64_t rows, int64_t H) {
    for (int64_t n = 0; n < rows; n++) {
        float *row = c + n * ld;
        memcpy(row + 3 * H, row + 2 * H, (size_t)H * sizeof(float));
        memset(row + 2 * H, 0, (size_t)H * sizeof(float));
    }
}

/* The forward pass of one step over `rows` rows: c (row stride ldc) holds [a_r + u_r, a_z + u_z, u_n, a_n] without
 * the biases on entry and [r, z, n, u_n] on exit; h (row stride ldh) gets the new state; h_prev (row stride ldp)
 * may be NULL (zeros); b, b_hidden (3H) may be NULL. */
RC_VECTOR_CLONES static void gru_cell_forward_rows(float *c, int64_t ldc, const float *b, const float *bh,
                                                   const float *h_prev, int64_t ldp, float *h, int64_t ldh,
                                                   int64_t rows, int64_t H) {
    for (int64_t n = 0; n < rows; n++) {
        float *cr = c + n * ldc, *hr = h + n * ldh;
        const float *hp = h_prev ? h_prev + n * ldp : NULL;
        if (b) {
            for (int64_t k = 0; k < 2 * H; k++) cr[k] += b[k];
            for (int64_t k = 0; k < H; k++) cr[3 * H + k] += b[2 * H + k];
        }
        if (bh) {
            for (int64_t k = 0; k < 3 * H; k++) cr[k] += bh[k];
        }
        if (hp) {
            for (int64_t k = 0; k < H; k++) {
                const float r = rc_sigmoidf(cr[k]), z = rc_sigmoidf(cr[H + k]), un = cr[2 * H + k];
                const float nn = rc_tanhf(cr[3 * H + k] + r * un);
                cr[k] = r;
                cr[H + k] = z;
                cr[2 * H + k] = nn;
                cr[3 * H + k] = un;
                hr[k] = (1.0f - z) * nn + z * hp[k];
            }
        } else {
            for (int64_t k = 0; k < H; k++) {
                const float r = rc_sigmoidf(cr[k]), z = rc_sigmoidf(cr[H + k]), un = cr[2 * H + k];
                const float nn = rc_tanhf(cr[3 * H + k] + r * un);
                cr[k] = r;
                cr[H + k] = z;
                cr[2 * H + k] = nn;
                cr[3 * H + k] = un;
                hr[k] = (1.0f - z) * nn;
            }
        }
    }
}

/* One row of the backward. The four flags are constants at each call (gru_cell_backward_rows's switch), so the
 * copies have no branch inside the loop; dA and dU are written alone and distinct from the inputs (dh_prev may be
 * din itself, updated in place at the same index, so those two stay plain): restrict and the constants let GCC
 * vectorise the loop. */
static inline __attribute__((always_inline)) void gru_backward_row(float *restrict da, float *restrict du, float *dp,
                                                                   const float *g, const float *restrict add,
                                                                   const float *restrict cr,
                                                                   const float *restrict hp, int64_t H, bool has_add,
                                                                   bool has_hp, bool has_da, bool has_dp) {
    for (int64_t k = 0; k < H; k++) {
        const float dh = has_add ? g[k] + add[k] : g[k];
        const float r = cr[k], z = cr[H + k], nn = cr[2 * H + k], un = cr[3 * H + k];
        const float hpv = has_hp ? hp[k] : 0.0f;
        const float dan = dh * (1.0f - z) * (1.0f - nn * nn);
        const float daz = dh * (hpv - nn) * z * (1.0f - z);
        const float dar = dan * un * r * (1.0f - r);
        if (has_da) {
            da[k] = dar;
            da[H + k] = daz;
            da[2 * H + k] = dan;
        }
        du[k] = dar;
        du[H + k] = daz;
        du[2 * H + k] = dan * r;
        if (has_dp) dp[k] = dh * z;
    }
}

#define GRU_BACKWARD_CASE(m)                                                                      \
    case m:                                                                                       \
        gru_backward_row(da, du, dp, g, add, cr, hp, H, (m) & 1, (m) & 2, (m) & 4, (m) & 8);      \
        break;

/* The backward pass of one step over `rows` rows (the formulas at the top), linear in dh = din + dh_add.
 * c: the cache rows [r, z, n, u_n] (row stride ldc); h_prev (ldp) may be NULL (zeros); din row stride H, dh_add
 * (ld_add) may be NULL; dA (ldA) may be NULL; dU (ldU); dh_prev (row stride H; may be NULL, may equal din) gets the
 * element-wise part dh ⊙ z. */
RC_VECTOR_CLONES static void gru_cell_backward_rows(float *dA, int64_t ldA, float *dU, int64_t ldU, float *dh_prev,
                                                    const float *din, const float *dh_add, int64_t ld_add,
                                                    const float *c, int64_t ldc, const float *h_prev, int64_t ldp,
                                                    int64_t rows, int64_t H) {
    const int mask = (dh_add ? 1 : 0) | (h_prev ? 2 : 0) | (dA ? 4 : 0) | (dh_prev ? 8 : 0);
    for (int64_t n = 0; n < rows; n++) {
        const float *cr = c + n * ldc, *g = din + n * H;
        const float *add = dh_add ? dh_add + n * ld_add : NULL, *hp = h_prev ? h_prev + n * ldp : NULL;
        float *da = dA ? dA + n * ldA : NULL, *du = dU + n * ldU, *dp = dh_prev ? dh_prev + n * H : NULL;
        switch (mask) {
            RC_EACH_OF_16(GRU_BACKWARD_CASE)
        default: break;
        }
    }
}

/* The two passes split across the threads by rows (each row computed the same way whatever the split). A row's
 * work per hidden unit, in RC_PARALLEL_FLOATS' units: three vectorised exponentials and the products around them
 * (see LSTM_ROW_COST in lstm.c). */
#define GRU_ROW_COST 24

typedef struct gru_forward_job {
    float *c, *h;
    const float *b, *bh, *h_prev;
    int64_t ldc, ldp, ldh, H;
} gru_forward_job;

static void gru_forward_range(void *arg, int64_t r0, int64_t r1) {
    const gru_forward_job *j = arg;
    gru_cell_forward_rows(j->c + r0 * j->ldc, j->ldc, j->b, j->bh, j->h_prev ? j->h_prev + r0 * j->ldp : NULL, j->ldp,
                          j->h + r0 * j->ldh, j->ldh, r1 - r0, j->H);
}

static void gru_cell_forward(float *c, int64_t ldc, const float *b, const float *bh, const float *h_prev, int64_t ldp,
                             float *h, int64_t ldh, int64_t rows, int64_t H) {
    gru_forward_job j = {.c = c, .h = h, .b = b, .bh = bh, .h_prev = h_prev, .ldc = ldc, .ldp = ldp, .ldh = ldh,
                         .H = H};
    rc_parallel_for(rows, rc_grain(GRU_ROW_COST * H), gru_forward_range, &j);
}

typedef struct gru_backward_job {
    float *dA, *dU, *dh_prev;
    const float *din, *dh_add, *c, *h_prev;
    int64_t ldA, ldU, ld_add, ldc, ldp, H;
} gru_backward_job;

static void gru_backward_range(void *arg, int64_t r0, int64_t r1) {
    const gru_backward_job *j = arg;
    gru_cell_backward_rows(j->dA ? j->dA + r0 * j->ldA : NULL, j->ldA, j->dU + r0 * j->ldU, j->ldU,
                           j->dh_prev ? j->dh_prev + r0 * j->H : NULL, j->din + r0 * j->H,
                           j->dh_add ? j->dh_add + r0 * j->ld_add : NULL, j->ld_add, j->c + r0 * j->ldc, j->ldc,
                           j->h_prev ? j->h_prev + r0 * j->ldp : NULL, j->ldp, r1 - r0, j->H);
}

static void gru_step_backward(const rc_pass *p, int64_t t, float *dA, float *dR, int64_t ldR, float *dprev,
                              int64_t dprev_plane, const float *din, int64_t din_plane, const float *dh_add,
                              int64_t ld_add) {
    const int64_t T = p->T, H = p->H;
    const float *hp = t > 0 ? p->hs + (t - 1) * H : p->state0;
    gru_backward_job j = {.dA = dA, .dU = dR, .dh_prev = dprev, .din = din, .dh_add = dh_add,
                          .c = p->cache_in + t * 4 * H, .h_prev = hp, .ldA = T * 3 * H, .ldU = ldR, .ld_add = ld_add,
                          .ldc = T * 4 * H, .ldp = t > 0 ? T * H : H, .H = H};
    rc_parallel_for(p->N, rc_grain(GRU_ROW_COST * H), gru_backward_range, &j);
}

static const rc_cell_kind gru_cell = {.gates = 3, .states = 1, .cache_blocks = 4, .cache_width = 4,
                                      .hidden_bias = true, .step_backward = gru_step_backward};

rnncore_status rnncore_gru_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window) {
    return rc_cell_sizes(&gru_cell, sizes, window);
}

rnncore_status rnncore_gru_forward(float *hs, float *cache, float *state_last, const float *xs, const float *state0,
                                   const rnncore_cell_weights *weights, const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_forward(&gru_cell, &p, hs, cache, state_last, xs, state0, weights, window));
    rc_pack_forward(&p);
    const int64_t N = p.N, T = p.T, D = p.D, H = p.H, G = 3 * H, W = 4 * H, ld = T * H, ldc = T * W;

    /* The input projection of every (n, t) row at once, into the first 3H columns of each cache row. */
    rc_sgemm(false, false, N * T, G, D, 1.0f, xs, D, p.wx, G, 0.0f, cache, W);
    for (int64_t t = 0; t < T; t++) {
        float *c_t = cache + t * W;
        const float *hp = t > 0 ? hs + (t - 1) * H : state0;
        const int64_t ldp = t > 0 ? ld : H;
        gru_prepare_rows(c_t, ldc, N, H);
        if (hp) rc_recurrent_forward(&p, c_t, ldc, hp, ldp, N);
        gru_cell_forward(c_t, ldc, p.b, p.b_hidden, hp, ldp, hs + t * H, ld, N, H);
    }
    if (state_last) rc_copy_last_step(state_last, hs, N, T, H);
    return RNNCORE_OK;
}

rnncore_status rnncore_gru_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                    float *workspace, const float *dhs, const float *dstate_last, const float *xs,
                                    const float *state0, const float *hs, const float *cache,
                                    const rnncore_cell_weights *weights, const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_backward(&gru_cell, &p, dxs, dstate0, gradients, workspace, dhs, dstate_last, xs, state0,
                                  hs, cache, weights, window));
    rc_window_backward(&p, dxs, dstate0, gradients, workspace, dhs, dstate_last);
    return RNNCORE_OK;
}
