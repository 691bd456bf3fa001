/* LSTM: one step and a window of T steps, forward and backward (full or truncated BPTT inside the window: the
 * time loop is window.c's, the element-wise passes are here).
 *
 * Gates live in one (rows, 4H) block in PyTorch's order i, f, g, o, so that x·Wx and h·Wh are one GEMM each.
 * The window's cache holds every cell state cs (N,T,H), then the activated gates (N,T,4H); the backward recomputes
 * tanh(c). The state is (2,N,H): h, then c. */
#include <string.h>

#include "internal.h"

/* ---- validation -------------------------------------------------------------------------------------------- */

static rnncore_status check_lstm_sizes(int64_t N, int64_t D, int64_t H) {
    const int64_t sizes[] = {N, D, H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t G, p;
    RNNCORE_TRY(rc_mul(&G, 4, H));
    RNNCORE_TRY(rc_mul(&p, N, D));
    RNNCORE_TRY(rc_mul(&p, N, G));
    RNNCORE_TRY(rc_mul(&p, D, G));
    RNNCORE_TRY(rc_mul(&p, H, G));
    RNNCORE_TRY(rc_blas_dim(N));
    return rc_blas_dim(D > G ? D : G);
}

/* ---- element-wise passes ----------------------------------------------------------------------------------- */

/* The work of one row of the cell, in units of RC_PARALLEL_FLOATS' simple float operations per hidden unit: five
 * vectorised exponentials (σ, σ, tanh, σ, tanh) and the products around them. It sets how few rows are worth a
 * thread: one row of L650 (H 650), three of L200 (H 200). */
#define LSTM_ROW_COST 32

/* Forward of the cell for rows [r0, r1) (rc_range_fn over a lstm_forward_rows). a (row stride lda) holds the
 * pre-activations without bias on entry and the activated gates on exit; c and h (row stride ldh) receive the new
 * states; c_prev (row stride ldcp) may be NULL. */
typedef struct lstm_forward_rows {
    float *a, *c, *h;
    const float *b, *c_prev;
    int64_t lda, ldcp, ldh, H;
} lstm_forward_rows;

/* One row of the forward. has_cp is a constant at each call (the copies have no branch inside the loop), and the
 * gates, the new states and the previous cell state are four distinct buffers (the window's cache, hs, and the
 * previous step's cs or state0), so restrict holds: without both GCC leaves the loop scalar. */
static inline __attribute__((always_inline)) void lstm_forward_row(float *restrict ar, float *restrict cr,
                                                                   float *restrict hr, const float *restrict cp,
                                                                   int64_t H, bool has_cp) {
    for (int64_t k = 0; k < H; k++) {
        const float i = rc_sigmoidf(ar[k]);
        const float f = rc_sigmoidf(ar[H + k]);
        const float g = rc_tanhf(ar[2 * H + k]);
        const float o = rc_sigmoidf(ar[3 * H + k]);
        ar[k] = i;
        ar[H + k] = f;
        ar[2 * H + k] = g;
        ar[3 * H + k] = o;
        const float cn = (has_cp ? f * cp[k] : 0.0f) + i * g;
        cr[k] = cn;
        hr[k] = o * rc_tanhf(cn);
    }
}

RC_VECTOR_CLONES static void lstm_cell_forward_range(void *arg, int64_t r0, int64_t r1) {
    const lstm_forward_rows *j = arg;
    const int64_t H = j->H;
    for (int64_t n = r0; n < r1; n++) {
        float *ar = j->a + n * j->lda;
        float *cr = j->c + n * j->ldh, *hr = j->h + n * j->ldh;
        if (j->b) {
            for (int64_t k = 0; k < 4 * H; k++) ar[k] += j->b[k];
        }
        if (j->c_prev) {
            lstm_forward_row(ar, cr, hr, j->c_prev + n * j->ldcp, H, true);
        } else {
            lstm_forward_row(ar, cr, hr, NULL, H, false);
        }
    }
}

/* The forward of `rows` rows, split across the threads by rows. */
static void lstm_cell_forward_rows(float *a, int64_t lda, const float *b, const float *c_prev, int64_t ldcp, float *c,
                                   float *h, int64_t ldh, int64_t rows, int64_t H) {
    lstm_forward_rows j = {.a = a, .c = c, .h = h, .b = b, .c_prev = c_prev, .lda = lda, .ldcp = ldcp, .ldh = ldh,
                           .H = H};
    rc_parallel_for(rows, rc_grain(LSTM_ROW_COST * H), lstm_cell_forward_range, &j);
}

/* Backward of the cell for rows [r0, r1) (rc_range_fn over a lstm_backward_rows), linear in (dh, dc) given the
 * forward values:
 *   dct = dc + dh ⊙ o ⊙ (1 - tanh²c);  dA = [dct⊙g⊙i(1-i), dct⊙c_prev⊙f(1-f), dct⊙i⊙(1-g²), dh⊙tanh(c)⊙o(1-o)];
 *   dc_prev = dct ⊙ f.
 * dh is dh + dh_add when dh_add (row stride ld_add) is given. dh, dc, dc_prev have row stride H; dA row stride ldA;
 * gates ldg; c ldc; c_prev ldcp. dc, c_prev may be NULL (zeros), dc_prev may be NULL (not needed) and may equal dc
 * (updated in place). */
typedef struct lstm_backward_rows {
    float *dA, *dc_prev;
    const float *dh, *dh_add, *dc, *gates, *c, *c_prev;
    int64_t ldA, ld_add, ldg, ldc, ldcp, H;
} lstm_backward_rows;

/* One row of the backward. The four flags are constants at each call (lstm_cell_backward_range's switch), so the
 * copies have no branch inside the loop; dA is written alone and the inputs are distinct from it (dc and dc_prev
 * may be one buffer, updated in place at the same index, so those two stay plain). See lstm_forward_row. */
static inline __attribute__((always_inline)) void lstm_backward_row(float *restrict da, float *dcp,
                                                                    const float *restrict dhr,
                                                                    const float *restrict add, const float *dcr,
                                                                    const float *restrict gr,
                                                                    const float *restrict cr,
                                                                    const float *restrict cp, int64_t H, bool has_dc,
                                                                    bool has_cp, bool has_add, bool has_dcp) {
    for (int64_t k = 0; k < H; k++) {
        const float i = gr[k], f = gr[H + k], g = gr[2 * H + k], o = gr[3 * H + k];
        const float tc = rc_tanhf(cr[k]);
        const float dhv = has_add ? dhr[k] + add[k] : dhr[k];
        const float dct = (has_dc ? dcr[k] : 0.0f) + dhv * o * (1.0f - tc * tc);
        da[k] = dct * g * i * (1.0f - i);
        da[H + k] = (has_cp ? dct * cp[k] : 0.0f) * f * (1.0f - f);
        da[2 * H + k] = dct * i * (1.0f - g * g);
        da[3 * H + k] = dhv * tc * o * (1.0f - o);
        if (has_dcp) dcp[k] = dct * f;
    }
}

#define LSTM_BACKWARD_CASE(m)                                                                                 \
    case m:                                                                                                   \
        lstm_backward_row(da, dcp, dhr, add, dcr, gr, cr, cp, H, (m) & 1, (m) & 2, (m) & 4, (m) & 8);          \
        break;

RC_VECTOR_CLONES static void lstm_cell_backward_range(void *arg, int64_t r0, int64_t r1) {
    const lstm_backward_rows *j = arg;
    const int64_t H = j->H;
    const int mask = (j->dc ? 1 : 0) | (j->c_prev ? 2 : 0) | (j->dh_add ? 4 : 0) | (j->dc_prev ? 8 : 0);
    for (int64_t n = r0; n < r1; n++) {
        float *da = j->dA + n * j->ldA;
        const float *gr = j->gates + n * j->ldg, *cr = j->c + n * j->ldc;
        const float *cp = j->c_prev ? j->c_prev + n * j->ldcp : NULL;
        const float *dhr = j->dh + n * H, *dcr = j->dc ? j->dc + n * H : NULL;
        const float *add = j->dh_add ? j->dh_add + n * j->ld_add : NULL;
        float *dcp = j->dc_prev ? j->dc_prev + n * H : NULL;
        switch (mask) {
            RC_EACH_OF_16(LSTM_BACKWARD_CASE)
        default: break;
        }
    }
}

/* The backward of `rows` rows, split across the threads by rows. */
static void lstm_cell_backward_rows(float *dA, int64_t ldA, float *dc_prev, const float *dh, const float *dh_add,
                                    int64_t ld_add, const float *dc, const float *gates, int64_t ldg, const float *c,
                                    int64_t ldc, const float *c_prev, int64_t ldcp, int64_t rows, int64_t H) {
    lstm_backward_rows j = {.dA = dA, .dc_prev = dc_prev, .dh = dh, .dh_add = dh_add, .dc = dc, .gates = gates,
                            .c = c, .c_prev = c_prev, .ldA = ldA, .ld_add = ld_add, .ldg = ldg, .ldc = ldc,
                            .ldcp = ldcp, .H = H};
    rc_parallel_for(rows, rc_grain(LSTM_ROW_COST * H), lstm_cell_backward_range, &j);
}

/* ---- one step ---------------------------------------------------------------------------------------------- */

rnncore_status rnncore_lstm_step_forward(float *h_next, float *c_next, float *gates, const float *x,
                                         const float *h_prev, const float *c_prev, const float *wx,
                                         const float *wh, const float *b, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!h_next || !c_next || !gates || !x || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_lstm_sizes(N, D, H));
    const int64_t G = 4 * H;
    const rc_buf outs[] = {{h_next, N * H}, {c_next, N * H}, {gates, N * G}};
    const rc_buf ins[] = {{x, N * D}, {h_prev, N * H}, {c_prev, N * H}, {wx, D * G}, {wh, H * G}, {b, G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    rc_sgemm(false, false, N, G, D, 1.0f, x, D, wx, G, 0.0f, gates, G);
    if (h_prev) rc_sgemm(false, false, N, G, H, 1.0f, h_prev, H, wh, G, 1.0f, gates, G);
    lstm_cell_forward_rows(gates, G, b, c_prev, H, c_next, h_next, H, N, H);
    return RNNCORE_OK;
}

rnncore_status rnncore_lstm_step_backward_workspace_size(int64_t *count, int64_t N, int64_t H) {
    RNNCORE_FAIL_IF(!count, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_lstm_sizes(N, 1, H));
    *count = N * 4 * H;
    return RNNCORE_OK;
}

rnncore_status rnncore_lstm_step_backward(float *dx, float *dh_prev, float *dc_prev, float *dwx, float *dwh,
                                          float *db, float *workspace, const float *dh_next, const float *dc_next,
                                          const float *x, const float *h_prev, const float *c_prev,
                                          const float *c_next, const float *gates, const float *wx,
                                          const float *wh, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!dwx || !dwh || !workspace || !dh_next || !x || !c_next || !gates || !wx || !wh,
                    RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_lstm_sizes(N, D, H));
    const int64_t G = 4 * H;
    const rc_buf outs[] = {{dx, N * D},   {dh_prev, N * H}, {dc_prev, N * H},  {dwx, D * G},
                           {dwh, H * G},  {db, G},          {workspace, N * G}};
    const rc_buf ins[] = {{dh_next, N * H}, {dc_next, N * H}, {x, N * D},  {h_prev, N * H}, {c_prev, N * H},
                          {c_next, N * H},  {gates, N * G},   {wx, D * G}, {wh, H * G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    float *dA = workspace; /* (N,4H) */
    lstm_cell_backward_rows(dA, G, dc_prev, dh_next, NULL, 0, dc_next, gates, G, c_next, H, c_prev, H, N, H);
    if (dx) rc_sgemm(false, true, N, D, G, 1.0f, dA, G, wx, G, 0.0f, dx, D);
    if (dh_prev) rc_sgemm(false, true, N, H, G, 1.0f, dA, G, wh, G, 0.0f, dh_prev, H);
    rc_sgemm(true, false, D, G, N, 1.0f, x, D, dA, G, 1.0f, dwx, G);
    if (h_prev) rc_sgemm(true, false, H, G, N, 1.0f, h_prev, H, dA, G, 1.0f, dwh, G);
    if (db) rc_add_column_sums(db, dA, N, G);
    return RNNCORE_OK;
}

/* ---- a window of T steps ----------------------------------------------------------------------------------- */

/* The element-wise backward of step t (see rc_step_backward_fn): planes h and c of din in, dA (= dR) out, and the
 * c plane of dprev gets dc_prev = dct ⊙ f; the lstm has no element-wise path into h_prev. */
static void lstm_step_backward(const rc_pass *p, int64_t t, float *dA, float *dR, int64_t ldR, float *dprev,
                               int64_t dprev_plane, const float *din, int64_t din_plane, const float *dh_add,
                               int64_t ld_add) {
    const int64_t N = p->N, T = p->T, H = p->H, G = 4 * H, ld = T * H, ldg = T * G;
    const float *cs = p->cache_in, *gates = cs + N * T * H;
    const float *cp = t > 0 ? cs + (t - 1) * H : (p->state0 ? p->state0 + N * H : NULL);
    lstm_cell_backward_rows(dR, ldR, dprev ? dprev + dprev_plane : NULL, din, dh_add, ld_add, din + din_plane,
                            gates + t * G, ldg, cs + t * H, ld, cp, t > 0 ? ld : H, N, H);
}

static const rc_cell_kind lstm_cell = {.gates = 4, .states = 2, .cache_blocks = 5, .cache_width = 4,
                                       .hidden_bias = false, .step_backward = lstm_step_backward};

rnncore_status rnncore_lstm_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window) {
    return rc_cell_sizes(&lstm_cell, sizes, window);
}

rnncore_status rnncore_lstm_forward(float *hs, float *cache, float *state_last, const float *xs, const float *state0,
                                    const rnncore_cell_weights *weights, const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_forward(&lstm_cell, &p, hs, cache, state_last, xs, state0, weights, window));
    rc_pack_forward(&p);
    const int64_t N = p.N, T = p.T, D = p.D, H = p.H, G = 4 * H, ld = T * H, ldg = T * G, NH = N * H;
    float *cs = cache, *gates = cache + N * T * H;
    const float *h0 = state0, *c0 = state0 ? state0 + NH : NULL;

    /* The input projection of every (n, t) row at once. */
    rc_sgemm(false, false, N * T, G, D, 1.0f, xs, D, p.wx, G, 0.0f, gates, G);
    for (int64_t t = 0; t < T; t++) {
        const float *hp = t > 0 ? hs + (t - 1) * H : h0;
        const float *cp = t > 0 ? cs + (t - 1) * H : c0;
        const int64_t ldp = t > 0 ? ld : H;
        if (hp) rc_recurrent_forward(&p, gates + t * G, ldg, hp, ldp, N);
        lstm_cell_forward_rows(gates + t * G, ldg, p.b, cp, ldp, cs + t * H, hs + t * H, ld, N, H);
    }
    if (state_last) {
        rc_copy_last_step(state_last, hs, N, T, H);
        rc_copy_last_step(state_last + NH, cs, N, T, H);
    }
    return RNNCORE_OK;
}

rnncore_status rnncore_lstm_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                     float *workspace, const float *dhs, const float *dstate_last, const float *xs,
                                     const float *state0, const float *hs, const float *cache,
                                     const rnncore_cell_weights *weights, const rnncore_window *window) {
    rc_pass p;
    RNNCORE_TRY(rc_check_backward(&lstm_cell, &p, dxs, dstate0, gradients, workspace, dhs, dstate_last, xs, state0,
                                  hs, cache, weights, window));
    rc_window_backward(&p, dxs, dstate0, gradients, workspace, dhs, dstate_last);
    return RNNCORE_OK;
}
