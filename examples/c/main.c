/*
 * main.c — train a tiny RNN language model with the RNNCore C API.
 *
 *   ids (N,T) → embedding → xs (N,T,D) → rnn_forward → hs (N,T,H) → affine → logits (N*T,V)
 *             → softmax_cross_entropy(targets = the next token) → loss
 * then the backward pass through all four kernels and an SGD step. The corpus is a repeating pattern, so the
 * loss must go down; the program exits non-zero if it does not (it doubles as a test).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnncore.h"

enum { N = 2, T = 8, V = 6, D = 5, H = 12, M = N * T, STEPS = 30 };

#define TRY(call)                                                                          \
    do {                                                                                   \
        rnncore_status s_ = (call);                                                        \
        if (s_ != RNNCORE_OK) {                                                            \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, rnncore_status_string(s_)); \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

static float frand(unsigned *state, float scale) {  /* small LCG: uniform in [-scale, scale) */
    *state = *state * 1664525u + 1013904223u;
    return scale * ((float)(*state >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
}

int main(void) {
    printf("RNNCore %s (ABI %d)\n", rnncore_version(), rnncore_abi_version());

    /* parameters and their gradients */
    static float we[V * D], wx[D * H], wh[H * H], bh[H], wa[H * V], ba[V];
    static float dwe[V * D], dwx[D * H], dwh[H * H], dbh[H], dwa[H * V], dba[V];
    float *params[] = {we, wx, wh, bh, wa, ba}, *grads[] = {dwe, dwx, dwh, dbh, dwa, dba};
    const int64_t counts[] = {V * D, D * H, H * H, H, H * V, V};
    unsigned seed = 12345u;
    for (int i = 0; i < V * D; i++) we[i] = frand(&seed, 0.5f);
    for (int i = 0; i < D * H; i++) wx[i] = frand(&seed, 1.0f / sqrtf(D));
    for (int i = 0; i < H * H; i++) wh[i] = frand(&seed, 1.0f / sqrtf(H));
    for (int i = 0; i < H * V; i++) wa[i] = frand(&seed, 1.0f / sqrtf(H));

    /* data: stream n reads the pattern 0 1 2 3 4 5 0 1 ... from offset 3n; the target is the next token */
    int32_t ids[M], targets[M];
    for (int n = 0; n < N; n++)
        for (int t = 0; t < T; t++) {
            ids[n * T + t] = (3 * n + t) % V;
            targets[n * T + t] = (3 * n + t + 1) % V;
        }

    /* activations and scratch */
    static float xs[M * D], hs[M * H], logits[M * V], dlogits[M * V], dhs[M * H], dxs[M * D];
    const rnncore_window window = {.N = N, .T = T, .D = D, .H = H, .truncation = 0}; /* 0: the whole window */
    const rnncore_cell_weights weights = {.wx = wx, .wh = wh, .b = bh, .b_hidden = NULL};
    const rnncore_cell_gradients gradients = {.dwx = dwx, .dwh = dwh, .db = dbh, .db_hidden = NULL};
    rnncore_cell_sizes sizes;
    TRY(rnncore_rnn_sizes(&sizes, &window)); /* the tanh RNN needs no cache */
    float *workspace = malloc((size_t)sizes.workspace * sizeof *workspace);
    if (!workspace) return 2;

    const float lr = 0.5f;
    double first = 0, loss = 0;
    for (int step = 0; step <= STEPS; step++) {
        /* forward */
        TRY(rnncore_embedding_forward(xs, ids, we, M, V, D));
        TRY(rnncore_rnn_forward(hs, NULL, NULL, xs, NULL, &weights, &window));
        TRY(rnncore_affine_forward(logits, hs, wa, ba, M, H, V));
        TRY(rnncore_softmax_cross_entropy(&loss, NULL, dlogits, logits, targets, M, V, RNNCORE_NO_IGNORE_INDEX,
                                          1.0f));
        if (step == 0) first = loss;
        if (step % 10 == 0) printf("step %2d  loss %.4f  perplexity %.3f\n", step, loss, exp(loss));
        if (step == STEPS) break;

        /* backward: zero the parameter gradients (kernels accumulate), then chain the layers in reverse */
        for (int i = 0; i < 6; i++) memset(grads[i], 0, (size_t)counts[i] * sizeof(float));
        TRY(rnncore_affine_backward(dhs, dwa, dba, dlogits, hs, wa, M, H, V));
        TRY(rnncore_rnn_backward(dxs, NULL, &gradients, workspace, dhs, NULL, xs, NULL, hs, NULL, &weights, &window));
        TRY(rnncore_embedding_backward(dwe, dxs, ids, M, V, D));

        double norm = 0;
        TRY(rnncore_clip_grad_norm(&norm, grads, counts, 6, 5.0));
        for (int i = 0; i < 6; i++) TRY(rnncore_sgd_step(params[i], grads[i], counts[i], lr));
    }
    free(workspace);
    printf("loss %.4f -> %.4f (uniform guess: %.4f)\n", first, loss, log((double)V));
    if (!(loss < first)) {
        fprintf(stderr, "FAIL: the loss did not go down\n");
        return 1;
    }
    return 0;
}
