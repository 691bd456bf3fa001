/* The library's matrix product, exported for callers and benchmarks. */
#include <math.h>

#include "internal.h"

rnncore_status rnncore_sgemm(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K, int trans_a,
                             int trans_b, float alpha, float beta) {
    RNNCORE_FAIL_IF(!c || !a || !b, RNNCORE_ERR_NULL_POINTER);
    const int64_t sizes[] = {M, N, K};
    RNNCORE_TRY(rc_check_sizes(RC_COUNT(sizes), sizes));
    int64_t p;
    RNNCORE_TRY(rc_mul(&p, M, K));
    RNNCORE_TRY(rc_mul(&p, K, N));
    RNNCORE_TRY(rc_mul(&p, M, N));
    RNNCORE_TRY(rc_blas_dim(M));
    RNNCORE_TRY(rc_blas_dim(N));
    RNNCORE_TRY(rc_blas_dim(K));
    RNNCORE_FAIL_IF(!isfinite(alpha) || !isfinite(beta), RNNCORE_ERR_INVALID_ARGUMENT);
    const rc_buf outs[] = {{c, M * N}};
    const rc_buf ins[] = {{a, M * K}, {b, K * N}};
    RNNCORE_TRY(rc_check_aliasing(outs, RC_COUNT(outs), ins, RC_COUNT(ins)));
    rc_sgemm(trans_a != 0, trans_b != 0, M, N, K, alpha, a, trans_a ? M : K, b, trans_b ? K : N, beta, c, N);
    return RNNCORE_OK;
}
