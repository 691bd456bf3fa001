/*
 * test_api.c — the ABI contract outside the numerics: status strings, versions, and every argument error:
 * NULL required pointers, zero/negative sizes, size overflow, ids/targets out of [0, V), aliasing, and invalid
 * scalars; the window kernels of every cell through tests/cell_api.h (a negative truncation included). The header promises that on an argument error nothing has been
 * written to any output; outputs are filled with a sentinel first and checked afterwards.
 * Calls with absurd sizes run in a child process (fork) so that a kernel that trusts such a size crashes the
 * child, which is reported as a failure, instead of the whole suite.
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid */
#include "test_util.h"
#include "cell_api.h"

#include <sys/wait.h>
#include <unistd.h>

#define OK RNNCORE_OK
#define EN RNNCORE_ERR_NULL_POINTER
#define ES RNNCORE_ERR_INVALID_SIZE
#define EO RNNCORE_ERR_SIZE_OVERFLOW
#define EA RNNCORE_ERR_INVALID_ARGUMENT
#define EI RNNCORE_ERR_INDEX_OUT_OF_RANGE
#define EL RNNCORE_ERR_ALIASING
#define SENT 12345.0f /* sentinel for "untouched" */

static void test_status_strings(void) {
    printf("status strings and versions\n");
    const rnncore_status all[] = {RNNCORE_OK, RNNCORE_ERR_NULL_POINTER, RNNCORE_ERR_INVALID_SIZE,
                                  RNNCORE_ERR_SIZE_OVERFLOW, RNNCORE_ERR_INVALID_ARGUMENT,
                                  RNNCORE_ERR_INDEX_OUT_OF_RANGE, RNNCORE_ERR_NON_FINITE, RNNCORE_ERR_ALIASING};
    const int n = (int)(sizeof all / sizeof all[0]);
    CHECK(RNNCORE_OK == 0);
    for (int i = 0; i < n; i++) {
        const char *s = rnncore_status_string(all[i]);
        CHECK(s != NULL && s[0] != '\0');
        CHECK(i == 0 || all[i] < 0);
        for (int j = 0; j < i; j++) CHECK(s && strcmp(s, rnncore_status_string(all[j])) != 0);
        printf("  %3d  %s\n", (int)all[i], s ? s : "(null)");
    }
    CHECK(rnncore_status_string((rnncore_status)-1000) != NULL);
    CHECK(rnncore_status_string((rnncore_status)42) != NULL);

    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", RNNCORE_VERSION_MAJOR, RNNCORE_VERSION_MINOR, RNNCORE_VERSION_PATCH);
    CHECK(rnncore_version() != NULL && strcmp(rnncore_version(), expect) == 0);
    CHECK(rnncore_version_number() == RNNCORE_VERSION_NUMBER);
    CHECK(rnncore_abi_version() == RNNCORE_ABI_VERSION);
    printf("  version %s, number %d, abi %d\n", rnncore_version(), rnncore_version_number(), rnncore_abi_version());
}

/* Buffers big enough for every call below (N=2, T=3, D=4, H=5, V=6, M=N*T). */
enum { N = 2, T = 3, D = 4, H = 5, V = 6, M = N * T, BIG = 1024 };
static float in[8][BIG];   /* inputs */
static float out[8][BIG];  /* outputs, refilled with the sentinel before each group */
static int32_t ids[BIG];

static void reset_outputs(void) {
    for (int i = 0; i < 8; i++) fill_const_f(out[i], BIG, SENT);
}
static int outputs_untouched(void) {
    for (int i = 0; i < 8; i++) if (!all_equal_f(out[i], BIG, SENT)) return 0;
    return 1;
}
static void init_inputs(void) {
    rng_t r = {7};
    for (int i = 0; i < 8; i++) fill_f(in[i], BIG, &r, -1, 1);
    for (int i = 0; i < BIG; i++) ids[i] = i % V;
}

/* Each call must return the status and leave every output buffer alone. */
#define EXPECT(call, status) do { reset_outputs(); CHECK_STATUS(call, status); CHECK(outputs_untouched()); } while (0)

