/* Optimizers (SGD, Adam) and global-norm gradient clipping. */
#include <math.h>

#include "internal.h"

static rnncore_status check_count(int64_t count) {
    RNNCORE_FAIL_IF(count <= 0, RNNCORE_ERR_INVALID_SIZE);
    RNNCORE_FAIL_IF(count > RNNCORE_MAX_ELEMENTS, RNNCORE_ERR_SIZE_OVERFLOW);
    return RNNCORE_OK;
}

/* Every update below is element-wise: split across the threads, each element computed the same way whatever the
 * split. */
typedef struct sgd_job {
    float *param;
    const float *grad;
    float lr;
} sgd_job;

static void sgd_range(void *arg, int64_t i0, int64_t i1) {
    const sgd_job *j = arg;
    float *restrict param = j->param;
    const float *restrict grad = j->grad;
    for (int64_t i = i0; i < i1; i++) param[i] -= j->lr * grad[i];
}

typedef struct adam_job {
    float *param, *m, *v;
    const float *grad;
    rnncore_adam_params p;
    float c1, c2;
} adam_job;

static void adam_range(void *arg, int64_t i0, int64_t i1) {
    const adam_job *j = arg;
    const rnncore_adam_params p = j->p;
    const float decay = p.lr * p.weight_decay;
    float *param = j->param, *m = j->m, *v = j->v;
    const float *grad = j->grad;
    for (int64_t i = i0; i < i1; i++) {
        const float g = grad[i];
        const float mi = p.beta1 * m[i] + (1.0f - p.beta1) * g;
        const float vi = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= p.lr * (mi * j->c1) / (sqrtf(vi * j->c2) + p.eps) + decay * param[i];
    }
}

rnncore_status rnncore_sgd_step(float *param, const float *grad, int64_t count, float lr) {
    RNNCORE_FAIL_IF(!param || !grad, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_count(count));
    RNNCORE_FAIL_IF(!isfinite(lr) || lr < 0.0f, RNNCORE_ERR_INVALID_ARGUMENT);
    RNNCORE_FAIL_IF(rc_overlap(param, count, grad, count), RNNCORE_ERR_ALIASING);
    sgd_job job = {.param = param, .grad = grad, .lr = lr};
    rc_parallel_for(count, rc_grain(1), sgd_range, &job);
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
    adam_job job = {.param = param, .m = m, .v = v, .grad = grad, .p = p, .c1 = c1, .c2 = c2};
    rc_parallel_for(count, rc_grain(4), adam_range, &job);
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

/* Σ x² of elements [i0, i1) (rc_sum_fn): rnncore_clip_grad_norm sums each tensor over rc_parallel_sum's fixed
 * blocks, so the norm depends on the sizes alone, not on the thread count. */
static double squares_range(void *x, int64_t i0, int64_t i1) { return sum_of_squares((const float *)x + i0, i1 - i0); }

typedef struct scale_job {
    float *x;
    float rate;
} scale_job;

static void scale_range(void *arg, int64_t i0, int64_t i1) {
    const scale_job *j = arg;
    for (int64_t i = i0; i < i1; i++) j->x[i] *= j->rate;
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
    for (int64_t i = 0; i < num_tensors; i++) sum += rc_parallel_sum(counts[i], 1, squares_range, grads[i]);
    const double total = sqrt(sum);
    *norm = total;
    if (!isfinite(total)) return RNNCORE_ERR_NON_FINITE;
    if (max_norm > 0.0 && isfinite(max_norm) && total > max_norm) {
        scale_job job = {.rate = (float)(max_norm / (total + 1e-6))};
        for (int64_t i = 0; i < num_tensors; i++) {
            job.x = grads[i];
            rc_parallel_for(counts[i], rc_grain(1), scale_range, &job);
        }
    }
    return RNNCORE_OK;
}
