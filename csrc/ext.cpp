// Python module ssm._C: the CUDA Cauchy and Vandermonde primitives.  Loaded by
// ssm/kernels/_ext.py; wrapped as torch.library ops (ssm::cauchy, ...) in ssm/kernels/cuda.py.
#include <torch/extension.h>

#include "ops.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "CUDA Cauchy and Vandermonde primitives of the ssm package";
    m.def("cauchy_sums", &ssm_ext::cauchy_sums, "Cauchy sums (s1, s2) over nodes (q, a) at points p",
          py::arg("p"), py::arg("q"), py::arg("a"), py::arg("conj"), py::arg("want_s2"));
    m.def("vandermonde", &ssm_ext::vandermonde, "sum_n v exp(x l) for l < L (2 Re(...) if conj)",
          py::arg("v"), py::arg("x"), py::arg("L"), py::arg("conj"));
    m.def("vandermonde_t_sums", &ssm_ext::vandermonde_t_sums,
          "transposed Vandermonde sums (s0, s1) = sum_l (1, l) u exp(x l)", py::arg("u"), py::arg("x"),
          py::arg("L"), py::arg("weighted"));
}
