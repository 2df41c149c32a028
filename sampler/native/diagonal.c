/* Constant-rate SGD and heavy ball on a diagonal quadratic: one block of S steps in one pass.
 *
 * Per element i of a chain (h the Hessian's diagonal, s the noise scale, z ~ N(0, 1)):
 *   x = s z,  g = h θ + x,
 *   SGD:        θ' = a x' ... written θ' = x (−Λ) + θ a with a = 1 − Λh,          src = g
 *   heavy ball: b' = μ b + (1 − d) g  (b' = g on PyTorch's first step),  θ' = θ + (−Λ) b',  src = b'
 * and per element the block sums Σθ·src, Σsrc, Σsrc², Σθ (heavy ball also Σθ·g, Σg), added in
 * windows of W steps in the run's precision and across windows in double. A recorded step also
 * writes θ', the minibatch loss Σ θ(x + ½hθ), ‖g‖ and the full loss ½Σ hθ'².
 *
 * Chains are processed in tiles of CT whose state stays in L1; the noise of a tile is the
 * contiguous [S][ct][D] slice of the sub-block's draws. Every floating-point operation is a
 * plain IEEE add, multiply or square root in a fixed order, compiled with -ffp-contract=off,
 * so each x86-64 code path (AVX-512, AVX2, SSE2 via target_clones) gives the same bits.
 *
 * A chain whose θ' has a non-finite entry is frozen at its last finite θ, flagged, and adds
 * nothing after (the general step's semantics); the fast loop assumes no such chain and a tile
 * that meets one is restored and re-run by the careful loop, which gives identical bits for
 * every live chain.
 *
 * Built twice from this file, in float and double (common.h).
 */
#ifndef REAL
#define KERNEL_FILE "diagonal.c"
#include "common.h"
#else

typedef struct {
    int64_t C, D, S, CT, thin, first, heavy, first_undamped, ss, rs;
} CAT(dims, SUF);

/* Parameters, each tiled to CT·D: s (noise scale), h, a (SGD), nr = −Λ. */
typedef struct {
    const REAL *s, *h, *a, *nr;
    REAL mu, omd;
} CAT(params, SUF);

/* A tile's records, step-major ([r][chain of the tile], θ as [r][ct·D]); written out to the
 * chain-major record when the tile is done (strided scalar stores into rows a multiple of 4 kB
 * apart thrash the cache: measured 2× slower). */
typedef struct {
    REAL *rec, *loss, *gnorm, *full;
    uint8_t *flag;
} CAT(outputs, SUF);

/* Copy a tile's n_rec records to the chain-major outputs (chain strides rs and ss), 16 records
 * at a time so the step-major rows read stay in L1 (a plain chain-by-chain copy reads each
 * tile row from L2: measured 2.5× slower). */
static void CAT(write_out, SUF)(const CAT(dims, SUF) *dm, int64_t ct, int64_t n_rec,
                                CAT(outputs, SUF) t, CAT(outputs, SUF) o) {
    const int64_t D = dm->D, N = ct * D;
    for (int64_t r0 = 0; r0 < n_rec; r0 += 16) {
        const int64_t r1 = r0 + 16 < n_rec ? r0 + 16 : n_rec;
        for (int64_t c = 0; c < ct; c++) {
            REAL *restrict orec = o.rec + c * dm->rs, *restrict ol = o.loss + c * dm->ss;
            REAL *restrict og = o.gnorm + c * dm->ss;
            uint8_t *restrict of = o.flag + c * dm->ss;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t d = 0; d < D; d++)
                    STREAM(orec + r * D + d, t.rec[r * N + c * D + d]);
            for (int64_t r = r0; r < r1; r++) STREAM(ol + r, t.loss[r * ct + c]);
            for (int64_t r = r0; r < r1; r++) STREAM(og + r, t.gnorm[r * ct + c]);
            for (int64_t r = r0; r < r1; r++) of[r] = t.flag[r * ct + c];
            if (o.full)
                for (int64_t r = r0; r < r1; r++)
                    STREAM(o.full + c * dm->ss + r, t.full[r * ct + c]);
        }
    }
}

#define K_OF(heavy) ((heavy) ? 6 : 4)

/* One element's step: from o = θ, x, b, gives g, n = θ', bn = b', src. */
#define STEP_ELEMENT                                                          \
    REAL x = z[i] * ps[i], o = th[i];                                          \
    REAL g = ph[i] * o + x;                                                    \
    REAL bn = g, n;                                                            \
    if (heavy) {                                                               \
        REAL mixed = mu * bf[i] + omd * g;                                     \
        bn = undamped ? g : mixed;                                             \
        n = o + pnr[i] * bn;                                                   \
    } else {                                                                   \
        n = x * pnr[i] + o * pa[i];                                            \
    }

