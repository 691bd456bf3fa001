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
#define RNNCORE_VERSION_MINOR 4
#define RNNCORE_VERSION_PATCH 0
#define RNNCORE_VERSION_NUMBER (RNNCORE_VERSION_MAJOR * 10000 + RNNCORE_VERSION_MINOR * 100 + RNNCORE_VERSION_PATCH)
/* The ABI version changes only on an incompatible change to this header; it equals the library's SOVERSION. */
#define RNNCORE_ABI_VERSION 1

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

/* ---- recurrent cells over a window of T steps -------------------------------------------------------------
 * Every cell has the same five functions, with the same arguments in the same order:
 *
 *   rnncore_<cell>_sizes(&sizes, &window)                         buffer sizes of this window (below)
 *   rnncore_<cell>_forward(hs, cache, state_last, xs, state0, &weights, &window)
 *   rnncore_<cell>_backward(dxs, dstate0, &gradients, workspace,
 *                           dhs, dstate_last, xs, state0, hs, cache, &weights, &window)
 *
 * for <cell> in rnn (tanh), rnn_relu, lstm and gru. Forward runs the cell for t = 0..T-1 from state0; the input
 * projection xs·Wx + b of all N*T rows is one GEMM, and the time loop holds one (N,H)x(H,G) GEMM and one fused
 * pass over the gates per step. Backward is backpropagation through time over the window, with the truncation
 * rule below.
 *
 * State:    S tensors of (N,H) stacked into one (S,N,H) buffer: S = 1 (h) for rnn, rnn_relu and gru; S = 2 (h,
 *           then c) for lstm. state0 may be NULL for zeros; state_last (may be NULL) may equal state0 to carry the
 *           state from one window to the next. dstate_last (may be NULL) is the gradient flowing into state_last
 *           from later; dstate0 (may be NULL, overwritten) receives the gradient of the loss with respect to
 *           state0 (whether state0 was given or was zeros). Backward's state0 is the forward's initial state:
 *           a caller that carried the state in place (state_last == state0) keeps a copy of it for the backward.
 * Weights:  G = gates·H columns, gates being 1 (rnn, rnn_relu), 4 (lstm, PyTorch's order i, f, g, o) or 3 (gru,
 *           r, z, n). wx (D,G) is PyTorch's weight_ihᵀ and wh (H,G) its weight_hhᵀ. b (G) is the input bias (for
 *           rnn, rnn_relu and lstm PyTorch's bias_ih + bias_hh; for gru bias_ih alone); b_hidden (G) is the
 *           hidden bias of the gru (PyTorch's bias_hh: b_hn sits inside r ⊙ (h·Whn + b_hn)) and must be NULL for
 *           the other cells (RNNCORE_ERR_INVALID_ARGUMENT otherwise, as for gradients->db_hidden). A NULL bias
 *           is zeros.
 * Cache:    what backward needs besides hs, written by forward: sizes.cache floats, NULL allowed when that is 0.
 *           Its contents are the cell's business (rnn: none; lstm: cs (N,T,H) then the activated gates
 *           (N,T,4H); gru: r, z, n and h·Whn + b_hn per step, (N,T,4H)); backward reads it, never writes it.
 * Gradients: dwx, dwh, db, db_hidden are ACCUMULATED (db and db_hidden may be NULL; db_hidden must be NULL
 *           except for the gru). dxs (may be NULL) and dstate0 are OVERWRITTEN.
 * Truncation: window->truncation >= 0. The error of each output hs[:,t] flows back through at most `truncation`
 *           steps: it reaches the pre-activations of steps t, t-1, ..., t-truncation+1 and no further
 *           (dstate_last counts as an error of step T-1). With 1 <= truncation < T, dstate0 receives only the
 *           errors still inside their limit when they leave step 0. truncation = 0, or truncation >= T, is full
 *           backpropagation through the window and gives exactly (bit for bit) the same results as each other.
 *           Cost: the recurrent GEMM of each step grows to min(truncation, T)-1 times N rows. Forward ignores it
 *           (any value); sizes and backward check it (RNNCORE_ERR_INVALID_ARGUMENT when negative).
 *
 * The cells, with a = x·Wx + b and u = h_prev·Wh (+ b_hidden), sliced into H-wide gate blocks:
 *   rnn:      h = tanh(a + u)
 *   rnn_relu: h = max(0, a + u)                       (torch.nn.RNN(nonlinearity='relu'))
 *   lstm:     i, f, o = σ(a + u) blocks 0, 1, 3; g = tanh(a + u) block 2; c = f ⊙ c_prev + i ⊙ g; h = o ⊙ tanh(c)
 *   gru:      r = σ(a_r + u_r), z = σ(a_z + u_z), n = tanh(a_n + r ⊙ u_n), h = (1 - z) ⊙ n + z ⊙ h_prev
 *                                                     (torch.nn.GRU)
 */

