"""Diagonal inits: documented formulas, shapes/dtypes, stability, S5 blocks, errors."""

import math

import pytest
import torch

from ssm.init import DIAG_INITS, diag_init, hippo, nplr

FAST = [n for n in DIAG_INITS if n != "ptd"]  # ptd has its own tests (tests/init/test_ptd.py)


# ptd at the shipped sizes; smaller sizes are computed on first use (tests/init/test_ptd.py)
CASES = [(n, N) for n in FAST for N in (2, 4, 16, 64, 256)] + [("ptd", N) for N in (16, 32, 64, 128, 256)]


@pytest.mark.parametrize("name,N", CASES)
def test_shapes_dtypes_stability(name, N):
    Lambda, B, V = diag_init(name, N)
    assert Lambda.shape == (N // 2,) and B.shape == (N // 2,)
    assert Lambda.dtype == torch.complex128 and B.dtype == torch.complex128
    assert (Lambda.real < 0).all(), f"{name}: max Re {Lambda.real.max():.3e}"
    if name in ("inv", "lin", "real"):
        assert V is None
    else:
        assert V.shape == (N, N // 2) and V.dtype == torch.complex128
    if name in ("legs", "dss"):  # unitary eigenbasis (PTD's is not)
        eye = torch.eye(N // 2, dtype=torch.complex128)
        torch.testing.assert_close(V.conj().T @ V, eye, atol=1e-10, rtol=0)


def test_formulas():
    N = 16
    for n in range(N // 2):
        Lam = diag_init("inv", N)[0][n].item()
        assert Lam == pytest.approx(complex(-0.5, N / math.pi * (N / (2 * n + 1) - 1)), abs=1e-12)
        assert diag_init("lin", N)[0][n].item() == pytest.approx(complex(-0.5, math.pi * n), abs=1e-12)
        assert diag_init("real", N)[0][n].item() == pytest.approx(complex(-(n + 1), 0.0), abs=0)
    for name in ("inv", "lin", "real", "dss"):
        torch.testing.assert_close(diag_init(name, N)[1], torch.ones(N // 2, dtype=torch.complex128))


def test_legs_is_nplr_half_with_half_B():
    N = 32
    Lambda, B, V = diag_init("legs", N)
    L2, _, B2, V2 = nplr("legs", N)
    torch.testing.assert_close(Lambda, L2)
    torch.testing.assert_close(V, V2)
    _, B_legs = hippo("legs", N)
    torch.testing.assert_close(B, V.conj().T @ B_legs.to(torch.complex128) / 2)
    torch.testing.assert_close(2 * (V @ B).real, B_legs / 2)  # B/2 in the original basis
    torch.testing.assert_close(Lambda.real, torch.full((N // 2,), -0.5, dtype=torch.float64))


def test_dss_is_skew_part_spectrum():
    """DSS: eigenvalues of (A - A^T)/2 (computed here by the general eigensolver) minus 1/2."""
    N = 24
    A, _ = hippo("legs", N)
    ev = torch.linalg.eigvals((A - A.T) / 2)
    ev = torch.sort(ev.imag[ev.imag > 0], descending=True).values
    Lambda, _, V = diag_init("dss", N)
    torch.testing.assert_close(Lambda.imag, ev, atol=1e-10, rtol=0)
    torch.testing.assert_close(Lambda.real, torch.full((N // 2,), -0.5, dtype=torch.float64))
    skew = ((A - A.T) / 2).to(torch.complex128)
    torch.testing.assert_close(skew @ V, V * (1j * Lambda.imag), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", FAST)
def test_blocks(name):
    N, J = 24, 3
    Lambda, B, V = diag_init(name, N, blocks=J)
    L1, B1, V1 = diag_init(name, N // J)
    assert Lambda.shape == (N // 2,) and B.shape == (N // 2,)
    assert (Lambda.real < 0).all()
    torch.testing.assert_close(Lambda, L1.repeat(J))
    torch.testing.assert_close(B, B1.repeat(J))
    if V1 is None:
        assert V is None
        return
    assert V.shape == (N, N // 2)
    m, k = N // J, N // (2 * J)
    for i in range(J):
        for j in range(J):
            blk = V[i * m:(i + 1) * m, j * k:(j + 1) * k]
            if i == j:
                torch.testing.assert_close(blk, V1)
            else:
                assert (blk == 0).all()


def test_errors():
    with pytest.raises(ValueError, match=r"\['legs', 'inv', 'lin', 'real', 'dss', 'ptd'\]"):
        diag_init("hippo", 8)
    with pytest.raises(ValueError, match="N must be divisible by 2\\*blocks"):
        diag_init("inv", 12, blocks=4)
    with pytest.raises(ValueError, match="N must be even"):
        diag_init("lin", 9)
    with pytest.raises(ValueError, match="blocks must be a positive int"):
        diag_init("lin", 8, blocks=0)


@pytest.mark.parametrize("name,blocks", [("dss", 1), ("legs", 2), ("lin", 1), ("ptd", 1)])
def test_cache_returns_equal_independent_copies(name, blocks):
    """Repeated calls hit the memo (one eigendecomposition per (name, N, blocks)), return equal
    results, and each call's tensors are fresh: mutating one does not change the next."""
    from ssm.init.diag import _diag_init_cached, _one_block

    N = 16
    first = diag_init(name, N, blocks=blocks)  # fills the memo if no earlier test did
    hits = _diag_init_cached.cache_info().hits
    second = diag_init(name, N, blocks=blocks)
    assert _diag_init_cached.cache_info().hits == hits + 1
    for a, b in zip(first, second):
        if a is None:
            assert b is None
            continue
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        assert a.data_ptr() != b.data_ptr()
        a.mul_(3).add_(1)  # callers may modify their copy in place
    third = diag_init(name, N, blocks=blocks)
    for b, c in zip(second, third):
        if b is not None:
            torch.testing.assert_close(b, c, atol=0, rtol=0)
    # the memo holds what an uncached computation gives
    Lam1, B1, V1 = _one_block(name, N // blocks)
    torch.testing.assert_close(third[0], Lam1.repeat(blocks), atol=0, rtol=0)
    torch.testing.assert_close(third[1], B1.repeat(blocks), atol=0, rtol=0)


def test_cache_keys_and_bad_arguments_not_cached():
    from ssm.init.diag import _diag_init_cached

    a = diag_init("dss", 8)[0]
    b = diag_init("dss", 10)[0]
    c = diag_init("dss", 8, blocks=2)[0]
    assert a.shape == (4,) and b.shape == (5,) and c.shape == (4,)
    assert not torch.equal(a, c)  # blocks is part of the key
    size = _diag_init_cached.cache_info().currsize
    with pytest.raises(ValueError, match="blocks"):
        diag_init("dss", 8, blocks=3)
    with pytest.raises(ValueError, match="name"):
        diag_init("nope", 8)
    assert _diag_init_cached.cache_info().currsize == size
