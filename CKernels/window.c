/* What every recurrent cell over a window shares: the argument checks and buffer sizes, and the backward through
 * time (full, or truncated with age buckets) followed by the big GEMMs. The cells themselves (rnn.c, lstm.c, gru.c)
 * supply the forward and the element-wise backward of one step (rc_cell_kind in internal.h). */
#include "internal.h"

/* *out = a + b within [0, RNNCORE_MAX_ELEMENTS]. */
static rnncore_status rc_add(int64_t *out, int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r) || r > RNNCORE_MAX_ELEMENTS) return RNNCORE_ERR_SIZE_OVERFLOW;
    *out = r;
    return RNNCORE_OK;
}

/* The sizes of a window for a cell, checked: every size > 0, the truncation >= 0 when it matters, and every buffer,
 * product and BLAS dimension in range. */
/* Whether a window's recurrent products go through a packed Wh: when the window has several steps to spread the
 * packing over, few rows per step (the packed kernel is blocked for them; BLAS does better with many), and a Wh
 * too large to stay in the first cache levels (below that BLAS's own packing is cheap: W100's 100×100 product
 * runs near the sgemm peak). */
static bool rc_packs_recurrence(int64_t N, int64_t T, int64_t H, int64_t G) {
    return T >= 2 && N <= 256 && H * G >= 32768;
}

