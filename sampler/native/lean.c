/* One step of constant-rate SGD on a block of coordinates of every chain, with its sums, in one
 * pass (kernels/lean_sgd.py makes the same passes in torch):
 *
 *   for each chain c < C and coordinate j < n of the block:
 *     w0 += g·g;   (virial) w1 += θ;   θ ← θ − η·g
 *
 * Σg and Σθ⊙g are not summed here: with θ_{t+1} = θ_t − η g_t they follow exactly from θ at the
 * block's ends and Σg² (kernels/lean_sgd.py). θ, g and the window terms are rows with their own
 * strides (a layer's gradient is one block; θ and the window are views of [C, D] and
 * [C, K, D]). No fused multiply-adds (-ffp-contract=off): every x86-64 code path gives the same
 * bits.
 *
 * Built twice from this file, in float and double (common.h).
 */
#ifndef REAL
#define KERNEL_FILE "lean.c"
#include "common.h"
#else

CLONES void CAT(lean_step, SUF)(int64_t C, int64_t n, REAL *theta, int64_t ld_theta,
                                const REAL *g, int64_t ld_g, REAL *w, int64_t ld_w,
                                int64_t term, int32_t virial, REAL lr) {
    for (int64_t c = 0; c < C; c++) {
        REAL *restrict t = theta + c * ld_theta;
        const REAL *restrict gr = g + c * ld_g;
        REAL *restrict w0 = w + c * ld_w;
        REAL *restrict w1 = w0 + term;
        if (virial) {
            for (int64_t j = 0; j < n; j++) {
                REAL tv = t[j], gv = gr[j];
                w0[j] += gv * gv;
                w1[j] += tv;
                t[j] = tv - lr * gv;
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                REAL gv = gr[j];
                w0[j] += gv * gv;
                t[j] = t[j] - lr * gv;
            }
        }
    }
}

#endif
