/* Adaptive softmax (Grave et al. 2017): a head over the most frequent words and C tail clusters reached through a
 * projection. The fused cross-entropy with its gradient, and every log-probability. */
#include "internal.h"

/* A checked shape. */
typedef struct asm_dims {
    int64_t M, H, C;
    int64_t c0;        /* cutoffs[0], the head's words */
    int64_t K;         /* c0 + C, the head's outputs */
    int64_t V;         /* cutoffs[C] */
    int64_t max_p;     /* largest P_i (0 when C = 0) */
    int64_t max_s;     /* largest S_i (0 when C = 0) */
    int64_t workspace; /* floats */
} asm_dims;

/* The checks of rnncore_adaptive_softmax_workspace, in this order: NULL pointers; M, H > 0 and C >= 0;
 * 0 < cutoffs[0] < ... < cutoffs[C]; P_i > 0 (all RNNCORE_ERR_INVALID_SIZE); then RNNCORE_ERR_SIZE_OVERFLOW
 * when V, K, M, H, P_i exceed BLAS's int or a product M·H, H·K, M·K, H·P_i, P_i·S_i or the workspace leaves
 * RNNCORE_MAX_ELEMENTS. */
static rnncore_status check_shape(asm_dims *d, const rnncore_adaptive_softmax *shape, int64_t M) {
    RNNCORE_FAIL_IF(!shape || !shape->cutoffs, RNNCORE_ERR_NULL_POINTER);
    const int64_t C = shape->clusters, H = shape->H;
    RNNCORE_FAIL_IF(C > 0 && !shape->projections, RNNCORE_ERR_NULL_POINTER);
    const int64_t sizes[] = {M, H};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    RNNCORE_FAIL_IF(C < 0, RNNCORE_ERR_INVALID_SIZE);
    const int64_t *cut = shape->cutoffs;
    RNNCORE_FAIL_IF(cut[0] <= 0, RNNCORE_ERR_INVALID_SIZE);
    for (int64_t i = 0; i < C; i++) {
        RNNCORE_FAIL_IF(cut[i + 1] <= cut[i], RNNCORE_ERR_INVALID_SIZE);
        RNNCORE_FAIL_IF(shape->projections[i] <= 0, RNNCORE_ERR_INVALID_SIZE);
    }
    const int64_t V = cut[C];
    /* V bounds every S_i and c0; V and C within int keep K = c0 + C within int64. */
    RNNCORE_TRY(rc_blas_dim(V));
    RNNCORE_TRY(rc_blas_dim(C));
    const int64_t K = cut[0] + C;
    RNNCORE_TRY(rc_blas_dim(K));
    RNNCORE_TRY(rc_blas_dim(M));
    RNNCORE_TRY(rc_blas_dim(H));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, M, H));
    RNNCORE_TRY(rc_mul(&p, H, K));
    RNNCORE_TRY(rc_mul(&p, M, K));
    int64_t max_p = 0, max_s = 0;
    for (int64_t i = 0; i < C; i++) {
        const int64_t P = shape->projections[i], S = cut[i + 1] - cut[i];
        RNNCORE_TRY(rc_blas_dim(P));
        RNNCORE_TRY(rc_mul(&p, H, P));
        RNNCORE_TRY(rc_mul(&p, P, S));
        max_p = P > max_p ? P : max_p;
        max_s = S > max_s ? S : max_s;
    }
    /* Per row: the head logits (K); with clusters also the gathered input row (H), its projection (max P_i) and
     * its tail logits (max S_i). Each term is at most RNNCORE_MAX_ELEMENTS, so their sum stays in int64. */
    const int64_t per_row = K + (C > 0 ? H + max_p + max_s : 0);
    int64_t ws;
    RNNCORE_TRY(rc_mul(&ws, M, per_row));
    *d = (asm_dims){.M = M, .H = H, .C = C, .c0 = cut[0], .K = K, .V = V, .max_p = max_p, .max_s = max_s,
                    .workspace = ws};
    return RNNCORE_OK;
}

static int64_t cluster_size(const rnncore_adaptive_softmax *shape, int64_t i) {
    return shape->cutoffs[i + 1] - shape->cutoffs[i];
}

