// complex128 instantiations of the Vandermonde products (see vandermonde.h).
#include "vandermonde_kernel.cuh"

namespace {
constexpr int64_t kMaxL128 = (int64_t(1) << 31) - 1;
}

extern "C" cudaError_t ssm_vandermonde_c128(const double2* v, const double2* x, double2* out,
                                            int64_t batch, int64_t N, int64_t L, cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_impl<double, false>(v, x, out, nullptr, batch, N, L, kMaxL128, stream);
}

extern "C" cudaError_t ssm_vandermonde_conj_c128(const double2* v, const double2* x, double* out_real,
                                                 int64_t batch, int64_t N, int64_t L, cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_impl<double, true>(v, x, nullptr, out_real, batch, N, L, kMaxL128,
                                                           stream);
}

extern "C" cudaError_t ssm_vandermonde_t_sums_c128(const double2* u_complex, const double* u_real,
                                                   const double2* x, double2* part0, double2* part1,
                                                   int64_t batch, int64_t N, int64_t L, int64_t chunk,
                                                   cudaStream_t stream) {
    return ssm_cuda::launch_vandermonde_t_any<double>(u_complex, u_real, x, part0, part1, batch, N, L, chunk,
                                                      kMaxL128, stream);
}
