/* tanh RNN: one step (the RNN layer) and a window of T steps (the TimeRNN layer), forward and backward. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* ---- shared element-wise passes ---------------------------------------------------------------------------- */

/* rows × H block with row stride ld: v = tanh(v + b). */
RC_VECTOR_CLONES static void bias_tanh_rows(float *v, int64_t ld, const float *b, int64_t rows, int64_t H) {
    for (int64_t n = 0; n < rows; n++) {
        float *row = v + n * ld;
        if (b) {
            for (int64_t i = 0; i < H; i++) row[i] = rc_tanhf(row[i] + b[i]);
        } else {
            for (int64_t i = 0; i < H; i++) row[i] = rc_tanhf(row[i]);
        }
    }
}

/* ---- validation shared by step and sequence ---------------------------------------------------------------- */

static rnncore_status check_rnn_sizes(int64_t N, int64_t T, int64_t D, int64_t H) {
    const int64_t sizes[] = {N, T, D, H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t nt, p;
    RNNCORE_TRY(rc_mul(&nt, N, T));
    RNNCORE_TRY(rc_mul(&p, nt, D));
    RNNCORE_TRY(rc_mul(&p, nt, H));
    RNNCORE_TRY(rc_mul(&p, 2 * nt, H)); /* backward workspace */
    RNNCORE_TRY(rc_mul(&p, D, H));
    RNNCORE_TRY(rc_mul(&p, H, H));
    RNNCORE_TRY(rc_blas_dim(nt));
    RNNCORE_TRY(rc_mul(&p, T, D > H ? D : H)); /* leading dimensions T*D, T*H */
    return rc_blas_dim(p);
}

/* ---- one step ---------------------------------------------------------------------------------------------- */

rnncore_status rnncore_rnn_step_forward(float *h_next, const float *x, const float *h_prev, const float *wx,
                                        const float *wh, const float *b, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!h_next || !x || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, 1, D, H));
    const rc_buf outs[] = {{h_next, N * H}};
    const rc_buf ins[] = {{x, N * D}, {h_prev, N * H}, {wx, D * H}, {wh, H * H}, {b, H}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    rc_sgemm(false, false, N, H, D, 1.0f, x, D, wx, H, 0.0f, h_next, H);
    if (h_prev) rc_sgemm(false, false, N, H, H, 1.0f, h_prev, H, wh, H, 1.0f, h_next, H);
    bias_tanh_rows(h_next, H, b, N, H);
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_step_backward_workspace_size(int64_t *count, int64_t N, int64_t H) {
    RNNCORE_FAIL_IF(!count, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, 1, 1, H));
    *count = N * H;
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_step_backward(float *dx, float *dh_prev, float *dwx, float *dwh, float *db,
                                         float *workspace, const float *dh_next, const float *x,
                                         const float *h_prev, const float *h_next, const float *wx,
                                         const float *wh, int64_t N, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!dwx || !dwh || !workspace || !dh_next || !x || !h_next || !wx || !wh,
                    RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, 1, D, H));
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