static void test_null_pointers(void) {
    printf("NULL required pointers -> RNNCORE_ERR_NULL_POINTER\n");
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *ws = out[5], *o6 = out[6];
    const float *a = in[0], *b = in[1], *c = in[2], *d = in[3], *e = in[4], *f = in[5];
    int64_t cnt = -7;
    EXPECT(rnncore_rnn_step_forward(NULL, a, b, c, d, e, N, D, H), EN);
    EXPECT(rnncore_rnn_step_forward(o0, NULL, b, c, d, e, N, D, H), EN);
    EXPECT(rnncore_rnn_step_forward(o0, a, b, NULL, d, e, N, D, H), EN);
    EXPECT(rnncore_rnn_step_forward(o0, a, b, c, NULL, e, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, NULL, o3, o4, ws, a, b, c, d, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, NULL, o4, ws, a, b, c, d, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, NULL, a, b, c, d, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, NULL, b, c, d, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, NULL, c, d, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, NULL, e, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, NULL, a, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, e, NULL, N, D, H), EN);
    EXPECT(rnncore_rnn_step_backward_workspace_size(NULL, N, H), EN);
    /* LSTM: h_next/hs, c_next/cs, gates, x, wx, wh and (backward) dwx, dwh, workspace, dh_next/dhs, c_next/cs,
     * gates and hs are required */
    EXPECT(rnncore_lstm_step_forward(NULL, o1, o2, a, b, c, d, e, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_forward(o0, NULL, o2, a, b, c, d, e, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_forward(o0, o1, NULL, a, b, c, d, e, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_forward(o0, o1, o2, NULL, b, c, d, e, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_forward(o0, o1, o2, a, b, c, NULL, e, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, NULL, f, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, NULL, o4, o6, ws, a, b, c, d, e, a, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, NULL, o6, ws, a, b, c, d, e, a, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, NULL, a, b, c, d, e, a, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, NULL, b, c, d, e, a, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, NULL, d, e, a, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, NULL, b, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, NULL, c, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, NULL, d, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, NULL, N, D, H), EN);
    EXPECT(rnncore_lstm_step_backward_workspace_size(NULL, N, H), EN);
    EXPECT(rnncore_embedding_forward(NULL, ids, a, M, V, D), EN);
    EXPECT(rnncore_embedding_forward(o0, NULL, a, M, V, D), EN);
    EXPECT(rnncore_embedding_forward(o0, ids, NULL, M, V, D), EN);
    EXPECT(rnncore_embedding_backward(NULL, a, ids, M, V, D), EN);
    EXPECT(rnncore_embedding_backward(o0, NULL, ids, M, V, D), EN);
    EXPECT(rnncore_embedding_backward(o0, a, NULL, M, V, D), EN);
    EXPECT(rnncore_affine_forward(NULL, a, b, c, M, D, V), EN);
    EXPECT(rnncore_affine_forward(o0, NULL, b, c, M, D, V), EN);
    EXPECT(rnncore_affine_forward(o0, a, NULL, c, M, D, V), EN);
    EXPECT(rnncore_affine_backward(o0, NULL, o2, a, b, c, M, D, V), EN);
    EXPECT(rnncore_affine_backward(o0, o1, o2, NULL, b, c, M, D, V), EN);
    EXPECT(rnncore_affine_backward(o0, o1, o2, a, NULL, c, M, D, V), EN);
    EXPECT(rnncore_affine_backward(o0, o1, o2, a, b, NULL, M, D, V), EN);
    double loss = SENT;
    EXPECT(rnncore_softmax_cross_entropy(NULL, &cnt, o0, a, ids, M, V, -1, 1.0f), EN);
    EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, o0, NULL, ids, M, V, -1, 1.0f), EN);
    EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, o0, a, NULL, M, V, -1, 1.0f), EN);
    CHECK(loss == SENT && cnt == -7);
    EXPECT(rnncore_softmax_forward(NULL, a, M, V), EN);
    EXPECT(rnncore_softmax_forward(o0, NULL, M, V), EN);
    EXPECT(rnncore_sgd_step(NULL, a, 8, 0.1f), EN);
    EXPECT(rnncore_sgd_step(o0, NULL, 8, 0.1f), EN);
    rnncore_adam_params hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    EXPECT(rnncore_adam_step(NULL, o1, o2, a, 8, &hp, 1), EN);
    EXPECT(rnncore_adam_step(o0, NULL, o2, a, 8, &hp, 1), EN);
    EXPECT(rnncore_adam_step(o0, o1, NULL, a, 8, &hp, 1), EN);
    EXPECT(rnncore_adam_step(o0, o1, o2, NULL, 8, &hp, 1), EN);
    EXPECT(rnncore_adam_step(o0, o1, o2, a, 8, NULL, 1), EN);
    float *g2[2] = {o0, o1}, *gnull[2] = {o0, NULL};
    int64_t c2[2] = {4, 4};
    double norm = SENT;
    EXPECT(rnncore_clip_grad_norm(NULL, g2, c2, 2, 1.0), EN);
    EXPECT(rnncore_clip_grad_norm(&norm, NULL, c2, 2, 1.0), EN);
    EXPECT(rnncore_clip_grad_norm(&norm, g2, NULL, 2, 1.0), EN);
    EXPECT(rnncore_clip_grad_norm(&norm, gnull, c2, 2, 1e-9), EN);
    CHECK(norm == SENT);
}

