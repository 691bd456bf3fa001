/*
 * test_nonfinite.c — NaN and ±inf INPUTS through every exported kernel (test_api.c covers the argument errors).
 *
 * The header's rule (include/rnncore.h, "Non-finite"): float inputs are not screened. A call whose arguments are
 * otherwise valid returns RNNCORE_OK and the non-finite values propagate through IEEE arithmetic; the exceptions
 * are the two results the header says are reported, the loss of rnncore_softmax_cross_entropy and the norm of
 * rnncore_clip_grad_norm (RNNCORE_ERR_NON_FINITE, clip then scales nothing). Scalar hyper-parameters that are
 * NaN or ±inf are argument errors (RNNCORE_ERR_INVALID_ARGUMENT, nothing written), except max_norm = ±inf of
 * rnncore_clip_grad_norm, which only measures.
 *
 * (a) every float buffer a kernel reads (inputs and accumulated gradients), poisoned whole and in one element,
 *     with NaN, +inf and -inf: the status is the documented one, a NaN reaches at least one output, and the call
 *     neither crashes nor hangs — each call runs in a child process with an alarm, so a crash or a hang is
 *     reported as a failure naming the kernel, the argument and the value instead of ending the suite;
 * (b) every scalar hyper-parameter at NaN, +inf and -inf;
 * (c) the softmax rows the header describes: +inf or only -inf gives NaN probabilities, a -inf off the target
 *     keeps the loss finite, a -inf target makes it +inf (RNNCORE_ERR_NON_FINITE), an ignored NaN row is skipped.
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid, alarm */
#include "test_util.h"

typedef rnncore_status (*cell_sizes_fn)(rnncore_cell_sizes *, const rnncore_window *);

#include <sys/wait.h>
#include <unistd.h>

#define OK RNNCORE_OK
#define EA RNNCORE_ERR_INVALID_ARGUMENT
#define NF RNNCORE_ERR_NON_FINITE
#define SENT 12345.0f

enum { N = 2, T = 3, D = 4, H = 5, V = 6, M = N * T, BIG = 1024, NB = 20 };
static float buf[NB][BIG];
static float before[NB][BIG];
static int32_t ids[BIG];

/* One call per kernel configuration. roles[j] says what argument j (a buffer of BIG floats) is: 'i' an input,
 * 'a' accumulated or updated in place (read and written), 'o' an output, 'w' workspace. */
typedef struct {
    const char *name;
    const char *args;  /* the argument names, space-separated, in the order of roles */
    const char *roles;
} kernel_t;