rnncore_status rnncore_rnn_forward(float *hs, float *h_last, const float *xs, const float *h0, const float *wx,
                                   const float *wh, const float *b, int64_t N, int64_t T, int64_t D, int64_t H) {
    RNNCORE_FAIL_IF(!hs || !xs || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rnn_sizes(N, T, D, H));
    const int64_t NT = N * T, ld = T * H;
    /* h_last may be the very buffer h0 (read at t = 0, written at the end): the stateful pattern. */
    const float *h0_distinct = (const float *)h_last == h0 ? NULL : h0;
    const rc_buf outs[] = {{hs, NT * H}, {h_last, N * H}};
    const rc_buf ins[] = {{xs, NT * D}, {h0_distinct, N * H}, {wx, D * H}, {wh, H * H}, {b, H}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    RNNCORE_FAIL_IF(rc_overlap(hs, NT * H, h0, N * H), RNNCORE_ERR_ALIASING);

    /* The input projection of every (n, t) row at once. */
    rc_sgemm(false, false, NT, H, D, 1.0f, xs, D, wx, H, 0.0f, hs, H);
    for (int64_t t = 0; t < T; t++) {
        float *h_t = hs + t * H; /* rows n at stride T*H */
        if (t > 0) {
            rc_sgemm(false, false, N, H, H, 1.0f, hs + (t - 1) * H, ld, wh, H, 1.0f, h_t, ld);
        } else if (h0) {
            rc_sgemm(false, false, N, H, H, 1.0f, h0, H, wh, H, 1.0f, h_t, ld);
        }
        bias_tanh_rows(h_t, ld, b, N, H);
    }
    if (h_last) {
        for (int64_t n = 0; n < N; n++) memcpy(h_last + n * H, hs + n * ld + (T - 1) * H, (size_t)H * sizeof(float));
    }
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_backward_truncated_workspace_size(int64_t *count, int64_t N, int64_t T, int64_t H,
                                                             int64_t truncation) {
    RNNCORE_FAIL_IF(!count, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(truncation < 0, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_TRY(check_rnn_sizes(N, T, 1, H));
    const int64_t k = rc_truncation_ages(truncation, T);
    /* dT and the shifted states (2*N*T*H), then either the carry (N*H) or the age buckets and their
     * pre-activation gradients ((2k-1)*N*H, k <= T). */
    int64_t total;
    RNNCORE_TRY(rc_mul(&total, 2 * N * T + (k ? 2 * k - 1 : 1) * N, H));
    *count = total;
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_backward_workspace_size(int64_t *count, int64_t N, int64_t T, int64_t H) {
    return rnncore_rnn_backward_truncated_workspace_size(count, N, T, H, 0);
}

/* The time loop of a truncated backward. Bucket s of B (k,N,H) holds the errors of outputs t+s that have
 * reached h_t. Their sum, through 1 - h², is step t's dt; buckets 0..k-2 move one step back (age + 1) through
 * Whᵀ in one GEMM of (k-1)*N rows, and bucket k-1 stops here. */
static void rnn_backward_truncated_loop(float *dT, float *dh0, float *B, float *Ab, const float *dhs,
                                        const float *dh_last, const float *hs, const float *wh, int64_t N,
                                        int64_t T, int64_t H, int64_t k) {
    const int64_t ld = T * H, NH = N * H;
    memset(B, 0, (size_t)(k * NH) * sizeof(float));
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t n = 0; n < N; n++) {
            const int64_t row = n * ld + t * H;
            float *b0 = B + n * H;
            for (int64_t i = 0; i < H; i++) b0[i] = dhs[row + i] + (dh_last && t == T - 1 ? dh_last[n * H + i] : 0.0f);
            for (int64_t i = 0; i < H; i++) {
                const float h = hs[row + i], dtanh = 1.0f - h * h;
                float sum = 0.0f;
                for (int64_t s = 0; s < k; s++) {
                    const float g = B[s * NH + n * H + i];
                    sum += g;
                    if (s < k - 1) Ab[s * NH + n * H + i] = g * dtanh;
                }
                dT[row + i] = sum * dtanh;
            }
        }
        if (k < 2) continue;
        if (t > 0) {
            rc_sgemm(false, true, (k - 1) * N, H, H, 1.0f, Ab, H, wh, H, 0.0f, B + NH, H);
        } else if (dh0) {
            for (int64_t s = 1; s < k - 1; s++) {
                for (int64_t j = 0; j < NH; j++) Ab[j] += Ab[s * NH + j];
            }
            rc_sgemm(false, true, N, H, H, 1.0f, Ab, H, wh, H, 0.0f, dh0, H);
        }
    }
    if (dh0 && k < 2) memset(dh0, 0, (size_t)NH * sizeof(float));
}

rnncore_status rnncore_rnn_backward_truncated(float *dxs, float *dh0, float *dwx, float *dwh, float *db,
                                              float *workspace, const float *dhs, const float *dh_last,
                                              const float *xs, const float *h0, const float *hs, const float *wx,
                                              const float *wh, int64_t N, int64_t T, int64_t D, int64_t H,
                                              int64_t truncation) {
    RNNCORE_FAIL_IF(!dwx || !dwh || !workspace || !dhs || !xs || !hs || !wx || !wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(truncation < 0, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_TRY(check_rnn_sizes(N, T, D, H));
    int64_t ws_count;
    RNNCORE_TRY(rnncore_rnn_backward_truncated_workspace_size(&ws_count, N, T, H, truncation));
    const int64_t NT = N * T, ld = T * H, k = rc_truncation_ages(truncation, T);
    const rc_buf outs[] = {{dxs, NT * D}, {dh0, N * H}, {dwx, D * H}, {dwh, H * H}, {db, H}, {workspace, ws_count}};
    const rc_buf ins[] = {{dhs, NT * H}, {dh_last, N * H}, {xs, NT * D}, {h0, N * H},
                          {hs, NT * H},  {wx, D * H},      {wh, H * H}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    float *dT = workspace;           /* (N,T,H): gradient before tanh, dt = dh ⊙ (1 - h²) */
    float *h_prev = dT + NT * H;     /* (N,T,H): the state each step started from */
    float *carry = h_prev + NT * H;  /* (N,H) gradient into the previous step's h; or the age buckets */

    if (k) {
        rnn_backward_truncated_loop(dT, dh0, carry, carry + k * N * H, dhs, dh_last, hs, wh, N, T, H, k);
    } else {
        if (dh_last) {
            memcpy(carry, dh_last, (size_t)(N * H) * sizeof(float));
        } else {
            memset(carry, 0, (size_t)(N * H) * sizeof(float));
        }
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t n = 0; n < N; n++) {
                const int64_t row = n * ld + t * H;
                const float *c = carry + n * H;
                for (int64_t i = 0; i < H; i++) {
                    const float h = hs[row + i];
                    dT[row + i] = (dhs[row + i] + c[i]) * (1.0f - h * h);
                }
            }
            if (t > 0) {
                rc_sgemm(false, true, N, H, H, 1.0f, dT + t * H, ld, wh, H, 0.0f, carry, H);
            } else if (dh0) {
                rc_sgemm(false, true, N, H, H, 1.0f, dT, ld, wh, H, 0.0f, dh0, H);
            }
        }
    }

    /* Everything that does not feed the recurrence runs once, over all N*T rows. */
    rc_shifted_states(h_prev, h0, hs, N, T, H);
    rc_sgemm(true, false, D, H, NT, 1.0f, xs, D, dT, H, 1.0f, dwx, H);
    rc_sgemm(true, false, H, H, NT, 1.0f, h_prev, H, dT, H, 1.0f, dwh, H);
    if (db) rc_add_column_sums(db, dT, NT, H);
    if (dxs) rc_sgemm(false, true, NT, D, H, 1.0f, dT, H, wx, H, 0.0f, dxs, D);
    return RNNCORE_OK;
}

rnncore_status rnncore_rnn_backward(float *dxs, float *dh0, float *dwx, float *dwh, float *db, float *workspace,
                                    const float *dhs, const float *dh_last, const float *xs, const float *h0,
                                    const float *hs, const float *wx, const float *wh, int64_t N, int64_t T,
                                    int64_t D, int64_t H) {
    return rnncore_rnn_backward_truncated(dxs, dh0, dwx, dwh, db, workspace, dhs, dh_last, xs, h0, hs, wx, wh, N,
                                          T, D, H, 0);
}
