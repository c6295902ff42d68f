/* C-style launcher API of the Cauchy kernels (no ATen, c10 or torch types).
 *
 * Computes, for b < batch and i < I,
 *     s1[b, i] = sum_{j < J} a[b, j] / (p[b, i] - q[b, j])
 *     s2[b, i] = sum_{j < J} a[b, j] / (p[b, i] - q[b, j])^2          (only if s2 != NULL)
 * and with conj != 0 every sum also runs over the conjugate pairs, i.e. adds
 *     conj(a[b, j]) / (p[b, i] - conj(q[b, j]))   (and its square for s2).
 * The forward Cauchy product is (p, q, a) = (z, w, v); its gradients are the same sums with
 * (p, q, a) = (conj(w), conj(z), grad)  (see ssm/kernels/cuda.py).
 *
 * Layout: all arrays contiguous, complex as interleaved (re, im) = float2 / double2.
 *   p: row b at p + b * p_batch_stride  (stride 0 broadcasts one row of I points)
 *   q: row b at q + b * q_batch_stride  (stride 0 broadcasts one row of J nodes)
 *   a: (batch, J)
 *   s1, s2: (batch, n_split, I) partial sums over the J-range [k * j_chunk, (k + 1) * j_chunk)
 *           of split k, n_split = ceil(J / j_chunk); the caller adds them up (n_split is 1
 *           whenever there is enough parallelism over (batch, I) alone).
 * j_chunk must come from ssm_cauchy_j_chunk(batch, I, J) for the same sizes.
 * Limits: I, J < 2^30; batch < 2^63.  Returns the launch status (cudaGetLastError()).
 */
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int64_t ssm_cauchy_j_chunk(int64_t batch, int64_t I, int64_t J);

cudaError_t ssm_cauchy_sums_c64(const float2* p, int64_t p_batch_stride, const float2* q,
                                int64_t q_batch_stride, const float2* a, float2* s1, float2* s2,
                                int64_t batch, int64_t I, int64_t J, int64_t j_chunk, int conj,
                                cudaStream_t stream);

cudaError_t ssm_cauchy_sums_c128(const double2* p, int64_t p_batch_stride, const double2* q,
                                 int64_t q_batch_stride, const double2* a, double2* s1, double2* s2,
                                 int64_t batch, int64_t I, int64_t J, int64_t j_chunk, int conj,
                                 cudaStream_t stream);

#ifdef __cplusplus
}
#endif