#define LOCALS                                                                 \
    const REAL *restrict ps = P->s, *restrict ph = P->h, *restrict pa = P->a;  \
    const REAL *restrict pnr = P->nr;                                          \
    const REAL mu = P->mu, omd = P->omd;                                       \
    (void)pa; (void)mu; (void)omd;

#define ADD_WINDOWS                                                           \
    w[i] += o * bn; w[N + i] += bn; w[2 * N + i] += bn * bn; w[3 * N + i] += o; \
    if (heavy) { w[4 * N + i] += o * g; w[5 * N + i] += g; }

static void CAT(flush, SUF)(int64_t N, int64_t K, REAL *w, double *acc, int64_t as) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < N; i++) {
            acc[k * as + i] += (double)w[k * N + i];
            w[k * N + i] = 0;
        }
}

/* The fast loop: every chain of the tile live; returns whether a θ' was not finite. */
static inline __attribute__((always_inline)) int CAT(fast, SUF)(
        const CAT(dims, SUF) *dm, const int64_t D, const int heavy, int64_t ct,
        const CAT(params, SUF) *P, REAL *restrict th, REAL *restrict bf, const REAL *restrict z,
        CAT(outputs, SUF) o_, double *restrict acc, REAL *restrict w, REAL *restrict tmp) {
    const int64_t N = ct * D, K = K_OF(heavy);
    LOCALS
    int bad = 0;
    int64_t r = 0, next = dm->first;
    for (int64_t t = 0; t < dm->S; t++, z += N) {
        const int undamped = dm->first_undamped && t == 0;
        int nonfinite = 0;
        if (t == next) {  /* recorded: an elementwise pass, then the sums over each row */
            next += dm->thin;
            REAL *restrict le = tmp, *restrict gg = tmp + N, *restrict fe = tmp + 2 * N;
            REAL *restrict row = o_.rec + r * N;
            for (int64_t i = 0; i < N; i++) {
                STEP_ELEMENT
                ADD_WINDOWS
                le[i] = o * (x + (REAL)0.5 * ph[i] * o);
                gg[i] = g * g;
                fe[i] = ph[i] * n * n;
                th[i] = n;
                if (heavy) bf[i] = bn;
                nonfinite |= n * 0 != 0;
            }
            memcpy(row, th, N * sizeof(REAL));
            for (int64_t c = 0; c < ct; c++) {  /* in order, from 0: as the careful loop */
                REAL l = 0, q = 0, f = 0;
                for (int64_t d = 0; d < D; d++) {
                    l += le[c * D + d];
                    q += gg[c * D + d];
                    f += fe[c * D + d];
                }
                o_.loss[r * ct + c] = l;
                o_.gnorm[r * ct + c] = SQRT(q);
                o_.full[r * ct + c] = (REAL)0.5 * f;
            }
            r++;
        } else {
            for (int64_t i = 0; i < N; i++) {
                STEP_ELEMENT
                ADD_WINDOWS
                th[i] = n;
                if (heavy) bf[i] = bn;
                nonfinite |= n * 0 != 0;
            }
        }
        bad |= nonfinite;
        if ((t + 1) % W == 0 || t == dm->S - 1) CAT(flush, SUF)(N, K, w, acc, dm->C * D);
    }
    return bad;
}

/* The careful loop: per chain, a step is taken only if θ' is finite (else the chain dies). */
static void CAT(careful, SUF)(const CAT(dims, SUF) *dm, int64_t ct, const CAT(params, SUF) *P,
                              REAL *th, REAL *bf, const REAL *z, CAT(outputs, SUF) o_,
                              double *acc, REAL *w, REAL *tmp, uint8_t *dead) {
    const int64_t D = dm->D, N = ct * D, K = K_OF(dm->heavy), heavy = dm->heavy;
    LOCALS
    REAL *rn = tmp, *rb = tmp + D;
    int64_t r = 0, next = dm->first;
    for (int64_t t = 0; t < dm->S; t++, z += N) {
        const int undamped = dm->first_undamped && t == 0;
        const int recd = t == next;
        if (recd) next += dm->thin;
        for (int64_t c = 0; c < ct; c++) {
            REAL l = 0, q = 0;
            int finite = 1;
            for (int64_t d = 0; d < D; d++) {
                const int64_t i = c * D + d;
                STEP_ELEMENT
                rn[d] = n;
                rb[d] = bn;
                finite &= n * 0 == 0;
                l += o * (x + (REAL)0.5 * P->h[i] * o);
                q += g * g;
            }
            const int live = finite && !dead[c];
            if (live) {
                for (int64_t d = 0; d < D; d++) {
                    const int64_t i = c * D + d;
                    STEP_ELEMENT
                    (void)n;
                    ADD_WINDOWS
                    th[i] = rn[d];
                    if (heavy) bf[i] = rb[d];
                }
            } else {
                dead[c] = 1;
            }
            if (recd) {
                REAL f = 0;
                const REAL *row = th + c * D;
                for (int64_t d = 0; d < D; d++) f += P->h[c * D + d] * row[d] * row[d];
                memcpy(o_.rec + r * N + c * D, row, D * sizeof(REAL));
                o_.loss[r * ct + c] = l;
                o_.gnorm[r * ct + c] = SQRT(q);
                o_.full[r * ct + c] = (REAL)0.5 * f;
                o_.flag[r * ct + c] = dead[c];
            }
        }
        if (recd) r++;
        if ((t + 1) % W == 0 || t == dm->S - 1) CAT(flush, SUF)(N, K, w, acc, dm->C * D);
    }
}

