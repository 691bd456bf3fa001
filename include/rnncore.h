/*
 * rnncore.h — the stable C ABI of RNNCore: CPU kernels for recurrent neural network language models.
 *
 * Conventions (read these once; every function below follows them)
 * ----------------------------------------------------------------
 * Letters:  N batch size        T time steps       D input (embedding) size
 *           H hidden size       V vocabulary size   M rows (usually N*T)
 *           O output size of an affine layer
 * Layout:   row-major float32, contiguous. A sequence tensor (N,T,D) holds x[n][t][d] at (n*T + t)*D + d,
 *           the batch-major layout of the classic TimeRNN layer. Weights multiply from the right:
 *           y = x·W with W shaped (in, out).
 * Memory:   every buffer is owned by the caller. Kernels keep no state, allocate nothing, and are reentrant.
 *           Functions that need scratch memory take a `workspace` argument sized by a `*_workspace_size` query.
 * Outputs:  outputs come first, then const inputs, then sizes. Gradients of parameters (dwx, dwh, db, dw, ...)
 *           are ACCUMULATED (+=) so that several steps or layers can add into one buffer; zeroing them is the
 *           caller's job. Gradients of activations (dx, dh_prev, ...) are OVERWRITTEN. Each comment says which.
 * Optional: a pointer documented "may be NULL" can be NULL: a NULL bias means "no bias", a NULL initial state
 *           means zeros, a NULL output gradient means "not needed".
 * Sizes:    int64_t, strictly positive. Products that overflow int64, the address space, or the 32-bit
 *           integer dimensions of the BLAS library give RNNCORE_ERR_SIZE_OVERFLOW.
 * Status:   every fallible function returns rnncore_status; RNNCORE_OK is 0, errors are negative, and
 *           rnncore_status_string() explains each. On an argument error (any status but RNNCORE_ERR_NON_FINITE)
 *           nothing has been written to any output.
 * Aliasing: outputs must not overlap inputs unless a comment allows it (RNNCORE_ERR_ALIASING otherwise).
 * Non-finite: float inputs (weights, activations, gradients, accumulated buffers) are not screened for NaN or
 *           ±inf: such a call returns RNNCORE_OK and the values go through the IEEE arithmetic into the outputs
 *           (a NaN reaches every output computed from it; an infinity may saturate, tanh(±inf) = ±1, or turn
 *           into NaN). The only results reported as RNNCORE_ERR_NON_FINITE are the loss of
 *           rnncore_softmax_cross_entropy and the norm of rnncore_clip_grad_norm. A scalar hyper-parameter
 *           (lr, Adam's betas, eps and weight decay, sgemm's alpha and beta, dloss) that is NaN or ±inf is
 *           RNNCORE_ERR_INVALID_ARGUMENT; max_norm is the one exception (see rnncore_clip_grad_norm).
 */
#ifndef RNNCORE_H
#define RNNCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions --------------------------------------------------------------------------------------------- */

#define RNNCORE_VERSION_MAJOR 0
#define RNNCORE_VERSION_MINOR 1
#define RNNCORE_VERSION_PATCH 0
#define RNNCORE_VERSION_NUMBER (RNNCORE_VERSION_MAJOR * 10000 + RNNCORE_VERSION_MINOR * 100 + RNNCORE_VERSION_PATCH)
/* The ABI version changes only on an incompatible change to this header; it equals the library's SOVERSION. */
#define RNNCORE_ABI_VERSION 0

/* ---- export and deprecation macros ------------------------------------------------------------------------ */

#if defined(_WIN32) && defined(RNNCORE_BUILD_SHARED)
#  define RNNCORE_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#  define RNNCORE_API __attribute__((visibility("default")))
#else
#  define RNNCORE_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define RNNCORE_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#  define RNNCORE_DEPRECATED(msg)
#endif

/* ---- status codes (values are stable; new ones are only appended) ----------------------------------------- */

