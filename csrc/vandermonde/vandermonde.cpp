// Torch binding of the Vandermonde products: every shape, dtype and device check, workspace
// allocation, and the launch on the current stream.  The kernels (vandermonde_cplx*.cu) see raw
// pointers only.
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../ops.h"
#include "vandermonde.h"

namespace ssm_ext {
namespace {

at::Tensor plain(const at::Tensor& t) { return t.resolve_conj().resolve_neg().contiguous(); }

// Largest L the kernels take: positions l are carried in the real type.
int64_t max_length(at::ScalarType dtype) {
    return dtype == at::kComplexFloat ? (int64_t(1) << 24) : (int64_t(1) << 31) - 1;
}

void check_modes(const char* fn, const at::Tensor& v, const at::Tensor& x, int64_t L) {
    TORCH_CHECK(x.is_cuda(), "ssm ", fn, ": x must be a CUDA tensor, got device ", x.device());
    TORCH_CHECK(v.device() == x.device(), "ssm ", fn, ": all tensors must be on one device, got ", v.device(),
                " and ", x.device());
    const auto dtype = x.scalar_type();
    TORCH_CHECK(dtype == at::kComplexFloat || dtype == at::kComplexDouble, "ssm ", fn,
                ": x must be complex64 or complex128, got ", dtype);
    TORCH_CHECK(x.dim() == 2, "ssm ", fn, ": x must be 2-D (batch, N), got shape ", x.sizes());
    TORCH_CHECK(v.dim() == 2 && v.sizes() == x.sizes(), "ssm ", fn, ": expected shape ", x.sizes(),
                " (that of x), got ", v.sizes());
    TORCH_CHECK(x.size(1) < (int64_t(1) << 30), "ssm ", fn, ": N must be below 2^30, got ", x.size(1));
    TORCH_CHECK(L >= 0 && L <= max_length(dtype), "ssm ", fn, ": L must be in [0, ", max_length(dtype),
                "] for ", dtype, " (positions l are exact in its real type), got ", L);
}

}  // namespace

at::Tensor vandermonde(const at::Tensor& v_in, const at::Tensor& x_in, int64_t L, bool conj) {
    check_modes("vandermonde", v_in, x_in, L);
    TORCH_CHECK(v_in.scalar_type() == x_in.scalar_type(), "ssm vandermonde: v and x must share one dtype, got ",
                v_in.scalar_type(), " and ", x_in.scalar_type());
    const c10::cuda::CUDAGuard guard(x_in.device());
    const at::Tensor v = plain(v_in), x = plain(x_in);
    const int64_t batch = x.size(0), N = x.size(1);
    const bool dbl = x.scalar_type() == at::kComplexDouble;
    at::Tensor out = at::empty({batch, L}, conj ? x.options().dtype(dbl ? at::kDouble : at::kFloat) : x.options());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    cudaError_t err;
    if (!dbl && !conj) {
        err = ssm_vandermonde_c64(reinterpret_cast<const float2*>(v.data_ptr()),
                                  reinterpret_cast<const float2*>(x.data_ptr()),
                                  reinterpret_cast<float2*>(out.data_ptr()), batch, N, L, stream);
    } else if (!dbl) {
        err = ssm_vandermonde_conj_c64(reinterpret_cast<const float2*>(v.data_ptr()),
                                       reinterpret_cast<const float2*>(x.data_ptr()), out.data_ptr<float>(), batch,
                                       N, L, stream);
    } else if (!conj) {
        err = ssm_vandermonde_c128(reinterpret_cast<const double2*>(v.data_ptr()),
                                   reinterpret_cast<const double2*>(x.data_ptr()),
                                   reinterpret_cast<double2*>(out.data_ptr()), batch, N, L, stream);
    } else {
        err = ssm_vandermonde_conj_c128(reinterpret_cast<const double2*>(v.data_ptr()),
                                        reinterpret_cast<const double2*>(x.data_ptr()), out.data_ptr<double>(),
                                        batch, N, L, stream);
    }
    TORCH_CHECK(err == cudaSuccess, "ssm vandermonde: kernel launch failed (batch ", batch, ", N ", N, ", L ", L,
                "): ", cudaGetErrorString(err));
    return out;
}

std::tuple<at::Tensor, at::Tensor> vandermonde_t_sums(const at::Tensor& u_in, const at::Tensor& x_in, int64_t L,
                                                      bool weighted) {
    check_modes("vandermonde_t_sums", x_in, x_in, L);
    const auto dtype = x_in.scalar_type();
    const bool dbl = dtype == at::kComplexDouble;
    const auto real_dtype = dbl ? at::kDouble : at::kFloat;
    TORCH_CHECK(u_in.device() == x_in.device(), "ssm vandermonde_t_sums: u and x must be on one device, got ",
                u_in.device(), " and ", x_in.device());
    TORCH_CHECK(u_in.scalar_type() == dtype || u_in.scalar_type() == real_dtype,
                "ssm vandermonde_t_sums: u must be ", dtype, " or ", real_dtype, " to match x, got ",
                u_in.scalar_type());
    TORCH_CHECK(u_in.dim() == 2 && u_in.size(0) == x_in.size(0) && u_in.size(1) == L,
                "ssm vandermonde_t_sums: u must have shape (", x_in.size(0), ", ", L, "), got ", u_in.sizes());
    const c10::cuda::CUDAGuard guard(x_in.device());
    const at::Tensor u = plain(u_in), x = plain(x_in);
    const bool u_real = u.scalar_type() == real_dtype;
    const int64_t batch = x.size(0), N = x.size(1);
    const int64_t chunk = ssm_vandermonde_t_chunk(batch, N, L);
    const int64_t n_chunks = L > 0 ? (L + chunk - 1) / chunk : 0;
    if (n_chunks == 0 || N == 0 || batch == 0) {  // empty sums
        return {at::zeros({batch, N}, x.options()),
                weighted ? at::zeros({batch, N}, x.options()) : at::empty({0}, x.options())};
    }
    at::Tensor part0 = at::empty({batch, n_chunks, N}, x.options());
    at::Tensor part1 = weighted ? at::empty({batch, n_chunks, N}, x.options()) : at::Tensor();
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    cudaError_t err;
    if (!dbl) {
        err = ssm_vandermonde_t_sums_c64(
            u_real ? nullptr : reinterpret_cast<const float2*>(u.data_ptr()),
            u_real ? u.data_ptr<float>() : nullptr, reinterpret_cast<const float2*>(x.data_ptr()),
            reinterpret_cast<float2*>(part0.data_ptr()),
            weighted ? reinterpret_cast<float2*>(part1.data_ptr()) : nullptr, batch, N, L, chunk, stream);
    } else {
        err = ssm_vandermonde_t_sums_c128(
            u_real ? nullptr : reinterpret_cast<const double2*>(u.data_ptr()),
            u_real ? u.data_ptr<double>() : nullptr, reinterpret_cast<const double2*>(x.data_ptr()),
            reinterpret_cast<double2*>(part0.data_ptr()),
            weighted ? reinterpret_cast<double2*>(part1.data_ptr()) : nullptr, batch, N, L, chunk, stream);
    }
    TORCH_CHECK(err == cudaSuccess, "ssm vandermonde_t_sums: kernel launch failed (batch ", batch, ", N ", N,
                ", L ", L, "): ", cudaGetErrorString(err));
    // Adding the per-chunk partial sums in a fixed order keeps the result deterministic.
    at::Tensor s0 = n_chunks == 1 ? part0.view({batch, N}) : part0.sum(1);
    at::Tensor s1 = weighted ? (n_chunks == 1 ? part1.view({batch, N}) : part1.sum(1)) : at::empty({0}, x.options());
    return {s0, s1};
}

}  // namespace ssm_ext
