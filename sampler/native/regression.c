/* Constant-rate SGD and heavy ball on least squares with i.i.d. minibatches: S steps in one pass.
 *
 * Per chain and step, with the batch's rows (x_b, y_b) of the packed table [X | y]:
 *   r_b = x_b·θ − y_b,   g = (1/B) Σ_b r_b x_b + l2 θ,   loss = (1/B) Σ_b ½ r_b² + ½ l2 ‖θ‖²
 *   SGD:        θ' = θ + (−Λ) g,                                          src = g
 *   heavy ball: b' = μ b + (1 − d) g  (b' = g on PyTorch's first step),  θ' = θ + (−Λ) b',  src = b'
 * and per coordinate the sums Σθ·src, Σsrc, Σsrc², Σθ (heavy ball also Σθ·g, Σg), added in
 * windows of W steps in the run's precision and across windows in double. A recorded step also
 * writes θ', the loss and ‖g‖. A chain whose θ' is not finite is frozen at its last finite θ,
 * flagged, and adds nothing after (the general step's semantics).
 *
 * Dot products run in 8 explicit lanes reduced in a fixed order, and the build has no fused
 * multiply-adds (-ffp-contract=off), so every x86-64 code path gives the same bits.
 *
 * Built twice from this file, in float and double (common.h).
 */
#ifndef REAL
#define KERNEL_FILE "regression.c"
#define LANES 8
#include "common.h"
#else

/* C, D, S, B, thin, first, heavy, first_undamped, ss, rs (strides of the chain-major records). */
typedef struct {
    int64_t C, D, S, B, thin, first, heavy, first_undamped, ss, rs;
} CAT(rdims, SUF);

/* x·θ over D in LANES partial sums (lane k takes j ≡ k mod LANES), halved in a fixed order. */
static inline REAL CAT(dot, SUF)(const REAL *restrict x, const REAL *restrict th, int64_t D) {
    REAL lane[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= D; j += LANES)
        for (int k = 0; k < LANES; k++) lane[k] += x[j + k] * th[j + k];
    for (int k = 0; k < LANES / 2; k++) lane[k] += lane[k + LANES / 2];  /* halve in place */
    for (int k = 0; k < LANES / 4; k++) lane[k] += lane[k + LANES / 4];
    REAL s = lane[0] + lane[1];
    for (; j < D; j++) s += x[j] * th[j];
    return s;
}

static void CAT(rflush, SUF)(int64_t D, int64_t K, REAL *w, double *acc, int64_t as) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < D; j++) {
            acc[k * as + j] += (double)w[k * D + j];
            w[k * D + j] = 0;
        }
}

/* One sub-block for all chains. xy: [N][D + 1]; idx: [S][C][B]; nr: −Λ [D]; scratch: (K + 3)·D.
 * Returns 1 if some chain is dead at the end. */
CLONES
int CAT(regression_block, SUF)(const int64_t *dims, const REAL *xy, const int64_t *idx,
                               const REAL *nr, REAL l2, REAL mu, REAL omd, REAL inv_b, REAL *th,
                               REAL *bf, REAL *rec, REAL *loss, REAL *gnorm, uint8_t *flag,
                               uint8_t *dead, double *acc, REAL *scratch) {
    CAT(rdims, SUF) dm;
    memcpy(&dm, dims, sizeof dm);
    const int64_t D = dm.D, B = dm.B, K = dm.heavy ? 6 : 4, CD = dm.C * D;
    REAL *restrict w = scratch, *restrict g = scratch + K * D, *restrict nb = g + D;
    REAL *restrict nt = nb + D;
    int any_dead = 0;
    for (int64_t c = 0; c < dm.C; c++) {
        REAL *restrict t = th + c * D, *restrict b = dm.heavy ? bf + c * D : 0;
        double *a = acc + c * D;
        int64_t r = 0, next = dm.first;
        for (int64_t s = 0; s < dm.S; s++) {
            const int64_t *rows = idx + (s * dm.C + c) * B;
            const int recd = s == next;
            if (recd) next += dm.thin;
            if (s + 1 < dm.S) {  /* the next batch's rows, from L3, while this one runs */
                const int64_t *ahead = rows + dm.C * B;
                for (int64_t k = 0; k < B; k++)
                    for (int64_t off = 0; off < (D + 1) * (int64_t)sizeof(REAL); off += 64)
                        __builtin_prefetch((const char *)(xy + ahead[k] * (D + 1)) + off);
            }
            for (int64_t j = 0; j < D; j++) g[j] = 0;
            REAL half_sq = 0;
            for (int64_t k = 0; k < B; k++) {
                const REAL *restrict x = xy + rows[k] * (D + 1);
                const REAL res = CAT(dot, SUF)(x, t, D) - x[D];
                half_sq += (REAL)0.5 * res * res;
                for (int64_t j = 0; j < D; j++) g[j] += res * x[j];
            }
            for (int64_t j = 0; j < D; j++) g[j] = g[j] * inv_b;
            if (l2 != 0)
                for (int64_t j = 0; j < D; j++) g[j] = g[j] + l2 * t[j];
            const int undamped = dm.first_undamped && s == 0;
            int finite = 1;
            for (int64_t j = 0; j < D; j++) {
                REAL bn = g[j];
                if (dm.heavy) {
                    REAL mixed = mu * b[j] + omd * g[j];
                    bn = undamped ? g[j] : mixed;
                }
                nb[j] = bn;
                nt[j] = t[j] + nr[j] * bn;
                finite &= nt[j] * 0 == 0;
            }
            if (finite && !dead[c]) {
                for (int64_t j = 0; j < D; j++) {
                    const REAL o = t[j], bn = nb[j];
                    w[j] += o * bn;
                    w[D + j] += bn;
                    w[2 * D + j] += bn * bn;
                    w[3 * D + j] += o;
                    if (dm.heavy) {
                        w[4 * D + j] += o * g[j];
                        w[5 * D + j] += g[j];
                    }
                }
            }
            if (recd) {  /* the loss and ‖g‖ at θ_t */
                REAL l = half_sq / (REAL)B, q = 0;
                if (l2 != 0) {
                    REAL sq = 0;
                    for (int64_t j = 0; j < D; j++) sq += t[j] * t[j];
                    l = l + (REAL)0.5 * l2 * sq;
                }
                for (int64_t j = 0; j < D; j++) q += g[j] * g[j];
                loss[c * dm.ss + r] = l;
                gnorm[c * dm.ss + r] = SQRT(q);
            }
            if (finite && !dead[c]) {
                memcpy(t, nt, D * sizeof(REAL));
                if (dm.heavy) memcpy(b, nb, D * sizeof(REAL));
            } else {
                dead[c] = 1;
            }
            if (recd) {  /* θ after the step (or the frozen θ) */
                memcpy(rec + c * dm.rs + r * D, t, D * sizeof(REAL));
                flag[c * dm.ss + r] = dead[c];
                r++;
            }
            if ((s + 1) % W == 0 || s == dm.S - 1) CAT(rflush, SUF)(D, K, w, a, CD);
        }
        any_dead |= dead[c];
    }
    return any_dead;
}
#endif