typedef enum rnncore_status {
    RNNCORE_OK = 0,
    RNNCORE_ERR_NULL_POINTER = -1,       /* a required pointer argument was NULL */
    RNNCORE_ERR_INVALID_SIZE = -2,       /* a size was zero or negative */
    RNNCORE_ERR_SIZE_OVERFLOW = -3,      /* a product of sizes overflows int64, memory, or BLAS's 32-bit ints */
    RNNCORE_ERR_INVALID_ARGUMENT = -4,   /* a scalar argument is out of its domain (negative rate, NaN, ...) */
    RNNCORE_ERR_INDEX_OUT_OF_RANGE = -5, /* a token id or target lies outside [0, V) */
    RNNCORE_ERR_NON_FINITE = -6,         /* a result (loss, gradient norm) is NaN or infinite */
    RNNCORE_ERR_ALIASING = -7,           /* an output buffer overlaps an input it must not overlap */
} rnncore_status;

/* A static, human-readable English description of a status; never NULL (unknown codes get a generic text). */
RNNCORE_API const char *rnncore_status_string(rnncore_status status);

/* "MAJOR.MINOR.PATCH" of the library actually loaded (compare with the macros to detect a mismatch). */
RNNCORE_API const char *rnncore_version(void);
/* RNNCORE_VERSION_NUMBER of the library actually loaded. */
RNNCORE_API int rnncore_version_number(void);
/* RNNCORE_ABI_VERSION of the library actually loaded. */
RNNCORE_API int rnncore_abi_version(void);

/* ---- tanh RNN: one step ------------------------------------------------------------------------------------
 * h_next = tanh(x·Wx + h_prev·Wh + b), the classic RNN layer. */

RNNCORE_API rnncore_status rnncore_rnn_step_forward(
    float *h_next,        /* (N,H) out, overwritten */
    const float *x,       /* (N,D) */
    const float *h_prev,  /* (N,H); may be NULL for zeros */
    const float *wx,      /* (D,H) */
    const float *wh,      /* (H,H) */
    const float *b,       /* (H); may be NULL */
    int64_t N, int64_t D, int64_t H);

/* Backward of one step. dt = dh_next ⊙ (1 - h_next²) is written to `workspace`, then
 * dx = dt·Wxᵀ, dh_prev = dt·Whᵀ (overwritten), dWx += xᵀ·dt, dWh += h_prevᵀ·dt, db += Σ_n dt. */
RNNCORE_API rnncore_status rnncore_rnn_step_backward(
    float *dx,            /* (N,D) out, overwritten; may be NULL */
    float *dh_prev,       /* (N,H) out, overwritten; may be NULL */
    float *dwx,           /* (D,H) accumulated */
    float *dwh,           /* (H,H) accumulated */
    float *db,            /* (H) accumulated; may be NULL */
    float *workspace,     /* (N,H) scratch, see rnncore_rnn_step_backward_workspace_size */
    const float *dh_next, /* (N,H) gradient of the loss with respect to h_next */
    const float *x,       /* (N,D) the forward input */
    const float *h_prev,  /* (N,H) the forward input; may be NULL for zeros */
    const float *h_next,  /* (N,H) the forward output */
    const float *wx,      /* (D,H) */
    const float *wh,      /* (H,H) */
    int64_t N, int64_t D, int64_t H);

/* Number of floats rnncore_rnn_step_backward needs as workspace (N*H). */
RNNCORE_API rnncore_status rnncore_rnn_step_backward_workspace_size(int64_t *count, int64_t N, int64_t H);

/* ---- tanh RNN: a whole window of T steps (TimeRNN) ---------------------------------------------------------
 * hs[:,t] = tanh(xs[:,t]·Wx + hs[:,t-1]·Wh + b), hs[:,-1] = h0. The input projection of all N*T rows is one
 * GEMM; only h·Wh stays in the time loop. Stateful use: pass the previous window's last state as h0. */

RNNCORE_API rnncore_status rnncore_rnn_forward(
    float *hs,            /* (N,T,H) out, overwritten: every hidden state (backward needs them) */
    float *h_last,        /* (N,H) out, overwritten with hs[:,T-1]; may be NULL; may equal h0 (carry the state) */
    const float *xs,      /* (N,T,D) */
    const float *h0,      /* (N,H); may be NULL for zeros */
    const float *wx,      /* (D,H) */
    const float *wh,      /* (H,H) */
    const float *b,       /* (H); may be NULL */
    int64_t N, int64_t T, int64_t D, int64_t H);

