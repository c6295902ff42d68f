"""Tests of the CUDA backend (ssm/kernels/cuda.py, csrc/).

Two parts. The first runs everywhere: it installs a materializing CPU version of the three csrc
primitives into ``ssm.kernels.cuda._PRIMITIVES`` and checks the torch.library plumbing around them
(autograd formulas against the reference's autograd, gradcheck, opcheck, torch.compile), the
input errors, and that the kernel sources stay free of torch headers. The second (markers cuda, ext)
runs the compiled kernels on a GPU against the complex128 reference, with the rule
``err(cuda) <= 2 err(ref at working precision) + floor`` at awkward sizes; it is skipped, with the
reason, where there is no GPU or no ssm._C.
"""

import re
from pathlib import Path

import pytest
import torch

from ssm.kernels import _ext
from ssm.kernels import cuda as kc
from ssm.kernels.cauchy import cauchy_ref
from ssm.kernels.vandermonde import vandermonde_ref, vandermonde_transpose_ref

CSRC = Path(__file__).resolve().parents[2] / "csrc"


class _RefPrimitives:
    """Materializing torch versions of the csrc primitives (semantics of csrc/ops.h).

    Conjugates are physical: a custom op's kernel runs with the Conjugate dispatch key excluded
    under torch.compile, where a lazy ``.conj()`` view would be read as the unconjugated tensor.
    """

    @staticmethod
    def cauchy_sums(p, q, a, conj, want_s2):
        d = p.unsqueeze(-1) - q.unsqueeze(-2)  # (1 or B, I, J)
        t = a.unsqueeze(-2) / d
        s1, s2 = t.sum(-1), (t / d).sum(-1)
        if conj:
            dc = p.unsqueeze(-1) - torch.conj_physical(q).unsqueeze(-2)
            tc = torch.conj_physical(a).unsqueeze(-2) / dc
            s1, s2 = s1 + tc.sum(-1), s2 + (tc / dc).sum(-1)
        return s1.contiguous(), (s2.contiguous() if want_s2 else a.new_empty((0,)))

    @staticmethod
    def vandermonde(v, x, L, conj):
        powers = torch.exp(x.unsqueeze(-1) * torch.arange(L, dtype=v.real.dtype))
        out = (v.unsqueeze(-1) * powers).sum(-2)
        return 2 * out.real if conj else out

    @staticmethod
    def vandermonde_t_sums(u, x, L, weighted):
        pos = torch.arange(L, dtype=x.real.dtype)
        terms = u.unsqueeze(-2) * torch.exp(x.unsqueeze(-1) * pos)  # (B, N, L)
        return terms.sum(-1), ((terms * pos).sum(-1) if weighted else x.new_empty((0,)))


@pytest.fixture
def cpu_primitives(monkeypatch):
    monkeypatch.setitem(kc._PRIMITIVES, "cpu", _RefPrimitives())


def _crandn(*shape, gen, dtype=torch.complex128, device="cpu"):
    return torch.randn(*shape, generator=gen, dtype=dtype).to(device)


def _poles(*shape, gen):
    """S4/S4D-like poles or exponents: Re < 0 bounded away from 0, spread imaginary parts."""
    re = -(0.05 + torch.rand(*shape, generator=gen, dtype=torch.float64))
    return torch.complex(re, 3 * torch.randn(*shape, generator=gen, dtype=torch.float64))


def _points(L, gen):
    """Evaluation points with Re >= 0.1, so that z - w never comes near 0."""
    re = 0.1 + torch.rand(L, generator=gen, dtype=torch.float64)
    return torch.complex(re, 3 * torch.randn(L, generator=gen, dtype=torch.float64))


def _case(op, batch, N, L, gen, u_complex=True):
    """(fast function, reference function, inputs) for one op; inputs complex128 on the CPU."""
    if op == "cauchy":
        inputs = {"v": _crandn(*batch, N, gen=gen), "z": _points(L, gen), "w": _poles(N, gen=gen)}
        return kc.cauchy_cuda, cauchy_ref, inputs
    if op == "vandermonde":
        inputs = {"v": _crandn(*batch, N, gen=gen), "x": 0.1 * _poles(*batch[-1:], N, gen=gen)}
        return kc.vandermonde_cuda, vandermonde_ref, inputs
    if u_complex:
        u = _crandn(*batch, L, gen=gen)
    else:
        u = torch.randn(*batch, L, generator=gen, dtype=torch.float64)
    inputs = {"u": u, "v": _crandn(N, gen=gen), "x": 0.1 * _poles(N, gen=gen)}
    return kc.vandermonde_transpose_cuda, vandermonde_transpose_ref, inputs


