/* C-style launcher API of the Vandermonde kernels (no ATen, c10 or torch types).
 *
 * Forward, for b < batch and l < L:
 *     out[b, l]      = sum_{n < N} v[b, n] exp(x[b, n] l)              (ssm_vandermonde_*)
 *     out_real[b, l] = 2 Re sum_{n < N} v[b, n] exp(x[b, n] l)         (ssm_vandermonde_conj_*)
 * Transposed sums, for n < N (one row of partial sums per chunk of `chunk` positions l):
 *     part0[b, k, n] = sum_{l in chunk k} u[b, l] exp(x[b, n] l)
 *     part1[b, k, n] = sum_{l in chunk k} l u[b, l] exp(x[b, n] l)     (only if part1 != NULL)
 * u is complex (u_complex) or real (u_real): pass exactly one.  The caller adds the partial sums
 * over k < n_chunks = ceil(L / chunk); chunk must come from ssm_vandermonde_t_chunk for the same
 * sizes.  These are the forward products of the S4D/DSS kernel and of states-from-inputs, and
 * (with x -> conj(x)) the gradients of each other; see ssm/kernels/cuda.py.
 *
 * Layout: contiguous; v, x: (batch, N); u, out: (batch, L); complex as float2 / double2.
 * Limits: N < 2^30; L < 2^24 in complex64 (positions l are exact in float) and < 2^31 in
 * complex128.  Returns the launch status (cudaGetLastError()).
 */
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t ssm_vandermonde_c64(const float2* v, const float2* x, float2* out, int64_t batch, int64_t N,
                                int64_t L, cudaStream_t stream);
cudaError_t ssm_vandermonde_conj_c64(const float2* v, const float2* x, float* out_real, int64_t batch,
                                     int64_t N, int64_t L, cudaStream_t stream);
cudaError_t ssm_vandermonde_c128(const double2* v, const double2* x, double2* out, int64_t batch,
                                 int64_t N, int64_t L, cudaStream_t stream);
cudaError_t ssm_vandermonde_conj_c128(const double2* v, const double2* x, double* out_real,
                                      int64_t batch, int64_t N, int64_t L, cudaStream_t stream);

int64_t ssm_vandermonde_t_chunk(int64_t batch, int64_t N, int64_t L);

cudaError_t ssm_vandermonde_t_sums_c64(const float2* u_complex, const float* u_real, const float2* x,
                                       float2* part0, float2* part1, int64_t batch, int64_t N,
                                       int64_t L, int64_t chunk, cudaStream_t stream);
cudaError_t ssm_vandermonde_t_sums_c128(const double2* u_complex, const double* u_real,
                                        const double2* x, double2* part0, double2* part1,
                                        int64_t batch, int64_t N, int64_t L, int64_t chunk,
                                        cudaStream_t stream);

#ifdef __cplusplus
}
#endif
