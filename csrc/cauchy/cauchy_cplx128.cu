// complex128 instantiation of the Cauchy sums (see cauchy.h).
#include "cauchy_kernel.cuh"

extern "C" cudaError_t ssm_cauchy_sums_c128(const double2* p, int64_t p_batch_stride, const double2* q,
                                            int64_t q_batch_stride, const double2* a, double2* s1,
                                            double2* s2, int64_t batch, int64_t I, int64_t J,
                                            int64_t j_chunk, int conj, cudaStream_t stream) {
    return ssm_cuda::launch_cauchy_sums<double>(p, p_batch_stride, q, q_batch_stride, a, s1, s2, batch,
                                                I, J, j_chunk, conj, stream);
}
