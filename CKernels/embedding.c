/* Embedding lookup (the TimeEmbedding layer) and its deterministic scatter-add backward. */
#include <string.h>

#include "internal.h"

static rnncore_status check_embedding(const int32_t *ids, int64_t M, int64_t V, int64_t D) {
    const int64_t sizes[] = {M, V, D};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, M, D));
    RNNCORE_TRY(rc_mul(&p, V, D));
    for (int64_t m = 0; m < M; m++) {
        if (ids[m] < 0 || (int64_t)ids[m] >= V) return RNNCORE_ERR_INDEX_OUT_OF_RANGE;
    }
    return RNNCORE_OK;
}

rnncore_status rnncore_embedding_forward(float *out, const int32_t *ids, const float *w, int64_t M, int64_t V,
                                         int64_t D) {
    RNNCORE_FAIL_IF(!out || !ids || !w, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_embedding(ids, M, V, D));
    const rc_buf outs[] = {{out, M * D}};
    const rc_buf ins[] = {{ids, M}, {w, V * D}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    for (int64_t m = 0; m < M; m++) memcpy(out + m * D, w + (int64_t)ids[m] * D, (size_t)D * sizeof(float));
    return RNNCORE_OK;
}

rnncore_status rnncore_embedding_backward(float *dw, const float *dout, const int32_t *ids, int64_t M, int64_t V,
                                          int64_t D) {
    RNNCORE_FAIL_IF(!dw || !dout || !ids, RNNCORE_ERR_NULL_POINTER);
    RNNCORE_TRY(check_embedding(ids, M, V, D));
    const rc_buf outs[] = {{dw, V * D}};
    const rc_buf ins[] = {{ids, M}, {dout, M * D}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));

    for (int64_t m = 0; m < M; m++) {
        float *row = dw + (int64_t)ids[m] * D;
        const float *g = dout + m * D;
        for (int64_t d = 0; d < D; d++) row[d] += g[d];
    }
    return RNNCORE_OK;
}
