/* cell_api.h — the four recurrent cells of the window ABI as one table, and the argument contract every one of them
 * must keep (include/rnncore.h, "recurrent cells over a window"): each NULL required pointer, each size <= 0, each
 * overflowing size, a negative truncation, a b_hidden or db_hidden given to a cell other than the gru, and
 * overlapping buffers return their status and write nothing. Header-only, for test_api.c, test_gru.c and
 * test_threads.c. */
#ifndef RNNCORE_TEST_CELL_API_H
#define RNNCORE_TEST_CELL_API_H

#define _POSIX_C_SOURCE 200809L /* fork, waitpid */
#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#define RC_CELL_HELPER static __attribute__((unused))

typedef rnncore_status (*cell_sizes_fn)(rnncore_cell_sizes *, const rnncore_window *);
typedef rnncore_status (*cell_forward_fn)(float *, float *, float *, const float *, const float *,
                                          const rnncore_cell_weights *, const rnncore_window *);
typedef rnncore_status (*cell_backward_fn)(float *, float *, const rnncore_cell_gradients *, float *, const float *,
                                           const float *, const float *, const float *, const float *, const float *,
                                           const rnncore_cell_weights *, const rnncore_window *);

typedef struct {
    const char *name;
    cell_sizes_fn sizes;
    cell_forward_fn forward;
    cell_backward_fn backward;
    int64_t gates, states;
    int gru; /* takes b_hidden / db_hidden */
} cell_api;

static const cell_api CELLS[4] = {
    {"rnn", rnncore_rnn_sizes, rnncore_rnn_forward, rnncore_rnn_backward, 1, 1, 0},
    {"rnn_relu", rnncore_rnn_relu_sizes, rnncore_rnn_relu_forward, rnncore_rnn_relu_backward, 1, 1, 0},
    {"lstm", rnncore_lstm_sizes, rnncore_lstm_forward, rnncore_lstm_backward, 4, 2, 0},
    {"gru", rnncore_gru_sizes, rnncore_gru_forward, rnncore_gru_backward, 3, 1, 1},
};

/* ---- the argument contract ------------------------------------------------------------------------------------ */

enum { CA_N = 2, CA_T = 3, CA_D = 4, CA_H = 5, CA_BIG = 1024, CA_BUFS = 12 };
#define CA_SENT 12345.0f
static float ca_in[CA_BUFS][CA_BIG];
static float ca_out[CA_BUFS][CA_BIG];

RC_CELL_HELPER void ca_reset(void) {
    for (int i = 0; i < CA_BUFS; i++) fill_const_f(ca_out[i], CA_BIG, CA_SENT);
}
RC_CELL_HELPER int ca_untouched(void) {
    for (int i = 0; i < CA_BUFS; i++)
        if (!all_equal_f(ca_out[i], CA_BIG, CA_SENT)) return 0;
    return 1;
}
RC_CELL_HELPER void ca_init(void) {
    rng_t r = {99};
    for (int i = 0; i < CA_BUFS; i++) fill_f(ca_in[i], CA_BIG, &r, -0.5, 0.5);
}

/* The call must return `status` and leave every output alone. */
#define CA_EXPECT(call, status) do { ca_reset(); CHECK_STATUS(call, status); CHECK(ca_untouched()); } while (0)

/* One call's arguments, valid by default; a case changes one thing. */
typedef struct {
    float *hs, *cache, *state_last;              /* forward outputs */
    const float *xs, *state0;
    float *dxs, *dstate0, *workspace;            /* backward outputs */
    const float *dhs, *dstate_last, *hs_in, *cache_in;
    rnncore_cell_weights w;
    rnncore_cell_gradients g;
    rnncore_window win;
} ca_args;

RC_CELL_HELPER ca_args ca_valid(const cell_api *c) {
    ca_args a;
    a.hs = ca_out[0]; a.cache = ca_out[1]; a.state_last = ca_out[2];
    a.xs = ca_in[0]; a.state0 = ca_in[1];
    a.dxs = ca_out[3]; a.dstate0 = ca_out[4]; a.workspace = ca_out[5];
    a.dhs = ca_in[2]; a.dstate_last = ca_in[3]; a.hs_in = ca_in[4]; a.cache_in = ca_in[5];
    a.w = (rnncore_cell_weights){ca_in[6], ca_in[7], ca_in[8], c->gru ? ca_in[9] : NULL};
    a.g = (rnncore_cell_gradients){ca_out[6], ca_out[7], ca_out[8], c->gru ? ca_out[9] : NULL};
    a.win = (rnncore_window){CA_N, CA_T, CA_D, CA_H, 2};
    return a;
}
RC_CELL_HELPER rnncore_status ca_forward(const cell_api *c, const ca_args *a) {
    return c->forward(a->hs, a->cache, a->state_last, a->xs, a->state0, &a->w, &a->win);
}
RC_CELL_HELPER rnncore_status ca_backward(const cell_api *c, const ca_args *a) {
    return c->backward(a->dxs, a->dstate0, &a->g, a->workspace, a->dhs, a->dstate_last, a->xs, a->state0, a->hs_in,
                       a->cache_in, &a->w, &a->win);
}

