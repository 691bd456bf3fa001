/* LSTM: one step and a window of T steps, forward and backward (full or truncated BPTT inside the window).
 *
 * Gates live in one (rows, 4H) block in PyTorch's order i, f, g, o, so that x·Wx and h·Wh are one GEMM each.
 * The forward keeps the activated gates and every cell state; the backward recomputes tanh(c). */
#include <string.h>

#include "internal.h"

/* ---- validation -------------------------------------------------------------------------------------------- */

static rnncore_status check_lstm_sizes(int64_t N, int64_t T, int64_t D, int64_t H) {
    const int64_t sizes[] = {N, T, D, H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t G, nt, p;
    RNNCORE_TRY(rc_mul(&G, 4, H));
    RNNCORE_TRY(rc_mul(&nt, N, T));
    RNNCORE_TRY(rc_mul(&p, nt, D));
    RNNCORE_TRY(rc_mul(&p, nt, G));
    RNNCORE_TRY(rc_mul(&p, nt, G + 3 * H)); /* backward workspace: gates, states, buckets */
    RNNCORE_TRY(rc_mul(&p, D, G));
    RNNCORE_TRY(rc_mul(&p, H, G));
    RNNCORE_TRY(rc_blas_dim(nt));
    RNNCORE_TRY(rc_mul(&p, T, D > G ? D : G)); /* leading dimensions T*D, T*4H */
    return rc_blas_dim(p);
}

/* ---- element-wise passes ----------------------------------------------------------------------------------- */

/* Forward of the cell for `rows` rows. a (row stride lda) holds the pre-activations without bias on entry and the
 * activated gates on exit; c and h (row stride ldh) receive the new states; c_prev (row stride ldcp) may be NULL. */
RC_VECTOR_CLONES static void lstm_cell_forward_rows(float *a, int64_t lda, const float *b, const float *c_prev,
                                                    int64_t ldcp, float *c, float *h, int64_t ldh, int64_t rows,
                                                    int64_t H) {
    for (int64_t n = 0; n < rows; n++) {
        float *ar = a + n * lda;
        float *cr = c + n * ldh, *hr = h + n * ldh;
        const float *cp = c_prev ? c_prev + n * ldcp : NULL;
        if (b) {
            for (int64_t k = 0; k < 4 * H; k++) ar[k] += b[k];
        }
        for (int64_t k = 0; k < H; k++) {
            const float i = rc_sigmoidf(ar[k]);
            const float f = rc_sigmoidf(ar[H + k]);
            const float g = rc_tanhf(ar[2 * H + k]);
            const float o = rc_sigmoidf(ar[3 * H + k]);
            ar[k] = i;
            ar[H + k] = f;
            ar[2 * H + k] = g;
            ar[3 * H + k] = o;
            const float cn = (cp ? f * cp[k] : 0.0f) + i * g;
            cr[k] = cn;
            hr[k] = o * rc_tanhf(cn);
        }
    }
}

/* Backward of the cell for `rows` rows, linear in (dh, dc) given the forward values:
 *   dct = dc + dh ⊙ o ⊙ (1 - tanh²c);  dA = [dct⊙g⊙i(1-i), dct⊙c_prev⊙f(1-f), dct⊙i⊙(1-g²), dh⊙tanh(c)⊙o(1-o)];
 *   dc_prev = dct ⊙ f.
 * dh, dc, dc_prev have row stride H; dA row stride ldA; gates ldg; c ldc; c_prev ldcp. dc, c_prev may be NULL
 * (zeros), dc_prev may be NULL (not needed) and may equal dc (updated in place). */
RC_VECTOR_CLONES static void lstm_cell_backward_rows(float *dA, int64_t ldA, float *dc_prev, const float *dh,
                                                     const float *dc, const float *gates, int64_t ldg,
                                                     const float *c, int64_t ldc, const float *c_prev, int64_t ldcp,
                                                     int64_t rows, int64_t H) {
    for (int64_t n = 0; n < rows; n++) {
        float *da = dA + n * ldA;
        const float *gr = gates + n * ldg, *cr = c + n * ldc;
        const float *cp = c_prev ? c_prev + n * ldcp : NULL;
        const float *dhr = dh + n * H, *dcr = dc ? dc + n * H : NULL;
        float *dcp = dc_prev ? dc_prev + n * H : NULL;
        for (int64_t k = 0; k < H; k++) {
            const float i = gr[k], f = gr[H + k], g = gr[2 * H + k], o = gr[3 * H + k];
            const float tc = rc_tanhf(cr[k]);
            const float dhv = dhr[k];
            const float dct = (dcr ? dcr[k] : 0.0f) + dhv * o * (1.0f - tc * tc);
            da[k] = dct * g * i * (1.0f - i);
            da[H + k] = (cp ? dct * cp[k] : 0.0f) * f * (1.0f - f);
            da[2 * H + k] = dct * i * (1.0f - g * g);
            da[3 * H + k] = dhv * tc * o * (1.0f - o);
            if (dcp) dcp[k] = dct * f;
        }
    }
}

/* ---- one step ---------------------------------------------------------------------------------------------- */

rnncore_status rnncore_lstm_step_forward(float *h_next, float *c_next, float *gates, const float *x,
                                         const float *h_prev, const float *c_prev, const float *wx,
                                         const float *wh, const float *b, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!h_next || !c_next || !gates || !x || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_lstm_sizes(N, 1, D, H));
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
    RNNCORE_TRY(check_lstm_sizes(N, 1, 1, H));
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
    RNNCORE_TRY(check_lstm_sizes(N, 1, D, H));
    const int64_t G = 4 * H;
    const rc_buf outs[] = {{dx, N * D},   {dh_prev, N * H}, {dc_prev, N * H},  {dwx, D * G},
                           {dwh, H * G},  {db, G},          {workspace, N * G}};
    const rc_buf ins[] = {{dh_next, N * H}, {dc_next, N * H}, {x, N * D},  {h_prev, N * H}, {c_prev, N * H},
                          {c_next, N * H},  {gates, N * G},   {wx, D * G}, {wh, H * G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    float *dA = workspace; /* (N,4H) */
    lstm_cell_backward_rows(dA, G, dc_prev, dh_next, dc_next, gates, G, c_next, H, c_prev, H, N, H);
    if (dx) rc_sgemm(false, true, N, D, G, 1.0f, dA, G, wx, G, 0.0f, dx, D);
    if (dh_prev) rc_sgemm(false, true, N, H, G, 1.0f, dA, G, wh, G, 0.0f, dh_prev, H);
    rc_sgemm(true, false, D, G, N, 1.0f, x, D, dA, G, 1.0f, dwx, G);
    if (h_prev) rc_sgemm(true, false, H, G, N, 1.0f, h_prev, H, dA, G, 1.0f, dwh, G);
    if (db) rc_add_column_sums(db, dA, N, G);
    return RNNCORE_OK;
}

/* ---- a window of T steps ----------------------------------------------------------------------------------- */

rnncore_status rnncore_lstm_forward(float *hs, float *cs, float *gates, float *h_last, float *c_last,
                                    const float *xs, const float *h0, const float *c0, const float *wx,
                                    const float *wh, const float *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!hs || !cs || !gates || !xs || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_lstm_sizes(N, T, D, H));
    const int64_t G = 4 * H, NT = N * T, ld = T * H, ldg = T * G;
    /* h_last may be h0 and c_last may be c0 (read at t = 0, written at the end): the stateful pattern. */
    const float *h0_distinct = (const float *)h_last == h0 ? NULL : h0;
    const float *c0_distinct = (const float *)c_last == c0 ? NULL : c0;
    const rc_buf outs[] = {{hs, NT * H}, {cs, NT * H}, {gates, NT * G}, {h_last, N * H}, {c_last, N * H}};
    const rc_buf ins[] = {{xs, NT * D}, {h0_distinct, N * H}, {c0_distinct, N * H},
                          {wx, D * G},  {wh, H * G},          {b, G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    const rc_buf window[] = {{hs, NT * H}, {cs, NT * H}, {gates, NT * G}};
    const rc_buf initial[] = {{h0, N * H}, {c0, N * H}};
    RNNCORE_TRY(rc_check_aliasing(window, RC_COUNT(window), initial, RC_COUNT(initial)));

    /* The input projection of every (n, t) row at once. */
    rc_sgemm(false, false, NT, G, D, 1.0f, xs, D, wx, G, 0.0f, gates, G);
    for (int64_t t = 0; t < T; t++) {
        const float *hp = t > 0 ? hs + (t - 1) * H : h0;
        const float *cp = t > 0 ? cs + (t - 1) * H : c0;
        const int64_t ldp = t > 0 ? ld : H;
        if (hp) rc_sgemm(false, false, N, G, H, 1.0f, hp, ldp, wh, G, 1.0f, gates + t * G, ldg);
        lstm_cell_forward_rows(gates + t * G, ldg, b, cp, ldp, cs + t * H, hs + t * H, ld, N, H);
    }
    for (int64_t n = 0; n < N; n++) {
        const int64_t last = n * ld + (T - 1) * H;
        if (h_last) memcpy(h_last + n * H, hs + last, (size_t)H * sizeof(float));
        if (c_last) memcpy(c_last + n * H, cs + last, (size_t)H * sizeof(float));
    }
    return RNNCORE_OK;
}

rnncore_status rnncore_lstm_backward_workspace_size(int64_t *count, int64_t N, int64_t T, int64_t H,
                                                    int64_t truncation) {
    RNNCORE_FAIL_IF(!count, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(truncation < 0, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_TRY(check_lstm_sizes(N, T, 1, H));
    const int64_t k = rc_truncation_ages(truncation, T);
    /* dA (N*T*4H) and the shifted states (N*T*H); then the carries (2*N*H), or with truncation k the buckets of
     * dh and dc (2*k*N*H), their sums (2*N*H) and the bucket pre-activation gradients ((k-1)*N*4H); k <= T. */
    const int64_t per_row = k ? 2 * k * H + 2 * H + (k - 1) * 4 * H : 2 * H;
    int64_t a, b2;
    RNNCORE_TRY(rc_mul(&a, N * T, 5 * H));
    RNNCORE_TRY(rc_mul(&b2, N, per_row));
    *count = a + b2;
    return RNNCORE_OK;
}

/* The time loop of the full backward: one carried (dh, dc) pair. Writes every step's dA. */
static void lstm_backward_full_loop(float *dA, float *dh0, float *dc0, float *carry_h, float *carry_c,
                                    const float *dhs, const float *dh_last, const float *dc_last, const float *c0,
                                    const float *cs, const float *gates, const float *wh, int64_t N, int64_t T,
                                    int64_t H) {
    const int64_t G = 4 * H, ld = T * H, ldg = T * G, NH = N * H;
    if (dh_last) {
        memcpy(carry_h, dh_last, (size_t)NH * sizeof(float));
    } else {
        memset(carry_h, 0, (size_t)NH * sizeof(float));
    }
    if (dc_last) {
        memcpy(carry_c, dc_last, (size_t)NH * sizeof(float));
    } else {
        memset(carry_c, 0, (size_t)NH * sizeof(float));
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t n = 0; n < N; n++) {
            const float *d = dhs + n * ld + t * H;
            float *c = carry_h + n * H;
            for (int64_t i = 0; i < H; i++) c[i] += d[i];
        }
        const float *cp = t > 0 ? cs + (t - 1) * H : c0;
        lstm_cell_backward_rows(dA + t * G, ldg, carry_c, carry_h, carry_c, gates + t * G, ldg, cs + t * H, ld, cp,
                                t > 0 ? ld : H, N, H);
        if (t > 0) {
            rc_sgemm(false, true, N, H, G, 1.0f, dA + t * G, ldg, wh, G, 0.0f, carry_h, H);
        } else if (dh0) {
            rc_sgemm(false, true, N, H, G, 1.0f, dA, ldg, wh, G, 0.0f, dh0, H);
        }
    }
    if (dc0) memcpy(dc0, carry_c, (size_t)NH * sizeof(float));
}

/* The time loop of a truncated backward. Buckets s = 0..k-1 of Bh, Bc (k,N,H) hold the errors of outputs t+s
 * that have reached (h_t, c_t). The cell backward is linear in (dh, dc), so step t's dA comes from their sums;
 * buckets 0..k-2 also go one step back (age + 1): dc through f element-wise, dh through Whᵀ in one GEMM of
 * (k-1)*N rows. Bucket k-1 stops at step t. */
static void lstm_backward_truncated_loop(float *dA, float *dh0, float *dc0, float *work, const float *dhs,
                                         const float *dh_last, const float *dc_last, const float *c0,
                                         const float *cs, const float *gates, const float *wh, int64_t N,
                                         int64_t T, int64_t H, int64_t k) {
    const int64_t G = 4 * H, ld = T * H, ldg = T * G, NH = N * H;
    float *Bh = work, *Bc = Bh + k * NH, *sum_h = Bc + k * NH, *sum_c = sum_h + NH, *Ab = sum_c + NH;
    memset(Bh, 0, (size_t)(2 * k * NH) * sizeof(float));
    for (int64_t t = T - 1; t >= 0; t--) {
        const bool last = t == T - 1;
        for (int64_t n = 0; n < N; n++) {
            const float *d = dhs + n * ld + t * H;
            for (int64_t i = 0; i < H; i++) {
                Bh[n * H + i] = d[i] + (last && dh_last ? dh_last[n * H + i] : 0.0f);
                Bc[n * H + i] = last && dc_last ? dc_last[n * H + i] : 0.0f;
            }
        }
        memcpy(sum_h, Bh, (size_t)NH * sizeof(float));
        memcpy(sum_c, Bc, (size_t)NH * sizeof(float));
        for (int64_t s = 1; s < k; s++) {
            for (int64_t j = 0; j < NH; j++) {
                sum_h[j] += Bh[s * NH + j];
                sum_c[j] += Bc[s * NH + j];
            }
        }
        const float *cp = t > 0 ? cs + (t - 1) * H : c0;
        const int64_t ldcp = t > 0 ? ld : H;
        lstm_cell_backward_rows(dA + t * G, ldg, NULL, sum_h, sum_c, gates + t * G, ldg, cs + t * H, ld, cp, ldcp,
                                N, H);
        /* Descending, so that bucket s+1 has been read before bucket s's dc moves into it. */
        for (int64_t s = k - 2; s >= 0; s--) {
            lstm_cell_backward_rows(Ab + s * N * G, G, Bc + (s + 1) * NH, Bh + s * NH, Bc + s * NH, gates + t * G,
                                    ldg, cs + t * H, ld, cp, ldcp, N, H);
        }
        if (t > 0) {
            if (k > 1) rc_sgemm(false, true, (k - 1) * N, H, G, 1.0f, Ab, G, wh, G, 0.0f, Bh + NH, H);
            continue;
        }
        /* Leaving step 0: what buckets 0..k-2 carry is the gradient of the initial state. */
        if (dh0) {
            if (k > 1) {
                for (int64_t s = 1; s < k - 1; s++) {
                    for (int64_t j = 0; j < N * G; j++) Ab[j] += Ab[s * N * G + j];
                }
                rc_sgemm(false, true, N, H, G, 1.0f, Ab, G, wh, G, 0.0f, dh0, H);
            } else {
                memset(dh0, 0, (size_t)NH * sizeof(float));
            }
        }
        if (dc0) {
            memset(dc0, 0, (size_t)NH * sizeof(float));
            for (int64_t s = 1; s < k; s++) {
                for (int64_t j = 0; j < NH; j++) dc0[j] += Bc[s * NH + j];
            }
        }
    }
}

rnncore_status rnncore_lstm_backward(float *dxs, float *dh0, float *dc0, float *dwx, float *dwh, float *db,
                                     float *workspace, const float *dhs, const float *dh_last,
                                     const float *dc_last, const float *xs, const float *h0, const float *c0,
                                     const float *hs, const float *cs, const float *gates, const float *wx,
                                     const float *wh, int64_t N, int64_t T, int64_t D, int64_t H,
                                     int64_t truncation) {
    RNNCORE_FAIL_IF(!dwx || !dwh || !workspace || !dhs || !xs || !hs || !cs || !gates || !wx || !wh,
                    RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(truncation < 0, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_TRY(check_lstm_sizes(N, T, D, H));
    int64_t ws_count;
    RNNCORE_TRY(rnncore_lstm_backward_workspace_size(&ws_count, N, T, H, truncation));
    const int64_t G = 4 * H, NT = N * T, k = rc_truncation_ages(truncation, T);
    const rc_buf outs[] = {{dxs, NT * D}, {dh0, N * H}, {dc0, N * H},         {dwx, D * G},
                           {dwh, H * G},  {db, G},      {workspace, ws_count}};
    const rc_buf ins[] = {{dhs, NT * H}, {dh_last, N * H}, {dc_last, N * H}, {xs, NT * D}, {h0, N * H},
                          {c0, N * H},   {hs, NT * H},     {cs, NT * H},     {gates, NT * G},
                          {wx, D * G},   {wh, H * G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    float *dA = workspace;          /* (N,T,4H): gradient of the gate pre-activations */
    float *h_prev = dA + NT * G;    /* (N,T,H): the hidden state each step started from */
    float *rest = h_prev + NT * H;  /* carries or buckets */
    if (k) {
        lstm_backward_truncated_loop(dA, dh0, dc0, rest, dhs, dh_last, dc_last, c0, cs, gates, wh, N, T, H, k);
    } else {
        lstm_backward_full_loop(dA, dh0, dc0, rest, rest + N * H, dhs, dh_last, dc_last, c0, cs, gates, wh, N, T, H);
    }

    /* Everything that does not feed the recurrence runs once, over all N*T rows. */
    rc_shifted_states(h_prev, h0, hs, N, T, H);
    rc_sgemm(true, false, D, G, NT, 1.0f, xs, D, dA, G, 1.0f, dwx, G);
    rc_sgemm(true, false, H, G, NT, 1.0f, h_prev, H, dA, G, 1.0f, dwh, G);
    if (db) rc_add_column_sums(db, dA, NT, G);
    if (dxs) rc_sgemm(false, true, NT, D, G, 1.0f, dA, G, wx, G, 0.0f, dxs, D);
    return RNNCORE_OK;
}
