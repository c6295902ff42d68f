// Torch-facing entry points of the ssm._C extension (defined in cauchy/cauchy.cpp and
// vandermonde/vandermonde.cpp, bound to Python in ext.cpp).  Semantics: see cauchy/cauchy.h and
// vandermonde/vandermonde.h; the autograd rules that combine them live in ssm/kernels/cuda.py.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace ssm_ext {

// (s1, s2): s1[b, i] = sum_j a[b, j] / (p[b, i] - q[b, j]) (+ conjugate pairs if conj), s2 the
// same with squared denominators, or an empty tensor unless want_s2.
// p: (1 or B, I), q: (1 or B, J), a: (B, J); one complex dtype; one CUDA device.
std::tuple<at::Tensor, at::Tensor> cauchy_sums(const at::Tensor& p, const at::Tensor& q, const at::Tensor& a,
                                               bool conj, bool want_s2);

// sum_n v[b, n] exp(x[b, n] l) for l < L -> (B, L); conj: the real 2 Re(...) instead.
at::Tensor vandermonde(const at::Tensor& v, const at::Tensor& x, int64_t L, bool conj);

// (s0, s1): s0[b, n] = sum_{l<L} u[b, l] exp(x[b, n] l), s1 the same weighted by l, or an empty
// tensor unless weighted.  u: (B, L) complex of x's dtype or real of its precision; x: (B, N).
std::tuple<at::Tensor, at::Tensor> vandermonde_t_sums(const at::Tensor& u, const at::Tensor& x, int64_t L,
                                                      bool weighted);

}  // namespace ssm_ext
