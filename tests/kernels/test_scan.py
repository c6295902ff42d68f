"""The parallel scans of ssm.kernels.scan against the sequential loop (S5, arXiv 2208.04933)."""

import pytest
import torch

from ssm.kernels.scan import associative_scan, scan, scan_ref

ATOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}


def _stable_a(shape, seed=0, decay=0.3):
    g = torch.Generator().manual_seed(seed)
    re = -torch.rand(shape, generator=g, dtype=torch.float64) * decay
    im = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    return torch.exp(torch.complex(re, im))  # |a| <= 1


def _inputs(N, B, L, seed=1):
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(N, B, L, 2, generator=g, dtype=torch.float64)
    x0 = torch.randn(N, B, 2, generator=g, dtype=torch.float64)
    return torch.view_as_complex(b), torch.view_as_complex(x0)


def _err(x, ref):
    return (x.to(torch.complex128) - ref).abs().max().item()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("L", [1, 3, 17, 1000, 4097])
@pytest.mark.parametrize("chunk_size", [1, 5, 32])
def test_scan_matches_loop(L, dtype, chunk_size):
    N, B = 4, 3
    a = _stable_a((N, 1))
    b, x0 = _inputs(N, B, L)
    gold = scan_ref(a.unsqueeze(-1), b, x0)  # complex128 loop
    ref = scan_ref(a.to(dtype).unsqueeze(-1), b.to(dtype), x0.to(dtype))
    fast = scan(a.to(dtype), b.to(dtype), x0.to(dtype), chunk_size=chunk_size)
    assert fast.dtype == dtype and fast.shape == b.shape
    e_fast, e_ref = _err(fast, gold), _err(ref, gold)
    assert e_fast <= 2 * e_ref + ATOL[dtype] * max(1.0, gold.abs().max().item()), (e_fast, e_ref)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("L", [1, 3, 17, 1000])
def test_associative_scan_time_varying(L, dtype):
    N, B = 3, 2
    a = _stable_a((N, B, L), seed=2)
    b, _ = _inputs(N, B, L)
    gold = scan_ref(a, b)
    ref = scan_ref(a.to(dtype), b.to(dtype))
    fast = associative_scan(a.to(dtype), b.to(dtype))
    e_fast, e_ref = _err(fast, gold), _err(ref, gold)
    assert e_fast <= 2 * e_ref + ATOL[dtype] * max(1.0, gold.abs().max().item()), (e_fast, e_ref)


def test_scan_without_x0_and_broadcast_shapes():
    N, B, L = 5, 2, 40
    b, _ = _inputs(N, B, L)
    a = _stable_a((N, 1))
    assert _err(scan(a, b), scan_ref(a.unsqueeze(-1), b)) < 1e-12
    a_shared = _stable_a((1,))  # one coefficient for every row
    assert _err(scan(a_shared, b, chunk_size=7), scan_ref(a_shared, b)) < 1e-12
    bt = b.permute(1, 0, 2).contiguous()  # (B, N, L) with a (N,): a varies in the last batch dim
    a_n = a.squeeze(-1)
    assert _err(scan(a_n, bt, chunk_size=8), scan_ref(a_n.unsqueeze(-1), bt)) < 1e-12