/* Backpropagation through time over the window. The per-step loop computes only dt = dh ⊙ (1-h²) and
 * dh_prev = dt·Whᵀ; dX = dT·Wxᵀ, dWx += Xᵀ·dT, dWh += H_prevᵀ·dT run as single GEMMs after the loop.
 * Gradients are cut at the window's start except through dh0, which receives ∂L/∂h0. */
RNNCORE_API rnncore_status rnncore_rnn_backward(
    float *dxs,           /* (N,T,D) out, overwritten; may be NULL */
    float *dh0,           /* (N,H) out, overwritten; may be NULL */
    float *dwx,           /* (D,H) accumulated */
    float *dwh,           /* (H,H) accumulated */
    float *db,            /* (H) accumulated; may be NULL */
    float *workspace,     /* see rnncore_rnn_backward_workspace_size */
    const float *dhs,     /* (N,T,H) gradient of the loss with respect to every hs */
    const float *dh_last, /* (N,H) extra gradient flowing into hs[:,T-1] from later; may be NULL */
    const float *xs,      /* (N,T,D) the forward input */
    const float *h0,      /* (N,H) the forward initial state; may be NULL for zeros */
    const float *hs,      /* (N,T,H) the forward output */
    const float *wx,      /* (D,H) */
    const float *wh,      /* (H,H) */
    int64_t N, int64_t T, int64_t D, int64_t H);

/* Number of floats rnncore_rnn_backward needs as workspace (2*N*T*H + N*H). */
RNNCORE_API rnncore_status rnncore_rnn_backward_workspace_size(int64_t *count, int64_t N, int64_t T, int64_t H);

/* ---- truncated backpropagation inside the window ----------------------------------------------------------
 * The same as rnncore_rnn_backward, except that the error of each output hs[:,t] flows back through at most
 * `truncation` steps: it reaches the pre-activations of steps t, t-1, ..., t-truncation+1 and no further
 * (dh_last counts as an error of step T-1). With 1 <= truncation < T, dh0 receives only the errors still
 * inside their limit when they leave step 0, those of outputs t <= truncation-2. truncation = 0, or
 * truncation >= T, is full backpropagation through the window, dh0 included, and gives exactly the results of
 * rnncore_rnn_backward. Cost: the recurrent GEMM of each step grows to truncation-1 times N rows. */
RNNCORE_API rnncore_status rnncore_rnn_backward_truncated(
    float *dxs, float *dh0, float *dwx, float *dwh, float *db, float *workspace,
    const float *dhs, const float *dh_last, const float *xs, const float *h0, const float *hs,
    const float *wx, const float *wh, int64_t N, int64_t T, int64_t D, int64_t H,
    int64_t truncation); /* >= 0 */

/* Number of floats rnncore_rnn_backward_truncated needs as workspace. */
RNNCORE_API rnncore_status rnncore_rnn_backward_truncated_workspace_size(int64_t *count, int64_t N, int64_t T,
                                                                          int64_t H, int64_t truncation);

/* ---- LSTM: one step ------------------------------------------------------------------------------------------
 * The four gates share one fused GEMM over concatenated weights, in PyTorch's order i, f, g, o along the 4H
 * columns: a = x·Wx + h_prev·Wh + b with Wx (D,4H), Wh (H,4H), b (4H), then
 *   i = σ(a[0:H]), f = σ(a[H:2H]), g = tanh(a[2H:3H]), o = σ(a[3H:4H]),
 *   c_next = f ⊙ c_prev + i ⊙ g,  h_next = o ⊙ tanh(c_next).
 * (PyTorch's weight_ih (4H,D) is Wxᵀ, weight_hh (4H,H) is Whᵀ, and bias_ih + bias_hh is b.) */

RNNCORE_API rnncore_status rnncore_lstm_step_forward(
    float *h_next,        /* (N,H) out, overwritten */
    float *c_next,        /* (N,H) out, overwritten */
    float *gates,         /* (N,4H) out, overwritten with the activated gates i, f, g, o (backward needs them) */
    const float *x,       /* (N,D) */
    const float *h_prev,  /* (N,H); may be NULL for zeros */
    const float *c_prev,  /* (N,H); may be NULL for zeros */
    const float *wx,      /* (D,4H) */
    const float *wh,      /* (H,4H) */
    const float *b,       /* (4H); may be NULL */
    int64_t N, int64_t D, int64_t H);

