// Torch binding of the Cauchy sums: every shape, dtype and device check, workspace allocation,
// and the launch on the current stream.  The kernels themselves (cauchy_cplx*.cu) see raw
// pointers only.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../ops.h"
#include "cauchy.h"

namespace ssm_ext {
namespace {

// Materialise conjugate/negative views and make rows contiguous: the kernels read raw memory.
at::Tensor plain(const at::Tensor& t) { return t.resolve_conj().resolve_neg().contiguous(); }

}  // namespace

std::tuple<at::Tensor, at::Tensor> cauchy_sums(const at::Tensor& p_in, const at::Tensor& q_in,
                                               const at::Tensor& a_in, bool conj, bool want_s2) {
    TORCH_CHECK(a_in.is_cuda(), "ssm cauchy_sums: a must be a CUDA tensor, got device ", a_in.device());
    TORCH_CHECK(p_in.device() == a_in.device() && q_in.device() == a_in.device(),
                "ssm cauchy_sums: p, q and a must be on one device, got ", p_in.device(), ", ", q_in.device(),
                " and ", a_in.device());
    const auto dtype = a_in.scalar_type();
    TORCH_CHECK(dtype == at::kComplexFloat || dtype == at::kComplexDouble,
                "ssm cauchy_sums: expected complex64 or complex128 tensors, got a of dtype ", dtype);
    TORCH_CHECK(p_in.scalar_type() == dtype && q_in.scalar_type() == dtype,
                "ssm cauchy_sums: p, q and a must share one dtype, got ", p_in.scalar_type(), ", ",
                q_in.scalar_type(), " and ", dtype);
    TORCH_CHECK(a_in.dim() == 2, "ssm cauchy_sums: a must be 2-D (batch, J), got shape ", a_in.sizes());
    TORCH_CHECK(p_in.dim() == 2, "ssm cauchy_sums: p must be 2-D (1 or batch, I), got shape ", p_in.sizes());
    TORCH_CHECK(q_in.dim() == 2, "ssm cauchy_sums: q must be 2-D (1 or batch, J), got shape ", q_in.sizes());
    const int64_t batch = a_in.size(0), J = a_in.size(1), I = p_in.size(1);
    TORCH_CHECK(p_in.size(0) == 1 || p_in.size(0) == batch, "ssm cauchy_sums: p must have 1 or ", batch,
                " rows (the batch of a), got shape ", p_in.sizes());
    TORCH_CHECK((q_in.size(0) == 1 || q_in.size(0) == batch) && q_in.size(1) == J,
                "ssm cauchy_sums: q must have shape (1 or ", batch, ", ", J, ") to match a ", a_in.sizes(),
                ", got ", q_in.sizes());
    TORCH_CHECK(I < (int64_t(1) << 30) && J < (int64_t(1) << 30),
                "ssm cauchy_sums: the kernels take fewer than 2^30 points and nodes, got I = ", I, ", J = ", J);

    const c10::cuda::CUDAGuard guard(a_in.device());
    const at::Tensor p = plain(p_in), q = plain(q_in), a = plain(a_in);
    const int64_t p_bs = p.size(0) == 1 ? 0 : I;
    const int64_t q_bs = q.size(0) == 1 ? 0 : J;
    const int64_t j_chunk = ssm_cauchy_j_chunk(batch, I, J);
    const int64_t n_split = J > 0 ? (J + j_chunk - 1) / j_chunk : 1;
    at::Tensor part1 = at::empty({batch, n_split, I}, a.options());
    at::Tensor part2 = want_s2 ? at::empty({batch, n_split, I}, a.options()) : at::Tensor();
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    cudaError_t err;
    if (dtype == at::kComplexFloat) {
        err = ssm_cauchy_sums_c64(reinterpret_cast<const float2*>(p.data_ptr()), p_bs,
                                  reinterpret_cast<const float2*>(q.data_ptr()), q_bs,
                                  reinterpret_cast<const float2*>(a.data_ptr()),
                                  reinterpret_cast<float2*>(part1.data_ptr()),
                                  want_s2 ? reinterpret_cast<float2*>(part2.data_ptr()) : nullptr, batch, I, J,
                                  j_chunk, conj ? 1 : 0, stream);
    } else {
        err = ssm_cauchy_sums_c128(reinterpret_cast<const double2*>(p.data_ptr()), p_bs,
                                   reinterpret_cast<const double2*>(q.data_ptr()), q_bs,
                                   reinterpret_cast<const double2*>(a.data_ptr()),
                                   reinterpret_cast<double2*>(part1.data_ptr()),
                                   want_s2 ? reinterpret_cast<double2*>(part2.data_ptr()) : nullptr, batch, I,
                                   J, j_chunk, conj ? 1 : 0, stream);
    }
    TORCH_CHECK(err == cudaSuccess, "ssm cauchy_sums: kernel launch failed (batch ", batch, ", I ", I, ", J ", J,
                "): ", cudaGetErrorString(err));
    // Adding the n_split partial sums in a fixed order keeps the result deterministic.
    at::Tensor s1 = n_split == 1 ? part1.view({batch, I}) : part1.sum(1);
    at::Tensor s2 = want_s2 ? (n_split == 1 ? part2.view({batch, I}) : part2.sum(1)) : at::empty({0}, a.options());
    return {s1, s2};
}

}  // namespace ssm_ext
