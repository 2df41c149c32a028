/* What the native kernels share, and their build in two precisions.
 *
 * A kernel file defines KERNEL_FILE (its own name) and includes this header while REAL is
 * undefined; the header then includes the kernel twice: REAL = float (names suffixed _f32) and
 * REAL = double (_f64), with SQRT and STREAM (a cache-bypassing store) for that precision.
 *
 * Built with -ffp-contract=off and without -ffast-math: no fused multiply-adds and no
 * reassociation, so each x86-64 code path that CLONES dispatches to gives the same bits.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define W 64 /* steps per window: sums in the run's precision, then added in double */
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

#if defined(__x86_64__) && !defined(NO_CLONES)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

#if defined(__x86_64__)
#include <emmintrin.h>
/* A store that bypasses the cache (no read of the line first): records are not read again. */
static inline void stream_f(float *p, float v) {
    int i;
    memcpy(&i, &v, 4);
    _mm_stream_si32((int *)p, i);
}
static inline void stream_d(double *p, double v) {
    long long i;
    memcpy(&i, &v, 8);
    _mm_stream_si64((long long *)p, i);
}
#else
static inline void stream_f(float *p, float v) { *p = v; }
static inline void stream_d(double *p, double v) { *p = v; }
#endif

#define REAL float
#define SUF _f32
#define SQRT sqrtf
#define STREAM stream_f
#include KERNEL_FILE
#undef REAL
#undef SUF
#undef SQRT
#undef STREAM
#define REAL double
#define SUF _f64
#define SQRT sqrt
#define STREAM stream_d
#include KERNEL_FILE