static const kernel_t kernels[] = {
    {"rnn_step_forward", "h_next x h_prev wx wh b", "oiiiii"},
    {"rnn_step_backward", "dx dh_prev dwx dwh db workspace dh_next x h_prev h_next wx wh", "ooaaawiiiiii"},
    {"rnn_forward", "hs state_last xs state0 wx wh b", "ooiiiii"},
    {"rnn_backward", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs wx wh", "ooaaawiiiiiii"},
    {"rnn_backward(truncation 2)", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs wx wh",
     "ooaaawiiiiiii"},
    {"lstm_step_forward", "h_next c_next gates x h_prev c_prev wx wh b", "oooiiiiii"},
    {"lstm_step_backward", "dx dh_prev dc_prev dwx dwh db workspace dh_next dc_next x h_prev c_prev c_next gates wx wh",
     "oooaaawiiiiiiiii"},
    {"lstm_forward", "hs cache state_last xs state0 wx wh b", "oooiiiii"},
    {"lstm_backward", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs cache wx wh", "ooaaawiiiiiiii"},
    {"lstm_backward(truncation 2)", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs cache wx wh",
     "ooaaawiiiiiiii"},
    {"embedding_forward", "out w", "oi"},
    {"embedding_backward", "dw dout", "ai"},
    {"affine_forward", "y x w b", "oiii"},
    {"affine_backward", "dx dw db dy x w", "oaaiii"},
    {"softmax_cross_entropy", "dlogits logits", "oi"},
    {"softmax_cross_entropy(in place)", "logits", "a"},
    {"softmax_forward", "probs logits", "oi"},
    {"softmax_forward(in place)", "logits", "a"},
    {"sgemm(beta 0)", "c a b", "oii"},
    {"sgemm(beta 0.5)", "c a b", "aii"},
    {"sgd_step", "param grad", "ai"},
    {"adam_step", "param m v grad", "aaai"},
    {"clip_grad_norm(max 1e-3)", "grad0 grad1", "aa"},
    {"clip_grad_norm(measure)", "grad0 grad1", "aa"},
    {"rnn_relu_forward", "hs state_last xs state0 wx wh b", "ooiiiii"},
    {"rnn_relu_backward", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs wx wh", "ooaaawiiiiiii"},
    {"rnn_relu_backward(truncation 2)", "dxs dstate0 dwx dwh db workspace dhs dstate_last xs state0 hs wx wh",
     "ooaaawiiiiiii"},
    {"gru_forward", "hs cache state_last xs state0 wx wh b b_hidden", "oooiiiiii"},
    {"gru_backward", "dxs dstate0 dwx dwh db db_hidden workspace dhs dstate_last xs state0 hs cache wx wh",
     "ooaaaawiiiiiiii"},
    {"gru_backward(truncation 2)", "dxs dstate0 dwx dwh db db_hidden workspace dhs dstate_last xs state0 hs cache wx wh",
     "ooaaaawiiiiiiii"},
};
enum { NK = (int)(sizeof kernels / sizeof kernels[0]) };

static double g_loss; /* the double result of softmax_cross_entropy and clip_grad_norm */

static rnncore_status call(int k) {
    float *p[NB];
    for (int j = 0; j < NB; j++) p[j] = buf[j];
    static const rnncore_adam_params hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                           .weight_decay = 0.01f};
    int64_t cnt = 0;
    float *g2[2] = {p[0], p[1]};
    const rnncore_window win0 = {N, T, D, H, 0}, win2 = {N, T, D, H, 2};
    const int64_t c2[2] = {7, 9};
    switch (k) {
    case 0: return rnncore_rnn_step_forward(p[0], p[1], p[2], p[3], p[4], p[5], N, D, H);
    case 1: return rnncore_rnn_step_backward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10],
                                             p[11], N, D, H);
    case 2: case 24: {
        const rnncore_cell_weights w = {p[4], p[5], p[6], NULL};
        return (k == 2 ? rnncore_rnn_forward : rnncore_rnn_relu_forward)(p[0], NULL, p[1], p[2], p[3], &w, &win0);
    }
    case 3: case 4: case 25: case 26: {
        const rnncore_cell_weights w = {p[11], p[12], NULL, NULL};
        const rnncore_cell_gradients g = {p[2], p[3], p[4], NULL};
        return (k < 24 ? rnncore_rnn_backward : rnncore_rnn_relu_backward)(p[0], p[1], &g, p[5], p[6], p[7], p[8],
                                                                          p[9], p[10], NULL, &w,
                                                                          k == 3 || k == 25 ? &win0 : &win2);
    }
    case 5: return rnncore_lstm_step_forward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], N, D, H);
    case 6: return rnncore_lstm_step_backward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10],
                                              p[11], p[12], p[13], p[14], p[15], N, D, H);
    case 7: case 27: {
        const rnncore_cell_weights w = {p[5], p[6], p[7], k == 27 ? p[8] : NULL};
        return (k == 7 ? rnncore_lstm_forward : rnncore_gru_forward)(p[0], p[1], p[2], p[3], p[4], &w, &win0);
    }
    case 8: case 9: {
        const rnncore_cell_weights w = {p[12], p[13], NULL, NULL};
        const rnncore_cell_gradients g = {p[2], p[3], p[4], NULL};
        return rnncore_lstm_backward(p[0], p[1], &g, p[5], p[6], p[7], p[8], p[9], p[10], p[11], &w,
                                     k == 8 ? &win0 : &win2);
    }
    case 28: case 29: {
        const rnncore_cell_weights w = {p[13], p[14], NULL, NULL};
        const rnncore_cell_gradients g = {p[2], p[3], p[4], p[5]};
        return rnncore_gru_backward(p[0], p[1], &g, p[6], p[7], p[8], p[9], p[10], p[11], p[12], &w,
                                    k == 28 ? &win0 : &win2);
    }
    case 10: return rnncore_embedding_forward(p[0], ids, p[1], M, V, D);
    case 11: return rnncore_embedding_backward(p[0], p[1], ids, M, V, D);
    case 12: return rnncore_affine_forward(p[0], p[1], p[2], p[3], M, D, H);
    case 13: return rnncore_affine_backward(p[0], p[1], p[2], p[3], p[4], p[5], M, D, H);
    case 14: return rnncore_softmax_cross_entropy(&g_loss, &cnt, p[0], p[1], ids, M, V, RNNCORE_NO_IGNORE_INDEX,
                                                  1.0f);
    case 15: return rnncore_softmax_cross_entropy(&g_loss, &cnt, p[0], p[0], ids, M, V, RNNCORE_NO_IGNORE_INDEX,
                                                  1.0f);
    case 16: return rnncore_softmax_forward(p[0], p[1], M, V);
    case 17: return rnncore_softmax_forward(p[0], p[0], M, V);
    case 18: return rnncore_sgemm(p[0], p[1], p[2], 3, 4, 5, 0, 1, 1.0f, 0.0f);
    case 19: return rnncore_sgemm(p[0], p[1], p[2], 3, 4, 5, 1, 0, 1.0f, 0.5f);
    case 20: return rnncore_sgd_step(p[0], p[1], 11, 0.1f);
    case 21: return rnncore_adam_step(p[0], p[1], p[2], p[3], 11, &hp, 3);
    case 22: return rnncore_clip_grad_norm(&g_loss, g2, c2, 2, 1e-3);
    case 23: return rnncore_clip_grad_norm(&g_loss, g2, c2, 2, 0.0);
    default: abort();
    }
}