/* One sub-block for all chains. scratch: (K + 5)·CT·D of REAL (windows, zero on entry and exit;
 * row temporaries; a tile's saved θ and b); saved_acc: K·CT·D doubles (a tile's saved sums);
 * tile_rec: n·CT·(D + 3) of REAL and tile_flag: n·CT bytes for a tile's n recorded steps.
 * Returns 1 if some chain is dead at the end. */
CLONES
int CAT(diag_block, SUF)(const int64_t *dims, const REAL *par, REAL mu, REAL omd, REAL *th,
                         REAL *bf, const REAL *z, REAL *rec, REAL *loss, REAL *gnorm, REAL *full,
                         uint8_t *flag, uint8_t *dead, double *acc, REAL *scratch,
                         double *saved_acc, REAL *tile_rec, uint8_t *tile_flag) {
    CAT(dims, SUF) dm;
    memcpy(&dm, dims, sizeof dm);
    const int64_t D = dm.D, TN = dm.CT * D, K = K_OF(dm.heavy), CD = dm.C * D;
    const int64_t n_rec = dm.first < dm.S ? (dm.S - 1 - dm.first) / dm.thin + 1 : 0;
    CAT(params, SUF) P = {par, par + TN, par + 2 * TN, par + 3 * TN, mu, omd};
    REAL *w = scratch, *tmp = scratch + K * TN, *sth = tmp + 3 * TN, *sbf = sth + TN;
    int any_dead = 0;
    for (int64_t c0 = 0; c0 < dm.C; c0 += dm.CT) {
        const int64_t ct = dm.C - c0 < dm.CT ? dm.C - c0 : dm.CT, N = ct * D;
        REAL *tth = th + c0 * D, *tbf = dm.heavy ? bf + c0 * D : 0;
        const REAL *tz = z + c0 * dm.S * D;
        double *tacc = acc + c0 * D;
        CAT(outputs, SUF) o_ = {rec + c0 * dm.rs, loss + c0 * dm.ss, gnorm + c0 * dm.ss,
                                full ? full + c0 * dm.ss : 0, flag + c0 * dm.ss};
        CAT(outputs, SUF) t_ = {tile_rec, tile_rec + n_rec * N, tile_rec + n_rec * (N + ct),
                                tile_rec + n_rec * (N + 2 * ct), tile_flag};
        int dead_in = 0, bad = 1;
        for (int64_t c = 0; c < ct; c++) dead_in |= dead[c0 + c];
        if (!dead_in) {
            memcpy(sth, tth, N * sizeof(REAL));
            if (dm.heavy) memcpy(sbf, tbf, N * sizeof(REAL));
            for (int64_t k = 0; k < K; k++)
                memcpy(saved_acc + k * N, tacc + k * CD, N * sizeof(double));
#define FAST(d, hv) CAT(fast, SUF)(&dm, d, hv, ct, &P, tth, tbf, tz, t_, tacc, w, tmp)
            if (dm.heavy) bad = D == 1 ? FAST(1, 1) : D == 2 ? FAST(2, 1) : FAST(D, 1);
            else bad = D == 1 ? FAST(1, 0) : D == 2 ? FAST(2, 0) : FAST(D, 0);
#undef FAST
            if (!bad) {
                memset(tile_flag, 0, n_rec * ct);
            } else {  /* restore the tile and take the careful loop */
                memcpy(tth, sth, N * sizeof(REAL));
                if (dm.heavy) memcpy(tbf, sbf, N * sizeof(REAL));
                for (int64_t k = 0; k < K; k++)
                    memcpy(tacc + k * CD, saved_acc + k * N, N * sizeof(double));
                for (int64_t i = 0; i < K * N; i++) w[i] = 0;
            }
        }
        if (bad) {
            CAT(careful, SUF)(&dm, ct, &P, tth, tbf, tz, t_, tacc, w, tmp, dead + c0);
            for (int64_t c = 0; c < ct; c++) any_dead |= dead[c0 + c];
        }
        CAT(write_out, SUF)(&dm, ct, n_rec, t_, o_);
    }
    return any_dead;
}
#endif