/* Backward of one step: dx = dA·Wxᵀ, dh_prev = dA·Whᵀ, dc_prev (overwritten); dWx += xᵀ·dA, dWh += h_prevᵀ·dA,
 * db += Σ_n dA, where dA (N,4H), the gradient of the gate pre-activations, is written to `workspace`. */
RNNCORE_API rnncore_status rnncore_lstm_step_backward(
    float *dx,            /* (N,D) out, overwritten; may be NULL */
    float *dh_prev,       /* (N,H) out, overwritten; may be NULL */
    float *dc_prev,       /* (N,H) out, overwritten; may be NULL */
    float *dwx,           /* (D,4H) accumulated */
    float *dwh,           /* (H,4H) accumulated */
    float *db,            /* (4H) accumulated; may be NULL */
    float *workspace,     /* see rnncore_lstm_step_backward_workspace_size */
    const float *dh_next, /* (N,H) gradient of the loss with respect to h_next */
    const float *dc_next, /* (N,H) gradient with respect to c_next from later steps; may be NULL */
    const float *x,       /* (N,D) the forward input */
    const float *h_prev,  /* (N,H) the forward input; may be NULL for zeros */
    const float *c_prev,  /* (N,H) the forward input; may be NULL for zeros */
    const float *c_next,  /* (N,H) the forward output */
    const float *gates,   /* (N,4H) the forward output */
    const float *wx,      /* (D,4H) */
    const float *wh,      /* (H,4H) */
    int64_t N, int64_t D, int64_t H);

/* Number of floats rnncore_lstm_step_backward needs as workspace (4*N*H). */
RNNCORE_API rnncore_status rnncore_lstm_step_backward_workspace_size(int64_t *count, int64_t N, int64_t H);

/* ---- LSTM: a whole window of T steps -----------------------------------------------------------------------
 * The step above for t = 0..T-1 from (h0, c0). The input projection of all N*T rows is one GEMM; the time loop
 * holds one (N,H)x(H,4H) GEMM and one fused pass over the gates. */

RNNCORE_API rnncore_status rnncore_lstm_forward(
    float *hs,            /* (N,T,H) out, overwritten: every hidden state */
    float *cs,            /* (N,T,H) out, overwritten: every cell state (backward needs them) */
    float *gates,         /* (N,T,4H) out, overwritten: every activated gate (backward needs them) */
    float *h_last,        /* (N,H) out, overwritten with hs[:,T-1]; may be NULL; may equal h0 */
    float *c_last,        /* (N,H) out, overwritten with cs[:,T-1]; may be NULL; may equal c0 */
    const float *xs,      /* (N,T,D) */
    const float *h0,      /* (N,H); may be NULL for zeros */
    const float *c0,      /* (N,H); may be NULL for zeros */
    const float *wx,      /* (D,4H) */
    const float *wh,      /* (H,4H) */
    const float *b,       /* (4H); may be NULL */
    int64_t N, int64_t T, int64_t D, int64_t H);

/* Backpropagation through time over the window, with the truncation rule of rnncore_rnn_backward_truncated
 * (truncation = 0: the whole window). dh0 and dc0 receive the gradients flowing into the initial state. */
RNNCORE_API rnncore_status rnncore_lstm_backward(
    float *dxs,           /* (N,T,D) out, overwritten; may be NULL */
    float *dh0,           /* (N,H) out, overwritten; may be NULL */
    float *dc0,           /* (N,H) out, overwritten; may be NULL */
    float *dwx,           /* (D,4H) accumulated */
    float *dwh,           /* (H,4H) accumulated */
    float *db,            /* (4H) accumulated; may be NULL */
    float *workspace,     /* see rnncore_lstm_backward_workspace_size */
    const float *dhs,     /* (N,T,H) gradient of the loss with respect to every hs */
    const float *dh_last, /* (N,H) extra gradient into hs[:,T-1] from later; may be NULL */
    const float *dc_last, /* (N,H) extra gradient into cs[:,T-1] from later; may be NULL */
    const float *xs,      /* (N,T,D) the forward input */
    const float *h0,      /* (N,H) the forward initial state; may be NULL for zeros */
    const float *c0,      /* (N,H) the forward initial cell state; may be NULL for zeros */
    const float *hs,      /* (N,T,H) the forward output */
    const float *cs,      /* (N,T,H) the forward output */
    const float *gates,   /* (N,T,4H) the forward output */
    const float *wx,      /* (D,4H) */
    const float *wh,      /* (H,4H) */
    int64_t N, int64_t T, int64_t D, int64_t H,
    int64_t truncation);  /* >= 0; 0 = no limit inside the window */