/* Every weight pointer present. */
static rnncore_status check_weights(const asm_dims *d, const rnncore_adaptive_weights *w) {
    RNNCORE_FAIL_IF(!w || !w->head_weight, RNNCORE_ERR_NULL_POINTER);
    if (d->C > 0) {
        RNNCORE_FAIL_IF(!w->tail_projection || !w->tail_output, RNNCORE_ERR_NULL_POINTER);
        for (int64_t i = 0; i < d->C; i++) {
            RNNCORE_FAIL_IF(!w->tail_projection[i] || !w->tail_output[i], RNNCORE_ERR_NULL_POINTER);
        }
    }
    return RNNCORE_OK;
}

/* Every gradient pointer present, and the head bias's gradient given exactly when the bias is: a missing one is
 * RNNCORE_ERR_NULL_POINTER, one without a bias RNNCORE_ERR_INVALID_ARGUMENT. */
static rnncore_status check_gradients(const asm_dims *d, const rnncore_adaptive_gradients *g,
                                      const rnncore_adaptive_weights *w) {
    RNNCORE_FAIL_IF(!g->head_weight, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(w->head_bias && !g->head_bias, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(!w->head_bias && g->head_bias, RNNCORE_ERR_INVALID_ARGUMENT);
    if (d->C > 0) {
        RNNCORE_FAIL_IF(!g->tail_projection || !g->tail_output, RNNCORE_ERR_NULL_POINTER);
        for (int64_t i = 0; i < d->C; i++) {
            RNNCORE_FAIL_IF(!g->tail_projection[i] || !g->tail_output[i], RNNCORE_ERR_NULL_POINTER);
        }
    }
    return RNNCORE_OK;
}

/* Floats taken by one pointer or one int64 value, for the aliasing checks. */
#define PTR_FLOATS ((int64_t)(sizeof(void *) / sizeof(float)))
#define I64_FLOATS ((int64_t)(sizeof(int64_t) / sizeof(float)))

/* Every buffer of one call, for the aliasing check; the fields a function does not have are NULL. */
typedef struct asm_io {
    const asm_dims *d;
    const rnncore_adaptive_softmax *shape;
    const rnncore_adaptive_weights *w;
    const rnncore_adaptive_gradients *g; /* may be NULL */
    const float *x;
    const int32_t *targets;
    const void *loss, *count;
    const float *dx, *log_probs, *workspace;
} asm_io;

enum { FIXED_INPUTS = 10, FIXED_OUTPUTS = 7 };

static int64_t tail_output_floats(const asm_io *io, int64_t c) {
    return io->shape->projections[c] * cluster_size(io->shape, c);
}

/* Input i of 0 <= i < FIXED_INPUTS + 2C: what the call reads (x, the targets, the shape's arrays, the weights,
 * the pointer arrays of weights and gradients). */
static rc_buf input_buf(const asm_io *io, int64_t i) {
    const asm_dims *d = io->d;
    const int64_t C = d->C;
    switch (i) {
    case 0: return (rc_buf){io->x, d->M * d->H};
    case 1: return (rc_buf){io->targets, d->M};
    case 2: return (rc_buf){io->shape->cutoffs, (C + 1) * I64_FLOATS};
    case 3: return (rc_buf){io->shape->projections, C * I64_FLOATS};
    case 4: return (rc_buf){io->w->head_weight, d->H * d->K};
    case 5: return (rc_buf){io->w->head_bias, d->K};
    case 6: return (rc_buf){io->w->tail_projection, C * PTR_FLOATS};
    case 7: return (rc_buf){io->w->tail_output, C * PTR_FLOATS};
    case 8: return (rc_buf){io->g ? io->g->tail_projection : NULL, C * PTR_FLOATS};
    case 9: return (rc_buf){io->g ? io->g->tail_output : NULL, C * PTR_FLOATS};
    default: break;
    }
    const int64_t c = (i - FIXED_INPUTS) / 2;
    return (i - FIXED_INPUTS) % 2 == 0 ? (rc_buf){io->w->tail_projection[c], d->H * io->shape->projections[c]}
                             : (rc_buf){io->w->tail_output[c], tail_output_floats(io, c)};
}

/* Output i of 0 <= i < FIXED_OUTPUTS + 2C: what the call writes. */
static rc_buf output_buf(const asm_io *io, int64_t i) {
    const asm_dims *d = io->d;
    switch (i) {
    case 0: return (rc_buf){io->loss, I64_FLOATS};
    case 1: return (rc_buf){io->count, I64_FLOATS};
    case 2: return (rc_buf){io->dx, d->M * d->H};
    case 3: return (rc_buf){io->log_probs, io->log_probs ? d->M * d->V : 0}; /* M·V checked by log_prob */
    case 4: return (rc_buf){io->workspace, d->workspace};
    case 5: return (rc_buf){io->g ? io->g->head_weight : NULL, d->H * d->K};
    case 6: return (rc_buf){io->g ? io->g->head_bias : NULL, d->K};
    default: break;
    }
    if (!io->g) return (rc_buf){NULL, 0};
    const int64_t c = (i - FIXED_OUTPUTS) / 2;
    return (i - FIXED_OUTPUTS) % 2 == 0 ? (rc_buf){io->g->tail_projection[c], d->H * io->shape->projections[c]}
                                        : (rc_buf){io->g->tail_output[c], tail_output_floats(io, c)};
}

/* No output overlaps an input or another output (O((C + 10)²) pairs, C is small). */
static rnncore_status check_aliasing(const asm_io *io) {
    const int64_t nin = FIXED_INPUTS + 2 * io->d->C, nout = FIXED_OUTPUTS + 2 * io->d->C;
    for (int64_t o = 0; o < nout; o++) {
        const rc_buf out = output_buf(io, o);
        if (!out.ptr) continue;
        for (int64_t i = 0; i < nin; i++) {
            const rc_buf in = input_buf(io, i);
            if (rc_overlap(out.ptr, out.count, in.ptr, in.count)) return RNNCORE_ERR_ALIASING;
        }
        for (int64_t j = o + 1; j < nout; j++) {
            const rc_buf other = output_buf(io, j);
            if (rc_overlap(out.ptr, out.count, other.ptr, other.count)) return RNNCORE_ERR_ALIASING;
        }
    }
    return RNNCORE_OK;
}

rnncore_status rnncore_adaptive_softmax_workspace(int64_t *floats, const rnncore_adaptive_softmax *shape,
                                                  int64_t M) {
    RNNCORE_FAIL_IF(!floats, RNNCORE_ERR_NULL_POINTER);
    asm_dims d;
    RNNCORE_TRY(check_shape(&d, shape, M));
    *floats = d.workspace;
    return RNNCORE_OK;
}

/* z (M,K) = x·Wh + bh. */
static void head_logits(float *z, const float *x, const asm_dims *d, const rnncore_adaptive_weights *w) {
    const int64_t M = d->M, K = d->K;
    if (w->head_bias) rc_broadcast_rows(z, w->head_bias, M, K);
    rc_sgemm(false, false, M, K, d->H, 1.0f, x, d->H, w->head_weight, K, w->head_bias ? 1.0f : 0.0f, z, K);
}

static bool is_ignored(int32_t y, int32_t ignore_index) {
    return y == ignore_index && ignore_index != RNNCORE_NO_IGNORE_INDEX;
}

/* The tail cluster of word y >= cutoffs[0]. */
static int64_t cluster_of(const rnncore_adaptive_softmax *shape, int64_t y) {
    int64_t i = 0;
    while (y >= shape->cutoffs[i + 1]) i++;
    return i;
}

typedef struct head_targets {
    const int32_t *targets;
    const rnncore_adaptive_softmax *shape;
    int64_t c0;
    int32_t ignore_index;
} head_targets;

/* The head column of row m: its word when frequent, else its cluster's entry; -1 when ignored. */
static int64_t head_target(const void *ctx, int64_t m) {
    const head_targets *t = ctx;
    const int32_t y = t->targets[m];
    if (is_ignored(y, t->ignore_index)) return -1;
    return y < t->c0 ? y : t->c0 + cluster_of(t->shape, y);
}

/* The head's part: every row's head loss (target: the word, or its cluster's entry) into *total and, when
 * backward, the head gradient: z becomes dZh = (softmax - onehot)·scale (zero rows for ignored targets), then
 * dx = dZh·Whᵀ (overwritten), dWh += xᵀ·dZh, dbh += Σ dZh. */
static void head_pass(double *total, float *dx, const rnncore_adaptive_gradients *grads, float *z, const float *x,
                      const int32_t *targets, const asm_dims *d, const rnncore_adaptive_softmax *shape,
                      const rnncore_adaptive_weights *w, int32_t ignore_index, float scale, bool backward) {
    const int64_t M = d->M, H = d->H, K = d->K;
    head_logits(z, x, d, w);
    const head_targets t = {.targets = targets, .shape = shape, .c0 = d->c0, .ignore_index = ignore_index};
    *total += rc_cross_entropy_rows(backward ? z : NULL, z, M, K, head_target, &t, scale);
    if (!backward) return;
    if (dx) {
        rc_sgemm(false, true, M, H, K, 1.0f, z, K, w->head_weight, K, 0.0f, dx, H);
        /* exact zeros for ignored rows, whatever the weights hold (0·NaN would be NaN) */
        for (int64_t m = 0; m < M; m++) {
            if (is_ignored(targets[m], ignore_index)) memset(dx + m * H, 0, (size_t)H * sizeof(float));
        }
    }
    if (grads) {
        rc_sgemm(true, false, H, K, M, 1.0f, x, H, z, K, 1.0f, grads->head_weight, K);
        if (grads->head_bias) rc_add_column_sums(grads->head_bias, z, M, K);
    }
}

/* Tail cluster i for the rows whose target lies in it: their losses into *total and, when backward, with
 * dZ = (softmax - onehot)·scale: dOi += Pᵀ·dZ, dP = dZ·Oiᵀ, dProj_i += Xiᵀ·dP, dx[rows] += dP·Projᵀ.
 * Scratch: xg (Mi,H) the gathered rows, then their dx; pg (Mi,P) the projections, then dP; zt (Mi,S) the logits,
 * then dZ. */
static void tail_pass(double *total, float *dx, const rnncore_adaptive_gradients *grads, float *xg, float *pg,
                      float *zt, const float *x, const int32_t *targets, const asm_dims *d,
                      const rnncore_adaptive_softmax *shape, const rnncore_adaptive_weights *w, int64_t i,
                      int32_t ignore_index, float scale, bool backward) {
    const int64_t M = d->M, H = d->H, lo = shape->cutoffs[i], hi = shape->cutoffs[i + 1];
    const int64_t P = shape->projections[i], S = hi - lo;
    const float *proj = w->tail_projection[i], *out = w->tail_output[i];
    int64_t Mi = 0;
    for (int64_t m = 0; m < M; m++) {
        const int32_t y = targets[m];
        if (is_ignored(y, ignore_index) || y < lo || y >= hi) continue;
        memcpy(xg + Mi * H, x + m * H, (size_t)H * sizeof(float));
        Mi++;
    }
    if (Mi == 0) return;
    rc_sgemm(false, false, Mi, P, H, 1.0f, xg, H, proj, P, 0.0f, pg, P);
    rc_sgemm(false, false, Mi, S, P, 1.0f, pg, P, out, S, 0.0f, zt, S);
    for (int64_t m = 0, j = 0; m < M; m++) {
        const int32_t y = targets[m];
        if (is_ignored(y, ignore_index) || y < lo || y >= hi) continue;
        float *row = zt + j * S;
        *total += rc_cross_entropy_row(backward ? row : NULL, row, S, y - lo, scale);
        j++;
    }
    if (!backward) return;
    if (grads) rc_sgemm(true, false, P, S, Mi, 1.0f, pg, P, zt, S, 1.0f, grads->tail_output[i], S);
    rc_sgemm(false, true, Mi, P, S, 1.0f, zt, S, out, S, 0.0f, pg, P); /* dP over the projections */
    if (grads) rc_sgemm(true, false, H, P, Mi, 1.0f, xg, H, pg, P, 1.0f, grads->tail_projection[i], P);
    if (!dx) return;
    rc_sgemm(false, true, Mi, H, P, 1.0f, pg, P, proj, P, 0.0f, xg, H); /* dXi over the gathered rows */
    for (int64_t m = 0, j = 0; m < M; m++) {
        const int32_t y = targets[m];
        if (is_ignored(y, ignore_index) || y < lo || y >= hi) continue;
        float *dst = dx + m * H;
        const float *src = xg + j * H;
        for (int64_t h = 0; h < H; h++) dst[h] += src[h];
        j++;
    }
}

rnncore_status rnncore_adaptive_softmax_cross_entropy(double *loss, int64_t *count, float *dx,
                                                      const rnncore_adaptive_gradients *grads, const float *x,
                                                      const int32_t *targets, int64_t M,
                                                      const rnncore_adaptive_softmax *shape,
                                                      const rnncore_adaptive_weights *weights, int32_t ignore_index,
                                                      float dloss, float *workspace, int64_t workspace_floats) {
    RNNCORE_FAIL_IF(!loss || !x || !targets || !workspace, RNNCORE_ERR_NULL_POINTER);
    asm_dims d;
    RNNCORE_TRY(check_shape(&d, shape, M));
    RNNCORE_TRY(check_weights(&d, weights));
    if (grads) RNNCORE_TRY(check_gradients(&d, grads, weights));
    RNNCORE_FAIL_IF(!isfinite(dloss), RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(workspace_floats < d.workspace, RNNCORE_ERR_INVALID_ARGUMENT);

    const asm_io io = {.d = &d, .shape = shape, .w = weights, .g = grads, .x = x, .targets = targets, .loss = loss,
                       .count = count, .dx = dx, .workspace = workspace};
    RNNCORE_TRY(check_aliasing(&io));

    int64_t K = 0;
    for (int64_t m = 0; m < M; m++) {
        const int32_t y = targets[m];
        if (is_ignored(y, ignore_index)) continue;
        if (y < 0 || (int64_t)y >= d.V) return RNNCORE_ERR_INDEX_OUT_OF_RANGE;
        K++;
    }

    if (count) *count = K;
    if (K == 0) { /* nothing counted: loss 0, dx zero, the gradients get nothing */
        if (dx) memset(dx, 0, (size_t)(d.M * d.H) * sizeof(float));
        *loss = 0.0;
        return RNNCORE_OK;
    }
    const bool backward = dx || grads;
    const float scale = (float)((double)dloss / (double)K);
    float *zh = workspace;              /* (M,K) head logits, then their gradient */
    float *xg = zh + d.M * d.K;         /* (M,H) a cluster's gathered rows, then their dx */
    float *pg = xg + d.M * d.H;         /* (M,max P_i) their projections, then dP */
    float *zt = pg + d.M * d.max_p;     /* (M,max S_i) their tail logits, then dZ */
    double total = 0.0;
    head_pass(&total, dx, grads, zh, x, targets, &d, shape, weights, ignore_index, scale, backward);
    for (int64_t i = 0; i < d.C; i++) {
        tail_pass(&total, dx, grads, xg, pg, zt, x, targets, &d, shape, weights, i, ignore_index, scale, backward);
    }
    *loss = total / (double)K;
    return isfinite(*loss) ? RNNCORE_OK : RNNCORE_ERR_NON_FINITE;
}

rnncore_status rnncore_adaptive_softmax_log_prob(float *log_probs, const float *x, int64_t M,
                                                 const rnncore_adaptive_softmax *shape,
                                                 const rnncore_adaptive_weights *weights, float *workspace,
                                                 int64_t workspace_floats) {
    RNNCORE_FAIL_IF(!log_probs || !x || !workspace, RNNCORE_ERR_NULL_POINTER);
    asm_dims d;
    RNNCORE_TRY(check_shape(&d, shape, M));
    int64_t mv;
    RNNCORE_TRY(rc_mul(&mv, d.M, d.V));
    RNNCORE_TRY(check_weights(&d, weights));
    RNNCORE_FAIL_IF(workspace_floats < d.workspace, RNNCORE_ERR_INVALID_ARGUMENT);
    const asm_io io = {.d = &d, .shape = shape, .w = weights, .x = x, .log_probs = log_probs,
                       .workspace = workspace};
    RNNCORE_TRY(check_aliasing(&io));

    const int64_t K = d.K, V = d.V;
    float *zh = workspace;          /* (M,K) head logits, then their log-softmax */
    float *pg = zh + d.M * K;       /* (M,max P_i) one cluster's projections */
    head_logits(zh, x, &d, weights);
    for (int64_t m = 0; m < M; m++) {
        float *row = zh + m * K;
        rc_log_softmax_row(row, row, K, 0.0f);
        memcpy(log_probs + m * V, row, (size_t)d.c0 * sizeof(float));
    }
    for (int64_t i = 0; i < d.C; i++) {
        const int64_t lo = shape->cutoffs[i], P = shape->projections[i], S = cluster_size(shape, i);
        /* the tail logits go straight into their columns of log_probs, then become log-probabilities in place */
        rc_sgemm(false, false, M, P, d.H, 1.0f, x, d.H, weights->tail_projection[i], P, 0.0f, pg, P);
        rc_sgemm(false, false, M, S, P, 1.0f, pg, P, weights->tail_output[i], S, 0.0f, log_probs + lo, V);
        for (int64_t m = 0; m < M; m++) {
            float *row = log_probs + m * V + lo;
            rc_log_softmax_row(row, row, S, zh[m * K + d.c0 + i]);
        }
    }
    return RNNCORE_OK;
}
