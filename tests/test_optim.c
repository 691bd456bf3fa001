/*
 * test_optim.c — rnncore_sgd_step, rnncore_adam_step (bias-corrected, decoupled weight decay) and
 * rnncore_clip_grad_norm (global L2 norm in double; a non-finite norm is reported and nothing is scaled).
 *
 * These kernels have no backward; they are checked against the double reference over several steps, plus the
 * textbook properties: Adam's first bias-corrected step moves every parameter by ~lr, clipping leaves a norm of
 * ~max_norm, a norm below max_norm (or max_norm <= 0 / +inf) changes nothing. Argument errors: test_api.c.
 */
#include "test_util.h"
#include "reference.h"

#define U32 0x1.0p-24 /* float32 unit roundoff */

/* SGD: param - lr·grad is two float32 roundings per step; after S steps, 2·S·u relative to |param| + lr·|g|. */
static void test_sgd(int64_t count, float lr, int steps, uint64_t seed) {
    printf("sgd_step count=%lld lr=%g steps=%d\n", (long long)count, (double)lr, steps);
    rng_t r = {seed};
    float *p = alloc_f(count), *g = alloc_f(count);
    fill_f(p, count, &r, -1, 1);
    double *pd = to_d(p, count);
    for (int s = 0; s < steps; s++) {
        fill_f(g, count, &r, -1, 1);
        double *gd = to_d(g, count);
        CHECK_STATUS(rnncore_sgd_step(p, g, count, lr), RNNCORE_OK);
        ref_sgd_step(pd, gd, count, lr);
        free(gd);
    }
    double t = 2.0 * steps * U32 * (1 + fabs((double)lr));
    check_close_fd("sgd_step param", p, pd, count, t, t);
    /* lr = 0 changes nothing */
    float *p0 = alloc_f(count);
    memcpy(p0, p, (size_t)count * sizeof *p);
    CHECK_STATUS(rnncore_sgd_step(p, g, count, 0.0f), RNNCORE_OK);
    CHECK(memcmp(p0, p, (size_t)count * sizeof *p) == 0);
    free(p); free(g); free(pd); free(p0);
}

/* Adam: every step rounds m, v, the bias corrections, sqrt and the update a few times in float32. The update
 * lr·m̂/(sqrt(v̂)+eps) has relative error ~10u, i.e. ~10u·lr absolute, and param adds ~2u·|param| per step;
 * m and v are exponential averages whose rounding does not grow. Over S steps: param tol S·(2u + 10u·lr)
 * absolute + 4Su relative; m, v: 16u absolute + 16u relative. */
static void test_adam(int64_t count, rnncore_adam_params hp, int steps, uint64_t seed) {
    printf("adam_step count=%lld lr=%g b1=%g b2=%g eps=%g wd=%g steps=%d\n", (long long)count, (double)hp.lr,
           (double)hp.beta1, (double)hp.beta2, (double)hp.eps, (double)hp.weight_decay, steps);
    rng_t r = {seed};
    float *p = alloc_f(count), *m = alloc_f(count), *v = alloc_f(count), *g = alloc_f(count);
    fill_f(p, count, &r, -1, 1);
    double *pd = to_d(p, count), *md = alloc_d(count), *vd = alloc_d(count);
    for (int s = 1; s <= steps; s++) {
        fill_f(g, count, &r, -1, 1);
        if (s == 2) g[0] = 0.0f; /* a zero gradient still moves p through m */
        double *gd = to_d(g, count);
        CHECK_STATUS(rnncore_adam_step(p, m, v, g, count, &hp, s), RNNCORE_OK);
        /* the reference receives the float32 hyper-parameters exactly as the kernel sees them */
        ref_adam_step(pd, md, vd, gd, count, hp.lr, hp.beta1, hp.beta2, hp.eps, hp.weight_decay, s);
        free(gd);
    }
    double ta = steps * (2 + 10 * (double)hp.lr) * U32, tr = 4.0 * steps * U32;
    check_close_fd("adam_step param", p, pd, count, ta, tr);
    check_close_fd("adam_step m", m, md, count, 16 * U32, 16 * U32);
    check_close_fd("adam_step v", v, vd, count, 16 * U32, 16 * U32);
    free(p); free(m); free(v); free(g); free(pd); free(md); free(vd);
}

/* Textbook property: at step 1, m̂ = g and v̂ = g², so without decay each param moves by lr·|g|/(|g|+eps) ≈ lr
 * against the sign of g, whatever the scale of g. */
static void test_adam_first_step(void) {
    printf("adam_step first step moves every parameter by ~lr\n");
    float p[4] = {0.5f, -0.25f, 1.0f, 0.0f}, m[4] = {0}, v[4] = {0}, g[4] = {1e-3f, -2.0f, 50.0f, -1e-2f};
    float p0[4];
    memcpy(p0, p, sizeof p);
    rnncore_adam_params hp = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    CHECK_STATUS(rnncore_adam_step(p, m, v, g, 4, &hp, 1), RNNCORE_OK);
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= fabs((double)(p0[i] - p[i]) - copysign(0.01, g[i])) < 1e-6;
    CHECK(ok);
    /* decoupled decay with a zero gradient: only p -= lr·wd·p remains (m = v = 0, update 0/(0+eps) = 0) */
    float q[2] = {2.0f, -4.0f}, mq[2] = {0}, vq[2] = {0}, gq[2] = {0};
    hp.weight_decay = 0.1f;
    CHECK_STATUS(rnncore_adam_step(q, mq, vq, gq, 2, &hp, 1), RNNCORE_OK);
    CHECK(fabs(q[0] - 2.0 * (1 - 0.01 * 0.1)) < 1e-6 && fabs(q[1] + 4.0 * (1 - 0.01 * 0.1)) < 1e-6);
}

