// complex64 instantiations of the Vandermonde products, and the chunk planner (see vandermonde.h).
#include "vandermonde_kernel.cuh"

namespace {
constexpr int64_t kMaxL64 = int64_t(1) << 24;  // positions l must be exact in float
}

extern "C" cudaError_t ssm_vandermonde_c64(const float2* v, const float2* x, float2* out, int64_t batch,
                                           int64_t N, int64_t L, cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_impl<float, false>(v, x, out, nullptr, batch, N, L, kMaxL64, stream);
}

extern "C" cudaError_t ssm_vandermonde_conj_c64(const float2* v, const float2* x, float* out_real,
                                                int64_t batch, int64_t N, int64_t L, cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_impl<float, true>(v, x, nullptr, out_real, batch, N, L, kMaxL64, stream);
}

extern "C" int64_t ssm_vandermonde_t_chunk(int64_t batch, int64_t N, int64_t L) {
    return ssm_cuda::vandermonde_t_chunk(batch, N, L);
}

extern "C" cudaError_t ssm_vandermonde_t_sums_c64(const float2* u_complex, const float* u_real,
                                                  const float2* x, float2* part0, float2* part1,
                                                  int64_t batch, int64_t N, int64_t L, int64_t chunk,
                                                  cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_t_any<float>(u_complex, u_real, x, part0, part1, batch, N, L, chunk,
                                                     kMaxL64, stream);
}