def test_scan_edge_coefficients():
    """a = 0 (no memory), a = 1 (running sum) and real tensors follow the loop exactly."""
    b = torch.randn(2, 50, dtype=torch.float64)
    a = torch.tensor([0.0, 1.0], dtype=torch.float64)
    out = scan(a, b, chunk_size=8)
    torch.testing.assert_close(out[0], b[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(out[1], b[1].cumsum(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("L", [1, 3, 17, 1000])
def test_scan_gradients_match_loop(L, dtype):
    N, B = 3, 2
    a0 = _stable_a((N, 1), seed=3).to(dtype)
    b0, x00 = _inputs(N, B, L, seed=4)
    g = torch.randn(N, B, L, dtype=dtype)

    def grads(fn, a_shape):
        a = a0.clone().requires_grad_()
        b = b0.to(dtype).requires_grad_()
        x0 = x00.to(dtype).requires_grad_()
        out = fn(a.reshape(a_shape), b, x0)
        ga, gb, gx0 = torch.autograd.grad(out, (a, b, x0), g)
        return ga, gb, gx0

    fast = grads(lambda a, b, x0: scan(a, b, x0, chunk_size=8), (N, 1))
    ref = grads(scan_ref, (N, 1, 1))
    tol = 1e-10 if dtype == torch.complex128 else 2e-3
    for name, f, r in zip(("a", "b", "x0"), fast, ref):
        rel = (f - r).abs().max() / r.abs().max().clamp(min=1e-30)
        assert rel < tol, f"grad {name}: rel err {rel:.2e}"


def test_gradcheck_complex128():
    a = _stable_a((2, 1), seed=5).requires_grad_()
    b, x0 = _inputs(2, 1, 11, seed=6)
    b.requires_grad_()
    x0.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, x0: scan(a, b, x0, chunk_size=4), (a, b, x0))
    a_tv = _stable_a((2, 1, 11), seed=7).requires_grad_()
    assert torch.autograd.gradcheck(associative_scan, (a_tv, b))
    assert torch.autograd.gradcheck(lambda a, b, x0: scan_ref(a, b, x0), (a_tv, b, x0))


def test_scan_saves_linear_memory_for_backward():
    """Autograd keeps O(numel(b)) bytes, not one copy per level of a log-depth scan."""
    N, B, L = 8, 4, 4096
    a = _stable_a((N, 1)).to(torch.complex64).requires_grad_()
    b = torch.randn(N, B, L, dtype=torch.complex64, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        scan(a, b).real.sum()
    in_bytes = b.numel() * b.element_size()
    assert sum(saved) <= 4 * in_bytes, f"saved {sum(saved) / in_bytes:.1f}x the input"


def test_scan_bad_inputs():
    b = torch.randn(3, 10, dtype=torch.complex64)
    a = torch.rand(3, 1).to(torch.complex64)
    with pytest.raises(TypeError, match="share a dtype"):
        scan(a.to(torch.complex128), b)
    with pytest.raises(ValueError, match="broadcast"):
        scan(torch.rand(4).to(torch.complex64), b)
    with pytest.raises(ValueError, match="enlarge"):
        scan(torch.rand(2, 3, 1).to(torch.complex64), b)
    with pytest.raises(ValueError, match="chunk_size"):
        scan(a, b, chunk_size=0)
    with pytest.raises(ValueError, match="L >= 1"):
        scan(a, torch.zeros(3, 0, dtype=torch.complex64))
    with pytest.raises(TypeError, match="x0"):
        scan(a, b, torch.zeros(3, 1, dtype=torch.complex128))
    with pytest.raises(ValueError, match="does not broadcast"):
        associative_scan(torch.ones(4, 10, dtype=torch.complex64), b)
    with pytest.raises(ValueError, match="does not broadcast"):
        scan_ref(torch.ones(2, 1, dtype=torch.complex64), b)


@pytest.mark.parametrize("chunk_size", [1, 2, 4])
def test_scan_many_chunks(chunk_size):
    """Thousands of chunk totals (L = 4097 with T = 2 or 4) and the unchunked path."""
    a = _stable_a((2, 1), seed=8)
    b, x0 = _inputs(2, 3, 4097, seed=9)
    gold = scan_ref(a.unsqueeze(-1), b, x0)
    assert _err(scan(a, b, x0, chunk_size=chunk_size), gold) < 1e-11
    a_mid = _stable_a((1, 3), seed=10).squeeze(0)  # a varies in the last batch dim only
    bt = b.permute(1, 0, 2).contiguous()  # (3, 2, L) with a (3, 1)
    assert _err(scan(a_mid.unsqueeze(-1), bt, chunk_size=chunk_size),
                scan_ref(a_mid.view(3, 1, 1), bt)) < 1e-11


@pytest.mark.parametrize("dtype,log_abs_a", [
    (torch.complex64, [-95.0, -100.0, -60.0, -120.0]),  # subnormal |a| in single precision: (-103, -87)
    (torch.complex128, [-720.0, -740.0, -500.0, -800.0]),  # subnormal |a| in double: (-745, -708)
])
@pytest.mark.parametrize("chunk_size", [1, 5, 32])
def test_scan_gradients_finite_for_subnormal_a(dtype, log_abs_a, chunk_size):
    """Fast-decaying modes (``exp(dt Lambda)`` of a subnormal modulus, or 0) keep exact gradients.

    ``torch.cumprod``'s gradient divides by its input; a subnormal ``a`` made that inf/NaN in the
    powers ``a^0 .. a^T`` (NaN reaching Lambda and dt in the S5 layer).
    """
    log_a = torch.complex(torch.tensor(log_abs_a + [-0.01], dtype=torch.float64),
                          torch.tensor([1.0, -2.0, 0.5, 3.0, 0.7], dtype=torch.float64))
    a0 = torch.exp(log_a.to(dtype)).unsqueeze(-1)  # (5, 1); the last mode decays slowly
    b0, x00 = _inputs(5, 2, 70, seed=11)
    g = torch.randn(5, 2, 70, generator=torch.Generator().manual_seed(12), dtype=torch.complex128)

    def grads(fn, a_shape):
        a, b, x0 = (t.to(dtype).clone().requires_grad_() for t in (a0, b0, x00))
        return torch.autograd.grad(fn(a.reshape(a_shape), b, x0), (a, b, x0), g.to(dtype))

    fast = grads(lambda a, b, x0: scan(a, b, x0, chunk_size=chunk_size), (5, 1))
    ref = grads(scan_ref, (5, 1, 1))
    tol = 1e-10 if dtype == torch.complex128 else 1e-4
    for name, f, r in zip(("a", "b", "x0"), fast, ref):
        assert torch.isfinite(torch.view_as_real(f)).all(), f"grad {name} not finite: {f.flatten()}"
        rel = (f - r).abs().max() / r.abs().max()
        assert rel < tol, f"grad {name}: rel err {rel:.2e}"
    # the subnormal modes get their exact gradient: dx_k/da = x_{k-1} for such a tiny a
    assert (fast[0][:4].abs() > 1).all()


def test_bad_inputs_name_the_argument():
    c = torch.complex64
    a, b = torch.full((4, 1), 0.5 + 0j, dtype=c), torch.ones(4, 2, 10, dtype=c)
    cases = [
        (lambda: scan(a, [1.0]), TypeError, "scan: b must be a tensor"),
        (lambda: scan(a, torch.ones((), dtype=c)), ValueError, r"b must be a tensor of shape \(\.\.\., L"),
        (lambda: scan(a, b[..., :0]), ValueError, "scan: b must have a length L >= 1"),
        (lambda: scan(a.real.long(), b.real.long()), TypeError, "scan: b must be a floating-point"),
        (lambda: scan([0.5], b), TypeError, "scan: a must be a tensor"),
        (lambda: scan(a.to(torch.complex128), b), TypeError, "scan: a and b must share a dtype"),
        (lambda: scan(a, b, [0.0]), TypeError, "scan: x0 must be None or a tensor"),
        (lambda: scan(a, b, torch.ones(3, 2, dtype=c)), ValueError, r"x0 must broadcast to b.shape\[:-1\]"),
        (lambda: scan(a, b, torch.ones(5, 4, 2, dtype=c)), ValueError, "scan: x0 must broadcast"),
        (lambda: scan(a, b, chunk_size=True), TypeError, "scan: chunk_size must be a positive int"),
        (lambda: scan(a, b, chunk_size=0), ValueError, "scan: chunk_size must be a positive int"),
        (lambda: scan(a.to("meta"), b), ValueError, "scan: a, b and x0 must be on one device"),
        (lambda: scan_ref(a.unsqueeze(-1), b, torch.ones(3, dtype=c)), ValueError, "scan_ref: x0 must"),
    ]
    for fn, error, text in cases:
        with pytest.raises(error, match=text):
            fn()


@pytest.mark.parametrize("chunk_size", [1, 4, 32])
def test_empty_batch(chunk_size):
    a = _stable_a((3, 1)).to(torch.complex64)
    for shape in [(3, 0, 7), (0, 2, 7)]:
        aa = a[: shape[0]]
        b = torch.randn(*shape, dtype=torch.complex64, requires_grad=True)
        x = scan(aa, b, chunk_size=chunk_size)
        assert x.shape == shape
        x.abs().sum().backward()
        assert b.grad.shape == shape
        assert scan(aa, b.detach(), torch.zeros(shape[:-1], dtype=torch.complex64)).shape == shape
        assert scan_ref(aa.unsqueeze(-1), b.detach()).shape == shape