#define CA_HUGE2 (INT64_MAX / 2)
#define CA_OVER32 ((int64_t)INT32_MAX + 1)

/* The overflowing windows: every product, the N*T rows of a GEMM, a row stride T*max(D, G) and G itself beyond what
 * int64, the address space or BLAS's 32-bit integers hold. */
RC_CELL_HELPER int ca_overflow_window(const cell_api *c, int i, rnncore_window *w) {
    switch (i) {
    case 0: *w = (rnncore_window){CA_HUGE2, CA_HUGE2, CA_HUGE2, CA_HUGE2, 0}; return 1;
    case 1: *w = (rnncore_window){1, CA_OVER32, 1, 1, 0}; return 1;                    /* N*T rows */
    case 2: *w = (rnncore_window){CA_OVER32, 1, 1, 1, 0}; return 1;
    case 3: *w = (rnncore_window){1, 1, CA_OVER32, 1, 0}; return 1;                    /* D */
    case 4: *w = (rnncore_window){1, 1, 1, CA_OVER32 / c->gates + 1, 0}; return 1;     /* G = gates*H */
    case 5: *w = (rnncore_window){1, 1 << 20, 1 << 12, 1, 0}; return 1;                /* row stride T*D */
    case 6: *w = (rnncore_window){1, 1, 1, INT64_MAX / 2, 1}; return 1;                /* G overflows int64 */
    default: return 0;
    }
}

/* Runs `what` (0 sizes, 1 forward, 2 backward) on an overflowing window in a child process (a kernel that trusted
 * the sizes would crash it): it must return RNNCORE_ERR_SIZE_OVERFLOW and write nothing. */
RC_CELL_HELPER void ca_check_overflow(const cell_api *c) {
    rnncore_window w;
    for (int i = 0; ca_overflow_window(c, i, &w); i++) {
        for (int what = 0; what < 3; what++) {
            fflush(stdout); fflush(stderr);
            pid_t pid = fork();
            assert(pid >= 0);
            if (pid == 0) {
                ca_reset();
                ca_args a = ca_valid(c);
                a.win = w;
                rnncore_cell_sizes s = {-7, -7, -7, -7};
                rnncore_status st = what == 0 ? c->sizes(&s, &w) : what == 1 ? ca_forward(c, &a) : ca_backward(c, &a);
                int touched = !ca_untouched() || s.gates != -7 || s.cache != -7 || s.workspace != -7;
                _exit((-(int)st) | (touched ? 64 : 0));
            }
            int wst = 0;
            waitpid(pid, &wst, 0);
            g_checks++;
            const char *fn = what == 0 ? "sizes" : what == 1 ? "forward" : "backward";
            if (!WIFEXITED(wst)) {
                g_failures++;
                fprintf(stderr, "  %s_%s overflow case %d crashed (signal %d)\n", c->name, fn, i,
                        WIFSIGNALED(wst) ? WTERMSIG(wst) : -1);
                continue;
            }
            const int code = WEXITSTATUS(wst), st = -(code & 63);
            if (st != RNNCORE_ERR_SIZE_OVERFLOW || (code & 64)) {
                g_failures++;
                fprintf(stderr, "  %s_%s overflow case %d returned %d (%s)%s, expected RNNCORE_ERR_SIZE_OVERFLOW\n",
                        c->name, fn, i, st, rnncore_status_string((rnncore_status)st),
                        (code & 64) ? " and wrote an output" : "");
            }
        }
    }
}

