/* The library's thread pool (CKernels/threads.c): the thread-count API, row-wise kernels that give the same bits
 * for every thread count, kernels that give the same bits on every run for a fixed thread count, the pool used
 * from two threads of the caller at once, and the pool after fork().
 *
 * Every comparison here is between two runs on this machine (bit-identity is never checked against recorded
 * values); the numerical accuracy of each kernel against the float64 reference is checked in its own test, which
 * also runs its largest shapes on 1 and 3 threads. */
#include "cell_api.h" /* the cells' table CELLS; test_util.h, fork and waitpid */

#include <pthread.h>

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static void test_api(void) {
    printf("thread count API\n");
    CHECK(rnncore_threads() >= 1);
    CHECK_STATUS(rnncore_set_threads(-1), RNNCORE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(rnncore_set_threads(257), RNNCORE_ERR_INVALID_ARGUMENT);
    for (int n = 1; n <= 4; n++) {
        CHECK_STATUS(rnncore_set_threads(n), RNNCORE_OK);
        CHECK(rnncore_threads() == n);
    }
    CHECK_STATUS(rnncore_set_threads(3), RNNCORE_OK); /* unchanged count: nothing restarts */
    CHECK(rnncore_threads() == 3);
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK); /* back to the environment's default */
    CHECK(rnncore_threads() >= 1);
}

/* ---- row-wise kernels: the same bits for 1, 2, 3 and 4 threads ------------------------------------------- */

enum { M = 300, V = 1000, P = 200003 };

typedef struct rowwise_out {
    double loss, norm;
    int64_t count;
    float *dlogits, *probs, *sgd, *adam_p, *adam_m, *adam_v, *clipped;
} rowwise_out;

static float *g_logits, *g_grad;
static int32_t g_targets[M];

static void rowwise_run(rowwise_out *o) {
    o->dlogits = alloc_f((int64_t)M * V);
    o->probs = alloc_f((int64_t)M * V);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&o->loss, &o->count, o->dlogits, g_logits, g_targets, M, V, 7, 1.0f),
                 RNNCORE_OK);
    CHECK_STATUS(rnncore_softmax_forward(o->probs, g_logits, M, V), RNNCORE_OK);
    o->sgd = alloc_f(P);
    memcpy(o->sgd, g_grad, (size_t)P * sizeof(float));
    CHECK_STATUS(rnncore_sgd_step(o->sgd, g_grad, P, 0.5f), RNNCORE_OK);
    o->adam_p = alloc_f(P), o->adam_m = alloc_f(P), o->adam_v = alloc_f(P);
    memcpy(o->adam_p, g_grad, (size_t)P * sizeof(float));
    const rnncore_adam_params ap = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    for (int64_t step = 1; step <= 3; step++) {
        CHECK_STATUS(rnncore_adam_step(o->adam_p, o->adam_m, o->adam_v, g_grad, P, &ap, step), RNNCORE_OK);
    }
    o->clipped = alloc_f(P);
    memcpy(o->clipped, g_grad, (size_t)P * sizeof(float));
    float *grads[] = {o->clipped, o->clipped + 1000};
    const int64_t counts[] = {1000, P - 1000};
    CHECK_STATUS(rnncore_clip_grad_norm(&o->norm, grads, counts, 2, 0.25), RNNCORE_OK);
}

static void rowwise_free(rowwise_out *o) {
    free(o->dlogits), free(o->probs), free(o->sgd), free(o->adam_p), free(o->adam_m), free(o->adam_v);
    free(o->clipped);
}

static void test_rowwise_independent_of_threads(void) {
    printf("row-wise kernels: identical bits for 1, 2, 3 and 4 threads\n");
    rng_t r = {42};
    g_logits = alloc_f((int64_t)M * V);
    g_grad = alloc_f(P);
    fill_f(g_logits, (int64_t)M * V, &r, -8, 8);
    fill_f(g_grad, P, &r, -1, 1);
    for (int m = 0; m < M; m++) g_targets[m] = m % 11 == 0 ? 7 : rng_int(&r, V); /* 7 is the ignore index */
    rowwise_out base;
    CHECK_STATUS(rnncore_set_threads(1), RNNCORE_OK);
    rowwise_run(&base);
    CHECK(base.count > 0 && base.count < M);
    for (int n = 2; n <= 4; n++) {
        CHECK_STATUS(rnncore_set_threads(n), RNNCORE_OK);
        rowwise_out o;
        rowwise_run(&o);
        const size_t mv = (size_t)M * V * sizeof(float), pb = (size_t)P * sizeof(float);
        CHECK(same_bits(&o.loss, &base.loss, sizeof o.loss) && o.count == base.count);
        CHECK(same_bits(o.dlogits, base.dlogits, mv));
        CHECK(same_bits(o.probs, base.probs, mv));
        CHECK(same_bits(o.sgd, base.sgd, pb));
        CHECK(same_bits(o.adam_p, base.adam_p, pb) && same_bits(o.adam_m, base.adam_m, pb) &&
              same_bits(o.adam_v, base.adam_v, pb));
        CHECK(same_bits(&o.norm, &base.norm, sizeof o.norm) && same_bits(o.clipped, base.clipped, pb));
        rowwise_free(&o);
    }
    rowwise_free(&base);
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
}

/* ---- every kernel of a training step: the same bits on every run for a fixed thread count ---------------- */

/* One window forward and backward of a cell at a size whose recurrent product is packed and split (H·G >= 32768)
 * and whose input projection and weight gradients are split GEMMs; every output concatenated into *out. */
