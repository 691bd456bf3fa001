/* Softmax and the fused softmax cross-entropy (the TimeSoftmaxWithLoss layer). */
#include <math.h>

#include "internal.h"

static rnncore_status check_rows(int64_t M, int64_t V) {
    const int64_t sizes[] = {M, V};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    return rc_mul(&p, M, V);
}

/* The largest entry of a row. */
static float row_max(const float *row, int64_t V) {
    float mx = row[0];
    for (int64_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    return mx;
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
    double total = 0.0;
    for (int64_t m = 0; m < M; m++) {
        const float *row = logits + m * V;
        float *grad = dlogits ? dlogits + m * V : NULL;
        const int32_t y = targets[m];
        if (y == ignore_index && ignore_index != RNNCORE_NO_IGNORE_INDEX) {
            if (grad) {
                for (int64_t v = 0; v < V; v++) grad[v] = 0.0f;
            }
            continue;
        }
        const float mx = row_max(row, V);
        const float target_logit = row[y];
        double sum = 0.0;
        if (grad) {
            for (int64_t v = 0; v < V; v++) {
                const float e = expf(row[v] - mx); /* row may be grad: read before write, same index */
                grad[v] = e;
                sum += e;
            }
            const float k = (float)(scale / sum);
            for (int64_t v = 0; v < V; v++) grad[v] *= k;
            grad[y] -= scale;
        } else {
            for (int64_t v = 0; v < V; v++) sum += expf(row[v] - mx);
        }
        total += log(sum) + (double)mx - (double)target_logit;
    }
    *loss = K > 0 ? total / (double)K : 0.0;
    if (count) *count = K;
    return isfinite(*loss) ? RNNCORE_OK : RNNCORE_ERR_NON_FINITE;
}

rnncore_status rnncore_softmax_forward(float *probs, const float *logits, int64_t M, int64_t V) {
    RNNCORE_FAIL_IF(!probs || !logits, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_rows(M, V));
    if (probs != logits) {
        const rc_buf outs[] = {{probs, M * V}};
        const rc_buf ins[] = {{logits, M * V}};
        RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    }
    for (int64_t m = 0; m < M; m++) {
        const float *row = logits + m * V;
        float *out = probs + m * V;
        const float mx = row_max(row, V);
        double sum = 0.0;
        for (int64_t v = 0; v < V; v++) {
            const float e = expf(row[v] - mx);
            out[v] = e;
            sum += e;
        }
        const float k = (float)(1.0 / sum);
        for (int64_t v = 0; v < V; v++) out[v] *= k;
    }
    return RNNCORE_OK;
}