/* Number of floats rnncore_lstm_backward needs as workspace. */
RNNCORE_API rnncore_status rnncore_lstm_backward_workspace_size(int64_t *count, int64_t N, int64_t T, int64_t H,
                                                                 int64_t truncation);

/* ---- embedding (TimeEmbedding) ----------------------------------------------------------------------------- */

/* out[m] = W[ids[m]]. Every id is checked before anything is written. */
RNNCORE_API rnncore_status rnncore_embedding_forward(
    float *out,           /* (M,D) out, overwritten */
    const int32_t *ids,   /* (M) values in [0, V) */
    const float *w,       /* (V,D) */
    int64_t M, int64_t V, int64_t D);

/* dW[ids[m]] += dout[m], in increasing m: deterministic, repeated ids add up. */
RNNCORE_API rnncore_status rnncore_embedding_backward(
    float *dw,            /* (V,D) accumulated */
    const float *dout,    /* (M,D) */
    const int32_t *ids,   /* (M) values in [0, V) */
    int64_t M, int64_t V, int64_t D);

/* ---- affine (TimeAffine) ---------------------------------------------------------------------------------- */

/* y = x·W + b. */
RNNCORE_API rnncore_status rnncore_affine_forward(
    float *y,             /* (M,O) out, overwritten */
    const float *x,       /* (M,D) */
    const float *w,       /* (D,O) */
    const float *b,       /* (O); may be NULL */
    int64_t M, int64_t D, int64_t O);

/* dx = dy·Wᵀ (overwritten), dW += xᵀ·dy, db += Σ_m dy. */
RNNCORE_API rnncore_status rnncore_affine_backward(
    float *dx,            /* (M,D) out, overwritten; may be NULL */
    float *dw,            /* (D,O) accumulated */
    float *db,            /* (O) accumulated; may be NULL */
    const float *dy,      /* (M,O) */
    const float *x,       /* (M,D) */
    const float *w,       /* (D,O) */
    int64_t M, int64_t D, int64_t O);

/* ---- softmax and cross-entropy (TimeSoftmaxWithLoss) ------------------------------------------------------ */

/* Pass as ignore_index when no target is to be skipped: every target must then lie in [0, V). */
#define RNNCORE_NO_IGNORE_INDEX INT32_MIN

/* Mean cross-entropy of softmax(logits) against the targets, in one fused pass per row (max, log-sum-exp,
 * loss, gradient):
 *
 *   *loss      = (1/K) Σ_{counted m} (logsumexp(logits[m]) - logits[m][targets[m]]),  accumulated in double
 *   dlogits[m] = (softmax(logits[m]) - onehot(targets[m])) * dloss / K  for counted rows, 0 for skipped rows
 *
 * A row whose target equals ignore_index is skipped; every other target must lie in [0, V) (checked before any
 * output is written). K, the number of counted rows, goes to *count when count is not NULL; with K = 0 the loss
 * is 0 and the gradient is all zeros. dlogits may be NULL (loss only) or may equal logits (the gradient then
 * overwrites the logits in place); any other overlap is an aliasing error. If the loss is not finite the
 * outputs are still written and RNNCORE_ERR_NON_FINITE is returned: a NaN or +inf logit in a counted row, or a
 * -inf target logit, does that. A -inf logit elsewhere gets a vanishing probability (the exponential is clamped at
 * e^-87 ≈ 1.6e-38) and leaves the loss finite. Each row's loss is formed as (max - z_target) + log Σ e^(z - max),
 * accurate for logits of any magnitude (1e30 included). dloss must be finite (RNNCORE_ERR_INVALID_ARGUMENT). */
