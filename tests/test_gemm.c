/*
 * test_gemm.c — rnncore_sgemm (C = alpha·op(A)·op(B) + beta·C) against a double-precision triple loop, for the
 * four transpose combinations, beta 0 and beta ≠ 0, edge shapes; and its argument checks.
 */
#include "test_util.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

static void test_vs_loop(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta, uint64_t seed) {
    printf("sgemm M=%lld N=%lld K=%lld ta=%d tb=%d alpha=%g beta=%g\n", (long long)M, (long long)N, (long long)K, ta,
           tb, alpha, beta);
    rng_t r = {seed};
    float *a = alloc_f(M * K), *b = alloc_f(K * N), *c = alloc_f(M * N);
    double *ref = alloc_d(M * N);
    fill_f(a, M * K, &r, -1, 1);
    fill_f(b, K * N, &r, -1, 1);
    fill_f(c, M * N, &r, -1, 1);
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                const double av = ta ? a[k * M + i] : a[i * K + k];
                const double bv = tb ? b[j * K + k] : b[k * N + j];
                s += av * bv;
            }
            ref[i * N + j] = (double)alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c[i * N + j]);
        }
    }
    if (beta == 0.0f) fill_const_f(c, M * N, NAN); /* beta 0 overwrites: even NaN in C must not leak through */
    CHECK_STATUS(rnncore_sgemm(c, a, b, M, N, K, ta, tb, alpha, beta), RNNCORE_OK);
    /* K products of size < 1 plus the beta term: float32 error grows like (K + 2)·u, abs and rel. */
    const double tol = 4.0 * (double)(K + 2) * U32;
    check_close_fd("sgemm C", c, ref, M * N, tol, tol);
    free(a); free(b); free(c); free(ref);
}

static void test_bad_arguments(void) {
    printf("sgemm bad arguments\n");
    float a[6] = {0}, b[6] = {0}, c[6] = {0};
    CHECK_STATUS(rnncore_sgemm(NULL, a, b, 2, 3, 1, 0, 0, 1, 0), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_sgemm(c, NULL, b, 2, 3, 1, 0, 0, 1, 0), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_sgemm(c, a, NULL, 2, 3, 1, 0, 0, 1, 0), RNNCORE_ERR_NULL_POINTER);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 0, 3, 1, 0, 0, 1, 0), RNNCORE_ERR_INVALID_SIZE);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 2, -3, 1, 0, 0, 1, 0), RNNCORE_ERR_INVALID_SIZE);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 2, 3, (int64_t)1 << 31, 0, 0, 1, 0), RNNCORE_ERR_SIZE_OVERFLOW);
    CHECK_STATUS(rnncore_sgemm(c, a, b, INT64_MAX / 2, INT64_MAX / 2, 1, 0, 0, 1, 0), RNNCORE_ERR_SIZE_OVERFLOW);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 2, 3, 1, 0, 0, NAN, 0), RNNCORE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 2, 3, 1, 0, 0, 1, INFINITY), RNNCORE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(rnncore_sgemm(a, a, b, 2, 3, 1, 0, 0, 1, 0), RNNCORE_ERR_ALIASING);
    CHECK_STATUS(rnncore_sgemm(b + 1, a, b, 1, 2, 1, 0, 0, 1, 0), RNNCORE_ERR_ALIASING);
}

int main(void) {
    test_vs_loop(1, 1, 1, 0, 0, 1.0f, 0.0f, 1);
    test_vs_loop(3, 5, 7, 0, 0, 1.0f, 0.0f, 2);
    test_vs_loop(3, 5, 7, 1, 0, 0.5f, 1.0f, 3);
    test_vs_loop(3, 5, 7, 0, 1, -2.0f, 0.25f, 4);
    test_vs_loop(3, 5, 7, 1, 1, 1.0f, 1.0f, 5);
    test_vs_loop(64, 96, 128, 0, 0, 1.0f, 0.0f, 6); /* BLAS-sized */
    test_vs_loop(65, 33, 200, 1, 1, 1.0f, 0.5f, 7);
    /* One row of C goes through sgemv: every transpose, both betas, beta 0 over NaN. */
    for (int t = 0; t < 4; t++) {
        test_vs_loop(1, 37, 19, t & 1, t >> 1, 1.0f, 0.0f, 30 + t);
        test_vs_loop(1, 37, 19, t & 1, t >> 1, -0.5f, 1.0f, 40 + t);
    }
    /* Products large enough to be split across the threads (2·M·N·K above 2 MFLOP per thread): by columns, by
     * rows (few columns), and one row of C by columns; on 1, 2 and 3 threads. */
    for (int threads = 1; threads <= 3; threads++) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        test_vs_loop(40, 1000, 150, 0, 0, 1.0f, 0.0f, 50);
        test_vs_loop(40, 1000, 150, 1, 1, 0.5f, 1.0f, 51);
        test_vs_loop(2000, 20, 150, 0, 1, 1.0f, 0.0f, 52);
        test_vs_loop(2000, 20, 150, 1, 0, 1.0f, 1.0f, 53);
        test_vs_loop(1, 9000, 700, 0, 0, 1.0f, 0.0f, 54);
        test_vs_loop(1, 9000, 700, 1, 1, 1.0f, 1.0f, 55);
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
    test_bad_arguments();
    return test_finish("test_gemm");
}