/* The status the header documents for kernel k with argument j poisoned by value (whole buffer or element 1). */
static rnncore_status expected(int k, float value, int whole) {
    if (k == 22 || k == 23) return NF;                       /* every element counts in the norm */
    if (k == 14 || k == 15) {
        /* logits: NaN or +inf makes the row's normaliser NaN; one -inf that is not the target (element 1 is row 0,
         * column 1; row 0's target is 0) is a vanishing probability and the loss stays finite */
        return (value < 0 && !whole) ? OK : NF;
    }
    return OK;
}

/* Inputs in [-1, 1], accumulated buffers too, outputs and workspaces the sentinel. The workspaces and ids are
 * the same on every call, so a case is reproduced by its kernel, argument, value and extent. */
static void fill(const char *roles) {
    rng_t r = {42};
    for (int j = 0; j < NB; j++) {
        const char role = j < (int)strlen(roles) ? roles[j] : '-';
        if (role == 'i' || role == 'a') fill_f(buf[j], BIG, &r, -1, 1);
        else fill_const_f(buf[j], BIG, SENT);
    }
    for (int i = 0; i < BIG; i++) ids[i] = i % V;
}

typedef struct { int status, nan_out, nonfinite_out, untouched; double loss; } result_t;

/* Runs kernel k with argument j poisoned in a child process; returns 0 when the child crashed or hung. */
static int run_case(int k, int j, float value, int whole, result_t *res) {
    const char *roles = kernels[k].roles;
    fill(roles);
    if (whole) fill_const_f(buf[j], BIG, value);
    else buf[j][1] = value;
    memcpy(before, buf, sizeof buf);
    int fd[2];
    if (pipe(fd) != 0) { perror("pipe"); exit(2); }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        close(fd[0]);
        alarm(60); /* a hang ends the child with SIGALRM: reported, not waited for forever */
        result_t r = {0, 0, 0, 1, NAN};
        g_loss = NAN;
        r.status = (int)call(k);
        r.loss = g_loss;
        for (int b = 0; b < (int)strlen(roles); b++) {
            if (roles[b] != 'o' && roles[b] != 'a') continue;
            for (int i = 0; i < BIG; i++) {
                r.nan_out |= isnan(buf[b][i]);
                r.nonfinite_out |= !isfinite(buf[b][i]);
            }
            r.untouched &= memcmp(buf[b], before[b], sizeof buf[b]) == 0;
        }
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 3);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], res, sizeof *res);
    close(fd[0]);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || got != (ssize_t)sizeof *res) {
        fprintf(stderr, "  %s: %s\n", WIFSIGNALED(wstatus) ? "killed by signal" : "child failed",
                WIFSIGNALED(wstatus) ? strsignal(WTERMSIG(wstatus)) : "no result");
        return 0;
    }
    return 1;
}