/* ---- clipping ------------------------------------------------------------------------------------------------ */

/* The norm is accumulated in double from float32 values: agreement to ~1e-12 relative whatever the order.
 * Scaled gradients are one float32 multiply by a float/double scale: 2u relative. */
static void test_clip(int n, const int64_t *counts, double scale, double max_norm, uint64_t seed) {
    printf("clip_grad_norm tensors=%d max_norm=%g\n", n, max_norm);
    rng_t r = {seed};
    float *gf[8]; double *gd[8], *gd0[8];
    assert(n <= 8);
    for (int i = 0; i < n; i++) {
        gf[i] = alloc_f(counts[i]);
        fill_f(gf[i], counts[i], &r, -scale, scale);
        gd[i] = to_d(gf[i], counts[i]);
        gd0[i] = to_d(gf[i], counts[i]);
    }
    double norm = NAN, norm_d = NAN;
    CHECK_STATUS(rnncore_clip_grad_norm(&norm, gf, counts, n, max_norm), RNNCORE_OK);
    CHECK(ref_clip_grad_norm(&norm_d, gd, counts, n, max_norm) == 0);
    check_close_dd("clip_grad_norm norm", &norm, &norm_d, 1, 0, 1e-12);
    int clipped = max_norm > 0 && isfinite(max_norm) && norm_d > max_norm;
    double after = 0;
    for (int i = 0; i < n; i++) {
        if (clipped) check_close_fd("clip_grad_norm scaled grads", gf[i], gd[i], counts[i], 0, 2 * U32);
        else check_close_fd("clip_grad_norm untouched grads", gf[i], gd0[i], counts[i], 0, 0);
        for (int64_t j = 0; j < counts[i]; j++) after += (double)gf[i][j] * gf[i][j];
    }
    if (clipped) CHECK(sqrt(after) <= max_norm * (1 + 4 * U32) && sqrt(after) >= max_norm * (1 - 1e-5));
    for (int i = 0; i < n; i++) { free(gf[i]); free(gd[i]); free(gd0[i]); }
}

/* A non-finite norm is written and reported, and nothing is scaled (even with a tiny max_norm). Values whose
 * squares overflow float32 (3e30² = 9e60) but not double must still give a finite norm. */
static void test_clip_non_finite(void) {
    printf("clip_grad_norm non-finite and float32-overflowing gradients\n");
    float a[3] = {1.0f, 2.0f, 3.0f}, b[2] = {NAN, 1.0f}, c[2] = {INFINITY, -1.0f};
    float a0[3], b0[2], c0[2];
    memcpy(a0, a, sizeof a); memcpy(b0, b, sizeof b); memcpy(c0, c, sizeof c);
    float *g1[2] = {a, b};
    int64_t n1[2] = {3, 2};
    double norm = 0;
    CHECK_STATUS(rnncore_clip_grad_norm(&norm, g1, n1, 2, 1e-3), RNNCORE_ERR_NON_FINITE);
    CHECK(!isfinite(norm));
    CHECK(memcmp(a, a0, sizeof a) == 0 && memcmp(b, b0, sizeof b) == 0);
    float *g2[2] = {a, c};
    norm = 0;
    CHECK_STATUS(rnncore_clip_grad_norm(&norm, g2, n1, 2, 1.0), RNNCORE_ERR_NON_FINITE);
    CHECK(!isfinite(norm));
    CHECK(memcmp(a, a0, sizeof a) == 0 && memcmp(c, c0, sizeof c) == 0);

    float big[2] = {3e30f, -4e30f};
    float *g3[1] = {big};
    int64_t n3[1] = {2};
    norm = 0;
    CHECK_STATUS(rnncore_clip_grad_norm(&norm, g3, n3, 1, 1.0), RNNCORE_OK);
    CHECK(fabs(norm / 5e30 - 1) < 1e-6);
    CHECK(fabs(big[0] - 0.6f) < 1e-6f && fabs(big[1] + 0.8f) < 1e-6f);
}

int main(void) {
    test_sgd(1, 0.1f, 1, 1);
    test_sgd(1000, 0.05f, 5, 2);
    test_sgd(4097, 1.5f, 3, 3);

    rnncore_adam_params plain = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    rnncore_adam_params decay = {.lr = 3e-3f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.05f};
    rnncore_adam_params zero_b = {.lr = 1e-1f, .beta1 = 0.0f, .beta2 = 0.0f, .eps = 1e-3f, .weight_decay = 0.0f};
    test_adam(1, plain, 1, 10);
    test_adam(1000, plain, 10, 11);
    test_adam(777, decay, 25, 12);
    test_adam(64, zero_b, 3, 13);
    test_adam_first_step();

    const int64_t c1[1] = {1}, c3[3] = {10, 1000, 7}, c4[4] = {5, 3, 100, 4097};
    test_clip(1, c1, 1.0, 0.5, 20);   /* single scalar, clipped */
    test_clip(3, c3, 1.0, 1.0, 21);   /* clipped */
    test_clip(3, c3, 1.0, 1e6, 22);   /* below max_norm: untouched */
    test_clip(3, c3, 1.0, 0.0, 23);   /* measure only */
    test_clip(3, c3, 1.0, -1.0, 24);  /* measure only */
    test_clip(3, c3, 1.0, INFINITY, 25);
    test_clip(4, c4, 100.0, 3.0, 26);
    test_clip_non_finite();
    return test_finish("test_optim");
}
