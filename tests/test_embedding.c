/*
 * test_embedding.c — rnncore_embedding_forward (row gather) and rnncore_embedding_backward (scatter-add).
 *
 *  (a) kernels vs the double reference: the forward is a copy (exact); the backward adds repeated ids in
 *      increasing m, so it must equal, bit for bit, the same float32 loop written out here;
 *  (b) the reference backward vs central differences of the reference forward (double, eps 1e-5);
 *  (c) the kernel backward vs central differences of the kernel forward (eps 1e-2);
 *  accumulate semantics (a second call adds onto the first) and edge shapes (M=1, V=2, D=1, ids 0 and V-1 only).
 * Out-of-range ids are in test_api.c.
 */
#include "test_util.h"
#include "reference.h"

static void test_vs_ref(int64_t M, int64_t V, int64_t D, uint64_t seed) {
    printf("embedding M=%lld V=%lld D=%lld\n", (long long)M, (long long)V, (long long)D);
    rng_t r = {seed};
    float *w = alloc_f(V * D), *out = alloc_f(M * D), *dout = alloc_f(M * D), *dw = alloc_f(V * D);
    int32_t *ids = malloc((size_t)M * sizeof *ids);
    assert(ids);
    fill_f(w, V * D, &r, -1, 1);
    fill_f(dout, M * D, &r, -1, 1);
    fill_f(dw, V * D, &r, -1, 1); /* a prior the backward must add onto */
    /* ids repeat (M may exceed V) and always include the ends of the range */
    for (int64_t m = 0; m < M; m++) ids[m] = rng_int(&r, (int32_t)V);
    ids[0] = (int32_t)(V - 1);
    if (M > 1) ids[M - 1] = 0;
    if (M > 3) ids[2] = ids[1];

    double *wd = to_d(w, V * D), *outd = alloc_d(M * D), *doutd = to_d(dout, M * D), *dwd = to_d(dw, V * D);
    fill_const_f(out, M * D, NAN);
    CHECK_STATUS(rnncore_embedding_forward(out, ids, w, M, V, D), RNNCORE_OK);
    ref_embedding_forward(outd, ids, wd, M, V, D);
    check_close_fd("embedding_forward out (exact copy)", out, outd, M * D, 0, 0);

    /* the expected float32 result: dW[ids[m]] += dout[m] in increasing m */
    float *expect = alloc_f(V * D);
    memcpy(expect, dw, (size_t)(V * D) * sizeof *expect);
    for (int64_t m = 0; m < M; m++)
        for (int64_t d = 0; d < D; d++) expect[ids[m] * D + d] += dout[m * D + d];
    CHECK_STATUS(rnncore_embedding_backward(dw, dout, ids, M, V, D), RNNCORE_OK);
    ref_embedding_backward(dwd, doutd, ids, M, V, D);
    /* vs double: each row sums (repeats + 1) values of size ~1 in float32: (M+1)·u abs and rel */
    double t = (double)(M + 1) * 0x1.0p-24;
    check_close_fd("embedding_backward dW vs ref", dw, dwd, V * D, t, t);
    CHECK(memcmp(dw, expect, (size_t)(V * D) * sizeof *dw) == 0); /* deterministic, in increasing m */

    /* accumulate: a second call adds onto the first, again exactly the float32 loop in increasing m */
    float *g1 = alloc_f(V * D), *g2 = alloc_f(V * D);
    CHECK_STATUS(rnncore_embedding_backward(g1, dout, ids, M, V, D), RNNCORE_OK);
    memcpy(g2, g1, (size_t)(V * D) * sizeof *g2);
    for (int64_t m = 0; m < M; m++)
        for (int64_t d = 0; d < D; d++) g2[ids[m] * D + d] += dout[m * D + d];
    CHECK_STATUS(rnncore_embedding_backward(g1, dout, ids, M, V, D), RNNCORE_OK);
    CHECK(memcmp(g1, g2, (size_t)(V * D) * sizeof *g1) == 0);

    free(w); free(out); free(dout); free(dw); free(ids); free(wd); free(outd); free(doutd); free(dwd);
    free(expect); free(g1); free(g2);
}

typedef struct { float *w, *out; double *wd, *outd, *lw; const int32_t *ids; int64_t M, V, D; } emb_ctx;

static double loss_f(void *v) {
    emb_ctx *c = v;
    rnncore_status s = rnncore_embedding_forward(c->out, c->ids, c->w, c->M, c->V, c->D);
    assert(s == RNNCORE_OK);
    return dot_fd(c->out, c->lw, c->M * c->D);
}
static double loss_d(void *v) {
    emb_ctx *c = v;
    ref_embedding_forward(c->outd, c->ids, c->wd, c->M, c->V, c->D);
    return dot_dd(c->outd, c->lw, c->M * c->D);
}

/* L = Σ out ⊙ Wl is linear in W, so central differences have no truncation error: (b) only rounding,
 * ~1e-16·|L|/eps: 1e-9 abs + 1e-7 rel. (c) the float32 steps are exact (the denominator uses the rounded
 * values) and the copied values are summed in double, so the numerical side is exact to ~1e-14; the analytic
 * side is the kernel's float32 sum of up to M rows, off by ~M·u: 4·M·u abs and rel (M = 7: 1.7e-6). */
static void test_grad(void) {
    enum { M = 7, V = 4, D = 3 };
    printf("embedding gradient checks M=%d V=%d D=%d\n", M, V, D);
    rng_t r = {99};
    int32_t ids[M] = {0, 3, 3, 1, 0, 3, 2};
    float w[V * D], out[M * D], lwf[M * D], dw[V * D] = {0};
    fill_f(w, V * D, &r, -1, 1);
    fill_f(lwf, M * D, &r, -1, 1);
    emb_ctx c = {w, out, to_d(w, V * D), alloc_d(M * D), to_d(lwf, M * D), ids, M, V, D};
    double *dwd = alloc_d(V * D);
    ref_embedding_backward(dwd, c.lw, ids, M, V, D);
    grad_check_d("[ref] embedding_backward dW", c.wd, dwd, V * D, 1e-5, loss_d, &c, 1e-9, 1e-7);
    CHECK_STATUS(rnncore_embedding_backward(dw, lwf, ids, M, V, D), RNNCORE_OK);
    grad_check_f("[f32] embedding_backward dW", w, dw, V * D, 1e-2, loss_f, &c, 4.0 * M * 0x1.0p-24,
                 4.0 * M * 0x1.0p-24);
    free(c.wd); free(c.outd); free(c.lw); free(dwd);
}

int main(void) {
    test_vs_ref(1, 2, 1, 1);      /* M=1, V=2, D=1 */
    test_vs_ref(5, 2, 3, 2);      /* V=2 with repeats */
    test_vs_ref(40, 7, 5, 3);     /* M > V: many repeats */
    test_vs_ref(64, 1000, 32, 4);
    test_vs_ref(1000, 10, 16, 5); /* heavy repetition: 100 adds per row */
    test_grad();
    return test_finish("test_embedding");
}