static void test_bad_sizes(void) {
    printf("zero / negative sizes -> RNNCORE_ERR_INVALID_SIZE\n");
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *ws = out[5], *o6 = out[6];
    const float *a = in[0], *b = in[1], *c = in[2], *d = in[3], *e = in[4], *f = in[5];
    for (int64_t bad = 0; bad >= -1; bad--) {
        int64_t cnt = -7;
        EXPECT(rnncore_rnn_step_forward(o0, a, b, c, d, e, bad, D, H), ES);
        EXPECT(rnncore_rnn_step_forward(o0, a, b, c, d, e, N, bad, H), ES);
        EXPECT(rnncore_rnn_step_forward(o0, a, b, c, d, e, N, D, bad), ES);
        EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, e, a, bad, D, H), ES);
        EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, e, a, N, bad, H), ES);
        EXPECT(rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, e, a, N, D, bad), ES);
        EXPECT(rnncore_rnn_step_backward_workspace_size(&cnt, bad, H), ES);
        EXPECT(rnncore_rnn_step_backward_workspace_size(&cnt, N, bad), ES);
        EXPECT(rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, e, f, bad, D, H), ES);
        EXPECT(rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, e, f, N, bad, H), ES);
        EXPECT(rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, e, f, N, D, bad), ES);
        EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, d, bad, D, H), ES);
        EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, d, N, bad, H), ES);
        EXPECT(rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, d, N, D, bad), ES);
        EXPECT(rnncore_lstm_step_backward_workspace_size(&cnt, bad, H), ES);
        EXPECT(rnncore_lstm_step_backward_workspace_size(&cnt, N, bad), ES);
        CHECK(cnt == -7);
        EXPECT(rnncore_embedding_forward(o0, ids, a, bad, V, D), ES);
        EXPECT(rnncore_embedding_forward(o0, ids, a, M, bad, D), ES);
        EXPECT(rnncore_embedding_forward(o0, ids, a, M, V, bad), ES);
        EXPECT(rnncore_embedding_backward(o0, a, ids, bad, V, D), ES);
        EXPECT(rnncore_embedding_backward(o0, a, ids, M, bad, D), ES);
        EXPECT(rnncore_embedding_backward(o0, a, ids, M, V, bad), ES);
        EXPECT(rnncore_affine_forward(o0, a, b, c, bad, D, V), ES);
        EXPECT(rnncore_affine_forward(o0, a, b, c, M, bad, V), ES);
        EXPECT(rnncore_affine_forward(o0, a, b, c, M, D, bad), ES);
        EXPECT(rnncore_affine_backward(o0, o1, o2, a, b, c, bad, D, V), ES);
        EXPECT(rnncore_affine_backward(o0, o1, o2, a, b, c, M, bad, V), ES);
        EXPECT(rnncore_affine_backward(o0, o1, o2, a, b, c, M, D, bad), ES);
        double loss = SENT;
        EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, o0, a, ids, bad, V, -1, 1.0f), ES);
        EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, o0, a, ids, M, bad, -1, 1.0f), ES);
        CHECK(loss == SENT && cnt == -7);
        EXPECT(rnncore_softmax_forward(o0, a, bad, V), ES);
        EXPECT(rnncore_softmax_forward(o0, a, M, bad), ES);
        EXPECT(rnncore_sgd_step(o0, a, bad, 0.1f), ES);
        rnncore_adam_params hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
        EXPECT(rnncore_adam_step(o0, o1, o2, a, bad, &hp, 1), ES);
        float *g2[2] = {o0, o1};
        int64_t cb[2] = {4, bad};
        double norm = SENT;
        EXPECT(rnncore_clip_grad_norm(&norm, g2, cb, 2, 1e-9), ES);
        int64_t c2[2] = {4, 4};
        EXPECT(rnncore_clip_grad_norm(&norm, g2, c2, bad, 1e-9), ES);
        CHECK(norm == SENT);
    }
}