static float *cell_run(const cell_api *cell, int64_t truncation, int64_t *floats) {
    const rnncore_window win = {.N = 13, .T = 9, .D = 70, .H = 150, .truncation = truncation};
    rnncore_cell_sizes s;
    CHECK_STATUS(cell->sizes(&s, &win), RNNCORE_OK);
    const int64_t N = win.N, T = win.T, D = win.D, H = win.H, G = s.gates * H, S = s.states;
    rng_t r = {7};
    float *xs = alloc_f(N * T * D), *state0 = alloc_f(S * N * H), *wx = alloc_f(D * G), *wh = alloc_f(H * G);
    float *b = alloc_f(G), *bh = alloc_f(G), *dhs = alloc_f(N * T * H), *dlast = alloc_f(S * N * H);
    fill_f(xs, N * T * D, &r, -1, 1), fill_f(state0, S * N * H, &r, -0.5, 0.5), fill_f(wx, D * G, &r, -0.1, 0.1);
    fill_f(wh, H * G, &r, -0.1, 0.1), fill_f(b, G, &r, -0.1, 0.1), fill_f(bh, G, &r, -0.1, 0.1);
    fill_f(dhs, N * T * H, &r, -1, 1), fill_f(dlast, S * N * H, &r, -1, 1);
    *floats = N * T * H + s.cache + S * N * H + N * T * D + S * N * H + D * G + H * G + 2 * G;
    float *out = alloc_f(*floats);
    float *hs = out, *cache = hs + N * T * H, *last = cache + s.cache, *dxs = last + S * N * H;
    float *dstate0 = dxs + N * T * D, *dwx = dstate0 + S * N * H, *dwh = dwx + D * G, *db = dwh + H * G;
    float *dbh = db + G, *ws = alloc_f(s.workspace);
    const rnncore_cell_weights w = {wx, wh, b, cell->gru ? bh : NULL};
    const rnncore_cell_gradients g = {dwx, dwh, db, cell->gru ? dbh : NULL};
    CHECK_STATUS(cell->forward(hs, s.cache ? cache : NULL, last, xs, state0, &w, &win), RNNCORE_OK);
    CHECK_STATUS(cell->backward(dxs, dstate0, &g, ws, dhs, dlast, xs, state0, hs, s.cache ? cache : NULL, &w, &win),
                 RNNCORE_OK);
    free(xs), free(state0), free(wx), free(wh), free(b), free(bh), free(dhs), free(dlast), free(ws);
    return out;
}

static void test_cells_deterministic(void) {
    printf("cell windows (packed recurrent product, split GEMMs): identical bits on two runs at 1, 2 and 3 threads\n");
    for (int threads = 1; threads <= 3; threads++) {
        CHECK_STATUS(rnncore_set_threads(threads), RNNCORE_OK);
        for (int c = 0; c < (int)(sizeof CELLS / sizeof CELLS[0]); c++) {
            for (int64_t truncation = 0; truncation <= 4; truncation += 4) {
                int64_t n1, n2;
                float *a = cell_run(&CELLS[c], truncation, &n1);
                float *b = cell_run(&CELLS[c], truncation, &n2);
                CHECK(n1 == n2 && same_bits(a, b, (size_t)n1 * sizeof(float)));
                int finite = 1;
                for (int64_t i = 0; i < n1; i++) finite &= isfinite(a[i]);
                CHECK(finite);
                printf("  %-8s threads %d truncation %lld: %s\n", CELLS[c].name, threads, (long long)truncation,
                       n1 == n2 && same_bits(a, b, (size_t)n1 * sizeof(float)) ? "same bits" : "DIFFERENT");
                free(a), free(b);
            }
        }
    }
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
}

/* ---- two caller threads at once ------------------------------------------------------------------------- */

typedef struct caller {
    double loss;
    float *dlogits;
    int ok;
} caller;

static void *caller_main(void *arg) {
    caller *c = arg;
    c->ok = 1;
    for (int i = 0; i < 50; i++) {
        int64_t count;
        c->ok &= rnncore_softmax_cross_entropy(&c->loss, &count, c->dlogits, g_logits, g_targets, M, V, 7, 1.0f) ==
                 RNNCORE_OK;
    }
    return NULL;
}

static void test_two_callers(void) {
    printf("two caller threads share the pool\n");
    CHECK_STATUS(rnncore_set_threads(2), RNNCORE_OK);
    double loss;
    int64_t count;
    float *want = alloc_f((int64_t)M * V);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &count, want, g_logits, g_targets, M, V, 7, 1.0f), RNNCORE_OK);
    caller c[2] = {{.dlogits = alloc_f((int64_t)M * V)}, {.dlogits = alloc_f((int64_t)M * V)}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, caller_main, &c[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(c[i].ok && same_bits(&c[i].loss, &loss, sizeof loss));
        CHECK(same_bits(c[i].dlogits, want, (size_t)M * V * sizeof(float)));
        free(c[i].dlogits);
    }
    free(want);
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
}

/* ---- fork ----------------------------------------------------------------------------------------------- */

static void test_fork(void) {
    printf("a forked child starts its own pool\n");
    CHECK_STATUS(rnncore_set_threads(2), RNNCORE_OK);
    double loss;
    int64_t count;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, &count, NULL, g_logits, g_targets, M, V, 7, 1.0f), RNNCORE_OK);
    fflush(stdout);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        double child_loss;
        int64_t child_count;
        const int ok = rnncore_softmax_cross_entropy(&child_loss, &child_count, NULL, g_logits, g_targets, M, V, 7,
                                                     1.0f) == RNNCORE_OK &&
                       same_bits(&child_loss, &loss, sizeof loss) && rnncore_threads() == 2;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_STATUS(rnncore_set_threads(0), RNNCORE_OK);
}

int main(void) {
    test_api();
    test_rowwise_independent_of_threads();
    test_cells_deterministic();
    test_two_callers();
    test_fork();
    free(g_logits), free(g_grad);
    return test_finish("test_threads");
}