RC_CELL_HELPER void check_cell_arguments(const cell_api *c) {
    printf("%s window: the argument contract (NULL, sizes, overflow, truncation, b_hidden, aliasing)\n", c->name);
    ca_init();
    const int64_t N = CA_N, T = CA_T, D = CA_D, H = CA_H, G = c->gates * H, NH = N * H, NT = N * T;
    rnncore_cell_sizes s;
    const rnncore_window win = {N, T, D, H, 2};
    CHECK_STATUS(c->sizes(&s, &win), RNNCORE_OK);
    CHECK(s.gates == c->gates && s.states == c->states && s.cache >= 0 && s.workspace > 0 &&
          s.cache <= CA_BIG && s.workspace <= CA_BIG);
    const int has_cache = s.cache > 0;
    ca_args a;

    /* valid calls, with every optional pointer given and with every optional pointer NULL */
    a = ca_valid(c);
    ca_reset();
    CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
    CHECK_STATUS(ca_backward(c, &a), RNNCORE_OK);
    a.state_last = NULL; a.state0 = NULL; a.w.b = NULL; a.w.b_hidden = NULL;
    a.dxs = NULL; a.dstate0 = NULL; a.dstate_last = NULL; a.g.db = NULL; a.g.db_hidden = NULL;
    if (!has_cache) a.cache = NULL, a.cache_in = NULL;
    CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
    CHECK_STATUS(ca_backward(c, &a), RNNCORE_OK);

    /* NULL required pointers */
    rnncore_cell_sizes untouched = {-7, -7, -7, -7};
    s = untouched;
    CA_EXPECT(c->sizes(NULL, &win), RNNCORE_ERR_NULL_POINTER);
    CA_EXPECT(c->sizes(&s, NULL), RNNCORE_ERR_NULL_POINTER);
    for (int i = 0; i < 7 + has_cache; i++) {
        a = ca_valid(c);
        switch (i) {
        case 0: a.hs = NULL; break;
        case 1: a.xs = NULL; break;
        case 2: a.w.wx = NULL; break;
        case 3: a.w.wh = NULL; break;
        case 4: CA_EXPECT(c->forward(a.hs, a.cache, a.state_last, a.xs, a.state0, NULL, &a.win),
                          RNNCORE_ERR_NULL_POINTER); continue;
        case 5: CA_EXPECT(c->forward(a.hs, a.cache, a.state_last, a.xs, a.state0, &a.w, NULL),
                          RNNCORE_ERR_NULL_POINTER); continue;
        case 6: continue;
        case 7: a.cache = NULL; break;
        }
        CA_EXPECT(ca_forward(c, &a), RNNCORE_ERR_NULL_POINTER);
    }
    for (int i = 0; i < 12 + has_cache; i++) {
        a = ca_valid(c);
        switch (i) {
        case 0: a.workspace = NULL; break;
        case 1: a.dhs = NULL; break;
        case 2: a.xs = NULL; break;
        case 3: a.hs_in = NULL; break;
        case 4: a.w.wx = NULL; break;
        case 5: a.w.wh = NULL; break;
        case 6: a.g.dwx = NULL; break;
        case 7: a.g.dwh = NULL; break;
        case 8: CA_EXPECT(c->backward(a.dxs, a.dstate0, NULL, a.workspace, a.dhs, a.dstate_last, a.xs, a.state0,
                                      a.hs_in, a.cache_in, &a.w, &a.win), RNNCORE_ERR_NULL_POINTER); continue;
        case 9: CA_EXPECT(c->backward(a.dxs, a.dstate0, &a.g, a.workspace, a.dhs, a.dstate_last, a.xs, a.state0,
                                      a.hs_in, a.cache_in, NULL, &a.win), RNNCORE_ERR_NULL_POINTER); continue;
        case 10: CA_EXPECT(c->backward(a.dxs, a.dstate0, &a.g, a.workspace, a.dhs, a.dstate_last, a.xs, a.state0,
                                       a.hs_in, a.cache_in, &a.w, NULL), RNNCORE_ERR_NULL_POINTER); continue;
        case 11: continue;
        case 12: a.cache_in = NULL; break;
        }
        CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_NULL_POINTER);
    }

    /* sizes <= 0, field by field */
    for (int64_t bad = 0; bad >= -1; bad--) {
        for (int f = 0; f < 4; f++) {
            a = ca_valid(c);
            int64_t *field[4] = {&a.win.N, &a.win.T, &a.win.D, &a.win.H};
            *field[f] = bad;
            s = untouched;
            CA_EXPECT(c->sizes(&s, &a.win), RNNCORE_ERR_INVALID_SIZE);
            CHECK(s.gates == -7 && s.workspace == -7);
            CA_EXPECT(ca_forward(c, &a), RNNCORE_ERR_INVALID_SIZE);
            CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_INVALID_SIZE);
        }
    }

    /* truncation: negative is out of its domain for sizes and backward; forward ignores it; any value >= 0 is valid,
     * the workspace bounded by min(truncation, T) */
    const int64_t negative[] = {-1, INT64_MIN};
    for (int i = 0; i < 2; i++) {
        a = ca_valid(c);
        a.win.truncation = negative[i];
        s = untouched;
        CA_EXPECT(c->sizes(&s, &a.win), RNNCORE_ERR_INVALID_ARGUMENT);
        CHECK(s.workspace == -7);
        CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_INVALID_ARGUMENT);
        ca_reset();
        CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
    }
    const int64_t truncations[] = {0, 1, 2, T - 1, T, T + 1, INT64_MAX};
    for (int i = 0; i < 7; i++) {
        a = ca_valid(c);
        a.win.truncation = truncations[i];
        CHECK_STATUS(c->sizes(&s, &a.win), RNNCORE_OK);
        CHECK(s.workspace > 0 && s.workspace <= CA_BIG);
        CHECK_STATUS(ca_backward(c, &a), RNNCORE_OK);
    }

    /* b_hidden / db_hidden: the gru's alone */
    a = ca_valid(c);
    a.w.b_hidden = ca_in[9];
    a.g.db_hidden = ca_out[9];
    if (c->gru) {
        ca_reset();
        CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
        CHECK_STATUS(ca_backward(c, &a), RNNCORE_OK);
    } else {
        CA_EXPECT(ca_forward(c, &a), RNNCORE_ERR_INVALID_ARGUMENT);
        CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_INVALID_ARGUMENT);
        a.w.b_hidden = NULL;
        CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_INVALID_ARGUMENT); /* db_hidden alone */
        a.w.b_hidden = ca_in[9];
        a.g.db_hidden = NULL;
        CA_EXPECT(ca_backward(c, &a), RNNCORE_ERR_INVALID_ARGUMENT); /* b_hidden alone */
    }

    ca_check_overflow(c);

    /* aliasing: an output over an input (the output buffer doubles as the input, so EXPECT also checks that
     * nothing was written), or over another output */
    float *buf = ca_out[10];
    const rnncore_status EL = RNNCORE_ERR_ALIASING;
    a = ca_valid(c); a.hs = buf; a.xs = buf + 1; CA_EXPECT(ca_forward(c, &a), EL);
    a = ca_valid(c); a.state_last = buf; a.w.wh = buf + 3; CA_EXPECT(ca_forward(c, &a), EL);
    a = ca_valid(c); a.state_last = buf + 1; a.state0 = buf; CA_EXPECT(ca_forward(c, &a), EL); /* partly */
    a = ca_valid(c); a.hs = buf; a.state_last = buf; a.state0 = buf; CA_EXPECT(ca_forward(c, &a), EL);
    a = ca_valid(c); a.hs = buf; a.w.b = buf + NT * H - 1; CA_EXPECT(ca_forward(c, &a), EL);
    a = ca_valid(c); a.hs = buf; a.state_last = buf + NT * H - 1; CA_EXPECT(ca_forward(c, &a), EL); /* two outputs */
    if (has_cache) {
        a = ca_valid(c); a.cache = buf; a.w.wx = buf + 5; CA_EXPECT(ca_forward(c, &a), EL);
        a = ca_valid(c); a.cache = buf; a.state0 = buf + s.cache - 1; CA_EXPECT(ca_forward(c, &a), EL);
    }
    if (c->gru) {
        a = ca_valid(c); a.hs = buf; a.w.b_hidden = buf + 2; CA_EXPECT(ca_forward(c, &a), EL);
    }
    a = ca_valid(c); a.g.dwx = buf; a.xs = buf + 5; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.dstate0 = buf; a.dstate_last = buf; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.dxs = buf; a.hs_in = buf + NT * D - 1; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.g.dwh = buf; a.w.wh = buf; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.g.db = buf; a.dhs = buf + 1; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.workspace = buf; a.state0 = buf + 50; CA_EXPECT(ca_backward(c, &a), EL);
    a = ca_valid(c); a.dstate0 = buf; a.g.dwx = buf + c->states * NH - 1; CA_EXPECT(ca_backward(c, &a), EL);
    if (has_cache) {
        a = ca_valid(c); a.dxs = buf; a.cache_in = buf + 3; CA_EXPECT(ca_backward(c, &a), EL);
    }
    if (c->gru) {
        a = ca_valid(c); a.g.db_hidden = buf; a.w.wx = buf + 1; CA_EXPECT(ca_backward(c, &a), EL);
    }

    /* allowed: state_last == state0 (the state carried in place): the same hs as separate buffers, and the last
     * state left there */
    a = ca_valid(c);
    ca_reset();
    CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
    float *carried = ca_out[11];
    memcpy(carried, ca_in[1], sizeof(float) * (size_t)(c->states * NH));
    ca_args b = a;
    b.hs = ca_out[3]; b.cache = ca_out[4]; b.state_last = carried; b.state0 = carried;
    CHECK_STATUS(ca_forward(c, &b), RNNCORE_OK);
    CHECK(memcmp(b.hs, a.hs, sizeof(float) * (size_t)(NT * H)) == 0);
    CHECK(memcmp(b.cache, a.cache, sizeof(float) * (size_t)s.cache) == 0);
    CHECK(memcmp(carried, a.state_last, sizeof(float) * (size_t)(c->states * NH)) == 0);
    /* adjacent but not overlapping buffers are fine */
    a = ca_valid(c);
    a.hs = buf; a.cache = buf + NT * H; a.state_last = buf + NT * H + s.cache;
    CHECK_STATUS(ca_forward(c, &a), RNNCORE_OK);
    (void)G;
}

#endif /* RNNCORE_TEST_CELL_API_H */