RNNCORE_API rnncore_status rnncore_softmax_cross_entropy(
    double *loss,           /* out: mean loss over counted rows */
    int64_t *count,         /* out: K, the number of counted rows; may be NULL */
    float *dlogits,         /* (M,V) out, overwritten; may be NULL; may equal logits */
    const float *logits,    /* (M,V) */
    const int32_t *targets, /* (M) */
    int64_t M, int64_t V,
    int32_t ignore_index,   /* target value to skip, or RNNCORE_NO_IGNORE_INDEX */
    float dloss);           /* upstream gradient of the mean loss, usually 1 */

/* probs[m] = softmax(logits[m]), stable (max subtracted). probs may equal logits (in place). No status reports
 * non-finite logits: a row holding NaN or +inf (or only -inf) comes out NaN, with RNNCORE_OK. */
RNNCORE_API rnncore_status rnncore_softmax_forward(
    float *probs,           /* (M,V) out, overwritten; may equal logits */
    const float *logits,    /* (M,V) */
    int64_t M, int64_t V);

/* ---- matrix product ---------------------------------------------------------------------------------------- */

/* C = alpha·op(A)·op(B) + beta·C, row-major, through the BLAS the library was built with (the GEMM every kernel
 * above uses; benchmarks measure its peak with this). op(A) is (M,K): A is (M,K), or (K,M) when trans_a != 0;
 * op(B) is (K,N): B is (K,N), or (N,K) when trans_b != 0. C is (M,N) and must not overlap A or B.
 * alpha and beta must be finite (RNNCORE_ERR_INVALID_ARGUMENT); with beta == 0 whatever C held, NaN included,
 * is discarded. */
RNNCORE_API rnncore_status rnncore_sgemm(
    float *c,               /* (M,N) out: overwritten when beta == 0, else scaled and accumulated */
    const float *a,         /* (M,K) or (K,M) */
    const float *b,         /* (K,N) or (N,K) */
    int64_t M, int64_t N, int64_t K,
    int trans_a, int trans_b,
    float alpha, float beta);

/* ---- optimizers -------------------------------------------------------------------------------------------- */

/* param -= lr * grad. */
RNNCORE_API rnncore_status rnncore_sgd_step(
    float *param,           /* (count) updated in place */
    const float *grad,      /* (count) */
    int64_t count, float lr);

/* Hyper-parameters of Adam; fields are only ever appended. */
typedef struct rnncore_adam_params {
    float lr;               /* learning rate, >= 0 */
    float beta1;            /* in [0, 1), usually 0.9 */
    float beta2;            /* in [0, 1), usually 0.999 */
    float eps;              /* > 0, usually 1e-8 */
    float weight_decay;     /* >= 0: decoupled (AdamW-style) decay lr*wd*param; 0 for plain Adam */
} rnncore_adam_params;

/* One bias-corrected Adam step (Kingma & Ba), `step` counting from 1:
 * m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;  param -= lr * (m/(1-β1^step)) / (sqrt(v/(1-β2^step)) + eps). */
RNNCORE_API rnncore_status rnncore_adam_step(
    float *param,           /* (count) updated in place */
    float *m,               /* (count) first moment, updated; zero before step 1 */
    float *v,               /* (count) second moment, updated; zero before step 1 */
    const float *grad,      /* (count) */
    int64_t count,
    const rnncore_adam_params *params,
    int64_t step);

/* Global L2 norm of several gradient tensors, accumulated in double: *norm = sqrt(Σ_i Σ_j grads[i][j]²).
 * If max_norm > 0 and *norm > max_norm every gradient is scaled by max_norm / (*norm + 1e-6).
 * A non-finite norm is written to *norm and RNNCORE_ERR_NON_FINITE returned WITHOUT scaling anything.
 * max_norm <= 0 or +inf only measures. NaN max_norm is an invalid argument. */
RNNCORE_API rnncore_status rnncore_clip_grad_norm(
    double *norm,               /* out: the norm before clipping */
    float *const *grads,        /* (num_tensors) pointers to gradient tensors */
    const int64_t *counts,      /* (num_tensors) element counts, each > 0 */
    int64_t num_tensors,
    double max_norm);

#ifdef __cplusplus
}
#endif

#endif /* RNNCORE_H */
