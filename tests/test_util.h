/*
 * test_util.h — the few helpers every C test shares: a deterministic RNG, a CHECK macro that counts failures,
 * tolerance comparisons that report the largest error seen, and central-difference gradient checks.
 *
 * Each test_<op>.c is one translation unit plus reference.c, so everything here is `static inline`.
 * A test ends with `return test_finish("name");`, which returns non-zero when any check failed (ctest reads the
 * exit code; printing "FAIL" alone is not enough).
 */
#ifndef RNNCORE_TEST_UTIL_H
#define RNNCORE_TEST_UTIL_H

/* The tests rely on assert(); keep it on even in Release builds. */
#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rnncore.h"

/* ---- failure counting ------------------------------------------------------------------------------------- */

static int g_checks = 0;
static int g_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        g_checks++;                                                                   \
        if (!(cond)) {                                                                \
            g_failures++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

/* Checks that a call returns the expected status, printing both names when it does not. */
#define CHECK_STATUS(call, expected)                                                               \
    do {                                                                                           \
        rnncore_status s_got_ = (call);                                                            \
        rnncore_status s_want_ = (expected);                                                       \
        g_checks++;                                                                                \
        if (s_got_ != s_want_) {                                                                   \
            g_failures++;                                                                          \
            fprintf(stderr, "%s:%d: %s\n    returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, \
                    #call, (int)s_got_, rnncore_status_string(s_got_), (int)s_want_,               \
                    rnncore_status_string(s_want_));                                               \
        }                                                                                          \
    } while (0)

static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed -> %s\n", name, g_checks, g_failures, g_failures ? "FAIL" : "PASS");
    return g_failures ? 1 : 0;
}

/* ---- deterministic RNG (splitmix64) ------------------------------------------------------------------------ */

typedef struct { uint64_t s; } rng_t;

static inline uint64_t rng_next(rng_t *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [lo, hi). */
static inline double rng_uniform(rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * ((double)(rng_next(r) >> 11) * 0x1.0p-53);
}
static inline int32_t rng_int(rng_t *r, int32_t n) { return (int32_t)(rng_next(r) % (uint64_t)n); }

static inline void fill_f(float *a, int64_t n, rng_t *r, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) a[i] = (float)rng_uniform(r, lo, hi);
}
static inline void fill_d(double *a, int64_t n, rng_t *r, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) a[i] = rng_uniform(r, lo, hi);
}

/* ---- small array helpers ----------------------------------------------------------------------------------- */

static inline float *alloc_f(int64_t n) { float *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p); assert(p); return p; }
static inline double *alloc_d(int64_t n) { double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p); assert(p); return p; }
static inline double *to_d(const float *a, int64_t n) {
    double *p = alloc_d(n);
    for (int64_t i = 0; i < n; i++) p[i] = a[i];
    return p;
}
static inline void fill_const_f(float *a, int64_t n, float v) { for (int64_t i = 0; i < n; i++) a[i] = v; }
/* 1 when every element of a equals v bit for bit (used for "outputs untouched" checks with a sentinel). */
static inline int all_equal_f(const float *a, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) if (memcmp(&a[i], &v, sizeof v) != 0) return 0;
    return 1;
}
static inline double dot_fd(const float *a, const double *w, int64_t n) {
    double s = 0; for (int64_t i = 0; i < n; i++) s += (double)a[i] * w[i]; return s;
}
static inline double dot_dd(const double *a, const double *w, int64_t n) {
    double s = 0; for (int64_t i = 0; i < n; i++) s += a[i] * w[i]; return s;
}

/* ---- tolerance comparisons --------------------------------------------------------------------------------
 * Element i passes when |got - ref| <= tol_abs + |ref|*tol_rel. One line per comparison reports the largest
 * absolute error seen, so the numbers can be quoted; the first few offending elements are listed. */

static inline int report_close_(const char *what, double max_err, int64_t bad, int64_t n,
                                double tol_abs, double tol_rel) {
    g_checks++;
    printf("  %-44s max abs err %.2e (tol %.0e + |ref|*%.0e) over %lld  %s\n", what, max_err, tol_abs, tol_rel,
           (long long)n, bad ? "FAIL" : "ok");
    if (bad) { g_failures++; fprintf(stderr, "  %s: %lld of %lld elements out of tolerance\n", what, (long long)bad, (long long)n); }
    return bad == 0;
}

static inline int check_close_fd(const char *what, const float *got, const double *ref, int64_t n,
                                 double tol_abs, double tol_rel) {
    double max_err = 0; int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= tol_abs + fabs(ref[i]) * tol_rel)) {
            if (bad < 5) fprintf(stderr, "  %s[%lld]: got %.9g, ref %.9g\n", what, (long long)i, (double)got[i], ref[i]);
            bad++;
            if (e != e) e = INFINITY;
        }
        if (e > max_err) max_err = e;
    }
    return report_close_(what, max_err, bad, n, tol_abs, tol_rel);
}

static inline int check_close_dd(const char *what, const double *got, const double *ref, int64_t n,
                                 double tol_abs, double tol_rel) {
    double max_err = 0; int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]);
        if (!(e <= tol_abs + fabs(ref[i]) * tol_rel)) {
            if (bad < 5) fprintf(stderr, "  %s[%lld]: got %.17g, ref %.17g\n", what, (long long)i, got[i], ref[i]);
            bad++;
            if (e != e) e = INFINITY;
        }
        if (e > max_err) max_err = e;
    }
    return report_close_(what, max_err, bad, n, tol_abs, tol_rel);
}

/* Float vs float (e.g. two kernel results that must agree). */
static inline int check_close_ff(const char *what, const float *got, const float *ref, int64_t n,
                                 double tol_abs, double tol_rel) {
    double *r = to_d(ref, n);
    int ok = check_close_fd(what, got, r, n, tol_abs, tol_rel);
    free(r);
    return ok;
}

/* ---- central differences ------------------------------------------------------------------------------------
 * loss(ctx) evaluates a scalar loss from the current contents of the buffers in ctx. The numerical gradient of
 * element i of p is (L(p_i + eps) - L(p_i - eps)) / (2 eps). For float buffers the step actually taken is
 * (float)(p_i ± eps), so the denominator uses the rounded values. */

typedef double (*loss_fn)(void *ctx);

static inline int grad_check_d(const char *what, double *p, const double *analytic, int64_t n, double eps,
                               loss_fn loss, void *ctx, double tol_abs, double tol_rel) {
    double *num = alloc_d(n);
    for (int64_t i = 0; i < n; i++) {
        double orig = p[i];
        p[i] = orig + eps; double lp = loss(ctx);
        p[i] = orig - eps; double lm = loss(ctx);
        p[i] = orig;
        num[i] = (lp - lm) / (2 * eps);
    }
    int ok = check_close_dd(what, analytic, num, n, tol_abs, tol_rel);
    free(num);
    return ok;
}

static inline int grad_check_f(const char *what, float *p, const float *analytic, int64_t n, double eps,
                               loss_fn loss, void *ctx, double tol_abs, double tol_rel) {
    double *num = alloc_d(n);
    for (int64_t i = 0; i < n; i++) {
        float orig = p[i];
        float xp = (float)((double)orig + eps), xm = (float)((double)orig - eps);
        p[i] = xp; double lp = loss(ctx);
        p[i] = xm; double lm = loss(ctx);
        p[i] = orig;
        num[i] = (lp - lm) / ((double)xp - (double)xm);
    }
    int ok = check_close_fd(what, analytic, num, n, tol_abs, tol_rel);
    free(num);
    return ok;
}

#endif /* RNNCORE_TEST_UTIL_H */
