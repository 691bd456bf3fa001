/* The recurrent product of a window, u (M,N) (+)= h (M,K) · B (K,N) with B = Wh or Whᵀ, against a copy of B
 * packed once per window.
 *
 * The packed copies live in a per-thread scratch buffer of the library (rc_scratch), not in the caller's cache or
 * workspace, so that the ABI's buffer sizes do not change.
 *
 * Why: in a window the same Wh multiplies T small blocks of N rows (N = 20 for PTB). A BLAS call repacks B on
 * every call; for L650's 650×2600 Wh that copy costs about as much as the arithmetic of a 20-row product (a
 * profile of the LSTM forward showed sgemm's packing routine at half the time of its kernel). Here B is packed
 * once into panels of RC_PANEL columns (each panel K rows of RC_PANEL contiguous floats, zero-padded past N), and
 * a register-blocked kernel streams the panels: RC_ROWS rows × RC_PANEL columns of accumulators, one broadcast of
 * h and two vector loads of B per k. Panels are split across the library's threads; each element of u is one
 * ordered sum over k, whatever the split, so the result does not depend on the thread count.
 *
 * The cells' tests compare every window (packed or not) with the float64 reference in tests/reference.c. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

/* ---- the per-thread scratch ---------------------------------------------------------------------------- */

typedef struct scratch {
    float *data;
    int64_t floats;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *p) {
    scratch *s = p;
    free(s->data);
    free(s);
}

static void scratch_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

float *rc_scratch(int64_t floats) {
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok || floats <= 0 || floats > RNNCORE_MAX_ELEMENTS) return NULL;
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->floats < floats) {
        /* 64-byte aligned, so that a panel row (16 floats) is one cache line */
        const size_t bytes = ((size_t)floats * sizeof(float) + 63) / 64 * 64;
        float *data = aligned_alloc(64, bytes);
        if (!data) return NULL;
        free(s->data);
        s->data = data;
        s->floats = floats;
    }
    return s->data;
}

typedef float v8 __attribute__((vector_size(32), aligned(4)));

#define RC_ROWS 6

int64_t rc_packed_floats(int64_t K, int64_t N) { return (N + RC_PANEL - 1) / RC_PANEL * RC_PANEL * K; }

typedef struct pack_job {
    float *packed;
    const float *b;
    int64_t ldb, K, N;
    bool trans;
} pack_job;

static void pack_panels(void *arg, int64_t p0, int64_t p1) {
    const pack_job *j = arg;
    for (int64_t p = p0; p < p1; p++) {
        float *dst = j->packed + p * j->K * RC_PANEL;
        const int64_t n0 = p * RC_PANEL, width = j->N - n0 < RC_PANEL ? j->N - n0 : RC_PANEL;
        for (int64_t k = 0; k < j->K; k++) {
            float *row = dst + k * RC_PANEL;
            if (j->trans) {
                for (int64_t c = 0; c < width; c++) row[c] = j->b[(n0 + c) * j->ldb + k];
            } else {
                memcpy(row, j->b + k * j->ldb + n0, (size_t)width * sizeof(float));
            }
            for (int64_t c = width; c < RC_PANEL; c++) row[c] = 0.0f;
        }
    }
}

void rc_pack_b(float *packed, const float *b, int64_t ldb, int64_t K, int64_t N, bool trans) {
    pack_job j = {.packed = packed, .b = b, .ldb = ldb, .K = K, .N = N, .trans = trans};
    rc_parallel_for((N + RC_PANEL - 1) / RC_PANEL, rc_grain(K * RC_PANEL), pack_panels, &j);
}

/* The tile kernels: R rows of u against one panel, u[r][0..width) (+)= Σ_k h[r][k]·P[k], with R·2 vector
 * accumulators spelled out (an array of accumulators indexed in a loop stays in memory with some compilers). Six
 * rows use 12 of the 16 vector registers of AVX2, with two for the panel row and one for the broadcast. */
static inline __attribute__((always_inline)) void store_row(float *dst, const float *out, int64_t width,
                                                            bool accumulate) {
    if (width == RC_PANEL) {
        v8 *d0 = (v8 *)dst, *d1 = (v8 *)(dst + 8);
        const v8 o0 = *(const v8 *)out, o1 = *(const v8 *)(out + 8);
        *d0 = accumulate ? *d0 + o0 : o0;
        *d1 = accumulate ? *d1 + o1 : o1;
    } else if (accumulate) {
        for (int64_t c = 0; c < width; c++) dst[c] += out[c];
    } else {
        for (int64_t c = 0; c < width; c++) dst[c] = out[c];
    }
}

