// Device helpers shared by the Cauchy and Vandermonde kernels: complex arithmetic on
// float2/double2 (the memory layout of torch's complex64/complex128), a fast reciprocal,
// and an accurate exp((a + ib) * l) for real l.  CUDA headers only: no ATen, c10 or torch.
#pragma once

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

namespace ssm_cuda {

template <typename R> struct complex_of;
template <> struct complex_of<float> { using type = float2; };
template <> struct complex_of<double> { using type = double2; };

__device__ __forceinline__ float2 cmake(float re, float im) { return make_float2(re, im); }
__device__ __forceinline__ double2 cmake(double re, double im) { return make_double2(re, im); }

template <typename C> __device__ __forceinline__ C cmul(C a, C b) {
    return cmake(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}
template <typename C> __device__ __forceinline__ C cadd(C a, C b) { return cmake(a.x + b.x, a.y + b.y); }

// 1/m for m = |d|^2 > 0.  float: MUFU reciprocal (<= 2 ulp for 2^-126 <= m <= 2^126; the
// result is 0 above, so |p - q| must stay within ~[1e-19, 1e19] in complex64).  double: IEEE.
__device__ __forceinline__ float recip(float m) { return __fdividef(1.0f, m); }
__device__ __forceinline__ double recip(double m) { return 1.0 / m; }

// exp((a + i b) * l), accurate to a few ulp for any l below 2^24.
// The products a*l and b*l are carried as an unevaluated sum hi + lo (exact, by FMA), so the
// phase is not rounded to the precision of b*l as a naive complex64 exp(x * l) would be: at
// l ~ 1e4 that rounding alone is ~1e-3 rad.  The phase is reduced modulo 2 pi with a three-part
// Cody-Waite constant (fmaf makes each k * C_i exact up to one rounding of a small result), so
// sincosf only ever sees |r| <= ~pi and stays on its fast path.
__device__ __forceinline__ float2 cexp_times(float a, float b, float l) {
    const float ah = a * l;
    const float al = fmaf(a, l, -ah);
    float m = expf(ah);
    m = fmaf(m, al, m);  // exp(ah + al) = exp(ah) (1 + al) to first order; |al| <= ulp(ah) / 2
    const float ph = b * l;
    const float pl = fmaf(b, l, -ph);
    const float k = rintf(ph * 0.159154943f);  // 1 / (2 pi)
    float r = fmaf(-k, 6.28318548f, ph);       // 2 pi = C1 + C2 + C3
    r = fmaf(-k, -1.74845553e-7f, r);
    r = fmaf(-k, -6.86049804e-15f, r);
    r += pl;
    float s, c;
    sincosf(r, &s, &c);
    return make_float2(m * c, m * s);
}

// double: the reference precision; exp and sincos of the rounded products (relative phase error
// ~|b l| 1e-16) are ample for complex128.
__device__ __forceinline__ double2 cexp_times(double a, double b, double l) {
    const double m = exp(a * l);
    double s, c;
    sincos(b * l, &s, &c);
    return make_double2(m * c, m * s);
}

// Number of multiprocessors of the current device (0 if the query fails); used to size grids.
inline int sm_count() {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
    return n;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace ssm_cuda