/* ---- size overflow, each call in a child process ----------------------------------------------------------- */

#define HUGE2 (INT64_MAX / 2)
#define OVER32 ((int64_t)INT32_MAX + 1)

/* Case i: sets *what to the call's text; makes the call only when run is set. */
static rnncore_status overflow_case(int i, const char **what, int run) {
    float *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *ws = out[5], *o6 = out[6];
    const float *a = in[0], *b = in[1], *c = in[2], *d = in[3], *e = in[4], *f = in[5];
    static int64_t cnt;
    static double loss;
    static float *g1[1];
    static int64_t ch[1] = {HUGE2};
    static rnncore_adam_params hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    g1[0] = o0;
#define CASE(k, call) case k: *what = #call; return run ? call : RNNCORE_OK
    switch (i) {
    CASE(0, rnncore_rnn_step_forward(o0, a, b, c, d, e, HUGE2, HUGE2, HUGE2));
    CASE(1, rnncore_rnn_step_forward(o0, a, b, c, d, e, 1, OVER32, 1));
    CASE(2, rnncore_rnn_step_backward(o0, o1, o2, o3, o4, ws, a, b, c, d, e, a, HUGE2, 4, HUGE2));
    CASE(3, rnncore_rnn_step_backward_workspace_size(&cnt, HUGE2, HUGE2));
    CASE(4, rnncore_embedding_forward(o0, ids, a, HUGE2, V, HUGE2));
    CASE(5, rnncore_embedding_backward(o0, a, ids, M, HUGE2, HUGE2));
    CASE(6, rnncore_affine_forward(o0, a, b, c, HUGE2, HUGE2, HUGE2));
    CASE(7, rnncore_affine_forward(o0, a, b, c, 1, 1, OVER32));
    CASE(8, rnncore_affine_backward(o0, o1, o2, a, b, c, OVER32, 1, 1));
    CASE(9, rnncore_softmax_cross_entropy(&loss, &cnt, o0, a, ids, HUGE2, HUGE2, -1, 1.0f));
    CASE(10, rnncore_softmax_forward(o0, a, HUGE2, HUGE2));
    CASE(11, rnncore_sgd_step(o0, a, HUGE2, 0.1f));
    CASE(12, rnncore_adam_step(o0, o1, o2, a, HUGE2, &hp, 1));
    CASE(13, rnncore_clip_grad_norm(&loss, g1, ch, 1, 1.0));
    CASE(14, rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, e, f, HUGE2, HUGE2, HUGE2));
    CASE(15, rnncore_lstm_step_forward(o0, o1, o2, a, b, c, d, e, f, 1, 1, OVER32 / 4)); /* 4H > INT32_MAX */
    CASE(16, rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, d, HUGE2, 4, HUGE2));
    CASE(17, rnncore_lstm_step_backward(o0, o1, o2, o3, o4, o6, ws, a, b, c, d, e, a, b, c, d, 1, 1, OVER32 / 4));
    CASE(18, rnncore_lstm_step_backward_workspace_size(&cnt, HUGE2, HUGE2));
    CASE(19, rnncore_lstm_step_backward_workspace_size(&cnt, 1, INT64_MAX / 4 + 1)); /* 4H overflows int64 */
    default: *what = NULL; return RNNCORE_OK;
    }