#define ROWS1(X) X(0)
#define ROWS2(X) ROWS1(X) X(1)
#define ROWS3(X) ROWS2(X) X(2)
#define ROWS4(X) ROWS3(X) X(3)
#define ROWS5(X) ROWS4(X) X(4)
#define ROWS6(X) ROWS5(X) X(5)
#define ACC_DECLARE(r) v8 acc##r##0 = {0}, acc##r##1 = {0};
#define ACC_UPDATE(r)                          \
    {                                          \
        const float a = h[(r) * ldh + k];      \
        acc##r##0 += a * b0;                   \
        acc##r##1 += a * b1;                   \
    }
#define ACC_STORE(r)                                              \
    {                                                             \
        float out[RC_PANEL];                                      \
        *(v8 *)out = acc##r##0;                                   \
        *(v8 *)(out + 8) = acc##r##1;                             \
        store_row(u + (r) * ldu, out, width, accumulate);         \
    }
#define DEFINE_TILE(R)                                                                                         \
    static inline __attribute__((always_inline)) void tile##R(float *u, int64_t ldu, const float *h,           \
                                                              int64_t ldh, const float *panel, int64_t K,      \
                                                              int64_t width, bool accumulate) {                \
        ROWS##R(ACC_DECLARE)                                                                                   \
        for (int64_t k = 0; k < K; k++) {                                                                      \
            const v8 b0 = *(const v8 *)(panel + k * RC_PANEL), b1 = *(const v8 *)(panel + k * RC_PANEL + 8);   \
            ROWS##R(ACC_UPDATE)                                                                                \
        }                                                                                                      \
        ROWS##R(ACC_STORE)                                                                                     \
    }
DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)

typedef struct packed_job {
    float *u;
    const float *h, *packed;
    int64_t ldu, ldh, M, N, K;
    bool accumulate;
} packed_job;

RC_VECTOR_CLONES static void packed_panels(void *arg, int64_t p0, int64_t p1) {
    const packed_job *j = arg;
    for (int64_t p = p0; p < p1; p++) {
        const float *panel = j->packed + p * j->K * RC_PANEL;
        const int64_t n0 = p * RC_PANEL, width = j->N - n0 < RC_PANEL ? j->N - n0 : RC_PANEL;
        int64_t m = 0;
        for (; m + RC_ROWS <= j->M; m += RC_ROWS) {
            tile6(j->u + m * j->ldu + n0, j->ldu, j->h + m * j->ldh, j->ldh, panel, j->K, width, j->accumulate);
        }
        float *u = j->u + m * j->ldu + n0;
        const float *h = j->h + m * j->ldh;
        switch (j->M - m) {
        case 5: tile5(u, j->ldu, h, j->ldh, panel, j->K, width, j->accumulate); break;
        case 4: tile4(u, j->ldu, h, j->ldh, panel, j->K, width, j->accumulate); break;
        case 3: tile3(u, j->ldu, h, j->ldh, panel, j->K, width, j->accumulate); break;
        case 2: tile2(u, j->ldu, h, j->ldh, panel, j->K, width, j->accumulate); break;
        case 1: tile1(u, j->ldu, h, j->ldh, panel, j->K, width, j->accumulate); break;
        default: break;
        }
    }
}

void rc_packed_gemm(float *u, int64_t ldu, const float *h, int64_t ldh, const float *packed, int64_t M, int64_t N,
                    int64_t K, bool accumulate) {
    packed_job j = {.u = u, .h = h, .packed = packed, .ldu = ldu, .ldh = ldh, .M = M, .N = N, .K = K,
                    .accumulate = accumulate};
    /* A panel costs 2·M·K·16 FLOPs: split once a chunk holds about RC_GEMM_SPLIT_FLOPS of them. */
    const int64_t panels = (N + RC_PANEL - 1) / RC_PANEL;
    const double per_panel = 2.0 * (double)M * (double)K * RC_PANEL;
    const int64_t grain = per_panel >= 1.0e6 ? 1 : (int64_t)(1.0e6 / per_panel) + 1;
    rc_parallel_for(panels, grain, packed_panels, &j);
}
