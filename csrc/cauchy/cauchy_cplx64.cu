// complex64 instantiation of the Cauchy sums, and the grid planner (see cauchy.h).
#include "cauchy_kernel.cuh"

extern "C" int64_t ssm_cauchy_j_chunk(int64_t batch, int64_t I, int64_t J) {
    return ssm_cuda::cauchy_j_chunk(batch, I, J);
}

extern "C" cudaError_t ssm_cauchy_sums_c64(const float2* p, int64_t p_batch_stride, const float2* q,
                                           int64_t q_batch_stride, const float2* a, float2* s1,
                                           float2* s2, int64_t batch, int64_t I, int64_t J,
                                           int64_t j_chunk, int conj, cudaStream_t stream) {
    return ssm_cuda::launch_cauchy_sums<float>(p, p_batch_stride, q, q_batch_stride, a, s1, s2, batch, I,
                                               J, j_chunk, conj, stream);
}