/* The sizes of a window; passed by pointer, fields are only ever appended. */
typedef struct rnncore_window {
    int64_t N;            /* batch size (parallel streams), > 0 */
    int64_t T;            /* time steps, > 0 */
    int64_t D;            /* input size, > 0 */
    int64_t H;            /* hidden size, > 0 */
    int64_t truncation;   /* backward: steps each error flows back, >= 0; 0 = the whole window */
} rnncore_window;

/* The weights of one cell; passed by pointer, fields are only ever appended. */
typedef struct rnncore_cell_weights {
    const float *wx;        /* (D,G) */
    const float *wh;        /* (H,G) */
    const float *b;         /* (G); may be NULL */
    const float *b_hidden;  /* (G); gru only (may be NULL there); NULL for every other cell */
} rnncore_cell_weights;

/* The gradients of one cell's weights, accumulated (+=); fields are only ever appended. */
typedef struct rnncore_cell_gradients {
    float *dwx;             /* (D,G) accumulated */
    float *dwh;             /* (H,G) accumulated */
    float *db;              /* (G) accumulated; may be NULL */
    float *db_hidden;       /* (G) accumulated; gru only (may be NULL there); NULL for every other cell */
} rnncore_cell_gradients;

/* What a cell needs for a window, written by rnncore_<cell>_sizes; fields are only ever appended. */
typedef struct rnncore_cell_sizes {
    int64_t gates;          /* G / H: 1, 4 or 3 */
    int64_t states;         /* S: 1, or 2 for the lstm */
    int64_t cache;          /* floats of the forward cache */
    int64_t workspace;      /* floats of the backward workspace (depends on window->truncation) */
} rnncore_cell_sizes;