def _call(fn, inputs, op, L, conj):
    args = list(inputs.values())
    if op == "cauchy":
        return fn(*args, conj)
    if op == "vandermonde":
        return fn(*args, L, conj)
    return fn(*args, L)


# ------------------------------------------------------------------------------ CPU: plumbing
# (op, conj, u complex): every form of the three products; u is real or complex for the transposed one
CASES = [("cauchy", False, True), ("cauchy", True, True), ("vandermonde", False, True),
         ("vandermonde", True, True), ("vandermonde_transpose", False, True),
         ("vandermonde_transpose", False, False)]


@pytest.mark.parametrize(("op", "conj", "u_complex"), CASES)
def test_autograd_formulas_match_reference(cpu_primitives, op, conj, u_complex):
    """The registered backward (built from the transposed primitives) equals the reference's autograd."""
    gen = torch.Generator().manual_seed(0)
    N, L = 5, 7
    fast, ref, inputs = _case(op, (2, 3), N, L, gen, u_complex=u_complex)
    leaves = {k: t.clone().requires_grad_(True) for k, t in inputs.items()}
    out = _call(fast, leaves, op, L, conj)
    expected = _call(ref, inputs, op, L, conj)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    g = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, list(leaves.values()), g)
    ref_leaves = {k: t.clone().requires_grad_(True) for k, t in inputs.items()}
    ref_grads = torch.autograd.grad(_call(ref, ref_leaves, op, L, conj), list(ref_leaves.values()), g)
    for name, got, want in zip(leaves, grads, ref_grads):
        assert got.dtype == want.dtype and got.shape == want.shape, f"{op} grad {name}"
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=f"{op} grad {name}")


@pytest.mark.parametrize(("op", "conj", "u_complex"), CASES)
def test_gradcheck_ops(cpu_primitives, op, conj, u_complex):
    gen = torch.Generator().manual_seed(1)
    L = 4
    fast, _, inputs = _case(op, (2,), 3, L, gen, u_complex=u_complex)
    leaves = [t.requires_grad_(True) for t in inputs.values()]
    assert torch.autograd.gradcheck(lambda *a: _call(fast, dict(zip(inputs, a)), op, L, conj), leaves)


def test_opcheck_all_ops(cpu_primitives):
    gen = torch.Generator().manual_seed(2)
    B, N, L = 3, 4, 6
    v, w, x = _crandn(B, N, gen=gen), _poles(B, N, gen=gen), 0.1 * _poles(B, N, gen=gen)
    z, u = _points(L, gen), _crandn(B, L, gen=gen)
    g = _crandn(B, L, gen=gen)
    for conj in (False, True):
        torch.library.opcheck(torch.ops.ssm.cauchy.default, (v.requires_grad_(), z, w.requires_grad_(), conj))
        torch.library.opcheck(torch.ops.ssm.vandermonde.default, (v, x.requires_grad_(), L, conj))
        torch.library.opcheck(torch.ops.ssm.cauchy_sums.default, (w.detach(), z.unsqueeze(0), g, conj, True))
    for uu in (u, u.real.contiguous()):
        torch.library.opcheck(torch.ops.ssm.vandermonde_transpose.default, (uu.requires_grad_(), v, x, L))
        torch.library.opcheck(torch.ops.ssm.vandermonde_t_sums.default, (uu.detach(), x.detach(), L, True))