#undef CASE
}

static void test_overflow(void) {
    printf("size overflow -> RNNCORE_ERR_SIZE_OVERFLOW (each call in a child process)\n");
    for (int i = 0;; i++) {
        const char *what = NULL;
        overflow_case(i, &what, 0);
        if (!what) break;
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        assert(pid >= 0);
        if (pid == 0) {
            reset_outputs();
            rnncore_status s = overflow_case(i, &what, 1);
            int touched = !outputs_untouched();
            _exit((-(int)s) | (touched ? 64 : 0));
        }
        int wst = 0;
        waitpid(pid, &wst, 0);
        g_checks++;
        if (!WIFEXITED(wst)) {
            g_failures++;
            fprintf(stderr, "%s:%d: %s\n    crashed (signal %d) instead of returning RNNCORE_ERR_SIZE_OVERFLOW\n",
                    __FILE__, __LINE__, what, WIFSIGNALED(wst) ? WTERMSIG(wst) : -1);
            continue;
        }
        int code = WEXITSTATUS(wst), s = -(code & 63);
        if (s != RNNCORE_ERR_SIZE_OVERFLOW || (code & 64)) {
            g_failures++;
            fprintf(stderr, "%s:%d: %s\n    returned %d (%s)%s, expected RNNCORE_ERR_SIZE_OVERFLOW\n", __FILE__,
                    __LINE__, what, s, rnncore_status_string((rnncore_status)s),
                    (code & 64) ? " and wrote an output" : "");
        }
    }
}

/* ---- ids and targets outside [0, V): checked before anything is written ------------------------------------ */

static void test_index_range(void) {
    printf("ids / targets outside [0, V) -> RNNCORE_ERR_INDEX_OUT_OF_RANGE, outputs untouched\n");
    const float *w = in[0], *z = in[1];
    const int32_t bad_values[] = {V, -1, INT32_MAX, INT32_MIN};
    for (int k = 0; k < 4; k++) {
        int32_t idv[M] = {0, 1, 2, 3, 4, 5};
        idv[M - 1] = bad_values[k]; /* last, so a kernel that writes as it goes has already written */
        EXPECT(rnncore_embedding_forward(out[0], idv, w, M, V, D), EI);
        EXPECT(rnncore_embedding_backward(out[0], w, idv, M, V, D), EI);
        double loss = SENT; int64_t cnt = -7;
        /* ignore_index -100 (or no ignore index at all): the bad target is not skipped */
        EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, out[0], z, idv, M, V, -100, 1.0f), EI);
        EXPECT(rnncore_softmax_cross_entropy(&loss, &cnt, out[0], z, idv, M, V, RNNCORE_NO_IGNORE_INDEX, 1.0f), EI);
        CHECK(loss == SENT && cnt == -7);
    }
    /* in place: the logits (the output) must survive a bad target too */
    int32_t tg[M] = {0, 1, 2, 3, 4, V};
    float zi[M * V];
    memcpy(zi, z, sizeof zi);
    double loss = SENT;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, zi, zi, tg, M, V, -1, 1.0f), EI);
    CHECK(memcmp(zi, z, sizeof zi) == 0 && loss == SENT);
    /* a target equal to ignore_index is skipped even when ignore_index is negative */
    tg[M - 1] = -1;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, z, tg, M, V, -1, 1.0f), OK);
}

/* ---- aliasing ------------------------------------------------------------------------------------------------ */

/* The LSTM kernels. EXPECT refills every output (buf included, which doubles as the overlapping input) with the
 * sentinel, so each refused call is also checked to have written nothing. */
