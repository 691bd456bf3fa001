/* Softmax and the fused softmax cross-entropy (the TimeSoftmaxWithLoss layer). */
#include <math.h>
#include <string.h>

#include "internal.h"


static rnncore_status check_rows(int64_t M, int64_t V) {
    const int64_t sizes[] = {M, V};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    return rc_mul(&p, M, V);
}

/* The largest entry of a row; eight independent lanes so that the compiler vectorises it. NaN entries may be
 * skipped here, but they still reach the exponentials below and make the result NaN, as they must. */
static float row_max(const float *row, int64_t V) {
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = row[0];
    int64_t v = 0;
    for (; v + 8 <= V; v += 8) {
        for (int j = 0; j < 8; j++) m[j] = row[v + j] > m[j] ? row[v + j] : m[j];
    }
    for (; v < V; v++) m[0] = row[v] > m[0] ? row[v] : m[0];
    float mx = m[0];
    for (int j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
    return mx;
}

/* out[v] = e^(row[v] - mx) for v < V; out may equal row. Plain loops that the compiler vectorises; the in-place
 * case has its own loop because a compiler's run-time overlap check sends out == row to the scalar fallback. */
RC_VECTOR_CLONES static void exp_shifted(float *out, const float *row, int64_t V, float mx) {
    if (out == row) {
        for (int64_t v = 0; v < V; v++) out[v] = rc_exp_nonpositive(out[v] - mx);
    } else {
        float *restrict o = out;
        const float *restrict r = row;
        for (int64_t v = 0; v < V; v++) o[v] = rc_exp_nonpositive(r[v] - mx);
    }
}

/* Σ_v x[v] accumulated in double, in eight lanes (a fixed order: the result does not depend on the machine). */
static double sum_double(const float *x, int64_t V) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t v = 0;
    for (; v + 8 <= V; v += 8) {
        for (int j = 0; j < 8; j++) s[j] += (double)x[v + j];
    }
    for (; v < V; v++) s[0] += (double)x[v];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Σ_v e^(row[v] - mx); also writes each term to out when out is not NULL (out may equal row). */
static double row_exp_sum(float *out, const float *row, int64_t V, float mx) {
    if (out) {
        exp_shifted(out, row, V, mx);
        return sum_double(out, V);
    }
    float block[512];
    double sum = 0.0;
    for (int64_t v = 0; v < V; v += 512) {
        const int64_t k = V - v < 512 ? V - v : 512;
        exp_shifted(block, row + v, k, mx);
        sum += sum_double(block, k);
    }
    return sum;
}

double rc_cross_entropy_row(float *grad, const float *row, int64_t V, int64_t y, float scale) {
    const float mx = row_max(row, V);
    const float target_logit = row[y]; /* read before grad (which may be row) is written */
    const double sum = row_exp_sum(grad, row, V, mx);
    if (grad) {
        const float k = (float)(scale / sum);
        for (int64_t v = 0; v < V; v++) grad[v] *= k;
        grad[y] -= scale;
    }
    /* (max - z_y) first, exact in double for any two floats of like magnitude (and correctly rounded
     * otherwise), then the small log Σ: (max + log Σ) - z_y would round log Σ away against a huge max
     * (logits all 1e30 gave 0 instead of ln V). */
    return ((double)mx - (double)target_logit) + log(sum);
}

void rc_log_softmax_row(float *out, const float *row, int64_t V, float shift) {
    const float mx = row_max(row, V);
    const double sum = row_exp_sum(NULL, row, V, mx);
    /* (z - max) is exact or correctly rounded in float32 whatever the magnitude of the row (see above); the small
     * constant shift - log Σ is formed in double and rounded once. */
    const float c = (float)((double)shift - log(sum));
    for (int64_t v = 0; v < V; v++) out[v] = (row[v] - mx) + c;
}

/* ---- many rows ------------------------------------------------------------------------------------------- */

typedef struct ce_rows {
    float *grad;
    const float *logits;
    int64_t V;
    rc_row_target_fn target;
    const void *ctx;
    float scale;
} ce_rows;

/* The cross-entropy of rows [r0, r1), summed in order (rc_sum_fn). */
static double ce_range(void *arg, int64_t r0, int64_t r1) {
    const ce_rows *c = arg;
    double sum = 0.0;
    for (int64_t r = r0; r < r1; r++) {
        const float *row = c->logits + r * c->V;
        float *grad = c->grad ? c->grad + r * c->V : NULL;
        const int64_t y = c->target(c->ctx, r);
        if (y < 0) {
            if (grad) memset(grad, 0, (size_t)c->V * sizeof(float));
            continue;
        }
        sum += rc_cross_entropy_row(grad, row, c->V, y, c->scale); /* grad may equal row */
    }
    return sum;
}

double rc_cross_entropy_rows(float *grad, const float *logits, int64_t M, int64_t V, rc_row_target_fn target,
                             const void *ctx, float scale) {
    ce_rows c = {.grad = grad, .logits = logits, .V = V, .target = target, .ctx = ctx, .scale = scale};
    return rc_parallel_sum(M, V, ce_range, &c);
}

typedef struct ce_targets {
    const int32_t *targets;
    int32_t ignore_index;
} ce_targets;

static int64_t full_target(const void *ctx, int64_t row) {
    const ce_targets *t = ctx;
    const int32_t y = t->targets[row];
    return y == t->ignore_index && t->ignore_index != RNNCORE_NO_IGNORE_INDEX ? -1 : y;
}

rnncore_status rnncore_softmax_cross_entropy(double *loss, int64_t *count, float *dlogits, const float *logits,
                                             const int32_t *targets, int64_t M, int64_t V, int32_t ignore_index,
                                             float dloss) {
    RNNCORE_FAIL_IF(!loss || !logits || !targets, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rows(M, V));
    RNNCORE_FAIL_IF(!isfinite(dloss), RNNCORE_ERR_INVALID_ARGUMENT);
    if (dlogits != logits) {
        const rc_buf outs[] = {{dlogits, M * V}};
        const rc_buf ins[] = {{logits, M * V}, {targets, M}};
        RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    } else {
        const rc_buf outs[] = {{dlogits, M * V}};
        const rc_buf ins[] = {{targets, M}};
        RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    }
    RNNCORE_FAIL_IF(count && (rc_overlap(count, 2, logits, M * V) || rc_overlap(count, 2, dlogits, M * V)),
                    RNNCORE_ERR_ALIASING);

    int64_t K = 0;
    for (int64_t m = 0; m < M; m++) {
        const int32_t y = targets[m];
        if (y == ignore_index && ignore_index != RNNCORE_NO_IGNORE_INDEX) continue;
        if (y < 0 || (int64_t)y >= V) return RNNCORE_ERR_INDEX_OUT_OF_RANGE;
        K++;
    }

    const float scale = K > 0 ? (float)((double)dloss / (double)K) : 0.0f;
    const ce_targets t = {.targets = targets, .ignore_index = ignore_index};
    const double total = rc_cross_entropy_rows(dlogits, logits, M, V, full_target, &t, scale);
    *loss = K > 0 ? total / (double)K : 0.0;
    if (count) *count = K;
    return isfinite(*loss) ? RNNCORE_OK : RNNCORE_ERR_NON_FINITE;
}

typedef struct softmax_rows {
    float *probs;
    const float *logits;
    int64_t V;
} softmax_rows;

static void softmax_forward_rows(void *arg, int64_t r0, int64_t r1) {
    const softmax_rows *s = arg;
    for (int64_t m = r0; m < r1; m++) {
        const float *row = s->logits + m * s->V;
        float *out = s->probs + m * s->V;
        const float mx = row_max(row, s->V);
        const double sum = row_exp_sum(out, row, s->V, mx);
        const float k = (float)(1.0 / sum);
        for (int64_t v = 0; v < s->V; v++) out[v] *= k;
    }
}

rnncore_status rnncore_softmax_forward(float *probs, const float *logits, int64_t M, int64_t V) {
    RNNCORE_FAIL_IF(!probs || !logits, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rows(M, V));
    if (probs != logits) {
        const rc_buf outs[] = {{probs, M * V}};
        const rc_buf ins[] = {{logits, M * V}};
        RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    }
    softmax_rows s = {.probs = probs, .logits = logits, .V = V};
    rc_parallel_for(M, rc_grain(V), softmax_forward_rows, &s);
    return RNNCORE_OK;
}
