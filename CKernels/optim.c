/* Optimizers (SGD, Adam) and global-norm gradient clipping. */
#include <math.h>

#include "internal.h"

static rnncore_status check_count(int64_t count) {
    RNNCORE_FAIL_IF(count <= 0, RNNCORE_ERR_INVALID_SIZE);
    RNNCORE_FAIL_IF(count > RNNCORE_MAX_ELEMENTS, RNNCORE_ERR_SIZE_OVERFLOW);
    return RNNCORE_OK;
}

rnncore_status rnncore_sgd_step(float *param, const float *grad, int64_t count, float lr) {
    RNNCORE_FAIL_IF(!param || !grad, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_count(count));
    RNNCORE_FAIL_IF(!isfinite(lr) || lr < 0.0f, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(rc_overlap(param, count, grad, count), RNNCORE_ERR_ALIASING);
    for (int64_t i = 0; i < count; i++) param[i] -= lr * grad[i];
    return RNNCORE_OK;
}

rnncore_status rnncore_adam_step(float *param, float *m, float *v, const float *grad, int64_t count,
                                 const rnncore_adam_params *params, int64_t step) {
    RNNCORE_FAIL_IF(!param || !m || !v || !grad || !params, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_count(count));
    const rnncore_adam_params p = *params;
    RNNCORE_FAIL_IF(!isfinite(p.lr) || p.lr < 0.0f, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(!(p.beta1 >= 0.0f && p.beta1 < 1.0f) || !(p.beta2 >= 0.0f && p.beta2 < 1.0f),
                    RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(!isfinite(p.eps) || p.eps <= 0.0f, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(!isfinite(p.weight_decay) || p.weight_decay < 0.0f, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(step < 1, RNNCORE_ERR_INVALID_ARGUMENT);
    const rc_buf outs[] = {{param, count}, {m, count}, {v, count}};
    const rc_buf ins[] = {{grad, count}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    /* Bias corrections in double: β^step underflows gracefully to 0 for large steps. */
    const float c1 = (float)(1.0 / (1.0 - pow((double)p.beta1, (double)step)));
    const float c2 = (float)(1.0 / (1.0 - pow((double)p.beta2, (double)step)));
    const float decay = p.lr * p.weight_decay;
    for (int64_t i = 0; i < count; i++) {
        const float g = grad[i];
        const float mi = p.beta1 * m[i] + (1.0f - p.beta1) * g;
        const float vi = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= p.lr * (mi * c1) / (sqrtf(vi * c2) + p.eps) + decay * param[i];
    }
    return RNNCORE_OK;
}

/* Σ x² in double over eight independent lanes, so that the loop vectorises (a single running sum is one long
 * dependency chain); the lane order is fixed, so the result is the same on every run. */
RC_VECTOR_CLONES static double sum_of_squares(const float *x, int64_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) s[j] += (double)x[i + j] * (double)x[i + j];
    }
    for (; i < n; i++) s[0] += (double)x[i] * (double)x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

rnncore_status rnncore_clip_grad_norm(double *norm, float *const *grads, const int64_t *counts, int64_t num_tensors,
                                      double max_norm) {
    RNNCORE_FAIL_IF(!norm || !grads || !counts, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_FAIL_IF(num_tensors <= 0, RNNCORE_ERR_INVALID_SIZE);
    RNNCORE_FAIL_IF(isnan(max_norm), RNNCORE_ERR_INVALID_ARGUMENT);
    for (int64_t i = 0; i < num_tensors; i++) {
        RNNCORE_FAIL_IF(!grads[i], RNNCORE_ERR_NULL_POINTER);
        RNNCORE_TRY(check_count(counts[i]));
        /* A tensor listed twice (or two overlapping views) would be scaled twice. */
        for (int64_t j = 0; j < i; j++) {
            RNNCORE_FAIL_IF(rc_overlap(grads[i], counts[i], grads[j], counts[j]), RNNCORE_ERR_ALIASING);
        }
    }

    double sum = 0.0;
    for (int64_t i = 0; i < num_tensors; i++) sum += sum_of_squares(grads[i], counts[i]);
    const double total = sqrt(sum);
    *norm = total;
    if (!isfinite(total)) return RNNCORE_ERR_NON_FINITE;
    if (max_norm > 0.0 && isfinite(max_norm) && total > max_norm) {
        const float rate = (float)(max_norm / (total + 1e-6));
        for (int64_t i = 0; i < num_tensors; i++) {
            float *g = grads[i];
            for (int64_t j = 0; j < counts[i]; j++) g[j] *= rate;
        }
    }
    return RNNCORE_OK;
}