/* The name of argument j of kernel k (from its space-separated list), for messages. */
static void arg_name(int k, int j, char *out, size_t n) {
    const char *s = kernels[k].args;
    for (int i = 0; i < j; i++) s = strchr(s, ' ') + 1;
    size_t len = strcspn(s, " ");
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), s);
}

static void test_poisoned_buffers(void) {
    printf("(a) NaN / +inf / -inf in every float buffer a kernel reads, whole and one element (child processes)\n");
    const float values[3] = {NAN, INFINITY, -INFINITY};
    int cases = 0;
    for (int k = 0; k < NK; k++) {
        const char *roles = kernels[k].roles;
        int kernel_cases = 0, kernel_bad = g_failures;
        for (int j = 0; j < (int)strlen(roles); j++) {
            if (roles[j] != 'i' && roles[j] != 'a') continue;
            for (int vi = 0; vi < 3; vi++)
                for (int whole = 0; whole <= 1; whole++) {
                    const float value = values[vi];
                    char name[32];
                    arg_name(k, j, name, sizeof name);
                    result_t r;
                    cases++; kernel_cases++;
                    const int ran = run_case(k, j, value, whole, &r);
                    const rnncore_status want = expected(k, value, whole);
                    int ok = ran && r.status == (int)want;
                    /* a NaN input reaches an output (or the loss/norm) */
                    if (ok && isnan(value)) ok = r.nan_out || isnan(r.loss);
                    /* reported non-finite: the loss or norm itself is not finite */
                    if (ok && want == NF) ok = !isfinite(r.loss);
                    /* clip_grad_norm with a non-finite norm scales nothing */
                    if (ok && (k == 22 || k == 23)) ok = r.untouched;
                    /* the finite softmax case (one -inf off the target): loss and gradient finite */
                    if (ok && (k == 14 || k == 15) && want == OK) ok = isfinite(r.loss) && !r.nonfinite_out;
                    g_checks++;
                    if (!ok) {
                        g_failures++;
                        fprintf(stderr, "  FAIL %s with %s %s %g: status %d (want %d), NaN in outputs %d, loss %g\n",
                                kernels[k].name, whole ? "all of" : "one element of", name, (double)value,
                                ran ? r.status : 0, (int)want, ran ? r.nan_out : -1, ran ? r.loss : 0.0);
                    }
                }
        }
        printf("  %-34s %3d cases  %s\n", kernels[k].name, kernel_cases, g_failures == kernel_bad ? "ok" : "FAIL");
    }
    printf("  %d cases\n", cases);
}

/* ---- (b) scalar hyper-parameters ---------------------------------------------------------------------------- */

static int untouched(const float *p, int64_t n, const float *ref) { return memcmp(p, ref, (size_t)n * sizeof *p) == 0; }