static rnncore_status window_dims(const rc_cell_kind *kind, rc_pass *p, const rnncore_window *w,
                                  bool uses_truncation) {
    const int64_t sizes[] = {w->N, w->T, w->D, w->H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    RNNCORE_FAIL_IF(uses_truncation && w->truncation < 0, RNNCORE_ERR_INVALID_ARGUMENT);
    const int64_t N = w->N, T = w->T, D = w->D, H = w->H, S = kind->states;
    int64_t G, NT, NH, x;
    RNNCORE_TRY(rc_mul(&G, kind->gates, H));
    RNNCORE_TRY(rc_mul(&NT, N, T));
    RNNCORE_TRY(rc_mul(&NH, N, H));
    RNNCORE_TRY(rc_mul(&x, NT, D));
    RNNCORE_TRY(rc_mul(&x, NT, G));
    RNNCORE_TRY(rc_mul(&x, D, G));
    RNNCORE_TRY(rc_mul(&x, H, G));
    RNNCORE_TRY(rc_mul(&x, S, NH));
    int64_t cache;
    RNNCORE_TRY(rc_mul3(&cache, NT, H, kind->cache_blocks));
    /* BLAS: N*T rows, the widest row stride of a (N,T,·) tensor, and G columns. */
    int64_t width = D > G ? D : G, cw;
    RNNCORE_TRY(rc_mul(&cw, kind->cache_width, H));
    width = cw > width ? cw : width;
    RNNCORE_TRY(rc_blas_dim(NT));
    RNNCORE_TRY(rc_mul(&x, T, width));
    RNNCORE_TRY(rc_blas_dim(x));

    /* The backward workspace: dA (N,T,G), for the gru dR too, the shifted states (N,T,H); then the carried state
     * gradient (S,N,H), or with k age buckets the buckets (S,k,N,H), their sums (S,N,H) and the buckets'
     * recurrent gradients (k-1,N,G). k <= T, so every product below is at most a few times N*T*G. */
    const int64_t k = rc_truncation_ages(uses_truncation ? w->truncation : 0, T);
    int64_t ws, loop;
    RNNCORE_TRY(rc_mul(&ws, NT, kind->hidden_bias ? 2 * G : G));
    RNNCORE_TRY(rc_add(&ws, ws, NT * H));
    if (k) {
        int64_t buckets, ab;
        RNNCORE_TRY(rc_mul3(&buckets, S, k + 1, NH));
        RNNCORE_TRY(rc_mul3(&ab, k - 1, N, G));
        RNNCORE_TRY(rc_add(&loop, buckets, ab));
    } else {
        loop = S * NH;
    }
    RNNCORE_TRY(rc_add(&ws, ws, loop));
    const bool packed = rc_packs_recurrence(N, T, H, G);
    RNNCORE_TRY(rc_mul(&x, k > 1 ? k - 1 : 1, N)); /* rows of the buckets' recurrent GEMM */
    RNNCORE_TRY(rc_blas_dim(x));

    *p = (rc_pass){.kind = kind, .N = N, .T = T, .D = D, .H = H, .G = G, .k = k, .cache = cache, .workspace = ws,
                   .packed = packed};
    return RNNCORE_OK;
}

rnncore_status rc_cell_sizes(const rc_cell_kind *kind, rnncore_cell_sizes *sizes, const rnncore_window *window) {
    RNNCORE_FAIL_IF(!sizes || !window, RNNCORE_ERR_NULL_POINTER);
    rc_pass p;
    RNNCORE_TRY(window_dims(kind, &p, window, true));
    *sizes = (rnncore_cell_sizes){.gates = kind->gates, .states = kind->states, .cache = p.cache,
                                  .workspace = p.workspace};
    return RNNCORE_OK;
}

rnncore_status rc_check_forward(const rc_cell_kind *kind, rc_pass *p, const float *hs, const float *cache,
                                const float *state_last, const float *xs, const float *state0,
                                const rnncore_cell_weights *weights, const rnncore_window *window) {
    RNNCORE_FAIL_IF(!window || !weights || !hs || !xs || !weights->wx || !weights->wh, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(window_dims(kind, p, window, false));
    RNNCORE_FAIL_IF(p->cache > 0 && !cache, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(!kind->hidden_bias && weights->b_hidden, RNNCORE_ERR_INVALID_ARGUMENT);
    const int64_t NT = p->N * p->T, G = p->G, SNH = kind->states * p->N * p->H;
    /* state_last may be the very buffer state0 (read at t = 0, written at the end): the stateful pattern. The
     * window's own outputs must not overlap state0 either way. */
    const float *state0_distinct = state_last == state0 ? NULL : state0;
    const rc_buf outs[] = {{hs, NT * p->H}, {cache, p->cache}, {state_last, SNH}};
    const rc_buf ins[] = {{xs, NT * p->D}, {state0_distinct, SNH}, {weights->wx, p->D * G},
                          {weights->wh, p->H * G}, {weights->b, G}, {weights->b_hidden, G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    const rc_buf initial[] = {{state0, SNH}};
    RNNCORE_TRY(rc_check_aliasing(outs, 2, initial, RC_COUNT(initial)));
    p->xs = xs;
    p->state0 = state0;
    p->cache_in = cache;
    p->wx = weights->wx;
    p->wh = weights->wh;
    p->b = weights->b;
    p->b_hidden = weights->b_hidden;
    return RNNCORE_OK;
}

rnncore_status rc_check_backward(const rc_cell_kind *kind, rc_pass *p, const float *dxs, const float *dstate0,
                                 const rnncore_cell_gradients *gradients, const float *workspace, const float *dhs,
                                 const float *dstate_last, const float *xs, const float *state0, const float *hs,
                                 const float *cache, const rnncore_cell_weights *weights,
                                 const rnncore_window *window) {
    RNNCORE_FAIL_IF(!window || !weights || !gradients || !workspace || !dhs || !xs || !hs || !weights->wx ||
                        !weights->wh || !gradients->dwx || !gradients->dwh,
                    RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(window_dims(kind, p, window, true));
    RNNCORE_FAIL_IF(p->cache > 0 && !cache, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(!kind->hidden_bias && (weights->b_hidden || gradients->db_hidden), RNNCORE_ERR_INVALID_ARGUMENT);
    const int64_t NT = p->N * p->T, D = p->D, H = p->H, G = p->G, SNH = kind->states * p->N * H;
    const rc_buf outs[] = {{dxs, NT * D},          {dstate0, SNH},      {gradients->dwx, D * G},
                           {gradients->dwh, H * G}, {gradients->db, G}, {gradients->db_hidden, G},
                           {workspace, p->workspace}};
    const rc_buf ins[] = {{dhs, NT * H},        {dstate_last, SNH},    {xs, NT * D},
                          {state0, SNH},        {hs, NT * H},          {cache, p->cache},
                          {weights->wx, D * G}, {weights->wh, H * G},  {weights->b, G},
                          {weights->b_hidden, G}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    p->xs = xs;
    p->state0 = state0;
    p->hs = hs;
    p->cache_in = cache;
    p->wx = weights->wx;
    p->wh = weights->wh;
    p->b = weights->b;
    p->b_hidden = weights->b_hidden;
    return RNNCORE_OK;
}

/* ---- the recurrent products ---------------------------------------------------------------------------- */

void rc_pack_forward(rc_pass *p) {
    if (!p->packed) return;
    float *packed = rc_scratch(rc_packed_floats(p->H, p->G));
    if (!packed) return; /* no memory for the copy: the BLAS path, same results within rounding */
    rc_pack_b(packed, p->wh, p->G, p->H, p->G, false);
    p->wh_packed = packed;
}

void rc_recurrent_forward(const rc_pass *p, float *u, int64_t ldu, const float *h_prev, int64_t ldh, int64_t rows) {
    if (p->wh_packed) {
        rc_packed_gemm(u, ldu, h_prev, ldh, p->wh_packed, rows, p->G, p->H, true);
    } else {
        rc_sgemm(false, false, rows, p->G, p->H, 1.0f, h_prev, ldh, p->wh, p->G, 1.0f, u, ldu);
    }
}

/* d (rows,H) at row stride ldd = (or += when accumulate) dR (rows,G) at row stride ldr · Whᵀ. */
static void recurrent_backward(const rc_pass *p, float *d, int64_t ldd, const float *dr, int64_t ldr, int64_t rows,
                               bool accumulate) {
    if (p->wh_packed) {
        rc_packed_gemm(d, ldd, dr, ldr, p->wh_packed, rows, p->H, p->G, accumulate);
    } else {
        rc_sgemm(false, true, rows, p->H, p->G, 1.0f, dr, ldr, p->wh, p->G, accumulate ? 1.0f : 0.0f, d, ldd);
    }
}

/* ---- the time loop ----------------------------------------------------------------------------------------- */

/* Full backpropagation: one carried state gradient (S,N,H), dstate_last at first. At each step the cell turns it
 * (plus dhs[:,t]) into dA, dR and the element-wise part of the previous state's gradient, in place; the recurrent
 * GEMM then adds dR·Whᵀ to the h plane (onto the element-wise part for the gru, over stale values otherwise). */
static void backward_full(const rc_pass *p, float *dA, float *dR, float *carry, float *dstate0, const float *dhs,
                          const float *dstate_last) {
    const int64_t N = p->N, T = p->T, H = p->H, G = p->G, NH = N * H, S = p->kind->states, ldg = T * G;
    const float beta = p->kind->hidden_bias ? 1.0f : 0.0f;
    if (dstate_last) {
        memcpy(carry, dstate_last, (size_t)(S * NH) * sizeof(float));
    } else {
        memset(carry, 0, (size_t)(S * NH) * sizeof(float));
    }
    for (int64_t t = T - 1; t >= 0; t--) {
        p->kind->step_backward(p, t, p->kind->hidden_bias ? dA + t * G : NULL, dR + t * G, ldg, carry, NH, carry, NH,
                               dhs + t * H, T * H);
        if (t > 0) {
            recurrent_backward(p, carry, H, dR + t * G, ldg, N, beta != 0.0f);
        } else if (dstate0) {
            memcpy(dstate0, carry, (size_t)(S * NH) * sizeof(float));
            recurrent_backward(p, dstate0, H, dR, ldg, N, beta != 0.0f);
        }
    }
}

/* Truncated backpropagation with k = truncation age buckets. Bucket s of plane q, B + (q*k + s)*NH, holds the
 * errors of the outputs t+s that have reached step t's output state; bucket 0 is loaded with output t's own error.
 * The cell backward is linear, so step t's dA and dR come from the buckets' sum. Buckets 0..k-2 also move one step
 * back (age + 1): each goes through the cell on its own, its element-wise part lands in the next bucket and one
 * GEMM of (k-1)*N rows adds their dR·Whᵀ to the h planes. Bucket k-1 stops at step t. After step 0 the buckets
 * 1..k-1 hold exactly what flows into the initial state. */
static void backward_truncated(const rc_pass *p, float *dA, float *dR, float *work, float *dstate0,
                               const float *dhs, const float *dstate_last) {
    const int64_t N = p->N, T = p->T, H = p->H, G = p->G, NH = N * H, S = p->kind->states, ldg = T * G, k = p->k;
    const float beta = p->kind->hidden_bias ? 1.0f : 0.0f;
    float *B = work, *sum = B + S * k * NH, *Ab = sum + S * NH; /* (S,k,N,H), (S,N,H), (k-1,N,G) */
    memset(B, 0, (size_t)(S * k * NH) * sizeof(float));
    for (int64_t t = T - 1; t >= 0; t--) {
        const bool last = t == T - 1;
        for (int64_t q = 0; q < S; q++) {
            float *b0 = B + q * k * NH;
            const float *from_last = last && dstate_last ? dstate_last + q * NH : NULL;
            for (int64_t n = 0; n < N; n++) {
                const float *d = dhs + (n * T + t) * H;
                float *row = b0 + n * H;
                const float *l = from_last ? from_last + n * H : NULL;
                for (int64_t i = 0; i < H; i++) row[i] = (q == 0 ? d[i] : 0.0f) + (l ? l[i] : 0.0f);
            }
            float *sq = sum + q * NH;
            memcpy(sq, b0, (size_t)NH * sizeof(float));
            for (int64_t s = 1; s < k; s++) {
                const float *bs = b0 + s * NH;
                for (int64_t j = 0; j < NH; j++) sq[j] += bs[j];
            }
        }
        p->kind->step_backward(p, t, p->kind->hidden_bias ? dA + t * G : NULL, dR + t * G, ldg, NULL, 0, sum, NH, NULL, 0);
        if (k < 2) continue;
        /* Descending, so that bucket s+1 has been read before bucket s's element-wise part moves into it. */
        for (int64_t s = k - 2; s >= 0; s--) {
            p->kind->step_backward(p, t, NULL, Ab + s * N * G, G, B + (s + 1) * NH, k * NH, B + s * NH, k * NH, NULL,
                                   0);
        }
        recurrent_backward(p, B + NH, H, Ab, G, (k - 1) * N, beta != 0.0f);
    }
    /* Leaving step 0: what buckets 1..k-1 now carry is the gradient of the initial state. */
    if (dstate0) {
        memset(dstate0, 0, (size_t)(S * NH) * sizeof(float));
        for (int64_t q = 0; q < S; q++) {
            for (int64_t s = 1; s < k; s++) {
                const float *bs = B + (q * k + s) * NH;
                float *d0 = dstate0 + q * NH;
                for (int64_t j = 0; j < NH; j++) d0[j] += bs[j];
            }
        }
    }
}

void rc_window_backward(const rc_pass *pass, float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                        float *workspace, const float *dhs, const float *dstate_last) {
    rc_pass packed_pass = *pass;
    float *wt = pass->packed ? rc_scratch(rc_packed_floats(pass->G, pass->H)) : NULL;
    if (wt) { /* Whᵀ, packed */
        rc_pack_b(wt, pass->wh, pass->G, pass->G, pass->H, true);
        packed_pass.wh_packed = wt;
    }
    const rc_pass *p = &packed_pass;
    const int64_t N = p->N, T = p->T, D = p->D, H = p->H, G = p->G, NT = N * T;
    float *dA = workspace;                           /* (N,T,G) */
    float *dR = p->kind->hidden_bias ? dA + NT * G : dA;     /* (N,T,G): the gru's dU, else dA itself */
    float *h_prev = dR + NT * G;                     /* (N,T,H): the h each step started from */
    float *rest = h_prev + NT * H;                   /* the carry, or the age buckets */
    if (p->k) {
        backward_truncated(p, dA, dR, rest, dstate0, dhs, dstate_last);
    } else {
        backward_full(p, dA, dR, rest, dstate0, dhs, dstate_last);
    }

    /* Everything that does not feed the recurrence runs once, over all N*T rows. */
    rc_shifted_states(h_prev, p->state0, p->hs, N, T, H);
    rc_sgemm(true, false, D, G, NT, 1.0f, p->xs, D, dA, G, 1.0f, gradients->dwx, G);
    rc_sgemm(true, false, H, G, NT, 1.0f, h_prev, H, dR, G, 1.0f, gradients->dwh, G);
    if (gradients->db) rc_add_column_sums(gradients->db, dA, NT, G);
    if (gradients->db_hidden) rc_add_column_sums(gradients->db_hidden, dR, NT, G);
    if (dxs) rc_sgemm(false, true, NT, D, G, 1.0f, dA, G, p->wx, G, 0.0f, dxs, D);
}
