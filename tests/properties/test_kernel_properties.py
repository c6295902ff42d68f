"""Properties of the public kernels (cauchy, vandermonde, vandermonde_transpose, scan) over generated
batch shapes (empty ones included), sizes, dtypes and flags: values and gradients against the float64
references, non-finite values confined to their batch row, and a ValueError or TypeError naming the
argument for every bad input."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis", reason="the property tests need the [dev] extra (hypothesis)")

import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from property_cases import L_MAX, raises_naming, st  # noqa: E402

from ssm import kernels  # noqa: E402
from ssm.kernels.scan import scan, scan_ref  # noqa: E402

# absolute floor of the accuracy rule, relative to max(1, max |exact|) (tests/conftest.py TOL)
FLOOR = {torch.complex64: 1e-5, torch.complex128: 1e-12, torch.float32: 1e-5, torch.float64: 1e-12}
REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
seeds = st.integers(0, 2**16)
batch_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple)
cdtypes = st.sampled_from([torch.complex64, torch.complex128])
FAST = st.sampled_from(["torch", "auto"])  # auto: the torch paths at these sizes (no KeOps compile)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check(fast: torch.Tensor, ref_wp: torch.Tensor, exact: torch.Tensor, what: str) -> None:
    """err(fast) <= 2 err(ref at working precision) + floor * max(1, max |exact|)."""
    assert fast.shape == exact.shape and fast.dtype == ref_wp.dtype, f"{what}: {fast.shape} {fast.dtype}"
    if exact.numel() == 0:
        return
    e_fast = (fast.to(exact.dtype) - exact).abs().max().item()
    e_ref = (ref_wp.to(exact.dtype) - exact).abs().max().item()
    bound = 2 * e_ref + FLOOR[fast.dtype] * max(1.0, exact.abs().max().item())
    assert e_fast <= bound, f"{what}: err {e_fast:.3e} > 2 * {e_ref:.3e} + floor = {bound:.3e}"


def _against_ref(fn, ref, inputs: list[torch.Tensor], seed: int, what: str, grads=None) -> None:
    """Values and gradients (shared upstream gradient) of ``fn`` at working precision against ``ref`` at
    working precision and in complex128/float64 (the exact value). ``grads``: which inputs require a
    gradient (all by default)."""
    wide = [t.to(torch.complex128 if t.is_complex() else torch.float64) for t in inputs]
    grads = [True] * len(inputs) if grads is None else grads
    outs = []
    for f, args in ((fn, inputs), (ref, inputs), (ref, wide)):
        args = [a.detach().requires_grad_(g) for a, g in zip(args, grads)]
        out = f(*args)
        wide_dtype = torch.complex128 if out.is_complex() else torch.float64
        g = torch.randn(out.shape, generator=_gen(seed), dtype=wide_dtype)
        (out * g.to(out.dtype).conj()).real.sum().backward()
        # an input the output does not depend on (scan's a at L = 1) may get no gradient at all
        outs.append((out.detach(), [torch.zeros_like(a) if a.grad is None else a.grad for a in args]))
    (fast, g_fast), (ref_wp, g_ref), (exact, g_exact) = outs
    _check(fast, ref_wp, exact, what)
    for i, (a, b, c) in enumerate(zip(g_fast, g_ref, g_exact)):
        _check(a, b, c, f"{what}: gradient of input {i}")


@st.composite
def cauchy_inputs(draw):
    """S4-like: poles in the left half-plane, points on the imaginary axis (denominators >= 0.05);
    shared poles (w (H, N) for v (..., H, N)) take the pairs path of the torch backend."""
    seed, dtype, batch = draw(seeds), draw(cdtypes), draw(batch_shapes)
    N, L = draw(st.integers(1, 6)), draw(st.integers(1, L_MAX))
    conj, shared = draw(st.booleans()), draw(st.booleans())
    g = _gen(seed)
    H = draw(st.integers(1, 3))
    v = torch.randn(*batch, H, N, generator=g, dtype=torch.complex128)
    w_shape = (H, N) if shared else (*batch, H, N)
    w = torch.complex(-0.05 - torch.rand(w_shape, generator=g, dtype=torch.float64),
                      3 * torch.randn(w_shape, generator=g, dtype=torch.float64))
    z = 4j * torch.randn(L, generator=g, dtype=torch.float64).to(torch.complex128)
    return [v.to(dtype), z.to(dtype), w.to(dtype)], conj, seed


@given(case=cauchy_inputs(), backend=FAST, z_grad=st.booleans())
def test_cauchy_matches_reference(case, backend, z_grad):
    """(Without a gradient for z, shared poles and conj=True take the torch backend's pairs path.)"""
    (v, z, w), conj, seed = case
    _against_ref(lambda *a: kernels.cauchy(*a, conj=conj, backend=backend),
                 lambda *a: kernels.cauchy(*a, conj=conj, backend="ref"), [v, z, w], seed,
                 f"cauchy {backend}",
                 grads=[True, z_grad, True])


@st.composite
def vandermonde_inputs(draw):
    """S4D-like: x = dt Lambda with Re(Lambda) < 0, dt log-uniform in [1e-3, 1]."""
    seed, dtype, batch = draw(seeds), draw(cdtypes), draw(batch_shapes)
    N, L = draw(st.integers(1, 6)), draw(st.integers(1, L_MAX))
    g = _gen(seed)
    v = torch.randn(*batch, N, generator=g, dtype=torch.complex128)
    dt = torch.exp(torch.empty(*batch, 1, dtype=torch.float64).uniform_(-6.9, 0.0, generator=g))
    lam = torch.complex(-torch.rand(*batch, N, generator=g, dtype=torch.float64),
                        3.14 * torch.randn(*batch, N, generator=g, dtype=torch.float64))
    u = torch.randn(*batch, L, generator=g, dtype=torch.float64)
    if draw(st.booleans()):
        u = torch.complex(u, torch.randn(*batch, L, generator=g, dtype=torch.float64))
    u = u.to(dtype if u.is_complex() else REAL[dtype])
    return v.to(dtype), (dt * lam).to(dtype), u, L, seed


@given(case=vandermonde_inputs(), conj=st.booleans(), backend=FAST)
def test_vandermonde_matches_reference(case, conj, backend):
    v, x, u, L, seed = case
    _against_ref(lambda *a: kernels.vandermonde(*a, L, conj=conj, backend=backend),
                 lambda *a: kernels.vandermonde(*a, L, conj=conj, backend="ref"), [v, x], seed, "vandermonde")
    _against_ref(lambda *a: kernels.vandermonde_transpose(*a, L, backend=backend),
                 lambda *a: kernels.vandermonde_transpose(*a, L, backend="ref"), [u, v, x], seed,
                 "vandermonde_transpose")


@given(seed=seeds, batch=batch_shapes, L=st.integers(1, L_MAX), chunk=st.integers(1, 9),
       dtype=st.sampled_from([torch.complex64, torch.complex128, torch.float32, torch.float64]),
       a_shape=st.sampled_from(["full", "broadcast", "scalar"]), with_x0=st.booleans())
def test_scan_matches_sequential_loop(seed, batch, L, chunk, dtype, a_shape, with_x0):
    g = _gen(seed)
    N = 3
    shape = (N, *batch)
    a = torch.exp(torch.complex(-torch.rand(shape, generator=g, dtype=torch.float64),
                                2 * torch.randn(shape, generator=g, dtype=torch.float64)))  # |a| <= 1
    if not dtype.is_complex:
        a = a.real
    if a_shape == "broadcast":  # (N, 1, ..., 1): one coefficient per row, broadcast over the batch
        a = a[(slice(None),) + (slice(0, 1),) * len(batch)]
    elif a_shape == "scalar":  # one coefficient for everything
        a = a[(0,) * a.dim()] if a.numel() else torch.full((), 0.5, dtype=a.dtype)
    b = torch.randn(*shape, L, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        b = torch.complex(b, torch.randn(*shape, L, generator=g, dtype=torch.float64))
    inputs = [a.to(dtype), b.to(dtype)]
    if with_x0:
        inputs.append(torch.randn(shape, generator=g, dtype=torch.float64).to(dtype))
    _against_ref(lambda *t: scan(*t, chunk_size=chunk), lambda a, b, *x0: scan_ref(a.unsqueeze(-1), b, *x0),
                 inputs, seed, f"scan (chunk_size={chunk})")


@given(seed=seeds, rows=st.integers(2, 4), L=st.integers(1, L_MAX), t0=st.integers(0, L_MAX - 1),
       value=st.sampled_from([float("nan"), float("inf")]),
       which=st.sampled_from(["cauchy", "vandermonde", "scan"]))
def test_a_non_finite_input_stays_in_its_row(seed, rows, L, t0, value, which):
    """A NaN/inf in one batch row shows in that row's output and leaves every other row unchanged."""
    g = _gen(seed)
    N = 4
    v = torch.randn(rows, N, generator=g, dtype=torch.complex128)
    if which == "scan":
        a = torch.full((rows, 1), 0.9 + 0.1j, dtype=torch.complex128)
        b = torch.randn(rows, L, generator=g, dtype=torch.complex128)
        bad = b.clone()
        bad[0, t0 % L] = value
        clean, out = scan(a.squeeze(-1), b, chunk_size=4), scan(a.squeeze(-1), bad, chunk_size=4)
        t = t0 % L
        assert not torch.isfinite(out[0, t:]).any(), "the recurrence carries the bad value forward"
        # the chunk's Toeplitz product spreads it to the chunk's earlier positions, no further
        assert torch.isfinite(out[0, : t - t % 4]).all(), "earlier chunks stay finite"
    else:
        bad = v.clone()
        bad[0, t0 % N] = value
        if which == "cauchy":
            w = torch.complex(-0.1 - torch.rand(rows, N, generator=g, dtype=torch.float64),
                              torch.randn(rows, N, generator=g, dtype=torch.float64))
            z = 1j * torch.randn(L, generator=g, dtype=torch.float64).to(torch.complex128)
            clean, out = kernels.cauchy(v, z, w, backend="torch"), kernels.cauchy(bad, z, w, backend="torch")
        else:
            x = torch.complex(-torch.rand(rows, N, generator=g, dtype=torch.float64),
                              torch.randn(rows, N, generator=g, dtype=torch.float64)) * 0.1
            clean, out = (kernels.vandermonde(v, x, L, backend="torch"),
                          kernels.vandermonde(bad, x, L, backend="torch"))
        assert not torch.isfinite(out[0]).all()
    torch.testing.assert_close(out[1:], clean[1:], rtol=1e-12, atol=1e-12)


_C64, _C128 = torch.complex64, torch.complex128
# (kernel, argument, how it is broken, error, text the message must contain)
BAD_KERNEL_ARGS = [
    ("cauchy", "v", "real", TypeError, "cauchy: v must be complex64 or complex128"),
    ("cauchy", "v", "list", TypeError, "cauchy: v must be a torch.Tensor"),
    ("cauchy", "v", "scalar", ValueError, "cauchy: v must have at least one dimension"),
    ("cauchy", "z", "dtype", TypeError, "cauchy: z must have the same dtype as v"),
    ("cauchy", "z", "2-D", ValueError, "cauchy: z must be 1-D"),
    ("cauchy", "z", "empty", ValueError, "cauchy: z must be 1-D (L,) with L >= 1"),
    ("cauchy", "w", "N", ValueError, "cauchy: v and w must share the last dim N"),
    ("cauchy", "w", "batch", ValueError, "cauchy: leading (batch) dims"),
    ("cauchy", "conj", "str", TypeError, "cauchy: conj must be a bool"),
    ("cauchy", "backend", "name", ValueError, "cauchy: backend must be one of"),
    ("vandermonde", "v", "int", TypeError, "vandermonde: v must be complex64 or complex128"),
    ("vandermonde", "x", "dtype", TypeError, "vandermonde: x must have the same dtype as v"),
    ("vandermonde", "x", "N", ValueError, "vandermonde: v and x must share the last dim N"),
    ("vandermonde", "L", "0", ValueError, "vandermonde: L must be >= 1"),
    ("vandermonde", "L", "float", TypeError, "vandermonde: L must be an int"),
    ("vandermonde", "L", "tensor", TypeError, "vandermonde: L must be an int"),
    ("vandermonde", "conj", "int", TypeError, "vandermonde: conj must be a bool"),
    ("vandermonde_transpose", "u", "dtype", TypeError, "vandermonde_transpose: u must be"),
    ("vandermonde_transpose", "u", "L", ValueError, "vandermonde_transpose: u must have shape (..., L)"),
    ("vandermonde_transpose", "u", "list", TypeError, "vandermonde_transpose: u must be a torch.Tensor"),
    ("vandermonde_transpose", "u", "batch", ValueError, "vandermonde_transpose: leading (batch) dims"),
    ("vandermonde_transpose", "L", "bool", TypeError, "vandermonde_transpose: L must be an int"),
    ("scan", "b", "int", TypeError, "scan: b must be a floating-point or complex"),
    ("scan", "b", "L=0", ValueError, "scan: b must have a length L >= 1"),
    ("scan", "a", "dtype", TypeError, "scan: a and b must share a dtype"),
    ("scan", "a", "shape", ValueError, "scan: a "),
    ("scan", "x0", "shape", ValueError, "scan: x0 must broadcast to b.shape[:-1]"),
    ("scan", "x0", "dtype", TypeError, "scan: x0 must have b's dtype"),
    ("scan", "chunk_size", "bool", TypeError, "scan: chunk_size must be a positive int"),
]


@given(case=st.sampled_from(BAD_KERNEL_ARGS),
       batch=st.lists(st.integers(2, 3), min_size=1, max_size=2).map(tuple),
       N=st.integers(1, 5), L=st.integers(1, 9), dtype=cdtypes)
def test_bad_kernel_inputs_name_the_argument(case, batch, N, L, dtype):
    op, arg, how, error, text = case
    v, w = torch.ones(*batch, N, dtype=dtype), -torch.ones(*batch, N, dtype=dtype)
    z, u = torch.ones(L, dtype=dtype) * 1j, torch.ones(*batch, L, dtype=REAL[dtype])
    other = _C128 if dtype == _C64 else _C64
    bad = {
        ("v", "real"): v.real, ("v", "list"): v.tolist(), ("v", "scalar"): v.reshape(-1)[0],
        ("v", "int"): v.real.long(),
        ("z", "dtype"): z.to(other), ("z", "2-D"): z[None], ("z", "empty"): z[:0],
        ("w", "N"): torch.ones(*batch, N + 1, dtype=dtype),
        ("w", "batch"): torch.ones(*batch[:-1], batch[-1] + 1, N, dtype=dtype),
        ("x", "dtype"): w.to(other), ("x", "N"): torch.ones(*batch, N + 1, dtype=dtype),
        ("L", "0"): 0, ("L", "float"): float(L), ("L", "tensor"): torch.tensor(L), ("L", "bool"): True,
        ("u", "dtype"): u.to(torch.float64 if dtype == _C64 else torch.float32),
        ("u", "L"): u[..., :-1] if L > 1 else u[..., :0], ("u", "list"): u.tolist(),
        ("u", "batch"): torch.ones(*batch[:-1], batch[-1] + 1, L, dtype=REAL[dtype]),
        ("conj", "str"): "no", ("conj", "int"): 1, ("backend", "name"): "gpu",
    }
    if op == "cauchy":
        args = {"v": v, "z": z, "w": w, "conj": False, "backend": "auto"}
        args[arg] = bad[(arg, how)]
        call = lambda: kernels.cauchy(**args)  # noqa: E731
    elif op == "vandermonde":
        args = {"v": v, "x": w, "L": L, "conj": False}
        args[arg] = bad[(arg, how)]
        call = lambda: kernels.vandermonde(**args)  # noqa: E731
    elif op == "vandermonde_transpose":
        args = {"u": u, "v": v, "x": w, "L": L}
        args[arg] = bad[(arg, how)]
        call = lambda: kernels.vandermonde_transpose(**args)  # noqa: E731
    else:
        a, b = torch.full(batch, 0.5, dtype=dtype), torch.ones(*batch, L, dtype=dtype)
        args = {"a": a, "b": b, "x0": None, "chunk_size": 4}
        args[arg] = {("b", "int"): b.real.long(), ("b", "L=0"): b[..., :0], ("a", "dtype"): a.to(other),
                     ("a", "shape"): torch.full((batch[-1] + 1,), 0.5, dtype=dtype),
                     ("x0", "shape"): torch.ones(batch[0] + 1, *batch, dtype=dtype),
                     ("x0", "dtype"): torch.ones(batch, dtype=other),
                     ("chunk_size", "bool"): True}[(arg, how)]
        if (arg, how) == ("b", "int"):
            args["a"] = a.real.long()
        call = lambda: scan(**args)  # noqa: E731
    with raises_naming(error, text):
        call()