static void test_aliasing_lstm(void) {
    enum { G = 4 * H };
    float *buf = out[6], *ws = out[5], *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4];
    const float *a = in[0], *b = in[1], *c = in[2], *d = in[3], *e = in[4];
    /* step forward: h_next over h_prev, c_next over c_prev, gates over x, h_next over the end of Wh */
    EXPECT(rnncore_lstm_step_forward(buf, o1, o2, a, buf, c, d, e, NULL, N, D, H), EL);
    EXPECT(rnncore_lstm_step_forward(o0, buf, o2, a, b, buf, d, e, NULL, N, D, H), EL);
    EXPECT(rnncore_lstm_step_forward(o0, o1, buf, buf + 3, b, c, d, e, NULL, N, D, H), EL);
    EXPECT(rnncore_lstm_step_forward(buf, o1, o2, a, b, c, d, buf + N * H - 1, NULL, N, D, H), EL);
    EXPECT(rnncore_lstm_step_forward(o0, o1, buf, a, b, c, d, e, buf + N * G - 1, N, D, H), EL); /* gates over b */
    /* step backward: dx over dh_next, dc_prev over dc_next (in place), dh_prev over c_next, dWh over gates, the
     * workspace over x */
    EXPECT(rnncore_lstm_step_backward(buf, NULL, NULL, o3, o4, NULL, ws, buf, b, c, d, e, a, b, c, d, N, D, H), EL);
    EXPECT(rnncore_lstm_step_backward(NULL, NULL, buf, o3, o4, NULL, ws, a, buf, c, d, e, a, b, c, d, N, D, H), EL);
    EXPECT(rnncore_lstm_step_backward(NULL, buf, NULL, o3, o4, NULL, ws, a, b, c, d, e, buf + 1, b, c, d, N, D, H), EL);
    EXPECT(rnncore_lstm_step_backward(NULL, NULL, NULL, o3, buf, NULL, ws, a, b, c, d, e, a, buf + 9, c, d, N, D, H),
           EL);
    EXPECT(rnncore_lstm_step_backward(NULL, NULL, NULL, o3, o4, NULL, buf, a, b, buf + N * G - 1, d, e, a, b, c, d,
                                      N, D, H), EL);
    /* (the window kernels, the state carried in place included: check_cell_arguments) */
    /* adjacent but not overlapping buffers are fine */
    CHECK_STATUS(rnncore_lstm_step_forward(buf, buf + N * H, buf + 2 * N * H, buf + 2 * N * H + N * G, b, c, d, e,
                                           NULL, N, D, H), OK);
}


static void test_aliasing(void) {
    printf("overlapping outputs and inputs -> RNNCORE_ERR_ALIASING\n");
    float *buf = out[6];
    const float *a = in[0], *b = in[1], *c = in[2], *d = in[3];
    float *ws = out[5];
    rnncore_status s;
    /* step forward writing h_next over h_prev (a classic in-place mistake), over x, over Wh */
    CHECK_STATUS(rnncore_rnn_step_forward(buf, a, buf, c, d, NULL, N, D, H), EL);
    CHECK_STATUS(rnncore_rnn_step_forward(buf, buf + 3, b, c, d, NULL, N, D, H), EL);
    CHECK_STATUS(rnncore_rnn_step_forward(buf, a, b, c, buf + N * H - 1, NULL, N, D, H), EL);
    /* backward: dx over dh_next, dh_prev over h_next, dwx over x */
    CHECK_STATUS(rnncore_rnn_step_backward(buf, NULL, out[2], out[3], NULL, ws, buf, a, b, c, d, a, N, D, H), EL);
    CHECK_STATUS(rnncore_rnn_step_backward(NULL, buf, out[2], out[3], NULL, ws, a, b, c, buf + 2, d, a, N, D, H), EL);
    test_aliasing_lstm();
    /* embedding, affine */
    CHECK_STATUS(rnncore_embedding_forward(buf, ids, buf + D, M, V, D), EL);
    CHECK_STATUS(rnncore_affine_forward(buf, buf, b, NULL, M, D, V), EL);
    CHECK_STATUS(rnncore_affine_backward(buf, out[1], NULL, buf + 1, b, c, M, D, V), EL);
    /* softmax: dlogits == logits is allowed, any other overlap is not */
    memcpy(buf, a, sizeof(float) * M * V);
    double loss;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, buf + 1, buf, ids, M, V, -1, 1.0f), EL);
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, buf, buf + V, ids, M, V, -1, 1.0f), EL);
    CHECK(memcmp(buf, a, sizeof(float) * M * V) == 0);
    CHECK_STATUS(rnncore_softmax_forward(buf + 1, buf, M, V), EL);
    CHECK_STATUS(rnncore_softmax_forward(buf, buf + M * V - 1, M, V), EL);
    CHECK(memcmp(buf, a, sizeof(float) * M * V) == 0);
    s = rnncore_softmax_cross_entropy(&loss, NULL, buf, buf, ids, M, V, -1, 1.0f);
    CHECK_STATUS(s, OK);
    /* adjacent but not overlapping buffers are fine */
    CHECK_STATUS(rnncore_softmax_forward(buf + M * V, buf, M, V), OK);
    CHECK_STATUS(rnncore_rnn_step_forward(buf, buf + N * H, b, c, d, NULL, N, D, H), OK);
}