static void test_scalars(void) {
    printf("(b) NaN / +inf / -inf hyper-parameters\n");
    const float values[3] = {NAN, INFINITY, -INFINITY};
    float p[16], m[16], v[16], g[16], keep[3][16];
    rng_t r = {5};
    fill_f(g, 16, &r, -1, 1);
    for (int vi = 0; vi < 3; vi++) {
        const float x = values[vi];
        fill_f(p, 16, &r, -1, 1); fill_f(m, 16, &r, -1, 1); fill_f(v, 16, &r, 0, 1);
        memcpy(keep[0], p, sizeof p); memcpy(keep[1], m, sizeof m); memcpy(keep[2], v, sizeof v);
        printf("  value %g\n", (double)x);
        CHECK_STATUS(rnncore_sgd_step(p, g, 16, x), EA);
        CHECK(untouched(p, 16, keep[0]));
        const rnncore_adam_params good = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0};
        for (int f = 0; f < 5; f++) {
            rnncore_adam_params bad = good;
            float *field[5] = {&bad.lr, &bad.beta1, &bad.beta2, &bad.eps, &bad.weight_decay};
            *field[f] = x;
            CHECK_STATUS(rnncore_adam_step(p, m, v, g, 16, &bad, 1), EA);
            CHECK(untouched(p, 16, keep[0]) && untouched(m, 16, keep[1]) && untouched(v, 16, keep[2]));
        }
        /* sgemm: alpha and beta must be finite */
        float c[12];
        fill_const_f(c, 12, SENT);
        CHECK_STATUS(rnncore_sgemm(c, g, g + 4, 3, 4, 2, 0, 0, x, 0.0f), EA);
        CHECK_STATUS(rnncore_sgemm(c, g, g + 4, 3, 4, 2, 0, 0, 1.0f, x), EA);
        CHECK(all_equal_f(c, 12, SENT));
        /* softmax_cross_entropy: dloss must be finite */
        float z[12], dz[12];
        fill_f(z, 12, &r, -1, 1);
        fill_const_f(dz, 12, SENT);
        double loss = SENT;
        CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, dz, z, ids, 2, V, RNNCORE_NO_IGNORE_INDEX, x), EA);
        CHECK(loss == SENT && all_equal_f(dz, 12, SENT));
        /* clip_grad_norm: NaN max_norm is an argument error; +inf and -inf (<= 0) only measure */
        float *gs[1] = {p};
        const int64_t cs[1] = {16};
        double norm = SENT;
        double ref = 0;
        for (int i = 0; i < 16; i++) ref += (double)p[i] * (double)p[i];
        ref = sqrt(ref);
        CHECK_STATUS(rnncore_clip_grad_norm(&norm, gs, cs, 1, (double)x), isnan(x) ? EA : OK);
        CHECK(isnan(x) ? norm == SENT : fabs(norm - ref) <= 1e-12 * ref);
        CHECK(untouched(p, 16, keep[0]));
    }
    /* sgemm with beta = 0 overwrites C: a NaN already in C does not survive (BLAS semantics, header) */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4];
    fill_const_f(c, 4, NAN);
    CHECK_STATUS(rnncore_sgemm(c, a, b, 2, 2, 3, 0, 0, 1.0f, 0.0f), OK);
    CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
}

/* The rows the header describes one by one. */
static void test_documented_rows(void) {
    printf("(c) the header's softmax rows: +inf, only -inf, -inf target\n");
    float z[3 * 3] = {INFINITY, 0.0f, 1.0f, -INFINITY, -INFINITY, -INFINITY, 0.5f, -INFINITY, 2.0f}, p[9];
    CHECK_STATUS(rnncore_softmax_forward(p, z, 3, 3), OK);
    for (int i = 0; i < 6; i++) CHECK(isnan(p[i]));                  /* rows 0 and 1 come out NaN */
    CHECK(isfinite(p[6]) && p[7] >= 0.0f && p[7] < 1e-37f && isfinite(p[8]));
    int32_t t_off[1] = {0}, t_on[1] = {1};
    double loss = NAN;
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, z + 6, t_off, 1, 3, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 OK);
    CHECK(isfinite(loss));
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, z + 6, t_on, 1, 3, RNNCORE_NO_IGNORE_INDEX, 1.0f),
                 NF);
    CHECK(loss == INFINITY);
    /* an ignored row's logits are not read into the loss: NaN there leaves it finite */
    float zi[2 * 3] = {NAN, NAN, NAN, 0.0f, 1.0f, 2.0f};
    int32_t ti[2] = {-1, 2};
    CHECK_STATUS(rnncore_softmax_cross_entropy(&loss, NULL, NULL, zi, ti, 2, 3, -1, 1.0f), OK);
    CHECK(isfinite(loss));
}

int main(void) {
    /* every workspace fits one buffer */
    int64_t w[2];
    CHECK_STATUS(rnncore_rnn_step_backward_workspace_size(&w[0], N, H), OK);
    CHECK_STATUS(rnncore_lstm_step_backward_workspace_size(&w[1], N, H), OK);
    for (int i = 0; i < 2; i++) CHECK(w[i] <= BIG);
    /* and every window cache and workspace */
    const cell_sizes_fn sizes[4] = {rnncore_rnn_sizes, rnncore_rnn_relu_sizes, rnncore_lstm_sizes, rnncore_gru_sizes};
    for (int c = 0; c < 4; c++)
        for (int64_t k = 0; k <= 2; k += 2) {
            const rnncore_window win = {N, T, D, H, k};
            rnncore_cell_sizes s;
            CHECK_STATUS(sizes[c](&s, &win), OK);
            CHECK(s.cache <= BIG && s.workspace <= BIG);
        }
    test_poisoned_buffers();
    test_scalars();
    test_documented_rows();
    return test_finish("test_nonfinite");
}