def test_torch_compile_fullgraph(cpu_primitives):
    gen = torch.Generator().manual_seed(3)
    v, w, z = _crandn(2, 4, gen=gen), _poles(2, 4, gen=gen), _points(5, gen)

    def f(v, w):
        k = kc.cauchy_cuda(v, z, w, True) + kc.vandermonde_cuda(v, w, 5)
        return kc.vandermonde_transpose_cuda(k, v, w, 5).abs().sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    leaves = [v.clone().requires_grad_(), w.clone().requires_grad_()]
    got = compiled(*leaves)
    got_grads = torch.autograd.grad(got, leaves)
    leaves2 = [v.clone().requires_grad_(), w.clone().requires_grad_()]
    want = f(*leaves2)
    for a, b in zip(got_grads, torch.autograd.grad(want, leaves2)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(got, want)


# ------------------------------------------------------------------------------ CPU: errors, sources
def test_availability_is_reported():
    if _ext.is_loaded():
        assert kc.is_available() == torch.cuda.is_available()
        return
    assert not kc.is_available()
    reason = kc.unavailable_reason()
    assert "ssm._C" in reason and _ext.BUILD_COMMAND in reason
    with pytest.raises(_ext.ExtensionUnavailableError, match="SSM_BUILD_EXT=1"):
        _ext.extension()


def test_bad_inputs_raise_naming_the_argument(monkeypatch):
    gen = torch.Generator().manual_seed(4)
    v, w, z = _crandn(3, 4, gen=gen), _poles(3, 4, gen=gen), _points(5, gen)
    with pytest.raises(ValueError, match="needs CUDA tensors, got tensors on cpu"):
        kc.cauchy_cuda(v, z, w)  # no CPU primitives registered yet: nothing falls back
    with pytest.raises(ValueError, match="run on CUDA tensors"):
        torch.ops.ssm.vandermonde(v, w, 5, False)
    monkeypatch.setitem(kc._PRIMITIVES, "cpu", _RefPrimitives())  # past the device check
    with pytest.raises(TypeError, match="z must have v's dtype"):
        kc.cauchy_cuda(v, z.to(torch.complex64), w)
    with pytest.raises(TypeError, match="v must be complex64 or complex128"):
        kc.vandermonde_cuda(v.real, w.real, 5)
    with pytest.raises(ValueError, match="L must be >= 1"):
        kc.vandermonde_cuda(v, w, 0)
    with pytest.raises(TypeError, match="L must be an int"):
        kc.vandermonde_cuda(v, w, 5.0)
    with pytest.raises(ValueError, match=r"u must have shape \(..., L\) with L=6"):
        kc.vandermonde_transpose_cuda(_crandn(3, 5, gen=gen), v, w, 6)
    with pytest.raises(ValueError, match="do not broadcast"):
        kc.vandermonde_cuda(v, _poles(2, 4, gen=gen), 5)


def test_kernel_sources_compile_without_torch():
    """The .cu/.cuh/.h kernel sources include CUDA and C headers only (csrc/README.md)."""
    sources = [p for p in CSRC.rglob("*") if p.suffix in {".cu", ".cuh", ".h"} and p.name != "ops.h"]
    assert any(p.suffix == ".cu" for p in sources)
    pattern = re.compile(r'#\s*include\s*[<"](ATen|c10|torch)/')
    offenders = [str(p) for p in sources if pattern.search(p.read_text())]
    assert not offenders, f"kernel sources include torch headers: {offenders}"


# ------------------------------------------------------------------------------ GPU: the kernels
requires_kernels = pytest.mark.skipif(
    not kc.is_available(), reason=f"CUDA backend unavailable: {kc.unavailable_reason()}"
)
REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
LS = [1, 3, 17, 1000, 4097]
NS = [2, 64, 256]
BATCHES = [(), (3,), (2, 3)]


def _gpu_inputs(op, batch, N, L, gen, dtype, u_complex=True):
    """Inputs rounded to the working dtype, and the same values in double precision (the truth's)."""
    fast, ref, inputs = _case(op, batch, N, L, gen, u_complex)
    work = {k: t.to(dtype if t.is_complex() else REAL[dtype]).cuda() for k, t in inputs.items()}
    truth_in = {k: t.to(torch.complex128 if t.is_complex() else torch.float64) for k, t in work.items()}
    return fast, ref, work, truth_in


def _values_and_grads(fn, inputs, op, L, conj, g):
    leaves = {k: t.clone().requires_grad_(True) for k, t in inputs.items()}
    out = _call(fn, leaves, op, L, conj)
    grads = torch.autograd.grad(out, list(leaves.values()), g.to(out.dtype))
    return out.detach(), dict(zip(leaves, grads))


@pytest.mark.cuda
@pytest.mark.ext
@requires_kernels
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize(("op", "conj", "u_complex"), CASES)
@pytest.mark.parametrize("N", NS)
@pytest.mark.parametrize("L", LS)
def test_kernels_against_reference(op, conj, u_complex, N, L, dtype, check_accuracy):
    """Values and gradients: err <= 2 err(ref at working precision) + floor (tests/conftest.py)."""
    batch = BATCHES[(LS.index(L) + NS.index(N)) % 3]  # every batch rank meets every L and N
    gen = torch.Generator().manual_seed(10 + L + N)
    fast, ref, work, truth_in = _gpu_inputs(op, batch, N, L, gen, dtype, u_complex)
    with torch.no_grad():
        shape = _call(ref, truth_in, op, L, conj).shape
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    if op != "vandermonde" or not conj:  # the conj Vandermonde product is real
        g = torch.complex(g, torch.randn(shape, generator=gen, dtype=torch.float64))
    g = g.cuda()
    truth, truth_grads = _values_and_grads(ref, truth_in, op, L, conj, g)
    lo, lo_grads = _values_and_grads(ref, work, op, L, conj, g)
    got, got_grads = _values_and_grads(fast, work, op, L, conj, g)
    assert got.dtype == lo.dtype
    check_accuracy(got, lo, truth, dtype, f"{op} values")
    for name in got_grads:
        check_accuracy(got_grads[name], lo_grads[name], truth_grads[name], dtype, f"{op} grad {name}")


@pytest.mark.cuda
@pytest.mark.ext
@requires_kernels
def test_opcheck_and_compile_on_gpu():
    gen = torch.Generator().manual_seed(5)
    B, N, L = 3, 40, 300
    inputs = (_crandn(B, N, gen=gen), _poles(B, N, gen=gen), 0.1 * _poles(B, N, gen=gen))
    v, w, x = (t.to(torch.complex64).cuda() for t in inputs)
    z, u = _points(L, gen).to(torch.complex64).cuda(), _crandn(B, L, gen=gen).to(torch.complex64).cuda()
    for conj in (False, True):
        torch.library.opcheck(torch.ops.ssm.cauchy.default, (v.requires_grad_(), z, w.requires_grad_(), conj))
        torch.library.opcheck(torch.ops.ssm.vandermonde.default, (v, x.requires_grad_(), L, conj))
    for uu in (u, u.real.contiguous()):
        torch.library.opcheck(torch.ops.ssm.vandermonde_transpose.default, (uu.requires_grad_(), v, x, L))
        torch.library.opcheck(torch.ops.ssm.vandermonde_t_sums.default, (uu.detach(), x.detach(), L, True))

    def f(v, w, x):
        k = kc.cauchy_cuda(v, z, w, True) + kc.vandermonde_cuda(v, x, L)
        return kc.vandermonde_transpose_cuda(k, v, x, L).abs().sum()

    leaves = [t.detach().requires_grad_() for t in (v, w, x)]
    got = torch.compile(f, fullgraph=True)(*leaves)
    got_grads = torch.autograd.grad(got, leaves)
    leaves2 = [t.detach().requires_grad_() for t in (v, w, x)]
    want = f(*leaves2)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    for a, b in zip(got_grads, torch.autograd.grad(want, leaves2)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.ext
@requires_kernels
def test_large_phase_is_reduced_accurately():
    """|Im(x)| l up to ~4e4 rad: a complex64 exp(x * l) loses ~1e-3 to rounding of the product;
    the kernels carry the product exactly and reduce it mod 2 pi."""
    L, N = 4097, 8
    gen = torch.Generator().manual_seed(6)
    x = torch.complex(-1e-4 * torch.rand(N, generator=gen, dtype=torch.float64),
                      10 * torch.rand(N, generator=gen, dtype=torch.float64))
    v = _crandn(N, gen=gen)
    v64, x64 = v.to(torch.complex64).cuda(), x.to(torch.complex64).cuda()
    truth = vandermonde_ref(v64.to(torch.complex128), x64.to(torch.complex128), L)
    scale = truth.abs().max()
    err = ((kc.vandermonde_cuda(v64, x64, L) - truth).abs().max() / scale).item()
    err_naive = ((vandermonde_ref(v64, x64, L) - truth).abs().max() / scale).item()
    assert err < 2e-6 and err < err_naive / 10, f"kernel {err:.2e}, naive complex64 {err_naive:.2e}"


@pytest.mark.cuda
@pytest.mark.ext
@requires_kernels
def test_grid_limits_tiles_views_and_determinism():
    """More rows than one grid dimension holds (65535), N past one tile with a tail, conjugate
    views as inputs, and bitwise-identical reruns (no atomics)."""
    gen = torch.Generator().manual_seed(7)
    B, N, L = 70000, 2, 3
    v, x = _crandn(B, N, gen=gen).cuda(), 0.1 * _poles(B, N, gen=gen).cuda()
    torch.testing.assert_close(kc.vandermonde_cuda(v, x, L), vandermonde_ref(v, x, L))
    z = _points(L, gen).cuda()
    torch.testing.assert_close(kc.cauchy_cuda(v, z, x, True), cauchy_ref(v, z, x, True))
    N, L = 300, 5000
    v, w, x = _crandn(2, N, gen=gen).cuda(), _poles(2, N, gen=gen).cuda(), 0.01 * _poles(2, N, gen=gen).cuda()
    z, u = _points(L, gen).cuda(), _crandn(2, L, gen=gen).cuda()
    vc, wc = v.conj(), w.conj()
    torch.testing.assert_close(kc.cauchy_cuda(vc, z, wc, True), cauchy_ref(vc, z, wc, True))
    torch.testing.assert_close(kc.vandermonde_cuda(v, x.conj(), L), vandermonde_ref(v, x.conj(), L))
    torch.testing.assert_close(kc.vandermonde_transpose_cuda(u.conj(), v, x, L),
                               vandermonde_transpose_ref(u.conj(), v, x, L))
    first = kc.vandermonde_transpose_cuda(u, v, x, L)
    assert torch.equal(first, kc.vandermonde_transpose_cuda(u, v, x, L))