/* ---- invalid scalars ----------------------------------------------------------------------------------------- */

static void test_invalid_arguments(void) {
    printf("NaN / negative / out-of-domain scalars -> RNNCORE_ERR_INVALID_ARGUMENT\n");
    float *p = out[0], *m = out[1], *v = out[2];
    const float *g = in[0];
    EXPECT(rnncore_sgd_step(p, g, 8, -0.1f), EA);
    EXPECT(rnncore_sgd_step(p, g, 8, NAN), EA);
    const rnncore_adam_params good = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0};
    rnncore_adam_params bad[10];
    for (int i = 0; i < 10; i++) bad[i] = good;
    bad[0].lr = -1e-3f;  bad[1].lr = NAN;
    bad[2].beta1 = 1.0f; bad[3].beta1 = -0.1f;
    bad[4].beta2 = 1.0f; bad[5].beta2 = NAN;
    bad[6].eps = 0.0f;   bad[7].eps = -1e-8f;
    bad[8].weight_decay = -0.01f; bad[9].weight_decay = NAN;
    for (int i = 0; i < 10; i++) EXPECT(rnncore_adam_step(p, m, v, g, 8, &bad[i], 1), EA);
    /* step counts from 1: step 0 or below is out of its domain (INVALID_ARGUMENT; INVALID_SIZE is accepted
     * too since step is an int64 count) */
    for (int64_t step = 0; step >= -1; step--) {
        reset_outputs();
        rnncore_status s = rnncore_adam_step(p, m, v, g, 8, &good, step);
        CHECK(s == EA || s == ES);
        CHECK(outputs_untouched());
    }
    float *g2[1] = {p};
    int64_t c1[1] = {8};
    double norm = SENT;
    EXPECT(rnncore_clip_grad_norm(&norm, g2, c1, 1, NAN), EA);
    CHECK(norm == SENT);
    /* the same tensor listed twice would be scaled twice: the in/out buffers overlap */
    float *twice[2] = {p, p + 4};
    int64_t c2[2] = {8, 8};
    EXPECT(rnncore_clip_grad_norm(&norm, twice, c2, 2, 1e-9), EL);
    CHECK(norm == SENT);
    /* the upstream gradient of the loss must be a number */
    double loss = SENT;
    EXPECT(rnncore_softmax_cross_entropy(&loss, NULL, out[0], in[1], ids, M, V, -1, NAN), EA);
    CHECK(loss == SENT);
    /* the truncation of a backward (negative is out of its domain, any value >= 0 is valid): check_cell_arguments */
    /* valid edge values */
    reset_outputs();
    CHECK_STATUS(rnncore_sgd_step(p, g, 8, 0.0f), OK);
    rnncore_adam_params zero = good;
    zero.lr = 0.0f; zero.beta1 = 0.0f; zero.beta2 = 0.0f;
    CHECK_STATUS(rnncore_adam_step(p, m, v, g, 8, &zero, 1), OK);
}

int main(void) {
    init_inputs();
    test_status_strings();
    test_null_pointers();
    test_bad_sizes();
    test_index_range();
    test_aliasing();
    test_invalid_arguments();
    test_overflow();
    /* the window kernels of every cell: NULL, sizes, overflow, truncation, b_hidden, aliasing, in-place state */
    for (int i = 0; i < 4; i++) check_cell_arguments(&CELLS[i]);
    return test_finish("test_api");
}