/* The tanh RNN; every other cell below takes exactly these arguments. */
RNNCORE_API rnncore_status rnncore_rnn_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_rnn_forward(
    float *hs,                 /* (N,T,H) out, overwritten: every hidden state */
    float *cache,              /* (sizes.cache) out, overwritten; may be NULL when sizes.cache is 0 */
    float *state_last,         /* (S,N,H) out, overwritten; may be NULL; may equal state0 */
    const float *xs,           /* (N,T,D) */
    const float *state0,       /* (S,N,H); may be NULL for zeros */
    const rnncore_cell_weights *weights,
    const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_rnn_backward(
    float *dxs,                /* (N,T,D) out, overwritten; may be NULL */
    float *dstate0,            /* (S,N,H) out, overwritten; may be NULL */
    const rnncore_cell_gradients *gradients,
    float *workspace,          /* (sizes.workspace) scratch */
    const float *dhs,          /* (N,T,H) gradient of the loss with respect to every hs */
    const float *dstate_last,  /* (S,N,H) gradient flowing into state_last from later; may be NULL */
    const float *xs,           /* (N,T,D) the forward input */
    const float *state0,       /* (S,N,H) the forward initial state; may be NULL for zeros */
    const float *hs,           /* (N,T,H) the forward output */
    const float *cache,        /* (sizes.cache) the forward cache */
    const rnncore_cell_weights *weights,
    const rnncore_window *window);

/* The ReLU RNN (torch.nn.RNN(nonlinearity='relu')). */
RNNCORE_API rnncore_status rnncore_rnn_relu_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_rnn_relu_forward(float *hs, float *cache, float *state_last, const float *xs,
                                              const float *state0, const rnncore_cell_weights *weights,
                                              const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_rnn_relu_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                               float *workspace, const float *dhs, const float *dstate_last,
                                               const float *xs, const float *state0, const float *hs,
                                               const float *cache, const rnncore_cell_weights *weights,
                                               const rnncore_window *window);

/* The LSTM: S = 2 (h, c), G = 4H. */
RNNCORE_API rnncore_status rnncore_lstm_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_lstm_forward(float *hs, float *cache, float *state_last, const float *xs,
                                              const float *state0, const rnncore_cell_weights *weights,
                                              const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_lstm_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                               float *workspace, const float *dhs, const float *dstate_last,
                                               const float *xs, const float *state0, const float *hs,
                                               const float *cache, const rnncore_cell_weights *weights,
                                               const rnncore_window *window);

/* The GRU: G = 3H, two biases. */
RNNCORE_API rnncore_status rnncore_gru_sizes(rnncore_cell_sizes *sizes, const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_gru_forward(float *hs, float *cache, float *state_last, const float *xs,
                                              const float *state0, const rnncore_cell_weights *weights,
                                              const rnncore_window *window);
RNNCORE_API rnncore_status rnncore_gru_backward(float *dxs, float *dstate0, const rnncore_cell_gradients *gradients,
                                               float *workspace, const float *dhs, const float *dstate_last,
                                               const float *xs, const float *state0, const float *hs,
                                               const float *cache, const rnncore_cell_weights *weights,
                                               const rnncore_window *window);

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

/* y = x·Wᵀ + b with W stored (O,D), the layout of an embedding table: the output layer of a language model whose
 * output weight is tied to its (O = V, D) embedding (Press & Wolf 2017). */
RNNCORE_API rnncore_status rnncore_affine_transposed_forward(
    float *y,             /* (M,O) out, overwritten */
    const float *x,       /* (M,D) */
    const float *w,       /* (O,D) */
    const float *b,       /* (O); may be NULL */
    int64_t M, int64_t D, int64_t O);

/* dx = dy·W (overwritten), dW += dyᵀ·x, db += Σ_m dy: the gradients of rnncore_affine_transposed_forward. */
RNNCORE_API rnncore_status rnncore_affine_transposed_backward(
    float *dx,            /* (M,D) out, overwritten; may be NULL */
    float *dw,            /* (O,D) accumulated */
    float *db,            /* (O) accumulated; may be NULL */
    const float *dy,      /* (M,O) */
    const float *x,       /* (M,D) */
    const float *w,       /* (O,D) */
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

/* ---- adaptive softmax (Grave et al. 2017; PyTorch's AdaptiveLogSoftmaxWithLoss) --------------------------- */

/* The exact, normalised distribution over V words of an adaptive softmax with C tail clusters. Word ids are
 * ordered by frequency (0 the most frequent). The head is an affine map H -> K = cutoffs[0] + C: entries
 * [0, cutoffs[0]) are the head's words, entry cutoffs[0] + i stands for tail cluster i. Tail cluster i holds the
 * S_i = cutoffs[i+1] - cutoffs[i] words [cutoffs[i], cutoffs[i+1]), reached through a projection H -> P_i and
 * an output P_i -> S_i, neither with a bias (PyTorch's layout, where P_i = H / div_value^(i+1)):
 *
 *   log p(w) = log softmax(x·Wh + bh)[w]                                              for w <  cutoffs[0]
 *   log p(w) = log softmax(x·Wh + bh)[cutoffs[0] + i] + log softmax((x·Pi)·Oi)[w - cutoffs[i]]
 *                                                                    for w in [cutoffs[i], cutoffs[i+1])
 *
 * With C = 0 this is the full softmax of an affine layer (V = cutoffs[0]). Passed by pointer; fields are only
 * ever appended.
 *
 * Checks, in this order, by every function below (each before anything is written): NULL shape or cutoffs, or
 * NULL projections with C > 0 (RNNCORE_ERR_NULL_POINTER); M <= 0, H <= 0, C < 0, cutoffs[0] <= 0, cutoffs not
 * strictly increasing, or some P_i <= 0 (RNNCORE_ERR_INVALID_SIZE); V, C, K = cutoffs[0] + C, M, H or some P_i
 * above INT_MAX (BLAS's dimensions), or one of M·H, H·K, M·K, H·P_i, P_i·S_i or the workspace size above
 * PTRDIFF_MAX / 8 elements (RNNCORE_ERR_SIZE_OVERFLOW). */
typedef struct rnncore_adaptive_softmax {
    int64_t H;                    /* input size, > 0 */
    int64_t clusters;             /* C >= 0, the number of tail clusters */
    const int64_t *cutoffs;       /* (C+1): 0 < cutoffs[0] < cutoffs[1] < ... < cutoffs[C] = V */
    const int64_t *projections;   /* (C): P_i > 0, the projection size of cluster i; may be NULL when C = 0 */
} rnncore_adaptive_softmax;

/* Its weights, row-major (in, out) like every affine weight here. */
typedef struct rnncore_adaptive_weights {
    const float *head_weight;             /* (H, cutoffs[0] + C) */
    const float *head_bias;               /* (cutoffs[0] + C); may be NULL (no head bias) */
    const float *const *tail_projection;  /* C pointers, pointer i to (H, P_i); may be NULL when C = 0 */
    const float *const *tail_output;      /* C pointers, pointer i to (P_i, S_i); may be NULL when C = 0 */
} rnncore_adaptive_weights;

/* The gradients of those weights, accumulated (+=). */
typedef struct rnncore_adaptive_gradients {
    float *head_weight;                   /* (H, cutoffs[0] + C) accumulated */
    float *head_bias;                     /* (cutoffs[0] + C) accumulated; NULL exactly when the bias is */
    float *const *tail_projection;        /* C pointers, (H, P_i) accumulated */
    float *const *tail_output;            /* C pointers, (P_i, S_i) accumulated */
} rnncore_adaptive_gradients;

/* The floats of workspace that rnncore_adaptive_softmax_cross_entropy and rnncore_adaptive_softmax_log_prob
 * need for M rows (one size serves both):
 *
 *   *floats = M·K                                        for C = 0
 *   *floats = M·(K + H + max_i P_i + max_i S_i)          for C > 0     (K = cutoffs[0] + C)
 *
 * (the head logits, and for one cluster at a time its gathered input rows, their projections and their tail
 * logits). NULL floats: RNNCORE_ERR_NULL_POINTER; the shape is checked as described above. */
RNNCORE_API rnncore_status rnncore_adaptive_softmax_workspace(
    int64_t *floats,                      /* out */
    const rnncore_adaptive_softmax *shape,
    int64_t M);

/* Mean cross-entropy of the adaptive softmax against the targets, with its gradient, in one call over M rows:
 * the head for every row, each tail cluster only for the rows whose target lies in it.
 *
 *   *loss = (1/K) Σ_{counted m} -log p(targets[m] | x[m]),  accumulated in double
 *
 * Targets equal to ignore_index are skipped; every other must lie in [0, V) (checked before any output is
 * written); K goes to *count when count is not NULL (K = 0: loss 0, dx all zeros, nothing added to the
 * gradients). The gradient of dloss · *loss is written to dx (overwritten; may be NULL; skipped rows get zero
 * rows) and added to the weight gradients (grads may be NULL for none). With dx and grads both NULL only the
 * loss is computed (no backward products). A non-finite loss (a NaN in x or the weights, say) still writes
 * every output and returns RNNCORE_ERR_NON_FINITE.
 *
 * Checks, in this order, before anything is written (RNNCORE_ERR_NULL_POINTER unless said otherwise):
 *   1. NULL loss, x, targets or workspace;  2. the shape's checks (above);
 *   3. NULL head weight, or with C > 0 NULL weight pointer arrays or entries;
 *   4. with grads: NULL head weight gradient, with C > 0 NULL gradient pointer arrays or entries, a NULL head
 *      bias gradient while the head has a bias; a head bias gradient without a head bias
 *      (RNNCORE_ERR_INVALID_ARGUMENT);
 *   5. a non-finite dloss, or workspace_floats below the query (RNNCORE_ERR_INVALID_ARGUMENT);
 *   6. an output (loss, count, dx, the workspace, each gradient) overlapping another output or anything read:
 *      x, targets, the shape's arrays, the weights, the weight and gradient pointer arrays
 *      (RNNCORE_ERR_ALIASING);
 *   7. a target outside [0, V) that is not skipped (RNNCORE_ERR_INDEX_OUT_OF_RANGE). */
RNNCORE_API rnncore_status rnncore_adaptive_softmax_cross_entropy(
    double *loss,                         /* out: mean loss over counted rows */
    int64_t *count,                       /* out: K; may be NULL */
    float *dx,                            /* (M,H) out, overwritten; may be NULL */
    const rnncore_adaptive_gradients *grads, /* accumulated; may be NULL */
    const float *x,                       /* (M,H) */
    const int32_t *targets,               /* (M) */
    int64_t M,
    const rnncore_adaptive_softmax *shape,
    const rnncore_adaptive_weights *weights,
    int32_t ignore_index,                 /* target value to skip, or RNNCORE_NO_IGNORE_INDEX */
    float dloss,                          /* upstream gradient of the mean loss, usually 1 */
    float *workspace,                     /* (rnncore_adaptive_softmax_workspace floats) scratch */
    int64_t workspace_floats);

/* log p(w | x[m]) for every word w: each row of log_probs holds V log-probabilities whose exponentials sum to 1
 * (within float32 rounding). For evaluation of all words and for sampling. Every tail cluster is computed for
 * every row. Non-finite inputs are not reported (RNNCORE_OK, NaN rows).
 *
 * Checks, in this order, before anything is written: NULL log_probs, x or workspace (RNNCORE_ERR_NULL_POINTER);
 * the shape's checks (above); M·V above PTRDIFF_MAX / 8 elements (RNNCORE_ERR_SIZE_OVERFLOW); NULL weight
 * pointers as for the cross-entropy (RNNCORE_ERR_NULL_POINTER); workspace_floats below the query
 * (RNNCORE_ERR_INVALID_ARGUMENT); log_probs or the workspace overlapping each other or anything read
 * (RNNCORE_ERR_ALIASING). */
RNNCORE_API rnncore_status rnncore_adaptive_softmax_log_prob(
    float *log_probs,                     /* (M,V) out, overwritten */
    const float *x,                       /* (M,H) */
    int64_t M,
    const rnncore_adaptive_softmax *shape,
    const rnncore_adaptive_weights *weights,
    float *workspace,                     /* (rnncore_adaptive_softmax_workspace floats) scratch */
    int64_t workspace_floats);

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

/* ---- threads ------------------------------------------------------------------------------------------------
 * The kernels run on one pool of threads that the library owns: the row-wise passes (softmax rows, cell gates,
 * optimizer updates) are split across it, and so are large matrix products, with OpenBLAS itself set to one
 * thread (the pool replaces its threading; the library calls openblas_set_num_threads(1) when it starts the
 * pool). The default count is RNNCORE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else the
 * CPUs the process may run on. Results do not depend on timing: for a fixed thread count every kernel gives the
 * same bits on every run, and the row-wise passes give the same bits for every thread count. */

/* Sets the number of threads (1 … 256; 0 = the default above). Waits for a kernel running on another thread;
 * must not be called from inside a kernel. RNNCORE_ERR_INVALID_ARGUMENT for a count outside 0 … 256. */
RNNCORE_API rnncore_status rnncore_set_threads(int threads);
/* The number of threads the kernels run on (starting the pool if needed). */
RNNCORE_API int rnncore_threads(void);

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
